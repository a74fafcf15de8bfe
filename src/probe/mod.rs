//! One probe per kind (dns, tcp, tls, mtls, http); each returns an observation, never a
//! network `Err`. [`classify`] is the only place that matches io, rustls and DNS errors.

use crate::observe::{Evidence, Layer, Observation, Outcome, Phase, Reason, Timings, VantageNote};
use crate::plan::{ProbeSpec, Step};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub mod classify;
pub mod dns;
pub mod http;
pub mod mtls;
pub mod resolver;
pub mod tcp;
pub mod tls;

pub use tls::{tls_verify, VerifyFailure};

/// The system files that describe a vantage's own name resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemFiles {
    pub hosts_file: PathBuf,
    pub resolv_conf: PathBuf,
}

impl Default for SystemFiles {
    fn default() -> Self {
        SystemFiles {
            hosts_file: PathBuf::from("/etc/hosts"),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
        }
    }
}

/// What every probe needs besides its step.
#[derive(Debug, Clone)]
pub struct ProbeCtx {
    /// Timeout for each phase (connect, handshake, first byte ...).
    pub timeout: Duration,
    /// Bodies are read up to this many bytes.
    pub body_limit: usize,
    /// The vantage's hosts file and resolv.conf (for DNS steps with `system`).
    pub system: SystemFiles,
    /// Where the vantage's own resolver may be queried besides the step's target (the run's
    /// scope); `None` queries none of its other nameservers.
    pub scope: Option<crate::engine::Scope>,
    /// A served leaf with less life left than this many days (or, for a short-lived leaf,
    /// than 40% of its life) is close to expiry (`--warn-days`).
    pub warn_days: u32,
}

impl Default for ProbeCtx {
    fn default() -> Self {
        ProbeCtx {
            timeout: Duration::from_secs(2),
            body_limit: 64 * 1024,
            system: SystemFiles::default(),
            scope: None,
            warn_days: tls::DEFAULT_WARN_DAYS,
        }
    }
}

/// True for the reasons that name the tool's own limits (budget, timeout below the floor): such
/// a step says nothing about the platform and cannot be judged.
pub fn is_tool_limit(reason: Option<Reason>) -> bool {
    reason.is_some_and(Reason::is_tool_limit)
}

/// The shortest `--timeout` at which silence at `layer` is evidence about the platform
/// (documented in docs/cli.md, "Durations and floors"). Every hop of the platform crosses one
/// Proxmox bridge, where a healthy nameserver, listener or TLS server answers in milliseconds;
/// below these floors a busy host or guest, not the platform, can explain a missing answer.
pub fn timeout_floor(layer: Layer) -> Duration {
    match layer {
        // two UDP attempts share the timeout: 250 ms each
        Layer::Dns => Duration::from_millis(500),
        Layer::Tcp => Duration::from_millis(500),
        // connect plus two round trips and a signature
        Layer::Tls | Layer::Mtls => Duration::from_millis(500),
        // connect, TLS, request and the response through the platform's proxies
        Layer::Http => Duration::from_millis(500),
    }
}

/// A step that timed out under a `--timeout` below its layer's floor is the tool's limit, not a
/// platform failure: give it [`Reason::TimeoutBelowFloor`] and say why (the probe's own reason
/// stays in the message).
pub fn apply_floor(o: &mut Observation, layer: Layer, timeout: Duration) {
    let floor = timeout_floor(layer);
    if o.outcome != Outcome::TimedOut || timeout >= floor || is_tool_limit(o.reason) {
        return;
    }
    let was = o.reason.take().map(|r| r.to_string()).unwrap_or_default();
    o.message = format!(
        "{} [{was}]; cannot judge: --timeout {} ms is below the {} ms floor for {layer} steps \
         (docs/cli.md), so no answer in that time proves nothing",
        o.message,
        timeout.as_millis(),
        floor.as_millis()
    );
    o.reason = Some(Reason::TimeoutBelowFloor);
}

/// Run one step's probe from here.
pub async fn run(ctx: &ProbeCtx, step: &Step) -> Observation {
    let mut obs = match &step.probe {
        ProbeSpec::Dns {
            name,
            server,
            expect,
            system,
        } => dns::probe(ctx, name, *server, expect, *system).await,
        ProbeSpec::Tcp { addr } => tcp::probe(ctx, *addr).await,
        ProbeSpec::Tls { addr, sni, trust } => tls::probe(ctx, *addr, sni, trust).await,
        ProbeSpec::Mtls {
            addr,
            sni,
            trust,
            identity,
            require,
        } => mtls::probe(ctx, *addr, sni, trust, identity.as_ref(), *require).await,
        ProbeSpec::Http {
            url,
            connect,
            trust,
            identity,
            expect_status,
            expect_body,
        } => {
            http::probe(
                ctx,
                &http::HttpRequest {
                    url,
                    connect: *connect,
                    trust: trust.as_ref(),
                    identity: identity.as_ref(),
                    expect_status,
                    expect_body: expect_body.as_deref(),
                },
            )
            .await
        }
    };
    obs.step = step.id.clone();
    if obs.vantage.name.is_empty() {
        obs.vantage = VantageNote {
            name: step.from.to_string(),
            substituted: false,
            via: "local".into(),
        };
    }
    obs
}

/// One step's time limit: every phase of the step (connect, TLS, request, headers, body, DNS
/// retries) ends by the same instant, so the phases never add up to more than `--timeout`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    pub at: tokio::time::Instant,
    /// The whole limit, for messages.
    pub total: Duration,
}

impl Deadline {
    /// The deadline `total` from now (far in the future when `total` cannot be added).
    pub fn after(total: Duration) -> Deadline {
        let now = tokio::time::Instant::now();
        let at = now
            .checked_add(total)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        Deadline { at, total }
    }

    /// Milliseconds of the whole limit.
    pub fn ms(&self) -> u128 {
        self.total.as_millis()
    }
}

/// Milliseconds since `t`.
pub(crate) fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

/// Start an observation; the dispatcher fills in the step id.
pub(crate) fn observation(outcome: Outcome, evidence: Evidence, timings: Timings) -> Observation {
    Observation {
        step: String::new(),
        outcome,
        phase: None,
        reason: None,
        message: String::new(),
        evidence,
        timings,
        vantage: VantageNote::default(),
    }
}

/// Set phase, reason and message in one go. The tool's own resource exhaustion and an invalid
/// name are always a `tool-error`, whatever outcome the caller had in mind.
pub(crate) fn fail(
    mut o: Observation,
    outcome: Outcome,
    phase: Phase,
    reason: Reason,
    message: impl Into<String>,
) -> Observation {
    o.outcome = if matches!(reason, Reason::OutOfResources | Reason::InvalidName) {
        Outcome::ToolError
    } else {
        outcome
    };
    o.phase = Some(phase);
    o.reason = Some(reason);
    o.message = message.into();
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed_out(reason: Reason) -> Observation {
        fail(
            observation(Outcome::TimedOut, Evidence::None, Timings::default()),
            Outcome::TimedOut,
            Phase::Connect,
            reason,
            "127.0.0.1:9: no answer",
        )
    }

    #[test]
    fn a_timeout_below_the_floor_is_the_tools_limit() {
        let mut o = timed_out(Reason::Filtered);
        apply_floor(&mut o, Layer::Tcp, Duration::from_millis(499));
        assert_eq!(o.reason, Some(Reason::TimeoutBelowFloor));
        assert!(o.message.contains("[filtered]") && o.message.contains("--timeout 499 ms"));
        assert!(is_tool_limit(o.reason));
        // at the floor, the silence is the platform's
        let mut o = timed_out(Reason::Filtered);
        apply_floor(&mut o, Layer::Tcp, Duration::from_millis(500));
        assert_eq!(o.reason, Some(Reason::Filtered));
        // an answer that came (refused) is evidence whatever the timeout
        let mut o = timed_out(Reason::Refused);
        o.outcome = Outcome::Failed;
        apply_floor(&mut o, Layer::Tcp, Duration::from_millis(10));
        assert_eq!(o.reason, Some(Reason::Refused));
        // the budget's own reason is kept
        let mut o = timed_out(Reason::Budget);
        apply_floor(&mut o, Layer::Http, Duration::from_millis(10));
        assert_eq!(o.reason, Some(Reason::Budget));
        assert!(!is_tool_limit(Some(Reason::Timeout)));
        for l in [Layer::Dns, Layer::Tcp, Layer::Tls, Layer::Mtls, Layer::Http] {
            assert_eq!(timeout_floor(l), Duration::from_millis(500), "{l}");
        }
    }
}
