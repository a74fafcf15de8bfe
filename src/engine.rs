//! Runs a plan: bounded concurrency, per-layer timeouts, one overall budget, dependency
//! skipping (a step whose prerequisite failed is `blocked`), the scope guard, batching of ready
//! steps per vantage through a [`Runner`], and progress events.

use crate::observe::{Observation, Outcome, VantageNote};
use crate::plan::{Plan, Step, VantageRef};
use crate::probe::{ProbeCtx, SystemFiles};
use crate::vantage::{Local, Runner};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// The networks the engine may send packets to. An empty scope allows nothing: callers always
/// set it (the CLI defaults to the platform's subnets plus 127.0.0.0/8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub allowed: Vec<IpNet>,
}

impl Scope {
    /// True when `ip` lies inside one of the allowed networks.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|n| n.contains(&ip))
    }

    /// The allowed networks as text (`127.0.0.0/8, 10.0.0.0/24`, or `nothing`).
    pub fn describe(&self) -> String {
        if self.allowed.is_empty() {
            return "nothing (empty scope)".into();
        }
        self.allowed
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Called once per finished observation (for a progress bar).
pub type Progress = Arc<dyn Fn(&Observation) + Send + Sync>;

/// How to run a plan.
#[derive(Clone)]
pub struct Settings {
    pub concurrency: usize,
    /// Timeout for each layer of each step.
    pub timeout: Duration,
    /// Overall budget for the whole run.
    pub budget: Duration,
    pub scope: Scope,
    /// Where steps run (default: all from this machine).
    pub runner: Arc<dyn Runner>,
    /// Called after each step finishes (including blocked and out-of-scope steps).
    pub progress: Option<Progress>,
    /// Hosts file and resolv.conf per vantage (default: this machine's `/etc` files).
    pub systems: BTreeMap<VantageRef, SystemFiles>,
    /// Bodies are read up to this many bytes.
    pub body_limit: usize,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("budget", &self.budget)
            .field("scope", &self.scope)
            .field("progress", &self.progress.is_some())
            .field("systems", &self.systems)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            concurrency: 64,
            timeout: Duration::from_secs(2),
            budget: Duration::from_secs(30),
            scope: Scope::default(),
            runner: Arc::new(Local),
            progress: None,
            systems: BTreeMap::new(),
            body_limit: 64 * 1024,
        }
    }
}

/// Everything one execution of a plan observed; saved with `--save-run`, replayed with `--replay`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub schema_version: u32,
    pub target: String,
    /// RFC 3339 start time.
    pub started_at: String,
    pub duration_ms: f64,
    /// One per plan step, in plan order.
    pub observations: Vec<Observation>,
}

/// Current version of the saved-run format.
pub const RUN_SCHEMA_VERSION: u32 = 1;

/// What `--save-run` writes and `--replay` reads: for each traced target, the plan, the
/// observations, and the static findings, so a replay needs neither the network nor the configs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRuns {
    pub schema_version: u32,
    pub runs: Vec<SavedRun>,
}

/// One target's saved run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRun {
    pub plan: Plan,
    pub run: Run,
    #[serde(default)]
    pub static_findings: Vec<crate::finding::Finding>,
}

fn note(step: &Step) -> VantageNote {
    VantageNote {
        name: step.from.to_string(),
        substituted: false,
        via: String::new(),
    }
}

/// The observation for a step whose target lies outside the scope (nothing is sent).
pub fn out_of_scope(step: &Step, scope: &Scope) -> Observation {
    let addr = step.probe.target_addr();
    Observation {
        step: step.id.clone(),
        outcome: Outcome::OutOfScope,
        phase: None,
        reason: Some("out-of-scope".into()),
        message: format!(
            "not sent: target {addr} is outside the allowed scope ({})",
            scope.describe()
        ),
        evidence: Default::default(),
        timings: Default::default(),
        vantage: note(step),
    }
}

fn budget_exhausted(step: &Step, budget: Duration) -> Observation {
    Observation {
        step: step.id.clone(),
        outcome: Outcome::TimedOut,
        phase: None,
        reason: Some("budget".into()),
        message: format!(
            "not finished within the run's budget of {} ms",
            budget.as_millis()
        ),
        evidence: Default::default(),
        timings: Default::default(),
        vantage: note(step),
    }
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Done,
}

/// Execute `plan`: every step yields exactly one observation, in plan order.
pub async fn execute(plan: &Plan, settings: &Settings) -> Run {
    let started_at = now_rfc3339();
    let t0 = Instant::now();
    let deadline = tokio::time::Instant::now() + settings.budget;
    let steps = &plan.steps;
    let n = steps.len();
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut state = vec![State::Pending; n];
    let mut results: Vec<Option<Observation>> = vec![None; n];
    let mut running = 0usize;
    let mut tasks: JoinSet<(Vec<usize>, Vec<Observation>)> = JoinSet::new();
    let mut task_steps: HashMap<tokio::task::Id, Vec<usize>> = HashMap::new();
    let cap = settings.concurrency.max(1);

    let finish = |i: usize,
                  o: Observation,
                  results: &mut Vec<Option<Observation>>,
                  state: &mut Vec<State>| {
        if let Some(p) = &settings.progress {
            p(&o);
        }
        results[i] = Some(o);
        state[i] = State::Done;
    };

    loop {
        // Settle every pending step whose prerequisites are done: blocked, out of scope, or ready.
        let mut ready: Vec<usize> = Vec::new();
        let mut changed = true;
        while changed {
            changed = false;
            ready.clear();
            for i in 0..n {
                if state[i] != State::Pending {
                    continue;
                }
                let step = &steps[i];
                let mut all_done = true;
                let mut failed_by: Option<String> = None;
                for d in &step.depends_on {
                    match index.get(d.as_str()) {
                        None => failed_by = Some(format!("{d} (not in the plan)")),
                        Some(&j) => match state[j] {
                            State::Done => {
                                let ok = results[j]
                                    .as_ref()
                                    .is_some_and(|o| o.outcome == Outcome::Ok);
                                if !ok && failed_by.is_none() {
                                    failed_by = Some(d.clone());
                                }
                            }
                            _ => all_done = false,
                        },
                    }
                }
                if !all_done {
                    continue;
                }
                if let Some(by) = failed_by {
                    let mut o = Observation::blocked(&step.id, &by);
                    o.vantage = note(step);
                    finish(i, o, &mut results, &mut state);
                    changed = true;
                } else if !settings.scope.allows(step.probe.target_addr().ip()) {
                    finish(
                        i,
                        out_of_scope(step, &settings.scope),
                        &mut results,
                        &mut state,
                    );
                    changed = true;
                } else {
                    ready.push(i);
                }
            }
        }
        // Start ready steps, batched per vantage, within the concurrency bound.
        let mut by_vantage: BTreeMap<VantageRef, Vec<usize>> = BTreeMap::new();
        for i in ready {
            if running >= cap {
                break;
            }
            by_vantage.entry(steps[i].from).or_default().push(i);
            state[i] = State::Running;
            running += 1;
        }
        for (v, idxs) in by_vantage {
            let batch: Vec<Step> = idxs.iter().map(|&i| steps[i].clone()).collect();
            let ctx = ProbeCtx {
                timeout: settings.timeout,
                body_limit: settings.body_limit,
                system: settings.systems.get(&v).cloned().unwrap_or_default(),
            };
            let runner = settings.runner.clone();
            let idxs2 = idxs.clone();
            let h = tasks.spawn(async move {
                let obs = runner.run(&batch, &ctx).await;
                (idxs2, obs)
            });
            task_steps.insert(h.id(), idxs);
        }
        if running == 0 {
            // Nothing runs and nothing could start: done, or a dependency cycle.
            for i in 0..n {
                if state[i] == State::Pending {
                    let mut o = Observation::blocked(&steps[i].id, "a cyclic prerequisite");
                    o.vantage = note(&steps[i]);
                    finish(i, o, &mut results, &mut state);
                }
            }
            break;
        }
        tokio::select! {
            joined = tasks.join_next_with_id() => {
                let Some(joined) = joined else { continue };
                let (idxs, obs) = match joined {
                    Ok((id, (idxs, obs))) => { task_steps.remove(&id); (idxs, obs) }
                    Err(e) => {
                        let idxs = task_steps.remove(&e.id()).unwrap_or_default();
                        (idxs, Vec::new())
                    }
                };
                let mut obs = obs.into_iter();
                for i in idxs {
                    running -= 1;
                    let step = &steps[i];
                    let mut o = obs.next().unwrap_or_else(|| {
                        Observation::tool_error(&step.id, "vantage", "the vantage returned no observation for this step")
                    });
                    o.step = step.id.clone();
                    if o.vantage.name.is_empty() {
                        o.vantage = note(step);
                    }
                    finish(i, o, &mut results, &mut state);
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                tasks.abort_all();
                for i in 0..n {
                    if state[i] != State::Done {
                        finish(i, budget_exhausted(&steps[i], settings.budget), &mut results, &mut state);
                    }
                }
                break;
            }
        }
    }
    Run {
        schema_version: RUN_SCHEMA_VERSION,
        target: plan.target.clone(),
        started_at,
        duration_ms: (t0.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        observations: results
            .into_iter()
            .zip(steps)
            .map(|(o, s)| {
                o.unwrap_or_else(|| Observation::tool_error(&s.id, "engine", "no observation"))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Layer;
    use crate::plan::ProbeSpec;
    use crate::vantage::BoxFuture;
    use std::sync::Mutex;

    /// A runner that sends nothing: each step's outcome is decided by its id.
    #[derive(Default)]
    struct Fake {
        batches: Mutex<Vec<Vec<String>>>,
    }

    impl Runner for Fake {
        fn run<'a>(
            &'a self,
            steps: &'a [Step],
            _ctx: &'a ProbeCtx,
        ) -> BoxFuture<'a, Vec<Observation>> {
            Box::pin(async move {
                self.batches.lock().unwrap().push(
                    steps
                        .iter()
                        .map(|s| format!("{}@{}", s.id, s.from))
                        .collect(),
                );
                let mut out = Vec::new();
                for s in steps {
                    if s.id.contains("slow") {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                    let mut o = Observation::tool_error(&s.id, "x", "fake");
                    o.outcome = if s.id.contains("bad") {
                        Outcome::Failed
                    } else {
                        Outcome::Ok
                    };
                    out.push(o);
                }
                out
            })
        }
    }

    fn st(id: &str, from: VantageRef, ip: &str, deps: &[&str]) -> Step {
        Step {
            id: id.into(),
            hop: "h".into(),
            from,
            to: "x".into(),
            layer: Layer::Tcp,
            probe: ProbeSpec::Tcp {
                addr: format!("{ip}:1").parse().unwrap(),
            },
            expect: String::new(),
            provenance: vec![],
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            through: vec![],
        }
    }

    fn settings(fake: Arc<Fake>) -> Settings {
        Settings {
            scope: Scope {
                allowed: vec!["127.0.0.0/24".parse().unwrap()],
            },
            runner: fake,
            ..Settings::default()
        }
    }

    fn plan(steps: Vec<Step>) -> Plan {
        Plan {
            target: "t".into(),
            hops: vec![],
            steps,
        }
    }

    #[tokio::test]
    async fn dependencies_scope_and_batches_per_vantage() {
        let fake = Arc::new(Fake::default());
        let lxc = VantageRef::Lxc(102);
        let p = plan(vec![
            st("a", VantageRef::Host, "127.0.0.1", &[]),
            st("b-bad", lxc, "127.0.0.2", &[]),
            st("c", lxc, "127.0.0.3", &["a"]),
            st("d", VantageRef::Host, "127.0.0.4", &["b-bad"]),
            st("e", VantageRef::Host, "127.0.0.5", &["d"]),
            st("f", VantageRef::Host, "127.0.1.1", &[]),
            st("g", VantageRef::Host, "127.0.0.7", &["f"]),
        ]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let mut s = settings(fake.clone());
        s.progress = Some(Arc::new(move |o: &Observation| {
            seen2.lock().unwrap().push(o.step.clone())
        }));
        let run = execute(&p, &s).await;
        let by: Vec<(&str, Outcome)> = run
            .observations
            .iter()
            .map(|o| (o.step.as_str(), o.outcome))
            .collect();
        assert_eq!(
            by,
            vec![
                ("a", Outcome::Ok),
                ("b-bad", Outcome::Failed),
                ("c", Outcome::Ok),
                ("d", Outcome::Blocked),
                ("e", Outcome::Blocked),
                ("f", Outcome::OutOfScope),
                ("g", Outcome::Blocked),
            ]
        );
        assert!(run.observations[3].message.contains("b-bad"));
        assert!(run.observations[5].message.contains("127.0.1.1:1"));
        assert!(run.observations[5].message.contains("127.0.0.0/24"));
        // out-of-scope and blocked steps never reach the runner; each batch shares one vantage
        let batches = fake.batches.lock().unwrap().clone();
        let all: Vec<String> = batches.iter().flatten().cloned().collect();
        assert_eq!(all.len(), 3, "{batches:?}");
        for b in &batches {
            let v: std::collections::BTreeSet<&str> =
                b.iter().map(|s| s.split('@').nth(1).unwrap()).collect();
            assert_eq!(v.len(), 1, "{batches:?}");
        }
        assert_eq!(seen.lock().unwrap().len(), 7);
        assert!(!run.started_at.is_empty() && run.started_at.contains('T'));
    }

    #[tokio::test]
    async fn the_budget_ends_unfinished_steps() {
        let fake = Arc::new(Fake::default());
        let p = plan(vec![
            st("fast", VantageRef::Host, "127.0.0.1", &[]),
            st("slow", VantageRef::Lxc(1), "127.0.0.2", &[]),
            st("after-slow", VantageRef::Host, "127.0.0.3", &["slow"]),
        ]);
        let mut s = settings(fake);
        s.budget = Duration::from_millis(200);
        let run = execute(&p, &s).await;
        let r: Vec<(Outcome, Option<&str>)> = run
            .observations
            .iter()
            .map(|o| (o.outcome, o.reason.as_deref()))
            .collect();
        assert_eq!(r[0].0, Outcome::Ok);
        assert_eq!(r[1], (Outcome::TimedOut, Some("budget")));
        assert_eq!(r[2], (Outcome::TimedOut, Some("budget")));
    }

    #[tokio::test]
    async fn an_empty_scope_allows_nothing_and_cycles_are_blocked() {
        let fake = Arc::new(Fake::default());
        let p = plan(vec![
            st("x", VantageRef::Host, "127.0.0.1", &["y"]),
            st("y", VantageRef::Host, "127.0.0.1", &["x"]),
            st("z", VantageRef::Host, "127.0.0.1", &[]),
        ]);
        let mut s = settings(fake.clone());
        s.scope = Scope::default();
        let run = execute(&p, &s).await;
        let r: Vec<Outcome> = run.observations.iter().map(|o| o.outcome).collect();
        assert_eq!(
            r,
            vec![Outcome::Blocked, Outcome::Blocked, Outcome::OutOfScope]
        );
        assert!(fake.batches.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn concurrency_bound_limits_batch_sizes() {
        let fake = Arc::new(Fake::default());
        let steps: Vec<Step> = (0..10)
            .map(|i| st(&format!("s{i}"), VantageRef::Host, "127.0.0.1", &[]))
            .collect();
        let mut s = settings(fake.clone());
        s.concurrency = 3;
        let run = execute(&plan(steps), &s).await;
        assert!(run.observations.iter().all(|o| o.outcome == Outcome::Ok));
        let batches = fake.batches.lock().unwrap().clone();
        assert!(batches.iter().all(|b| b.len() <= 3), "{batches:?}");
        assert_eq!(batches.iter().map(|b| b.len()).sum::<usize>(), 10);
    }
}
