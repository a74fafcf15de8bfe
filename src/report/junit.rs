//! JUnit XML: one test suite per trace, one test case per step; failures carry expected/actual.
//! A failure a baseline accepted is a passed test case whose `<system-out>` says so (with the
//! reason and the expiry); the baseline's summary is a suite property.

use crate::baseline::step_acceptance;
use crate::diagnose::{Report, StepResult, Verdict};
use std::io::{self, Write};

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A failing step that a baseline did not accept.
fn failing(r: &Report, s: &StepResult) -> bool {
    s.verdict.is_failure() && step_acceptance(r, s).is_none()
}

pub(super) fn render(reports: &[Report], w: &mut dyn Write) -> io::Result<()> {
    let count =
        |r: &Report, f: fn(Verdict) -> bool| r.steps.iter().filter(|s| f(s.verdict)).count();
    let fails = |r: &Report| r.steps.iter().filter(|s| failing(r, s)).count();
    let tests: usize = reports.iter().map(|r| r.steps.len()).sum();
    let failures: usize = reports.iter().map(fails).sum();
    let errors: usize = reports
        .iter()
        .map(|r| count(r, |v| v == Verdict::CannotJudge))
        .sum();
    writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        w,
        r#"<testsuites name="phoenix-doctor" tests="{tests}" failures="{failures}" errors="{errors}">"#
    )?;
    for r in reports {
        writeln!(
            w,
            r#"  <testsuite name="trace {}" tests="{}" failures="{}" errors="{}" skipped="{}" time="{:.3}" timestamp="{}">"#,
            esc(&r.target),
            r.steps.len(),
            fails(r),
            count(r, |v| v == Verdict::CannotJudge),
            count(r, |v| v == Verdict::Blocked),
            r.duration_ms / 1000.0,
            esc(&r.started_at)
        )?;
        if let Some(b) = &r.baseline {
            baseline_properties(w, r, b)?;
        }
        for s in &r.steps {
            testcase(w, r, s)?;
        }
        writeln!(w, "  </testsuite>")?;
    }
    writeln!(w, "</testsuites>")
}

/// The suite's properties: the baseline file, how many findings it accepted, its expired and
/// stale entries.
fn baseline_properties(
    w: &mut dyn Write,
    r: &Report,
    b: &crate::finding::BaselineSummary,
) -> io::Result<()> {
    writeln!(w, "    <properties>")?;
    let prop = |w: &mut dyn Write, name: &str, value: &str| {
        writeln!(
            w,
            r#"      <property name="{}" value="{}"/>"#,
            esc(name),
            esc(value)
        )
    };
    prop(w, "baseline.file", &b.file)?;
    prop(
        w,
        "baseline.accepted",
        &crate::baseline::accepted_count(r).to_string(),
    )?;
    for e in &b.expired {
        prop(w, "baseline.expired", &e.to_string())?;
    }
    for e in &b.stale {
        prop(w, "baseline.stale", &e.to_string())?;
    }
    writeln!(w, "    </properties>")
}

/// What a test case's text says: expected, actual, the evidence lines, the config lines.
fn case_body(s: &StepResult) -> String {
    format!(
        "expected: {}\nactual: {}\n{}{}",
        s.expected,
        s.actual,
        s.evidence
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        s.provenance
            .iter()
            .map(|p| format!("\nconfig: {p}"))
            .collect::<String>()
    )
}

/// One step as a test case: passed, a warning, skipped (blocked), an error (cannot judge), a
/// failure (with the hop it is a symptom of), or passed because a baseline accepted it.
fn testcase(w: &mut dyn Write, r: &Report, s: &StepResult) -> io::Result<()> {
    write!(
        w,
        r#"    <testcase classname="{}.{}" name="{} ({} from {})" time="{:.3}""#,
        esc(&r.target),
        esc(&s.hop),
        esc(&s.id),
        s.layer,
        esc(&s.from),
        s.duration_ms / 1000.0
    )?;
    let body = case_body(s);
    let code = s.code.map(|c| c.as_str()).unwrap_or_default();
    if let (true, Some(a)) = (s.verdict.is_failure(), step_acceptance(r, s)) {
        return accepted_case(w, code, a, &body);
    }
    let inner = match s.verdict {
        Verdict::Ok => return writeln!(w, "/>"),
        Verdict::Warn => format!(
            "      <system-out>{} warning: {}</system-out>",
            esc(code),
            esc(&s.actual)
        ),
        Verdict::Blocked => format!(r#"      <skipped message="blocked: {}"/>"#, esc(&s.actual)),
        Verdict::CannotJudge => format!(
            r#"      <error message="{} cannot judge: {}">{}</error>"#,
            esc(code),
            esc(&s.actual),
            esc(&body)
        ),
        Verdict::Diverged | Verdict::Unreachable => {
            let msg = match &s.symptom_of {
                Some(h) => format!(
                    "{code} symptom of {h}: expected {} / actual {}",
                    s.expected, s.actual
                ),
                None => format!("{code}: expected {} / actual {}", s.expected, s.actual),
            };
            format!(
                r#"      <failure message="{}" type="{}">{}</failure>"#,
                esc(&msg),
                s.verdict.as_str(),
                esc(&body)
            )
        }
    };
    writeln!(w, ">")?;
    writeln!(w, "{inner}")?;
    writeln!(w, "    </testcase>")
}

/// A failure a baseline accepted: a passed case that says so, with the reason and the expiry.
fn accepted_case(
    w: &mut dyn Write,
    code: &str,
    a: &crate::finding::Accepted,
    body: &str,
) -> io::Result<()> {
    writeln!(w, ">")?;
    writeln!(
        w,
        r#"      <properties><property name="accepted" value="{}"/>{}</properties>"#,
        esc(&a.reason),
        a.expires
            .as_ref()
            .map(|e| format!(r#"<property name="expires" value="{}"/>"#, esc(e)))
            .unwrap_or_default()
    )?;
    writeln!(
        w,
        "      <system-out>{} accepted by the baseline{}: {}\n{}</system-out>",
        esc(code),
        esc(&a
            .expires
            .as_ref()
            .map(|e| format!(" until {e}"))
            .unwrap_or_default()),
        esc(&a.reason),
        esc(body)
    )?;
    writeln!(w, "    </testcase>")
}
