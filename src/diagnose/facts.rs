//! Guest facts at the failing hop: which files a trace reads from which guest (the listening
//! sockets behind a TCP target, the certificate file the manifest names), and what they add to
//! the diagnosis: the port a process listens on instead of the intended one, a certificate
//! renewed on disk but not reloaded, a served certificate that lacks a name the manifest lists,
//! and a static finding the live run contradicts, reported as a defect not live yet.

use crate::config::Provenance;
use crate::deployed::pvefw;
use crate::engine::Run;
use crate::finding::{EvidenceItem, Origin, Reconciled, Severity};
use crate::model::Intended;
use crate::observe::{CertSummary, Evidence, Outcome};
use crate::observe::{Reason, VerifyError};
use crate::plan::{Plan, ProbeSpec, VantageRef};
use crate::vantage::{files::FileRead, listeners};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The socket tables of a guest (its listening TCP sockets).
pub const TABLES: [&str; 2] = ["/proc/net/tcp", "/proc/net/tcp6"];
/// What is read for a guest's listening sockets: the tables and who owns them.
pub const SOCKETS: [&str; 3] = [TABLES[0], TABLES[1], listeners::OWNERS];

/// The reason of a served certificate other than the (newer) one on disk.
pub const NOT_RELOADED: VerifyError = VerifyError::NotReloaded;
/// The reason of a served certificate that lacks a name the manifest lists.
pub const MANIFEST_NAME_MISSING: VerifyError = VerifyError::ManifestNameMissing;

/// What was read from the guests for one run, and the intent it is held against.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuestFacts {
    /// The vantage at each address (the host and every guest with a static IP).
    #[serde(default)]
    pub addresses: BTreeMap<IpAddr, VantageRef>,
    /// Per vantage (`lxc:101`): the files read there.
    #[serde(default)]
    pub files: BTreeMap<VantageRef, Vec<FileRead>>,
    /// The manifest's certificates: their names and the file the renewal writes (on the host).
    #[serde(default)]
    pub certs: Vec<ManifestCert>,
    /// The guests whose proxy configs explain a proxy's error: the gateway (NGINX) and the
    /// router (Traefik), when the plan has an HTTP step.
    #[serde(default, skip_serializing_if = "Proxies::is_empty")]
    pub proxies: Proxies,
    /// Per vantage: the paths asked (a glob that matched nothing leaves no file behind).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub asked: BTreeMap<VantageRef, Vec<String>>,
}

/// The proxies' guests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proxies {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<VantageRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<VantageRef>,
}

impl Proxies {
    pub fn is_empty(&self) -> bool {
        self.gateway.is_none() && self.router.is_none()
    }

    /// The files that hold each proxy's upstreams: the NGINX site as loaded, Traefik's static
    /// file and its file provider's default directory.
    pub fn reads(&self) -> Vec<(VantageRef, Vec<String>)> {
        use crate::deployed::{nginx, traefik};
        let mut out = Vec::new();
        if let Some(g) = self.gateway {
            out.push((g, nginx::SITE_GLOBS.iter().map(|s| s.to_string()).collect()));
        }
        if let Some(r) = self.router {
            out.push((
                r,
                vec![
                    traefik::STATIC.to_string(),
                    format!("{}/*.yml", traefik::DYNAMIC_DIR),
                    format!("{}/*.yaml", traefik::DYNAMIC_DIR),
                ],
            ));
        }
        out
    }
}

/// One `certificate-manifest.json` entry, as far as the facts need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestCert {
    /// The names the issued certificate will carry (`sans`, or the CN).
    pub names: Vec<String>,
    /// Where the renewal writes it, read on the host.
    pub cert_path: String,
    /// The guest whose persistent-data directory holds it (the guest that serves it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<VantageRef>,
    pub prov: Provenance,
}

impl GuestFacts {
    /// Nothing read and nothing to hold it against.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.certs.is_empty()
    }

    fn file(&self, v: VantageRef, path: &str) -> Option<&FileRead> {
        self.files.get(&v)?.iter().find(|f| f.path() == path)
    }

    /// The manifest entry a handshake with `sni` at `addr` selects: the one that names `sni`,
    /// else the only one kept in the persistent data of the guest at `addr`.
    fn cert_for(&self, sni: &str, addr: IpAddr) -> Option<&ManifestCert> {
        let guest = self.addresses.get(&addr);
        let named: Vec<&ManifestCert> = self
            .certs
            .iter()
            .filter(|c| c.names.iter().any(|n| n.eq_ignore_ascii_case(sni)))
            .collect();
        // Several entries name it (the gateway's and Portainer's both list portainer.<domain>):
        // the one kept in the serving guest's persistent data.
        if let Some(c) = named
            .iter()
            .find(|c| guest.is_some() && c.guest.as_ref() == guest)
            .or(named.first())
        {
            return Some(c);
        }
        let guest = guest?;
        let mut of_guest = self
            .certs
            .iter()
            .filter(|c| c.guest.as_ref() == Some(guest));
        match (of_guest.next(), of_guest.next()) {
            (Some(c), None) => Some(c),
            _ => None,
        }
    }
}

/// The files a run of `plan` may need, per vantage, and the facts' intent from `m`: the socket
/// tables of every guest a TCP step targets, on the host every manifest certificate a TLS
/// step's name selects, and the proxies' configs when an HTTP step may meet a proxy's error.
pub fn plan_reads(plan: &Plan, m: &Intended) -> (GuestFacts, BTreeMap<VantageRef, Vec<String>>) {
    let mut facts = GuestFacts::default();
    for n in std::iter::once(&m.host).chain(&m.guests) {
        if let Some(ip) = &n.ip {
            facts.addresses.entry(ip.value).or_insert(n.vantage);
        }
    }
    for c in &m.certs {
        if let Some(p) = &c.cert_path {
            facts.certs.push(ManifestCert {
                names: c.effective_sans.clone(),
                cert_path: p.value.clone(),
                guest: c.guest,
                prov: c.prov.clone(),
            });
        }
    }
    let mut reads: BTreeMap<VantageRef, Vec<String>> = BTreeMap::new();
    let mut add = |v: VantageRef, p: &str| {
        let l = reads.entry(v).or_default();
        if !l.iter().any(|x| x == p) {
            l.push(p.to_string());
        }
    };
    for s in &plan.steps {
        match &s.probe {
            ProbeSpec::Tcp { addr } => {
                if let Some(v) = facts.addresses.get(&addr.ip()) {
                    for p in SOCKETS {
                        add(*v, p);
                    }
                }
            }
            ProbeSpec::Tls { sni, addr, .. } | ProbeSpec::Mtls { sni, addr, .. } => {
                if let Some(c) = facts.cert_for(sni, addr.ip()) {
                    add(VantageRef::Host, &c.cert_path);
                }
            }
            _ => {}
        }
    }
    for p in firewall_reads(m) {
        add(VantageRef::Host, &p);
    }
    if plan
        .steps
        .iter()
        .any(|s| matches!(s.probe, ProbeSpec::Http { .. }))
    {
        facts.proxies = Proxies {
            gateway: m.gateway.as_ref().map(|g| VantageRef::Lxc(g.lxc)),
            router: m.router.as_ref().map(|r| VantageRef::Lxc(r.lxc)),
        };
        for (v, paths) in facts.proxies.reads() {
            for p in &paths {
                add(v, p);
            }
        }
    }
    (facts, reads)
}

/// The host files that say whether the firewall filters each guest.
fn firewall_reads(m: &Intended) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in &m.guests {
        for p in pvefw::state_paths(n.vantage) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Of `reads`, what `run` needs: the socket tables behind a refused or filtered TCP step, the
/// certificate files behind a TLS step that got a certificate, and the proxies' configs once an
/// HTTP step failed.
pub fn needed(
    plan: &Plan,
    run: &Run,
    facts: &GuestFacts,
    reads: &BTreeMap<VantageRef, Vec<String>>,
) -> BTreeMap<VantageRef, Vec<String>> {
    let mut out: BTreeMap<VantageRef, Vec<String>> = BTreeMap::new();
    // Whether the firewall filters each guest: for a silent hop and for the static findings
    // about unenforced rule sets (host files, read here on the host).
    let fw: Vec<String> = reads
        .get(&VantageRef::Host)
        .map(|r| {
            r.iter()
                .filter(|p| p.starts_with("/etc/pve/") || *p == pvefw::PID_FILE)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if !fw.is_empty() {
        out.insert(VantageRef::Host, fw);
    }
    for (s, o) in plan.steps.iter().zip(&run.observations) {
        let want: Vec<(VantageRef, String)> = match (&s.probe, &o.evidence) {
            (ProbeSpec::Tcp { addr }, Evidence::Tcp(t))
                if matches!(t.state.as_str(), "refused" | "filtered") =>
            {
                match facts.addresses.get(&addr.ip()) {
                    Some(v) => SOCKETS.iter().map(|p| (*v, p.to_string())).collect(),
                    None => Vec::new(),
                }
            }
            (
                ProbeSpec::Tls { sni, addr, .. } | ProbeSpec::Mtls { sni, addr, .. },
                Evidence::Tls(t),
            ) if !t.chain.is_empty() => facts
                .cert_for(sni, addr.ip())
                .map(|c| vec![(VantageRef::Host, c.cert_path.clone())])
                .unwrap_or_default(),
            // A proxy answered an error (a tool error or a blocked step says nothing of it).
            (ProbeSpec::Http { .. }, Evidence::Http(h))
                if o.outcome == Outcome::Failed && h.status.is_some() =>
            {
                facts
                    .proxies
                    .reads()
                    .into_iter()
                    .flat_map(|(v, ps)| ps.into_iter().map(move |p| (v, p)))
                    .collect()
            }
            _ => Vec::new(),
        };
        for (v, p) in want {
            if reads.get(&v).is_some_and(|r| r.contains(&p)) {
                let l = out.entry(v).or_default();
                if !l.contains(&p) {
                    l.push(p);
                }
            }
        }
    }
    out
}

/// Read what `needed` names (one call per guest at most, none for a guest whose steps already
/// brought its files back) into `facts`.
pub async fn gather(
    vs: &crate::vantage::Vantages,
    needed: &BTreeMap<VantageRef, Vec<String>>,
    facts: &mut GuestFacts,
) {
    for (v, paths) in needed {
        let got = crate::vantage::read_files(vs, *v, paths).await;
        let have = facts.files.entry(*v).or_default();
        for f in got {
            if !have.iter().any(|h| h.path() == f.path()) {
                have.push(f);
            }
        }
        let asked = facts.asked.entry(*v).or_default();
        for p in paths {
            if !asked.contains(p) {
                asked.push(p.clone());
            }
        }
    }
    // Whether pve-firewall runs: the process its pid file names (a host file, read here).
    let comm = facts
        .file(VantageRef::Host, pvefw::PID_FILE)
        .and_then(FileRead::text)
        .and_then(pvefw::comm_path);
    if let Some(c) = comm {
        let got = crate::vantage::read_files(vs, VantageRef::Host, std::slice::from_ref(&c)).await;
        facts.files.entry(VantageRef::Host).or_default().extend(got);
    }
}

/// The listening sockets of `v`, or why they are unknown.
fn sockets(facts: &GuestFacts, v: VantageRef) -> Option<Result<Vec<listeners::Listener>, String>> {
    let reads: Vec<&FileRead> = TABLES.iter().filter_map(|p| facts.file(v, p)).collect();
    if reads.is_empty() {
        return None;
    }
    let texts: Vec<&str> = reads.iter().filter_map(|r| r.text()).collect();
    if texts.is_empty() {
        let why: Vec<String> = reads
            .iter()
            .map(|r| match r {
                FileRead::Unreadable { path, why } => format!("{path}: {why}"),
                FileRead::Text { .. } => String::new(),
            })
            .collect();
        return Some(Err(why.join("; ")));
    }
    Some(Ok(texts
        .iter()
        .flat_map(|t| listeners::parse_proc_net_tcp(t))
        .collect()))
}

/// Whether the firewall filters `v`'s traffic, from the host's files read in this run.
fn firewall(facts: &GuestFacts, v: VantageRef) -> Option<pvefw::Enforcement> {
    if !facts.files.contains_key(&VantageRef::Host) {
        return None;
    }
    pvefw::enforcement(v, &|p| match facts.file(VantageRef::Host, p) {
        Some(FileRead::Text { text, .. }) => pvefw::Got::Text(text),
        Some(FileRead::Unreadable { why, .. }) if why.starts_with("no such file") => {
            pvefw::Got::Missing
        }
        Some(FileRead::Unreadable { why, .. }) => pvefw::Got::Unreadable(why),
        None => pvefw::Got::NotRead,
    })
}

/// The owners of `v`'s listening sockets, as far as they could be read.
fn owners(facts: &GuestFacts, v: VantageRef) -> Vec<listeners::Owner> {
    facts
        .file(v, listeners::OWNERS)
        .and_then(FileRead::text)
        .map(listeners::parse_owners)
        .unwrap_or_default()
}

/// The first certificate of a PEM text, summarised.
fn first_cert(pem: &str) -> Option<CertSummary> {
    let der = rustls_pemfile::certs(&mut pem.as_bytes()).next()?.ok()?;
    Some(crate::probe::tls::summarize(&der))
}

/// Put the guest facts into the observations of `run` before it is diagnosed: a refused or
/// filtered port gets what listens in the target guest; a served certificate is held against the
/// file the manifest names (a newer file on disk: `not-reloaded`; a manifest name the served one
/// lacks: `manifest-name-missing`; both only where the handshake verified, an older failure
/// keeps its own reason and gets the fact in its detail).
pub fn enrich(plan: &Plan, run: &mut Run, facts: &GuestFacts) {
    // Certificates a handshake of this run already failed for a name: their missing manifest
    // names are that failure's cause, not a second defect.
    let mismatched: Vec<String> = run
        .observations
        .iter()
        .filter_map(|o| match &o.evidence {
            Evidence::Tls(t) if t.verify_error == Some(VerifyError::NotValidForName) => {
                t.chain.first().map(|c| c.sha256.clone())
            }
            _ => None,
        })
        .collect();
    for (s, o) in plan.steps.iter().zip(run.observations.iter_mut()) {
        match (&s.probe, &mut o.evidence) {
            (ProbeSpec::Tcp { addr }, Evidence::Tcp(t))
                if matches!(t.state.as_str(), "refused" | "filtered") =>
            {
                let Some(v) = facts.addresses.get(&addr.ip()).copied() else {
                    continue;
                };
                match sockets(facts, v) {
                    Some(Ok(l)) => {
                        o.message = format!(
                            "{}; in {v}: {}",
                            o.message,
                            listeners::explain(&l, &owners(facts, v), *addr)
                        );
                    }
                    Some(Err(why)) => {
                        o.message =
                            format!("{}; what listens in {v} is unknown ({why})", o.message);
                    }
                    None => {}
                }
                if t.state.as_str() == "filtered" {
                    if let Some(e) = firewall(facts, v) {
                        o.message = format!("{}; {}", o.message, e.sentence(v));
                    }
                }
            }
            (
                ProbeSpec::Tls { sni, addr, .. } | ProbeSpec::Mtls { sni, addr, .. },
                Evidence::Tls(t),
            ) => {
                let Some(served) = t.chain.first().cloned() else {
                    continue;
                };
                let Some(c) = facts.cert_for(sni, addr.ip()) else {
                    continue;
                };
                let Some(FileRead::Text { text, .. }) = facts.file(VantageRef::Host, &c.cert_path)
                else {
                    continue;
                };
                let Some(disk) = first_cert(text) else {
                    continue;
                };
                let verdict = held_against(&served, &disk, c);
                let Some((reason, detail)) = verdict else {
                    continue;
                };
                let known = reason == MANIFEST_NAME_MISSING && mismatched.contains(&served.sha256);
                if o.outcome == Outcome::Ok && !known {
                    o.outcome = Outcome::Failed;
                    o.reason = Some(Reason::Verify(reason));
                    t.verify_error = Some(reason);
                    t.verify_detail = detail.clone();
                    o.message = format!("{sni}: {detail}");
                } else if o.outcome != Outcome::Ok && !t.verify_detail.contains(&detail) {
                    t.verify_detail = if t.verify_detail.is_empty() {
                        detail.clone()
                    } else {
                        format!("{}; {detail}", t.verify_detail)
                    };
                    o.message = format!("{}; {detail}", o.message);
                }
            }
            _ => {}
        }
    }
}

/// The served certificate against the file on disk and the manifest's names: `None` when they
/// agree, else the reason and the sentence.
fn held_against(
    served: &CertSummary,
    disk: &CertSummary,
    c: &ManifestCert,
) -> Option<(VerifyError, String)> {
    let at = format!("host:{} ({})", c.cert_path, c.prov);
    if served.sha256 != disk.sha256 && disk.not_before > served.not_before {
        return Some((
            NOT_RELOADED,
            format!(
                "renewed on disk, not reloaded: the server presents sha256 {} valid until {}, the file {at} holds sha256 {} valid {} .. {}",
                short(&served.sha256),
                served.not_after,
                short(&disk.sha256),
                disk.not_before,
                disk.not_after
            ),
        ));
    }
    let missing: Vec<&str> = c
        .names
        .iter()
        .filter(|n| !crate::model::stacks::san_covers(&served.dns_sans, n))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Some((
            MANIFEST_NAME_MISSING,
            format!(
                "the served certificate lacks {}, which the manifest lists ({}); it names [{}]",
                missing.join(", "),
                c.prov,
                served.dns_sans.join(", ")
            ),
        ));
    }
    None
}

fn short(sha: &str) -> &str {
    sha.get(..16).unwrap_or(sha)
}

/// After diagnosis: the socket tables and certificate files read, as evidence lines of the
/// findings of the steps they explain; a static finding the live run refutes is a defect not
/// live yet (a warning), never an error beside the healthy result that contradicts it.
pub fn annotate(report: &mut super::Report, plan: &Plan, facts: &GuestFacts) {
    for (s, r) in plan.steps.iter().zip(report.steps.iter_mut()) {
        let lines = fact_lines(s, facts);
        if lines.is_empty() || !r.verdict.is_failure() {
            continue;
        }
        for f in report.findings.iter_mut().filter(|f| {
            f.hop == r.hop && f.origin == Origin::Live && Some(&f.code) == r.code.as_ref()
        }) {
            for l in &lines {
                if !f.evidence.contains(l) {
                    f.evidence.push(l.clone());
                }
            }
        }
        r.evidence.extend(lines);
    }
    let deployed_fw = reconcile_firewall(report, facts);
    for f in &mut report.findings {
        let refuted = f
            .reconciliation
            .as_ref()
            .is_some_and(|r| r.status == Reconciled::Refuted);
        if f.origin != Origin::Static
            || !refuted
            || f.title.starts_with(NOT_LIVE)
            || deployed_fw.contains(&f.title)
        {
            continue;
        }
        f.severity = f.severity.min(Severity::Warning);
        f.title = format!("{NOT_LIVE}{}", f.title);
        // Only the findings about a certificate's names are undone by the next renewal; a CA
        // that cannot be reached (PD-CERT-001) is the firewall's, applied with the config.
        let about_names = f.code == crate::lint::catalog::PD_CERT_002
            || f.code == crate::lint::catalog::PD_CERT_004;
        if about_names {
            f.actual = format!(
                "{}; the certificate served now has it: the next renewal (certificate-renewal-manager.sh, from certificate-manifest.json) will drop the name",
                f.actual
            );
        } else {
            f.actual = format!(
                "{}; the live run shows it working today: it breaks once the platform applies this config",
                f.actual
            );
        }
    }
}

/// A static finding that a guest's rule set is not enforced, held against the host's files:
/// not enforced there confirms it, enforced refutes it (an information then: the rules filter
/// today); unknown leaves it as the live run reconciled it. Returns the titles it judged.
fn reconcile_firewall(report: &mut super::Report, facts: &GuestFacts) -> Vec<String> {
    use crate::finding::Reconciliation;
    let mut judged = Vec::new();
    for f in &mut report.findings {
        if f.origin != Origin::Static || f.code != crate::lint::catalog::PD_FW_005 {
            continue;
        }
        let Some(v) = f
            .title
            .split_once(": ")
            .and_then(|(v, _)| v.parse::<VantageRef>().ok())
        else {
            continue;
        };
        let Some(e) = firewall(facts, v) else {
            continue;
        };
        let Some(enforced) = e.enforced else {
            continue;
        };
        judged.push(f.title.clone());
        let line = EvidenceItem::FirewallState {
            vantage: v,
            switches: e.evidence.clone(),
        };
        let r = f.reconciliation.get_or_insert(Reconciliation {
            status: Reconciled::NotObservable,
            evidence: Vec::new(),
        });
        if !r.evidence.contains(&line) {
            r.evidence.push(line);
        }
        if enforced {
            r.status = Reconciled::Refuted;
            f.severity = f.severity.min(Severity::Info);
            let said = format!("; deployed, they are enforced ({})", e.why);
            if !f.actual.ends_with(&said) {
                f.actual.push_str(&said);
            }
        } else {
            r.status = Reconciled::Confirmed;
        }
    }
    judged
}

/// The title prefix of a static finding the live run contradicts.
pub const NOT_LIVE: &str = "config defect, not live yet: ";

/// The facts read for step `s`, one evidence item each.
fn fact_lines(s: &crate::plan::Step, facts: &GuestFacts) -> Vec<EvidenceItem> {
    match &s.probe {
        ProbeSpec::Tcp { addr } => {
            let Some(v) = facts.addresses.get(&addr.ip()).copied() else {
                return Vec::new();
            };
            match sockets(facts, v) {
                Some(Ok(l)) => {
                    let owners = owners(facts, v);
                    let mut seen: Vec<String> = l
                        .iter()
                        .filter(|l| l.addr.ip() == addr.ip() || l.addr.ip().is_unspecified())
                        .map(|l| match listeners::owner_of(&owners, l) {
                            Some(n) => format!("{} ({n})", l.addr),
                            None => l.addr.to_string(),
                        })
                        .collect();
                    seen.dedup();
                    vec![EvidenceItem::Listening {
                        vantage: v,
                        addrs: seen,
                    }]
                }
                Some(Err(why)) => vec![EvidenceItem::SocketsUnreadable {
                    vantage: v,
                    why: why.to_string(),
                }],
                None => Vec::new(),
            }
        }
        ProbeSpec::Tls { sni, addr, .. } | ProbeSpec::Mtls { sni, addr, .. } => {
            let Some(c) = facts.cert_for(sni, addr.ip()) else {
                return Vec::new();
            };
            match facts.file(VantageRef::Host, &c.cert_path) {
                Some(FileRead::Text { text, .. }) => match first_cert(text) {
                    Some(d) => vec![EvidenceItem::CertFile {
                        path: c.cert_path.clone(),
                        sha256: d.sha256.clone(),
                        names: d.dns_sans.clone(),
                        not_before: d.not_before.clone(),
                        not_after: d.not_after.clone(),
                    }],
                    None => vec![EvidenceItem::CertFileEmpty {
                        path: c.cert_path.clone(),
                    }],
                },
                Some(FileRead::Unreadable { why, .. }) => vec![EvidenceItem::CertFileUnreadable {
                    path: c.cert_path.clone(),
                    why: why.clone(),
                }],
                None => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{Observation, TcpEvidence, Timings, TlsEvidence, VantageNote};
    use crate::plan::{Step, Trust};

    /// The Portainer VM's TCP step to the agent at the config's 10.0.0.102:9001.
    fn agent_tcp_plan() -> Plan {
        Plan {
            target: "agent".into(),
            hops: Vec::new(),
            steps: vec![step(
                "portainer-agent.tcp",
                ProbeSpec::Tcp {
                    addr: "10.0.0.102:9001".parse().unwrap(),
                },
            )],
        }
    }

    fn step(id: &str, probe: ProbeSpec) -> Step {
        Step {
            id: id.into(),
            hop: id.split('.').next().unwrap_or(id).into(),
            from: VantageRef::Vm(1001),
            to: "agent".into(),
            layer: probe.layer(),
            probe,
            expect: String::new(),
            provenance: Vec::new(),
            depends_on: Vec::new(),
            through: Vec::new(),
        }
    }

    fn obs(id: &str, outcome: Outcome, message: &str, evidence: Evidence) -> Observation {
        Observation {
            step: id.into(),
            outcome,
            phase: None,
            reason: None,
            message: message.into(),
            evidence,
            timings: Timings::default(),
            vantage: VantageNote::default(),
        }
    }

    fn run(observations: Vec<Observation>) -> Run {
        Run {
            schema_version: crate::engine::RUN_SCHEMA_VERSION,
            target: "agent".into(),
            started_at: String::new(),
            duration_ms: 0.0,
            observations,
        }
    }

    fn text(path: &str, text: &str) -> FileRead {
        FileRead::Text {
            path: path.into(),
            text: text.into(),
        }
    }

    fn refused(id: &str) -> Observation {
        obs(
            id,
            Outcome::Failed,
            "connection refused",
            Evidence::Tcp(TcpEvidence {
                addr: "10.0.0.102:9001".into(),
                state: crate::observe::TcpState::Refused,
                os_error: None,
            }),
        )
    }

    /// VM 1002 at 10.0.0.102 with the agent moved to 9002 (and a loopback-only 9001).
    fn moved() -> GuestFacts {
        let table = crate::vantage::listeners::format_proc_net_tcp(&[
            "127.0.0.1:9001".parse().unwrap(),
            "0.0.0.0:9002".parse().unwrap(),
        ]);
        GuestFacts {
            addresses: [("10.0.0.102".parse().unwrap(), VantageRef::Vm(1002))].into(),
            files: [(
                VantageRef::Vm(1002),
                vec![
                    text("/proc/net/tcp", &table),
                    FileRead::Unreadable {
                        path: "/proc/net/tcp6".into(),
                        why: "no such file".into(),
                    },
                ],
            )]
            .into(),
            certs: Vec::new(),
            ..GuestFacts::default()
        }
    }

    #[test]
    fn a_refused_port_gets_what_listens_in_the_target_guest() {
        let plan = agent_tcp_plan();
        let mut r = run(vec![refused("portainer-agent.tcp")]);
        enrich(&plan, &mut r, &moved());
        assert_eq!(
            r.observations[0].message,
            "connection refused; in vm:1002: nothing listens on :9001 at 10.0.0.102; :9001 is bound to 127.0.0.1:9001 only"
        );
        // The agent gone from 9001 altogether: the nearest port it listens on.
        let mut f = moved();
        f.files.get_mut(&VantageRef::Vm(1002)).unwrap()[0] = text(
            "/proc/net/tcp",
            &crate::vantage::listeners::format_proc_net_tcp(&["0.0.0.0:9002".parse().unwrap()]),
        );
        let mut r = run(vec![refused("portainer-agent.tcp")]);
        enrich(&plan, &mut r, &f);
        assert_eq!(
            r.observations[0].message,
            "connection refused; in vm:1002: nothing listens on :9001; a process listens on :9002"
        );
        // The tables unreadable: the fact is unknown, with why; the step's outcome is unchanged.
        let mut f = moved();
        f.files.get_mut(&VantageRef::Vm(1002)).unwrap()[0] = FileRead::Unreadable {
            path: "/proc/net/tcp".into(),
            why: "permission denied".into(),
        };
        let mut r = run(vec![refused("portainer-agent.tcp")]);
        enrich(&plan, &mut r, &f);
        assert_eq!(
            r.observations[0].message,
            "connection refused; what listens in vm:1002 is unknown (/proc/net/tcp: permission denied; /proc/net/tcp6: no such file)"
        );
        assert_eq!(r.observations[0].outcome, Outcome::Failed);
        // Only what a failed run needs is read.
        let (skeleton, reads) = (moved(), {
            let mut m = BTreeMap::new();
            m.insert(
                VantageRef::Vm(1002),
                SOCKETS.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            );
            m
        });
        let r = run(vec![refused("portainer-agent.tcp")]);
        assert_eq!(needed(&plan, &r, &skeleton, &reads), reads);
        let mut ok = refused("portainer-agent.tcp");
        ok.evidence = Evidence::Tcp(TcpEvidence {
            addr: "10.0.0.102:9001".into(),
            state: crate::observe::TcpState::Open,
            os_error: None,
        });
        assert!(needed(&plan, &run(vec![ok]), &skeleton, &reads).is_empty());
    }

    fn cert(names: &[&str], days_ago: i64) -> (String, CertSummary) {
        let mut p =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::hours(24 * days_ago + 1);
        p.not_after = now + time::Duration::hours(23);
        let key = rcgen::KeyPair::generate().unwrap();
        let c = p.self_signed(&key).unwrap();
        let pem = c.pem();
        let summary = crate::probe::tls::summarize(c.der());
        (pem, summary)
    }

    fn tls_case(served: &CertSummary, disk_pem: &str, manifest: &[&str]) -> Observation {
        let plan = Plan {
            target: "qdrant".into(),
            hops: Vec::new(),
            steps: vec![step(
                "host-gateway.tls",
                ProbeSpec::Tls {
                    addr: "10.0.0.153:443".parse().unwrap(),
                    sni: "qdrant.internal.thinkheads.ai".into(),
                    trust: Trust::None,
                },
            )],
        };
        let facts = GuestFacts {
            addresses: [("10.0.0.153".parse().unwrap(), VantageRef::Lxc(101))].into(),
            files: [(
                VantageRef::Host,
                vec![text(
                    "/mnt/pve/quickOS/lxc-persistent-data/101/ssl/nginx.crt",
                    disk_pem,
                )],
            )]
            .into(),
            certs: vec![ManifestCert {
                names: manifest.iter().map(|s| s.to_string()).collect(),
                cert_path: "/mnt/pve/quickOS/lxc-persistent-data/101/ssl/nginx.crt".into(),
                guest: Some(VantageRef::Lxc(101)),
                prov: Provenance::new("etc/certificate-manifest.json", "/0/sans", Some(4)),
            }],
            ..GuestFacts::default()
        };
        let mut r = run(vec![obs(
            "host-gateway.tls",
            Outcome::Ok,
            "verified",
            Evidence::Tls(TlsEvidence {
                chain: vec![served.clone()],
                verified: true,
                ..TlsEvidence::default()
            }),
        )]);
        enrich(&plan, &mut r, &facts);
        r.observations.remove(0)
    }

    #[test]
    fn the_served_certificate_is_held_against_the_file_and_the_manifest() {
        let names = [
            "nginx.internal.thinkheads.ai",
            "qdrant.internal.thinkheads.ai",
        ];
        let (old_pem, old) = cert(&names, 1);
        let (new_pem, _) = cert(&names, 0);
        // Renewed on disk (issued later), the old one served.
        let o = tls_case(&old, &new_pem, &names);
        assert_eq!(o.outcome, Outcome::Failed);
        assert_eq!(o.reason, Some(Reason::Verify(VerifyError::NotReloaded)));
        assert!(
            o.message.contains("renewed on disk, not reloaded"),
            "{}",
            o.message
        );
        assert!(
            o.message
                .contains("host:/mnt/pve/quickOS/lxc-persistent-data/101/ssl/nginx.crt"),
            "{}",
            o.message
        );
        // The same certificate served and on disk, every manifest name in it: nothing to say.
        let o = tls_case(&old, &old_pem, &names);
        assert_eq!((o.outcome, o.message.as_str()), (Outcome::Ok, "verified"));
        // The manifest lists a name neither has: the served certificate lacks it.
        let o = tls_case(
            &old,
            &old_pem,
            &[
                "nginx.internal.thinkheads.ai",
                "portainer.internal.thinkheads.ai",
            ],
        );
        assert_eq!(
            o.reason,
            Some(Reason::Verify(VerifyError::ManifestNameMissing))
        );
        assert!(
            o.message.contains("lacks portainer.internal.thinkheads.ai"),
            "{}",
            o.message
        );
        // An older file on disk than the served one is not a reload problem.
        let (_, newer) = cert(&names, 0);
        let o = tls_case(&newer, &old_pem, &names);
        assert_eq!(o.outcome, Outcome::Ok, "{}", o.message);
    }

    /// A report of static findings only, and an empty plan.
    fn static_only(findings: Vec<crate::finding::Finding>) -> (super::super::Report, Plan) {
        let report = super::super::Report {
            schema_version: 1,
            target: "qdrant".into(),
            verdict: super::super::Overall::Healthy,
            first_divergence: None,
            hops: Vec::new(),
            steps: Vec::new(),
            findings,
            started_at: String::new(),
            duration_ms: 0.0,
            attempts: 1,
            baseline: None,
        };
        let plan = Plan {
            target: "qdrant".into(),
            hops: Vec::new(),
            steps: Vec::new(),
        };
        (report, plan)
    }

    /// The host's files for VM 1002 with every firewall switch on, and for LXC 101 as
    /// lxc-manager leaves it (firewall=1 on net0, no `enable` in its rule set).
    fn firewall_files() -> Vec<FileRead> {
        vec![
            text("/etc/pve/firewall/cluster.fw", "[OPTIONS]\nenable: 1\n"),
            text("/etc/pve/firewall/1002.fw", "[OPTIONS]\nenable: 1\n"),
            text(
                "/etc/pve/qemu-server/1002.conf",
                "net0: virtio=BC:24:11:00:00:02,bridge=vmbr0,firewall=1\n",
            ),
            text(
                "/etc/pve/firewall/101.fw",
                "[RULES]\nIN ACCEPT -p tcp -dport 443\n",
            ),
            text(
                "/etc/pve/lxc/101.conf",
                "net0: name=eth0,bridge=vmbr0,firewall=1,ip=10.0.0.153/24\n",
            ),
            text("/run/pve-firewall.pid", "812\n"),
            text("/proc/812/comm", "pve-firewall\n"),
        ]
    }

    #[test]
    fn a_silent_hop_says_whether_the_firewall_of_its_guest_is_enforced() {
        let plan = agent_tcp_plan();
        let filtered = || {
            let mut o = refused("portainer-agent.tcp");
            o.message = "no answer".into();
            o.evidence = Evidence::Tcp(TcpEvidence {
                addr: "10.0.0.102:9001".into(),
                state: crate::observe::TcpState::Filtered,
                os_error: None,
            });
            o
        };
        let mut f = moved();
        f.files.insert(VantageRef::Host, firewall_files());
        let mut r = run(vec![filtered()]);
        enrich(&plan, &mut r, &f);
        assert!(
            r.observations[0].message.ends_with("; the firewall of vm:1002 is enforced (/etc/pve/firewall/cluster.fw:2: enable: 1; /etc/pve/firewall/1002.fw:2: enable: 1; /etc/pve/qemu-server/1002.conf:1: net0 firewall=1; pve-firewall runs (pid 812)): its rules drop what they do not accept"),
            "{}",
            r.observations[0].message
        );
        // pve-firewall stopped: the rules filter nothing, the silence comes from elsewhere.
        f.files
            .get_mut(&VantageRef::Host)
            .unwrap()
            .retain(|x| x.path() != "/run/pve-firewall.pid");
        f.files
            .get_mut(&VantageRef::Host)
            .unwrap()
            .push(FileRead::Unreadable {
                path: "/run/pve-firewall.pid".into(),
                why: "no such file".into(),
            });
        let mut r = run(vec![filtered()]);
        enrich(&plan, &mut r, &f);
        assert!(
            r.observations[0].message.ends_with("; the firewall of vm:1002 is not enforced (no /run/pve-firewall.pid: pve-firewall is not running): the silence comes from elsewhere"),
            "{}",
            r.observations[0].message
        );
        // A refused port is not the firewall's silence: no sentence about it.
        let mut r = run(vec![refused("portainer-agent.tcp")]);
        enrich(&plan, &mut r, &f);
        assert!(
            !r.observations[0].message.contains("firewall"),
            "{}",
            r.observations[0].message
        );
    }

    #[test]
    fn an_unenforced_rule_set_finding_is_held_against_the_host_files() {
        use crate::finding::Finding;
        let fw005 = |v: &str| {
            let mut f = Finding::new(
                crate::lint::catalog::PD_FW_005,
                Severity::Warning,
                format!("{v}: 3 firewall rules are not enforced"),
            );
            f.origin = Origin::Static;
            f.actual = "lxc-manager never sets enable".into();
            f
        };
        let (mut report, plan) =
            static_only(vec![fw005("lxc:101"), fw005("vm:1002"), fw005("lxc:103")]);
        let facts = GuestFacts {
            files: [(VantageRef::Host, firewall_files())].into(),
            ..GuestFacts::default()
        };
        annotate(&mut report, &plan, &facts);
        let status = |i: usize| report.findings[i].reconciliation.as_ref().map(|r| r.status);
        // LXC 101: no `enable` in its rule set, so not enforced: confirmed.
        assert_eq!(status(0), Some(Reconciled::Confirmed));
        assert_eq!(report.findings[0].severity, Severity::Warning);
        // VM 1002 (standing in for an LXC an operator enabled): enforced, so refuted.
        assert_eq!(status(1), Some(Reconciled::Refuted));
        assert_eq!(report.findings[1].severity, Severity::Info);
        assert!(
            report.findings[1]
                .actual
                .contains("deployed, they are enforced"),
            "{}",
            report.findings[1].actual
        );
        assert!(!report.findings[1].title.starts_with(NOT_LIVE));
        // LXC 103's config is not on this host: cannot judge, left alone.
        assert_eq!(status(2), None);
        let before = report.clone();
        annotate(&mut report, &plan, &facts);
        assert_eq!(report, before);
    }

    #[test]
    fn a_static_finding_the_live_run_refutes_is_a_defect_not_live_yet() {
        use crate::finding::{Finding, Reconciliation};
        let mut f = Finding::new(
            crate::lint::catalog::PD_CERT_002,
            Severity::Error,
            "the gateway certificate does not name qdrant.internal.thinkheads.ai",
        );
        f.origin = Origin::Static;
        f.actual = "SANs [nginx, portainer]".into();
        f.reconciliation = Some(Reconciliation {
            status: Reconciled::Refuted,
            evidence: vec!["host-gateway.tls (from host): ok".into()],
        });
        let mut confirmed = f.clone();
        confirmed.reconciliation.as_mut().unwrap().status = Reconciled::Confirmed;
        let (mut report, plan) = static_only(vec![f, confirmed]);
        annotate(&mut report, &plan, &GuestFacts::default());
        let f = &report.findings[0];
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(
            f.title,
            "config defect, not live yet: the gateway certificate does not name qdrant.internal.thinkheads.ai"
        );
        assert!(f.actual.contains("the next renewal"), "{}", f.actual);
        // A confirmed one stays an error; annotating twice changes nothing.
        assert_eq!(report.findings[1].severity, Severity::Error);
        let before = report.clone();
        annotate(&mut report, &plan, &GuestFacts::default());
        assert_eq!(report, before);
    }
}
