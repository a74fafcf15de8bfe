//! The words an observation is made of, typed: where a probe stopped ([`Phase`]), why
//! ([`Reason`]), and what it saw (TCP state, DNS response code, verification error, mTLS verdict,
//! what a proxy's answer means, ...). Each serializes as the stable text `docs/output-json.md`
//! lists, so the JSON stays the contract while the diagnosis matches enums, never strings.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// `text_enum! { /// doc  pub enum Name { /// doc  Variant = "text", ... } }`: a unit enum with
/// `as_str`, `ALL`, `Display`, `FromStr` and serde as its text.
macro_rules! text_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $v:ident = $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $v),* }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v),*];

            /// The stable text.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$v => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$v),)*
                    _ => Err(format!(
                        "unknown {} `{s}`, expected one of: {}",
                        stringify!($name),
                        [$($text),*].join(", ")
                    )),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use text_enum;

/// Serde as text for the types here that are not plain unit enums (Display + FromStr).
macro_rules! serde_as_text {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

text_enum! {
    /// Where a probe stopped (or, for a success, the last phase it checked).
    pub enum Phase {
        /// dns: the query to the step's nameserver.
        Query = "query",
        /// dns: the nameserver's answer.
        Answer = "answer",
        /// dns: what a program at the vantage gets (hosts file, its resolv.conf).
        Effective = "effective",
        /// dns: reading the vantage's hosts file and resolv.conf.
        VantageFiles = "vantage-files",
        Connect = "connect",
        Handshake = "handshake",
        Verify = "verify",
        ClientAuth = "client-auth",
        Request = "request",
        FirstByte = "first-byte",
        Response = "response",
        Status = "status",
        Body = "body",
        /// The probe task itself (a panic).
        Probe = "probe",
        /// The vantage returned nothing for the step.
        Vantage = "vantage",
        /// The engine recorded nothing for the step.
        Engine = "engine",
        /// Copying the agent into a guest (`--push`).
        Push = "push",
        /// Finding the cluster node of a guest.
        Placement = "placement",
        /// The transport into a guest (`pct exec`, `qm guest exec`, the agent's output).
        Transport = "transport",
    }
}

text_enum! {
    /// A TCP connect's result.
    #[derive(Default)]
    pub enum TcpState {
        Open = "open",
        Refused = "refused",
        /// No answer (a silent drop).
        Filtered = "filtered",
        Unreachable = "unreachable",
        /// A reset or another connect error.
        #[default]
        Error = "error",
    }
}

text_enum! {
    /// Why a served chain did not verify (after rustls' `CertificateError`).
    pub enum VerifyError {
        UnknownIssuer = "unknown-issuer",
        SelfSigned = "self-signed",
        Expired = "expired",
        NotValidYet = "not-yet-valid",
        NotValidForName = "name-mismatch",
        /// The chain completes only with the intermediate from the trust file.
        IntermediateNotServed = "intermediate-not-served",
        /// Key usage or extended key usage does not allow server authentication.
        BadKeyUsage = "wrong-key-usage",
        /// A documented self-signed server presented a leaf for other names.
        PinMismatch = "pin-mismatch",
        BadCertificate = "bad-certificate",
        NoCertificate = "no-certificate",
        /// The served chain verifies, but the file on disk is a newer certificate: renewed, not
        /// reloaded.
        NotReloaded = "not-reloaded",
        /// The served certificate lacks a name that certificate-manifest.json lists.
        ManifestNameMissing = "manifest-name-missing",
    }
}

text_enum! {
    /// How a server treats client certificates.
    #[derive(Default)]
    pub enum MtlsVerdict {
        /// Requested, refused without one, ours accepted.
        RequiredAccepting = "required-accepting",
        /// Requested, refused without one, ours refused too.
        RequiredRejecting = "required-rejecting",
        /// Requested and refused without one; no certificate of ours was tried.
        Required = "required",
        /// Requested, but a connection without one is served.
        Optional = "optional",
        NotRequested = "not-requested",
        /// The handshake did not get far enough to tell.
        #[default]
        Unknown = "unknown",
    }
}

text_enum! {
    /// What a proxy's answer means, when it looks like one.
    pub enum ProxyMeaning {
        /// Traefik's `404 page not found`: no router for the Host.
        NoRouter = "no-router",
        /// 502.
        BackendRefused = "backend-refused",
        /// 504.
        BackendTimeout = "backend-timeout",
        /// Traefik's bare 500 when backend TLS verification fails.
        BackendTls = "backend-tls",
        /// 503.
        NoBackend = "no-backend",
    }
}

text_enum! {
    /// The transport a DNS answer came over.
    pub enum DnsTransport {
        Udp = "udp",
        /// After a truncated UDP answer.
        Tcp = "tcp",
    }
}

/// A DNS response code (RFC 1035, 2136), as `NOERROR`, `NXDOMAIN` ... or `RCODE<n>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rcode {
    NoError,
    FormErr,
    ServFail,
    NxDomain,
    NotImp,
    Refused,
    YxDomain,
    YxRrSet,
    NxRrSet,
    NotAuth,
    NotZone,
    Other(u16),
}

impl Rcode {
    const NAMED: [(Rcode, &'static str); 11] = [
        (Rcode::NoError, "NOERROR"),
        (Rcode::FormErr, "FORMERR"),
        (Rcode::ServFail, "SERVFAIL"),
        (Rcode::NxDomain, "NXDOMAIN"),
        (Rcode::NotImp, "NOTIMP"),
        (Rcode::Refused, "REFUSED"),
        (Rcode::YxDomain, "YXDOMAIN"),
        (Rcode::YxRrSet, "YXRRSET"),
        (Rcode::NxRrSet, "NXRRSET"),
        (Rcode::NotAuth, "NOTAUTH"),
        (Rcode::NotZone, "NOTZONE"),
    ];

    /// The code's number.
    pub fn from_u16(n: u16) -> Rcode {
        Rcode::NAMED
            .get(usize::from(n))
            .map(|(r, _)| *r)
            .unwrap_or(Rcode::Other(n))
    }

    /// SERVFAIL and REFUSED make a resolver try its next nameserver.
    pub fn tries_next_server(self) -> bool {
        matches!(self, Rcode::ServFail | Rcode::Refused)
    }
}

impl From<hickory_proto::op::ResponseCode> for Rcode {
    fn from(r: hickory_proto::op::ResponseCode) -> Rcode {
        Rcode::from_u16(u16::from(r))
    }
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Rcode::NAMED.iter().find(|(r, _)| r == self) {
            Some((_, name)) => f.pad(name),
            None => match self {
                Rcode::Other(n) => f.pad(&format!("RCODE{n}")),
                _ => unreachable!("every named code is in NAMED"),
            },
        }
    }
}

impl FromStr for Rcode {
    type Err = String;
    fn from_str(s: &str) -> Result<Rcode, String> {
        let up = s.to_ascii_uppercase();
        if let Some((r, _)) = Rcode::NAMED.iter().find(|(_, n)| *n == up) {
            return Ok(*r);
        }
        up.strip_prefix("RCODE")
            .and_then(|n| n.parse::<u16>().ok())
            .map(Rcode::from_u16)
            .ok_or_else(|| format!("unknown DNS response code `{s}`"))
    }
}

/// Where the answer a program at the vantage gets comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EffectiveSource {
    /// Nothing resolved (or it is unknown).
    #[default]
    None,
    /// The vantage's hosts file.
    Hosts,
    /// The step's own nameserver.
    Dns,
    /// Another nameserver of the vantage's resolv.conf.
    DnsVia(SocketAddr),
}

impl fmt::Display for EffectiveSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EffectiveSource::None => Ok(()),
            EffectiveSource::Hosts => f.write_str("hosts"),
            EffectiveSource::Dns => f.write_str("dns"),
            EffectiveSource::DnsVia(a) => write!(f, "dns via {a}"),
        }
    }
}

impl FromStr for EffectiveSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "" => Ok(EffectiveSource::None),
            "hosts" => Ok(EffectiveSource::Hosts),
            "dns" => Ok(EffectiveSource::Dns),
            _ => s
                .strip_prefix("dns via ")
                .and_then(|a| a.parse().ok())
                .map(EffectiveSource::DnsVia)
                .ok_or_else(|| {
                    format!("unknown effective source `{s}`, expected hosts, dns or `dns via ADDR`")
                }),
        }
    }
}

/// What a server did with a connection that offered a client certificate (or none).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientCertAnswer {
    /// It answered the request.
    Accepted,
    /// It answered with this status, which NGINX uses to turn a client away (400, 495, 496).
    HttpStatus(u16),
    /// It sent this TLS alert (`certificate-required`, `unknown-ca` ...).
    Alert(String),
    /// It closed the connection without a word.
    Closed,
    /// No answer in time.
    NoAnswer,
    /// The handshake or read failed for this reason (`reset`, `peer-closed`, `tls-error` ...).
    Failed(Reason),
}

impl ClientCertAnswer {
    /// True when the server turned the client away.
    pub fn is_rejection(&self) -> bool {
        match self {
            ClientCertAnswer::Alert(_)
            | ClientCertAnswer::HttpStatus(_)
            | ClientCertAnswer::Closed => true,
            ClientCertAnswer::Failed(r) => matches!(r, Reason::Reset | Reason::PeerClosed),
            ClientCertAnswer::Accepted | ClientCertAnswer::NoAnswer => false,
        }
    }
}

impl fmt::Display for ClientCertAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientCertAnswer::Accepted => f.write_str("accepted"),
            ClientCertAnswer::HttpStatus(c) => write!(f, "http-{c}"),
            ClientCertAnswer::Alert(a) => write!(f, "alert:{a}"),
            ClientCertAnswer::Closed => f.write_str("closed"),
            ClientCertAnswer::NoAnswer => f.write_str("no-answer"),
            ClientCertAnswer::Failed(r) => write!(f, "{r}"),
        }
    }
}

impl FromStr for ClientCertAnswer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "accepted" => ClientCertAnswer::Accepted,
            "closed" => ClientCertAnswer::Closed,
            "no-answer" => ClientCertAnswer::NoAnswer,
            _ => {
                if let Some(a) = s.strip_prefix("alert:") {
                    ClientCertAnswer::Alert(a.to_string())
                } else if let Some(c) = s.strip_prefix("http-").and_then(|c| c.parse().ok()) {
                    ClientCertAnswer::HttpStatus(c)
                } else {
                    ClientCertAnswer::Failed(s.parse()?)
                }
            }
        })
    }
}

/// Why a probe failed: the stable, machine-readable reason (`docs/output-json.md`, "Reason
/// codes"). One word may serve several layers (`refused` is a TCP reset and a DNS REFUSED;
/// `timeout` a DNS or HTTP silence): the layer and the evidence tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    // dns
    /// A response code other than NOERROR and REFUSED (`nxdomain`, `servfail`, `rcode-<name>`).
    Rcode(Rcode),
    NoData,
    WrongAnswer,
    HostsOverride,
    ResolverNoAnswer,
    ResolverDiffers,
    Timeout,
    PortUnreachable,
    BadResponse,
    DnsIoError,
    InvalidName,
    VantageFileUnreadable,
    // tcp
    /// A TCP reset or ICMP port-unreachable; at the DNS layer, the rcode REFUSED.
    Refused,
    Filtered,
    Unreachable,
    NetUnreachable,
    ConnectError,
    Reset,
    // tls
    HandshakeTimeout,
    TlsAlert,
    NotTls,
    PeerClosed,
    MessageTooLarge,
    TlsIncompatible,
    TlsError,
    /// The served chain did not verify.
    Verify(VerifyError),
    // mtls
    ClientCertNotRequested,
    ClientCertOptional,
    ClientCertRejected,
    // http
    StatusMismatch,
    BodyMismatch,
    HttpError,
    // the engine and the tool
    Blocked,
    OutOfScope,
    Budget,
    TimeoutBelowFloor,
    OutOfResources,
    ToolError,
}

impl Reason {
    const WORDS: [(Reason, &'static str); 36] = [
        (Reason::NoData, "nodata"),
        (Reason::WrongAnswer, "wrong-answer"),
        (Reason::HostsOverride, "hosts-override"),
        (Reason::ResolverNoAnswer, "resolver-no-answer"),
        (Reason::ResolverDiffers, "resolver-differs"),
        (Reason::Timeout, "timeout"),
        (Reason::PortUnreachable, "port-unreachable"),
        (Reason::BadResponse, "bad-response"),
        (Reason::DnsIoError, "dns-io-error"),
        (Reason::InvalidName, "invalid-name"),
        (Reason::VantageFileUnreadable, "vantage-file-unreadable"),
        (Reason::Refused, "refused"),
        (Reason::Filtered, "filtered"),
        (Reason::Unreachable, "unreachable"),
        (Reason::NetUnreachable, "net-unreachable"),
        (Reason::ConnectError, "connect-error"),
        (Reason::Reset, "reset"),
        (Reason::HandshakeTimeout, "handshake-timeout"),
        (Reason::TlsAlert, "tls-alert"),
        (Reason::NotTls, "not-tls"),
        (Reason::PeerClosed, "peer-closed"),
        (Reason::MessageTooLarge, "message-too-large"),
        (Reason::TlsIncompatible, "tls-incompatible"),
        (Reason::TlsError, "tls-error"),
        (Reason::ClientCertNotRequested, "client-cert-not-requested"),
        (Reason::ClientCertOptional, "client-cert-optional"),
        (Reason::ClientCertRejected, "client-cert-rejected"),
        (Reason::StatusMismatch, "status-mismatch"),
        (Reason::BodyMismatch, "body-mismatch"),
        (Reason::HttpError, "http-error"),
        (Reason::Blocked, "blocked"),
        (Reason::OutOfScope, "out-of-scope"),
        (Reason::Budget, "budget"),
        (Reason::TimeoutBelowFloor, "timeout-below-floor"),
        (Reason::OutOfResources, "out-of-resources"),
        (Reason::ToolError, "tool-error"),
    ];

    /// Every reason (each response code once).
    pub fn every() -> Vec<Reason> {
        let mut all: Vec<Reason> = Reason::WORDS.iter().map(|(r, _)| *r).collect();
        all.extend(VerifyError::ALL.iter().map(|v| Reason::Verify(*v)));
        all.extend(
            Rcode::NAMED
                .iter()
                .filter(|(r, _)| !matches!(r, Rcode::NoError | Rcode::Refused))
                .map(|(r, _)| Reason::Rcode(*r)),
        );
        all
    }

    /// The reason for a DNS response code (REFUSED is [`Reason::Refused`]).
    pub fn from_rcode(r: Rcode) -> Reason {
        match r {
            Rcode::Refused => Reason::Refused,
            r => Reason::Rcode(r),
        }
    }

    /// The tool's own limits (the run's budget, a timeout below the layer's floor): such a step
    /// says nothing about the platform.
    pub fn is_tool_limit(self) -> bool {
        matches!(self, Reason::Budget | Reason::TimeoutBelowFloor)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Rcode(Rcode::NxDomain) => f.write_str("nxdomain"),
            Reason::Rcode(Rcode::ServFail) => f.write_str("servfail"),
            Reason::Rcode(Rcode::FormErr) => f.write_str("formerr"),
            Reason::Rcode(Rcode::NotImp) => f.write_str("notimp"),
            Reason::Rcode(Rcode::Refused) => f.write_str("refused"),
            Reason::Rcode(r) => write!(f, "rcode-{}", r.to_string().to_lowercase()),
            Reason::Verify(v) => f.write_str(v.as_str()),
            r => match Reason::WORDS.iter().find(|(w, _)| w == r) {
                Some((_, word)) => f.write_str(word),
                None => unreachable!("every other reason is in WORDS"),
            },
        }
    }
}

impl FromStr for Reason {
    type Err = String;
    fn from_str(s: &str) -> Result<Reason, String> {
        if let Some((r, _)) = Reason::WORDS.iter().find(|(_, w)| *w == s) {
            return Ok(*r);
        }
        if let Ok(v) = s.parse::<VerifyError>() {
            return Ok(Reason::Verify(v));
        }
        let rcode = match s {
            "nxdomain" | "servfail" | "formerr" | "notimp" => s.parse().ok(),
            _ => s.strip_prefix("rcode-").and_then(|r| r.parse().ok()),
        };
        rcode
            .map(Reason::from_rcode)
            .ok_or_else(|| format!("unknown reason `{s}` (docs/output-json.md lists them)"))
    }
}

serde_as_text!(Rcode, EffectiveSource, ClientCertAnswer, Reason);

/// Comparison with the stable text (`reason == "refused"`), for tests and tools that hold text.
macro_rules! eq_text {
    ($($t:ty),*) => {$(
        impl PartialEq<&str> for $t {
            #[allow(clippy::cmp_owned)]
            fn eq(&self, other: &&str) -> bool {
                self.to_string() == *other
            }
        }
    )*};
}

eq_text!(
    Phase,
    TcpState,
    VerifyError,
    MtlsVerdict,
    ProxyMeaning,
    DnsTransport,
    Rcode,
    EffectiveSource,
    ClientCertAnswer,
    Reason
);

/// Serde for an optional value whose absence is the empty string (`"rcode": ""`).
pub mod empty_is_none {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::fmt::Display;
    use std::str::FromStr;

    pub fn serialize<T: Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr<Err = String>,
        D: Deserializer<'de>,
    {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(None);
        }
        s.parse().map(Some).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_back_as_itself() {
        let mut all = Reason::every();
        all.push(Reason::from_rcode(Rcode::Other(23)));
        for r in all {
            let text = r.to_string();
            assert_eq!(text.parse::<Reason>(), Ok(r), "{text}");
        }
        assert_eq!(Reason::from_rcode(Rcode::NxDomain).to_string(), "nxdomain");
        assert_eq!(
            Reason::from_rcode(Rcode::YxDomain).to_string(),
            "rcode-yxdomain"
        );
        assert_eq!(Reason::from_rcode(Rcode::Refused), Reason::Refused);
        assert!("no-such-reason".parse::<Reason>().is_err());
    }

    #[test]
    fn rcodes_sources_and_answers_keep_their_text() {
        assert_eq!(Rcode::from_u16(3).to_string(), "NXDOMAIN");
        assert_eq!(Rcode::from_u16(23).to_string(), "RCODE23");
        assert_eq!("RCODE23".parse::<Rcode>(), Ok(Rcode::Other(23)));
        let via: EffectiveSource = "dns via 127.0.0.53:53".parse().unwrap();
        assert_eq!(via.to_string(), "dns via 127.0.0.53:53");
        assert_eq!("".parse::<EffectiveSource>(), Ok(EffectiveSource::None));
        for w in [
            "accepted",
            "http-400",
            "alert:unknown-ca",
            "closed",
            "reset",
            "no-answer",
        ] {
            let a: ClientCertAnswer = w.parse().unwrap();
            assert_eq!(a.to_string(), w);
        }
        assert!(ClientCertAnswer::Alert("certificate-required".into()).is_rejection());
        assert!(!ClientCertAnswer::Accepted.is_rejection());
    }
}
