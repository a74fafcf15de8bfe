//! `lint`: static findings from the configs alone, as a table grouped by severity or as JSON.

use crate::cli::{Format, GlobalArgs, LintArgs};
use crate::error::{exit, Error, Result};
use crate::finding::{Finding, Severity};
use crate::lint;
use crate::model::Intended;
use std::io::Write;
use tabled::builder::Builder;
use tabled::settings::Style;

/// The JSON document `lint --format json` prints.
#[derive(serde::Serialize)]
struct LintJson<'a> {
    schema_version: u32,
    findings: &'a [Finding],
    /// With `--baseline`: what it accepted, expired and left stale.
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<&'a crate::baseline::Summary>,
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

/// The table: one block per severity (errors first), then a summary line (and, with a
/// baseline, what it accepted and which of its entries are stale).
pub fn render_table(findings: &[Finding], baseline: Option<&crate::baseline::Summary>) -> String {
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
            let code = match &f.accepted {
                Some(a) => format!(
                    "{}\naccepted{}",
                    f.code,
                    a.expires
                        .as_ref()
                        .map(|e| format!(" until {e}"))
                        .unwrap_or_default()
                ),
                None => f.code.clone(),
            };
            b.push_record([
                code,
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
    if let Some(b) = baseline {
        out.push_str(&crate::baseline::summary_lines(b));
    }
    out
}

/// The JSON document.
pub fn render_json(
    findings: &[Finding],
    baseline: Option<&crate::baseline::Summary>,
) -> Result<String> {
    let mut s = serde_json::to_string_pretty(&LintJson {
        schema_version: 1,
        findings,
        baseline,
    })
    .map_err(|e| Error::tool(format!("encoding JSON: {e}")))?;
    s.push('\n');
    Ok(s)
}

/// Render the findings for `m` in `format`, with the findings `baseline` lists accepted;
/// returns the text and the exit code (accepted findings do not count).
pub fn lint_text(
    m: &Intended,
    format: Format,
    baseline: Option<&crate::baseline::Baseline>,
) -> Result<(String, u8)> {
    let mut findings = lint::run(m);
    let summary = baseline
        .map(|b| crate::baseline::apply_findings(&mut findings, b, crate::baseline::Day::today()));
    let text = match format {
        Format::Table => render_table(&findings, summary.as_ref()),
        Format::Json => render_json(&findings, summary.as_ref())?,
        other => {
            return Err(Error::input(format!(
                "lint prints `table` or `json`, not `{}`",
                format!("{other:?}").to_lowercase()
            )))
        }
    };
    let code = if findings.iter().any(crate::baseline::counts) {
        exit::DIVERGED
    } else {
        exit::HEALTHY
    };
    Ok((text, code))
}

pub fn lint(g: &GlobalArgs, a: &LintArgs) -> Result<u8> {
    let baseline = a
        .baseline
        .as_deref()
        .map(super::load_baseline)
        .transpose()?;
    let m = super::inspect::load_model(g)?;
    let (text, code) = lint_text(&m, g.format, baseline.as_ref())?;
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())
        .and_then(|_| o.flush())
        .map_err(|e| Error::tool(format!("writing to stdout: {e}")))?;
    Ok(code)
}
