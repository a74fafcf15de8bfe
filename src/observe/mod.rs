//! Plain, serializable observations: what a probe saw, replayable from JSON with no network.
//!
//! Network failures are data here: a probe that could not connect returns an [`Observation`]
//! with [`Outcome::Failed`] and a classified reason, never an `Err`.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

pub mod proto;
pub mod vocab;

pub use proto::{Proto, Scheme};
pub use vocab::{
    ClientCertAnswer, DnsTransport, EffectiveSource, MtlsVerdict, Phase, ProxyMeaning, Rcode,
    Reason, TcpState, VerifyError,
};

/// The protocol layer a step checks, in the order a hop is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Dns,
    Tcp,
    Tls,
    Mtls,
    Http,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Dns => "dns",
            Layer::Tcp => "tcp",
            Layer::Tls => "tls",
            Layer::Mtls => "mtls",
            Layer::Http => "http",
        }
    }
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a probe ended, seen from the probe (the diagnosis turns this into a verdict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The probe completed and every expectation it checks itself held.
    Ok,
    /// The target answered, but not as expected (refused, NXDOMAIN, bad certificate, 502, ...).
    Failed,
    /// No answer before the timeout (a firewall drop, a silent peer).
    TimedOut,
    /// Not run because a prerequisite step failed.
    Blocked,
    /// Not run: the target lies outside the allowed scope.
    OutOfScope,
    /// The tool or the vantage failed (transport error, missing file): cannot judge the target.
    ToolError,
}

/// Duration of each phase in milliseconds; absent phases were not reached.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_ms: Option<f64>,
    #[serde(default)]
    pub total_ms: f64,
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The step this observes (`Step::id`).
    pub step: String,
    pub outcome: Outcome,
    /// Where the probe stopped: `resolve`, `connect`, `handshake`, `verify`, `client-auth`,
    /// `request`, `status`, `body`, `transport` ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// A stable, machine-readable reason (`nxdomain`, `refused`, `filtered`, `unknown-issuer`,
    /// `name-mismatch`, `no-router`, ...). See `docs/output-json.md` for the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// One human-readable line.
    pub message: String,
    #[serde(default)]
    pub evidence: Evidence,
    #[serde(default)]
    pub timings: Timings,
    /// Where it ran from, and whether that was the intended vantage.
    #[serde(default)]
    pub vantage: VantageNote,
}

impl Observation {
    /// An observation for a step that was not run because `by` failed.
    pub fn blocked(step: &str, by: &str) -> Self {
        Observation {
            step: step.to_string(),
            outcome: Outcome::Blocked,
            phase: None,
            reason: Some(Reason::Blocked),
            message: format!("not run: prerequisite {by} failed"),
            evidence: Evidence::None,
            timings: Timings::default(),
            vantage: VantageNote::default(),
        }
    }

    /// A failure of the tool or vantage, not of the target.
    pub fn tool_error(step: &str, phase: Phase, message: impl Into<String>) -> Self {
        Observation {
            step: step.to_string(),
            outcome: Outcome::ToolError,
            phase: Some(phase),
            reason: Some(Reason::ToolError),
            message: message.into(),
            evidence: Evidence::None,
            timings: Timings::default(),
            vantage: VantageNote::default(),
        }
    }
}

/// Where a step ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VantageNote {
    /// `host`, `lxc:102`, `vm:1001`.
    #[serde(default)]
    pub name: String,
    /// True when the step ran from this machine instead of its intended vantage.
    #[serde(default)]
    pub substituted: bool,
    /// How it ran (`local`, `ip netns exec phx-102`, `pct exec 102 --` ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub via: String,
}

/// What a probe saw, by kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Evidence {
    #[default]
    None,
    Dns(DnsEvidence),
    Tcp(TcpEvidence),
    Tls(TlsEvidence),
    Mtls(MtlsEvidence),
    Http(HttpEvidence),
}

/// A DNS query sent straight to one nameserver, plus the vantage's own system view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsEvidence {
    pub qname: String,
    /// `ip:port` of the nameserver queried.
    pub server: String,
    /// `udp` or `tcp` (tcp after a truncated UDP answer); empty when nothing came back.
    #[serde(default, with = "vocab::empty_is_none")]
    pub protocol: Option<DnsTransport>,
    /// `NOERROR`, `NXDOMAIN`, `SERVFAIL`, `REFUSED`, ... or empty when nothing came back.
    #[serde(default, with = "vocab::empty_is_none")]
    pub rcode: Option<Rcode>,
    #[serde(default)]
    pub answers: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// `/etc/hosts` lines at the vantage that name `qname`.
    #[serde(default)]
    pub hosts_entries: Vec<HostsEntry>,
    /// The vantage's `resolv.conf`, when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolv_conf: Option<ResolvConf>,
    /// What a program at the vantage would get (hosts file first, then DNS).
    #[serde(default)]
    pub effective: Vec<IpAddr>,
    /// `hosts`, `dns`, `dns via ADDR` (another nameserver of the vantage's resolv.conf), or
    /// empty when nothing resolved.
    #[serde(default)]
    pub effective_source: EffectiveSource,
}

/// One `/etc/hosts` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostsEntry {
    pub file: String,
    pub line: u32,
    pub ip: IpAddr,
    pub names: Vec<String>,
}

/// The parts of `resolv.conf` that decide where a name goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvConf {
    pub file: String,
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
}

/// A TCP connect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpEvidence {
    pub addr: String,
    /// `open`, `refused`, `filtered`, `unreachable`, `error`.
    pub state: TcpState,
    /// The OS error, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_error: Option<String>,
}

/// A certificate as served, summarised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertSummary {
    pub subject: String,
    pub issuer: String,
    #[serde(default)]
    pub dns_sans: Vec<String>,
    #[serde(default)]
    pub ip_sans: Vec<IpAddr>,
    pub serial: String,
    /// RFC 3339.
    pub not_before: String,
    /// RFC 3339.
    pub not_after: String,
    pub key_type: String,
    pub sha256: String,
    pub is_ca: bool,
}

/// A TLS handshake and the verification of what was served.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsEvidence {
    pub addr: String,
    pub sni: String,
    #[serde(default)]
    pub protocol: String,
    #[serde(default)]
    pub cipher: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    /// Leaf first, as served.
    #[serde(default)]
    pub chain: Vec<CertSummary>,
    /// True when the chain verified against the trust anchors for the name.
    #[serde(default)]
    pub verified: bool,
    /// Why verification failed: `unknown-issuer`, `self-signed`, `expired`, `not-yet-valid`,
    /// `name-mismatch`, `intermediate-not-served`, `wrong-key-usage`, `pin-mismatch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_error: Option<VerifyError>,
    /// Detail for people (dates, names presented).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verify_detail: String,
    /// Seconds until the leaf expires (negative once expired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_secs: Option<i64>,
    /// Remaining lifetime as a fraction of the leaf's whole life (0.0..=1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_fraction: Option<f64>,
    /// The remaining life (seconds) below which the leaf is close to expiry: `--warn-days`, or
    /// 40% of the leaf's life when that is shorter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_below_secs: Option<i64>,
}

impl TlsEvidence {
    /// The leaf has less life left than its warning threshold (observations saved before the
    /// threshold was recorded: less than 40% of its life).
    pub fn life_short(&self) -> bool {
        match (self.remaining_secs, self.warn_below_secs) {
            (Some(left), Some(below)) => left < below,
            _ => self
                .remaining_fraction
                .is_some_and(|f| f < crate::probe::tls::LIFE_WARN_FRACTION),
        }
    }
}

/// A certificate's remaining life for people: days from two days on, hours and minutes below
/// (a 24-hour certificate has "23h59m", not "0 days"); `expired ... ago` once negative.
pub fn remaining_life(secs: i64) -> String {
    let n = secs.unsigned_abs();
    let span = if n >= 2 * 86_400 {
        format!("{} days", n / 86_400)
    } else {
        format!("{}h{:02}m", n / 3_600, (n % 3_600) / 60)
    };
    if secs < 0 {
        format!("expired {span} ago")
    } else {
        span
    }
}

/// Client-certificate behaviour of a server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MtlsEvidence {
    #[serde(flatten)]
    pub tls: TlsEvidence,
    /// The server sent a CertificateRequest.
    pub requested: bool,
    /// Distinguished names of acceptable CAs the server hinted.
    #[serde(default)]
    pub ca_hints: Vec<String>,
    /// What happened without a client certificate: `accepted`, `alert:<name>`, `http-400`,
    /// `closed`, a failure reason ...; empty when the handshake did not get that far.
    #[serde(default, with = "vocab::empty_is_none")]
    pub without_cert: Option<ClientCertAnswer>,
    /// What happened with the given certificate, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_cert: Option<ClientCertAnswer>,
    /// `required-accepting`, `required-rejecting`, `required`, `optional`, `not-requested`,
    /// `unknown`.
    pub verdict: MtlsVerdict,
}

/// An HTTP exchange.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpEvidence {
    pub url: String,
    /// `ip:port` actually connected to.
    pub connect: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The `Server` header, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The start of the body (bounded).
    #[serde(default)]
    pub body: String,
    /// What a proxy's answer means (`no-router`, `backend-refused`, `backend-timeout`,
    /// `backend-tls`, ...), when it looks like one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_meaning: Option<ProxyMeaning>,
    /// The TLS part, for https URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsEvidence>,
}

/// Where a step's traffic starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum VantageRef {
    /// The Proxmox host (or wherever the tool runs when no guest vantage applies).
    Host,
    Lxc(u32),
    Vm(u32),
}

impl std::fmt::Display for VantageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VantageRef::Host => f.write_str("host"),
            VantageRef::Lxc(id) => write!(f, "lxc:{id}"),
            VantageRef::Vm(id) => write!(f, "vm:{id}"),
        }
    }
}

impl From<VantageRef> for String {
    fn from(v: VantageRef) -> String {
        v.to_string()
    }
}

impl TryFrom<String> for VantageRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl std::str::FromStr for VantageRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "host" {
            return Ok(VantageRef::Host);
        }
        let bad = || format!("expected `host`, `lxc:<id>` or `vm:<id>`, found `{s}`");
        let (kind, id) = s.split_once(':').ok_or_else(bad)?;
        let id: u32 = id.parse().map_err(|_| bad())?;
        match kind {
            "lxc" => Ok(VantageRef::Lxc(id)),
            "vm" => Ok(VantageRef::Vm(id)),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod remaining_life_tests {
    use super::remaining_life;

    #[test]
    fn under_two_days_is_hours_and_minutes() {
        assert_eq!(remaining_life(24 * 3600 - 60), "23h59m");
        assert_eq!(remaining_life(2 * 86_400 - 1), "47h59m");
        assert_eq!(remaining_life(2 * 86_400), "2 days");
        assert_eq!(remaining_life(90 * 86_400 + 5), "90 days");
        assert_eq!(remaining_life(125), "0h02m");
        assert_eq!(remaining_life(-3 * 3600), "expired 3h00m ago");
    }
}
