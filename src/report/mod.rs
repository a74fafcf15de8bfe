//! Renderers for trace reports: table (for people), JSON (versioned contract), JUnit XML,
//! Mermaid sequence diagram, Prometheus text format, GitHub workflow commands, a Nagios status
//! line. They write to `&mut dyn Write` and never decide verdicts.

mod evidence;
pub mod github;
mod junit;
mod mermaid;
pub mod nagios;
pub mod prometheus;
mod table;

pub use table::{fit_table, output_width, provenance_cell};

use crate::diagnose::{Overall, Report, REPORT_SCHEMA_VERSION};
use crate::engine::Run;
use crate::finding::{Finding, Origin};
use serde::Serialize;
use std::io::{self, Write};

/// The formats a trace report renders to (the command line's `--format` maps onto these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// For people.
    #[default]
    Table,
    /// The versioned contract of `docs/output-json.md`.
    Json,
    /// JUnit XML.
    Junit,
    /// Mermaid sequence diagrams.
    Mermaid,
    /// Prometheus text format.
    Prometheus,
    /// GitHub Actions workflow commands.
    Github,
    /// One monitoring-plugins status line.
    Nagios,
}

/// Rendering options.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// ANSI colours (only on a TTY, never with NO_COLOR).
    pub color: bool,
    /// Fit the table format to this many display columns (`output_width()`); `None` keeps
    /// every table and line at its natural width.
    pub width: Option<usize>,
}

/// Whether to colour output on stdout: a terminal, no `NO_COLOR`, no `--no-color`.
pub fn stdout_color(no_color_flag: bool) -> bool {
    use std::io::IsTerminal;
    !no_color_flag
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && io::stdout().is_terminal()
}

/// Render one trace report.
pub fn render(report: &Report, format: Format, style: Style, w: &mut dyn Write) -> io::Result<()> {
    render_many(std::slice::from_ref(report), format, style, w)
}

/// The JSON document for `check` (several reports). Static findings are listed once, in
/// `static_findings`; each report's own `static_findings` holds the indices of those that bear
/// on it (instead of copies in its `findings`).
#[derive(Serialize)]
struct CheckDoc<'a> {
    schema_version: u32,
    verdict: Overall,
    reports: Vec<CheckedReport<'a>>,
    static_findings: Vec<&'a Finding>,
    /// With `--baseline`: the run-wide summary (the same object each report carries).
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<&'a crate::finding::BaselineSummary>,
}

/// A trace report inside the check document: its live findings, and its static ones by index.
/// The same fields in the same order as [`Report`], plus `static_findings`.
#[derive(Serialize)]
struct CheckedReport<'a> {
    schema_version: u32,
    target: &'a str,
    verdict: Overall,
    first_divergence: &'a Option<crate::diagnose::Divergence>,
    hops: &'a [crate::diagnose::HopResult],
    steps: &'a [crate::diagnose::StepResult],
    findings: Vec<&'a Finding>,
    static_findings: Vec<usize>,
    started_at: &'a str,
    duration_ms: f64,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<&'a crate::finding::BaselineSummary>,
}

impl<'a> CheckDoc<'a> {
    fn new(reports: &'a [Report]) -> serde_json::Result<CheckDoc<'a>> {
        let mut index: std::collections::HashMap<String, usize> = Default::default();
        let mut shared: Vec<&Finding> = Vec::new();
        let mut out = Vec::with_capacity(reports.len());
        for r in reports {
            let mut own = Vec::new();
            let mut refs = Vec::new();
            for f in &r.findings {
                if f.origin != Origin::Static {
                    own.push(f);
                    continue;
                }
                let key = serde_json::to_string(f)?;
                let i = *index.entry(key).or_insert_with(|| {
                    shared.push(f);
                    shared.len() - 1
                });
                refs.push(i);
            }
            out.push(CheckedReport {
                schema_version: r.schema_version,
                target: &r.target,
                verdict: r.verdict,
                first_divergence: &r.first_divergence,
                hops: &r.hops,
                steps: &r.steps,
                findings: own,
                static_findings: refs,
                started_at: &r.started_at,
                duration_ms: r.duration_ms,
                attempts: r.attempts,
                baseline: r.baseline.as_ref(),
            });
        }
        Ok(CheckDoc {
            schema_version: REPORT_SCHEMA_VERSION,
            verdict: overall(reports),
            reports: out,
            static_findings: shared,
            baseline: reports.first().and_then(|r| r.baseline.as_ref()),
        })
    }
}

/// The verdict of several reports is decided in `diagnose`; renderers only show it.
pub use crate::diagnose::overall;

/// Render one report (trace) or several (check) in `format`.
pub fn render_many(
    reports: &[Report],
    format: Format,
    style: Style,
    w: &mut dyn Write,
) -> io::Result<()> {
    render_runs(reports, &[], format, style, w)
}

/// Render reports with the runs they were diagnosed from (`runs[i]` is `reports[i]`'s run, or
/// absent): Prometheus reads certificate expiry and phase timings from the observations.
pub fn render_runs(
    reports: &[Report],
    runs: &[Run],
    format: Format,
    style: Style,
    w: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Table => {
            for (i, r) in reports.iter().enumerate() {
                if i > 0 {
                    writeln!(w)?;
                }
                table::render(r, style, w)?;
            }
            if reports.len() > 1 {
                table::summary(reports, style, w)?;
            }
            Ok(())
        }
        Format::Json => {
            if reports.len() == 1 {
                serde_json::to_writer_pretty(&mut *w, &reports[0])?;
            } else {
                serde_json::to_writer_pretty(&mut *w, &CheckDoc::new(reports)?)?;
            }
            writeln!(w)
        }
        Format::Junit => junit::render(reports, w),
        Format::Mermaid => mermaid::render_many(reports, w),
        Format::Prometheus => prometheus::render(reports, runs, w),
        Format::Github => github::render_reports(reports, w),
        Format::Nagios => nagios::render(reports, w),
    }
}

/// Shorten `s` to at most `n` characters for tables.
pub(crate) fn clip(s: &str, n: usize) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() <= n {
        s
    } else {
        let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests;
