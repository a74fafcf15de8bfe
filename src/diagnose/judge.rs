//! One observation, judged for its step: a verdict and a finding code, by matching the typed
//! outcome, phase, reason and evidence (the reason→code mapping; `reason_table.rs` holds it
//! against a hand-written table).

use super::catalog::{
    PD_DNS_001, PD_DNS_002, PD_DNS_003, PD_DNS_004, PD_DNS_005, PD_DNS_006, PD_DNS_007,
    PD_HTTP_001, PD_HTTP_002, PD_HTTP_003, PD_HTTP_004, PD_HTTP_005, PD_MTLS_001, PD_MTLS_002,
    PD_RUN_001, PD_RUN_002, PD_RUN_004, PD_TCP_001, PD_TCP_002, PD_TCP_003, PD_TLS_001, PD_TLS_002,
    PD_TLS_003, PD_TLS_004, PD_TLS_005, PD_TLS_006, PD_TLS_007, PD_TLS_008, PD_TLS_009, PD_TLS_010,
    PD_TLS_011,
};
use super::{Verdict, SUBSTITUTED};
use crate::finding::{BackendFailure, Code, EvidenceItem, Meaning};
use crate::observe::{
    DnsEvidence, EffectiveSource, Evidence, HttpEvidence, Layer, MtlsVerdict, Observation, Outcome,
    Phase, ProxyMeaning, Rcode, Reason, TcpState, TlsEvidence, VerifyError,
};
use crate::plan::{Step, VantageRef};

/// What one observation means for its step.
pub(super) struct Judged {
    pub verdict: Verdict,
    pub code: Option<Code>,
    pub actual: String,
    pub evidence: Vec<EvidenceItem>,
    /// The failure is a proxy's answer (502/504/500/404) and may be a symptom.
    pub proxy_answer: bool,
}

impl Judged {
    /// Replace the probe's guess of what a proxy's answer means (`backend-refused` for every
    /// 502) with what the diagnosis knows of the backend, in the step's actual line and in its
    /// HTTP evidence item.
    pub fn say_proxy_meaning(&mut self, h: &HttpEvidence, cause: BackendFailure) {
        let status = h.status.unwrap_or_default();
        let raw = h.proxy_meaning.map(ProxyMeaning::as_str);
        let words = cause.to_string();
        self.actual = match raw {
            Some(raw) if self.actual.contains(&format!("({raw})")) => {
                self.actual
                    .replacen(&format!("({raw})"), &format!("({words})"), 1)
            }
            _ if self.actual.contains(&format!("status {status}")) => self.actual.replacen(
                &format!("status {status}"),
                &format!("status {status} ({words})"),
                1,
            ),
            _ => format!("{} (status {status}: {words})", self.actual),
        };
        for item in &mut self.evidence {
            if let EvidenceItem::HttpAnswer { meaning, .. } = item {
                *meaning = Some(Meaning::Backend(cause.clone()));
            }
        }
    }
}

/// Turn one observation into a verdict, a code, and words.
pub(super) fn judge(step: &Step, o: &Observation) -> Judged {
    let mut evidence = super::items::observation_items(o);
    if o.vantage.substituted {
        evidence.push(EvidenceItem::Substituted {
            from: step.from,
            via: o.vantage.via.clone(),
        });
    }
    let actual = if o.message.is_empty() {
        o.reason.map(|r| r.to_string()).unwrap_or_default()
    } else {
        o.message.clone()
    };
    let mk = |verdict, code, proxy_answer| Judged {
        verdict,
        code,
        actual: actual.clone(),
        evidence: evidence.clone(),
        proxy_answer,
    };
    match o.outcome {
        // A success seen from another vantage than the guest the traffic starts in says nothing
        // about what only that guest sees: no verdict without the evidence for it.
        Outcome::Ok if o.vantage.substituted && step.from != VantageRef::Host => Judged {
            verdict: Verdict::CannotJudge,
            code: Some(SUBSTITUTED),
            actual: format!(
                "not judged: ran from this machine instead of {}, which does not see {} (here: {actual}); --push --agent-path PATH or --via KIND=TEMPLATE runs it there",
                step.from,
                if step.layer == Layer::Dns {
                    "the guest's own hosts file, resolv.conf and path to the nameserver"
                } else {
                    "a firewall rule keyed on the guest's source address"
                }
            ),
            evidence,
            proxy_answer: false,
        },
        Outcome::Ok => {
            if tls_of(&o.evidence).is_some_and(|t| t.life_short()) {
                return mk(Verdict::Warn, Some(PD_TLS_007), false);
            }
            mk(Verdict::Ok, None, false)
        }
        Outcome::Blocked => mk(Verdict::Blocked, None, false),
        Outcome::OutOfScope => mk(Verdict::CannotJudge, Some(PD_RUN_001), false),
        Outcome::ToolError => mk(Verdict::CannotJudge, Some(PD_RUN_002), false),
        // The run's budget or a timeout below the layer's floor: the tool's limit, not the target's.
        Outcome::TimedOut if o.reason.is_some_and(Reason::is_tool_limit) => {
            mk(Verdict::CannotJudge, Some(PD_RUN_004), false)
        }
        Outcome::Failed | Outcome::TimedOut => {
            let (verdict, code, proxy) = failure(step, o);
            mk(verdict, Some(code), proxy)
        }
    }
}

/// A failed or silent probe: its verdict, its code, and whether it is a proxy's answer.
/// Failures before the step's own layer (connect, handshake) classify as that layer.
fn failure(step: &Step, o: &Observation) -> (Verdict, Code, bool) {
    let f = Failure {
        timed_out: o.outcome == Outcome::TimedOut,
        reason: o.reason,
        phase: o.phase,
    };
    match (&o.evidence, step.layer) {
        (Evidence::Dns(d), _) => (dns_verdict(f.timed_out, d), dns_code(&f, d), false),
        (_, Layer::Dns) => (Verdict::Unreachable, PD_DNS_004, false),
        (e, layer) => match connect_failure(&f, e) {
            Some(code) => (Verdict::Unreachable, code, false),
            None => match layer {
                Layer::Tcp | Layer::Dns => (Verdict::Unreachable, PD_TCP_002, false),
                Layer::Tls => (Verdict::Diverged, tls_code(f.reason, e), false),
                Layer::Mtls => (Verdict::Diverged, mtls_code(f.reason, e), false),
                Layer::Http => {
                    let (v, code, proxied) = http_judgement(&f, e);
                    // Through proxies, no answer in time is explained by a hop behind them
                    // that hangs, just like a 504.
                    let hangs_behind = code == PD_HTTP_004 && !step.through.is_empty();
                    (v, code, proxied || hangs_behind)
                }
            },
        },
    }
}

/// How a probe failed.
struct Failure {
    timed_out: bool,
    reason: Option<Reason>,
    phase: Option<Phase>,
}

impl Failure {
    fn is(&self, r: Reason) -> bool {
        self.reason == Some(r)
    }
}

pub(super) fn tls_of(e: &Evidence) -> Option<&TlsEvidence> {
    match e {
        Evidence::Tls(t) => Some(t),
        Evidence::Mtls(m) => Some(&m.tls),
        Evidence::Http(h) => h.tls.as_ref(),
        _ => None,
    }
}

fn dns_verdict(timed_out: bool, d: &DnsEvidence) -> Verdict {
    if timed_out || d.rcode.is_none() {
        Verdict::Unreachable
    } else {
        Verdict::Diverged
    }
}

fn dns_code(f: &Failure, d: &DnsEvidence) -> Code {
    let hosts_pins = d.effective_source == EffectiveSource::Hosts
        && !d.hosts_entries.is_empty()
        && (d.answers.is_empty() || d.effective != d.answers);
    match f.reason {
        Some(Reason::ResolverNoAnswer) => return PD_DNS_006,
        Some(Reason::ResolverDiffers) => return PD_DNS_007,
        Some(Reason::HostsOverride) => return PD_DNS_003,
        _ if hosts_pins => return PD_DNS_003,
        Some(
            Reason::Timeout
            | Reason::Unreachable
            | Reason::NetUnreachable
            | Reason::PortUnreachable,
        ) => return PD_DNS_004,
        _ => {}
    }
    let Some(rcode) = d.rcode.filter(|_| !f.timed_out) else {
        return PD_DNS_004;
    };
    match rcode {
        Rcode::NxDomain => PD_DNS_001,
        Rcode::Refused | Rcode::ServFail | Rcode::NotImp | Rcode::FormErr => PD_DNS_005,
        _ if d.answers.is_empty() => PD_DNS_001,
        _ => PD_DNS_002,
    }
}

/// A failure at connect time, whatever the step's layer.
fn connect_failure(f: &Failure, e: &Evidence) -> Option<Code> {
    if let Evidence::Tcp(t) = e {
        match t.state {
            TcpState::Refused => return Some(PD_TCP_001),
            TcpState::Unreachable => return Some(PD_TCP_003),
            TcpState::Filtered => return Some(PD_TCP_002),
            // A reset or another connect error: the reason decides, as for the other probes.
            TcpState::Open | TcpState::Error => {}
        }
    }
    if f.phase != Some(Phase::Connect) && !matches!(e, Evidence::Tcp(_)) {
        return None;
    }
    Some(match f.reason {
        Some(Reason::Refused) => PD_TCP_001,
        Some(Reason::Unreachable | Reason::NetUnreachable | Reason::PortUnreachable) => PD_TCP_003,
        Some(Reason::Filtered | Reason::Timeout | Reason::HandshakeTimeout) => PD_TCP_002,
        _ if f.timed_out => PD_TCP_002,
        // A reset or another error answered the SYN: something there refuses.
        _ => PD_TCP_001,
    })
}

/// The code of a verification error.
fn verify_code(v: VerifyError) -> Code {
    match v {
        VerifyError::Expired | VerifyError::NotValidYet => PD_TLS_001,
        VerifyError::NotValidForName => PD_TLS_002,
        VerifyError::UnknownIssuer => PD_TLS_003,
        VerifyError::IntermediateNotServed => PD_TLS_004,
        VerifyError::SelfSigned => PD_TLS_005,
        VerifyError::BadKeyUsage => PD_TLS_008,
        VerifyError::PinMismatch => PD_TLS_009,
        VerifyError::NotReloaded => PD_TLS_010,
        VerifyError::ManifestNameMissing => PD_TLS_011,
        VerifyError::BadCertificate | VerifyError::NoCertificate => PD_TLS_006,
    }
}

fn tls_code(reason: Option<Reason>, e: &Evidence) -> Code {
    let verify = tls_of(e).and_then(|t| t.verify_error).or(match reason {
        Some(Reason::Verify(v)) => Some(v),
        _ => None,
    });
    verify.map(verify_code).unwrap_or(PD_TLS_006)
}

fn mtls_code(reason: Option<Reason>, e: &Evidence) -> Code {
    if let Evidence::Mtls(m) = e {
        match m.verdict {
            MtlsVerdict::NotRequested | MtlsVerdict::Optional => return PD_MTLS_001,
            MtlsVerdict::RequiredRejecting => return PD_MTLS_002,
            MtlsVerdict::RequiredAccepting | MtlsVerdict::Required | MtlsVerdict::Unknown => {}
        }
        if m.tls.verify_error.is_some() {
            return tls_code(reason, e);
        }
    }
    match reason {
        Some(Reason::ClientCertNotRequested | Reason::ClientCertOptional) => PD_MTLS_001,
        Some(Reason::ClientCertRejected | Reason::TlsAlert) => PD_MTLS_002,
        _ => tls_code(reason, e),
    }
}

fn http_judgement(f: &Failure, e: &Evidence) -> (Verdict, Code, bool) {
    let d = Verdict::Diverged;
    let Evidence::Http(h) = e else {
        return (
            d,
            if f.timed_out {
                PD_HTTP_004
            } else {
                PD_HTTP_002
            },
            false,
        );
    };
    if matches!(f.phase, Some(Phase::Handshake | Phase::Verify)) {
        return (d, tls_code(f.reason, e), false);
    }
    let traefik_404 =
        h.status == Some(404) && h.body.trim() == crate::probe::http::TRAEFIK_NO_ROUTER;
    if h.proxy_meaning == Some(ProxyMeaning::NoRouter) || traefik_404 {
        return (d, PD_HTTP_001, true);
    }
    // A proxy's failure answer; a router's bare 500 is how Traefik reports a backend TLS failure.
    if h.proxy_meaning.is_some() || matches!(h.status, Some(500 | 502..=504)) {
        return (d, PD_HTTP_005, true);
    }
    // No head in time, or a body that stalled after it: the service hangs.
    if f.timed_out || f.is(Reason::Timeout) {
        return (d, PD_HTTP_004, false);
    }
    if f.is(Reason::BodyMismatch) {
        return (d, PD_HTTP_003, false);
    }
    (d, PD_HTTP_002, false)
}
