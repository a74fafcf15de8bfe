//! One status line in the monitoring-plugins convention (Nagios, Icinga, Naemon, Checkmk):
//! `PHOENIX-DOCTOR <STATE> - <text> | <perfdata>`, with its exit codes 0 OK, 1 WARNING,
//! 2 CRITICAL, 3 UNKNOWN.

use crate::diagnose::{Overall, Report, Verdict};
use std::io::{self, Write};

/// A monitoring-plugins state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            State::Ok => 0,
            State::Warning => 1,
            State::Critical => 2,
            State::Unknown => 3,
        }
    }
}

/// Diverged → CRITICAL; cannot-judge → UNKNOWN; healthy with a live warning (a step judged
/// `warn`) → WARNING; else OK. Static findings never change the state, as they never change the
/// verdict.
pub fn state(reports: &[Report]) -> State {
    match super::overall(reports) {
        Overall::Diverged => State::Critical,
        Overall::CannotJudge => State::Unknown,
        Overall::Healthy
            if reports
                .iter()
                .any(|r| r.steps.iter().any(|s| s.verdict == Verdict::Warn)) =>
        {
            State::Warning
        }
        Overall::Healthy => State::Ok,
    }
}

/// Plugin output ends the text at `|` and the line at a newline; control characters are shown.
fn clean(s: &str) -> String {
    crate::fsutil::escape_terminal_line(s).replace('|', "/")
}

/// A perfdata label: quoted, without `'` or `=`.
fn perf_label(s: &str) -> String {
    format!("'{}'", s.replace(['\'', '='], "_"))
}

/// The status line for the tool's own failure (bad input, could not judge): UNKNOWN.
pub fn unknown_line(message: &str) -> String {
    format!("PHOENIX-DOCTOR UNKNOWN - {}\n", clean(message))
}

fn describe(r: &Report) -> String {
    match &r.first_divergence {
        Some(d) => format!(
            "{}: {} at {} {} from {}",
            r.target, d.code, d.hop, d.layer, d.from
        ),
        None => {
            let warn = r
                .steps
                .iter()
                .filter(|s| s.verdict == Verdict::Warn)
                .count();
            if r.verdict == Overall::Healthy && warn > 0 {
                format!("{}: healthy with {warn} warning step(s)", r.target)
            } else {
                format!("{}: {}", r.target, r.verdict.as_str())
            }
        }
    }
}

pub(super) fn render(reports: &[Report], w: &mut dyn Write) -> io::Result<()> {
    let st = state(reports);
    let count = |v: Overall| reports.iter().filter(|r| r.verdict == v).count();
    // The text names the traces that are not healthy first, then counts.
    let mut parts: Vec<String> = reports
        .iter()
        .filter(|r| r.verdict != Overall::Healthy || st == State::Warning)
        .map(describe)
        .collect();
    if parts.is_empty() {
        parts.push(format!(
            "{} of {} trace(s) healthy",
            count(Overall::Healthy),
            reports.len()
        ));
    }
    let steps: usize = reports.iter().map(|r| r.steps.len()).sum();
    let failed: usize = reports
        .iter()
        .map(|r| r.steps.iter().filter(|s| s.verdict.is_failure()).count())
        .sum();
    let n = reports.len();
    let mut perf = vec![
        format!("traces={n};;;0;{n}"),
        format!("healthy={};;;0;{n}", count(Overall::Healthy)),
        format!("diverged={};;;0;{n}", count(Overall::Diverged)),
        format!("cannot_judge={};;;0;{n}", count(Overall::CannotJudge)),
        format!("steps={steps};;;0"),
        format!("failed_steps={failed};;;0;{steps}"),
    ];
    for r in reports {
        perf.push(format!(
            "{}={:.3}s;;;0",
            perf_label(&format!("{}_time", r.target)),
            r.duration_ms / 1000.0
        ));
    }
    writeln!(
        w,
        "PHOENIX-DOCTOR {} - {} | {}",
        st.as_str(),
        clean(&parts.join("; ")),
        perf.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_never_breaks_the_line_or_the_perfdata() {
        assert_eq!(clean("a|b\nc\x1b"), "a/b\\nc\\x1b");
        assert_eq!(perf_label("x='y"), "'x__y'");
        assert_eq!(
            unknown_line("bad\nconfig | x"),
            "PHOENIX-DOCTOR UNKNOWN - bad\\nconfig / x\n"
        );
    }
}
