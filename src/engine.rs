//! Runs a plan: bounded concurrency, per-layer timeouts, one overall budget, dependency
//! skipping (a step whose prerequisite failed is `blocked`), the scope guard, batching of ready
//! steps per vantage through a [`Runner`] (one by one where that costs nothing, so results
//! stream), the step cache that runs several plans as one, and progress events.

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
/// set it (the CLI defaults to the platform's subnets plus 127.0.0.0/8). IPv4-mapped IPv6
/// addresses (`::ffff:8.8.8.8`) are checked as the IPv4 address they reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub allowed: Vec<IpNet>,
}

pub use crate::model::{MIN_SCOPE_PREFIX_V4, MIN_SCOPE_PREFIX_V6};

/// `::ffff:a.b.c.d` is `a.b.c.d`.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// `::ffff:a.b.c.d/104` is `a.b.c.d/8`; other networks stay as they are.
fn canonical_net(n: &IpNet) -> IpNet {
    match n {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(a) => ipnet::Ipv4Net::new(a, v6.prefix_len() - 96)
                .map(IpNet::V4)
                .unwrap_or(*n),
            None => *n,
        },
        other => *other,
    }
}

impl Scope {
    /// True when `ip` lies inside one of the allowed networks.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.allowed.iter().any(|n| canonical_net(n).contains(&ip))
    }

    /// The default scope: the platform's subnets (those at least /16 for IPv4, /48 for IPv6)
    /// plus 127.0.0.0/8. Returns the scope and one note per subnet left out: a subnet as wide
    /// as `0.0.0.0/0` in a config is a mistake, not permission to probe everything.
    pub fn platform(subnets: &[IpNet]) -> (Scope, Vec<String>) {
        let mut allowed = Vec::new();
        let mut notes = Vec::new();
        for n in subnets {
            let min = match n {
                IpNet::V4(_) => MIN_SCOPE_PREFIX_V4,
                IpNet::V6(_) => MIN_SCOPE_PREFIX_V6,
            };
            if n.prefix_len() < min {
                notes.push(format!(
                    "the platform subnet {n} (from `network.default_subnet` or the host's address in etc/phoenix_hypervisor_config.json) is shorter than /{min}: it is not used as a scope; pass --scope to probe outside 127.0.0.0/8"
                ));
            } else {
                allowed.push(*n);
            }
        }
        allowed.push("127.0.0.0/8".parse().expect("literal CIDR"));
        (Scope { allowed }, notes)
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
    /// Outcomes of prerequisites that ran elsewhere (an agent's job: the steps of other
    /// vantages its steps depend on). Empty for a whole plan.
    pub prior: BTreeMap<String, Outcome>,
    /// `--warn-days`: a served leaf's remaining life that is close to expiry.
    pub warn_days: u32,
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
            .field("prior", &self.prior)
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
            prior: BTreeMap::new(),
            warn_days: crate::probe::tls::DEFAULT_WARN_DAYS,
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
    /// What was read from the guests for this run (`diagnose::facts`), for the evidence lines
    /// a replay shows again.
    #[serde(
        default,
        skip_serializing_if = "crate::diagnose::facts::GuestFacts::is_empty"
    )]
    pub facts: crate::diagnose::facts::GuestFacts,
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
        reason: Some(crate::observe::Reason::OutOfScope),
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
        reason: Some(crate::observe::Reason::Budget),
        message: format!(
            "cannot judge: not finished within the run's budget (--budget {} ms)",
            budget.as_millis()
        ),
        evidence: Default::default(),
        timings: Default::default(),
        vantage: note(step),
    }
}

pub fn now_rfc3339() -> String {
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

/// Where a step stands with its prerequisites.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Prereqs {
    /// One is still pending or running.
    Waiting,
    /// This one failed (or is unknown): the step is blocked.
    Failed(String),
    /// All done and ok.
    Met,
}

/// The dependency state of a plan's steps. The same logic decides for a whole plan here and
/// for a job inside an agent (where prerequisites at other vantages arrive as `prior`).
struct Deps<'a> {
    steps: &'a [Step],
    index: HashMap<&'a str, usize>,
    prior: &'a BTreeMap<String, Outcome>,
    state: Vec<State>,
    results: Vec<Option<Observation>>,
}

impl<'a> Deps<'a> {
    fn new(steps: &'a [Step], prior: &'a BTreeMap<String, Outcome>) -> Deps<'a> {
        Deps {
            steps,
            index: steps
                .iter()
                .enumerate()
                .map(|(i, s)| (s.id.as_str(), i))
                .collect(),
            prior,
            state: vec![State::Pending; steps.len()],
            results: vec![None; steps.len()],
        }
    }

    /// The outcome of prerequisite `d`, once known (`Err`: it is neither in the plan nor prior).
    fn outcome(&self, d: &str) -> std::result::Result<Option<Outcome>, ()> {
        match self.index.get(d) {
            Some(&j) => Ok(match self.state[j] {
                State::Done => Some(
                    self.results[j]
                        .as_ref()
                        .map_or(Outcome::ToolError, |o| o.outcome),
                ),
                _ => None,
            }),
            None => self.prior.get(d).map(|o| Some(*o)).ok_or(()),
        }
    }

    /// Step `i`'s prerequisites, except those for which `skip` holds (they run with it).
    fn prereqs(&self, i: usize, skip: impl Fn(usize) -> bool) -> Prereqs {
        let mut waiting = false;
        let mut failed_by: Option<String> = None;
        for d in &self.steps[i].depends_on {
            if self.index.get(d.as_str()).is_some_and(|&j| skip(j)) {
                continue;
            }
            match self.outcome(d) {
                Err(()) => {
                    failed_by.get_or_insert_with(|| format!("{d} (not in the plan)"));
                }
                Ok(None) => waiting = true,
                Ok(Some(Outcome::Ok)) => {}
                Ok(Some(_)) => {
                    failed_by.get_or_insert_with(|| d.clone());
                }
            }
        }
        match (waiting, failed_by) {
            (true, _) => Prereqs::Waiting,
            (false, Some(by)) => Prereqs::Failed(by),
            (false, None) => Prereqs::Met,
        }
    }

    /// The outcomes of step `i`'s finished prerequisites (what a job needs to know).
    fn known(&self, idxs: &[usize]) -> BTreeMap<String, Outcome> {
        idxs.iter()
            .flat_map(|&i| &self.steps[i].depends_on)
            .filter_map(|d| match self.outcome(d) {
                Ok(Some(o)) if !idxs.iter().any(|&i| self.steps[i].id == *d) => {
                    Some((d.clone(), o))
                }
                _ => None,
            })
            .collect()
    }
}

/// What a finished task hands back: the indexes of its steps and their observations.
type TaskOutput = (Vec<usize>, Vec<Observation>);

/// One run of a plan in progress: the dependency state, the tasks in flight, and which steps
/// go to their vantage in one call.
struct Execution<'a> {
    steps: &'a [Step],
    settings: &'a Settings,
    deadline: tokio::time::Instant,
    deps: Deps<'a>,
    /// Steps in flight.
    running: usize,
    tasks: JoinSet<TaskOutput>,
    task_steps: HashMap<tokio::task::Id, Vec<usize>>,
    /// Per step: its vantage wants all its steps in one call ([`Runner::one_call`]).
    grouped: Vec<bool>,
    /// Per step: its vantage takes steps one by one ([`Runner::per_step`]).
    per_step: Vec<bool>,
    /// Grouped vantages whose steps go in batches of ready steps after all (they wait on each
    /// other).
    ungrouped: std::collections::BTreeSet<VantageRef>,
}

/// The run's deadline: now plus the budget (a budget too large to add, only from a library
/// caller since the CLI caps it, means no budget).
fn deadline_of(budget: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(budget)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

impl<'a> Execution<'a> {
    fn new(plan: &'a Plan, settings: &'a Settings) -> Execution<'a> {
        let steps = &plan.steps;
        let grouped = steps
            .iter()
            .map(|s| settings.runner.one_call(s.from))
            .collect();
        let mut per_vantage: BTreeMap<VantageRef, bool> = BTreeMap::new();
        let per_step = steps
            .iter()
            .map(|s| {
                *per_vantage
                    .entry(s.from)
                    .or_insert_with(|| settings.runner.per_step(s.from))
            })
            .collect();
        Execution {
            steps,
            settings,
            deadline: deadline_of(settings.budget),
            deps: Deps::new(steps, &settings.prior),
            running: 0,
            tasks: JoinSet::new(),
            task_steps: HashMap::new(),
            grouped,
            per_step,
            ungrouped: Default::default(),
        }
    }

    fn in_group(&self, i: usize) -> bool {
        self.grouped[i] && !self.ungrouped.contains(&self.steps[i].from)
    }

    fn pending(&self, i: usize) -> bool {
        self.deps.state[i] == State::Pending
    }

    fn finish(&mut self, i: usize, o: Observation) {
        if let Some(p) = &self.settings.progress {
            p(&o);
        }
        self.deps.results[i] = Some(o);
        self.deps.state[i] = State::Done;
    }

    /// Settle every pending step (outside a group) whose prerequisites are done: blocked, out
    /// of scope, or ready (returned).
    fn settle(&mut self) -> Vec<usize> {
        let mut ready: Vec<usize> = Vec::new();
        let mut changed = true;
        while changed {
            changed = false;
            ready.clear();
            for (i, step) in self.steps.iter().enumerate() {
                if !self.pending(i) || self.in_group(i) {
                    continue;
                }
                match self.deps.prereqs(i, |_| false) {
                    Prereqs::Waiting => {}
                    Prereqs::Failed(by) => {
                        let mut o = Observation::blocked(&step.id, &by);
                        o.vantage = note(step);
                        self.finish(i, o);
                        changed = true;
                    }
                    Prereqs::Met if !self.settings.scope.allows(step.probe.target_addr().ip()) => {
                        self.finish(i, out_of_scope(step, &self.settings.scope));
                        changed = true;
                    }
                    Prereqs::Met => ready.push(i),
                }
            }
        }
        ready
    }

    /// Whole vantages that go in one call and wait for nothing elsewhere, within the
    /// concurrency bound.
    fn group_batches(&mut self) -> Vec<(VantageRef, Vec<usize>)> {
        let cap = self.settings.concurrency.max(1);
        let mut groups: BTreeMap<VantageRef, Vec<usize>> = BTreeMap::new();
        for i in (0..self.steps.len()).filter(|&i| self.pending(i) && self.in_group(i)) {
            groups.entry(self.steps[i].from).or_default().push(i);
        }
        let mut out = Vec::new();
        for (v, idxs) in groups {
            let members = |j: usize| self.steps[j].from == v && self.pending(j);
            let waits = idxs
                .iter()
                .any(|&i| self.deps.prereqs(i, members) == Prereqs::Waiting);
            if !waits && (self.running == 0 || self.running + idxs.len() <= cap) {
                self.running += idxs.len();
                out.push((v, idxs));
            }
        }
        out
    }

    /// Ready steps per vantage, within the concurrency bound: one batch per vantage, or one
    /// per step where the vantage takes them one by one (a dependent step then starts as soon
    /// as its own prerequisite is in, not when the slowest of its siblings is).
    fn ready_batches(&mut self, ready: Vec<usize>) -> Vec<(VantageRef, Vec<usize>)> {
        let cap = self.settings.concurrency.max(1);
        let mut by_vantage: BTreeMap<VantageRef, Vec<usize>> = BTreeMap::new();
        for i in ready {
            if self.running >= cap {
                break;
            }
            by_vantage.entry(self.steps[i].from).or_default().push(i);
            self.running += 1;
        }
        let mut out = Vec::new();
        for (v, idxs) in by_vantage {
            if self.per_step[idxs[0]] {
                out.extend(idxs.into_iter().map(|i| (v, vec![i])));
            } else {
                out.push((v, idxs));
            }
        }
        out
    }

    /// Send one batch to its vantage: a job (with its prerequisites' outcomes) for a grouped
    /// vantage, plain steps otherwise.
    fn spawn(&mut self, v: VantageRef, idxs: Vec<usize>) {
        for &i in &idxs {
            self.deps.state[i] = State::Running;
        }
        let settings = self.settings;
        let batch: Vec<Step> = idxs.iter().map(|&i| self.steps[i].clone()).collect();
        let ctx = ProbeCtx {
            timeout: settings.timeout,
            body_limit: settings.body_limit,
            system: settings.systems.get(&v).cloned().unwrap_or_default(),
            scope: Some(settings.scope.clone()),
            warn_days: settings.warn_days,
        };
        let runner = settings.runner.clone();
        let task_idxs = idxs.clone();
        let h = if self.grouped[idxs[0]] {
            let job = crate::vantage::JobSpec {
                prior: self.deps.known(&idxs),
                scope: settings.scope.clone(),
                deadline: self.deadline,
            };
            self.tasks.spawn(async move {
                let obs = runner.run_job(&batch, &job, &ctx).await;
                (task_idxs, obs)
            })
        } else {
            self.tasks.spawn(async move {
                let obs = runner.run(&batch, &ctx).await;
                (task_idxs, obs)
            })
        };
        self.task_steps.insert(h.id(), idxs);
    }

    /// With nothing running: ungroup vantages that wait on each other (true: go on), else block
    /// what is left on a cyclic prerequisite (false: the run is over).
    fn unstick(&mut self) -> bool {
        let stuck: Vec<VantageRef> = (0..self.steps.len())
            .filter(|&i| self.pending(i) && self.in_group(i))
            .map(|i| self.steps[i].from)
            .collect();
        if !stuck.is_empty() {
            self.ungrouped.extend(stuck);
            return true;
        }
        for (i, step) in self.steps.iter().enumerate() {
            if self.pending(i) {
                let mut o = Observation::blocked(&step.id, "a cyclic prerequisite");
                o.vantage = note(step);
                self.finish(i, o);
            }
        }
        false
    }

    /// Record what a finished task returned (a task that panicked returned nothing).
    fn collect(&mut self, joined: Result<(tokio::task::Id, TaskOutput), tokio::task::JoinError>) {
        let (idxs, obs) = match joined {
            Ok((id, out)) => {
                self.task_steps.remove(&id);
                out
            }
            Err(e) => (
                self.task_steps.remove(&e.id()).unwrap_or_default(),
                Vec::new(),
            ),
        };
        let mut obs = obs.into_iter();
        for i in idxs {
            self.running -= 1;
            let step = &self.steps[i];
            let mut o = obs.next().unwrap_or_else(|| {
                Observation::tool_error(
                    &step.id,
                    crate::observe::Phase::Vantage,
                    "the vantage returned no observation for this step",
                )
            });
            o.step = step.id.clone();
            crate::probe::apply_floor(&mut o, step.layer, self.settings.timeout);
            if o.vantage.name.is_empty() {
                o.vantage = note(step);
            }
            self.finish(i, o);
        }
    }

    /// The budget is spent: stop every task, every unfinished step is the tool's limit.
    fn expire(&mut self) {
        self.tasks.abort_all();
        for (i, step) in self.steps.iter().enumerate() {
            if self.deps.state[i] != State::Done {
                self.finish(i, budget_exhausted(step, self.settings.budget));
            }
        }
    }

    /// One observation per step, in plan order.
    fn observations(self) -> Vec<Observation> {
        self.deps
            .results
            .into_iter()
            .zip(self.steps)
            .map(|(o, s)| {
                o.unwrap_or_else(|| {
                    Observation::tool_error(&s.id, crate::observe::Phase::Engine, "no observation")
                })
            })
            .collect()
    }
}

/// Execute `plan`: every step yields exactly one observation, in plan order.
///
/// Steps at a vantage the runner wants in one call ([`Runner::one_call`], an agent in a guest)
/// go there together, with their dependencies, once every prerequisite they have at other
/// vantages is done; the agent resolves the dependencies among them with this same engine.
/// When vantages wait on each other (A's step needs B's, B's needs A's), those vantages fall
/// back to one call per batch of ready steps.
pub async fn execute(plan: &Plan, settings: &Settings) -> Run {
    let started_at = now_rfc3339();
    let t0 = Instant::now();
    let mut ex = Execution::new(plan, settings);
    loop {
        let ready = ex.settle();
        let mut batches = ex.group_batches();
        batches.extend(ex.ready_batches(ready));
        for (v, idxs) in batches {
            ex.spawn(v, idxs);
        }
        if ex.running == 0 {
            if ex.unstick() {
                continue;
            }
            break;
        }
        let deadline = ex.deadline;
        tokio::select! {
            joined = ex.tasks.join_next_with_id() => {
                if let Some(joined) = joined {
                    ex.collect(joined);
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                ex.expire();
                break;
            }
        }
    }
    Run {
        schema_version: RUN_SCHEMA_VERSION,
        target: plan.target.clone(),
        started_at,
        duration_ms: (t0.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        observations: ex.observations(),
    }
}

/// Several plans merged into one: each distinct step once. A step's identity is what it sends
/// (vantage, layer, probe: kind, destination, name, options) and the identities of its
/// prerequisites, never its id, so two targets that share hops share their probes and keep
/// the ones that differ.
#[derive(Debug, Clone)]
pub struct StepCache {
    /// The merged plan: one step per identity (ids made unique across the plans).
    pub plan: Plan,
    /// `map[p][i]`: the merged step that plan `p`'s step `i` is.
    pub map: Vec<Vec<usize>>,
}

impl StepCache {
    /// Merge `plans` (in order: a merged step keeps the id of its first occurrence).
    pub fn new(plans: &[Plan]) -> StepCache {
        let mut keys: HashMap<String, usize> = HashMap::new();
        let mut ids: std::collections::HashSet<String> = Default::default();
        let mut merged: Vec<Step> = Vec::new();
        let mut map = Vec::with_capacity(plans.len());
        for (p, plan) in plans.iter().enumerate() {
            let index: HashMap<&str, usize> = plan
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| (s.id.as_str(), i))
                .collect();
            let mut slot: Vec<Option<usize>> = vec![None; plan.steps.len()];
            let mut visiting = vec![false; plan.steps.len()];
            for i in 0..plan.steps.len() {
                Self::place(
                    plan,
                    p,
                    i,
                    &index,
                    &mut slot,
                    &mut visiting,
                    &mut keys,
                    &mut ids,
                    &mut merged,
                );
            }
            map.push(slot.into_iter().map(|m| m.unwrap_or(0)).collect());
        }
        StepCache {
            plan: Plan {
                target: plans
                    .iter()
                    .map(|p| p.target.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                hops: Vec::new(),
                steps: merged,
            },
            map,
        }
    }

    /// Give plan `p`'s step `i` its merged step (after its prerequisites'), returning its index.
    #[allow(clippy::too_many_arguments)]
    fn place(
        plan: &Plan,
        p: usize,
        i: usize,
        index: &HashMap<&str, usize>,
        slot: &mut [Option<usize>],
        visiting: &mut [bool],
        keys: &mut HashMap<String, usize>,
        ids: &mut std::collections::HashSet<String>,
        merged: &mut Vec<Step>,
    ) -> Option<usize> {
        if let Some(m) = slot[i] {
            return Some(m);
        }
        if visiting[i] {
            return None; // a cycle: the step stays unique to its plan
        }
        visiting[i] = true;
        let step = &plan.steps[i];
        let mut deps: Vec<String> = Vec::with_capacity(step.depends_on.len());
        let mut key_deps: Vec<String> = Vec::with_capacity(step.depends_on.len());
        let mut unique = false;
        for d in &step.depends_on {
            let placed = index
                .get(d.as_str())
                .and_then(|&j| Self::place(plan, p, j, index, slot, visiting, keys, ids, merged));
            match placed {
                Some(m) => {
                    deps.push(merged[m].id.clone());
                    key_deps.push(m.to_string());
                }
                None => {
                    // Unknown or cyclic: kept as written, and never shared.
                    deps.push(d.clone());
                    unique = true;
                }
            }
        }
        key_deps.sort();
        let identity = serde_json::to_string(&(step.from, step.layer, &step.probe, &key_deps))
            .unwrap_or_default();
        let key = if unique || identity.is_empty() {
            format!("{p}/{}", step.id)
        } else {
            identity
        };
        let m = match keys.get(&key) {
            Some(&m) => m,
            None => {
                let mut id = step.id.clone();
                let mut n = 1;
                while ids.contains(&id) {
                    n += 1;
                    id = format!("{}#{n}", step.id);
                }
                ids.insert(id.clone());
                let mut s = step.clone();
                s.id = id;
                s.depends_on = deps;
                merged.push(s);
                keys.insert(key, merged.len() - 1);
                merged.len() - 1
            }
        };
        visiting[i] = false;
        slot[i] = Some(m);
        Some(m)
    }

    /// Plan `p`'s run from the merged run: its steps' observations under their own ids.
    pub fn run_of(&self, p: usize, plan: &Plan, merged: &Run) -> Run {
        Run {
            schema_version: RUN_SCHEMA_VERSION,
            target: plan.target.clone(),
            started_at: merged.started_at.clone(),
            duration_ms: merged.duration_ms,
            observations: plan
                .steps
                .iter()
                .zip(&self.map[p])
                .map(|(s, &m)| {
                    let mut o = merged.observations.get(m).cloned().unwrap_or_else(|| {
                        Observation::tool_error(
                            &s.id,
                            crate::observe::Phase::Engine,
                            "no observation",
                        )
                    });
                    o.step = s.id.clone();
                    o
                })
                .collect(),
        }
    }
}

/// Execute several plans in one engine run: their steps merged by a [`StepCache`], so each
/// distinct step is probed once and a guest gets one call for the whole run. One run per plan,
/// in order.
pub async fn execute_many(plans: &[Plan], settings: &Settings) -> Vec<Run> {
    let cache = StepCache::new(plans);
    let merged = execute(&cache.plan, settings).await;
    plans
        .iter()
        .enumerate()
        .map(|(p, plan)| cache.run_of(p, plan, &merged))
        .collect()
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
        /// Send steps one by one (a vantage on this machine).
        per_step: bool,
        /// `start:ID` and `end:ID`, in the order they happened.
        events: Mutex<Vec<String>>,
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
                    self.events.lock().unwrap().push(format!("start:{}", s.id));
                    if s.id.contains("slow") {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                    if s.id.contains("drop") {
                        // A silently dropped peer: the step waits out its timeout.
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    self.events.lock().unwrap().push(format!("end:{}", s.id));
                    let mut o =
                        Observation::tool_error(&s.id, crate::observe::Phase::Engine, "fake");
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

        fn per_step(&self, _v: VantageRef) -> bool {
            self.per_step
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
    async fn settling_blocks_behind_failures_refuses_out_of_scope_and_returns_the_ready() {
        let fake = Arc::new(Fake::default());
        let s = settings(fake);
        let p = plan(vec![
            st("a", VantageRef::Host, "127.0.0.1", &[]),
            st("b", VantageRef::Host, "127.0.0.1", &["a"]),
            st("out", VantageRef::Host, "192.0.2.1", &[]),
            st("orphan", VantageRef::Host, "127.0.0.1", &["nowhere"]),
        ]);
        let mut ex = Execution::new(&p, &s);
        assert_eq!(ex.settle(), vec![0], "only `a` is ready; `b` waits for it");
        let outcome = |ex: &Execution, i: usize| ex.deps.results[i].as_ref().map(|o| o.outcome);
        assert_eq!(outcome(&ex, 2), Some(Outcome::OutOfScope));
        assert_eq!(outcome(&ex, 3), Some(Outcome::Blocked));
        assert!(ex.pending(1));
        // `a` failed: `b` is blocked by it on the next settle.
        let mut failed = Observation::tool_error("a", crate::observe::Phase::Engine, "fake");
        failed.outcome = Outcome::Failed;
        ex.finish(0, failed);
        assert!(ex.settle().is_empty());
        assert_eq!(outcome(&ex, 1), Some(Outcome::Blocked));
    }

    #[tokio::test]
    async fn ready_steps_go_per_vantage_within_the_bound_or_one_by_one_when_streaming() {
        let h = VantageRef::Host;
        let v = VantageRef::Lxc(101);
        let steps = vec![
            st("a", h, "127.0.0.1", &[]),
            st("b", v, "127.0.0.1", &[]),
            st("c", h, "127.0.0.1", &[]),
        ];
        let p = plan(steps);
        let mut s = settings(Arc::new(Fake::default()));
        s.concurrency = 2;
        let mut ex = Execution::new(&p, &s);
        let batches = ex.ready_batches(vec![0, 1, 2]);
        assert_eq!(batches, vec![(h, vec![0]), (v, vec![1])], "the bound is 2");
        assert_eq!(ex.running, 2);

        s.concurrency = 64;
        let mut ex = Execution::new(&p, &s);
        let batches = ex.ready_batches(vec![0, 1, 2]);
        assert_eq!(batches, vec![(h, vec![0, 2]), (v, vec![1])]);

        let streaming = settings(Arc::new(Fake {
            per_step: true,
            ..Fake::default()
        }));
        let mut ex = Execution::new(&p, &streaming);
        let batches = ex.ready_batches(vec![0, 1, 2]);
        assert_eq!(batches, vec![(h, vec![0]), (h, vec![2]), (v, vec![1])]);
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
        let r: Vec<(Outcome, Option<String>)> = run
            .observations
            .iter()
            .map(|o| (o.outcome, o.reason.map(|r| r.to_string())))
            .collect();
        assert_eq!(r[0].0, Outcome::Ok);
        assert_eq!(r[1], (Outcome::TimedOut, Some("budget".to_string())));
        assert_eq!(r[2], (Outcome::TimedOut, Some("budget".to_string())));
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

    #[tokio::test]
    async fn results_stream_per_step_so_two_dropped_peers_cost_one_timeout() {
        let fake = Arc::new(Fake {
            per_step: true,
            ..Fake::default()
        });
        let h = VantageRef::Host;
        let p = plan(vec![
            st("drop1", h, "127.0.0.1", &[]),
            st("drop2", h, "127.0.0.2", &[]),
            st("fast", h, "127.0.0.3", &[]),
            st("after-fast", h, "127.0.0.3", &["fast"]),
            st("after-drop1", h, "127.0.0.1", &["drop1"]),
            st("after-drop2", h, "127.0.0.2", &["drop2"]),
        ]);
        let run = execute(&p, &settings(fake.clone())).await;
        assert!(run.observations.iter().all(|o| o.outcome == Outcome::Ok));
        let ev = fake.events.lock().unwrap().clone();
        let at = |e: &str| ev.iter().position(|x| x == e).expect(e);
        // The fast peer's dependent step ran while both dropped peers were still waiting ...
        assert!(at("end:after-fast") < at("end:drop1"), "{ev:?}");
        assert!(at("end:after-fast") < at("end:drop2"), "{ev:?}");
        // ... and the two dropped peers waited side by side, not one after the other.
        assert!(at("start:drop2") < at("end:drop1"), "{ev:?}");
        assert!(at("start:drop1") < at("end:drop2"), "{ev:?}");
        // Each step went alone.
        let batches = fake.batches.lock().unwrap().clone();
        assert!(batches.iter().all(|b| b.len() == 1), "{batches:?}");
    }

    #[tokio::test]
    async fn without_streaming_a_batch_waits_for_its_slowest_step() {
        // The same plan at a vantage that batches: the contrast that makes the test above mean
        // something.
        let fake = Arc::new(Fake::default());
        let h = VantageRef::Host;
        let p = plan(vec![
            st("drop1", h, "127.0.0.1", &[]),
            st("fast", h, "127.0.0.3", &[]),
            st("after-fast", h, "127.0.0.3", &["fast"]),
        ]);
        execute(&p, &settings(fake.clone())).await;
        let ev = fake.events.lock().unwrap().clone();
        let at = |e: &str| ev.iter().position(|x| x == e).expect(e);
        assert!(at("start:after-fast") > at("end:drop1"), "{ev:?}");
    }

    fn http(id: &str, from: VantageRef, url: &str, deps: &[&str]) -> Step {
        let mut s = st(id, from, "127.0.0.1", deps);
        s.layer = Layer::Http;
        s.probe = ProbeSpec::Tcp {
            addr: url.parse().unwrap(),
        };
        s
    }

    #[test]
    fn the_step_cache_shares_identical_steps_and_keeps_distinct_ones() {
        let h = VantageRef::Host;
        let l = VantageRef::Lxc(101);
        let a = Plan {
            target: "a".into(),
            hops: vec![],
            steps: vec![
                st("gw.tcp", h, "127.0.0.1", &[]),
                http("gw.http", h, "127.0.0.1:443", &["gw.tcp"]),
                st("svc-a.tcp", l, "127.0.0.5", &["gw.tcp"]),
            ],
        };
        let b = Plan {
            target: "b".into(),
            hops: vec![],
            steps: vec![
                // same probe, same prerequisite, other ids: shared
                st("gateway.tcp", h, "127.0.0.1", &[]),
                http("gateway.http", h, "127.0.0.1:443", &["gateway.tcp"]),
                // same destination from another vantage: distinct
                st(
                    "svc-a.tcp",
                    VantageRef::Lxc(102),
                    "127.0.0.5",
                    &["gateway.tcp"],
                ),
                // same vantage and address, another layer: distinct
                http("svc-a.http", l, "127.0.0.5:1", &["gateway.tcp"]),
                // same probe as a's gw.http but another prerequisite: distinct
                http("gw.http", h, "127.0.0.1:443", &["svc-a.tcp"]),
            ],
        };
        let c = StepCache::new(&[a.clone(), b.clone()]);
        assert_eq!(c.map[0], [0, 1, 2]);
        assert_eq!(c.map[1][..2], [0, 1]);
        let distinct: std::collections::BTreeSet<usize> = c.map[1][2..].iter().copied().collect();
        assert_eq!(distinct.len(), 3);
        assert!(distinct.iter().all(|&m| m > 2), "{:?}", c.map);
        assert_eq!(c.plan.steps.len(), 6);
        // ids stay unique, prerequisites point at merged steps
        let ids: std::collections::BTreeSet<&str> =
            c.plan.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids.len(), 6, "{ids:?}");
        let last = &c.plan.steps[c.map[1][4]];
        assert_eq!(last.id, "gw.http#2");
        assert_eq!(last.depends_on, [c.plan.steps[c.map[1][2]].id.clone()]);
        // each plan gets its observations back under its own ids
        let merged = Run {
            schema_version: RUN_SCHEMA_VERSION,
            target: c.plan.target.clone(),
            started_at: "t".into(),
            duration_ms: 1.0,
            observations: c
                .plan
                .steps
                .iter()
                .map(|s| {
                    Observation::tool_error(
                        &s.id,
                        crate::observe::Phase::Engine,
                        format!("seen {}", s.id),
                    )
                })
                .collect(),
        };
        let rb = c.run_of(1, &b, &merged);
        let ids: Vec<&str> = rb.observations.iter().map(|o| o.step.as_str()).collect();
        assert_eq!(
            ids,
            [
                "gateway.tcp",
                "gateway.http",
                "svc-a.tcp",
                "svc-a.http",
                "gw.http"
            ]
        );
        assert_eq!(rb.observations[0].message, "seen gw.tcp");
        assert_eq!(rb.target, "b");
    }

    #[tokio::test]
    async fn several_plans_in_one_run_probe_each_shared_step_once() {
        let fake = Arc::new(Fake::default());
        let h = VantageRef::Host;
        let a = plan(vec![
            st("gw", h, "127.0.0.1", &[]),
            st("a", h, "127.0.0.2", &["gw"]),
        ]);
        let b = plan(vec![
            st("gateway", h, "127.0.0.1", &[]),
            st("b-bad", h, "127.0.0.3", &["gateway"]),
        ]);
        let runs = execute_many(&[a, b], &settings(fake.clone())).await;
        let sent: Vec<String> = fake
            .batches
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .cloned()
            .collect();
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[1].observations[0].step, "gateway");
        assert_eq!(runs[1].observations[0].outcome, Outcome::Ok);
        assert_eq!(runs[1].observations[1].outcome, Outcome::Failed);
        assert_eq!(runs[0].observations[1].outcome, Outcome::Ok);
    }

    /// One recorded call: the vantage, the step ids, the prior outcomes.
    type Call = (String, Vec<String>, BTreeMap<String, Outcome>);

    /// A runner that wants one call per LXC and records each call.
    #[derive(Default)]
    struct OneCall {
        calls: Mutex<Vec<Call>>,
    }

    impl Runner for OneCall {
        fn run<'a>(
            &'a self,
            steps: &'a [Step],
            _ctx: &'a ProbeCtx,
        ) -> BoxFuture<'a, Vec<Observation>> {
            self.record(steps, BTreeMap::new())
        }

        fn one_call(&self, v: VantageRef) -> bool {
            matches!(v, VantageRef::Lxc(_))
        }

        fn run_job<'a>(
            &'a self,
            steps: &'a [Step],
            job: &'a crate::vantage::JobSpec,
            _ctx: &'a ProbeCtx,
        ) -> BoxFuture<'a, Vec<Observation>> {
            self.record(steps, job.prior.clone())
        }
    }

    impl OneCall {
        fn record<'a>(
            &'a self,
            steps: &'a [Step],
            prior: BTreeMap<String, Outcome>,
        ) -> BoxFuture<'a, Vec<Observation>> {
            Box::pin(async move {
                self.calls.lock().unwrap().push((
                    steps[0].from.to_string(),
                    steps.iter().map(|s| s.id.clone()).collect(),
                    prior,
                ));
                steps
                    .iter()
                    .map(|s| {
                        let mut o =
                            Observation::tool_error(&s.id, crate::observe::Phase::Engine, "fake");
                        o.outcome = if s.id.contains("bad") {
                            Outcome::Failed
                        } else {
                            Outcome::Ok
                        };
                        o
                    })
                    .collect()
            })
        }
    }

    #[tokio::test]
    async fn a_guest_gets_all_its_steps_in_one_call_after_its_prerequisites_elsewhere() {
        let runner = Arc::new(OneCall::default());
        let (l1, l2) = (VantageRef::Lxc(101), VantageRef::Lxc(102));
        let p = plan(vec![
            st("h1", VantageRef::Host, "127.0.0.1", &[]),
            st("h2-bad", VantageRef::Host, "127.0.0.2", &["h1"]),
            st("a1", l1, "127.0.0.3", &["h1"]),
            st("a2", l1, "127.0.0.4", &["a1"]),
            st("a3", l1, "127.0.0.5", &["a2", "h2-bad"]),
            st("b1", l2, "127.0.0.6", &[]),
            st("b2", l2, "127.0.0.7", &["b1"]),
        ]);
        let s = Settings {
            scope: Scope {
                allowed: vec!["127.0.0.0/24".parse().unwrap()],
            },
            runner: runner.clone(),
            ..Settings::default()
        };
        let run = execute(&p, &s).await;
        assert_eq!(run.observations.len(), 7);
        let calls = runner.calls.lock().unwrap().clone();
        let at = |v: &str| -> Vec<_> { calls.iter().filter(|c| c.0 == v).cloned().collect() };
        // One call per guest, holding every one of its steps.
        let l1_calls = at("lxc:101");
        assert_eq!(l1_calls.len(), 1, "{calls:?}");
        assert_eq!(l1_calls[0].1, ["a1", "a2", "a3"]);
        // ... sent once its prerequisites at the host were done, with their outcomes.
        let prior = &l1_calls[0].2;
        assert_eq!(prior.get("h1"), Some(&Outcome::Ok));
        assert_eq!(prior.get("h2-bad"), Some(&Outcome::Failed));
        assert_eq!(prior.len(), 2, "{prior:?}");
        let l2_calls = at("lxc:102");
        assert_eq!(l2_calls.len(), 1, "{calls:?}");
        assert_eq!(l2_calls[0].1, ["b1", "b2"]);
        assert!(l2_calls[0].2.is_empty());
        // The host's steps still go level by level.
        assert_eq!(at("host").len(), 2, "{calls:?}");
    }

    #[tokio::test]
    async fn guests_waiting_on_each_other_fall_back_to_calls_per_ready_batch() {
        let runner = Arc::new(OneCall::default());
        let (l1, l2) = (VantageRef::Lxc(101), VantageRef::Lxc(102));
        let p = plan(vec![
            st("a1", l1, "127.0.0.1", &[]),
            st("b1", l2, "127.0.0.2", &["a1"]),
            st("a2", l1, "127.0.0.3", &["b1"]),
        ]);
        let s = Settings {
            scope: Scope {
                allowed: vec!["127.0.0.0/24".parse().unwrap()],
            },
            runner: runner.clone(),
            ..Settings::default()
        };
        let run = execute(&p, &s).await;
        let outcomes: Vec<Outcome> = run.observations.iter().map(|o| o.outcome).collect();
        assert_eq!(outcomes, [Outcome::Ok; 3], "{run:?}");
        let calls = runner.calls.lock().unwrap().clone();
        let order: Vec<Vec<String>> = calls.iter().map(|c| c.1.clone()).collect();
        assert_eq!(order, [vec!["a1"], vec!["b1"], vec!["a2"]], "{calls:?}");
        assert_eq!(calls[2].2.get("b1"), Some(&Outcome::Ok));
    }

    #[test]
    fn mapped_addresses_are_checked_as_ipv4_and_wide_platform_subnets_are_no_scope() {
        let any6 = Scope {
            allowed: vec!["::/0".parse().unwrap()],
        };
        assert!(!any6.allows("::ffff:8.8.8.8".parse().unwrap()));
        assert!(any6.allows("2001:db8::1".parse().unwrap()));
        let lo = Scope {
            allowed: vec!["127.0.0.0/8".parse().unwrap()],
        };
        assert!(lo.allows("::ffff:127.0.0.9".parse().unwrap()));
        let mapped = Scope {
            allowed: vec!["::ffff:10.0.0.0/120".parse().unwrap()],
        };
        assert!(mapped.allows("10.0.0.7".parse().unwrap()));
        assert!(!mapped.allows("10.0.1.7".parse().unwrap()));

        let (s, notes) = Scope::platform(&[
            "0.0.0.0/0".parse().unwrap(),
            "10.0.0.0/24".parse().unwrap(),
            "10.0.0.0/15".parse().unwrap(),
            "10.0.0.0/16".parse().unwrap(),
        ]);
        assert_eq!(
            s.allowed,
            vec![
                "10.0.0.0/24".parse::<IpNet>().unwrap(),
                "10.0.0.0/16".parse().unwrap(),
                "127.0.0.0/8".parse().unwrap()
            ]
        );
        assert!(!s.allows("8.8.8.8".parse().unwrap()));
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("0.0.0.0/0") && notes[0].contains("/16"));
        assert!(notes[1].contains("10.0.0.0/15"));
    }
}
