//! The agent protocol: a job of steps (with their dependencies, the outcomes of prerequisites
//! elsewhere, the scope and a budget) as JSON on stdin, observations as JSON on stdout; the
//! limits on both sides.

use super::files::{self, FileRead};
use super::JobSpec;
use crate::engine::{self, Scope, Settings};
use crate::error::{Error, Result};
use crate::observe::{Observation, Outcome};
use crate::plan::{Plan, ProbeSpec, Step};
use crate::probe::{self, ProbeCtx};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Version of the agent protocol (2: jobs carry dependencies, prior outcomes, scope, budget;
/// 3: jobs carry files to read, answered in `files`).
pub const AGENT_PROTOCOL_VERSION: u32 = 3;
/// The most steps one job may hold.
pub const MAX_JOB_STEPS: usize = 10_000;
/// The largest `body_limit` a job may ask for.
pub const MAX_BODY_LIMIT: usize = 1 << 20;
/// The longest budget a job may ask for.
pub const MAX_JOB_BUDGET: Duration = Duration::from_secs(3600);
/// How many steps an agent runs at once.
pub const AGENT_CONCURRENCY: usize = 64;
/// The most bytes the agent reads from stdin.
pub const MAX_JOB_BYTES: usize = 32 << 20;

/// What the runner sends to `phoenix-doctor agent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub version: u32,
    /// Timeout for each phase of each probe.
    pub timeout_ms: u64,
    /// The whole job ends within this (unfinished steps: cut by the budget).
    pub budget_ms: u64,
    /// Bodies are read up to this many bytes.
    pub body_limit: usize,
    /// The networks the steps may reach: a step outside is answered `out-of-scope` and sends
    /// nothing. An empty scope allows nothing.
    pub scope: Vec<ipnet::IpNet>,
    /// Outcomes of prerequisites that ran elsewhere (another vantage).
    #[serde(default)]
    pub prior: BTreeMap<String, Outcome>,
    /// The steps, with `depends_on` among them or on `prior`.
    pub steps: Vec<Step>,
    /// Files to read in the guest, read-only and bounded (a glob on the last component is
    /// expanded there); answered in [`JobResult::files`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<String>,
    /// `--warn-days` of the run (a served leaf's remaining life that is close to expiry).
    #[serde(default = "default_warn_days")]
    pub warn_days: u32,
}

fn default_warn_days() -> u32 {
    crate::probe::tls::DEFAULT_WARN_DAYS
}

/// What the agent answers: one observation per step, in job order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub version: u32,
    pub observations: Vec<Observation>,
    /// The files the job's `read` asked for (globs expanded), or why each could not be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRead>,
}

impl Job {
    pub fn new(steps: &[Step], ctx: &ProbeCtx, spec: &JobSpec, budget: Duration) -> Job {
        Job {
            version: AGENT_PROTOCOL_VERSION,
            timeout_ms: ctx.timeout.as_millis() as u64,
            budget_ms: budget.as_millis() as u64,
            body_limit: ctx.body_limit,
            scope: spec.scope.allowed.clone(),
            prior: spec.prior.clone(),
            steps: steps.to_vec(),
            read: Vec::new(),
            warn_days: ctx.warn_days,
        }
    }

    /// The probe context inside the vantage: its own `/etc/hosts` and `/etc/resolv.conf`.
    pub fn ctx(&self) -> ProbeCtx {
        ProbeCtx {
            timeout: Duration::from_millis(self.timeout_ms),
            body_limit: self.body_limit,
            scope: Some(crate::engine::Scope {
                allowed: self.scope.clone(),
            }),
            warn_days: self.warn_days,
            ..ProbeCtx::default()
        }
    }

    /// What the engine inside the agent needs.
    fn spec(&self) -> JobSpec {
        JobSpec {
            prior: self.prior.clone(),
            scope: Scope {
                allowed: self.scope.clone(),
            },
            deadline: tokio::time::Instant::now() + Duration::from_millis(self.budget_ms),
        }
    }

    /// Refuse what an agent must not do: too many steps, too large a body limit, no time.
    fn check(&self) -> std::result::Result<(), String> {
        if self.version != AGENT_PROTOCOL_VERSION {
            return Err(format!(
                "job version {} is not supported (this agent speaks version {AGENT_PROTOCOL_VERSION})",
                self.version
            ));
        }
        if self.read.len() > files::MAX_PATHS {
            return Err(format!(
                "the job reads {} paths; an agent reads at most {}",
                self.read.len(),
                files::MAX_PATHS
            ));
        }
        if self.steps.len() > MAX_JOB_STEPS {
            return Err(format!(
                "the job has {} steps; an agent takes at most {MAX_JOB_STEPS}",
                self.steps.len()
            ));
        }
        if self.body_limit > MAX_BODY_LIMIT {
            return Err(format!(
                "body_limit {} is over the agent's maximum of {MAX_BODY_LIMIT} bytes",
                self.body_limit
            ));
        }
        if self.timeout_ms == 0 || self.budget_ms == 0 {
            return Err("timeout_ms and budget_ms must be above 0".into());
        }
        if self.budget_ms > MAX_JOB_BUDGET.as_millis() as u64 {
            return Err(format!(
                "budget_ms {} is over the agent's maximum of {}",
                self.budget_ms,
                MAX_JOB_BUDGET.as_millis()
            ));
        }
        Ok(())
    }
}

/// The most bytes the host reads from an agent's answer (and from each of its pipes) for a job
/// of `steps`: 64 KiB, plus 16 KiB per step, plus six times `body_limit` per HTTP step (a body
/// is quoted in the answer, where an escaped control character takes six bytes).
pub fn answer_limit(steps: &[Step], body_limit: usize) -> usize {
    let http = steps
        .iter()
        .filter(|s| matches!(s.probe, ProbeSpec::Http { .. }))
        .count();
    (64usize << 10)
        .saturating_add(steps.len().saturating_mul(16 << 10))
        .saturating_add(http.saturating_mul(body_limit.saturating_mul(6)))
}

/// Run `steps` from here with their dependencies resolved by the engine (the same logic as a
/// whole plan's), at most [`AGENT_CONCURRENCY`] at once, within `spec`'s scope and deadline.
pub async fn run_with_deps(steps: &[Step], ctx: &ProbeCtx, spec: &JobSpec) -> Vec<Observation> {
    let plan = Plan {
        target: String::new(),
        hops: Vec::new(),
        steps: steps.to_vec(),
    };
    let settings = Settings {
        concurrency: AGENT_CONCURRENCY,
        timeout: ctx.timeout,
        budget: spec
            .deadline
            .saturating_duration_since(tokio::time::Instant::now()),
        scope: spec.scope.clone(),
        systems: steps.iter().map(|s| (s.from, ctx.system.clone())).collect(),
        body_limit: ctx.body_limit,
        prior: spec.prior.clone(),
        warn_days: ctx.warn_days,
        ..Settings::default()
    };
    engine::execute(&plan, &settings).await.observations
}

/// Run every step with `probe::run`, concurrently; observations come back in step order.
pub async fn run_concurrently(steps: &[Step], ctx: &ProbeCtx) -> Vec<Observation> {
    let ctx = Arc::new(ctx.clone());
    let mut set = tokio::task::JoinSet::new();
    for (i, s) in steps.iter().enumerate() {
        let ctx = ctx.clone();
        let s = s.clone();
        set.spawn(async move { (i, probe::run(&ctx, &s).await) });
    }
    let mut out: Vec<Option<Observation>> = vec![None; steps.len()];
    while let Some(r) = set.join_next().await {
        if let Ok((i, o)) = r {
            out[i] = Some(o);
        }
    }
    out.into_iter()
        .zip(steps)
        .map(|(o, s)| {
            o.unwrap_or_else(|| {
                Observation::tool_error(
                    &s.id,
                    crate::observe::Phase::Probe,
                    "the probe task panicked",
                )
            })
        })
        .collect()
}

/// Parse a job from the agent's stdin; errors say what was expected.
pub fn parse_job(input: &[u8]) -> Result<Job> {
    let job: Job = serde_json::from_slice(input).map_err(|e| {
        Error::input(format!(
            "agent: stdin is not a job (line {}, column {}): {e}; expected {{\"version\": {AGENT_PROTOCOL_VERSION}, \"timeout_ms\": ..., \"budget_ms\": ..., \"body_limit\": ..., \"scope\": [...], \"steps\": [...]}}",
            e.line(),
            e.column()
        ))
    })?;
    job.check()
        .map_err(|e| Error::input(format!("agent: {e}")))?;
    Ok(job)
}

/// The whole agent: parse a job, run it, serialize the result.
pub async fn serve(input: &[u8]) -> Result<Vec<u8>> {
    let job = parse_job(input)?;
    // Files first: a socket table read before the steps does not show the steps' own sockets.
    let read = job.read.clone();
    let files = tokio::task::spawn_blocking(move || {
        files::read_local(std::path::Path::new("/"), &read, &|_| None)
    })
    .await
    .map_err(|e| Error::tool(format!("agent: reading files: {e}")))?;
    let observations = run_with_deps(&job.steps, &job.ctx(), &job.spec()).await;
    let res = JobResult {
        version: AGENT_PROTOCOL_VERSION,
        observations,
        files,
    };
    let mut out = serde_json::to_vec(&res)
        .map_err(|e| Error::tool(format!("agent: encoding the result: {e}")))?;
    out.push(b'\n');
    Ok(out)
}

/// Why the agent's answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// Not the JSON of a job result (the parser's error and the first 200 characters).
    #[error("the agent's output is not a job result ({error}): {head}")]
    NotAResult { error: String, head: String },
    /// Another version of the agent answered.
    #[error("the agent answered protocol version {got}, expected {AGENT_PROTOCOL_VERSION}")]
    Version { got: u32 },
}

/// Parse the agent's answer for `steps`; errors say why it could not be read.
pub fn parse_result(
    stdout: &[u8],
    steps: &[Step],
) -> std::result::Result<Vec<Observation>, AnswerError> {
    parse_result_with_files(stdout, steps, &[]).map(|(o, _)| o)
}

/// [`parse_result`], and the files the job asked for in `read` (every request answered: one
/// the agent does not mention is unreadable with the reason).
pub fn parse_result_with_files(
    stdout: &[u8],
    steps: &[Step],
    read: &[String],
) -> std::result::Result<(Vec<Observation>, Vec<FileRead>), AnswerError> {
    let res: JobResult = serde_json::from_slice(stdout).map_err(|e| AnswerError::NotAResult {
        error: e.to_string(),
        head: String::from_utf8_lossy(stdout)
            .trim()
            .chars()
            .take(200)
            .collect(),
    })?;
    if res.version != AGENT_PROTOCOL_VERSION {
        return Err(AnswerError::Version { got: res.version });
    }
    let mut got = res.files;
    for p in read {
        if !got.iter().any(|r| files::covers(p, r.path())) && !files::is_glob(p) {
            got.push(FileRead::Unreadable {
                path: p.clone(),
                why: "the agent's answer does not mention this file".into(),
            });
        }
    }
    let mut by_id: std::collections::HashMap<String, Observation> = res
        .observations
        .into_iter()
        .map(|o| (o.step.clone(), o))
        .collect();
    let obs = steps
        .iter()
        .map(|s| {
            by_id.remove(&s.id).unwrap_or_else(|| {
                Observation::tool_error(
                    &s.id,
                    crate::observe::Phase::Transport,
                    "the agent returned no observation for this step",
                )
            })
        })
        .collect();
    Ok((obs, got))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{Evidence, Outcome};
    use crate::plan::{ProbeSpec, VantageRef};

    fn tcp_step(id: &str, addr: std::net::SocketAddr) -> Step {
        Step {
            id: id.into(),
            hop: "h".into(),
            from: VantageRef::Lxc(102),
            to: "x".into(),
            layer: crate::observe::Layer::Tcp,
            probe: ProbeSpec::Tcp { addr },
            expect: String::new(),
            provenance: Vec::new(),
            depends_on: Vec::new(),
            through: Vec::new(),
        }
    }

    fn loopback_spec() -> JobSpec {
        JobSpec {
            prior: BTreeMap::new(),
            scope: Scope {
                allowed: vec!["127.0.0.0/8".parse().unwrap()],
            },
            deadline: tokio::time::Instant::now() + Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn a_job_round_trips_through_the_agent() {
        let listener = tokio::net::TcpListener::bind("127.0.0.174:0")
            .await
            .unwrap();
        let open = listener.local_addr().unwrap();
        let ctx = ProbeCtx {
            timeout: Duration::from_millis(800),
            ..ProbeCtx::default()
        };
        let steps = vec![
            tcp_step("open.tcp", open),
            tcp_step("closed.tcp", "127.0.0.174:9".parse().unwrap()),
        ];
        let input = serde_json::to_vec(&Job::new(
            &steps,
            &ctx,
            &loopback_spec(),
            Duration::from_secs(5),
        ))
        .unwrap();
        let job: Job = serde_json::from_slice(&input).unwrap();
        assert_eq!(job.timeout_ms, 800);
        assert_eq!(job.steps, steps);
        let out = serve(&input).await.unwrap();
        let obs = parse_result(&out, &steps).unwrap();
        assert_eq!(obs.len(), 2);
        assert_eq!(obs[0].step, "open.tcp");
        assert_eq!(obs[0].outcome, Outcome::Ok, "{:?}", obs[0]);
        assert!(
            matches!(&obs[0].evidence, Evidence::Tcp(t) if t.state == "open"),
            "{:?}",
            obs[0]
        );
        assert_eq!(obs[1].outcome, Outcome::Failed, "{:?}", obs[1]);
        assert!(
            matches!(&obs[1].evidence, Evidence::Tcp(t) if t.state == "refused"),
            "{:?}",
            obs[1]
        );
    }

    #[tokio::test]
    async fn bad_jobs_are_input_errors() {
        let e = serve(b"{\"version\": 1, \"steps\": 3}").await.unwrap_err();
        assert_eq!(e.kind(), crate::error::Kind::Input);
        assert!(e.to_string().contains("line 1"), "{e}");
        let job = |v: u32, steps: usize, body: usize| {
            let step = tcp_step("s", "127.0.0.1:1".parse().unwrap());
            serde_json::to_vec(&Job {
                version: v,
                timeout_ms: 1,
                budget_ms: 100,
                body_limit: body,
                scope: vec![],
                prior: BTreeMap::new(),
                steps: vec![step; steps],
                read: Vec::new(),
                warn_days: 14,
            })
            .unwrap()
        };
        let e = serve(&job(9, 0, 1)).await.unwrap_err();
        assert!(e.to_string().contains("version 9"), "{e}");
        let e = serve(&job(AGENT_PROTOCOL_VERSION, MAX_JOB_STEPS + 1, 1))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), crate::error::Kind::Input);
        assert!(e.to_string().contains("at most 10000"), "{e}");
        let e = serve(&job(AGENT_PROTOCOL_VERSION, 0, MAX_BODY_LIMIT + 1))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("body_limit"), "{e}");
        let out = serve(&job(AGENT_PROTOCOL_VERSION, 0, 1)).await.unwrap();
        assert_eq!(
            serde_json::from_slice::<JobResult>(&out)
                .unwrap()
                .observations,
            vec![]
        );
    }

    #[test]
    fn results_are_matched_to_steps_by_id() {
        let steps = vec![
            tcp_step("a", "127.0.0.1:1".parse().unwrap()),
            tcp_step("b", "127.0.0.1:2".parse().unwrap()),
        ];
        let res = JobResult {
            version: AGENT_PROTOCOL_VERSION,
            observations: vec![Observation::tool_error(
                "b",
                crate::observe::Phase::Probe,
                "x",
            )],
            files: Vec::new(),
        };
        let obs = parse_result(&serde_json::to_vec(&res).unwrap(), &steps).unwrap();
        assert_eq!(obs[0].step, "a");
        assert!(obs[0].message.contains("no observation"));
        assert_eq!(obs[1].message, "x");
        let e = parse_result(b"sh: 1: phoenix-doctor: not found", &steps).unwrap_err();
        assert!(
            matches!(&e, AnswerError::NotAResult { head, .. } if head == "sh: 1: phoenix-doctor: not found"),
            "{e:?}"
        );
        assert!(e
            .to_string()
            .starts_with("the agent's output is not a job result ("));
        let wrong = serde_json::to_vec(&JobResult {
            version: 7,
            observations: vec![],
            files: Vec::new(),
        })
        .unwrap();
        let e = parse_result(&wrong, &steps).unwrap_err();
        assert_eq!(e, AnswerError::Version { got: 7 });
        assert_eq!(
            e.to_string(),
            format!("the agent answered protocol version 7, expected {AGENT_PROTOCOL_VERSION}")
        );
    }

    #[tokio::test]
    async fn the_agent_resolves_dependencies_and_refuses_steps_outside_the_scope() {
        let listener = tokio::net::TcpListener::bind("127.0.0.174:0")
            .await
            .unwrap();
        let open = listener.local_addr().unwrap();
        let mut steps = vec![
            tcp_step("closed", "127.0.0.174:9".parse().unwrap()),
            tcp_step("after-closed", open),
            tcp_step("after-prior-failed", open),
            tcp_step("after-prior-ok", open),
            tcp_step("outside", "8.8.8.8:53".parse().unwrap()),
            tcp_step("mapped", "[::ffff:8.8.8.8]:53".parse().unwrap()),
        ];
        steps[1].depends_on = vec!["closed".into()];
        steps[2].depends_on = vec!["elsewhere-failed".into()];
        steps[3].depends_on = vec!["elsewhere-ok".into()];
        let job = Job {
            version: AGENT_PROTOCOL_VERSION,
            timeout_ms: 800,
            budget_ms: 5000,
            body_limit: 1024,
            scope: vec!["127.0.0.0/8".parse().unwrap(), "::/0".parse().unwrap()],
            prior: [
                ("elsewhere-failed".to_string(), Outcome::TimedOut),
                ("elsewhere-ok".to_string(), Outcome::Ok),
            ]
            .into_iter()
            .collect(),
            steps: steps.clone(),
            read: Vec::new(),
            warn_days: 14,
        };
        let out = serve(&serde_json::to_vec(&job).unwrap()).await.unwrap();
        let obs = parse_result(&out, &steps).unwrap();
        let got: Vec<(&str, Outcome)> = obs.iter().map(|o| (o.step.as_str(), o.outcome)).collect();
        assert_eq!(
            got,
            [
                ("closed", Outcome::Failed),
                ("after-closed", Outcome::Blocked),
                ("after-prior-failed", Outcome::Blocked),
                ("after-prior-ok", Outcome::Ok),
                ("outside", Outcome::OutOfScope),
                ("mapped", Outcome::OutOfScope),
            ]
        );
        assert!(obs[2].message.contains("elsewhere-failed"), "{:?}", obs[2]);
        assert!(obs[4].message.contains("8.8.8.8"), "{:?}", obs[4]);
    }

    #[test]
    fn the_answer_limit_grows_with_steps_and_http_bodies() {
        let one = vec![tcp_step("a", "127.0.0.1:1".parse().unwrap())];
        assert_eq!(answer_limit(&[], 1024), 64 << 10);
        assert_eq!(answer_limit(&one, 1024), (64 << 10) + (16 << 10));
        let mut http = one[0].clone();
        http.probe = ProbeSpec::Http {
            url: "http://x/".into(),
            connect: "127.0.0.1:80".parse().unwrap(),
            trust: None,
            identity: None,
            expect_status: vec![],
            expect_body: None,
        };
        assert_eq!(answer_limit(&[http], 1000), (80 << 10) + 6000);
    }
}
