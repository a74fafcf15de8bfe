//! The TLS probe: a handshake whose verifier records the served chain and never aborts, then a
//! separate, pure verification ([`tls_verify`]) that names the exact reason, and a summary of
//! every certificate served.

use super::classify::{self, Class};
use super::tcp;
use super::{fail, ms, observation, Deadline, ProbeCtx};
use crate::observe::{
    CertSummary, Evidence, Observation, Outcome, Phase, Reason, Timings, TlsEvidence, VerifyError,
};
use crate::plan::{Identity, Trust};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate, X509Name};
use x509_parser::public_key::PublicKey;

/// The ring crypto provider, shared.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Records the served chain and accepts it, so the handshake always completes far enough to
/// see what the server sends. Handshake signatures are still checked against the leaf.
#[derive(Debug)]
struct Recorder {
    chain: Mutex<Vec<CertificateDer<'static>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut c = self.chain.lock().unwrap_or_else(|p| p.into_inner());
        c.clear();
        c.push(end_entity.clone().into_owned());
        c.extend(intermediates.iter().map(|i| i.clone().into_owned()));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Records whether the server asked for a client certificate and which CA names it hinted;
/// offers the configured identity (or none).
#[derive(Debug)]
struct ClientAuth {
    key: Option<Arc<CertifiedKey>>,
    seen: Mutex<Option<Vec<String>>>,
}

impl ResolvesClientCert for ClientAuth {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let names = root_hint_subjects.iter().map(|d| dn_string(d)).collect();
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(names);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn der_wrap_sequence(inner: &[u8]) -> Vec<u8> {
    let mut v = vec![0x30];
    let n = inner.len();
    if n < 0x80 {
        v.push(n as u8);
    } else if n < 0x100 {
        v.extend([0x81, n as u8]);
    } else {
        v.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    v.extend_from_slice(inner);
    v
}

/// A distinguished name (DER, with or without its outer SEQUENCE) as text.
fn dn_string(der: &[u8]) -> String {
    if let Ok((_, n)) = X509Name::from_der(der) {
        return n.to_string();
    }
    let wrapped = der_wrap_sequence(der);
    match X509Name::from_der(&wrapped) {
        Ok((_, n)) => n.to_string(),
        Err(_) => format!("<undecodable name, {} bytes>", der.len()),
    }
}

/// What a handshake saw, whether or not it completed.
pub(crate) struct Handshake {
    pub connect_ms: Option<f64>,
    pub tls_ms: Option<f64>,
    pub chain: Vec<CertificateDer<'static>>,
    pub protocol: String,
    pub cipher: String,
    pub alpn: Option<String>,
    /// `Some(hints)` when the server sent a CertificateRequest.
    pub client_auth: Option<Vec<String>>,
    pub result: Result<TlsStream<TcpStream>, HandshakeFail>,
}

/// Why a handshake did not complete.
pub(crate) struct HandshakeFail {
    pub phase: Phase,
    pub class: Class,
    pub timed_out: bool,
    /// The raw io error, for mTLS rejection words.
    pub io: Option<std::io::Error>,
}

/// The server name to send and check: an IP literal sends no SNI and is checked against IP SANs.
pub(crate) fn server_name(sni: &str) -> Result<ServerName<'static>, String> {
    if let Ok(ip) = sni.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(sni.to_string()).map_err(|e| format!("invalid server name `{sni}`: {e}"))
}

/// Load a PEM client identity.
pub(crate) fn load_identity(id: &Identity) -> Result<Arc<CertifiedKey>, String> {
    let certs = read_certs(&id.cert)?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", id.cert.display()));
    }
    let data = crate::fsutil::read_bounded(&id.key, crate::fsutil::FileKind::Pem)
        .map_err(|e| e.to_string())?;
    let key = rustls_pemfile::private_key(&mut data.as_slice())
        .map_err(|e| format!("{}: {e}", id.key.display()))?
        .ok_or_else(|| format!("{}: no private key found", id.key.display()))?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("{}: unusable key: {e}", id.key.display()))?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

/// Read every PEM certificate in a file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = crate::fsutil::read_bounded(path, crate::fsutil::FileKind::Pem)
        .map_err(|e| e.to_string())?;
    rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))
}

impl Handshake {
    /// The TLS evidence of what this handshake saw (chain summarised, not yet verified; the
    /// leaf's life judged under `warn_days`).
    pub fn evidence(&self, addr: SocketAddr, sni: &str, warn_days: u32) -> TlsEvidence {
        let mut ev = TlsEvidence {
            addr: addr.to_string(),
            sni: sni.to_string(),
            protocol: self.protocol.clone(),
            cipher: self.cipher.clone(),
            alpn: self.alpn.clone(),
            ..TlsEvidence::default()
        };
        fill_chain(&mut ev, &self.chain, warn_days);
        ev
    }
}

impl HandshakeFail {
    /// A failure that is not about the network (a bad name, a TLS configuration rustls refuses).
    fn at_handshake(reason: Reason, detail: String) -> HandshakeFail {
        HandshakeFail {
            phase: Phase::Handshake,
            class: Class { reason, detail },
            timed_out: false,
            io: None,
        }
    }

    pub fn outcome(&self) -> Outcome {
        if self.timed_out {
            Outcome::TimedOut
        } else {
            Outcome::Failed
        }
    }
}

/// A client configuration that records the chain (`recorder`) and the client-certificate
/// request (`auth`) instead of judging them.
fn recording_config(
    recorder: Arc<Recorder>,
    auth: Arc<ClientAuth>,
    alpn: &[&[u8]],
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(recorder.provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(recorder)
        .with_client_cert_resolver(auth);
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(cfg)
}

/// The session's facts (version, cipher, ALPN) once a handshake completed.
fn record_session(hs: &mut Handshake, s: &TlsStream<TcpStream>) {
    let (_, c) = s.get_ref();
    hs.protocol = c.protocol_version().map(protocol_name).unwrap_or_default();
    hs.cipher = c
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    hs.alpn = c
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
}

/// Connect and run a TLS handshake that records everything and never rejects the chain; connect
/// and handshake together end by `deadline`.
pub(crate) async fn handshake(
    addr: SocketAddr,
    sni: &str,
    identity: Option<Arc<CertifiedKey>>,
    alpn: &[&[u8]],
    deadline: Deadline,
) -> Handshake {
    let mut hs = Handshake {
        connect_ms: None,
        tls_ms: None,
        chain: Vec::new(),
        protocol: String::new(),
        cipher: String::new(),
        alpn: None,
        client_auth: None,
        result: Err(HandshakeFail::at_handshake(Reason::TlsError, String::new())),
    };
    let name = match server_name(sni) {
        Ok(n) => n,
        Err(e) => {
            hs.result = Err(HandshakeFail::at_handshake(Reason::InvalidName, e));
            return hs;
        }
    };
    let (tcp, t) = tcp::connect(addr, deadline).await;
    hs.connect_ms = Some(t);
    let tcp = match tcp {
        Ok(s) => s,
        Err(f) => {
            let detail = tcp::connect_message(addr, &f);
            hs.result = Err(HandshakeFail {
                phase: Phase::Connect,
                timed_out: f.timed_out,
                class: Class {
                    reason: f.class.reason,
                    detail,
                },
                io: None,
            });
            return hs;
        }
    };
    let recorder = Arc::new(Recorder {
        chain: Mutex::new(Vec::new()),
        provider: provider(),
    });
    let auth = Arc::new(ClientAuth {
        key: identity,
        seen: Mutex::new(None),
    });
    let cfg = match recording_config(recorder.clone(), auth.clone(), alpn) {
        Ok(c) => c,
        Err(e) => {
            hs.result = Err(HandshakeFail::at_handshake(Reason::TlsError, e.to_string()));
            return hs;
        }
    };
    let connector = TlsConnector::from(Arc::new(cfg));
    let t = Instant::now();
    let r = tokio::time::timeout_at(deadline.at, connector.connect(name, tcp)).await;
    hs.tls_ms = Some(ms(t));
    hs.chain = recorder
        .chain
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    hs.client_auth = auth.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    hs.result = match r {
        Ok(Ok(s)) => {
            record_session(&mut hs, &s);
            Ok(s)
        }
        Ok(Err(e)) => Err(HandshakeFail {
            phase: Phase::Handshake,
            class: classify::tls_error(&e),
            timed_out: false,
            io: Some(e),
        }),
        Err(_) => Err(HandshakeFail {
            phase: Phase::Handshake,
            class: Class {
                reason: Reason::HandshakeTimeout,
                detail: format!(
                    "no complete handshake within {} ms (the peer accepted TCP but did not finish TLS)",
                    deadline.ms()
                ),
            },
            timed_out: true,
            io: None,
        }),
    };
    hs
}

fn protocol_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => format!("{other:?}"),
    }
}

fn rfc3339(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ts.to_string())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Summarise one DER certificate.
pub fn summarize(der: &[u8]) -> CertSummary {
    let sha256 = hex(&Sha256::digest(der));
    let Ok((_, c)) = X509Certificate::from_der(der) else {
        return CertSummary {
            subject: "<undecodable certificate>".into(),
            sha256,
            ..CertSummary::default()
        };
    };
    let mut dns_sans = Vec::new();
    let mut ip_sans = Vec::new();
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for g in &san.value.general_names {
            match g {
                GeneralName::DNSName(d) => dns_sans.push(d.to_string()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => ip_sans.push(IpAddr::from(<[u8; 4]>::try_from(*b).expect("len 4"))),
                    16 => ip_sans.push(IpAddr::from(<[u8; 16]>::try_from(*b).expect("len 16"))),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let key_type = match c.public_key().parsed() {
        Ok(PublicKey::EC(p)) => {
            let curve = c
                .public_key()
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| match o.to_id_string().as_str() {
                    "1.2.840.10045.3.1.7" => "P-256".to_string(),
                    "1.3.132.0.34" => "P-384".to_string(),
                    "1.3.132.0.35" => "P-521".to_string(),
                    other => other.to_string(),
                })
                .unwrap_or_else(|| format!("{} bits", p.key_size()));
            format!("ECDSA {curve}")
        }
        Ok(PublicKey::RSA(r)) => format!("RSA {}", r.key_size()),
        Ok(PublicKey::DSA(_)) => "DSA".into(),
        Ok(_) => {
            let oid = c.public_key().algorithm.algorithm.to_id_string();
            match oid.as_str() {
                "1.3.101.112" => "Ed25519".into(),
                "1.3.101.113" => "Ed448".into(),
                _ => oid,
            }
        }
        Err(_) => "unknown".into(),
    };
    CertSummary {
        subject: c.subject().to_string(),
        issuer: c.issuer().to_string(),
        dns_sans,
        ip_sans,
        serial: c.raw_serial_as_string(),
        not_before: rfc3339(c.validity().not_before.timestamp()),
        not_after: rfc3339(c.validity().not_after.timestamp()),
        key_type,
        sha256,
        is_ca: c.is_ca(),
    }
}

/// Why a chain did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyFailure {
    pub reason: VerifyError,
    /// Dates, names presented, issuers.
    pub detail: String,
}

fn vf(reason: VerifyError, detail: impl Into<String>) -> Result<(), VerifyFailure> {
    Err(VerifyFailure {
        reason,
        detail: detail.into(),
    })
}

/// True when the certificate's subject equals its issuer.
fn self_issued(der: &[u8]) -> bool {
    X509Certificate::from_der(der)
        .map(|(_, c)| c.subject().as_raw() == c.issuer().as_raw())
        .unwrap_or(false)
}

fn subject_of(der: &[u8]) -> String {
    X509Certificate::from_der(der)
        .map(|(_, c)| c.subject().to_string())
        .unwrap_or_else(|_| "<undecodable>".into())
}

fn issuer_of(der: &[u8]) -> String {
    X509Certificate::from_der(der)
        .map(|(_, c)| c.issuer().to_string())
        .unwrap_or_else(|_| "<undecodable>".into())
}

fn validity_of(der: &[u8]) -> (i64, i64) {
    X509Certificate::from_der(der)
        .map(|(_, c)| {
            (
                c.validity().not_before.timestamp(),
                c.validity().not_after.timestamp(),
            )
        })
        .unwrap_or((0, 0))
}

/// The certificates of a trust file, split as [`tls_verify`] uses them.
struct TrustFile<'a> {
    /// The self-issued certificates (all of them when none is self-issued).
    anchors: Vec<&'a CertificateDer<'a>>,
    /// The others (an intermediate shipped in a CA bundle): never trusted on their own.
    extra: Vec<&'a CertificateDer<'a>>,
}

impl<'a> TrustFile<'a> {
    fn split(roots: &'a [CertificateDer<'a>]) -> TrustFile<'a> {
        let (anchors, extra): (Vec<_>, Vec<_>) = roots.iter().partition(|r| self_issued(r));
        if anchors.is_empty() {
            return TrustFile {
                anchors: roots.iter().collect(),
                extra,
            };
        }
        TrustFile { anchors, extra }
    }

    fn names(&self) -> String {
        let names: Vec<String> = self.anchors.iter().map(|d| subject_of(d)).collect();
        names.join("; ")
    }
}

/// Verify a served chain (leaf first) against trust anchors, for a server name, at a time.
///
/// Self-issued certificates in `roots` are the anchors; other certificates there (an
/// intermediate shipped in a CA bundle) are never trusted on their own, but when adding them
/// completes the chain the reason is `intermediate-not-served`.
/// `name` may be a DNS name or an IP literal (checked against IP SANs).
pub fn tls_verify<'a>(
    chain: &[CertificateDer<'_>],
    roots: &'a [CertificateDer<'a>],
    name: &str,
    now: UnixTime,
) -> Result<(), VerifyFailure> {
    let Some(leaf) = chain.first() else {
        return vf(VerifyError::NoCertificate, "the server sent no certificate");
    };
    let trust = TrustFile::split(roots);
    let anchors: Vec<_> = trust
        .anchors
        .iter()
        .filter_map(|d| webpki::anchor_from_trusted_cert(d).ok())
        .collect();
    if anchors.is_empty() {
        return vf(
            VerifyError::UnknownIssuer,
            "no usable trust anchor in the trust file",
        );
    }
    let ee = match webpki::EndEntityCert::try_from(leaf) {
        Ok(e) => e,
        Err(e) => {
            return vf(
                VerifyError::BadCertificate,
                format!("the leaf does not parse: {e:?}"),
            )
        }
    };
    let attempt = |inter: &[CertificateDer<'_>]| {
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            inter,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map(|_| ())
    };
    let served: Vec<CertificateDer<'_>> = chain[1..].to_vec();
    let Err(e) = attempt(&served) else {
        return check_name(&ee, leaf, name);
    };
    use webpki::Error as W;
    Err(match e {
        W::UnknownIssuer => {
            let mut more = served.clone();
            more.extend(trust.extra.iter().map(|c| (*c).clone()));
            let completes = !trust.extra.is_empty() && attempt(&more).is_ok();
            unknown_issuer(chain, &trust, completes)
        }
        W::CertExpired { time, not_after } => {
            let at = not_after.as_secs() as i64;
            let which = subject_with(chain, |(_, na)| na == at);
            outside_validity(
                VerifyError::Expired,
                format!("{which} expired at"),
                at,
                time,
            )
        }
        W::CertNotValidYet { time, not_before } => {
            let at = not_before.as_secs() as i64;
            let which = subject_with(chain, |(nb, _)| nb == at);
            let what = format!("{which} is valid only from");
            outside_validity(VerifyError::NotValidYet, what, at, time)
        }
        W::RequiredEkuNotFoundContext(_)
        | W::EmptyEkuExtension
        | W::CaUsedAsEndEntity
        | W::EndEntityUsedAsCa => VerifyFailure {
            reason: VerifyError::BadKeyUsage,
            detail: format!(
                "{} is not usable as a TLS server certificate: {e:?}",
                subject_of(leaf)
            ),
        },
        other => VerifyFailure {
            reason: VerifyError::BadCertificate,
            detail: format!("{other:?}"),
        },
    })
}

/// The subject of the first certificate of `chain` whose validity `(not_before, not_after)`
/// matches, else the leaf's.
/// A certificate outside its validity window: `what` ("<subject> expired at"), the bound it
/// passed (`at`, Unix seconds) and the time it was judged at.
fn outside_validity(reason: VerifyError, what: String, at: i64, now: UnixTime) -> VerifyFailure {
    VerifyFailure {
        reason,
        detail: format!(
            "{what} {} (now {})",
            rfc3339(at),
            rfc3339(now.as_secs() as i64)
        ),
    }
}

fn subject_with(chain: &[CertificateDer<'_>], hit: impl Fn((i64, i64)) -> bool) -> String {
    chain
        .iter()
        .find(|c| hit(validity_of(c)))
        .or(chain.first())
        .map(|c| subject_of(c))
        .unwrap_or_default()
}

/// Why no path leads to an anchor: a self-signed leaf, an intermediate the server did not send
/// (`completes`: the trust file's extra certificates complete the chain), or another issuer.
fn unknown_issuer(
    chain: &[CertificateDer<'_>],
    trust: &TrustFile<'_>,
    completes: bool,
) -> VerifyFailure {
    let leaf = &chain[0];
    if self_issued(leaf) {
        return VerifyFailure {
            reason: VerifyError::SelfSigned,
            detail: format!(
                "the leaf {} is self-signed (issuer = subject); trusted: {}",
                subject_of(leaf),
                trust.names()
            ),
        };
    }
    if completes {
        return VerifyFailure {
            reason: VerifyError::IntermediateNotServed,
            detail: format!(
                "the server sent {} certificate(s) without the intermediate {}; the chain completes with the intermediate from the trust file",
                chain.len(),
                issuer_of(leaf)
            ),
        };
    }
    let last = chain.last().unwrap_or(leaf);
    let hint = if chain.len() == 1 {
        " (only the leaf was served: the intermediate may be missing)"
    } else {
        ""
    };
    VerifyFailure {
        reason: VerifyError::UnknownIssuer,
        detail: format!(
            "the chain ends at {} issued by {}, which is not a trust anchor (trusted: {}){hint}",
            subject_of(last),
            issuer_of(last),
            trust.names()
        ),
    }
}

fn check_name(
    ee: &webpki::EndEntityCert<'_>,
    leaf: &[u8],
    name: &str,
) -> Result<(), VerifyFailure> {
    let sn = match server_name(name) {
        Ok(s) => s,
        Err(e) => return vf(VerifyError::NotValidForName, e),
    };
    match ee.verify_is_valid_for_subject_name(&sn) {
        Ok(()) => Ok(()),
        Err(_) => {
            let s = summarize(leaf);
            let mut presented: Vec<String> = s.dns_sans.clone();
            presented.extend(s.ip_sans.iter().map(|i| i.to_string()));
            vf(
                VerifyError::NotValidForName,
                format!(
                    "the leaf names {} but {name} was asked for",
                    if presented.is_empty() {
                        "no SAN".to_string()
                    } else {
                        presented.join(", ")
                    }
                ),
            )
        }
    }
}

/// Check a leaf against a list of pinned names (DNS or IP), with no chain verification.
pub fn pin_check(leaf: &CertificateDer<'_>, names: &[String]) -> Result<(), VerifyFailure> {
    let ee = match webpki::EndEntityCert::try_from(leaf) {
        Ok(e) => e,
        Err(e) => {
            return vf(
                VerifyError::BadCertificate,
                format!("the leaf does not parse: {e:?}"),
            )
        }
    };
    for n in names {
        if let Ok(sn) = server_name(n) {
            if ee.verify_is_valid_for_subject_name(&sn).is_ok() {
                return Ok(());
            }
        }
    }
    let s = summarize(leaf);
    let mut presented = s.dns_sans.clone();
    presented.extend(s.ip_sans.iter().map(|i| i.to_string()));
    vf(
        VerifyError::PinMismatch,
        format!(
            "the self-signed leaf names {} but one of {} was expected",
            presented.join(", "),
            names.join(", ")
        ),
    )
}

/// A leaf is close to expiry below this fraction of its life when that is sooner than
/// `--warn-days`: the platform's 24-hour leaves renew hourly once under 12 hours remain, so
/// under 40% (9.6 hours) the last renewals did not happen.
pub const LIFE_WARN_FRACTION: f64 = 0.4;
/// `--warn-days` by default.
pub const DEFAULT_WARN_DAYS: u32 = 14;

/// The remaining life below which a leaf of `lifetime_secs` (notBefore..notAfter) is close to
/// expiry: `warn_days`, or [`LIFE_WARN_FRACTION`] of its life when that is shorter (a
/// short-lived leaf such as step-ca's 24-hour ones).
pub fn warn_below_secs(lifetime_secs: i64, warn_days: u32) -> i64 {
    let days = i64::from(warn_days) * 86_400;
    let part = (lifetime_secs.max(0) as f64 * LIFE_WARN_FRACTION) as i64;
    days.min(part)
}

/// The first certificate of a PEM text: its summary, the seconds it has left at `now` (negative
/// once expired) and the remaining life under which it is close to expiry under `warn_days`.
pub fn pem_life(pem: &str, warn_days: u32, now: i64) -> Option<(CertSummary, i64, i64)> {
    let der = rustls_pemfile::certs(&mut pem.as_bytes()).next()?.ok()?;
    let (nb, na) = validity_of(&der);
    Some((
        summarize(&der),
        na - now,
        warn_below_secs(na - nb, warn_days),
    ))
}

/// Fill in the chain summaries and remaining lifetime of the leaf, with the remaining life
/// below which it is close to expiry under `warn_days`.
pub(crate) fn fill_chain(ev: &mut TlsEvidence, chain: &[CertificateDer<'_>], warn_days: u32) {
    ev.chain = chain.iter().map(|c| summarize(c)).collect();
    if let Some(leaf) = chain.first() {
        let (nb, na) = validity_of(leaf);
        let now = UnixTime::now().as_secs() as i64;
        ev.remaining_secs = Some(na - now);
        let life = (na - nb).max(1) as f64;
        ev.remaining_fraction = Some(((na - now) as f64 / life).clamp(0.0, 1.0));
        ev.warn_below_secs = Some(warn_below_secs(na - nb, warn_days));
    }
}

/// Verify `chain` with `trust`; sets `verified`, `verify_error`, `verify_detail`.
/// Returns `Err(message)` only for tool errors (an unreadable trust file).
pub(crate) fn apply_trust(
    ev: &mut TlsEvidence,
    chain: &[CertificateDer<'_>],
    sni: &str,
    trust: &Trust,
) -> Result<(), String> {
    let r = match trust {
        Trust::None => return Ok(()),
        Trust::Ca { file } => {
            let roots = read_certs(file)?;
            if roots.is_empty() {
                return Err(format!("{}: no certificate found", file.display()));
            }
            tls_verify(chain, &roots, sni, UnixTime::now())
        }
        Trust::SelfSigned { names } => match chain.first() {
            Some(leaf) => pin_check(leaf, names),
            None => vf(VerifyError::NoCertificate, "the server sent no certificate"),
        },
    };
    match r {
        Ok(()) => ev.verified = true,
        Err(f) => {
            ev.verified = false;
            ev.verify_error = Some(f.reason);
            ev.verify_detail = f.detail;
        }
    }
    Ok(())
}

/// Describe the TLS session in a few words.
pub(crate) fn session_words(ev: &TlsEvidence) -> String {
    let leaf = ev
        .chain
        .first()
        .map(|c| format!(", leaf {} ({})", c.subject, c.key_type))
        .unwrap_or_default();
    format!(
        "{} {}, {} cert(s){leaf}",
        ev.protocol,
        ev.cipher,
        ev.chain.len()
    )
}

/// Run the TLS probe.
pub async fn probe(ctx: &ProbeCtx, addr: SocketAddr, sni: &str, trust: &Trust) -> Observation {
    let t = Instant::now();
    let hs = handshake(
        addr,
        sni,
        None,
        &[b"h2", b"http/1.1"],
        Deadline::after(ctx.timeout),
    )
    .await;
    let mut ev = hs.evidence(addr, sni, ctx.warn_days);
    let timings = Timings {
        connect_ms: hs.connect_ms,
        tls_ms: hs.tls_ms,
        total_ms: ms(t),
        ..Timings::default()
    };
    match hs.result {
        Err(f) => {
            let o = observation(f.outcome(), Evidence::Tls(ev), timings);
            let msg = format!("{addr} ({sni}): {}", f.class.detail);
            fail(o, f.outcome(), f.phase, f.class.reason, msg)
        }
        Ok(_stream) => {
            if let Err(e) = apply_trust(&mut ev, &hs.chain, sni, trust) {
                let mut o = super::Observation::tool_error("", Phase::Verify, e);
                o.evidence = Evidence::Tls(ev);
                o.timings = timings;
                return o;
            }
            let words = session_words(&ev);
            let o = observation(Outcome::Ok, Evidence::Tls(ev.clone()), timings);
            match ev.verify_error {
                Some(e) => {
                    let msg = format!("{addr} ({sni}): {}; {words}", ev.verify_detail);
                    fail(o, Outcome::Failed, Phase::Verify, Reason::Verify(e), msg)
                }
                None => {
                    let mut o = o;
                    o.phase = Some(Phase::Verify);
                    let v = if ev.verified {
                        "verified"
                    } else {
                        "not verified (no trust given)"
                    };
                    o.message = format!("{addr} ({sni}): {v}; {words}");
                    o
                }
            }
        }
    }
}

#[cfg(test)]
mod life_tests {
    use super::*;

    /// A self-signed leaf of `life_h` hours with `left_h` hours of it left.
    fn leaf(life_h: i64, left_h: i64) -> CertificateDer<'static> {
        let mut p = rcgen::CertificateParams::new(vec!["a.example.test".to_string()]).unwrap();
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::hours(life_h - left_h);
        p.not_after = now + time::Duration::hours(left_h);
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().clone()
    }

    fn short(life_h: i64, left_h: i64, warn_days: u32) -> (bool, Option<i64>) {
        let mut ev = TlsEvidence::default();
        fill_chain(&mut ev, &[leaf(life_h, left_h)], warn_days);
        (ev.life_short(), ev.warn_below_secs)
    }

    /// Thresholds by hand: a 24-hour leaf warns under 40% of 24 h = 9.6 h = 34 560 s, whatever
    /// --warn-days; a 90-day leaf under --warn-days (14 days < 36 days); a one-year leaf too.
    #[test]
    fn a_leaf_is_close_to_expiry_under_warn_days_or_40_percent_of_a_short_life() {
        assert_eq!(warn_below_secs(86_400, 14), 34_560);
        assert_eq!(warn_below_secs(90 * 86_400, 14), 14 * 86_400);
        assert_eq!(warn_below_secs(90 * 86_400, 60), 36 * 86_400);
        // step-ca's 24-hour leaves: 4 h left warns, 23 h and 11 h left do not
        assert_eq!(short(24, 4, 14), (true, Some(34_560)));
        assert!(!short(24, 23, 14).0);
        assert!(!short(24, 11, 14).0);
        // a 90-day leaf with 10 days left: under 14 days, over 7
        assert!(short(90 * 24, 10 * 24, 14).0);
        assert!(!short(90 * 24, 10 * 24, 7).0);
        // a one-year leaf with 20 days left: fine at 14 days, close at 30
        assert!(!short(365 * 24, 20 * 24, 14).0);
        assert!(short(365 * 24, 20 * 24, 30).0);
    }
}
