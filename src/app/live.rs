//! Building and executing live plans from the configs (shared by trace, check and demo).

use crate::cli::{GlobalArgs, RunArgs, VantageOverride};
use phoenix_doctor::diagnose::catalog::CodeInfo;
use phoenix_doctor::diagnose::facts::{self, GuestFacts};
use phoenix_doctor::diagnose::Report;
use phoenix_doctor::engine::{self, Run, SavedRun, Scope, Settings};
use phoenix_doctor::error::{Error, Result};
use phoenix_doctor::finding::Finding;
use phoenix_doctor::model::{self, Intended};
use phoenix_doctor::plan::{self, Plan, TraceDef};
use phoenix_doctor::vantage::{cluster, site_simulated, VantageOptions, Vantages};
use std::sync::Arc;

/// The intended state and the trace definitions for this invocation.
pub(crate) struct Context {
    pub model: Intended,
    pub defs: Vec<TraceDef>,
}

impl Context {
    pub(crate) fn load(g: &GlobalArgs) -> Result<Context> {
        let model = model::load(&g.config_dir, g.stacks_dir.as_deref())?;
        let defs = plan::load_defs(g.probes.as_deref())?;
        Ok(Context { model, defs })
    }
}

/// Every target `check --all` traces.
pub(crate) fn all_targets(g: &GlobalArgs) -> Result<Vec<String>> {
    let ctx = Context::load(g)?;
    Ok(plan::targets(&ctx.model, &ctx.defs))
}

/// The scope: `--scope` values, or the platform's subnets plus loopback.
pub(crate) fn scope(run: &RunArgs, m: &Intended) -> Scope {
    if run.scope.is_empty() {
        let (scope, notes) = Scope::platform(&m.subnets);
        for n in notes {
            eprintln!("phoenix-doctor: note: {n}");
        }
        return scope;
    }
    Scope {
        allowed: run.scope.clone(),
    }
}

/// The vantages of `--vantage`, `--via`, `--agent-path` and `--push`, and the site file's
/// simulated vantages in `config_dir`.
pub(crate) fn vantages(run: &RunArgs, config_dir: &std::path::Path) -> Result<Vantages> {
    if run.push && !run.agent_path.starts_with('/') {
        return Err(Error::input(format!(
            "--push needs an absolute --agent-path inside the guests (found `{}`), e.g. --agent-path /usr/local/bin/phoenix-doctor",
            run.agent_path
        )));
    }
    let (site, roots) = site_simulated(config_dir)?;
    Ok(Vantages::new(VantageOptions {
        via: run.via.iter().cloned().collect(),
        force_host: run.vantage == Some(VantageOverride::Host),
        agent_path: run.agent_path.clone(),
        push: run.push,
        self_exe: None,
        site,
        roots,
        cluster: None,
    }))
}

/// How the engine runs a live plan: `--concurrency`, `--timeout`, `--budget`, `--scope` and the
/// vantages of `--vantage`/`--via`.
pub(crate) fn settings(g: &GlobalArgs, run: &RunArgs, m: &Intended) -> Result<Settings> {
    settings_for(run, m, Arc::new(vantages(run, &g.config_dir)?))
}

/// The engine's settings for `run`, steps entering guests through `vantages`.
pub(crate) fn settings_for(
    run: &RunArgs,
    m: &Intended,
    vantages: Arc<Vantages>,
) -> Result<Settings> {
    Ok(Settings {
        concurrency: run.concurrency.max(1),
        timeout: run.timeout,
        budget: run.budget,
        scope: scope(run, m),
        runner: vantages,
        warn_days: run.warn_days,
        ..Settings::default()
    })
}

/// A live run of one or more targets: the saved runs (plan, observations, guest facts), the
/// static findings (once for the run) and the intended state they were held against.
pub(crate) struct Executed {
    pub saved: Vec<SavedRun>,
    pub statics: Vec<Finding>,
    pub model: Intended,
}

/// Plan every target and execute them together, each distinct step once. The static findings
/// come once for the run (each `SavedRun` leaves its own list empty: fill it to save).
pub(crate) fn execute(g: &GlobalArgs, targets: &[String], run: &RunArgs) -> Result<Executed> {
    let ctx = Context::load(g)?;
    let plans = plan::build_many(&ctx.model, &ctx.defs, targets)?;
    let rt = super::runtime()?;
    let vantages = vantages(run, &g.config_dir)?;
    let vantages = rt.block_on(placed(vantages, &plans, &ctx.model, run.budget));
    let settings = settings_for(run, &ctx.model, vantages.clone())?;
    let cache = engine::StepCache::new(&plans);
    let bar = progress_bar(cache.plan.steps.len() as u64);
    let settings = match &bar {
        Some(b) => {
            let b = b.clone();
            Settings {
                progress: Some(Arc::new(move |_o| b.inc(1))),
                ..settings
            }
        }
        None => settings,
    };
    // All targets in one engine run: shared steps are probed once, each guest gets one call.
    let (merged, facts) = rt.block_on(execute_with_facts(
        &cache.plan,
        &ctx.model,
        &vantages,
        &settings,
    ));
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let saved = plans
        .into_iter()
        .enumerate()
        .map(|(p, plan)| SavedRun {
            run: cache.run_of(p, &plan, &merged),
            plan,
            static_findings: Vec::new(),
            facts: facts.clone(),
        })
        .collect();
    Ok(Executed {
        saved,
        statics: static_findings(&ctx.model),
        model: ctx.model,
    })
}

/// `vantages` placed in the cluster when a step of `plans` enters a guest through a transport.
pub(crate) async fn placed(
    vantages: Vantages,
    plans: &[Plan],
    m: &Intended,
    budget: std::time::Duration,
) -> Arc<Vantages> {
    if !vantages.needs_placement(plans.iter().flat_map(|p| p.steps.iter().map(|s| s.from))) {
        return Arc::new(vantages);
    }
    let cluster = cluster::discover(budget).await;
    if let Some(note) = cluster.as_ref().and_then(|c| gateway_note(c, m)) {
        eprintln!("phoenix-doctor: note: {note}");
    }
    Arc::new(vantages.with_cluster(cluster))
}

/// Execute `plan` through `vantages` and gather the guest facts its failures need (socket
/// tables, certificate files, the proxies' configs): the files ride along with each guest's
/// steps, so a guest costs one call per run; a guest without steps is read once, and only when
/// a failure needs it. The facts are put into the observations before diagnosis.
pub(crate) async fn execute_with_facts(
    plan: &Plan,
    m: &Intended,
    vantages: &Vantages,
    settings: &Settings,
) -> (Run, GuestFacts) {
    let (mut facts, reads) = facts::plan_reads(plan, m);
    for (v, paths) in &reads {
        vantages.attach_reads(*v, paths);
    }
    let mut run = engine::execute(plan, settings).await;
    let need = facts::needed(plan, &run, &facts, &reads);
    facts::gather(vantages, &need, &mut facts).await;
    facts::enrich(plan, &mut run, &facts);
    (run, facts)
}

/// Diagnose the runs of `ex` (one report each, same order) with everything the live run
/// gathered: the guest facts as evidence, a static finding the run refutes as not live yet, and
/// at a proxy's error the drifted upstream (`--deployed DIR`, else the files read in the run).
pub(crate) fn diagnose(ex: &Executed, run: &RunArgs) -> Result<Vec<Report>> {
    let mut reports: Vec<Report> = ex
        .saved
        .iter()
        .map(|s| {
            let mut r = phoenix_doctor::diagnose::diagnose(&s.plan, &s.run, &ex.statics);
            facts::annotate(&mut r, &s.plan, &s.facts);
            r
        })
        .collect();
    super::drift::upstream_causes(&ex.model, run, &ex.saved, &mut reports)?;
    Ok(reports)
}

/// The host-side hops are probed from the node the tool runs on: when the cluster shows the
/// gateway LXC on another node, say which node carries its traffic.
fn gateway_note(c: &cluster::Cluster, m: &Intended) -> Option<String> {
    let gw = phoenix_doctor::plan::VantageRef::Lxc(m.gateway.as_ref()?.lxc);
    let node = c.node_of(gw)?;
    (node != c.local).then(|| {
        format!(
            "the gateway {gw} runs on node {node}, not on this node ({}): host-side hops are probed from here; run phoenix-doctor on {node} to probe them from the node that carries the gateway's traffic (docs/cli.md, \"Clusters\")",
            c.local
        )
    })
}

/// A progress bar on stderr when it is a terminal and the run is more than a handful of steps.
fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if total < 8 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} probing {pos}/{len} steps {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

/// Static findings from the configs (shown beside the live hops they bear on).
pub(crate) fn static_findings(m: &Intended) -> Vec<Finding> {
    phoenix_doctor::lint::run(m)
}

/// The catalogue behind `explain`.
pub(crate) fn catalogue() -> Vec<CodeInfo> {
    super::trace::all_codes()
}
