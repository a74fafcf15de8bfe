//! JUnit XML: one test suite per trace, one test case per step; failures carry expected/actual.

use crate::diagnose::{Report, Verdict};
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

pub(super) fn render(reports: &[Report], w: &mut dyn Write) -> io::Result<()> {
    let count =
        |r: &Report, f: fn(Verdict) -> bool| r.steps.iter().filter(|s| f(s.verdict)).count();
    let tests: usize = reports.iter().map(|r| r.steps.len()).sum();
    let failures: usize = reports.iter().map(|r| count(r, Verdict::is_failure)).sum();
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
            count(r, Verdict::is_failure),
            count(r, |v| v == Verdict::CannotJudge),
            count(r, |v| v == Verdict::Blocked),
            r.duration_ms / 1000.0,
            esc(&r.started_at)
        )?;
        for s in &r.steps {
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
            let body = format!(
                "expected: {}\nactual: {}\n{}{}",
                s.expected,
                s.actual,
                s.evidence.join("\n"),
                s.provenance
                    .iter()
                    .map(|p| format!("\nconfig: {p}"))
                    .collect::<String>()
            );
            let code = s.code.clone().unwrap_or_default();
            match s.verdict {
                Verdict::Ok => writeln!(w, "/>")?,
                Verdict::Warn => {
                    writeln!(w, ">")?;
                    writeln!(
                        w,
                        "      <system-out>{} warning: {}</system-out>",
                        esc(&code),
                        esc(&s.actual)
                    )?;
                    writeln!(w, "    </testcase>")?;
                }
                Verdict::Blocked => {
                    writeln!(w, ">")?;
                    writeln!(
                        w,
                        r#"      <skipped message="blocked: {}"/>"#,
                        esc(&s.actual)
                    )?;
                    writeln!(w, "    </testcase>")?;
                }
                Verdict::CannotJudge => {
                    writeln!(w, ">")?;
                    writeln!(
                        w,
                        r#"      <error message="{} cannot judge: {}">{}</error>"#,
                        esc(&code),
                        esc(&s.actual),
                        esc(&body)
                    )?;
                    writeln!(w, "    </testcase>")?;
                }
                Verdict::Diverged | Verdict::Unreachable => {
                    writeln!(w, ">")?;
                    let msg = match &s.symptom_of {
                        Some(h) => format!(
                            "{code} symptom of {h}: expected {} / actual {}",
                            s.expected, s.actual
                        ),
                        None => format!("{code}: expected {} / actual {}", s.expected, s.actual),
                    };
                    writeln!(
                        w,
                        r#"      <failure message="{}" type="{}">{}</failure>"#,
                        esc(&msg),
                        s.verdict.as_str(),
                        esc(&body)
                    )?;
                    writeln!(w, "    </testcase>")?;
                }
            }
        }
        writeln!(w, "  </testsuite>")?;
    }
    writeln!(w, "</testsuites>")
}
