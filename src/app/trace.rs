//! `trace`, `check`, `explain`: plan → execute → diagnose → render.

use super::parse_duration;
use crate::cli::{CheckArgs, ExplainArgs, GlobalArgs, RunArgs, TraceArgs};
use crate::diagnose::{self, catalog, Overall, Report};
use crate::engine::{SavedRun, SavedRuns, RUN_SCHEMA_VERSION};
use crate::error::{Error, Result};
use crate::fsutil::{read_bounded_string, write_atomic, Existing, FileKind};
use crate::report::{self, Style};
use std::io::Write;
use std::time::{Duration, Instant};

pub fn trace(g: &GlobalArgs, a: &TraceArgs) -> Result<u8> {
    let reports = run_targets(g, std::slice::from_ref(&a.target), &a.run)?;
    emit(g, &reports)
}

pub fn check(g: &GlobalArgs, a: &CheckArgs) -> Result<u8> {
    let targets = if a.all {
        if !a.targets.is_empty() {
            return Err(Error::input("check: give targets or --all, not both"));
        }
        super::live::all_targets(g)?
    } else {
        a.targets.clone()
    };
    if targets.is_empty() {
        return Err(Error::input(
            "check: name at least one target, or use --all",
        ));
    }
    let reports = run_targets(g, &targets, &a.run)?;
    emit(g, &reports)
}

/// Render reports to stdout and return the exit code of their overall verdict.
pub(crate) fn emit(g: &GlobalArgs, reports: &[Report]) -> Result<u8> {
    let style = Style {
        color: report::stdout_color(g.no_color),
    };
    let mut out = Vec::new();
    report::render_many(reports, g.format, style, &mut out)
        .map_err(|e| Error::tool(format!("rendering the report: {e}")))?;
    // Guest answers, agent messages and replayed files reach the terminal only escaped.
    super::print_stdout(&String::from_utf8_lossy(&out), g.format, style.color)?;
    Ok(report::overall(reports).exit_code())
}

/// Trace each target (live, or from a saved run), honouring --wait and --save-run.
pub(crate) fn run_targets(
    g: &GlobalArgs,
    targets: &[String],
    run: &RunArgs,
) -> Result<Vec<Report>> {
    if let Some(file) = &run.replay {
        return replay(file, targets);
    }
    let wait = run.wait.as_deref().map(parse_duration).transpose()?;
    let interval = parse_duration(&run.interval)?;
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
            if let Some(file) = &run.save_run {
                // A run that cannot be saved still has a verdict: print it, say why saving
                // failed, and keep the exit code of the trace.
                if let Err(e) = save(file, saved, run.force) {
                    let _ = writeln!(
                        std::io::stderr(),
                        "phoenix-doctor: the run was NOT saved: {}",
                        crate::fsutil::escape_terminal_line(&e.to_string())
                    );
                }
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
            return Ok(reports);
        }
        std::thread::sleep(interval.min(Duration::from_secs(3600)));
    }
}

fn save(file: &std::path::Path, runs: Vec<SavedRun>, force: bool) -> Result<()> {
    let doc = SavedRuns {
        schema_version: RUN_SCHEMA_VERSION,
        runs,
    };
    let text = serde_json::to_string_pretty(&doc)
        .map_err(|e| Error::tool(format!("encoding the run: {e}")))?;
    let existing = if force {
        Existing::Replace
    } else {
        Existing::Refuse
    };
    write_atomic(file, text.as_bytes(), existing, 0o600).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AlreadyExists && !force {
            " (--force replaces an existing regular file)"
        } else {
            ""
        };
        Error::tool(format!("writing {}: {e}{hint}", file.display()))
    })
}

/// Re-diagnose saved observations, with no network and no configs.
pub(crate) fn replay(file: &std::path::Path, targets: &[String]) -> Result<Vec<Report>> {
    let text = read_bounded_string(file, FileKind::SavedRun)
        .map_err(|e| Error::input(format!("cannot read the saved run {e}")))?;
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
    let mut reports = Vec::new();
    for t in targets {
        let Some(s) = doc.runs.iter().find(|s| &s.plan.target == t) else {
            let known: Vec<&str> = doc.runs.iter().map(|s| s.plan.target.as_str()).collect();
            return Err(Error::input(format!(
                "{}: no saved run for `{t}` (it holds: {})",
                file.display(),
                known.join(", ")
            )));
        };
        reports.push(diagnose::diagnose(&s.plan, &s.run, &s.static_findings));
    }
    Ok(reports)
}

pub fn explain(_g: &GlobalArgs, a: &ExplainArgs) -> Result<u8> {
    let mut out = std::io::stdout().lock();
    let w = |out: &mut std::io::StdoutLock, s: String| -> Result<()> {
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
