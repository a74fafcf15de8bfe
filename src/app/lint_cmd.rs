//! `lint`: static findings from the configs alone, filtered by severity and code, as a table
//! (one row per code and cause, fitted to the terminal), as JSON, or as JUnit XML.

use crate::cli::{Format, GlobalArgs, LintArgs, SeverityArg};
use phoenix_doctor::diagnose::{Overall, Report, StepResult, Verdict, REPORT_SCHEMA_VERSION};
use phoenix_doctor::error::{exit, Error, Result};
use phoenix_doctor::finding::{Finding, Severity};
use phoenix_doctor::lint;
use phoenix_doctor::observe::Layer;
use phoenix_doctor::report;

/// The JSON document `lint --format json` prints.
#[derive(serde::Serialize)]
struct LintJson<'a> {
    schema_version: u32,
    findings: &'a [&'a Finding],
    /// With `--baseline`: what it accepted, expired and left stale.
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<&'a phoenix_doctor::baseline::Summary>,
}

/// Findings that share a code and a cause: the same defect seen on several subjects.
pub struct Group<'a> {
    pub code: &'a str,
    pub cases: Vec<&'a Finding>,
}

impl Group<'_> {
    /// The subject each case is about (its first subject), without repeats.
    pub fn subjects(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        self.cases
            .iter()
            .filter_map(|f| f.subjects.first().map(String::as_str))
            .filter(|s| seen.insert(*s))
            .collect()
    }
}

/// What a finding's `actual` says once its subjects and numbers are taken out: two findings
/// of one code with the same cause differ only in whom they are about.
fn cause(f: &Finding) -> String {
    let mut s = std::borrow::Cow::Borrowed(f.actual.as_str());
    let mut subjects: Vec<&String> = f.subjects.iter().filter(|x| !x.is_empty()).collect();
    subjects.sort_by_key(|x| std::cmp::Reverse(x.len()));
    for subj in subjects {
        if s.contains(subj.as_str()) {
            s = std::borrow::Cow::Owned(s.replace(subj.as_str(), "\u{1}"));
        }
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('#') {
                out.push('#');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Group findings by code and cause, in the order each group first appears.
pub fn group<'a>(findings: &[&'a Finding]) -> Vec<Group<'a>> {
    let mut keys: std::collections::HashMap<(phoenix_doctor::finding::Code, String), usize> =
        std::collections::HashMap::new();
    let mut groups: Vec<Group<'a>> = Vec::new();
    for f in findings {
        match keys.entry((f.code, cause(f))) {
            std::collections::hash_map::Entry::Occupied(i) => groups[*i.get()].cases.push(f),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(groups.len());
                groups.push(Group {
                    code: &f.code,
                    cases: vec![f],
                });
            }
        }
    }
    groups
}

/// The findings `--severity` and `--code` select.
pub fn select<'a>(findings: &'a [Finding], a: &LintArgs) -> Vec<&'a Finding> {
    let floor = match a.severity {
        None | Some(SeverityArg::Info) => Severity::Info,
        Some(SeverityArg::Warning) => Severity::Warning,
        Some(SeverityArg::Error) => Severity::Error,
    };
    findings
        .iter()
        .filter(|f| f.severity >= floor)
        .filter(|f| {
            a.codes.is_empty()
                || a.codes.iter().any(|c| {
                    let c = c.trim().to_ascii_uppercase();
                    f.code == c || f.code.starts_with(&format!("{}-", c.trim_end_matches('-')))
                })
        })
        .collect()
}

/// The config line of a finding (a config file before a platform script), and how many
/// other cases share the row.
fn config_cell(f: &Finding, more: usize) -> String {
    let Some(p) = f
        .provenance
        .iter()
        .find(|p| !p.file.starts_with("platform:"))
        .or(f.provenance.first())
    else {
        return String::new();
    };
    let mut cell = report::provenance_cell(p);
    if more > 0 {
        cell.push_str(&format!("\n(+{more} more)"));
    }
    cell
}

/// The table: one block per severity (errors first), one row per code and cause, fitted to
/// `width` display columns (the code and the config line are kept whole), then a summary (and,
/// with a baseline, what it accepted and which of its entries are stale).
pub fn render_table(
    findings: &[&Finding],
    width: usize,
    baseline: Option<&phoenix_doctor::baseline::Summary>,
) -> String {
    let mut out = String::new();
    for sev in [Severity::Error, Severity::Warning, Severity::Info] {
        let of_sev: Vec<&Finding> = findings
            .iter()
            .copied()
            .filter(|f| f.severity == sev)
            .collect();
        if of_sev.is_empty() {
            continue;
        }
        let groups = group(&of_sev);
        out.push_str(&format!(
            "{} ({} findings, {} rows)\n",
            sev.to_string().to_uppercase(),
            of_sev.len(),
            groups.len()
        ));
        // Rows as text: the table measures each cell once, when it prints it.
        let mut rows: Vec<Vec<String>> = Vec::with_capacity(groups.len() + 1);
        rows.push(vec!["code".into(), "finding".into(), "config".into()]);
        for g in &groups {
            let first = g.cases[0];
            let text = if g.cases.len() == 1 {
                format!(
                    "{}\nexpected: {}\nactual: {}",
                    first.title, first.expected, first.actual
                )
            } else {
                let title = lint::lookup(g.code)
                    .map(|c| c.title.to_string())
                    .unwrap_or_else(|| first.title.clone());
                format!(
                    "{title} ({} cases)\non: {}\ne.g. {}\nactual: {}",
                    g.cases.len(),
                    g.subjects().join(", "),
                    first.title,
                    first.actual
                )
            };
            let code = match &first.accepted {
                Some(a) => format!(
                    "{}\naccepted{}",
                    g.code,
                    a.expires
                        .as_ref()
                        .map(|e| format!(" until {e}"))
                        .unwrap_or_default()
                ),
                None => g.code.to_string(),
            };
            rows.push(vec![code, text, config_cell(first, g.cases.len() - 1)]);
        }
        out.push_str(&report::fit_rows(rows, width, &[0, 2]));
        out.push_str("\n\n");
    }
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    out.push_str(&format!(
        "{} findings: {} errors, {} warnings, {} info\n`phoenix-doctor explain CODE` describes each code\n",
        findings.len(),
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    ));
    if let Some(b) = baseline {
        out.push_str(&phoenix_doctor::baseline::summary_lines(b));
    }
    out
}

/// The JSON document.
pub fn render_json(
    findings: &[&Finding],
    baseline: Option<&phoenix_doctor::baseline::Summary>,
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

/// The findings as a report `check`'s renderers understand: target `lint`, one step per
/// finding (an error fails, a warning warns, info passes), so `--format junit` is check's.
pub fn as_report(findings: &[&Finding]) -> Report {
    let steps: Vec<StepResult> = findings
        .iter()
        .map(|f| StepResult {
            id: f.code.to_string(),
            hop: f.code.split('-').nth(1).unwrap_or("lint").to_lowercase(),
            from: "config".to_string(),
            to: f.subjects.first().cloned().unwrap_or_default(),
            layer: f.layer.unwrap_or(Layer::Tcp),
            verdict: match f.severity {
                Severity::Error => Verdict::Diverged,
                Severity::Warning => Verdict::Warn,
                Severity::Info => Verdict::Ok,
            },
            expected: f.expected.clone(),
            actual: format!("{}: {}", f.title, f.actual),
            evidence: f.evidence.clone(),
            provenance: f.provenance.clone(),
            duration_ms: 0.0,
            code: Some(f.code),
            symptom_of: None,
            vantage: Default::default(),
            path: String::new(),
        })
        .collect();
    Report {
        schema_version: REPORT_SCHEMA_VERSION,
        target: "lint".to_string(),
        verdict: if findings.iter().any(|f| f.severity == Severity::Error) {
            Overall::Diverged
        } else {
            Overall::Healthy
        },
        first_divergence: None,
        hops: Vec::new(),
        steps,
        findings: Vec::new(),
        started_at: String::new(),
        duration_ms: 0.0,
        attempts: 1,
        baseline: None,
    }
}

/// Render the selected findings in `format` (table fitted to `width`), with what `baseline`
/// accepted; returns the text and the exit code (1 when a selected error is not accepted).
fn lint_text(
    g: &GlobalArgs,
    findings: &[&Finding],
    baseline: Option<&phoenix_doctor::baseline::Summary>,
    width: usize,
) -> Result<(String, u8)> {
    let text = match g.format {
        Format::Table => render_table(findings, width, baseline),
        Format::Json => render_json(findings, baseline)?,
        Format::Junit => {
            let mut buf = Vec::new();
            report::render(
                &as_report(findings),
                Format::Junit.into(),
                report::Style::default(),
                &mut buf,
            )
            .map_err(|e| Error::tool(format!("rendering JUnit: {e}")))?;
            String::from_utf8_lossy(&buf).into_owned()
        }
        Format::Github => {
            // One workflow-command annotation per finding, on its config line.
            let mut owned: Vec<Finding> = findings.iter().map(|f| (*f).clone()).collect();
            report::github::workspace_paths(owned.iter_mut(), &g.config_dir);
            let mut buf = Vec::new();
            report::github::render_findings(&owned, &mut buf)
                .map_err(|e| Error::tool(format!("rendering annotations: {e}")))?;
            String::from_utf8_lossy(&buf).into_owned()
        }
        other => {
            return Err(Error::input(format!(
                "lint prints `table`, `json`, `junit` or `github`, not `{}`",
                other.name()
            )))
        }
    };
    let code = if findings.iter().any(|f| phoenix_doctor::baseline::counts(f)) {
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
    let mut all = lint::run(&m);
    let summary = baseline.as_ref().map(|b| {
        phoenix_doctor::baseline::apply_findings(
            &mut all,
            b,
            phoenix_doctor::baseline::Day::today(),
        )
    });
    let findings = select(&all, a);
    let (text, code) = lint_text(g, &findings, summary.as_ref(), report::output_width())?;
    super::print_stdout(&text, g.format, false)?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(code: &str, sev: Severity, subject: &str, actual: &str) -> Finding {
        let mut f = Finding::new(
            phoenix_doctor::finding::Code::lookup(code).unwrap(),
            sev,
            format!("{subject}: title"),
        );
        f.actual = actual.to_string();
        f.subjects = vec![subject.to_string()];
        f
    }

    #[test]
    fn findings_group_by_code_and_cause() {
        let a = f(
            "PD-FW-005",
            Severity::Warning,
            "lxc:900",
            "lxc:900 has 2 rules",
        );
        let b = f(
            "PD-FW-005",
            Severity::Warning,
            "lxc:101",
            "lxc:101 has 7 rules",
        );
        let c = f(
            "PD-FW-005",
            Severity::Warning,
            "lxc:102",
            "inherited from lxc:900",
        );
        let d = f(
            "PD-FW-007",
            Severity::Warning,
            "lxc:102",
            "lxc:102 has 7 rules",
        );
        let all = [&a, &b, &c, &d];
        let g = group(&all);
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].code, "PD-FW-005");
        assert_eq!(g[0].subjects(), vec!["lxc:900", "lxc:101"]);
        assert_eq!(g[1].cases.len(), 1);
        assert_eq!(g[2].code, "PD-FW-007");
    }

    #[test]
    fn severity_and_code_filters_select() {
        let all = vec![
            f("PD-FW-005", Severity::Warning, "a", ""),
            f("PD-FW-001", Severity::Error, "b", ""),
            f("PD-DNSCFG-006", Severity::Info, "c", ""),
        ];
        let codes = |a: &LintArgs| -> Vec<String> {
            select(&all, a).iter().map(|f| f.code.to_string()).collect()
        };
        let sev = |s| LintArgs {
            severity: Some(s),
            ..LintArgs::default()
        };
        assert_eq!(codes(&LintArgs::default()).len(), 3);
        assert_eq!(
            codes(&sev(SeverityArg::Warning)),
            vec!["PD-FW-005", "PD-FW-001"]
        );
        assert_eq!(codes(&sev(SeverityArg::Error)), vec!["PD-FW-001"]);
        let code = |c: &str| LintArgs {
            codes: vec![c.to_string()],
            ..LintArgs::default()
        };
        assert_eq!(codes(&code("pd-fw-005")), vec!["PD-FW-005"]);
        assert_eq!(codes(&code("PD-FW")), vec!["PD-FW-005", "PD-FW-001"]);
        assert!(codes(&code("PD-F")).is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Any finding text (controls, wide characters, empty subjects) at any width renders
        /// as a table without panicking, and as JSON that parses back with every finding.
        #[test]
        fn any_finding_text_renders(
            texts in proptest::collection::vec(("(?s).{0,40}", "(?s).{0,20}"), 1..6),
            width in 0usize..200,
        ) {
            let all: Vec<Finding> = texts
                .iter()
                .enumerate()
                .map(|(i, (actual, subject))| {
                    let sev = [Severity::Error, Severity::Warning, Severity::Info][i % 3];
                    f("PD-FW-005", sev, subject, actual)
                })
                .collect();
            let refs: Vec<&Finding> = all.iter().collect();
            let _ = render_table(&refs, width, None);
            let json: serde_json::Value = serde_json::from_str(&render_json(&refs, None).unwrap()).unwrap();
            proptest::prop_assert_eq!(json["findings"].as_array().map(Vec::len), Some(all.len()));
        }
    }
}
