//! DNS records derived exactly as the platform's dnsmasq generator
//! (`hypervisor_feature_setup_dns_server.sh` v12) derives them: seven rules in order, then
//! `unique_by(.hostname)` (sorted by hostname, the first candidate in rule order wins).

use super::Node;
use crate::config::{IpSpec, Provenance, RawConfig, Val};
use serde::Serialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// The address the generator hard-codes for the `ca` traefik_service record.
pub const CA_LITERAL_IP: &str = "10.0.0.10";
/// The LXC name the generator looks up to find the gateway IP.
pub const GATEWAY_LXC_NAME: &str = "Nginx-Phoenix";
/// The header line of `00-phoenix-internal.conf`.
pub const HEADER: &str = "# Phoenix Hypervisor Internal DNS Records";
const SCRIPT: &str = "hypervisor_feature_setup_dns_server.sh";

/// Which generator rule produced a record (numbered as in the script's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsRule {
    /// (1) a stack's `traefik.http.routers.*.rule=Host(...)` label → gateway IP.
    StackLabel = 1,
    /// (2) an LXC's `traefik_service.name` → the LXC's IP (`ca` → 10.0.0.10, hard-coded).
    LxcTraefikService = 2,
    /// (3) a VM's `traefik_service.name` → gateway IP (`portainer-agent` → the VM's IP).
    VmTraefikService = 3,
    /// (4) an LXC's lower-cased `name` → its IP.
    LxcName = 4,
    /// (5) a VM's lower-cased `name` → its IP (not for `dhcp`).
    VmName = 5,
    /// (6) an agent VM's `portainer_agent_hostname` → its IP.
    AgentHostname = 6,
    /// (7) static `portainer.` and `traefik.` → gateway IP.
    Static = 7,
}

impl DnsRule {
    pub fn number(self) -> u8 {
        self as u8
    }

    pub fn describe(self) -> &'static str {
        match self {
            DnsRule::StackLabel => "stack Traefik label → gateway",
            DnsRule::LxcTraefikService => "LXC traefik_service",
            DnsRule::VmTraefikService => "VM traefik_service",
            DnsRule::LxcName => "LXC name → LXC IP",
            DnsRule::VmName => "VM name → VM IP",
            DnsRule::AgentHostname => "portainer_agent_hostname → agent IP",
            DnsRule::Static => "static record → gateway",
        }
    }
}

/// One `address=/<hostname>/<ip>` candidate or record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsRecord {
    pub hostname: String,
    /// The text written after the hostname (what dnsmasq serves).
    pub ip_text: String,
    /// `ip_text` parsed (None if the generator would write something that is not an IP).
    pub ip: Option<IpAddr>,
    pub rule: DnsRule,
    /// The guest or stack the record is about (`lxc:103`, `vm:1002`, `stack:qdrant_service`, `static`).
    pub subject: String,
    /// For the `ca` quirk: the IP the CA guest really has, when it differs from what is served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_ip: Option<IpAddr>,
    /// Where the name and the address came from.
    pub provenance: Vec<Provenance>,
    /// Candidates with the same hostname that this record shadowed (rule order lost to it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadowed: Vec<Shadowed>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shadowed {
    pub ip_text: String,
    pub rule: DnsRule,
    pub subject: String,
    pub provenance: Vec<Provenance>,
}

/// The intended state of the internal DNS server.
#[derive(Debug, Clone, Serialize)]
pub struct Dns {
    /// `.dns_server.enabled`: when false the generator skips everything.
    pub enabled: bool,
    /// Where dnsmasq listens (`listen-address` = host IP, `port=53` or the site override).
    pub server: Val<SocketAddr>,
    pub upstreams: Vec<Val<String>>,
    /// The gateway IP found by LXC name `Nginx-Phoenix` (None → the file holds only the header).
    pub gateway_ip: Option<Val<String>>,
    /// Every candidate in generator order, before `unique_by`.
    pub candidates: Vec<DnsRecord>,
    /// The records written, sorted by hostname.
    pub records: Vec<DnsRecord>,
    /// Lower-cased hostname → (first, last) index into `records`.
    #[serde(skip)]
    by_name: HashMap<String, (usize, usize)>,
}

impl Dns {
    /// The record for `hostname` (case-insensitive), if the generator writes one. dnsmasq's
    /// `address=/d/ip` also answers subdomains of `d`; see [`Dns::answer`].
    pub fn record(&self, hostname: &str) -> Option<&DnsRecord> {
        self.by_name
            .get(&hostname.to_ascii_lowercase())
            .map(|&(first, _)| &self.records[first])
    }

    /// What dnsmasq answers for `name`: the record for the longest matching `address=` domain
    /// (of records that differ only in case, the last).
    pub fn answer(&self, name: &str) -> Option<&DnsRecord> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        // `name` itself, then each parent domain, longest first.
        let suffixes = std::iter::once(name.as_str())
            .chain(name.match_indices('.').map(|(i, _)| &name[i + 1..]));
        suffixes
            .filter_map(|d| self.by_name.get(d))
            .map(|&(_, last)| &self.records[last])
            .next()
    }

    fn new(
        enabled: bool,
        server: Val<SocketAddr>,
        upstreams: Vec<Val<String>>,
        gateway_ip: Option<Val<String>>,
        candidates: Vec<DnsRecord>,
        records: Vec<DnsRecord>,
    ) -> Dns {
        let mut by_name: HashMap<String, (usize, usize)> = HashMap::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            by_name
                .entry(r.hostname.to_ascii_lowercase())
                .and_modify(|e| e.1 = i)
                .or_insert((i, i));
        }
        Dns {
            enabled,
            server,
            upstreams,
            gateway_ip,
            candidates,
            records,
            by_name,
        }
    }
}

fn cut_ip(spec: &Val<IpSpec>) -> String {
    match spec.value {
        IpSpec::Dhcp => "dhcp".to_string(),
        IpSpec::Static { ip, .. } => ip.to_string(),
    }
}

/// Capture the hostname of the first ``Host(`...`)`` in a label, as the generator's regex does.
pub fn label_host(label: &str) -> Option<&str> {
    let start = label.find("Host(`")? + "Host(`".len();
    let rest = &label[start..];
    let end = rest.find('`')?;
    if end == 0 || !rest[end..].starts_with("`)") {
        return None;
    }
    Some(&rest[..end])
}

/// The platform's DNS: every candidate record of the seven rules in order, then the records
/// dnsmasq serves (`unique_by(.hostname)`).
pub(crate) fn derive(
    raw: &RawConfig,
    domain: &str,
    host: &Node,
    dns_port: Val<u16>,
    notes: &mut Vec<String>,
) -> Dns {
    let host_ip = host.ip.as_ref().expect("host has an IP").clone();
    let server = Val::new(
        SocketAddr::new(host_ip.value, dns_port.value),
        host_ip.prov.clone(),
    );
    let (enabled, upstreams) = match &raw.hypervisor.dns_server {
        Some(d) => (d.enabled.value, d.upstream_servers.clone()),
        None => (false, Vec::new()),
    };
    let gateway_ip = raw
        .lxcs
        .iter()
        .find(|g| g.name.as_ref().is_some_and(|n| n.value == GATEWAY_LXC_NAME))
        .and_then(|g| g.ip.as_ref())
        .map(|ip| Val::new(cut_ip(ip), ip.prov.clone()));
    if !enabled {
        notes.push(format!(
            "{}: dns_server.enabled is not true: the platform skips its DNS setup",
            raw.hypervisor.file
        ));
    }
    let Some(gw) = gateway_ip else {
        notes.push(format!(
            "no LXC is named \"{GATEWAY_LXC_NAME}\": the DNS generator writes only the header (no records)"
        ));
        return Dns::new(enabled, server, upstreams, None, Vec::new(), Vec::new());
    };
    let mut c = Candidates {
        domain,
        gw: &gw,
        records: Vec::new(),
    };
    c.stack_labels(raw);
    c.lxc_services(raw, notes);
    c.vm_services(raw);
    c.guest_names(raw);
    c.agent_hostnames(raw, notes);
    c.statics();
    let records = unique_by_hostname(&c.records);
    let candidates = c.records;
    Dns::new(enabled, server, upstreams, Some(gw), candidates, records)
}

/// The candidate records, rule by rule, in the generator's order.
struct Candidates<'a> {
    domain: &'a str,
    /// The gateway LXC's address (text, as the generator cuts it) and where it came from.
    gw: &'a Val<String>,
    records: Vec<DnsRecord>,
}

impl Candidates<'_> {
    fn fqdn(&self, n: &str) -> String {
        format!("{n}.{}", self.domain)
    }

    fn push(
        &mut self,
        hostname: String,
        ip_text: String,
        rule: DnsRule,
        subject: String,
        provenance: Vec<Provenance>,
    ) {
        self.records.push(DnsRecord {
            ip: ip_text.parse().ok(),
            hostname,
            ip_text,
            rule,
            subject,
            guest_ip: None,
            provenance,
            shadowed: Vec::new(),
        });
    }

    /// (1) stack labels `traefik.http.routers.*.rule=Host(...)` → the gateway.
    fn stack_labels(&mut self, raw: &RawConfig) {
        for s in &raw.stacks {
            let Some(env) = &s.production else { continue };
            for svc in &env.services {
                for l in &svc.traefik_labels {
                    if !l.value.starts_with("traefik.http.routers.")
                        || !l.value.contains(".rule=Host(`")
                    {
                        continue;
                    }
                    if let Some(h) = label_host(&l.value) {
                        self.push(
                            h.to_string(),
                            self.gw.value.clone(),
                            DnsRule::StackLabel,
                            format!("stack:{}", s.name),
                            vec![l.prov.clone(), self.gw.prov.clone()],
                        );
                    }
                }
            }
        }
    }

    /// (2) LXC `traefik_service` → the LXC (`ca` → the hard-coded address).
    fn lxc_services(&mut self, raw: &RawConfig, notes: &mut Vec<String>) {
        for g in &raw.lxcs {
            let Some(ts) = &g.traefik_service else {
                continue;
            };
            if ts.name.value.is_empty() {
                continue;
            }
            let Some(ip) = &g.ip else {
                notes.push(format!(
                    "lxc:{} has traefik_service but no network_config.ip: the DNS generator would fail on it",
                    g.id.value
                ));
                continue;
            };
            let own = cut_ip(ip);
            if ts.name.value == "ca" {
                let p = vec![
                    ts.name.prov.clone(),
                    Provenance::platform(SCRIPT, "ca → 10.0.0.10 (hard-coded)"),
                    ip.prov.clone(),
                ];
                self.push(
                    self.fqdn("ca"),
                    CA_LITERAL_IP.to_string(),
                    DnsRule::LxcTraefikService,
                    format!("lxc:{}", g.id.value),
                    p,
                );
                if own != CA_LITERAL_IP {
                    self.records.last_mut().expect("just pushed").guest_ip = own.parse().ok();
                }
            } else {
                self.push(
                    self.fqdn(&ts.name.value),
                    own,
                    DnsRule::LxcTraefikService,
                    format!("lxc:{}", g.id.value),
                    vec![ts.name.prov.clone(), ip.prov.clone()],
                );
            }
        }
    }

    /// (3) VM `traefik_service` → the gateway (`portainer-agent` → the VM).
    fn vm_services(&mut self, raw: &RawConfig) {
        for g in &raw.vms {
            let Some(ts) = &g.traefik_service else {
                continue;
            };
            if ts.name.value.is_empty() {
                continue;
            }
            let (ip_text, ip_prov) = if ts.name.value == "portainer-agent" {
                let Some(ip) = &g.ip else { continue };
                (cut_ip(ip), ip.prov.clone())
            } else {
                (self.gw.value.clone(), self.gw.prov.clone())
            };
            self.push(
                self.fqdn(&ts.name.value),
                ip_text,
                DnsRule::VmTraefikService,
                format!("vm:{}", g.id.value),
                vec![ts.name.prov.clone(), ip_prov],
            );
        }
    }

    /// (4) LXC names, then (5) VM names (not `dhcp`), lower-cased → the guest.
    fn guest_names(&mut self, raw: &RawConfig) {
        let lxcs = raw.lxcs.iter().map(|g| (g, DnsRule::LxcName));
        let vms = raw.vms.iter().map(|g| (g, DnsRule::VmName));
        for (g, rule) in lxcs.chain(vms) {
            let (Some(n), Some(ip)) = (&g.name, &g.ip) else {
                continue;
            };
            if n.value.is_empty() || (rule == DnsRule::VmName && ip.value == IpSpec::Dhcp) {
                continue;
            }
            self.push(
                self.fqdn(&n.value.to_ascii_lowercase()),
                cut_ip(ip),
                rule,
                format!("{}:{}", g.kind.as_str(), g.id.value),
                vec![n.prov.clone(), ip.prov.clone()],
            );
        }
    }

    /// (6) an agent VM's `portainer_agent_hostname` → the VM.
    fn agent_hostnames(&mut self, raw: &RawConfig, notes: &mut Vec<String>) {
        for g in &raw.vms {
            if g.portainer_role.as_ref().is_none_or(|r| r.value != "agent") {
                continue;
            }
            match (&g.portainer_agent_hostname, &g.ip) {
                (Some(h), Some(ip)) => self.push(
                    h.value.clone(),
                    cut_ip(ip),
                    DnsRule::AgentHostname,
                    format!("vm:{}", g.id.value),
                    vec![h.prov.clone(), ip.prov.clone()],
                ),
                _ => notes.push(format!(
                    "vm:{} has portainer_role agent but no portainer_agent_hostname: the generator would write a record named \"null\"",
                    g.id.value
                )),
            }
        }
    }

    /// (7) the static `portainer.` and `traefik.` records → the gateway.
    fn statics(&mut self) {
        for n in ["portainer", "traefik"] {
            self.push(
                self.fqdn(n),
                self.gw.value.clone(),
                DnsRule::Static,
                "static".to_string(),
                vec![
                    Provenance::platform(SCRIPT, &format!("static {n} record")),
                    self.gw.prov.clone(),
                ],
            );
        }
    }
}

/// `unique_by(.hostname)`: a stable sort by hostname; the first of each group wins and the
/// others are kept as what it shadows.
fn unique_by_hostname(c: &[DnsRecord]) -> Vec<DnsRecord> {
    let mut sorted: Vec<&DnsRecord> = c.iter().collect();
    sorted.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    let mut records: Vec<DnsRecord> = Vec::new();
    for r in sorted {
        match records.last_mut() {
            Some(last) if last.hostname == r.hostname => last.shadowed.push(Shadowed {
                ip_text: r.ip_text.clone(),
                rule: r.rule,
                subject: r.subject.clone(),
                provenance: r.provenance.clone(),
            }),
            _ => records.push(r.clone()),
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_hosts() {
        assert_eq!(
            label_host("traefik.http.routers.q.rule=Host(`qdrant.internal.thinkheads.ai`)"),
            Some("qdrant.internal.thinkheads.ai")
        );
        assert_eq!(
            label_host("traefik.http.routers.q.rule=Host(`a`) || Host(`b`)"),
            Some("a")
        );
        assert_eq!(
            label_host("traefik.http.routers.q.rule=PathPrefix(`/x`)"),
            None
        );
    }
}
