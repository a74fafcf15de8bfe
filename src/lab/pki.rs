//! The lab's step-ca-like PKI, generated in-process with rcgen: a root, an intermediate and
//! 24-hour ECDSA P-256 leaves, plus the deliberately bad certificates the faults serve.

use crate::error::{Error, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::IpAddr;
use time::{Duration, OffsetDateTime};

/// Subject CN of the lab root, as step-ca names it for the platform.
pub const ROOT_CN: &str = "ThinkHeads Internal CA Root CA";
/// Subject CN of the lab intermediate.
pub const INTERMEDIATE_CN: &str = "ThinkHeads Internal CA Intermediate CA";
const ORG: &str = "ThinkHeads Internal CA";

/// A certificate authority that can sign.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }
    pub fn pem(&self) -> String {
        self.cert.pem()
    }
}

/// A certificate with its key: `chain` is what a server presents (leaf first).
#[derive(Clone)]
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key_der: Vec<u8>,
    pub chain_pem: String,
    pub key_pem: String,
}

impl Leaf {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
    /// The same leaf without its intermediate.
    pub fn leaf_only(&self) -> Leaf {
        let first_pem = self
            .chain_pem
            .split_inclusive("-----END CERTIFICATE-----\n")
            .next()
            .unwrap_or_default()
            .to_string();
        Leaf {
            chain: self.chain[..1].to_vec(),
            key_der: self.key_der.clone(),
            chain_pem: first_pem,
            key_pem: self.key_pem.clone(),
        }
    }
}

/// Validity window of a leaf.
#[derive(Clone, Copy)]
pub enum Validity {
    /// From a minute ago for 24 hours (what the platform's renewal issues).
    Day,
    /// Expired a day ago.
    Expired,
    /// Issued 20 hours ago for 24 hours (due for renewal; the last one was not loaded).
    Old,
}

fn tool(what: &str) -> impl Fn(rcgen::Error) -> Error + '_ {
    move |e| Error::tool(format!("lab PKI: generating {what}: {e}"))
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ORG);
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params(cn: &str, path_len: u8) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::minutes(5);
    p.not_after = now + Duration::days(3650);
    p
}

/// A self-signed root with the given CN.
pub fn root(cn: &str) -> Result<Ca> {
    let key = KeyPair::generate().map_err(tool("a root key"))?;
    let cert = ca_params(cn, 1)
        .self_signed(&key)
        .map_err(tool("the root certificate"))?;
    Ok(Ca { cert, key })
}

/// An intermediate signed by `root`.
pub fn intermediate(root: &Ca, cn: &str) -> Result<Ca> {
    let key = KeyPair::generate().map_err(tool("an intermediate key"))?;
    let mut p = ca_params(cn, 0);
    p.use_authority_key_identifier_extension = true;
    let cert = p
        .signed_by(&key, &root.cert, &root.key)
        .map_err(tool("the intermediate certificate"))?;
    Ok(Ca { cert, key })
}

fn sans(names: &[&str], ips: &[IpAddr]) -> Result<Vec<SanType>> {
    let mut out = Vec::new();
    for n in names {
        let ia5 = (*n)
            .to_string()
            .try_into()
            .map_err(tool("a DNS subject alternative name"))?;
        out.push(SanType::DnsName(ia5));
    }
    out.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    Ok(out)
}

fn leaf_params(
    cn: &str,
    names: &[&str],
    ips: &[IpAddr],
    ekus: &[ExtendedKeyUsagePurpose],
    validity: Validity,
) -> Result<CertificateParams> {
    let mut p = CertificateParams::default();
    let mut d = DistinguishedName::new();
    d.push(DnType::CommonName, cn);
    p.distinguished_name = d;
    p.subject_alt_names = sans(names, ips)?;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = ekus.to_vec();
    p.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    match validity {
        Validity::Day => {
            p.not_before = now - Duration::minutes(1);
            p.not_after = now + Duration::hours(24);
        }
        Validity::Expired => {
            p.not_before = now - Duration::hours(48);
            p.not_after = now - Duration::hours(24);
        }
        Validity::Old => {
            p.not_before = now - Duration::hours(20);
            p.not_after = now + Duration::hours(4);
        }
    }
    Ok(p)
}

/// A leaf issued by `issuer`; the chain is leaf + issuer.
pub fn issue(
    issuer: &Ca,
    cn: &str,
    names: &[&str],
    ips: &[IpAddr],
    ekus: &[ExtendedKeyUsagePurpose],
    validity: Validity,
) -> Result<Leaf> {
    let key = KeyPair::generate().map_err(tool("a leaf key"))?;
    let cert = leaf_params(cn, names, ips, ekus, validity)?
        .signed_by(&key, &issuer.cert, &issuer.key)
        .map_err(tool("a leaf certificate"))?;
    Ok(Leaf {
        chain: vec![cert.der().clone(), issuer.der()],
        key_der: key.serialize_der(),
        chain_pem: format!("{}{}", cert.pem(), issuer.pem()),
        key_pem: key.serialize_pem(),
    })
}

/// A self-signed leaf (what the Portainer agent and an unconfigured Portainer serve).
pub fn self_signed(cn: &str, names: &[&str], ips: &[IpAddr]) -> Result<Leaf> {
    let key = KeyPair::generate().map_err(tool("a self-signed key"))?;
    let cert = leaf_params(
        cn,
        names,
        ips,
        &[ExtendedKeyUsagePurpose::ServerAuth],
        Validity::Day,
    )?
    .self_signed(&key)
    .map_err(tool("a self-signed certificate"))?;
    Ok(Leaf {
        chain: vec![cert.der().clone()],
        key_der: key.serialize_der(),
        chain_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Server leaves carry serverAuth and clientAuth, as step-ca issues them by default.
pub const SERVER_EKU: &[ExtendedKeyUsagePurpose] = &[
    ExtendedKeyUsagePurpose::ServerAuth,
    ExtendedKeyUsagePurpose::ClientAuth,
];
/// The router's client identity.
pub const CLIENT_EKU: &[ExtendedKeyUsagePurpose] = &[ExtendedKeyUsagePurpose::ClientAuth];
