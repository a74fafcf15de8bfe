//! Proxmox firewall with its real semantics: `cluster.fw` (global rules, then every LXC's,
//! then every VM's rules; they filter the host's traffic), per-VM `<vmid>.fw` (the VM's rules,
//! then its docker_stacks' production `firewall_rules`; `policy_in` DROP / `policy_out` ACCEPT
//! by default) and per-LXC rule sets (never enabled by the platform, so not enforced).

use crate::config::{
    AddrSpec, Direction, PortSet, Provenance, RawClusterFirewall, RawConfig, RawGuest, RawRule,
    RawStack, Val,
};
use crate::observe::{Proto, VantageRef};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

crate::observe::vocab::text_enum! {
    /// What Proxmox does with a packet a rule matches, or that no rule matched (a policy).
    pub enum Verdict {
        Accept = "ACCEPT",
        Drop = "DROP",
        Reject = "REJECT",
    }
}

/// A rule's or a policy's action as written: `ACCEPT`, `DROP` or `REJECT` in any case (Proxmox
/// reads them case-insensitively). The spelling is kept for rendering and output; a text that
/// is none of them has no [`Verdict`] and accepts nothing. Equal when equal ignoring case.
#[derive(Debug, Clone)]
pub struct FwAction {
    verdict: Option<Verdict>,
    text: String,
}

impl FwAction {
    pub fn new(text: &str) -> FwAction {
        FwAction {
            verdict: text.to_ascii_uppercase().parse().ok(),
            text: text.to_string(),
        }
    }

    /// `ACCEPT`, `DROP` or `REJECT`; None for any other text.
    pub fn verdict(&self) -> Option<Verdict> {
        self.verdict
    }

    pub fn accepts(&self) -> bool {
        self.verdict == Some(Verdict::Accept)
    }

    /// As the config writes it.
    pub fn as_written(&self) -> &str {
        &self.text
    }

    /// Upper-cased, as vm-manager and pvesh write it.
    pub fn upper(&self) -> String {
        self.text.to_ascii_uppercase()
    }
}

impl From<&str> for FwAction {
    fn from(text: &str) -> FwAction {
        FwAction::new(text)
    }
}

impl From<Verdict> for FwAction {
    fn from(v: Verdict) -> FwAction {
        FwAction::new(v.as_str())
    }
}

impl PartialEq for FwAction {
    fn eq(&self, other: &FwAction) -> bool {
        self.text.eq_ignore_ascii_case(&other.text)
    }
}

impl Eq for FwAction {}

impl std::hash::Hash for FwAction {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        for b in self.text.bytes() {
            h.write_u8(b.to_ascii_uppercase());
        }
    }
}

impl fmt::Display for FwAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.text)
    }
}

impl Serialize for FwAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

fn serialize_rules<S: serde::Serializer>(rules: &[Arc<FwRule>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(rules.iter().map(|r| &**r))
}

/// Which traffic a rule set filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum FwScope {
    /// `cluster.fw`: rules apply to the Proxmox host's own traffic.
    Cluster,
    Vm(u32),
    Lxc(u32),
}

/// Where a rule was declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RuleOrigin {
    /// `shared_volumes.firewall.global_firewall_rules`.
    Global,
    Lxc {
        id: u32,
    },
    Vm {
        id: u32,
    },
    /// A stack manifest's `environments.production.firewall_rules`, applied to `vm`.
    Stack {
        name: String,
        vm: u32,
    },
}

/// One rule, parsed, with its verbatim fields for rendering.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FwRule {
    pub direction: Direction,
    pub action: FwAction,
    pub proto: Option<String>,
    /// `-dport` verbatim (`"80,443"`).
    pub dport_text: Option<String>,
    pub dport: Option<PortSet>,
    pub source: Option<AddrSpec>,
    pub source_text: Option<String>,
    pub dest: Option<AddrSpec>,
    pub dest_text: Option<String>,
    pub iface: Option<String>,
    pub comment: Option<String>,
    pub origin: RuleOrigin,
    pub prov: Provenance,
}

impl FwRule {
    pub(crate) fn from_raw(r: &RawRule, origin: RuleOrigin) -> FwRule {
        let s = |v: &Option<Val<String>>| v.as_ref().map(|x| x.value.clone());
        FwRule {
            direction: r.direction.value,
            action: FwAction::new(&r.action.value),
            proto: s(&r.proto),
            dport_text: s(&r.port),
            dport: r.port.as_ref().and_then(|p| PortSet::parse(&p.value)),
            source: r.source.as_ref().and_then(|p| AddrSpec::parse(&p.value)),
            source_text: s(&r.source),
            dest: r.dest.as_ref().and_then(|p| AddrSpec::parse(&p.value)),
            dest_text: s(&r.dest),
            iface: s(&r.iface),
            comment: s(&r.comment),
            origin,
            prov: r.prov.clone(),
        }
    }

    /// Does this rule match a packet? `local` is the address of the firewalled side (the guest
    /// or the host), `peer` the other end; for `In` the peer is the source.
    pub fn matches(
        &self,
        dir: Direction,
        peer: IpAddr,
        local: Option<IpAddr>,
        proto: Proto,
        port: u16,
    ) -> bool {
        if self.direction != dir {
            return false;
        }
        if let Some(p) = &self.proto {
            if !p.eq_ignore_ascii_case(proto.as_str()) {
                return false;
            }
        }
        if let Some(ps) = &self.dport {
            if !ps.contains(port) {
                return false;
            }
        }
        let (src, dst) = match dir {
            Direction::In => (Some(peer), local),
            Direction::Out => (local, Some(peer)),
        };
        let addr_ok = |spec: &Option<AddrSpec>, ip: Option<IpAddr>| match (spec, ip) {
            (None, _) => true,
            (Some(s), Some(ip)) => s.contains(ip),
            // unknown local address: assume the rule is about it
            (Some(_), None) => true,
        };
        addr_ok(&self.source, src) && addr_ok(&self.dest, dst)
    }

    pub fn accepts(&self) -> bool {
        self.action.accepts()
    }
}

/// `[OPTIONS]` of a firewall file.
#[derive(Debug, Clone, Serialize)]
pub struct FwOptions {
    /// `enable: 1` in the file.
    pub enable: bool,
    pub policy_in: Val<FwAction>,
    pub policy_out: Val<FwAction>,
    /// True when the policies are written in the file; false when Proxmox defaults apply.
    pub policies_written: bool,
}

/// One rule set (a `.fw` file, or an LXC's rules created through the API).
#[derive(Debug, Clone, Serialize)]
pub struct FwFile {
    /// `cluster`, or the guest id (`1001`, `102`).
    pub name: String,
    pub scope: FwScope,
    pub options: FwOptions,
    /// Shared with the guest's own rule set where cluster.fw copies a guest's rules.
    #[serde(serialize_with = "serialize_rules")]
    pub rules: Vec<Arc<FwRule>>,
    /// Whether Proxmox applies these rules at all.
    pub enforced: bool,
    /// Why (or why not), in words.
    pub enforced_why: &'static str,
    /// Which platform script writes the file, and when.
    pub written_by: &'static str,
    /// The rules by the address of their other end, built on first use.
    #[serde(skip)]
    pub(crate) index: OnceLock<RuleIndex>,
}

/// A rule set's rules by direction and by the address of the other end (the source of an IN
/// rule, the destination of an OUT rule), so that judging a packet looks only at the rules that
/// can match it.
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleIndex {
    /// `[In, Out]`: rules whose other end is one address, by that address.
    exact: [HashMap<IpAddr, Vec<usize>>; 2],
    /// `[In, Out]`: every other rule (any address, a network, or an unparsed address).
    rest: [Vec<usize>; 2],
}

fn slot(dir: Direction) -> usize {
    match dir {
        Direction::In => 0,
        Direction::Out => 1,
    }
}

impl RuleIndex {
    fn build(rules: &[Arc<FwRule>]) -> RuleIndex {
        let mut ix = RuleIndex::default();
        for (i, r) in rules.iter().enumerate() {
            let d = slot(r.direction);
            let other = match r.direction {
                Direction::In => &r.source,
                Direction::Out => &r.dest,
            };
            match other {
                Some(AddrSpec::Ip(ip)) => ix.exact[d].entry(*ip).or_default().push(i),
                _ => ix.rest[d].push(i),
            }
        }
        ix
    }

    /// In rule order: the rules of direction `dir` that can match a packet whose other end is
    /// `peer`.
    fn candidates(&self, dir: Direction, peer: IpAddr) -> impl Iterator<Item = usize> + '_ {
        let d = slot(dir);
        let exact = self.exact[d].get(&peer).map(Vec::as_slice).unwrap_or(&[]);
        Merge {
            a: &self.rest[d],
            b: exact,
        }
    }
}

/// Two ascending index lists merged into one ascending sequence.
struct Merge<'a> {
    a: &'a [usize],
    b: &'a [usize],
}

impl Iterator for Merge<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        let take_a = match (self.a.first(), self.b.first()) {
            (Some(x), Some(y)) => x < y,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let list = if take_a { &mut self.a } else { &mut self.b };
        let (first, rest) = list.split_first()?;
        *list = rest;
        Some(*first)
    }
}

/// How a packet is judged by a rule set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub accepted: bool,
    /// Index into `rules` of the deciding rule (None = the policy decided).
    pub rule: Option<usize>,
    /// False when the rule set is not enforced (then everything passes).
    pub enforced: bool,
}

impl FwFile {
    /// Judge a packet: first matching rule wins, else the direction's policy.
    pub fn decide(
        &self,
        dir: Direction,
        peer: IpAddr,
        local: Option<IpAddr>,
        proto: Proto,
        port: u16,
    ) -> Decision {
        if !self.enforced {
            return Decision {
                accepted: true,
                rule: None,
                enforced: false,
            };
        }
        self.decide_enforced(dir, peer, local, proto, port)
    }

    /// Judge a packet as Proxmox would once the rule set is enforced, whether it is or not.
    pub fn decide_enforced(
        &self,
        dir: Direction,
        peer: IpAddr,
        local: Option<IpAddr>,
        proto: Proto,
        port: u16,
    ) -> Decision {
        if let Some(i) = self
            .candidates(dir, peer)
            .find(|&i| self.rules[i].matches(dir, peer, local, proto, port))
        {
            return Decision {
                accepted: self.rules[i].accepts(),
                rule: Some(i),
                enforced: true,
            };
        }
        let policy = match dir {
            Direction::In => &self.options.policy_in.value,
            Direction::Out => &self.options.policy_out.value,
        };
        Decision {
            accepted: policy.accepts(),
            rule: None,
            enforced: true,
        }
    }

    /// In rule order, the indices of the rules of direction `dir` that can match a packet
    /// whose other end (the source for `In`, the destination for `Out`) is `peer`; the others
    /// cannot match it.
    pub fn candidates(&self, dir: Direction, peer: IpAddr) -> impl Iterator<Item = usize> + '_ {
        self.index
            .get_or_init(|| RuleIndex::build(&self.rules))
            .candidates(dir, peer)
    }

    /// Does the rule set have any rule of direction `dir`?
    pub fn has_direction(&self, dir: Direction) -> bool {
        let ix = self.index.get_or_init(|| RuleIndex::build(&self.rules));
        let d = slot(dir);
        !ix.rest[d].is_empty() || !ix.exact[d].is_empty()
    }

    pub fn vantage(&self) -> VantageRef {
        match self.scope {
            FwScope::Cluster => VantageRef::Host,
            FwScope::Vm(id) => VantageRef::Vm(id),
            FwScope::Lxc(id) => VantageRef::Lxc(id),
        }
    }
}

/// Every rule set the platform declares.
#[derive(Debug, Clone, Serialize)]
pub struct Firewall {
    /// `cluster.fw` (None when `.shared_volumes.firewall` is absent).
    pub cluster: Option<FwFile>,
    /// `<vmid>.fw`, in VM file order.
    pub vms: Vec<FwFile>,
    /// LXC rule sets, in LXC file order.
    pub lxcs: Vec<FwFile>,
    /// Guest → index of its first rule set in `vms` or `lxcs`.
    #[serde(skip)]
    by_guest: HashMap<VantageRef, usize>,
}

impl Firewall {
    fn new(cluster: Option<FwFile>, vms: Vec<FwFile>, lxcs: Vec<FwFile>) -> Firewall {
        let mut by_guest = HashMap::with_capacity(vms.len() + lxcs.len());
        for (i, f) in vms.iter().enumerate().chain(lxcs.iter().enumerate()) {
            by_guest.entry(f.vantage()).or_insert(i);
        }
        Firewall {
            cluster,
            vms,
            lxcs,
            by_guest,
        }
    }

    /// The rule set that filters `v`'s own traffic (the cluster file for the host).
    pub fn for_vantage(&self, v: VantageRef) -> Option<&FwFile> {
        let i = self.by_guest.get(&v);
        match v {
            VantageRef::Host => self.cluster.as_ref(),
            VantageRef::Vm(_) => i.map(|&i| &self.vms[i]),
            VantageRef::Lxc(_) => i.map(|&i| &self.lxcs[i]),
        }
    }

    /// Files `show firewall` prints: cluster.fw then each VM file.
    pub fn files(&self) -> impl Iterator<Item = &FwFile> {
        self.cluster.iter().chain(self.vms.iter())
    }
}

const PVE_DEFAULTS: &str = "Proxmox default (PVE/Firewall.pm: policy_in DROP, policy_out ACCEPT)";

/// Every rule set: cluster.fw, each VM's `<vmid>.fw`, each LXC's rules.
pub(crate) fn derive(raw: &RawConfig, notes: &mut Vec<String>) -> Firewall {
    // Each guest's own rules, once: its rule set and cluster.fw share them.
    let lxc_rules: Vec<Option<Vec<Arc<FwRule>>>> = raw
        .lxcs
        .iter()
        .map(|g| own_rules(g, RuleOrigin::Lxc { id: g.id.value }))
        .collect();
    let vm_rules: Vec<Option<Vec<Arc<FwRule>>>> = raw
        .vms
        .iter()
        .map(|g| own_rules(g, RuleOrigin::Vm { id: g.id.value }))
        .collect();
    let cluster = raw
        .hypervisor
        .firewall
        .as_ref()
        .map(|f| cluster_file(f, lxc_rules.iter().chain(vm_rules.iter()).flatten()));
    let mut stacks: HashMap<&str, &RawStack> = HashMap::new();
    for st in &raw.stacks {
        stacks.entry(st.name.as_str()).or_insert(st);
    }
    let vms = raw
        .vms
        .iter()
        .zip(vm_rules)
        .filter_map(|(g, own)| vm_file(raw, g, own?, &stacks, notes))
        .collect();
    let lxcs = raw
        .lxcs
        .iter()
        .zip(lxc_rules)
        .filter_map(|(g, own)| Some(lxc_file(g.id.value, own?)))
        .collect();
    Firewall::new(cluster, vms, lxcs)
}

/// A guest's own rules (`firewall.rules`), if it has a firewall section.
fn own_rules(g: &RawGuest, origin: RuleOrigin) -> Option<Vec<Arc<FwRule>>> {
    let fw = g.firewall.as_ref()?;
    Some(
        fw.rules
            .iter()
            .map(|r| Arc::new(FwRule::from_raw(r, origin.clone())))
            .collect(),
    )
}

/// `cluster.fw`: the global rules, then every guest's own rules (shared, not copied).
fn cluster_file<'a>(
    f: &RawClusterFirewall,
    guest_rules: impl Iterator<Item = &'a Vec<Arc<FwRule>>>,
) -> FwFile {
    let mut rules: Vec<Arc<FwRule>> = f
        .rules
        .iter()
        .map(|r| Arc::new(FwRule::from_raw(r, RuleOrigin::Global)))
        .collect();
    for r in guest_rules {
        rules.extend(r.iter().cloned());
    }
    let policy = |v: &Option<Val<String>>, def: Verdict| match v {
        Some(v) => (Val::new(FwAction::new(&v.value), v.prov.clone()), true),
        None => (pve_default(def), false),
    };
    let (policy_in, w1) = policy(&f.policy_in, Verdict::Drop);
    let (policy_out, w2) = policy(&f.policy_out, Verdict::Accept);
    FwFile {
        name: "cluster".to_string(),
        scope: FwScope::Cluster,
        options: FwOptions {
            enable: true,
            policy_in,
            policy_out,
            policies_written: w1 && w2,
        },
        rules,
        enforced: f.enabled.value,
        enforced_why: if f.enabled.value {
            "shared_volumes.firewall.enabled is true: the setup writes cluster.fw and starts pve-firewall; the rules filter the host's own traffic, not the guests'"
        } else {
            "shared_volumes.firewall.enabled is false: the setup runs `pve-firewall stop`"
        },
        written_by: "hypervisor_feature_setup_firewall.sh (setup and every `sync all`)",
        index: OnceLock::new(),
    }
}

/// A VM's `<vmid>.fw`: its own rules, then the production `firewall_rules` of each of its
/// `docker_stacks`. None for a VM without a firewall section.
fn vm_file(
    raw: &RawConfig,
    g: &RawGuest,
    mut rules: Vec<Arc<FwRule>>,
    stacks: &HashMap<&str, &RawStack>,
    notes: &mut Vec<String>,
) -> Option<FwFile> {
    let fw = g.firewall.as_ref()?;
    let id = g.id.value;
    for sref in &g.docker_stacks {
        match stacks.get(sref.name.value.as_str()) {
            Some(s) => {
                if let Some(env) = &s.production {
                    rules.extend(env.firewall_rules.iter().map(|r| {
                        Arc::new(FwRule::from_raw(
                            r,
                            RuleOrigin::Stack {
                                name: s.name.clone(),
                                vm: id,
                            },
                        ))
                    }));
                }
            }
            None => notes.push(format!(
                "vm:{id} lists docker stack `{}` but {}/{}/phoenix.json does not exist",
                sref.name.value,
                raw.stacks_dir.display(),
                sref.name.value
            )),
        }
    }
    let enabled = fw.enabled.as_ref().map(|e| e.value).unwrap_or(false);
    Some(FwFile {
        name: id.to_string(),
        scope: FwScope::Vm(id),
        options: FwOptions {
            enable: true,
            policy_in: pve_default(Verdict::Drop),
            policy_out: pve_default(Verdict::Accept),
            policies_written: false,
        },
        rules,
        enforced: enabled,
        enforced_why: if enabled {
            "vm-manager writes `enable: 1` and sets firewall=1 on net0; no policies are written, so policy_in DROP / policy_out ACCEPT apply"
        } else {
            "firewall.enabled is not true: vm-manager runs `qm set --firewall 0` (not a valid option), so the state depends on the host; treated as not enforced"
        },
        written_by:
            "vm-manager.sh apply_vm_firewall_rules (VM create/converge only, never `sync all`)",
        index: OnceLock::new(),
    })
}

/// An LXC's rules: created through the API but never enabled, so not enforced.
fn lxc_file(id: u32, rules: Vec<Arc<FwRule>>) -> FwFile {
    FwFile {
        name: id.to_string(),
        scope: FwScope::Lxc(id),
        options: FwOptions {
            enable: false,
            policy_in: pve_default(Verdict::Drop),
            policy_out: pve_default(Verdict::Accept),
            policies_written: false,
        },
        rules,
        enforced: false,
        enforced_why: "lxc-manager creates the rules through pvesh but never sets the container's [OPTIONS] enable, whose Proxmox default is 0: the rules are inert unless an operator enabled them (check `pvesh get /nodes/<node>/lxc/<id>/firewall/options`)",
        written_by: "lxc-manager.sh apply_lxc_firewall_rules (LXC orchestration only; pvesh prepends, so the file order is reversed)",
        index: OnceLock::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        dir: Direction,
        proto: Option<&str>,
        port: Option<&str>,
        src: Option<&str>,
        dst: Option<&str>,
    ) -> Arc<FwRule> {
        Arc::new(FwRule {
            direction: dir,
            action: "ACCEPT".into(),
            proto: proto.map(Into::into),
            dport_text: port.map(Into::into),
            dport: port.and_then(PortSet::parse),
            source: src.and_then(AddrSpec::parse),
            source_text: src.map(Into::into),
            dest: dst.and_then(AddrSpec::parse),
            dest_text: dst.map(Into::into),
            iface: None,
            comment: None,
            origin: RuleOrigin::Global,
            prov: Provenance::default(),
        })
    }

    #[test]
    fn actions_are_read_in_any_case_and_kept_as_written() {
        let a = FwAction::new("accept");
        assert_eq!(a.verdict(), Some(Verdict::Accept));
        assert!(a.accepts());
        assert_eq!((a.as_written(), a.upper().as_str()), ("accept", "ACCEPT"));
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"accept\"");
        assert_eq!(a, FwAction::from(Verdict::Accept));
        assert_eq!(FwAction::new("Reject").verdict(), Some(Verdict::Reject));
        assert!(!FwAction::new("DROP").accepts());
        // Anything else is no verdict, and accepts nothing.
        let odd = FwAction::new("ALLOW");
        assert_eq!(odd.verdict(), None);
        assert!(!odd.accepts());
        assert_ne!(odd, FwAction::new("ACCEPT"));
    }

    #[test]
    fn first_match_then_policy() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let f = FwFile {
            name: "1002".into(),
            scope: FwScope::Vm(1002),
            options: FwOptions {
                enable: true,
                policy_in: Val::new("DROP".into(), Provenance::default()),
                policy_out: Val::new("ACCEPT".into(), Provenance::default()),
                policies_written: false,
            },
            rules: vec![
                rule(
                    Direction::In,
                    Some("tcp"),
                    Some("9001"),
                    Some("10.0.0.111"),
                    None,
                ),
                rule(Direction::In, Some("tcp"), Some("6333,6334"), None, None),
            ],
            enforced: true,
            enforced_why: "",
            written_by: "",
            index: OnceLock::new(),
        };
        let d = f.decide(
            Direction::In,
            ip("10.0.0.111"),
            Some(ip("10.0.0.102")),
            Proto::Tcp,
            9001,
        );
        assert_eq!((d.accepted, d.rule), (true, Some(0)));
        let d = f.decide(
            Direction::In,
            ip("10.0.0.12"),
            Some(ip("10.0.0.102")),
            Proto::Tcp,
            9001,
        );
        assert_eq!((d.accepted, d.rule), (false, None));
        assert!(
            f.decide(Direction::In, ip("10.9.9.9"), None, Proto::Tcp, 6334)
                .accepted
        );
        assert!(
            !f.decide(Direction::In, ip("10.9.9.9"), None, Proto::Udp, 6334)
                .accepted
        );
        assert!(
            f.decide(Direction::Out, ip("10.9.9.9"), None, Proto::Tcp, 1)
                .accepted
        );
    }
}

/// One side's judgement of a flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    /// The rule set's name (`cluster`, `1002`, `102`).
    pub file: String,
    pub scope: FwScope,
    pub decision: Decision,
}

/// A flow judged by both ends: the source's OUT rules and the destination's IN rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flow {
    pub from: VantageRef,
    pub to: IpAddr,
    pub proto: Proto,
    pub port: u16,
    /// The source's rule set (None when it has none: nothing filters).
    pub out: Option<Side>,
    /// The destination's rule set (None when the destination is unknown or has none).
    pub inbound: Option<Side>,
    /// Both enforced sides accept.
    pub allowed: bool,
}

impl crate::model::Intended {
    /// Judge a flow from `from` to `to:port` with Proxmox semantics on both ends.
    pub fn flow(&self, from: VantageRef, to: IpAddr, proto: Proto, port: u16) -> Flow {
        let src_ip = self.node(from).and_then(|n| n.ip_addr());
        let out = self.firewall.for_vantage(from).map(|f| Side {
            file: f.name.clone(),
            scope: f.scope,
            decision: f.decide(Direction::Out, to, src_ip, proto, port),
        });
        let dst = self.node_by_ip(to).map(|n| n.vantage);
        let inbound = dst.and_then(|v| self.firewall.for_vantage(v)).map(|f| {
            let peer = src_ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
            Side {
                file: f.name.clone(),
                scope: f.scope,
                decision: f.decide(Direction::In, peer, Some(to), proto, port),
            }
        });
        let ok = |s: &Option<Side>| s.as_ref().is_none_or(|s| s.decision.accepted);
        Flow {
            from,
            to,
            proto,
            port,
            allowed: ok(&out) && ok(&inbound),
            out,
            inbound,
        }
    }
}

/// A policy Proxmox applies when the file does not write one.
fn pve_default(policy: Verdict) -> Val<FwAction> {
    Val::new(
        policy.into(),
        Provenance::platform("pve-firewall", PVE_DEFAULTS),
    )
}
