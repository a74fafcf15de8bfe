//! The agent protocol: a job of steps as JSON on stdin, observations as JSON on stdout.

use crate::error::{Error, Result};
use crate::observe::Observation;
use crate::plan::Step;
use crate::probe::{self, ProbeCtx};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Version of the agent protocol.
pub const AGENT_PROTOCOL_VERSION: u32 = 1;

/// What the runner sends to `phoenix-doctor agent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub version: u32,
    /// Timeout for each phase of each probe.
    pub timeout_ms: u64,
    /// Bodies are read up to this many bytes.
    pub body_limit: usize,
    pub steps: Vec<Step>,
}

/// What the agent answers: one observation per step, in job order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub version: u32,
    pub observations: Vec<Observation>,
}

impl Job {
    pub fn new(steps: &[Step], ctx: &ProbeCtx) -> Job {
        Job {
            version: AGENT_PROTOCOL_VERSION,
            timeout_ms: ctx.timeout.as_millis() as u64,
            body_limit: ctx.body_limit,
            steps: steps.to_vec(),
        }
    }

    /// The probe context inside the vantage: its own `/etc/hosts` and `/etc/resolv.conf`.
    pub fn ctx(&self) -> ProbeCtx {
        ProbeCtx {
            timeout: Duration::from_millis(self.timeout_ms),
            body_limit: self.body_limit,
            ..ProbeCtx::default()
        }
    }
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
            o.unwrap_or_else(|| Observation::tool_error(&s.id, "probe", "the probe task panicked"))
        })
        .collect()
}

/// The whole agent: parse a job, run it, serialize the result.
pub async fn serve(input: &[u8]) -> Result<Vec<u8>> {
    let job: Job = serde_json::from_slice(input).map_err(|e| {
        Error::input(format!(
            "agent: stdin is not a job (line {}, column {}): {e}; expected {{\"version\": 1, \"timeout_ms\": ..., \"body_limit\": ..., \"steps\": [...]}}",
            e.line(),
            e.column()
        ))
    })?;
    if job.version != AGENT_PROTOCOL_VERSION {
        return Err(Error::input(format!(
            "agent: job version {} is not supported (this agent speaks version {AGENT_PROTOCOL_VERSION})",
            job.version
        )));
    }
    let observations = run_concurrently(&job.steps, &job.ctx()).await;
    let res = JobResult {
        version: AGENT_PROTOCOL_VERSION,
        observations,
    };
    let mut out = serde_json::to_vec(&res)
        .map_err(|e| Error::tool(format!("agent: encoding the result: {e}")))?;
    out.push(b'\n');
    Ok(out)
}

/// Parse the agent's answer for `steps`; errors say why it could not be read.
pub fn parse_result(
    stdout: &[u8],
    steps: &[Step],
) -> std::result::Result<Vec<Observation>, String> {
    let res: JobResult = serde_json::from_slice(stdout).map_err(|e| {
        let text = String::from_utf8_lossy(stdout);
        format!(
            "the agent's output is not a job result ({e}): {}",
            text.trim().chars().take(200).collect::<String>()
        )
    })?;
    if res.version != AGENT_PROTOCOL_VERSION {
        return Err(format!(
            "the agent answered protocol version {}, expected {AGENT_PROTOCOL_VERSION}",
            res.version
        ));
    }
    let mut by_id: std::collections::HashMap<String, Observation> = res
        .observations
        .into_iter()
        .map(|o| (o.step.clone(), o))
        .collect();
    Ok(steps
        .iter()
        .map(|s| {
            by_id.remove(&s.id).unwrap_or_else(|| {
                Observation::tool_error(
                    &s.id,
                    "transport",
                    "the agent returned no observation for this step",
                )
            })
        })
        .collect())
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
        let input = serde_json::to_vec(&Job::new(&steps, &ctx)).unwrap();
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
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("line 1"), "{e}");
        let e = serve(b"{\"version\": 9, \"timeout_ms\": 1, \"body_limit\": 1, \"steps\": []}")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("version 9"), "{e}");
        let out = serve(b"{\"version\": 1, \"timeout_ms\": 1, \"body_limit\": 1, \"steps\": []}")
            .await
            .unwrap();
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
            version: 1,
            observations: vec![Observation::tool_error("b", "probe", "x")],
        };
        let obs = parse_result(&serde_json::to_vec(&res).unwrap(), &steps).unwrap();
        assert_eq!(obs[0].step, "a");
        assert!(obs[0].message.contains("no observation"));
        assert_eq!(obs[1].message, "x");
        assert!(parse_result(b"sh: 1: phoenix-doctor: not found", &steps)
            .unwrap_err()
            .contains("not a job result"));
        let wrong = serde_json::to_vec(&JobResult {
            version: 2,
            observations: vec![],
        })
        .unwrap();
        assert!(parse_result(&wrong, &steps)
            .unwrap_err()
            .contains("version 2"));
    }
}
