//! GitHub Actions workflow commands: one `::error`/`::warning`/`::notice` annotation per finding,
//! placed on the config file and line the finding comes from, so a pull request that breaks a
//! config shows the line. Generic over a list of findings (trace, check and lint use it).

use crate::diagnose::Report;
use crate::finding::{Finding, Severity};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Rewrite each provenance file (named relative to the directory above the config dir, e.g.
/// `etc/phoenix_lxc_configs.json`) relative to the workspace GitHub resolves annotations against
/// (`$GITHUB_WORKSPACE`, else the current directory), so the annotation lands on the file in the
/// pull request. Files outside the workspace keep their name.
pub fn workspace_paths<'a>(findings: impl IntoIterator<Item = &'a mut Finding>, config_dir: &Path) {
    let workspace = std::env::var_os("GITHUB_WORKSPACE")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok());
    let Some(workspace) = workspace.and_then(|w| w.canonicalize().ok()) else {
        return;
    };
    let root = config_dir
        .canonicalize()
        .ok()
        .and_then(|d| d.parent().map(Path::to_path_buf));
    let Some(root) = root else {
        return;
    };
    for f in findings {
        for p in f.provenance.iter_mut() {
            if p.file.is_empty() || p.file.starts_with("platform:") {
                continue;
            }
            if let Ok(rel) = root.join(&p.file).strip_prefix(&workspace) {
                p.file = rel.to_string_lossy().into_owned().into();
            }
        }
    }
}

/// Escape a command's message as GitHub's toolkit does (`%`, CR, LF); other control characters
/// (untrusted text from guests and configs) are shown, never passed to a terminal.
pub fn escape_data(s: &str) -> String {
    crate::fsutil::escape_terminal(s)
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escape a property value (`file=`, `title=`): the message escapes plus `:` and `,`.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn command(sev: Severity) -> &'static str {
    match sev {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "notice",
    }
}

/// One annotation line for `f`; `context` (e.g. `trace qdrant`) prefixes the title when given.
pub fn annotation(f: &Finding, context: Option<&str>) -> String {
    let mut props = Vec::new();
    // The first provenance that is a file (the platform's built-in facts are `platform:...`).
    if let Some(p) = f
        .provenance
        .iter()
        .find(|p| !p.file.is_empty() && !p.file.starts_with("platform:"))
    {
        props.push(format!("file={}", escape_property(&p.file)));
        if let Some(l) = p.line {
            props.push(format!("line={l}"));
        }
    }
    let title = match context {
        Some(c) => format!("{} {c}", f.code),
        None => f.code.to_string(),
    };
    props.push(format!("title={}", escape_property(&title)));
    let mut msg = f.title.clone();
    if !f.expected.is_empty() || !f.actual.is_empty() {
        msg.push_str(&format!("\nexpected: {}\nactual: {}", f.expected, f.actual));
    }
    for p in &f.provenance {
        msg.push_str(&format!("\nconfig: {p}"));
    }
    if !f.hint.is_empty() {
        msg.push_str(&format!("\nfix: {}", f.hint));
    }
    msg.push_str(&format!("\nmore: phoenix-doctor explain {}", f.code));
    format!(
        "::{} {}::{}",
        command(f.severity),
        props.join(","),
        escape_data(&msg)
    )
}

/// Annotations for a list of findings (lint).
pub fn render_findings(findings: &[Finding], w: &mut dyn Write) -> io::Result<()> {
    for f in findings {
        writeln!(w, "{}", annotation(f, None))?;
    }
    Ok(())
}

/// Annotations for trace reports: live findings name their trace; a static finding shown beside
/// several traces is annotated once. A last `::notice` states each trace's verdict.
pub fn render_reports(reports: &[Report], w: &mut dyn Write) -> io::Result<()> {
    let mut seen_static: Vec<&Finding> = Vec::new();
    for r in reports {
        let context = format!("trace {}", r.target);
        for f in &r.findings {
            if f.origin == crate::finding::Origin::Static {
                if seen_static.contains(&f) {
                    continue;
                }
                seen_static.push(f);
                writeln!(w, "{}", annotation(f, None))?;
            } else {
                writeln!(w, "{}", annotation(f, Some(&context)))?;
            }
        }
    }
    let summary: Vec<String> = reports
        .iter()
        .map(|r| format!("{}: {}", r.target, r.verdict.as_str()))
        .collect();
    writeln!(
        w,
        "::notice title=phoenix-doctor::{}",
        escape_data(&format!(
            "{} ({})",
            super::overall(reports).as_str(),
            summary.join(", ")
        ))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Provenance;
    use crate::finding::Code;

    #[test]
    fn escapes_follow_the_toolkit() {
        assert_eq!(escape_data("50% a\nb"), "50%25 a%0Ab");
        assert_eq!(escape_data("a\x1b[31m"), "a\\x1b[31m");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }

    #[test]
    fn a_finding_becomes_an_annotation_on_its_line() {
        let f = Finding::new(
            Code::lookup("PD-ROUTE-001").unwrap(),
            Severity::Warning,
            "route, broken: yes",
        )
        .expected("a")
        .actual("b")
        .provenance([Provenance {
            file: "etc/phoenix_lxc_configs.json".into(),
            pointer: "/lxc_configs/103".into(),
            line: Some(696),
        }]);
        let a = annotation(&f, Some("trace qdrant"));
        assert!(
            a.starts_with(
                "::warning file=etc/phoenix_lxc_configs.json,line=696,title=PD-ROUTE-001 trace qdrant::route, broken: yes%0Aexpected: a%0Aactual: b%0A"
            ),
            "{a}"
        );
        assert!(!a.contains('\n'));
        let info = Finding::new(Code::lookup("PD-CFG-001").unwrap(), Severity::Info, "t");
        assert!(annotation(&info, None).starts_with("::notice title=PD-CFG-001::t"));
    }
}
