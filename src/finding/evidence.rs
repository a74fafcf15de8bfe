//! The evidence a finding or a judged step carries: typed items, one per line of the report.
//! `diagnose` builds them from observations and guest facts; `report::evidence` renders each
//! to its line (for every format, and for the JSON, where `evidence` is a list of strings).
//! Read back from JSON, an item is [`EvidenceItem::Text`].

use super::Code;
use crate::observe::{
    CertSummary, ClientCertAnswer, DnsTransport, EffectiveSource, HostsEntry, Layer, ProxyMeaning,
    Rcode, ResolvConf, TcpState, VantageRef, VerifyError,
};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One item of evidence: one line of the report.
#[derive(Debug, Clone, PartialEq)]
pub enum EvidenceItem {
    /// What a nameserver answered.
    DnsAnswer {
        server: String,
        transport: Option<DnsTransport>,
        rcode: Option<Rcode>,
        answers: Vec<IpAddr>,
        ttl: Option<u32>,
    },
    /// A hosts-file line of the vantage that names the queried name.
    HostsEntry(HostsEntry),
    /// The vantage's resolv.conf.
    ResolvConf(ResolvConf),
    /// What the vantage's own resolution yields, and where it comes from.
    DnsEffective {
        answers: Vec<IpAddr>,
        source: EffectiveSource,
    },
    /// A TCP connect's result.
    Tcp {
        addr: String,
        state: TcpState,
        os_error: Option<String>,
    },
    /// The TLS session agreed.
    TlsSession {
        addr: String,
        sni: String,
        protocol: String,
        cipher: String,
        alpn: Option<String>,
    },
    /// One certificate of the served chain (0 is the leaf).
    Certificate {
        index: usize,
        cert: Box<CertSummary>,
    },
    /// Why the chain did not verify.
    VerifyFailed { error: VerifyError, detail: String },
    /// The leaf's remaining lifetime, in seconds and as a fraction of its whole.
    LeafLifetime { secs: i64, fraction: f64 },
    /// What the server did about client certificates.
    ClientCert {
        requested: bool,
        ca_hints: Vec<String>,
        without: Option<ClientCertAnswer>,
        with: Option<ClientCertAnswer>,
    },
    /// An HTTP answer, and what a proxy's error answer means.
    HttpAnswer {
        url: String,
        connect: String,
        status: Option<u16>,
        server: Option<String>,
        meaning: Option<Meaning>,
    },
    /// The start of an HTTP body (at most 120 characters, trimmed).
    Body(String),
    /// The step ran from this machine instead of its vantage.
    Substituted { from: VantageRef, via: String },
    /// A failure seen through proxies that the finding's hop explains.
    SymptomAt {
        step: String,
        layer: Layer,
        from: String,
        actual: String,
    },
    /// Another step that failed the same way, grouped into this finding.
    AlsoSeen {
        step: String,
        from: String,
        actual: String,
    },
    /// A live step that bears on a static finding and failed by its own layers.
    StepFailed {
        step: String,
        from: String,
        actual: String,
    },
    /// A live step that bears on a static finding and worked.
    StepWorked {
        step: String,
        from: String,
        expected: String,
    },
    /// The guest's listening sockets at (or for any address of) a TCP target.
    Listening {
        vantage: VantageRef,
        addrs: Vec<String>,
    },
    /// The guest's socket tables could not be read.
    SocketsUnreadable { vantage: VantageRef, why: String },
    /// The certificate file the renewal writes, as read on the host.
    CertFile {
        path: String,
        sha256: String,
        names: Vec<String>,
        not_before: String,
        not_after: String,
    },
    /// The certificate file holds no PEM certificate.
    CertFileEmpty { path: String },
    /// The certificate file could not be read.
    CertFileUnreadable { path: String, why: String },
    /// A proxy's deployed upstream or router, with its file line.
    Deployed {
        part: ProxyPart,
        vantage: VantageRef,
        at: String,
        directive: String,
    },
    /// The router the generators write is missing from the deployed files.
    RouterMissing {
        vantage: VantageRef,
        router: String,
        files: Vec<String>,
    },
    /// What the generators write for that upstream or router, and from which config lines.
    Intended {
        part: ProxyPart,
        directive: String,
        from: Vec<String>,
    },
    /// A line already in words: evidence read back from JSON, or what `lint` and `drift` say
    /// about config files.
    Text(String),
}

/// What a proxy's error answer means.
#[derive(Debug, Clone, PartialEq)]
pub enum Meaning {
    /// The probe's reading of the status alone (`backend-refused` for every 502).
    Probe(ProxyMeaning),
    /// What the diagnosis knows of the backend from the tool's own probe of the hop behind.
    Backend(BackendFailure),
}

/// A backend failure behind a proxy, as far as the hop behind it was probed.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendFailure {
    /// The tool saw the hop behind fail with `code` at `step`.
    SeenAt { code: Code, step: String },
    /// Nothing behind failed visibly and the proxy answered 504: its own timeout.
    ProxyTimeout,
    /// Nothing behind tells which failure it was.
    Unknown,
}

/// Which part of a proxy's config an upstream item is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyPart {
    /// Where it sends a request (`proxy_pass`, a Traefik service's URL).
    Upstream,
    /// A Traefik router (its rule and service).
    Router,
}

impl EvidenceItem {
    /// The symptom this item records, when it is one: the step seen failing through proxies.
    pub fn symptom_step(&self) -> Option<&str> {
        match self {
            EvidenceItem::SymptomAt { step, .. } => Some(step),
            _ => None,
        }
    }

    /// The step of a live result this item records (a grouped step, or one that bears on a
    /// static finding).
    pub fn step(&self) -> Option<&str> {
        match self {
            EvidenceItem::SymptomAt { step, .. }
            | EvidenceItem::AlsoSeen { step, .. }
            | EvidenceItem::StepFailed { step, .. }
            | EvidenceItem::StepWorked { step, .. } => Some(step),
            _ => None,
        }
    }
}

impl From<String> for EvidenceItem {
    fn from(s: String) -> Self {
        EvidenceItem::Text(s)
    }
}

impl From<&str> for EvidenceItem {
    fn from(s: &str) -> Self {
        EvidenceItem::Text(s.to_string())
    }
}

/// Serialized as its line, rendered by `report::evidence` (the `Display` of an item).
impl Serialize for EvidenceItem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Read back as text: the line says what it said, the type is not recovered.
impl<'de> Deserialize<'de> for EvidenceItem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(EvidenceItem::Text)
    }
}
