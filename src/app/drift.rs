//! `drift`: the deployed artefacts against what the platform's generators would write from the
//! configs now, rendered like `check` (table, JSON, and the report formats).

use crate::cli::{DriftArgs, Format, GlobalArgs, RunArgs};
use phoenix_doctor::deployed::{self, compare::Ctx, DirSource, DriftReport, FileRead, FileSource};
use phoenix_doctor::diagnose::{Overall, Report, Verdict};
use phoenix_doctor::error::{Error, Result};
use phoenix_doctor::finding::Severity;
use phoenix_doctor::observe::VantageRef;
use phoenix_doctor::report;
use phoenix_doctor::vantage::{self, Vantages};
use tabled::builder::Builder;

/// The JSON document `drift --format json` prints.
#[derive(serde::Serialize)]
struct DriftJson<'a> {
    schema_version: u32,
    verdict: &'static str,
    #[serde(flatten)]
    report: &'a DriftReport,
}

/// The guests' files, read through the vantages (the agent's transport, or here under a
/// simulated vantage's root), one call per guest and read.
struct LiveSource {
    vs: Vantages,
    rt: tokio::runtime::Runtime,
}

impl FileSource for LiveSource {
    fn read(&self, v: VantageRef, paths: &[String]) -> Vec<FileRead> {
        let got = self.rt.block_on(vantage::read_files(&self.vs, v, paths));
        got.into_iter()
            .filter_map(vantage::FileRead::into_deployed)
            .collect()
    }

    fn describe(&self) -> String {
        "the guests (read-only, through their vantages)".to_string()
    }
}

/// `--deployed DIR`: the operator's copy of the deployed files.
fn deployed_dir(d: &std::path::Path) -> Result<DirSource> {
    if !d.is_dir() {
        return Err(Error::input(format!(
            "--deployed {}: not a directory (expected DIR/host/etc/..., DIR/lxc-<id>/etc/...)",
            d.display()
        )));
    }
    Ok(DirSource {
        root: d.to_path_buf(),
    })
}

/// The file source of the run options: `--deployed DIR`, else the guests themselves.
/// `guests` are the vantages it will read (for their placement in a cluster).
pub(crate) fn source(
    g: &GlobalArgs,
    run: &RunArgs,
    guests: &[VantageRef],
) -> Result<Box<dyn FileSource>> {
    match run.deployed.as_deref() {
        Some(d) => Ok(Box::new(deployed_dir(d)?)),
        None => {
            let rt = super::runtime()?;
            let vs = super::live::vantages(run, &g.config_dir)?;
            let vs = if vs.needs_placement(guests.iter().copied()) {
                let cluster = rt.block_on(phoenix_doctor::vantage::cluster::discover(run.budget));
                vs.with_cluster(cluster)
            } else {
                vs
            };
            Ok(Box::new(LiveSource { vs, rt }))
        }
    }
}

/// At a proxy's error, name the drifted upstream behind it (reports: one per saved run, same
/// order), from `--deployed DIR` or else from the gateway's and Traefik's files the run read with
/// their guests' one call each (no second call, no second file source).
pub(crate) fn upstream_causes(
    m: &phoenix_doctor::model::Intended,
    run: &RunArgs,
    saved: &[phoenix_doctor::engine::SavedRun],
    reports: &mut [Report],
) -> Result<()> {
    use phoenix_doctor::diagnose::upstream;
    if !reports.iter().any(upstream::wanted) {
        return Ok(());
    }
    let dir = match run.deployed.as_deref() {
        Some(d) => Some(deployed_dir(d)?),
        None => None,
    };
    for (s, r) in saved.iter().zip(reports.iter_mut()) {
        if !upstream::wanted(r) {
            continue;
        }
        let read = upstream::RunSource { facts: &s.facts };
        let src: &dyn FileSource = match &dir {
            Some(d) => d,
            None => &read,
        };
        let up = upstream::Upstreams::read(m, src);
        upstream::explain(r, &s.plan, m, &up);
    }
    Ok(())
}

pub fn drift(g: &GlobalArgs, a: &DriftArgs) -> Result<u8> {
    let m = super::inspect::load_model(g)?;
    let guests: Vec<VantageRef> = std::iter::once(VantageRef::Host)
        .chain(m.gateway.iter().map(|x| VantageRef::Lxc(x.lxc)))
        .chain(m.router.iter().map(|x| VantageRef::Lxc(x.lxc)))
        .collect();
    let src = source(g, &a.run, &guests)?;
    let ctx = Ctx {
        warn_days: a.run.warn_days,
        ..Ctx::for_config(&m)
    };
    let r = deployed::drift(&m, src.as_ref(), &ctx);
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
                text.push_str(&e.to_string());
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
