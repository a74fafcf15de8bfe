//! Firewall rules: each documented hop (docs/platform.md, Hops) against the destination's IN rules
//! and the source's OUT rules, one-sided pairs, unenforced container rule sets, stack-only
//! rules, duplicates and subsets.

use super::catalog as codes;
use super::{finding, label, node_subjects, vantage_of_ip, with_subjects};
use crate::config::{AddrSpec, Direction, Provenance, Val};
use crate::finding::{Finding, Severity};
use crate::hops::{Documented, End, Proto};
use crate::model::{FwFile, FwRule, FwScope, Intended, RuleOrigin};
use crate::plan::VantageRef;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

/// One documented hop that crosses a firewall.
pub(crate) struct FwHop {
    /// The hop's id in docs/platform.md (`gateway-router`, `host-ca`, ...).
    pub id: &'static str,
    pub what: String,
    /// None for the synthetic "any LAN client".
    pub src: Option<VantageRef>,
    pub src_ip: IpAddr,
    pub src_label: String,
    pub dst: VantageRef,
    pub dst_ip: IpAddr,
    pub dst_label: String,
    pub port: u16,
    pub proto: Proto,
    /// A certificate client dialling the CA (reported as PD-CERT-001).
    pub ca: bool,
    pub prov: Vec<Provenance>,
}

fn hop(
    m: &Intended,
    id: &'static str,
    what: impl Into<String>,
    src: VantageRef,
    dst: VantageRef,
    port: &Val<u16>,
    proto: Proto,
) -> Option<FwHop> {
    let s = m.node(src)?;
    let d = m.node(dst)?;
    let (src_ip, dst_ip) = (s.ip_addr()?, d.ip_addr()?);
    if src_ip == dst_ip {
        return None;
    }
    let mut prov = vec![port.prov.clone()];
    prov.extend(d.ip.as_ref().map(|i| i.prov.clone()));
    prov.extend(s.ip.as_ref().map(|i| i.prov.clone()));
    Some(FwHop {
        id,
        what: what.into(),
        src: Some(src),
        src_ip,
        src_label: label(s),
        dst,
        dst_ip,
        dst_label: label(d),
        port: port.value,
        proto,
        ca: false,
        prov,
    })
}

/// An address in the gateway's subnet that no node has: "any LAN client".
fn lan_client(m: &Intended, near: IpAddr) -> Option<IpAddr> {
    // The most specific subnet around the gateway, at most a /24 (or /120) wide.
    let net = m
        .subnets
        .iter()
        .filter(|n| n.contains(&near))
        .max_by_key(|n| n.prefix_len())?;
    let min = net.max_prefix_len().saturating_sub(8);
    let net = if net.prefix_len() < min {
        ipnet::IpNet::new(near, min).ok()?.trunc()
    } else {
        *net
    };
    let hosts: Vec<IpAddr> = net.hosts().collect();
    hosts
        .into_iter()
        .rev()
        .find(|ip| m.node_by_ip(*ip).is_none())
}

/// Every documented hop of the catalogue (`probes/platform/hops.toml`, docs/platform.md Hops)
/// that the model can place, one per source and destination guest, in catalogue order.
pub(crate) fn hops(m: &Intended) -> Vec<FwHop> {
    let mut out = Vec::new();
    for d in crate::hops::documented() {
        let dsts = destinations(m, d.to);
        if d.from == End::Lan {
            out.extend(dsts.iter().filter_map(|dst| lan_hop(m, d, dst)));
            continue;
        }
        for src in sources(m, d.from) {
            for dst in &dsts {
                let what = dst
                    .words
                    .iter()
                    .fold(d.what.clone(), |w, (k, v)| w.replace(k, v));
                let proto = d.proto;
                if let Some(mut h) = hop(m, &d.id, what, src, dst.vantage, &dst.port, proto) {
                    h.dst_ip = dst.dials.unwrap_or(h.dst_ip);
                    h.ca = d.to_ca();
                    out.push(h);
                }
            }
        }
    }
    out
}

/// Where a documented hop arrives: a guest (or the host), the port it serves the hop on.
struct Dest {
    vantage: VantageRef,
    port: Val<u16>,
    /// The component's address as the config names it.
    addr: Option<Val<IpAddr>>,
    /// The address the hop dials when it is not the guest's own (a route's backend URL).
    dials: Option<IpAddr>,
    /// `{route}`, `{url}` in the hop's words.
    words: Vec<(&'static str, String)>,
}

fn dest(vantage: VantageRef, port: &Val<u16>, addr: &Val<IpAddr>) -> Dest {
    Dest {
        vantage,
        port: port.clone(),
        addr: Some(addr.clone()),
        dials: None,
        words: Vec::new(),
    }
}

/// The guests a documented hop starts from.
fn sources(m: &Intended, end: End) -> Vec<VantageRef> {
    let agents = m.agents.iter().map(|a| VantageRef::Vm(a.vm));
    match end {
        End::Host | End::Dnsmasq => vec![VantageRef::Host],
        End::Gateway => m.gateway.iter().map(|g| VantageRef::Lxc(g.lxc)).collect(),
        End::Router => m.router.iter().map(|r| VantageRef::Lxc(r.lxc)).collect(),
        End::Ca => m.ca.iter().map(|c| VantageRef::Lxc(c.lxc)).collect(),
        End::Portainer => m.portainer.iter().map(|p| VantageRef::Vm(p.vm)).collect(),
        End::Agent => agents.collect(),
        End::DockerVm => sources(m, End::Portainer)
            .into_iter()
            .chain(agents)
            .collect(),
        End::Guest if m.dns.enabled => {
            let dns_ip = m.dns.server.value.ip();
            m.guests
                .iter()
                .filter(|g| !g.is_template && g.nameservers.iter().any(|n| n.value == dns_ip))
                .map(|g| g.vantage)
                .collect()
        }
        End::Guest | End::Lan | End::Route => Vec::new(),
    }
}

/// Where a documented hop arrives, with the port from the config.
fn destinations(m: &Intended, end: End) -> Vec<Dest> {
    match end {
        End::Gateway => m
            .gateway
            .iter()
            .map(|g| dest(VantageRef::Lxc(g.lxc), &g.listen, &g.ip))
            .collect(),
        End::Router => m
            .router
            .iter()
            .map(|r| dest(VantageRef::Lxc(r.lxc), &r.port, &r.ip))
            .collect(),
        End::Ca => {
            m.ca.iter()
                .map(|c| dest(VantageRef::Lxc(c.lxc), &c.port, &c.ip))
                .collect()
        }
        End::Portainer => m
            .portainer
            .iter()
            .map(|p| dest(VantageRef::Vm(p.vm), &p.port, &p.ip))
            .collect(),
        End::Agent => m
            .agents
            .iter()
            .map(|a| dest(VantageRef::Vm(a.vm), &a.port, &a.ip))
            .collect(),
        End::Dnsmasq if m.dns.enabled => vec![Dest {
            vantage: VantageRef::Host,
            port: Val::new(m.dns.server.value.port(), m.ports.dns.prov.clone()),
            addr: None,
            dials: None,
            words: Vec::new(),
        }],
        End::Route => route_backends(m),
        _ => Vec::new(),
    }
}

/// Each Traefik route's backend guest (not the dashboard), at the backend's address and port.
fn route_backends(m: &Intended) -> Vec<Dest> {
    let mut out = Vec::new();
    for route in m.routes.routes.iter().filter(|r| !r.is_api) {
        let (Some(b), Some(guest)) = (route.backend, route.guest) else {
            continue;
        };
        out.push(Dest {
            vantage: guest,
            port: Val::new(
                b.port(),
                route.provenance.get(1).cloned().unwrap_or_default(),
            ),
            addr: None,
            dials: Some(b.ip()),
            words: vec![
                ("{route}", route.name.clone()),
                ("{url}", route.url.clone()),
            ],
        });
    }
    out
}

/// A hop from any LAN client: a free address in the destination's subnet.
fn lan_hop(m: &Intended, d: &'static Documented, dst: &Dest) -> Option<FwHop> {
    let addr = dst.addr.as_ref()?;
    let client = lan_client(m, addr.value)?;
    let node = m.node(dst.vantage)?;
    Some(FwHop {
        id: &d.id,
        what: d.what.clone(),
        src: None,
        src_ip: client,
        src_label: format!("any LAN client (e.g. {client})"),
        dst: dst.vantage,
        dst_ip: addr.value,
        dst_label: label(node),
        port: dst.port.value,
        proto: d.proto,
        ca: d.to_ca(),
        prov: vec![dst.port.prov.clone(), addr.prov.clone()],
    })
}

fn hop_subjects(h: &FwHop) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(s) = h.src {
        v.push(s.to_string());
    }
    v.push(h.src_ip.to_string());
    v.push(h.dst.to_string());
    v.push(h.dst_ip.to_string());
    v.push(format!("{}:{}", h.dst_ip, h.port));
    v
}

fn file_label(f: &FwFile) -> String {
    match f.scope {
        FwScope::Cluster => "cluster.fw".to_string(),
        FwScope::Vm(id) => format!("{id}.fw"),
        FwScope::Lxc(id) => format!("the lxc:{id} rule set"),
    }
}

fn rule_text(r: &FwRule) -> String {
    let mut s = format!("{} {}", r.direction.as_upper(), r.action.upper());
    if let Some(p) = &r.proto {
        s.push_str(&format!(" -p {p}"));
    }
    if let Some(x) = &r.source_text {
        s.push_str(&format!(" -source {x}"));
    }
    if let Some(x) = &r.dest_text {
        s.push_str(&format!(" -dest {x}"));
    }
    if let Some(x) = &r.dport_text {
        s.push_str(&format!(" -dport {x}"));
    }
    s
}

/// PD-FW-001 / PD-FW-002: the destination's IN rules for each documented hop.
pub(crate) fn hop_in_rules(m: &Intended) -> Vec<Finding> {
    in_rule_findings(m, false)
}

/// The destination's IN rules for the documented hops to the CA (`ca`) or all others.
pub(crate) fn in_rule_findings(m: &Intended, ca: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    for h in hops(m).into_iter().filter(|h| h.ca == ca) {
        let Some(file) = m.firewall.for_vantage(h.dst) else {
            continue;
        };
        let d = file.decide_enforced(Direction::In, h.src_ip, Some(h.dst_ip), h.proto, h.port);
        if d.accepted {
            continue;
        }
        let code = if h.ca {
            codes::PD_CERT_001
        } else if file.enforced {
            codes::PD_FW_001
        } else {
            codes::PD_FW_002
        };
        let title = if h.ca {
            format!(
                "{} cannot reach the CA's :{} ({} has no IN rule for it)",
                h.src_label, h.port, h.dst
            )
        } else {
            format!(
                "{} ({}): {} has no IN rule for {} :{}",
                h.what,
                h.id,
                h.dst,
                if h.src.is_none() {
                    "LAN clients".to_string()
                } else {
                    h.src_ip.to_string()
                },
                h.port
            )
        };
        let policy = &file.options.policy_in;
        let mut f = finding(code, title)
            .expected(format!(
                "an IN ACCEPT rule on {} for {} from {} to :{} ({})",
                h.dst_label, h.proto, h.src_label, h.port, h.what
            ))
            .actual(format!(
                "no IN rule of {} matches; policy_in {} decides{}",
                file_label(file),
                policy.value,
                if file.enforced {
                    " (the rule set is enforced: the hop is dropped)".to_string()
                } else {
                    " once enforced (today the rule set is not enforced: PD-FW-005)".to_string()
                }
            ))
            .hint(if h.ca {
                format!(
                    "Add `{{\"type\":\"in\",\"action\":\"ACCEPT\",\"proto\":\"tcp\",\"source\":\"{}\",\"port\":\"{}\"}}` to {}'s firewall.rules; without it certificate requests time out as soon as the CA's firewall is enforced.",
                    h.src_ip, h.port, h.dst
                )
            } else {
                format!(
                    "Add `{{\"type\":\"in\",\"action\":\"ACCEPT\",\"proto\":\"{}\",\"source\":\"{}\",\"port\":\"{}\"}}` to {}'s firewall rules.",
                    h.proto,
                    if h.src.is_none() {
                        m.subnets.first().map(|n| n.to_string()).unwrap_or_else(|| h.src_ip.to_string())
                    } else {
                        h.src_ip.to_string()
                    },
                    h.port,
                    h.dst
                )
            })
            .provenance(h.prov.clone())
            .provenance([policy.prov.clone()]);
        f.evidence.push(
            format!(
                "documented hop {} (docs/platform.md): {} → {}",
                h.id, h.src_label, h.dst_label
            )
            .into(),
        );
        if code == codes::PD_CERT_001 && file.enforced {
            f.severity = Severity::Error;
        }
        out.push(with_subjects(f, hop_subjects(&h)));
    }
    out
}

/// PD-FW-003: the source's OUT rules where its policy_out is not ACCEPT.
pub(crate) fn hop_out_rules(m: &Intended) -> Vec<Finding> {
    let mut out = Vec::new();
    for h in hops(m) {
        let Some(src) = h.src else { continue };
        let Some(file) = m.firewall.for_vantage(src) else {
            continue;
        };
        if !file.enforced || file.options.policy_out.value.accepts() {
            continue;
        }
        let d = file.decide(Direction::Out, h.dst_ip, Some(h.src_ip), h.proto, h.port);
        if d.accepted {
            continue;
        }
        let mut f = finding(
            codes::PD_FW_003,
            format!(
                "{} ({}): {} policy_out {} drops it",
                h.what, h.id, src, file.options.policy_out.value
            ),
        )
        .expected(format!(
            "an OUT ACCEPT rule on {} for {} to {}:{}",
            h.src_label, h.proto, h.dst_ip, h.port
        ))
        .actual(format!(
            "no OUT rule of {} matches; policy_out {}",
            file_label(file),
            file.options.policy_out.value
        ))
        .hint(format!(
            "Add an OUT ACCEPT rule for {} {}:{} on {}, or set policy_out ACCEPT.",
            h.proto, h.dst_ip, h.port, src
        ))
        .provenance(h.prov.clone())
        .provenance([file.options.policy_out.prov.clone()]);
        f.evidence.push(
            format!(
                "documented hop {} (docs/platform.md): {} → {}",
                h.id, h.src_label, h.dst_label
            )
            .into(),
        );
        out.push(with_subjects(f, hop_subjects(&h)));
    }
    out
}

/// PD-FW-006: hops accepted only by a rule from a stack manifest (never written by sync).
pub(crate) fn stack_only_rules(m: &Intended) -> Vec<Finding> {
    let mut out = Vec::new();
    for h in hops(m) {
        let Some(file) = m.firewall.for_vantage(h.dst) else {
            continue;
        };
        if !matches!(file.scope, FwScope::Vm(_)) {
            continue;
        }
        let d = file.decide_enforced(Direction::In, h.src_ip, Some(h.dst_ip), h.proto, h.port);
        let Some(i) = d.rule.filter(|_| d.accepted) else {
            continue;
        };
        let r = &file.rules[i];
        let RuleOrigin::Stack { name, .. } = &r.origin else {
            continue;
        };
        let mut f = finding(
            codes::PD_FW_006,
            format!(
                "{} ({}) is allowed only by stack `{name}`'s firewall_rules",
                h.what, h.id
            ),
        )
        .expected(format!(
            "{} in /etc/pve/firewall/{}.fw after every `phoenix sync all`",
            rule_text(r),
            file.name
        ))
        .actual(format!(
            "the rule comes from stack `{name}`; it reaches {}.fw only when the VM is created or converged (sync never rewrites it, cluster.fw never has it)",
            file.name
        ))
        .hint(format!(
            "Compare `phoenix-doctor show firewall --file {}.fw` with /etc/pve/firewall/{}.fw on the host; re-converge the VM if they differ.",
            file.name, file.name
        ))
        .provenance([r.prov.clone()])
        .provenance(h.prov.clone());
        f.evidence.push(
            format!(
                "documented hop {} (docs/platform.md): {} → {}",
                h.id, h.src_label, h.dst_label
            )
            .into(),
        );
        out.push(with_subjects(f, hop_subjects(&h)));
    }
    out
}

fn node_file(m: &Intended, ip: IpAddr) -> Option<(VantageRef, &FwFile)> {
    let v = vantage_of_ip(m, ip)?;
    Some((v, m.firewall.for_vantage(v)?))
}

fn guest_files(m: &Intended) -> impl Iterator<Item = &FwFile> {
    m.firewall.vms.iter().chain(m.firewall.lxcs.iter())
}

/// PD-FW-004: an IN rule naming a source whose OUT rules miss it, or the reverse.
pub(crate) fn one_sided_rules(m: &Intended) -> Vec<Finding> {
    let mut out = Vec::new();
    for file in guest_files(m) {
        let me = file.vantage();
        let Some(my_ip) = m.node(me).and_then(|n| n.ip_addr()) else {
            continue;
        };
        for r in file.rules.iter().filter(|r| r.accepts()) {
            let (peer_spec, want_dir) = match r.direction {
                Direction::In => (&r.source, Direction::Out),
                Direction::Out => (&r.dest, Direction::In),
            };
            let Some(AddrSpec::Ip(peer)) = peer_spec else {
                continue;
            };
            let Some(ports) = &r.dport else { continue };
            let Some((pv, pfile)) = node_file(m, *peer) else {
                continue;
            };
            if pv == me {
                continue;
            }
            // Only rule sets that manage this direction at all.
            if !pfile.has_direction(want_dir) {
                continue;
            }
            if want_dir == Direction::In && pfile.options.policy_in.value.accepts() {
                continue;
            }
            // A rule for another protocol (icmp) has no ports a peer must also accept.
            let Ok(proto) = r
                .proto
                .as_deref()
                .map_or(Ok(Proto::Tcp), |p| p.to_ascii_lowercase().parse::<Proto>())
            else {
                continue;
            };
            let missing: Vec<u16> = ports
                .ports()
                .take(1024)
                .filter(|&p| {
                    !pfile.candidates(want_dir, my_ip).any(|i| {
                        let x = &pfile.rules[i];
                        x.accepts() && x.matches(want_dir, my_ip, Some(*peer), proto, p)
                    })
                })
                .collect();
            if missing.is_empty() {
                continue;
            }
            let missing_s = missing
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(",");
            let (src_ip, dst_ip) = match r.direction {
                Direction::In => (*peer, my_ip),
                Direction::Out => (my_ip, *peer),
            };
            let f = finding(
                codes::PD_FW_004,
                format!("{me} {} has no counterpart on {pv}", rule_text(r)),
            )
            .expected(format!(
                "{} {proto} {src_ip} → {dst_ip}:{missing_s} on {pv} ({})",
                want_dir.as_upper(),
                file_label(pfile)
            ))
            .actual(format!(
                "{pv} has {} rules but none for {src_ip} → {dst_ip}:{missing_s}",
                want_dir.as_upper()
            ))
            .hint(format!(
                "Add the {} rule on {pv}, or delete the rule on {me} if the traffic is not wanted.",
                want_dir.as_upper()
            ))
            .provenance([r.prov.clone()]);
            out.push(with_subjects(
                f,
                [
                    me.to_string(),
                    pv.to_string(),
                    src_ip.to_string(),
                    dst_ip.to_string(),
                ],
            ));
        }
    }
    out
}

/// PD-FW-005: LXC rule sets that Proxmox does not enforce.
pub(crate) fn unenforced_lxc_rules(m: &Intended) -> Vec<Finding> {
    let mut out = Vec::new();
    for f in m
        .firewall
        .lxcs
        .iter()
        .filter(|f| !f.enforced && !f.rules.is_empty())
    {
        let v = f.vantage();
        let subjects = m
            .node(v)
            .map(node_subjects)
            .unwrap_or_else(|| vec![v.to_string()]);
        let who = m.node(v).map(label).unwrap_or_else(|| v.to_string());
        out.push(with_subjects(
            finding(
                codes::PD_FW_005,
                format!("{v}: {} firewall rules are not enforced", f.rules.len()),
            )
            .expected(format!(
                "the rules of {who} filter its traffic ([OPTIONS] enable: 1)"
            ))
            .actual(f.enforced_why)
            .hint(format!(
                "Check `pvesh get /nodes/$(hostname)/lxc/{}/firewall/options`; fix PD-FW-002 findings before enabling it.",
                f.name
            ))
            .provenance(f.rules.first().map(|r| r.prov.clone())),
            subjects,
        ));
    }
    out
}

/// The normalised traffic of a rule.
struct Norm {
    dir: Direction,
    action: crate::model::FwAction,
    proto: Option<String>,
    src: Option<AddrSpec>,
    dst: Option<AddrSpec>,
    ports: Option<BTreeSet<u16>>,
}

fn norm(r: &FwRule) -> Norm {
    Norm {
        dir: r.direction,
        action: r.action.clone(),
        proto: r.proto.as_ref().map(|p| p.to_ascii_lowercase()),
        src: r.source,
        dst: r.dest,
        ports: r.dport.as_ref().map(|p| p.ports().collect()),
    }
}

fn addr_covers(a: &Option<AddrSpec>, b: &Option<AddrSpec>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(AddrSpec::Ip(x)), Some(AddrSpec::Ip(y))) => x == y,
        (Some(AddrSpec::Net(n)), Some(AddrSpec::Ip(y))) => n.contains(y),
        (Some(AddrSpec::Net(n)), Some(AddrSpec::Net(k))) => {
            n.contains(&k.network()) && k.prefix_len() >= n.prefix_len()
        }
        (Some(AddrSpec::Ip(x)), Some(AddrSpec::Net(k))) => {
            k.prefix_len() == k.max_prefix_len() && k.network() == *x
        }
    }
}

/// Does `a` accept (or drop) everything `b` does?
fn covers(a: &Norm, b: &Norm) -> bool {
    a.dir == b.dir
        && a.action == b.action
        && (a.proto.is_none() || a.proto == b.proto)
        && addr_covers(&a.src, &b.src)
        && addr_covers(&a.dst, &b.dst)
        && match (&a.ports, &b.ports) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(x), Some(y)) => y.is_subset(x),
        }
}

fn same(a: &Norm, b: &Norm) -> bool {
    a.dir == b.dir
        && a.action == b.action
        && a.proto == b.proto
        && a.src == b.src
        && a.dst == b.dst
        && a.ports == b.ports
}

/// An address spec as a hashable key: `(is a network, address, prefix)`.
type AddrKey = Option<(bool, IpAddr, u8)>;

fn addr_key(a: &Option<AddrSpec>) -> AddrKey {
    a.map(|a| match a {
        AddrSpec::Ip(ip) => (false, ip, 0),
        AddrSpec::Net(n) => (true, n.addr(), n.prefix_len()),
    })
}

/// Everything [`same`] compares, hashable.
type NormKey<'a> = (
    u8,
    &'a crate::model::FwAction,
    Option<&'a str>,
    AddrKey,
    AddrKey,
    Option<&'a BTreeSet<u16>>,
);

fn norm_key(n: &Norm) -> NormKey<'_> {
    (
        match n.dir {
            Direction::In => 0,
            Direction::Out => 1,
        },
        &n.action,
        n.proto.as_deref(),
        addr_key(&n.src),
        addr_key(&n.dst),
        n.ports.as_ref(),
    )
}

/// The rules of one rule set by what [`same`] and [`covers`] can relate. Two rules relate only
/// with the same direction and action; a rule whose source (or destination) is one address
/// relates only to rules with that address there, or none, or a network. So the rules that can
/// relate to a rule are found among those sharing its address, or the few with a wider one.
struct Related {
    /// Per (direction, action): every rule, and the rules by source and by destination.
    groups: HashMap<(u8, crate::model::FwAction), AddrLists>,
}

#[derive(Default)]
struct AddrLists {
    all: Vec<usize>,
    src: HashMap<IpAddr, Vec<usize>>,
    src_wide: Vec<usize>,
    dst: HashMap<IpAddr, Vec<usize>>,
    dst_wide: Vec<usize>,
}

impl Related {
    fn new(norms: &[Norm]) -> Related {
        let mut groups: HashMap<(u8, crate::model::FwAction), AddrLists> = HashMap::new();
        for (i, n) in norms.iter().enumerate() {
            let g = groups.entry((norm_key(n).0, n.action.clone())).or_default();
            g.all.push(i);
            match n.src {
                Some(AddrSpec::Ip(ip)) => g.src.entry(ip).or_default().push(i),
                _ => g.src_wide.push(i),
            }
            match n.dst {
                Some(AddrSpec::Ip(ip)) => g.dst.entry(ip).or_default().push(i),
                _ => g.dst_wide.push(i),
            }
        }
        Related { groups }
    }

    /// In ascending order, a superset of the rules that can be [`same`] as `n` or cover it or
    /// be covered by it.
    fn candidates<'a>(&'a self, n: &Norm) -> Vec<usize> {
        let Some(g) = self.groups.get(&(norm_key(n).0, n.action.clone())) else {
            return Vec::new();
        };
        let narrow = |spec: &Option<AddrSpec>,
                      by: &'a HashMap<IpAddr, Vec<usize>>,
                      wide: &'a Vec<usize>| match spec {
            Some(AddrSpec::Ip(ip)) => {
                let exact = by.get(ip).map(Vec::as_slice).unwrap_or(&[]);
                Some((wide.as_slice(), exact))
            }
            _ => None,
        };
        let by_src = narrow(&n.src, &g.src, &g.src_wide);
        let by_dst = narrow(&n.dst, &g.dst, &g.dst_wide);
        let len = |l: &Option<(&[usize], &[usize])>| l.map(|(a, b)| a.len() + b.len());
        let pick = match (len(&by_src), len(&by_dst)) {
            (Some(a), Some(b)) if b < a => by_dst,
            (Some(_), _) => by_src,
            (None, Some(_)) => by_dst,
            (None, None) => return g.all.clone(),
        };
        let (a, b) = pick.unwrap_or_default();
        let mut out: Vec<usize> = a.iter().chain(b.iter()).copied().collect();
        out.sort_unstable();
        out
    }
}

/// PD-FW-007 / PD-FW-008: duplicate and covered rules within one rule set.
pub(crate) fn duplicate_rules(m: &Intended) -> Vec<Finding> {
    let mut out = Vec::new();
    let cluster = m.firewall.cluster.iter();
    for file in cluster.chain(guest_files(m)) {
        // cluster.fw copies every guest's rules; judge only its own (global) rules there.
        let rules: Vec<&FwRule> = file
            .rules
            .iter()
            .filter(|r| file.scope != FwScope::Cluster || r.origin == RuleOrigin::Global)
            .map(|r| &**r)
            .collect();
        let norms: Vec<Norm> = rules.iter().map(|r| norm(r)).collect();
        let related = Related::new(&norms);
        // Identical rules, in order.
        let mut identical: HashMap<NormKey, Vec<usize>> = HashMap::new();
        for (i, n) in norms.iter().enumerate() {
            identical.entry(norm_key(n)).or_default().push(i);
        }
        let v = file.vantage();
        // Rules already reported as a copy of an earlier one.
        let mut copies: BTreeSet<usize> = BTreeSet::new();
        for j in 1..rules.len() {
            if copies.contains(&j) {
                continue;
            }
            let candidates = related.candidates(&norms[j]);
            let found = candidates.into_iter().take_while(|&i| i < j).find_map(|i| {
                if same(&norms[i], &norms[j]) {
                    Some((i, true))
                } else if covers(&norms[i], &norms[j]) || covers(&norms[j], &norms[i]) {
                    Some((i, false))
                } else {
                    None
                }
            });
            let Some((i, dup)) = found else { continue };
            let (a, b) = (rules[i], rules[j]);
            let origin = |r: &FwRule| match &r.origin {
                RuleOrigin::Stack { name, .. } => format!("stack `{name}`"),
                RuleOrigin::Global => "global_firewall_rules".to_string(),
                RuleOrigin::Lxc { id } => format!("lxc:{id} firewall.rules"),
                RuleOrigin::Vm { id } => format!("vm:{id} firewall.rules"),
            };
            let mut extra: Vec<&FwRule> = Vec::new();
            if dup {
                for &k in identical[&norm_key(&norms[i])].iter().filter(|&&k| k > j) {
                    copies.insert(k);
                    extra.push(rules[k]);
                }
            }
            let f = if dup {
                finding(
                    codes::PD_FW_007,
                    format!(
                        "{}: rule {} appears {} times",
                        file_label(file),
                        rule_text(b),
                        2 + extra.len()
                    ),
                )
                .expected(format!("each rule once in {}", file_label(file)))
                .actual(format!(
                    "`{}` ({}) repeats `{}` ({}){}",
                    rule_text(b),
                    origin(b),
                    rule_text(a),
                    origin(a),
                    if extra.is_empty() {
                        String::new()
                    } else {
                        format!(", and {} more copies follow", extra.len())
                    }
                ))
                .hint("Delete the later copies from the config they come from.")
                .provenance(extra.iter().map(|r| r.prov.clone()))
            } else {
                let (wide, narrow) = if covers(&norms[i], &norms[j]) {
                    (a, b)
                } else {
                    (b, a)
                };
                finding(
                    codes::PD_FW_008,
                    format!(
                        "{}: rule {} is covered by {}",
                        file_label(file),
                        rule_text(narrow),
                        rule_text(wide)
                    ),
                )
                .expected(format!("no redundant rules in {}", file_label(file)))
                .actual(format!(
                    "`{}` ({}) allows a subset of `{}` ({})",
                    rule_text(narrow),
                    origin(narrow),
                    rule_text(wide),
                    origin(wide)
                ))
                .hint("Delete the narrower rule.")
            };
            let mut subjects = vec![v.to_string()];
            if let Some(ip) = m.node(v).and_then(|n| n.ip_addr()) {
                subjects.push(ip.to_string());
            }
            for r in [a, b] {
                for s in [&r.source, &r.dest].into_iter().flatten() {
                    if let AddrSpec::Ip(ip) = s {
                        subjects.push(ip.to_string());
                    }
                }
            }
            out.push(with_subjects(
                f.provenance([b.prov.clone(), a.prov.clone()]),
                subjects,
            ));
        }
    }
    out
}

/// PD-FW-009: guest IN rules that the setup copies into cluster.fw, where they open the host.
pub(crate) fn guest_rules_in_cluster(m: &Intended) -> Vec<Finding> {
    let Some(cluster) = &m.firewall.cluster else {
        return Vec::new();
    };
    let copied: Vec<&FwRule> = cluster
        .rules
        .iter()
        .filter(|r| {
            r.origin != RuleOrigin::Global
                && r.direction == Direction::In
                && r.accepts()
                && r.dest.is_none()
        })
        .map(|r| &**r)
        .collect();
    if copied.is_empty() || !cluster.enforced {
        return Vec::new();
    }
    let mut ports: BTreeSet<String> = BTreeSet::new();
    let mut guests: BTreeSet<String> = BTreeSet::new();
    for r in &copied {
        ports.insert(format!(
            "{}/{}",
            r.dport_text.as_deref().unwrap_or("all"),
            r.proto.as_deref().unwrap_or("any")
        ));
        match &r.origin {
            RuleOrigin::Lxc { id } => guests.insert(format!("lxc:{id}")),
            RuleOrigin::Vm { id } => guests.insert(format!("vm:{id}")),
            _ => false,
        };
    }
    let ports = ports.into_iter().collect::<Vec<_>>().join(", ");
    let list = guests.iter().cloned().collect::<Vec<_>>().join(", ");
    let mut subjects = vec!["host".to_string()];
    subjects.extend(m.host.ip_addr().map(|i| i.to_string()));
    vec![with_subjects(
        finding(
            codes::PD_FW_009,
            format!(
                "cluster.fw carries {} IN rules copied from guests; they open the host's own ports",
                copied.len()
            ),
        )
        .expected("cluster.fw holds the host's own rules; each guest's rules live in its own rule set")
        .actual(format!(
            "the firewall setup appends every guest's rules to cluster.fw, so IN rules of {list} with no -dest accept {ports} to the host itself"
        ))
        .hint("Read cluster.fw as the host's rule set only; give each guest IN rule a `dest` of the guest's address so its copy does not open the host.")
        .provenance(copied.iter().take(3).map(|r| r.prov.clone())),
        subjects,
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented hops of the reference platform, written from docs/platform.md (Hops) and
    /// the reference config's addresses: host .13, gateway lxc:101 .153 :443, Traefik lxc:102
    /// .12 :80, Portainer vm:1001 .111 :9443, agent vm:1002 .102 :9001, step-ca lxc:103 .10
    /// :9000, dnsmasq on the host :53/udp.
    #[test]
    fn the_reference_platforms_documented_hops_per_component() {
        let etc =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/configs/reference/etc");
        let m = crate::model::load(&etc, None).expect("reference loads");
        let row = |h: &FwHop| {
            let src = h.src.map(|v| v.to_string()).unwrap_or_else(|| "lan".into());
            format!(
                "{} {src}>{}:{}/{}{}",
                h.id,
                h.dst,
                h.port,
                h.proto,
                if h.ca { " ca" } else { "" }
            )
        };
        let all = hops(&m);
        let rows = |ids: &[&str]| {
            all.iter()
                .filter(|h| ids.contains(&h.id))
                .map(row)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            rows(&[
                "host-gateway",
                "portainer-gateway",
                "lan-gateway",
                "gateway-router"
            ]),
            [
                "host-gateway host>lxc:101:443/tcp",
                "portainer-gateway vm:1001>lxc:101:443/tcp",
                "lan-gateway lan>lxc:101:443/tcp",
                "gateway-router lxc:101>lxc:102:80/tcp",
            ]
        );
        assert_eq!(
            rows(&["host-portainer", "portainer-agent"]),
            [
                "host-portainer host>vm:1001:9443/tcp",
                "portainer-agent vm:1001>vm:1002:9001/tcp",
            ]
        );
        assert_eq!(rows(&["host-agent"]), ["host-agent host>vm:1002:9001/tcp"]);
        assert_eq!(
            rows(&["router-ca", "host-ca", "vm-ca"]),
            [
                "router-ca lxc:102>lxc:103:9000/tcp ca",
                "host-ca host>lxc:103:9000/tcp ca",
                "vm-ca vm:1001>lxc:103:9000/tcp ca",
                "vm-ca vm:1002>lxc:103:9000/tcp ca",
            ]
        );
        let dns = rows(&["F"]);
        for g in ["lxc:101", "lxc:102", "lxc:103", "vm:1001", "vm:1002"] {
            assert!(dns.contains(&format!("F {g}>host:53/udp")), "{g}: {dns:?}");
        }
        let backends = rows(&["router-backend"]);
        assert!(backends.contains(&"router-backend lxc:102>vm:1001:9443/tcp".to_string()));
        assert!(backends
            .iter()
            .all(|b| b.starts_with("router-backend lxc:102>")));
        let lan = all.iter().find(|h| h.src.is_none()).unwrap();
        assert_eq!(
            lan.src_ip,
            IpAddr::from([10, 0, 0, 254]),
            "the highest free address"
        );
    }
}
