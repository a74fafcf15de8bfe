//! `trace`, `check`, `explain`: plan → execute → diagnose → render.

use crate::cli::{
    BaselineWriteArgs, CheckArgs, ExplainArgs, Format, GlobalArgs, RunArgs, TraceArgs,
};
use phoenix_doctor::diagnose::{self, catalog, Overall, Report};
use phoenix_doctor::engine::{Run, SavedRun, SavedRuns, RUN_SCHEMA_VERSION};
use phoenix_doctor::error::{Error, Result};
use phoenix_doctor::fsutil::{read_bounded_string, write_atomic, Existing, FileKind};
use phoenix_doctor::report::{self, Style};
use std::io::Write;
use std::time::Instant;

/// Diagnosed reports and the runs they come from (same order).
pub(crate) struct Traced {
    pub reports: Vec<Report>,
    pub runs: Vec<Run>,
}

/// The `--baseline` file, when one was given.
fn baseline_of(
    file: Option<&std::path::Path>,
) -> Result<Option<phoenix_doctor::baseline::Baseline>> {
    file.map(super::load_baseline).transpose()
}

pub fn trace(g: &GlobalArgs, a: &TraceArgs) -> Result<u8> {
    let baseline = baseline_of(a.baseline.as_deref())?;
    let traced = run_targets_with(
        g,
        std::slice::from_ref(&a.target),
        &a.run,
        baseline.as_ref(),
    )?;
    let code = emit(g, &traced)?;
    finish(g, &traced.reports, code)
}

/// After the report: the baseline's lines under a table; returns `code`.
fn finish(g: &GlobalArgs, reports: &[Report], code: u8) -> Result<u8> {
    let summary = reports.first().and_then(|r| r.baseline.as_ref());
    if let (Some(s), Format::Table) = (summary, g.format) {
        super::print(&format!("\n{}", phoenix_doctor::baseline::summary_lines(s)))?;
    }
    Ok(code)
}

pub fn check(g: &GlobalArgs, a: &CheckArgs) -> Result<u8> {
    let baseline = baseline_of(a.baseline.as_deref())?;
    let targets = targets_of(g, "check", &a.run, &a.targets, a.all)?;
    let traced = run_targets_with(g, &targets, &a.run, baseline.as_ref())?;
    let code = emit(g, &traced)?;
    finish(g, &traced.reports, code)
}

/// The targets named, or every target with `--all`; none (every saved target) when a saved run
/// is replayed with no target named, so no config is read.
fn targets_of(
    g: &GlobalArgs,
    cmd: &str,
    run: &RunArgs,
    named: &[String],
    all: bool,
) -> Result<Vec<String>> {
    if run.replay.is_some() && named.is_empty() {
        return Ok(Vec::new());
    }
    let targets = if all {
        if !named.is_empty() {
            return Err(Error::input(format!(
                "{cmd}: give targets or --all, not both"
            )));
        }
        super::live::all_targets(g)?
    } else {
        named.to_vec()
    };
    if targets.is_empty() {
        return Err(Error::input(format!(
            "{cmd}: name at least one target, or use --all"
        )));
    }
    Ok(targets)
}

/// `baseline write FILE`: trace the targets, lint the configs, and write every error found as
/// an accepted entry (sorted, stable; an existing FILE only with `--force`).
pub fn baseline_write(g: &GlobalArgs, a: &BaselineWriteArgs) -> Result<u8> {
    use phoenix_doctor::fsutil::{write_atomic, Existing};
    if !a.run.force && std::fs::symlink_metadata(&a.file).is_ok() {
        return Err(Error::input(format!(
            "{} already exists; use --force to replace it",
            a.file.display()
        )));
    }
    let targets = targets_of(g, "baseline write", &a.run, &a.targets, a.all)?;
    let traced = run_targets(g, &targets, &a.run)?;
    let mut found: Vec<(phoenix_doctor::finding::Finding, String)> = Vec::new();
    for r in &traced.reports {
        found.extend(r.findings.iter().map(|f| (f.clone(), r.target.clone())));
    }
    if a.run.replay.is_none() {
        let m = super::inspect::load_model(g)?;
        found.extend(
            phoenix_doctor::lint::run(&m)
                .into_iter()
                .map(|f| (f, String::new())),
        );
    }
    let text = phoenix_doctor::baseline::render(&found);
    let existing = if a.run.force {
        Existing::Replace
    } else {
        Existing::Refuse
    };
    write_atomic(&a.file, text.as_bytes(), existing, 0o644)
        .map_err(|e| Error::input(format!("baseline write: {}: {e}", a.file.display())))?;
    let entries = text.matches("[[accept]]").count();
    eprintln!(
        "phoenix-doctor: wrote {entries} accepted finding{} to {} (review each reason)",
        if entries == 1 { "" } else { "s" },
        a.file.display()
    );
    Ok(phoenix_doctor::error::exit::HEALTHY)
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
        width: Some(report::output_width()),
    };
    let mut out = Vec::new();
    report::render_runs(reports, &traced.runs, g.format.into(), style, &mut out)
        .map_err(|e| Error::tool(format!("rendering the report: {e}")))?;
    // Guest answers, agent messages and replayed files reach the terminal only escaped.
    super::print_stdout(&String::from_utf8_lossy(&out), g.format, style.color)?;
    if g.format == Format::Nagios {
        return Ok(report::nagios::state(reports).exit_code());
    }
    Ok(report::overall(reports).exit_code())
}

/// Trace each target (live, or from a saved run), honouring --wait and --save-run.
pub(crate) fn run_targets(g: &GlobalArgs, targets: &[String], run: &RunArgs) -> Result<Traced> {
    run_targets_with(g, targets, run, None)
}

/// [`run_targets`] with a baseline applied to every attempt (so `--wait` stops once only
/// accepted findings remain).
fn run_targets_with(
    g: &GlobalArgs,
    targets: &[String],
    run: &RunArgs,
    baseline: Option<&phoenix_doctor::baseline::Baseline>,
) -> Result<Traced> {
    let accept = |reports: &mut Vec<Report>| {
        if let Some(b) = baseline {
            phoenix_doctor::baseline::apply_reports(
                reports,
                b,
                phoenix_doctor::baseline::Day::today(),
            );
        }
    };
    if let Some(file) = &run.replay {
        let mut traced = replay(file, targets)?;
        accept(&mut traced.reports);
        return Ok(traced);
    }
    let wait = run.wait;
    let interval = run.interval;
    let started = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let (mut saved, statics, vantages) = super::live::execute(g, targets, run)?;
        let mut reports: Vec<Report> = saved
            .iter()
            .map(|s| {
                let mut r = diagnose::diagnose(&s.plan, &s.run, &statics);
                diagnose::facts::annotate(&mut r, &s.plan, &s.facts);
                r.attempts = attempts;
                r
            })
            .collect();
        super::drift::upstream_causes(g, run, &saved, &mut reports, vantages)?;
        accept(&mut reports);
        let healthy = report::overall(&reports) == Overall::Healthy;
        let out_of_time = match wait {
            None => true,
            Some(w) => started.elapsed() + interval >= w,
        };
        if healthy || out_of_time {
            let runs = saved.iter().map(|s| s.run.clone()).collect();
            if let Some(file) = &run.save_run {
                for s in &mut saved {
                    s.static_findings = statics.clone();
                }
                // A run that cannot be saved still has a verdict: print it, say why saving
                // failed, and keep the exit code of the trace.
                if let Err(e) = save(file, saved, run.force) {
                    let _ = writeln!(
                        std::io::stderr(),
                        "phoenix-doctor: the run was NOT saved: {}",
                        phoenix_doctor::fsutil::escape_terminal_line(&e.to_string())
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
            return Ok(Traced { reports, runs });
        }
        std::thread::sleep(interval);
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

/// Re-diagnose saved observations, with no network and no configs: the named targets, or every
/// saved target when none is named.
pub(crate) fn replay(file: &std::path::Path, targets: &[String]) -> Result<Traced> {
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
        let mut r = diagnose::diagnose(&s.plan, &s.run, &s.static_findings);
        diagnose::facts::annotate(&mut r, &s.plan, &s.facts);
        traced.reports.push(r);
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
        .chain(phoenix_doctor::lint::catalog())
        .chain(phoenix_doctor::deployed::catalog::DRIFT)
        .copied()
        .collect()
}
