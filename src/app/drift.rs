//! `drift`: the deployed artefacts against what the platform's generators would write from the
//! configs now, rendered like `check` (table, JSON, and the report formats).

use crate::cli::{DriftArgs, Format, GlobalArgs};
use phoenix_doctor::deployed::{self, compare::Ctx, DirSource, DriftReport, FileSource};
use phoenix_doctor::diagnose::{Overall, Report, Verdict};
use phoenix_doctor::error::{Error, Result};
use phoenix_doctor::finding::Severity;
use phoenix_doctor::report;
use tabled::builder::Builder;

/// The JSON document `drift --format json` prints.
#[derive(serde::Serialize)]
struct DriftJson<'a> {
    schema_version: u32,
    verdict: &'static str,
    #[serde(flatten)]
    report: &'a DriftReport,
}

/// The file source `drift` reads from.
pub(crate) fn source(deployed: Option<&std::path::Path>) -> Result<Box<dyn FileSource>> {
    match deployed {
        Some(d) if d.is_dir() => Ok(Box::new(DirSource {
            root: d.to_path_buf(),
        })),
        Some(d) => Err(Error::input(format!(
            "--deployed {}: not a directory (expected DIR/host/etc/..., DIR/lxc-<id>/etc/...)",
            d.display()
        ))),
        None => Err(Error::input(
            "drift: give --deployed DIR, an operator's copy of the deployed files (docs/cli.md, drift)",
        )),
    }
}

/// With `--deployed`: name the drifted upstream behind each proxy error of `reports` (one per
/// saved run, same order).
pub(crate) fn upstream_causes(
    g: &GlobalArgs,
    run: &crate::cli::RunArgs,
    saved: &[phoenix_doctor::engine::SavedRun],
    reports: &mut [Report],
) -> Result<()> {
    let Some(dir) = run.deployed.as_deref() else {
        return Ok(());
    };
    let src = source(Some(dir))?;
    let m = super::inspect::load_model(g)?;
    let up = phoenix_doctor::diagnose::upstream::Upstreams::read(&m, src.as_ref());
    for (s, r) in saved.iter().zip(reports.iter_mut()) {
        phoenix_doctor::diagnose::upstream::explain(r, &s.plan, &m, &up);
    }
    Ok(())
}

pub fn drift(g: &GlobalArgs, a: &DriftArgs) -> Result<u8> {
    let m = super::inspect::load_model(g)?;
    let src = source(a.deployed.as_deref())?;
    let r = deployed::drift(&m, src.as_ref(), &Ctx::for_config(&m));
    let text = render(&r, g.format, report::output_width())?;
    super::print_stdout(&text, g.format, false)?;
    Ok(r.verdict().exit_code())
}

/// Render a drift report in `format` (the table fitted to `width`).
pub fn render(r: &DriftReport, format: Format, width: usize) -> Result<String> {
    match format {
        Format::Table => Ok(table(r, width)),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&DriftJson {
                schema_version: 1,
                verdict: r.verdict().as_str(),
                report: r,
            })
            .map_err(|e| Error::tool(format!("encoding JSON: {e}")))?;
            s.push('\n');
            Ok(s)
        }
        other => {
            let mut buf = Vec::new();
            report::render(
                &as_report(r),
                other.into(),
                report::Style::default(),
                &mut buf,
            )
            .map_err(|e| Error::tool(format!("rendering {}: {e}", other.name())))?;
            Ok(String::from_utf8_lossy(&buf).into_owned())
        }
    }
}

fn table(r: &DriftReport, width: usize) -> String {
    let drifts = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let mut out = format!(
        "drift: {}  ({drifts} drift{}, files from {})\n",
        match r.verdict() {
            Overall::Healthy => "NO DRIFT",
            Overall::Diverged => "DRIFT",
            Overall::CannotJudge => "CANNOT JUDGE",
        },
        if drifts == 1 { "" } else { "s" },
        r.source
    );
    if !r.findings.is_empty() {
        let mut b = Builder::default();
        b.push_record(["code", "finding", "config"]);
        for f in &r.findings {
            let mut text = format!(
                "{}\nexpected: {}\nactual: {}",
                f.title, f.expected, f.actual
            );
            for e in &f.evidence {
                text.push('\n');
                text.push_str(e);
            }
            let config = f
                .provenance
                .first()
                .map(report::provenance_cell)
                .unwrap_or_default();
            b.push_record([f.code.to_string(), text, config]);
        }
        out.push_str(&report::fit_table(b, width, &[0, 2]));
        out.push('\n');
    }
    for a in &r.artefacts {
        let mut line = format!("{} at {}: ", a.name, a.vantage);
        match &a.skipped {
            Some(why) => line.push_str(&format!("not compared: {why}")),
            None => line.push_str(&format!(
                "{} file{} read{}",
                a.files.len(),
                if a.files.len() == 1 { "" } else { "s" },
                if a.missing.is_empty() {
                    String::new()
                } else {
                    format!(", missing: {}", a.missing.join(", "))
                }
            )),
        }
        for u in &a.unreadable {
            line.push_str(&format!("; cannot read {}: {}", u.path, u.why));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("`phoenix-doctor explain CODE` describes each code\n");
    out
}

/// The drift findings as a report `check`'s renderers understand: lint's shape (one step per
/// finding) with target `drift`, where an unreadable file cannot be judged.
pub fn as_report(r: &DriftReport) -> Report {
    let findings: Vec<&phoenix_doctor::finding::Finding> = r.findings.iter().collect();
    let mut rep = super::lint_cmd::as_report(&findings);
    rep.target = "drift".to_string();
    for s in &mut rep.steps {
        s.from = "deployed".to_string();
        if s.code.as_deref() == Some(phoenix_doctor::deployed::catalog::UNREADABLE.as_str()) {
            s.verdict = Verdict::CannotJudge;
        }
    }
    rep.verdict = r.verdict();
    rep.findings = r.findings.clone();
    rep
}
