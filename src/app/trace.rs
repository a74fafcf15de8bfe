//! `trace`, `check`, `explain`: plan → execute → diagnose → render.

use crate::cli::{CheckArgs, ExplainArgs, Format, GlobalArgs, RunArgs, TraceArgs};
use crate::diagnose::{self, catalog, Overall, Report};
use crate::engine::{Run, SavedRun, SavedRuns, RUN_SCHEMA_VERSION};
use crate::error::{Error, Result};
use crate::report::{self, Style};
use std::io::Write;
use std::time::Instant;

/// Diagnosed reports and the runs they come from (same order).
pub(crate) struct Traced {
    pub reports: Vec<Report>,
    pub runs: Vec<Run>,
}

pub fn trace(g: &GlobalArgs, a: &TraceArgs) -> Result<u8> {
    let traced = run_targets(g, std::slice::from_ref(&a.target), &a.run)?;
    emit(g, &traced)
}

pub fn check(g: &GlobalArgs, a: &CheckArgs) -> Result<u8> {
    if a.all && !a.targets.is_empty() {
        return Err(Error::input("check: give targets or --all, not both"));
    }
    // A saved run holds its targets: with no targets (or --all) replay every one, no configs read.
    if let (Some(file), true) = (&a.run.replay, a.all || a.targets.is_empty()) {
        let traced = replay(file, &[])?;
        return emit(g, &traced);
    }
    let targets = if a.all {
        super::live::all_targets(g)?
    } else {
        a.targets.clone()
    };
    if targets.is_empty() {
        return Err(Error::input(
            "check: name at least one target, or use --all",
        ));
    }
    let traced = run_targets(g, &targets, &a.run)?;
    emit(g, &traced)
}

/// Render reports to stdout and return the exit code of their overall verdict (with
/// `--format nagios`, the monitoring-plugins code of its state).
pub(crate) fn emit(g: &GlobalArgs, traced: &Traced) -> Result<u8> {
    let mut rewritten;
    let mut reports = &traced.reports;
    if g.format == Format::Github {
        rewritten = traced.reports.clone();
        report::github::workspace_paths(
            rewritten.iter_mut().flat_map(|r| r.findings.iter_mut()),
            &g.config_dir,
        );
        reports = &rewritten;
    }
    let style = Style {
        color: report::stdout_color(g.no_color),
    };
    let mut out = super::stdout();
    report::render_runs(reports, &traced.runs, g.format, style, &mut out)
        .and_then(|_| out.flush())
        .map_err(|e| Error::tool(format!("writing the report: {e}")))?;
    if g.format == Format::Nagios {
        return Ok(report::nagios::state(reports).exit_code());
    }
    Ok(report::overall(reports).exit_code())
}

/// Trace each target (live, or from a saved run), honouring --wait and --save-run.
pub(crate) fn run_targets(g: &GlobalArgs, targets: &[String], run: &RunArgs) -> Result<Traced> {
    if let Some(file) = &run.replay {
        return replay(file, targets);
    }
    let wait = run.wait;
    let interval = run.interval;
    let started = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let saved = super::live::execute(g, targets, run)?;
        let reports: Vec<Report> = saved
            .iter()
            .map(|s| {
                let mut r = diagnose::diagnose(&s.plan, &s.run, &s.static_findings);
                r.attempts = attempts;
                r
            })
            .collect();
        let healthy = report::overall(&reports) == Overall::Healthy;
        let out_of_time = match wait {
            None => true,
            Some(w) => started.elapsed() + interval >= w,
        };
        if healthy || out_of_time {
            let runs = saved.iter().map(|s| s.run.clone()).collect();
            if let Some(file) = &run.save_run {
                save(file, saved)?;
            }
            if wait.is_some() {
                eprintln!(
                    "phoenix-doctor: {} after {attempts} attempt{} in {:.1}s",
                    if healthy {
                        "healthy"
                    } else {
                        "still not healthy"
                    },
                    if attempts == 1 { "" } else { "s" },
                    started.elapsed().as_secs_f64()
                );
            }
            return Ok(Traced { reports, runs });
        }
        std::thread::sleep(interval);
    }
}

fn save(file: &std::path::Path, runs: Vec<SavedRun>) -> Result<()> {
    let doc = SavedRuns {
        schema_version: RUN_SCHEMA_VERSION,
        runs,
    };
    let text = serde_json::to_string_pretty(&doc)
        .map_err(|e| Error::tool(format!("encoding the run: {e}")))?;
    std::fs::write(file, text).map_err(|e| Error::tool(format!("writing {}: {e}", file.display())))
}

/// Re-diagnose saved observations, with no network and no configs: the named targets, or every
/// saved target when none is named.
pub(crate) fn replay(file: &std::path::Path, targets: &[String]) -> Result<Traced> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Error::input(format!(
            "{}: cannot read the saved run: {e}",
            file.display()
        ))
    })?;
    let doc: SavedRuns = serde_json::from_str(&text).map_err(|e| {
        Error::input(format!(
            "{}:{}:{}: not a saved run ({e}); expected the JSON written by --save-run",
            file.display(),
            e.line(),
            e.column()
        ))
    })?;
    if doc.schema_version != RUN_SCHEMA_VERSION {
        return Err(Error::input(format!(
            "{}: saved-run schema_version {} is not supported (expected {RUN_SCHEMA_VERSION})",
            file.display(),
            doc.schema_version
        )));
    }
    if doc.runs.is_empty() {
        return Err(Error::input(format!(
            "{}: the saved run holds no target",
            file.display()
        )));
    }
    let mut traced = Traced {
        reports: Vec::new(),
        runs: Vec::new(),
    };
    let mut chosen: Vec<&SavedRun> = Vec::new();
    if targets.is_empty() {
        chosen.extend(doc.runs.iter());
    }
    for t in targets {
        let Some(s) = doc.runs.iter().find(|s| &s.plan.target == t) else {
            let known: Vec<&str> = doc.runs.iter().map(|s| s.plan.target.as_str()).collect();
            return Err(Error::input(format!(
                "{}: no saved run for `{t}` (it holds: {})",
                file.display(),
                known.join(", ")
            )));
        };
        chosen.push(s);
    }
    for s in chosen {
        traced
            .reports
            .push(diagnose::diagnose(&s.plan, &s.run, &s.static_findings));
        traced.runs.push(s.run.clone());
    }
    Ok(traced)
}

pub fn explain(_g: &GlobalArgs, a: &ExplainArgs) -> Result<u8> {
    let mut out = super::stdout();
    let w = |out: &mut super::Stdout, s: String| -> Result<()> {
        writeln!(out, "{s}").map_err(|e| Error::tool(format!("writing: {e}")))
    };
    let all = super::live::catalogue();
    match &a.code {
        None => {
            for c in &all {
                w(
                    &mut out,
                    format!("{:<14} {:<8} {}", c.code, c.severity, c.title),
                )?;
            }
            Ok(0)
        }
        Some(code) => {
            let Some(c) = all.iter().find(|c| c.code.eq_ignore_ascii_case(code)) else {
                let codes: Vec<&str> = all.iter().map(|c| c.code).collect();
                let near = codes
                    .iter()
                    .min_by(|a, b| {
                        strsim::levenshtein(&a.to_lowercase(), &code.to_lowercase()).cmp(
                            &strsim::levenshtein(&b.to_lowercase(), &code.to_lowercase()),
                        )
                    })
                    .copied()
                    .unwrap_or_default();
                return Err(Error::input(format!(
                    "unknown finding code `{code}` (did you mean {near}? `phoenix-doctor explain` lists them all)"
                )));
            };
            w(
                &mut out,
                format!("{} — {} ({})", c.code, c.title, c.severity),
            )?;
            if let Some(l) = c.layer {
                w(&mut out, format!("layer: {l}"))?;
            }
            w(&mut out, format!("\nWhat it means\n  {}", c.meaning))?;
            w(&mut out, format!("\nConfirm by hand\n  {}", c.confirm))?;
            w(&mut out, format!("\nFix\n  {}", c.fix))?;
            Ok(0)
        }
    }
}

/// Every code the tool can report: live codes and static (lint) codes.
pub(crate) fn all_codes() -> Vec<catalog::CodeInfo> {
    catalog::LIVE
        .iter()
        .chain(crate::lint::catalog())
        .copied()
        .collect()
}
