//! Where a step runs: here, a simulated vantage (the site file's files), or inside a guest
//! through a command prefix running `phoenix-doctor agent`, with substitution when no agent can run.

pub mod cluster;
pub mod files;
pub mod job;
pub mod listeners;
pub mod push;
pub mod site;
pub mod template;
pub mod transport;

pub use files::FileRead;
pub use job::{Job, JobResult, AGENT_PROTOCOL_VERSION};
pub use site::{site_simulated, site_vantages};
pub use template::{Kind, Template};
pub use transport::{Failure, Limits, Transport, TransportError};

use crate::engine::Scope;
use crate::error::{Error, Result};
use crate::observe::{Evidence, Observation, Outcome, Phase, VantageNote};
use crate::plan::{ProbeSpec, Step, VantageRef};
use crate::probe::{ProbeCtx, SystemFiles};
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, so runners can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs steps from their vantage. The engine calls [`Runner::run`] once per batch of ready
/// steps that share a vantage (`steps[i].from` is the same for every step in a call), and
/// [`Runner::run_job`] once per vantage that [`Runner::one_call`] names; both return one
/// observation per step, in order.
pub trait Runner: Send + Sync {
    fn run<'a>(&'a self, steps: &'a [Step], ctx: &'a ProbeCtx) -> BoxFuture<'a, Vec<Observation>>;

    /// True when all of `v`'s steps should go in one call (an agent in a guest): the engine
    /// then calls [`Runner::run_job`] with them and their dependencies.
    fn one_call(&self, _v: VantageRef) -> bool {
        false
    }

    /// True when `v`'s steps cost nothing to send one by one (they run from this machine): the
    /// engine then calls [`Runner::run`] per step, so each result is used as soon as it is in.
    fn per_step(&self, _v: VantageRef) -> bool {
        false
    }

    /// Run a vantage's steps in one call. They may depend on each other (the callee resolves
    /// that, with the engine's own dependency logic) and on steps elsewhere, whose outcomes are
    /// in `job.prior`. Called only for vantages [`Runner::one_call`] names.
    fn run_job<'a>(
        &'a self,
        steps: &'a [Step],
        job: &'a JobSpec,
        ctx: &'a ProbeCtx,
    ) -> BoxFuture<'a, Vec<Observation>> {
        let _ = job;
        self.run(steps, ctx)
    }
}

/// What a one-call job needs besides its steps.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// Outcomes of the steps' prerequisites at other vantages.
    pub prior: BTreeMap<String, Outcome>,
    /// The networks the steps may reach; the agent refuses the rest.
    pub scope: Scope,
    /// The run's deadline: nothing of the call may outlive it.
    pub deadline: tokio::time::Instant,
}

/// Runs every step from this machine.
#[derive(Debug, Default, Clone)]
pub struct Local;

impl Runner for Local {
    fn run<'a>(&'a self, steps: &'a [Step], ctx: &'a ProbeCtx) -> BoxFuture<'a, Vec<Observation>> {
        // The steps of a batch run concurrently; results come back in step order.
        Box::pin(job::run_concurrently(steps, ctx))
    }

    fn per_step(&self, _v: VantageRef) -> bool {
        true
    }
}

/// How [`Vantages`] is set up (from the command line and the site file).
#[derive(Debug, Clone, Default)]
pub struct VantageOptions {
    /// Transports given with `--via KIND=TEMPLATE`. LXCs and VMs fall back to `pct exec` and
    /// `qm guest exec`; the host runs here unless a host template is given.
    pub via: BTreeMap<Kind, Template>,
    /// `--vantage host`: run everything from here.
    pub force_host: bool,
    /// The agent's path inside guests.
    pub agent_path: String,
    /// Copy this binary into each guest before the first job.
    pub push: bool,
    /// The binary to push (default: this executable).
    pub self_exe: Option<PathBuf>,
    /// Simulated vantages from the site file.
    pub site: BTreeMap<VantageRef, SystemFiles>,
    /// The directories that stand for simulated vantages' `/` when their files are read.
    pub roots: BTreeMap<VantageRef, PathBuf>,
    /// Where each guest runs (`pvesh get /cluster/resources`); None: every guest is here.
    pub cluster: Option<cluster::Cluster>,
}

/// How one vantage's batch is run.
#[derive(Debug, Clone)]
pub enum Mode {
    /// From here, with this machine's system files.
    Local,
    /// From here, reading these files as the vantage's system files.
    Simulated(SystemFiles),
    /// Inside the vantage: `<prefix> <agent-path> agent`.
    Agent(Transport),
    /// From here instead of the vantage (`--vantage host`); the vantage's system files are read
    /// through the transport when one was given.
    Substituted(Option<Transport>),
    /// Not at all: the guest is stopped or the cluster cannot say where it runs (the reason).
    /// Its steps are `cannot-judge` and no transport call is made.
    Unreachable(cluster::Unreachable),
}

/// The paths asked of one vantage so far, and what came back.
type ReadSoFar = (Vec<String>, Vec<FileRead>);

/// The runner that picks, per batch, local / simulated / transport + agent / substituted.
#[derive(Debug)]
pub struct Vantages {
    opts: VantageOptions,
    /// The node this tool runs on (`{node}` for the host and for guests the cluster does not
    /// place).
    local_node: String,
    pushed: tokio::sync::Mutex<HashSet<VantageRef>>,
    /// Files to read in each vantage with its steps' call ([`Vantages::attach_reads`]).
    attached: std::sync::Mutex<BTreeMap<VantageRef, Vec<String>>>,
    /// Files read so far in this run, per vantage: what was asked, what came back.
    read: std::sync::Mutex<BTreeMap<VantageRef, ReadSoFar>>,
}

/// One `--via` value (`lxc='pct exec {id} --'`, `vm=qm`, `host=...`): the vantage kind and the
/// command prefix that enters it. The command line parses each value with this once.
pub fn parse_via_value(v: &str) -> std::result::Result<(Kind, Template), String> {
    let (kind, tpl) = v
        .split_once('=')
        .ok_or_else(|| "expected KIND=TEMPLATE, e.g. lxc='pct exec {id} --'".to_string())?;
    Ok((kind.trim().parse()?, Template::parse(tpl)?))
}

/// Parse several `--via` values; a bad one is an input error naming it.
pub fn parse_via(values: &[String]) -> Result<BTreeMap<Kind, Template>> {
    values
        .iter()
        .map(|v| parse_via_value(v).map_err(|e| Error::input(format!("--via `{v}`: {e}"))))
        .collect()
}

impl Vantages {
    pub fn new(opts: VantageOptions) -> Vantages {
        let local_node = match &opts.cluster {
            Some(c) => c.local.clone(),
            None => cluster::local_node(),
        };
        Vantages {
            opts,
            local_node,
            pushed: tokio::sync::Mutex::new(HashSet::new()),
            attached: Default::default(),
            read: Default::default(),
        }
    }

    /// Read `paths` in `v` with the call that runs its steps (an agent's job, or the one
    /// `sh -c` that reads a substituted guest's system files), so a guest still costs one call
    /// per run; [`read_files`] then answers from what that call brought back.
    pub fn attach_reads(&self, v: VantageRef, paths: &[String]) {
        let mut a = self.attached.lock().unwrap_or_else(|e| e.into_inner());
        let list = a.entry(v).or_default();
        for p in paths {
            if !list.contains(p) {
                list.push(p.clone());
            }
        }
    }

    fn attached(&self, v: VantageRef) -> Vec<String> {
        let a = self.attached.lock().unwrap_or_else(|e| e.into_inner());
        a.get(&v).cloned().unwrap_or_default()
    }

    fn remember(&self, v: VantageRef, asked: &[String], got: &[FileRead]) {
        let mut r = self.read.lock().unwrap_or_else(|e| e.into_inner());
        let (a, g) = r.entry(v).or_default();
        for p in asked {
            if !a.contains(p) {
                a.push(p.clone());
            }
        }
        for f in got {
            if !g.iter().any(|x| x.path() == f.path()) {
                g.push(f.clone());
            }
        }
    }

    /// What was read already for `paths` in `v`, when every one of them was asked.
    fn recall(&self, v: VantageRef, paths: &[String]) -> Option<Vec<FileRead>> {
        let r = self.read.lock().unwrap_or_else(|e| e.into_inner());
        let (asked, got) = r.get(&v)?;
        if !paths.iter().all(|p| asked.contains(p)) {
            return None;
        }
        Some(
            got.iter()
                .filter(|f| paths.iter().any(|p| files::covers(p, f.path())))
                .cloned()
                .collect(),
        )
    }

    /// Where each guest runs in the cluster (see [`cluster::discover`]).
    pub fn with_cluster(self, cluster: Option<cluster::Cluster>) -> Vantages {
        Vantages::new(VantageOptions {
            cluster,
            ..self.opts
        })
    }

    /// True when a run with steps at these vantages needs to know where guests run: some
    /// guest would be reached through a transport.
    pub fn needs_placement(&self, vantages: impl IntoIterator<Item = VantageRef>) -> bool {
        !self.opts.force_host
            && vantages
                .into_iter()
                .any(|v| v != VantageRef::Host && !self.opts.site.contains_key(&v))
    }

    fn transport(&self, v: VantageRef, explicit_only: bool) -> Option<Transport> {
        let (kind, id) = match v {
            VantageRef::Host => (Kind::Host, None),
            VantageRef::Lxc(i) => (Kind::Lxc, Some(i)),
            VantageRef::Vm(i) => (Kind::Vm, Some(i)),
        };
        let node = self.opts.cluster.as_ref().and_then(|c| c.node_of(v));
        // A guest on another node is reached through that node.
        let remote = node.is_some_and(|n| n != self.local_node);
        let template = match (self.opts.via.get(&kind), kind, explicit_only) {
            (Some(t), _, _) => t.clone(),
            (None, _, true) | (None, Kind::Host, _) => return None,
            (None, Kind::Lxc, false) if remote => Template::parse(cluster::REMOTE_PCT).ok()?,
            (None, Kind::Vm, false) if remote => Template::parse(cluster::REMOTE_QM).ok()?,
            (None, Kind::Lxc, false) => Template::parse(template::PCT).ok()?,
            (None, Kind::Vm, false) => Template::parse(template::QM).ok()?,
        };
        Some(Transport {
            template,
            kind,
            id,
            node: node.unwrap_or(&self.local_node).to_string(),
        })
    }

    /// How a batch at `v` will run.
    pub fn mode(&self, v: VantageRef) -> Mode {
        if self.opts.force_host {
            return match v {
                VantageRef::Host => Mode::Local,
                _ => Mode::Substituted(self.transport(v, true)),
            };
        }
        if let Some(files) = self.opts.site.get(&v) {
            return Mode::Simulated(files.clone());
        }
        if let Some(cluster::Where::Unreachable(why)) =
            self.opts.cluster.as_ref().map(|c| c.locate(v))
        {
            return Mode::Unreachable(why);
        }
        match self.transport(v, false) {
            Some(t) => Mode::Agent(t),
            None => Mode::Local,
        }
    }

    async fn run_batch(&self, steps: &[Step], ctx: &ProbeCtx) -> Vec<Observation> {
        let Some(first) = steps.first() else {
            return Vec::new();
        };
        let v = first.from;
        let name = v.to_string();
        let note = |via: &str, substituted: bool| VantageNote {
            name: name.clone(),
            substituted,
            via: via.to_string(),
        };
        match self.mode(v) {
            Mode::Local => stamp(
                job::run_concurrently(steps, ctx).await,
                note("local", false),
            ),
            Mode::Unreachable(why) => stamp(
                steps
                    .iter()
                    .map(|s| Observation::tool_error(&s.id, Phase::Placement, why.to_string()))
                    .collect(),
                note("not run", false),
            ),
            Mode::Simulated(files) => {
                let ctx = ProbeCtx {
                    system: files,
                    ..ctx.clone()
                };
                stamp(
                    job::run_concurrently(steps, &ctx).await,
                    note("simulated", false),
                )
            }
            Mode::Substituted(t) => {
                let wants_files = steps
                    .iter()
                    .any(|s| matches!(s.probe, ProbeSpec::Dns { system: true, .. }));
                match (t, wants_files) {
                    (Some(t), true) => {
                        let via = format!("local; system files via {}", t.via());
                        let extra = self.attached(v);
                        match read_guest_files(
                            &t,
                            Limits::within(ctx.timeout + Duration::from_secs(10), 0),
                            &extra,
                        )
                        .await
                        {
                            Ok((files, reads)) => {
                                self.remember(v, &extra, &reads);
                                let obs = substitute_with_files(steps, ctx, &files, v, None).await;
                                stamp(obs, note(&via, true))
                            }
                            Err(e) => {
                                let mut obs = job::run_concurrently(steps, ctx).await;
                                annotate(
                                    &mut obs,
                                    &format!("{name}'s system files unreadable: {e}"),
                                );
                                stamp(obs, note("local", true))
                            }
                        }
                    }
                    _ => stamp(job::run_concurrently(steps, ctx).await, note("local", true)),
                }
            }
            Mode::Agent(t) => {
                // Called directly (not through the engine's one-call path): the caller chose
                // these steps, so the scope is exactly their targets.
                let job = JobSpec {
                    prior: BTreeMap::new(),
                    scope: Scope {
                        allowed: steps
                            .iter()
                            .map(|s| ipnet::IpNet::from(s.probe.target_addr().ip()))
                            .collect(),
                    },
                    deadline: tokio::time::Instant::now()
                        + ctx.timeout * 6
                        + Duration::from_secs(10),
                };
                self.run_agent(&t, steps, ctx, v, &job).await
            }
        }
    }

    async fn run_agent(
        &self,
        t: &Transport,
        steps: &[Step],
        ctx: &ProbeCtx,
        v: VantageRef,
        spec: &JobSpec,
    ) -> Vec<Observation> {
        let note = VantageNote {
            name: v.to_string(),
            substituted: false,
            via: t.via(),
        };
        let read = self.attached(v);
        let (limits, margin) = agent_limits(spec, steps, ctx, &read);
        if self.opts.push {
            if let Err(e) = self.push_once(t, v, limits).await {
                let msg = format!("pushing the agent into {v} failed: {e}");
                return stamp(fail_all(steps, Phase::Push, &msg), note);
            }
        }
        let agent_budget = limits
            .remaining()
            .saturating_sub(margin)
            .max(Duration::from_millis(1));
        let mut job = Job::new(steps, ctx, spec, agent_budget);
        job.read = read.clone();
        let why_no_agent = match self.call_agent(t, steps, &job, limits).await {
            Ok((obs, got)) => {
                self.remember(v, &read, &got);
                return stamp(obs, note);
            }
            Err(e) => match self.missing_agent(&e) {
                Some(why) => why,
                None => return stamp(fail_all(steps, Phase::Transport, &e.to_string()), note),
            },
        };
        // No agent could run in the vantage: read its system files through the transport and
        // run the network layers from here, marked as substituted, with the job's scope and
        // dependencies (the engine's own logic, with this machine as the runner).
        match read_guest_files(t, limits, &read).await {
            Ok((files, got)) => {
                self.remember(v, &read, &got);
                eprintln!(
                    "phoenix-doctor: no agent ran at {v} ({}); its steps run from here with its /etc/hosts and resolv.conf (substituted)",
                    crate::fsutil::escape_terminal_line(&why_no_agent)
                );
                let mut obs = substitute_with_files(steps, ctx, &files, v, Some(spec)).await;
                annotate(&mut obs, &format!("run from here: no agent at {v}"));
                let via = format!("local; system files via {}", note.via);
                stamp(
                    obs,
                    VantageNote {
                        substituted: true,
                        via,
                        ..note
                    },
                )
            }
            Err(e) => {
                let msg = format!("no agent could run ({why_no_agent}); reading /etc/hosts through the transport failed too: {e}");
                stamp(fail_all(steps, Phase::Transport, &msg), note)
            }
        }
    }

    /// Send the job to the agent in the vantage behind `t` and read its answer: the
    /// observations and the files it read, or why not.
    async fn call_agent(
        &self,
        t: &Transport,
        steps: &[Step],
        job: &Job,
        limits: Limits,
    ) -> std::result::Result<(Vec<Observation>, Vec<FileRead>), AgentError> {
        let input = serde_json::to_vec(job).map_err(|e| AgentError::Encode(e.to_string()))?;
        let cmd = vec![self.opts.agent_path.clone(), "agent".to_string()];
        let command = template::display_argv(&t.argv(&cmd, true, limits.remaining()));
        let out = t.run(&cmd, Some(&input), limits).await?;
        let out = out
            .ok_or_exited(command.clone())
            .map_err(|error| AgentError::Exited { error })?;
        job::parse_result_with_files(&out.stdout, steps, &job.read)
            .map_err(|error| AgentError::Answer { command, error })
    }

    /// Why no agent ran, when `e` means the agent binary is not in the vantage (rather than the
    /// transport or the agent failing).
    fn missing_agent(&self, e: &AgentError) -> Option<String> {
        let (te, from_agent) = match e {
            AgentError::Transport(te) => (te, false),
            AgentError::Exited { error } => (error, true),
            AgentError::Encode(_) | AgentError::Answer { .. } => return None,
        };
        let Failure::Exited { code, stderr } = &te.failure else {
            return None;
        };
        // A transport's own exit (qm's wrapper) is no exit code of the program in the guest.
        let code = if from_agent { *code } else { None };
        self.agent_missing(code, stderr).then(|| te.to_string())
    }

    /// True when a failure means "the agent binary is not there" rather than "the transport or
    /// the agent failed".
    fn agent_missing(&self, code: Option<i32>, stderr: &str) -> bool {
        if matches!(code, Some(126) | Some(127)) {
            return true;
        }
        // The agent itself exits 2 or 3 on its own errors (and names itself in them).
        if matches!(code, Some(2) | Some(3)) {
            return false;
        }
        let s = stderr.to_ascii_lowercase();
        stderr.contains(&self.opts.agent_path)
            && [
                "not found",
                "no such file",
                "failed to exec",
                "exec of",
                "failed to execute",
                "permission denied",
            ]
            .iter()
            .any(|p| s.contains(p))
    }

    async fn push_once(
        &self,
        t: &Transport,
        v: VantageRef,
        limits: Limits,
    ) -> std::result::Result<(), push::PushError> {
        let mut pushed = self.pushed.lock().await;
        if pushed.contains(&v) {
            return Ok(());
        }
        let exe = match &self.opts.self_exe {
            Some(p) => p.clone(),
            None => {
                std::env::current_exe().map_err(|e| push::PushError::CurrentExe(e.to_string()))?
            }
        };
        let how = push::push(
            t,
            &exe,
            &self.opts.agent_path,
            limits.with_output(64 * 1024),
        )
        .await?;
        eprintln!(
            "phoenix-doctor: pushed {} to {v} as {} ({how})",
            exe.display(),
            self.opts.agent_path
        );
        pushed.insert(v);
        Ok(())
    }
}

impl Runner for Vantages {
    fn run<'a>(&'a self, steps: &'a [Step], ctx: &'a ProbeCtx) -> BoxFuture<'a, Vec<Observation>> {
        Box::pin(self.run_batch(steps, ctx))
    }

    fn one_call(&self, v: VantageRef) -> bool {
        matches!(self.mode(v), Mode::Agent(_))
    }

    fn per_step(&self, v: VantageRef) -> bool {
        matches!(
            self.mode(v),
            Mode::Local | Mode::Simulated(_) | Mode::Substituted(None)
        )
    }

    fn run_job<'a>(
        &'a self,
        steps: &'a [Step],
        job: &'a JobSpec,
        ctx: &'a ProbeCtx,
    ) -> BoxFuture<'a, Vec<Observation>> {
        Box::pin(async move {
            let Some(v) = steps.first().map(|s| s.from) else {
                return Vec::new();
            };
            match self.mode(v) {
                Mode::Agent(t) => self.run_agent(&t, steps, ctx, v, job).await,
                _ => self.run_batch(steps, ctx).await,
            }
        })
    }
}

/// Why the agent in a vantage gave no usable answer.
#[derive(Debug, thiserror::Error)]
enum AgentError {
    #[error("encoding the job: {0}")]
    Encode(String),
    /// The transport failed: it could not start, timed out, answered too much, or its wrapper
    /// (`qm guest exec`) said no.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The agent (or the shell that should start it) exited with an error.
    #[error("{error}{}", old_agent_hint(.error))]
    Exited { error: TransportError },
    /// The agent's output is not a job result of this version.
    #[error("{command}: {error}")]
    Answer {
        command: String,
        error: job::AnswerError,
    },
}

/// The deadline and output bound of an agent's call, and the margin the agent is told to finish
/// within: the transport is killed a little before the run's deadline, and the agent is told
/// to finish a little before that, so a hung guest is the transport's failure, never a step
/// cut by the budget.
fn agent_limits(
    spec: &JobSpec,
    steps: &[Step],
    ctx: &ProbeCtx,
    read: &[String],
) -> (Limits, Duration) {
    let remaining = spec
        .deadline
        .saturating_duration_since(tokio::time::Instant::now());
    let margin = (remaining / 10).min(Duration::from_millis(500));
    let files = if read.is_empty() {
        0
    } else {
        files::json_limit(read)
    };
    let limits = Limits {
        deadline: spec.deadline - margin,
        max_output: job::answer_limit(steps, ctx.body_limit).saturating_add(files),
    };
    (limits, margin)
}

/// One tool error per step, at `phase`.
fn fail_all(steps: &[Step], phase: Phase, msg: &str) -> Vec<Observation> {
    steps
        .iter()
        .map(|s| Observation::tool_error(&s.id, phase, msg))
        .collect()
}

/// What to do when the agent in a guest is older than this tool (it refuses the job's version).
fn old_agent_hint(e: &TransportError) -> &'static str {
    let stderr = match &e.failure {
        Failure::Exited { stderr, .. } => stderr.as_str(),
        _ => "",
    };
    if stderr.contains("is not supported (this agent speaks version") {
        " (the agent in the guest is another version of phoenix-doctor: install this one there, or run with --push)"
    } else {
        ""
    }
}

fn stamp(mut obs: Vec<Observation>, note: VantageNote) -> Vec<Observation> {
    for o in &mut obs {
        o.vantage = note.clone();
    }
    obs
}

fn annotate(obs: &mut [Observation], why: &str) {
    for o in obs {
        o.message = format!("{} [{why}]", o.message);
    }
}

/// A guest's `/etc/hosts` and `/etc/resolv.conf`, read through its transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestFiles {
    pub hosts: String,
    pub resolv_conf: String,
}

/// A guest's `/etc/hosts` and `/etc/resolv.conf`, and the `extra` files, read through its
/// transport in one `sh -c` (see [`files::READ_SCRIPT`]). A missing resolv.conf reads as empty;
/// an unreadable `/etc/hosts` or a failing call is an error. Every file is bounded like a system
/// file read here, the whole answer by [`files::ANSWER_LIMIT`].
pub async fn read_guest_files(
    t: &Transport,
    limits: Limits,
    extra: &[String],
) -> std::result::Result<(GuestFiles, Vec<FileRead>), GuestFilesError> {
    let mut paths = vec!["/etc/hosts".to_string(), "/etc/resolv.conf".to_string()];
    paths.extend(
        extra
            .iter()
            .filter(|p| !paths.contains(p))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let reads = read_through(t, &paths, limits).await?;
    let text = |p: &str| reads.iter().find(|r| r.path() == p);
    let hosts = match text("/etc/hosts") {
        Some(FileRead::Text { text, .. }) => text.clone(),
        Some(FileRead::Unreadable { why, .. }) => {
            return Err(GuestFilesError::HostsUnreadable {
                via: t.via(),
                why: why.clone(),
            })
        }
        None => return Err(GuestFilesError::HostsNotRead { via: t.via() }),
    };
    let resolv_conf = text("/etc/resolv.conf")
        .and_then(FileRead::text)
        .unwrap_or_default()
        .to_string();
    Ok((GuestFiles { hosts, resolv_conf }, reads))
}

/// Why a guest's system files could not be read through its transport.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestFilesError {
    /// The call failed, or the read script exited with an error.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The guest's `/etc/hosts` could not be read (why, from the guest).
    #[error("{via}:/etc/hosts: {why}")]
    HostsUnreadable { via: String, why: String },
    /// The answer does not mention `/etc/hosts`.
    #[error("{via}: /etc/hosts was not read")]
    HostsNotRead { via: String },
}

/// Read `paths` in the vantage behind `t` with one `sh -c`; `Err` when the call itself failed.
pub async fn read_through(
    t: &Transport,
    paths: &[String],
    limits: Limits,
) -> std::result::Result<Vec<FileRead>, TransportError> {
    let limits = limits.with_output(files::transport_limit(paths));
    let nonce = files::nonce();
    let cmd = files::read_command(&nonce, paths);
    let o = t
        .run(&cmd, None, limits)
        .await?
        .ok_or_exited(format!("{} sh -c <read script>", t.via()))?;
    Ok(files::parse_answer(&nonce, paths, &o.stdout))
}

/// Read `paths` (a glob on the last component is expanded in the guest) from vantage `v`,
/// read-only and bounded, for commands that run no steps there. Files already read with `v`'s
/// steps ([`Vantages::attach_reads`]) are not read again; otherwise one call: here, under a
/// simulated vantage's root, or one `sh -c` through the guest's transport. Nothing fails: an
/// unreadable file (or a guest that cannot be reached) is [`FileRead::Unreadable`] with why.
pub async fn read_files(vs: &Vantages, v: VantageRef, paths: &[String]) -> Vec<FileRead> {
    if let Some(got) = vs.recall(v, paths) {
        return got;
    }
    let all = |why: String| -> Vec<FileRead> {
        paths
            .iter()
            .map(|p| FileRead::Unreadable {
                path: p.clone(),
                why: why.clone(),
            })
            .collect()
    };
    let got = match vs.mode(v) {
        Mode::Local => read_here(Path::new("/"), paths, None).await,
        Mode::Simulated(sys) => match vs.opts.roots.get(&v) {
            Some(root) => read_here(root, paths, Some(sys)).await,
            None => {
                let mut got = read_here(Path::new("/nonexistent-root"), paths, Some(sys)).await;
                for r in &mut got {
                    if let FileRead::Unreadable { path, why } = r {
                        if path != "/etc/hosts" && path != "/etc/resolv.conf" {
                            *why = format!("the site file gives {v} no `root`: only its /etc/hosts and /etc/resolv.conf are simulated");
                        }
                    }
                }
                got
            }
        },
        Mode::Agent(t) | Mode::Substituted(Some(t)) => {
            let limits = Limits::within(Duration::from_secs(30), 0);
            match read_through(&t, paths, limits).await {
                Ok(got) => got,
                Err(e) => all(format!("reading through the transport failed: {e}")),
            }
        }
        Mode::Substituted(None) => all(format!(
            "no transport into {v} (--vantage host without --via for its kind)"
        )),
        Mode::Unreachable(why) => all(why.to_string()),
    };
    vs.remember(v, paths, &got);
    got
}

/// [`files::read_local`] off the async threads; a simulated vantage's system files stand for
/// its `/etc/hosts` and `/etc/resolv.conf`.
async fn read_here(root: &Path, paths: &[String], sys: Option<SystemFiles>) -> Vec<FileRead> {
    let (root, paths2) = (root.to_path_buf(), paths.to_vec());
    let r = tokio::task::spawn_blocking(move || {
        files::read_local(&root, &paths2, &|p| match (&sys, p) {
            (Some(s), "/etc/hosts") => Some(s.hosts_file.clone()),
            (Some(s), "/etc/resolv.conf") => Some(s.resolv_conf.clone()),
            _ => None,
        })
    })
    .await;
    r.unwrap_or_else(|e| {
        paths
            .iter()
            .map(|p| FileRead::Unreadable {
                path: p.clone(),
                why: format!("the reading task failed: {e}"),
            })
            .collect()
    })
}

/// Run `steps` from here with `files` as the system files; evidence names the guest's files.
async fn substitute_with_files(
    steps: &[Step],
    ctx: &ProbeCtx,
    files: &GuestFiles,
    v: VantageRef,
    spec: Option<&JobSpec>,
) -> Vec<Observation> {
    let written = (|| -> std::io::Result<_> {
        let mut h = tempfile::NamedTempFile::new()?;
        h.write_all(files.hosts.as_bytes())?;
        let mut r = tempfile::NamedTempFile::new()?;
        r.write_all(files.resolv_conf.as_bytes())?;
        Ok((h, r))
    })();
    let (h, r) = match written {
        Ok(x) => x,
        Err(e) => {
            return steps
                .iter()
                .map(|s| {
                    Observation::tool_error(
                        &s.id,
                        crate::observe::Phase::Transport,
                        format!("writing {v}'s system files here: {e}"),
                    )
                })
                .collect()
        }
    };
    let ctx = ProbeCtx {
        system: SystemFiles {
            hosts_file: h.path().to_path_buf(),
            resolv_conf: r.path().to_path_buf(),
        },
        ..ctx.clone()
    };
    let mut obs = match spec {
        Some(spec) => job::run_with_deps(steps, &ctx, spec).await,
        None => job::run_concurrently(steps, &ctx).await,
    };
    let (hp, rp) = (
        h.path().display().to_string(),
        r.path().display().to_string(),
    );
    for o in &mut obs {
        // The probe names the files it read in its message too: name the guest's, not the copies.
        o.message = o
            .message
            .replace(&hp, &format!("{v}:/etc/hosts"))
            .replace(&rp, &format!("{v}:/etc/resolv.conf"));
        if let Evidence::Dns(d) = &mut o.evidence {
            for e in &mut d.hosts_entries {
                if e.file == hp {
                    e.file = format!("{v}:/etc/hosts");
                }
            }
            if let Some(rc) = &mut d.resolv_conf {
                if rc.file == rp {
                    rc.file = format!("{v}:/etc/resolv.conf");
                }
            }
        }
    }
    obs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(via: &[&str], force_host: bool, dir: &Path) -> Vantages {
        let via: Vec<String> = via.iter().map(|v| v.to_string()).collect();
        Vantages::new(VantageOptions {
            via: parse_via(&via).unwrap(),
            force_host,
            agent_path: "phoenix-doctor".into(),
            site: site_vantages(dir).unwrap(),
            ..VantageOptions::default()
        })
    }

    #[test]
    fn via_values_are_checked() {
        let m = parse_via(&["lxc=ip netns exec phx-{id}".into(), "vm=ssh".into()]).unwrap();
        assert_eq!(
            m[&Kind::Lxc].prefix(Kind::Lxc, Some(7)),
            ["ip", "netns", "exec", "phx-7"]
        );
        assert_eq!(m[&Kind::Vm].style(), template::Style::Ssh);
        for bad in [
            "lxc",
            "ct=pct",
            "vm='qm guest",
            "host=",
            "lxc='pct exec {id} --'",
        ] {
            let e = parse_via(&[bad.to_string()]).unwrap_err();
            assert_eq!(e.kind(), crate::error::Kind::Input, "{bad}");
            assert!(e.to_string().contains("--via"), "{e}");
        }
    }

    #[test]
    fn each_vantage_gets_its_way_of_running() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(site::SITE_FILE),
            "[vantage.\"lxc:102\"]\nhosts_file = \"h\"\n",
        )
        .unwrap();
        let v = with(&[], false, dir.path());
        assert!(matches!(v.mode(VantageRef::Host), Mode::Local));
        assert!(
            matches!(v.mode(VantageRef::Lxc(102)), Mode::Simulated(f) if f.hosts_file == dir.path().join("h"))
        );
        match v.mode(VantageRef::Lxc(103)) {
            Mode::Agent(t) => assert_eq!(t.via(), "pct exec 103 --"),
            m => panic!("{m:?}"),
        }
        match v.mode(VantageRef::Vm(1001)) {
            Mode::Agent(t) => assert_eq!(t.via(), "qm guest exec 1001 --"),
            m => panic!("{m:?}"),
        }
        let v = with(&["host=ssh", "lxc=ip netns exec n{id}"], false, dir.path());
        assert!(matches!(v.mode(VantageRef::Host), Mode::Agent(t) if t.via().starts_with("ssh ")));
        // The simulated vantage from the site file wins over a transport.
        assert!(matches!(v.mode(VantageRef::Lxc(102)), Mode::Simulated(_)));
        let v = with(&["lxc=ip netns exec n{id}"], true, dir.path());
        assert!(matches!(v.mode(VantageRef::Host), Mode::Local));
        assert!(
            matches!(v.mode(VantageRef::Lxc(5)), Mode::Substituted(Some(t)) if t.via() == "ip netns exec n5")
        );
        assert!(matches!(v.mode(VantageRef::Vm(5)), Mode::Substituted(None)));
    }

    #[test]
    fn guests_on_other_nodes_are_reached_through_their_node() {
        let listing = r#"[
          {"vmid":101,"node":"pve1","type":"lxc","status":"running"},
          {"vmid":102,"node":"pve2","type":"lxc","status":"running"},
          {"vmid":1001,"node":"pve3","type":"qemu","status":"running"},
          {"vmid":1002,"node":"pve1","type":"qemu","status":"running"},
          {"vmid":103,"node":"pve2","type":"lxc","status":"stopped"}
        ]"#;
        let c = cluster::parse_resources("pve1", listing.as_bytes());
        let v = Vantages::new(VantageOptions {
            agent_path: "phoenix-doctor".into(),
            cluster: Some(c.clone()),
            ..VantageOptions::default()
        });
        fn via_of(v: &Vantages, r: VantageRef) -> String {
            match v.mode(r) {
                Mode::Agent(t) => t.via(),
                m => panic!("{m:?}"),
            }
        }
        let via = |r| via_of(&v, r);
        assert_eq!(via(VantageRef::Lxc(101)), "pct exec 101 --");
        assert_eq!(
            via(VantageRef::Lxc(102)),
            "ssh -o BatchMode=yes root@pve2 pct exec 102 --"
        );
        assert_eq!(
            via(VantageRef::Vm(1001)),
            "ssh -o BatchMode=yes root@pve3 qm guest exec 1001 --"
        );
        assert_eq!(via(VantageRef::Vm(1002)), "qm guest exec 1002 --");
        assert!(matches!(v.mode(VantageRef::Host), Mode::Local));
        assert!(
            matches!(v.mode(VantageRef::Lxc(103)), Mode::Unreachable(m) if m.to_string() == "lxc:103 is stopped on node pve2")
        );
        assert!(!v.one_call(VantageRef::Lxc(103)));
        // `{node}` in a given template; the host is on this node.
        let v = Vantages::new(VantageOptions {
            via: parse_via(&[
                "lxc=ssh root@{node} lxc-attach {id} --".into(),
                "host=ssh root@{node}".into(),
            ])
            .unwrap(),
            agent_path: "phoenix-doctor".into(),
            cluster: Some(c),
            ..VantageOptions::default()
        });
        assert_eq!(
            via_of(&v, VantageRef::Lxc(102)),
            "ssh root@pve2 lxc-attach 102 --"
        );
        assert_eq!(via_of(&v, VantageRef::Host), "ssh root@pve1");
    }

    #[tokio::test]
    async fn files_are_read_under_a_simulated_root_or_say_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc/nginx/sites-enabled")).unwrap();
        std::fs::write(root.join("etc/nginx/sites-enabled/gateway"), "server {}\n").unwrap();
        std::fs::write(dir.path().join("hosts"), "198.18.0.9 ca\n").unwrap();
        let sys = SystemFiles {
            hosts_file: dir.path().join("hosts"),
            resolv_conf: root.join("etc/resolv.conf"),
        };
        let v = Vantages::new(VantageOptions {
            agent_path: "phoenix-doctor".into(),
            site: [
                (VantageRef::Lxc(101), sys.clone()),
                (VantageRef::Lxc(103), sys),
            ]
            .into_iter()
            .collect(),
            roots: [(VantageRef::Lxc(101), root)].into_iter().collect(),
            force_host: false,
            ..VantageOptions::default()
        });
        let paths: Vec<String> = [
            "/etc/hosts",
            "/etc/nginx/sites-enabled/*",
            "/etc/resolv.conf",
        ]
        .map(String::from)
        .to_vec();
        let got = read_files(&v, VantageRef::Lxc(101), &paths).await;
        assert_eq!(
            got,
            vec![
                FileRead::Text {
                    path: "/etc/hosts".into(),
                    text: "198.18.0.9 ca\n".into()
                },
                FileRead::Text {
                    path: "/etc/nginx/sites-enabled/gateway".into(),
                    text: "server {}\n".into()
                },
                FileRead::Unreadable {
                    path: "/etc/resolv.conf".into(),
                    why: "no such file".into()
                },
            ]
        );
        // Without a root, only the simulated system files exist.
        let got = read_files(&v, VantageRef::Lxc(103), &paths).await;
        assert_eq!(got[0].text(), Some("198.18.0.9 ca\n"));
        assert!(
            matches!(&got[1], FileRead::Unreadable { why, .. } if why.contains("no `root`")),
            "{got:?}"
        );
        // A stopped guest and a guest with no transport: unreadable, with the reason.
        let c = cluster::parse_resources(
            "pve1",
            br#"[{"vmid":9,"node":"pve2","type":"lxc","status":"stopped"}]"#,
        );
        let v = Vantages::new(VantageOptions {
            agent_path: "phoenix-doctor".into(),
            cluster: Some(c),
            ..VantageOptions::default()
        });
        let got = read_files(&v, VantageRef::Lxc(9), &paths[..1]).await;
        assert!(
            matches!(&got[0], FileRead::Unreadable { why, .. } if why == "lxc:9 is stopped on node pve2"),
            "{got:?}"
        );
        let v = Vantages::new(VantageOptions {
            force_host: true,
            agent_path: "phoenix-doctor".into(),
            ..VantageOptions::default()
        });
        let got = read_files(&v, VantageRef::Vm(5), &paths[..1]).await;
        assert!(
            matches!(&got[0], FileRead::Unreadable { why, .. } if why.contains("no transport into vm:5")),
            "{got:?}"
        );
    }

    /// A TCP step from lxc:9 to a closed loopback port.
    fn lxc9_step() -> Step {
        Step {
            id: "s".into(),
            hop: "h".into(),
            from: VantageRef::Lxc(9),
            to: "t".into(),
            layer: crate::observe::Layer::Tcp,
            probe: ProbeSpec::Tcp {
                addr: "127.0.0.176:9".parse().unwrap(),
            },
            expect: String::new(),
            provenance: Vec::new(),
            depends_on: Vec::new(),
            through: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_stopped_guest_cannot_be_judged_and_is_not_called() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("called");
        let c = cluster::parse_resources(
            "pve1",
            br#"[{"vmid":9,"node":"pve2","type":"lxc","status":"stopped"}]"#,
        );
        let v = Vantages::new(VantageOptions {
            via: parse_via(&[format!("lxc=touch {} --", marker.display())]).unwrap(),
            agent_path: "phoenix-doctor".into(),
            cluster: Some(c),
            ..VantageOptions::default()
        });
        let step = lxc9_step();
        let obs = v
            .run(std::slice::from_ref(&step), &ProbeCtx::default())
            .await;
        assert_eq!(obs[0].outcome, crate::observe::Outcome::ToolError);
        assert_eq!(obs[0].message, "lxc:9 is stopped on node pve2");
        assert_eq!(obs[0].phase.map(|x| x.as_str()), Some("placement"));
        assert!(
            !marker.exists(),
            "a transport call went into a stopped guest"
        );
    }

    #[test]
    fn a_missing_agent_is_told_from_a_failing_one() {
        let v = Vantages::new(VantageOptions {
            agent_path: "phoenix-doctor".into(),
            ..VantageOptions::default()
        });
        assert!(v.agent_missing(Some(127), "sh: 1: phoenix-doctor: not found"));
        assert!(v.agent_missing(Some(126), ""));
        assert!(v.agent_missing(
            Some(1),
            "exec of \"phoenix-doctor\" failed: No such file or directory"
        ));
        assert!(v.agent_missing(
            None,
            "Agent error: Failed to execute child process “phoenix-doctor” (No such file or directory)"
        ));
        // The agent's own errors, and transport failures, are not "missing".
        assert!(!v.agent_missing(Some(2), "phoenix-doctor: agent: stdin is not a job"));
        assert!(!v.agent_missing(
            Some(255),
            "Cannot open network namespace \"x\": No such file or directory"
        ));
        assert!(!v.agent_missing(Some(255), "QEMU guest agent is not running"));
        assert!(!v.agent_missing(
            Some(1),
            "Configuration file 'nodes/pve/lxc/999.conf' does not exist"
        ));
    }

    #[tokio::test]
    async fn a_failing_transport_gives_tool_errors_not_divergences() {
        let v = Vantages::new(VantageOptions {
            via: parse_via(&["lxc=sh -c 'echo guest {id} is not running >&2; exit 1' --".into()])
                .unwrap(),
            agent_path: "phoenix-doctor".into(),
            ..VantageOptions::default()
        });
        let step = lxc9_step();
        let obs = v
            .run(std::slice::from_ref(&step), &ProbeCtx::default())
            .await;
        assert_eq!(obs[0].outcome, crate::observe::Outcome::ToolError);
        assert_eq!(obs[0].phase.map(|x| x.as_str()), Some("transport"));
        assert!(
            obs[0].message.contains("guest 9 is not running"),
            "{:?}",
            obs[0]
        );
        assert!(obs[0].message.contains("sh -c"), "{:?}", obs[0]);
        assert_eq!(obs[0].vantage.name, "lxc:9");
        assert!(!obs[0].vantage.substituted);
    }
}
