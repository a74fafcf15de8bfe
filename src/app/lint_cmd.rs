//! `lint`: static findings from the configs alone, as a table grouped by severity or as JSON.

use crate::cli::{Format, GlobalArgs};
use crate::error::{exit, Error, Result};
use crate::finding::{Finding, Severity};
use crate::lint;
use crate::model::Intended;
use tabled::builder::Builder;
use tabled::settings::Style;

/// The JSON document `lint --format json` prints.
#[derive(serde::Serialize)]
struct LintJson<'a> {
    schema_version: u32,
    findings: &'a [Finding],
}

/// Break `s` into lines of at most `width` characters at spaces.
fn wrap(s: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0usize;
    let words = s.split(' ').flat_map(|w| {
        let chars: Vec<char> = w.chars().collect();
        chars
            .chunks(width.max(1))
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
    });
    for word in words {
        let n = word.chars().count();
        if line > 0 && line + 1 + n > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(&word);
        line += n;
    }
    out
}

/// The table: one block per severity (errors first), then a summary line.
pub fn render_table(findings: &[Finding]) -> String {
    let mut out = String::new();
    for sev in [Severity::Error, Severity::Warning, Severity::Info] {
        let group: Vec<&Finding> = findings.iter().filter(|f| f.severity == sev).collect();
        if group.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "{} ({})\n",
            sev.to_string().to_uppercase(),
            group.len()
        ));
        let mut b = Builder::default();
        b.push_record(["code", "finding", "expected", "actual", "config"]);
        for f in group {
            let config = f
                .provenance
                .iter()
                .find(|p| !p.file.starts_with("platform:"))
                .or(f.provenance.first())
                .map(|p| {
                    let file = match p.line {
                        Some(l) => format!("{}:{l}", p.file),
                        None => p.file.clone(),
                    };
                    format!("{}\n{}", wrap(&file, 60), wrap(&p.pointer, 60))
                })
                .unwrap_or_default();
            b.push_record([
                f.code.clone(),
                wrap(&f.title, 40),
                wrap(&f.expected, 40),
                wrap(&f.actual, 48),
                config,
            ]);
        }
        out.push_str(&b.build().with(Style::sharp()).to_string());
        out.push_str("\n\n");
    }
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    out.push_str(&format!(
        "{} findings: {} errors, {} warnings, {} info (phoenix-doctor explain CODE describes each code)\n",
        findings.len(),
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    ));
    out
}

/// The JSON document.
pub fn render_json(findings: &[Finding]) -> Result<String> {
    let mut s = serde_json::to_string_pretty(&LintJson {
        schema_version: 1,
        findings,
    })
    .map_err(|e| Error::tool(format!("encoding JSON: {e}")))?;
    s.push('\n');
    Ok(s)
}

/// Render the findings for `m` in `format`; returns the text and the exit code.
pub fn lint_text(m: &Intended, format: Format) -> Result<(String, u8)> {
    let findings = lint::run(m);
    let text = match format {
        Format::Table => render_table(&findings),
        Format::Json => render_json(&findings)?,
        other => {
            return Err(Error::input(format!(
                "lint prints `table` or `json`, not `{}`",
                format!("{other:?}").to_lowercase()
            )))
        }
    };
    let code = if findings.iter().any(|f| f.severity == Severity::Error) {
        exit::DIVERGED
    } else {
        exit::HEALTHY
    };
    Ok((text, code))
}

pub fn lint(g: &GlobalArgs) -> Result<u8> {
    let m = super::inspect::load_model(g)?;
    let (text, code) = lint_text(&m, g.format)?;
    super::print_stdout(&text, g.format, false)?;
    Ok(code)
}
