//! The certificate manifest against the hops: CA reachability for renewing clients, the
//! gateway certificate's names, backend IP SANs, entries that renew on every run.

use super::catalog as codes;
use super::{finding, label, with_subjects};
use crate::finding::Finding;
use crate::model::{Cert, DnsRule, Intended, Route};
use std::collections::HashMap;

/// PD-CERT-001: certificate clients with no IN rule on the CA's :9000.
pub(crate) fn ca_reachability(m: &Intended) -> Vec<Finding> {
    super::firewall::in_rule_findings(m, true)
}

/// PD-CERT-002: names DNS sends to the gateway that its certificate does not carry.
pub(crate) fn gateway_sans(m: &Intended) -> Vec<Finding> {
    let Some(gw) = &m.gateway else {
        return Vec::new();
    };
    let Some(cert) = gw.cert.and_then(|i| m.certs.get(i)) else {
        return Vec::new();
    };
    let covered = |name: &str| crate::model::stacks::san_covers(&cert.effective_sans, name);
    let mut names: Vec<(String, Vec<crate::config::Provenance>, String)> = Vec::new();
    for rec in &m.dns.records {
        if rec.ip == Some(gw.ip.value)
            && matches!(
                rec.rule,
                DnsRule::StackLabel
                    | DnsRule::VmTraefikService
                    | DnsRule::Static
                    | DnsRule::LxcTraefikService
            )
        {
            names.push((
                rec.hostname.clone(),
                rec.provenance.clone(),
                format!("rule {}: {}", rec.rule.number(), rec.rule.describe()),
            ));
        }
    }
    for n in &gw.server_names {
        if !names.iter().any(|(x, _, _)| x.eq_ignore_ascii_case(n)) {
            names.push((n.clone(), Vec::new(), "NGINX server_name".to_string()));
        }
    }
    let missing: Vec<&(String, Vec<crate::config::Provenance>, String)> =
        names.iter().filter(|(n, _, _)| !covered(n)).collect();
    if missing.is_empty() {
        return Vec::new();
    }
    let list = missing
        .iter()
        .map(|(n, _, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut f = finding(
        codes::PD_CERT_002,
        format!("the gateway certificate does not name {list}"),
    )
    .expected(format!(
        "{} ({}) lists every name DNS sends to the gateway {}",
        cert.common_name.value,
        cert.cert_path
            .as_ref()
            .map(|p| p.value.as_str())
            .unwrap_or("certificate-manifest.json"),
        gw.ip.value
    ))
    .actual(format!(
        "SANs [{}]; missing {}",
        cert.effective_sans.join(", "),
        missing
            .iter()
            .map(|(n, _, why)| format!("{n} ({why})"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .hint("Add the names to the entry's `sans` in certificate-manifest.json and re-run the renewal with --force.")
    .provenance([cert.prov.clone()])
    .provenance(missing.iter().flat_map(|(_, p, _)| p.iter().take(1).cloned()))
    .subject(gw.ip.value.to_string())
    .subject(format!("{}:{}", gw.ip.value, gw.listen.value))
    .subject(format!("lxc:{}", gw.lxc));
    for (n, _, _) in &missing {
        f = f.subject(n.clone());
    }
    vec![f]
}

/// PD-CERT-003: no manifest entry issues the certificate the gateway serves.
pub(crate) fn gateway_cert_missing(m: &Intended) -> Vec<Finding> {
    let Some(gw) = &m.gateway else {
        return Vec::new();
    };
    if gw.cert.is_some() {
        return Vec::new();
    }
    let cn = gw
        .ssl_certificate
        .rsplit('/')
        .next()
        .unwrap_or("")
        .trim_end_matches(".crt")
        .to_string();
    vec![finding(
        codes::PD_CERT_003,
        format!("no certificate-manifest.json entry issues {cn}"),
    )
    .expected(format!(
        "a manifest entry with common_name {cn} (NGINX serves {})",
        gw.ssl_certificate
    ))
    .actual(format!(
        "the manifest has [{}]",
        m.certs
            .iter()
            .map(|c| c.common_name.value.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .hint("Add the gateway entry to certificate-manifest.json; the NGINX generator refuses to run without the file.")
    .provenance(m.certs.iter().map(|c| c.prov.clone()).take(1))
    .provenance([gw.ip.prov.clone()])
    .subject(format!("lxc:{}", gw.lxc))
    .subject(gw.ip.value.to_string())
    .subject(cn)]
}

/// The manifest entries by what [`CertIndex::backend`] looks them up by (the first entry in
/// manifest order for each key).
struct CertIndex<'a> {
    certs: &'a [Cert],
    /// Lower-cased common name → index into `certs`.
    by_cn: HashMap<String, usize>,
    /// `<id>` of a `/<id>/` in the cert path → index into `certs`.
    by_dir: HashMap<&'a str, usize>,
}

impl<'a> CertIndex<'a> {
    fn new(m: &'a Intended) -> CertIndex<'a> {
        let mut ix = CertIndex {
            certs: &m.certs,
            by_cn: HashMap::new(),
            by_dir: HashMap::new(),
        };
        for (i, c) in m.certs.iter().enumerate() {
            ix.by_cn
                .entry(c.common_name.value.to_ascii_lowercase())
                .or_insert(i);
            if let Some(p) = &c.cert_path {
                let parts: Vec<&str> = p.value.split('/').collect();
                // Only segments with a `/` on both sides.
                for seg in parts.iter().skip(1).take(parts.len().saturating_sub(2)) {
                    ix.by_dir.entry(seg).or_insert(i);
                }
            }
        }
        ix
    }

    /// The manifest entry that issues an HTTPS backend's certificate: by CN = the route's host
    /// or the service's hostname, or by a cert path under the guest's id.
    fn backend(&self, m: &Intended, r: &Route) -> Option<&'a Cert> {
        let guest = r.guest?;
        let id = match guest {
            crate::plan::VantageRef::Lxc(i) | crate::plan::VantageRef::Vm(i) => i,
            crate::plan::VantageRef::Host => return None,
        };
        let mut names = vec![r.host.to_ascii_lowercase()];
        if let Some(p) = m.portainer.as_ref().filter(|p| p.vm == id) {
            names.push(p.hostname.value.to_ascii_lowercase());
        }
        // The first entry in manifest order that has one of the names.
        let i = names
            .iter()
            .filter_map(|n| self.by_cn.get(n).copied())
            .min()
            .or_else(|| self.by_dir.get(id.to_string().as_str()).copied())?;
        Some(&self.certs[i])
    }
}

/// PD-CERT-004: an HTTPS backend whose manifest certificate lacks the IP Traefik verifies.
pub(crate) fn backend_ip_san(m: &Intended) -> Vec<Finding> {
    let certs = CertIndex::new(m);
    let mut out = Vec::new();
    for r in m
        .routes
        .routes
        .iter()
        .filter(|r| r.scheme == crate::observe::Scheme::Https)
    {
        let (Some(b), Some(g)) = (r.backend, r.guest) else {
            continue;
        };
        let Some(c) = certs.backend(m, r) else {
            continue;
        };
        let ip = b.ip().to_string();
        if c.effective_sans.contains(&ip) {
            continue;
        }
        out.push(with_subjects(
            finding(
                codes::PD_CERT_004,
                format!("{} certificate lacks IP SAN {ip} that Traefik verifies", c.common_name.value),
            )
            .expected(format!(
                "{} carries IP SAN {ip}: Traefik dials {} with no serverName and verifies the IP",
                c.common_name.value, r.url
            ))
            .actual(if c.sans_declared {
                format!("sans [{}] without {ip}", c.effective_sans.join(", "))
            } else {
                format!(
                    "the entry has no `sans`: the renewal re-issues it with SAN {} only, dropping {ip}",
                    c.common_name.value
                )
            })
            .hint(format!(
                "Add \"sans\": [\"{}\", \"{ip}\"] to the entry (step adds IP SANs for IP arguments).",
                c.common_name.value
            ))
            .provenance([c.prov.clone()])
            .provenance(r.provenance.iter().take(1).cloned()),
            [g.to_string(), ip.clone(), b.to_string(), r.host.clone(), c.common_name.value.clone()],
        ));
    }
    out
}

/// PD-CERT-005: an HTTPS backend that no manifest entry issues a certificate for.
pub(crate) fn backend_without_cert(m: &Intended) -> Vec<Finding> {
    let certs = CertIndex::new(m);
    let mut out = Vec::new();
    for r in m
        .routes
        .routes
        .iter()
        .filter(|r| r.scheme == crate::observe::Scheme::Https)
    {
        let (Some(b), Some(g)) = (r.backend, r.guest) else {
            continue;
        };
        if certs.backend(m, r).is_some() {
            continue;
        }
        let who = m.node(g).map(label).unwrap_or_else(|| g.to_string());
        out.push(with_subjects(
            finding(
                codes::PD_CERT_005,
                format!("Traefik verifies {} but nothing issues its certificate", r.url),
            )
            .expected(format!(
                "a certificate for {b} from the internal CA (Traefik's internal-ca transport verifies it against {})",
                m.routes.internal_ca_roots.join(", ")
            ))
            .actual(format!(
                "no certificate-manifest.json entry for {who}: it serves its own (self-signed) certificate and the route fails verification"
            ))
            .hint("Issue the backend a certificate from step-ca (with its IP SAN), or drop the route.")
            .provenance(r.provenance.iter().take(1).cloned()),
            [g.to_string(), b.ip().to_string(), b.to_string(), r.host.clone()],
        ));
    }
    out
}

/// PD-CERT-006: manifest entries without `sans` renew on every run.
pub(crate) fn entries_without_sans(m: &Intended) -> Vec<Finding> {
    m.certs
        .iter()
        .filter(|c| !c.sans_declared)
        .map(|c| {
            let mut f = finding(
                codes::PD_CERT_006,
                format!("{} has no `sans`: it renews on every run", c.common_name.value),
            )
            .expected("an explicit `sans` list that matches the issued certificate")
            .actual(format!(
                "no `sans`: the renewal compares \"\" with the certificate's SANs, re-issues it hourly and runs `{}`",
                c.post_renewal_command
                    .as_ref()
                    .map(|p| p.value.as_str())
                    .unwrap_or("its post-renewal command")
            ))
            .hint(format!(
                "Add \"sans\": [\"{}\"] (plus any IP the hops verify).",
                c.common_name.value
            ))
            .provenance([c.prov.clone()])
            .subject(c.common_name.value.clone());
            if let Some(v) = guest_of_path(c) {
                f = f.subject(v);
            }
            f
        })
        .collect()
}

/// `lxc:102` / `vm:1001` from a manifest path (`.../lxc-persistent-data/102/...`).
fn guest_of_path(c: &Cert) -> Option<String> {
    let p = &c.cert_path.as_ref()?.value;
    for (marker, kind) in [
        ("lxc-persistent-data/", "lxc"),
        ("vm-persistent-data/", "vm"),
    ] {
        if let Some(rest) = p.split(marker).nth(1) {
            let id: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            if !id.is_empty() {
                return Some(format!("{kind}:{id}"));
            }
        }
    }
    None
}
