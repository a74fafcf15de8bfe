//! One probe per kind (dns, tcp, tls, mtls, http); each returns an observation, never a
//! network `Err`. [`classify`] is the only place that matches io, rustls and DNS errors.

use crate::observe::{Evidence, Observation, Outcome, Timings, VantageNote};
use crate::plan::{ProbeSpec, Step};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub mod classify;
pub mod dns;
pub mod http;
pub mod mtls;
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
}

impl Default for ProbeCtx {
    fn default() -> Self {
        ProbeCtx {
            timeout: Duration::from_secs(2),
            body_limit: 64 * 1024,
            system: SystemFiles::default(),
        }
    }
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

/// Set phase, reason and message in one go.
pub(crate) fn fail(
    mut o: Observation,
    outcome: Outcome,
    phase: &str,
    reason: &str,
    message: impl Into<String>,
) -> Observation {
    o.outcome = outcome;
    o.phase = Some(phase.to_string());
    o.reason = Some(reason.to_string());
    o.message = message.into();
    o
}
