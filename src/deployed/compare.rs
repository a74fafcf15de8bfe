//! `drift`: each deployed artefact against what the platform's generators would write from the
//! configs now, as findings with both sides located (deployed file:line; config file, JSON
//! pointer and line), each saying what it looks like and which script regenerates it.

use super::catalog;
use super::source::FileSource;
use super::{dnsmasq, nginx, At, Loaded};
use crate::config::Provenance;
use crate::finding::{Finding, Severity};
use crate::model::Intended;
use crate::observe::VantageRef;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

/// The scripts that write each artefact (the platform's own names).
pub const DNS_SCRIPT: &str = "hypervisor_feature_setup_dns_server.sh (phoenix sync all)";
pub const GATEWAY_SCRIPT: &str =
    "generate_nginx_gateway_config.sh, pushed to LXC 101 by phoenix sync all (stage 4)";
pub const TRAEFIK_SCRIPT: &str =
    "generate_traefik_config.sh, pushed to LXC 102 by phoenix sync all (stage 3)";
pub const CLUSTER_FW_SCRIPT: &str = "hypervisor_feature_setup_firewall.sh (phoenix sync all)";
pub const VM_FW_SCRIPT: &str =
    "vm-manager.sh apply_vm_firewall_rules (phoenix create <vmid>; sync all never rewrites it)";
/// The generator's own records file.
pub const RECORDS_FILE: &str = "/etc/dnsmasq.d/00-phoenix-internal.conf";

/// What a drift looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Looks {
    /// Differs from the generator's output and from any value a config could give.
    HandEdit,
    /// A value the generator would write from another (older) config.
    Stale,
    /// The deployed file is older than the config it should have been regenerated from.
    GeneratorNotRerun,
}

impl Looks {
    pub fn words(self) -> &'static str {
        match self {
            Looks::HandEdit => "a hand edit",
            Looks::Stale => "a stale file",
            Looks::GeneratorNotRerun => "a generator not re-run",
        }
    }
}

/// A file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    pub path: String,
    pub why: String,
}

/// One artefact as read.
#[derive(Debug, Clone, Serialize)]
pub struct Artefact {
    /// `dnsmasq`, `gateway-site`, `traefik-dynamic`, `firewall`.
    pub name: &'static str,
    pub vantage: String,
    pub files: Vec<String>,
    pub missing: Vec<String>,
    pub unreadable: Vec<Unreadable>,
    /// Why it was not compared, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    /// Where the deployed files came from.
    pub source: String,
    pub artefacts: Vec<Artefact>,
    pub findings: Vec<Finding>,
}

impl DriftReport {
    /// Drift, else cannot-judge when a file could not be read, else healthy.
    pub fn verdict(&self) -> crate::diagnose::Overall {
        use crate::diagnose::Overall;
        if self.findings.iter().any(|f| f.severity == Severity::Error) {
            Overall::Diverged
        } else if self.artefacts.iter().any(|a| !a.unreadable.is_empty()) {
            Overall::CannotJudge
        } else {
            Overall::Healthy
        }
    }
}

/// What the comparison needs besides the model: the newest config file's mtime and name.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub config_changed: Option<(SystemTime, String)>,
    /// The LXCs' `mount_points` (where a guest sees a host file the manifest names).
    pub mounts: Vec<super::compare_certs::Mount>,
    /// `--warn-days`: a certificate file with less life left is close to expiry.
    pub warn_days: u32,
}

impl Default for Ctx {
    fn default() -> Ctx {
        Ctx {
            config_changed: None,
            mounts: Vec::new(),
            warn_days: crate::probe::tls::DEFAULT_WARN_DAYS,
        }
    }
}

impl Ctx {
    /// The newest `*.json` of the config dir (and `stacks/*/phoenix.json` beside it).
    pub fn for_config(m: &Intended) -> Ctx {
        let mut best: Option<(SystemTime, String)> = None;
        let mut consider = |p: &std::path::Path, shown: String| {
            if let Ok(t) = std::fs::metadata(p).and_then(|m| m.modified()) {
                if best.as_ref().is_none_or(|(b, _)| t > *b) {
                    best = Some((t, shown));
                }
            }
        };
        if let Ok(rd) = std::fs::read_dir(&m.config_dir) {
            for e in rd.flatten().take(10_000) {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".json") {
                    consider(&e.path(), format!("etc/{name}"));
                }
            }
        }
        Ctx {
            config_changed: best,
            mounts: m.mounts.clone(),
            warn_days: crate::probe::tls::DEFAULT_WARN_DAYS,
        }
    }

    /// What a difference looks like: older than the config → not re-run; else shaped like the
    /// generator's output → stale; else a hand edit. With the reason, in words.
    pub fn looks(&self, file_mtime: Option<SystemTime>, generator_shaped: bool) -> (Looks, String) {
        if let (Some(d), Some((c, name))) = (file_mtime, &self.config_changed) {
            if d < *c {
                return (
                    Looks::GeneratorNotRerun,
                    format!("the deployed file is older than {name}, changed since"),
                );
            }
        }
        if generator_shaped {
            (
                Looks::Stale,
                "written in the generator's own form, with a value the current config does not give"
                    .to_string(),
            )
        } else {
            (
                Looks::HandEdit,
                "not a value or form the generator writes from any config".to_string(),
            )
        }
    }
}

/// The LXCs' mount points, from the configs behind `m` (none when they cannot be read again).
/// One drift, before it becomes a finding.
pub(crate) struct Drift {
    pub code: crate::finding::Code,
    pub title: String,
    pub expected: String,
    pub actual: String,
    pub vantage: VantageRef,
    pub deployed: Option<(At, String)>,
    pub looks: (Looks, String),
    pub regenerate: &'static str,
    pub prov: Vec<Provenance>,
    pub subject: String,
}

impl Drift {
    pub(crate) fn finding(self) -> Finding {
        let mut f = Finding::new(self.code, Severity::Error, self.title)
            .expected(self.expected)
            .actual(self.actual)
            .hint(format!(
                "Looks like {}. Regenerate: {}.",
                self.looks.0.words(),
                self.regenerate
            ))
            .provenance(self.prov)
            .subject(self.subject);
        f.layer = self.code.layer();
        if let Some((at, text)) = &self.deployed {
            f.evidence
                .push(format!("deployed: {} {at}: {text}", self.vantage).into());
        }
        f.evidence
            .push(format!("looks like {}: {}", self.looks.0.words(), self.looks.1).into());
        f.evidence
            .push(format!("regenerate: {}", self.regenerate).into());
        f
    }
}

pub(crate) fn artefact<T>(name: &'static str, v: VantageRef, l: &Loaded<T>) -> Artefact {
    Artefact {
        name,
        vantage: v.to_string(),
        files: l.files.iter().map(|(p, _)| p.clone()).collect(),
        missing: l.missing.clone(),
        unreadable: l
            .unreadable
            .iter()
            .map(|(p, w)| Unreadable {
                path: p.clone(),
                why: w.clone(),
            })
            .collect(),
        skipped: None,
    }
}

fn skipped(name: &'static str, v: VantageRef, why: &str) -> Artefact {
    Artefact {
        name,
        vantage: v.to_string(),
        files: vec![],
        missing: vec![],
        unreadable: vec![],
        skipped: Some(why.to_string()),
    }
}

/// Compare every artefact the configs describe with the deployed files of `src`.
pub fn drift(m: &Intended, src: &dyn FileSource, ctx: &Ctx) -> DriftReport {
    let mut r = DriftReport {
        source: src.describe(),
        artefacts: Vec::new(),
        findings: Vec::new(),
    };
    let mut drifts = Vec::new();
    dns(m, src, ctx, &mut r.artefacts, &mut drifts);
    gateway(m, src, ctx, &mut r.artefacts, &mut drifts);
    super::compare_traefik::traefik(m, src, ctx, &mut r.artefacts, &mut drifts);
    super::compare_fw::firewall(m, src, ctx, &mut r.artefacts, &mut drifts);
    r.findings = drifts.into_iter().map(Drift::finding).collect();
    r.findings.extend(super::compare_certs::cert_files(
        m,
        src,
        ctx,
        &mut r.artefacts,
    ));
    for a in &r.artefacts {
        for u in &a.unreadable {
            let mut f = Finding::new(
                catalog::UNREADABLE,
                Severity::Warning,
                format!("{} {}: could not be read", a.vantage, u.path),
            )
            .expected(format!("the {} file, readable", a.name))
            .actual(format!("cannot judge: {}", u.why))
            .hint("Nothing is known about this file; it is not counted as drift.")
            .subject(a.vantage.clone());
            f.evidence
                .push(format!("unreadable: {} {}: {}", a.vantage, u.path, u.why).into());
            r.findings.push(f);
        }
    }
    r
}

/// Is `ip_text` an address some config could give (inside the platform's subnets)?
fn in_platform(m: &Intended, ip_text: &str) -> bool {
    ip_text
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| m.subnets.iter().any(|n| n.contains(&ip)) || m.node_by_ip(ip).is_some())
}

fn dns(
    m: &Intended,
    src: &dyn FileSource,
    ctx: &Ctx,
    arts: &mut Vec<Artefact>,
    out: &mut Vec<Drift>,
) {
    let v = VantageRef::Host;
    if !m.dns.enabled {
        arts.push(skipped(
            "dnsmasq",
            v,
            ".dns_server.enabled is false: the generator writes nothing",
        ));
        return;
    }
    let loaded = dnsmasq::load(src);
    arts.push(artefact("dnsmasq", v, &loaded));
    if !loaded.unreadable.is_empty() {
        return;
    }
    let mut by_name: HashMap<&str, Vec<&dnsmasq::DnsEntry>> = HashMap::new();
    for (_, p) in &loaded.value {
        for e in &p.entries {
            by_name.entry(e.name.as_str()).or_default().push(e);
        }
    }
    let records_mtime = loaded.mtime(RECORDS_FILE);
    let has_records_file = loaded.files.iter().any(|(p, _)| p == RECORDS_FILE);
    let mut intended: HashSet<String> = HashSet::with_capacity(m.dns.records.len());
    for rec in &m.dns.records {
        let name = rec.hostname.to_ascii_lowercase();
        intended.insert(name.clone());
        let found = by_name.get(name.as_str());
        let expected = format!(
            "address=/{}/{} ({} rule {}: {})",
            rec.hostname,
            rec.ip_text,
            DNS_SCRIPT.split(' ').next().unwrap_or_default(),
            rec.rule.number(),
            rec.rule.describe()
        );
        let base = |actual: String, deployed, looks| Drift {
            code: catalog::DNS_RECORD,
            title: String::new(),
            expected: expected.clone(),
            actual,
            vantage: v,
            deployed,
            looks,
            regenerate: DNS_SCRIPT,
            prov: rec.provenance.clone(),
            subject: rec.hostname.clone(),
        };
        match found {
            None => {
                let looks = if has_records_file {
                    ctx.looks(records_mtime, true)
                } else {
                    (
                        Looks::GeneratorNotRerun,
                        format!("{RECORDS_FILE} does not exist: the generator has not run"),
                    )
                };
                let mut d = base(
                    format!(
                        "no address= or host-record= line for {} in the files dnsmasq loads",
                        rec.hostname
                    ),
                    None,
                    looks,
                );
                d.title = format!("{}: record missing from the deployed files", rec.hostname);
                out.push(d);
            }
            Some(es) if es.iter().any(|e| e.ip_text != rec.ip_text) => {
                let e = es
                    .iter()
                    .find(|e| e.ip_text != rec.ip_text)
                    .copied()
                    .unwrap_or(es[0]);
                let shaped = e.at.file == RECORDS_FILE
                    && e.directive == "address"
                    && in_platform(m, &e.ip_text);
                let looks = ctx.looks(loaded.mtime(&e.at.file), shaped);
                let mut d = base(
                    format!("{} {} says {}", v, e.at, e.ip_text),
                    Some((e.at.clone(), e.text.clone())),
                    looks,
                );
                d.title = format!(
                    "{}: deployed {} {}, the generator writes {}",
                    rec.hostname, e.directive, e.ip_text, rec.ip_text
                );
                out.push(d);
            }
            Some(_) => {}
        }
    }
    dns_extra(m, &loaded, &by_name, &intended, ctx, out);
    dns_upstreams(m, &loaded, ctx, out);
}

/// A `server=` value as an upstream address (`8.8.8.8`, `8.8.8.8#53`); None for a
/// domain-specific one (`/example.com/10.0.0.1`), which the generator never writes.
fn upstream_of(value: &str) -> Option<&str> {
    if value.starts_with('/') {
        return None;
    }
    Some(value.strip_suffix("#53").unwrap_or(value))
}

/// The `server=` lines dnsmasq loads against `.dns_server.upstream_servers`: each configured
/// upstream written once, in order (the generator sets `strict-order`), and no other.
fn dns_upstreams(
    m: &Intended,
    loaded: &Loaded<Vec<(String, dnsmasq::Parsed)>>,
    ctx: &Ctx,
    out: &mut Vec<Drift>,
) {
    // The generator writes the upstreams into the main file: without it (a copy that lacks
    // it, a dnsmasq started with flags) they are unknown, not missing.
    if !loaded.files.iter().any(|(p, _)| p == dnsmasq::MAIN) {
        return;
    }
    let deployed: Vec<&(String, At)> = loaded.value.iter().flat_map(|(_, p)| &p.servers).collect();
    let want: Vec<&str> = m.dns.upstreams.iter().map(|u| u.value.as_str()).collect();
    let listed = format!(
        "server= lines for {}",
        if want.is_empty() {
            "none (upstream_servers is empty)".to_string()
        } else {
            want.join(", ")
        }
    );
    let main_mtime = loaded.mtime(dnsmasq::MAIN);
    let all_prov = || {
        if m.dns.upstreams.is_empty() {
            vec![Provenance::platform(
                "hypervisor_feature_setup_dns_server.sh",
                "one server= line per .dns_server.upstream_servers[] in /etc/dnsmasq.conf",
            )]
        } else {
            m.dns.upstreams.iter().map(|u| u.prov.clone()).collect()
        }
    };
    let drift = |title: String,
                 expected: String,
                 actual: String,
                 deployed: Option<(At, String)>,
                 looks,
                 prov,
                 subject: String| Drift {
        code: catalog::DNS_UPSTREAM,
        title,
        expected,
        actual,
        vantage: VantageRef::Host,
        deployed,
        looks,
        regenerate: DNS_SCRIPT,
        prov,
        subject,
    };
    for u in &m.dns.upstreams {
        if deployed
            .iter()
            .any(|(v, _)| upstream_of(v) == Some(u.value.as_str()))
        {
            continue;
        }
        let shown: Vec<String> = deployed
            .iter()
            .map(|(v, at)| format!("{v} ({at})"))
            .collect();
        out.push(drift(
            format!(
                "dnsmasq has no upstream {}, which the config names",
                u.value
            ),
            format!("server={} in {} ({listed})", u.value, dnsmasq::MAIN),
            format!(
                "the files dnsmasq loads name {}",
                if shown.is_empty() {
                    "no upstream server".to_string()
                } else {
                    format!("only {}", shown.join(", "))
                }
            ),
            None,
            ctx.looks(main_mtime, true),
            vec![u.prov.clone()],
            u.value.clone(),
        ));
    }
    for (v, at) in &deployed {
        let known = upstream_of(v).is_some_and(|ip| want.contains(&ip));
        if known {
            continue;
        }
        let shaped = at.file == dnsmasq::MAIN
            && upstream_of(v).is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok());
        out.push(drift(
            format!("dnsmasq forwards to {v}, which the config does not name"),
            listed.clone(),
            format!("{} {at}: server={v}", VantageRef::Host),
            Some((at.clone(), format!("server={v}"))),
            ctx.looks(loaded.mtime(&at.file), shaped),
            all_prov(),
            v.clone(),
        ));
    }
    // Every upstream present and none extra, but in another order: strict-order asks the
    // first one first.
    let order: Vec<&str> = deployed
        .iter()
        .filter_map(|(v, _)| upstream_of(v))
        .collect();
    if order.len() == want.len() && order != want && want.iter().all(|w| order.contains(w)) {
        let (v, at) = deployed[0];
        out.push(drift(
            "dnsmasq asks its upstream servers in another order than the config's".to_string(),
            format!("{listed}, in this order (strict-order)"),
            format!(
                "{} {at}: server= lines in the order {}",
                VantageRef::Host,
                order.join(", ")
            ),
            Some((at.clone(), format!("server={v}"))),
            ctx.looks(loaded.mtime(&at.file), true),
            all_prov(),
            order.join(", "),
        ));
    }
}

fn dns_extra(
    m: &Intended,
    loaded: &Loaded<Vec<(String, dnsmasq::Parsed)>>,
    by_name: &HashMap<&str, Vec<&dnsmasq::DnsEntry>>,
    intended: &HashSet<String>,
    ctx: &Ctx,
    out: &mut Vec<Drift>,
) {
    let mut extra: Vec<&&dnsmasq::DnsEntry> = by_name
        .iter()
        .filter(|(n, _)| !intended.contains(**n))
        .filter_map(|(_, es)| es.first())
        .collect();
    extra.sort_by(|a, b| (&a.at.file, a.at.line).cmp(&(&b.at.file, b.at.line)));
    for e in extra {
        let shaped =
            e.at.file == RECORDS_FILE && e.directive == "address" && in_platform(m, &e.ip_text);
        out.push(Drift {
            code: catalog::DNS_EXTRA,
            title: format!("{}: deployed record the generator does not write", e.name),
            expected: format!("no record for {} (the configs derive none)", e.name),
            actual: format!("{} {} says {}", VantageRef::Host, e.at, e.ip_text),
            vantage: VantageRef::Host,
            deployed: Some((e.at.clone(), e.text.clone())),
            looks: ctx.looks(loaded.mtime(&e.at.file), shaped),
            regenerate: DNS_SCRIPT,
            prov: vec![Provenance::platform(
                "hypervisor_feature_setup_dns_server.sh",
                "records derived from the guests, stacks and static names (docs/config.md)",
            )],
            subject: e.name.clone(),
        });
    }
}

/// The gateway's proxy targets older generators wrote (`https://<router>:8443`), and what the
/// committed stale site's map names.
fn gateway_history(m: &Intended) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(r) = &m.router {
        v.push(format!("https://{}:8443", r.ip.value));
    }
    v.push(format!("https://traefik.{}:8443", m.domain.value));
    v
}

fn gateway(
    m: &Intended,
    src: &dyn FileSource,
    ctx: &Ctx,
    arts: &mut Vec<Artefact>,
    out: &mut Vec<Drift>,
) {
    let Some(gw) = &m.gateway else {
        arts.push(skipped(
            "gateway-site",
            VantageRef::Host,
            "no gateway LXC in the configs",
        ));
        return;
    };
    let v = VantageRef::Lxc(gw.lxc);
    let loaded = nginx::load(src, v);
    arts.push(artefact("gateway-site", v, &loaded));
    if !loaded.unreadable.is_empty() {
        return;
    }
    out.extend(gateway_drifts(m, &loaded, ctx));
    out.extend(super::compare_certs::gateway_cert_paths(m, &loaded, ctx));
}

/// The gateway site's drifts: for each name the generator serves, the server NGINX picks and
/// its `location /` upstream, compared with the intended `proxy_pass`.
pub(crate) fn gateway_drifts(m: &Intended, loaded: &Loaded<nginx::Site>, ctx: &Ctx) -> Vec<Drift> {
    let mut out = Vec::new();
    let Some(gw) = &m.gateway else {
        return out;
    };
    let v = VantageRef::Lxc(gw.lxc);
    let mut prov = vec![gw.ip.prov.clone()];
    if let Some(r) = &m.router {
        prov.insert(0, r.ip.prov.clone());
        prov.insert(1, r.port.prov.clone());
    }
    let port = gw.listen.value;
    let mut seen: HashSet<String> = HashSet::new();
    for name in &gw.server_names {
        let Some(server) = loaded.value.server_for(name, port) else {
            if seen.insert(String::new()) {
                out.push(Drift {
                    code: catalog::GATEWAY,
                    title: format!("gateway site: no server listens on {port}"),
                    expected: format!("server {{ listen {port} ssl; server_name {}; proxy_pass {}; }}", gw.server_names.join(" "), gw.proxy_pass),
                    actual: format!("no server block of the loaded site listens on {port}"),
                    vantage: v,
                    deployed: None,
                    looks: (Looks::GeneratorNotRerun, "the generator's TLS server is absent: its site was never pushed or was replaced".into()),
                    regenerate: GATEWAY_SCRIPT,
                    prov: prov.clone(),
                    subject: name.clone(),
                });
            }
            continue;
        };
        let Some((_, target, at)) = server.root_proxy() else {
            continue;
        };
        for (upstream, up_at) in loaded.value.resolve(target) {
            if upstream == gw.proxy_pass || upstream == gw.proxy_pass_platform {
                continue;
            }
            let at = up_at.unwrap_or_else(|| at.clone());
            if !seen.insert(format!("{at}")) {
                continue;
            }
            let shaped = gateway_history(m).contains(&upstream);
            let text = if upstream == *target {
                format!("proxy_pass {target};")
            } else {
                format!("proxy_pass {target}; → upstream server {upstream}")
            };
            out.push(Drift {
                code: catalog::GATEWAY,
                title: format!(
                    "gateway site proxies {name} to {upstream}, the generator writes {}",
                    gw.proxy_pass
                ),
                expected: format!("proxy_pass {}; (Traefik's web entrypoint)", gw.proxy_pass),
                actual: format!("{v} {at}: {text}"),
                vantage: v,
                deployed: Some((at.clone(), text)),
                looks: ctx.looks(loaded.mtime(&at.file), shaped),
                regenerate: GATEWAY_SCRIPT,
                prov: prov.clone(),
                subject: name.clone(),
            });
        }
    }
    out
}
