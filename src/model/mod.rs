//! The intended state derived from the configs: nodes, DNS records, Traefik routes, firewall,
//! certificates and stacks, each value with its provenance.
//!
//! Derivations follow the platform's generators exactly (see `docs/config.md` and the
//! submodules); where a generator hard-codes an address the model also records what the
//! config implies, so that a config with other addresses (the lab) still works.

use crate::config::{GuestKind, IpSpec, Provenance, RawConfig, RawGuest, SiteVantage, Val};
use crate::error::Error;
use crate::observe::{Proto, Scheme, VantageRef};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

pub mod clones;
pub mod dns;
pub mod firewall;
pub mod render;
pub mod routes;
pub mod stacks;

pub use dns::{Dns, DnsRecord, DnsRule};
pub use firewall::{
    Decision, Firewall, Flow, FwAction, FwFile, FwRule, FwScope, RuleOrigin, Side, Verdict,
};
pub use routes::{LabelRouter, Route, Routes};
pub use stacks::{Cert, Stack, StackDeployment, StackService};

/// The kind of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Host,
    Lxc,
    Vm,
}

/// A service a node is meant to listen on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    /// `dnsmasq`, `nginx`, `traefik-web`, `step-ca`, `portainer`, `portainer-agent`, `qdrant`, ...
    pub name: String,
    pub port: Val<u16>,
    pub proto: Proto,
    /// Application protocol spoken on the port: `dns`, `http`, `https`, `nfs`.
    pub scheme: Scheme,
}

/// The host, an LXC or a VM.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub vantage: VantageRef,
    pub kind: NodeKind,
    pub id: Option<u32>,
    pub name: Option<Val<String>>,
    /// None for `dhcp` or a guest without network_config.
    pub ip: Option<Val<IpAddr>>,
    pub prefix: Option<u8>,
    pub dhcp: bool,
    /// The resolvers the node is meant to use, in order.
    pub nameservers: Vec<Val<IpAddr>>,
    /// Where `nameservers` come from, in words (`network_config.nameservers`, `inherited from
    /// lxc:900 through clone_from_ctid`, ...).
    pub nameservers_from: String,
    pub services: Vec<Service>,
    pub traefik_service: Option<(Val<String>, Val<u16>)>,
    pub portainer_role: Option<Val<String>>,
    pub docker_stacks: Vec<Val<String>>,
    pub features: Vec<String>,
    pub is_template: bool,
    pub prov: Provenance,
}

impl Node {
    pub fn name_str(&self) -> &str {
        self.name.as_ref().map(|n| n.value.as_str()).unwrap_or("")
    }

    pub fn ip_addr(&self) -> Option<IpAddr> {
        self.ip.as_ref().map(|v| v.value)
    }
}

/// Resolved fixed ports (site file, else config, else the platform's constant).
#[derive(Debug, Clone, Serialize)]
pub struct Ports {
    pub dns: Val<u16>,
    pub gateway: Val<u16>,
    pub router: Val<u16>,
    pub ca: Val<u16>,
    pub portainer: Val<u16>,
    pub agent: Val<u16>,
}

/// The NGINX gateway (`generate_nginx_gateway_config.sh` v3).
#[derive(Debug, Clone, Serialize)]
pub struct Gateway {
    pub lxc: u32,
    pub ip: Val<IpAddr>,
    /// The TLS listener (443).
    pub listen: Val<u16>,
    /// The plain HTTP listener (80: ACME webroot and a 301 redirect).
    pub http_port: u16,
    /// `server_name nginx.<domain> portainer.<domain>`.
    pub server_names: Vec<String>,
    /// `ssl_certificate /etc/nginx/ssl/nginx.<domain>.crt`.
    pub ssl_certificate: String,
    /// Index into `Intended::certs` of the manifest entry that issues the gateway cert.
    pub cert: Option<usize>,
    /// `proxy_pass` derived from the Traefik LXC's IP and the router port.
    pub proxy_pass: String,
    pub upstream: Option<SocketAddr>,
    /// What the generator literally writes (`http://10.0.0.12:80`).
    pub proxy_pass_platform: String,
    /// How the gateway LXC was found.
    pub found_by: String,
}

/// Traefik (LXC 102).
#[derive(Debug, Clone, Serialize)]
pub struct Router {
    pub lxc: u32,
    pub ip: Val<IpAddr>,
    /// The `web` entrypoint port the gateway proxies to.
    pub port: Val<u16>,
    /// Every entrypoint of the static config: name → port.
    pub entrypoints: Vec<(String, Option<u16>)>,
    pub providers: Vec<String>,
    pub cert_resolvers: Vec<String>,
    /// `http.routers.<name>` blocks written in the static file (Traefik ignores them there).
    pub static_routers: Vec<String>,
    pub found_by: String,
}

/// The step-ca endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct CaEndpoint {
    pub lxc: u32,
    pub ip: Val<IpAddr>,
    pub port: Val<u16>,
    /// `step_ca.dns_name`, else `ca.<domain>`.
    pub dns_name: Val<String>,
    /// The URL the platform's clients use (`https://10.0.0.10:9000`, hard-coded in scripts).
    pub url_platform: String,
    pub found_by: String,
}

/// The Portainer server VM.
#[derive(Debug, Clone, Serialize)]
pub struct PortainerServer {
    pub vm: u32,
    pub ip: Val<IpAddr>,
    /// HTTPS API (9443).
    pub port: Val<u16>,
    /// `portainer_api.portainer_hostname`, else `portainer.<domain>`.
    pub hostname: Val<String>,
}

/// A Portainer agent VM.
#[derive(Debug, Clone, Serialize)]
pub struct PortainerAgent {
    pub vm: u32,
    pub ip: Val<IpAddr>,
    pub port: Val<u16>,
    pub hostname: Option<Val<String>>,
}

/// A platform subnet shorter than this (IPv4) is not taken as a probe scope (`lint` says so).
pub const MIN_SCOPE_PREFIX_V4: u8 = 16;
/// A platform subnet shorter than this (IPv6) is not taken as a probe scope.
pub const MIN_SCOPE_PREFIX_V6: u8 = 48;

/// The intended state of the platform.
#[derive(Debug, Clone, Serialize)]
pub struct Intended {
    pub config_dir: PathBuf,
    pub domain: Val<String>,
    pub host: Node,
    /// LXCs (file order), then VMs (file order).
    pub guests: Vec<Node>,
    pub ports: Ports,
    pub dns: Dns,
    pub routes: Routes,
    pub firewall: Firewall,
    pub certs: Vec<Cert>,
    pub stacks: Vec<Stack>,
    pub gateway: Option<Gateway>,
    pub router: Option<Router>,
    pub ca: Option<CaEndpoint>,
    pub portainer: Option<PortainerServer>,
    pub agents: Vec<PortainerAgent>,
    /// Traefik's static config as read (entrypoints, providers, resolvers with provenance).
    pub traefik_static: Option<crate::config::TraefikStatic>,
    /// `[paths]` of the site file (variables for probes).
    pub paths: BTreeMap<String, Val<String>>,
    /// `[vantage."<ref>"]` of the site file.
    pub vantages: BTreeMap<String, SiteVantage>,
    /// The platform's subnet(s) (`network.default_subnet`, the host's CIDR).
    pub subnets: Vec<ipnet::IpNet>,
    pub notes: Vec<String>,
    /// Older config shapes read as the platform's scripts read them (see `config::Assumption`).
    pub assumptions: Vec<crate::config::Assumption>,
    /// `.network.interfaces.dns_nameservers`: what the host setup writes to
    /// `/etc/network/interfaces.d/50-vmbr0.cfg` as `dns-nameservers` (after `127.0.0.1`).
    pub host_interface_nameservers: Vec<Val<IpAddr>>,
    /// Clone chains (`clone_from_ctid` / `clone_from_vmid`) that loop back on themselves, each
    /// once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clone_cycles: Vec<clones::CloneCycle>,
    /// The LXCs' `mount_points` (host path → container path), where a guest sees a host file.
    #[serde(skip)]
    pub mounts: Vec<Mount>,
    /// Lookups by key, built once the state is derived.
    #[serde(skip)]
    index: Index,
}

/// What the model is looked up by: guests by vantage and by address, stacks by name. Each key
/// maps to the first node or stack in model order, as a front-to-back scan would find it.
#[derive(Debug, Clone, Default)]
struct Index {
    guests: HashMap<VantageRef, usize>,
    /// `None` is the host.
    by_ip: HashMap<IpAddr, Option<usize>>,
    stacks: HashMap<String, usize>,
}

impl Index {
    fn build(host: &Node, guests: &[Node], stacks: &[Stack]) -> Index {
        let mut ix = Index::default();
        if let Some(ip) = host.ip_addr() {
            ix.by_ip.insert(ip, None);
        }
        for (i, g) in guests.iter().enumerate() {
            ix.guests.entry(g.vantage).or_insert(i);
            if let Some(ip) = g.ip_addr() {
                ix.by_ip.entry(ip).or_insert(Some(i));
            }
        }
        for (i, s) in stacks.iter().enumerate() {
            ix.stacks.entry(s.name.clone()).or_insert(i);
        }
        ix
    }
}

impl Intended {
    /// Derive the intended state from the raw config.
    pub fn from_raw(raw: &RawConfig) -> Result<Intended, Error> {
        build(raw)
    }

    pub fn node(&self, v: VantageRef) -> Option<&Node> {
        match v {
            VantageRef::Host => Some(&self.host),
            _ => self.index.guests.get(&v).map(|&i| &self.guests[i]),
        }
    }

    /// The host, then every guest.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        std::iter::once(&self.host).chain(self.guests.iter())
    }

    pub fn lxc(&self, id: u32) -> Option<&Node> {
        self.node(VantageRef::Lxc(id))
    }

    pub fn vm(&self, id: u32) -> Option<&Node> {
        self.node(VantageRef::Vm(id))
    }

    /// The node that owns `ip` (host or guest).
    pub fn node_by_ip(&self, ip: IpAddr) -> Option<&Node> {
        self.index.by_ip.get(&ip).map(|i| match i {
            None => &self.host,
            Some(i) => &self.guests[*i],
        })
    }

    /// The fully qualified name `<label>.<domain>`.
    pub fn fqdn(&self, label: &str) -> String {
        format!("{label}.{}", self.domain.value)
    }

    /// A stack by name.
    pub fn stack(&self, name: &str) -> Option<&Stack> {
        self.index.stacks.get(name).map(|&i| &self.stacks[i])
    }
}

fn port_of(
    raw: &RawConfig,
    key: &str,
    config: Option<Val<u16>>,
    default: u16,
    why: &str,
) -> Val<u16> {
    if let Some(p) = raw.site.ports.get(key) {
        return p.clone();
    }
    config.unwrap_or_else(|| {
        let (script, what) = why.split_once('|').unwrap_or((why, ""));
        Val::new(default, Provenance::platform(script, what))
    })
}

fn static_ip(g: &RawGuest) -> Option<Val<IpAddr>> {
    let v = g.ip.as_ref()?;
    Some(Val::new(v.value.ip()?, v.prov.clone()))
}

fn parse_ns(list: &[Val<String>]) -> Vec<Val<IpAddr>> {
    list.iter()
        .filter_map(|v| {
            IpSpec::parse(&v.value)
                .and_then(|s| s.ip())
                .map(|ip| Val::new(ip, v.prov.clone()))
        })
        .collect()
}

/// A guest's nameservers: its own, else inherited through its clone chain (a `pct clone`
/// keeps the source's resolver settings; the platform sets them only when the key exists).
/// `ancestor` is the nearest guest up the chain that sets them ([`clones::walk`]).
fn guest_nameservers(
    g: &RawGuest,
    ancestor: Option<&RawGuest>,
    host_ip: &Val<IpAddr>,
) -> (Vec<Val<IpAddr>>, String) {
    if !g.nameservers.is_empty() {
        return (parse_ns(&g.nameservers), "network_config".to_string());
    }
    if let Some(p) = ancestor {
        return (
            parse_ns(&p.nameservers),
            format!(
                "inherited from {}:{} through {}",
                g.kind.as_str(),
                p.id.value,
                clones::clone_key(g.kind)
            ),
        );
    }
    match g.kind {
        // vm-manager always runs `qm set --nameserver <host>`.
        GuestKind::Vm => (
            vec![Val::new(
                host_ip.value,
                Provenance::platform("vm-manager.sh", "qm set --nameserver (the host's dnsmasq)"),
            )],
            "vm-manager forces the host's dnsmasq".to_string(),
        ),
        GuestKind::Lxc => (
            Vec::new(),
            "not set (the container keeps its template's resolver)".to_string(),
        ),
    }
}

fn build(raw: &RawConfig) -> Result<Intended, Error> {
    let mut notes = raw.notes.clone();
    let domain = raw.hypervisor.domain.clone();
    if domain.value != "internal.thinkheads.ai" {
        notes.push(format!(
            "domain_name is {}: the platform's DNS and Traefik generators hard-code internal.thinkheads.ai; the model uses the configured domain",
            domain.value
        ));
    }
    let (host_ip, host_prefix) = match raw.hypervisor.host_address.value {
        IpSpec::Static { ip, prefix } => (
            Val::new(ip, raw.hypervisor.host_address.prov.clone()),
            prefix,
        ),
        IpSpec::Dhcp => {
            return Err(Error::input(format!(
                "{}: the host address must be static, not dhcp",
                raw.hypervisor.host_address.prov
            )))
        }
    };
    let ports = ports(raw);
    let host = host_node(raw, &host_ip, host_prefix, &ports);
    let lxc_chains = clones::walk(&raw.lxcs, |g| !g.nameservers.is_empty());
    let vm_chains = clones::walk(&raw.vms, |g| !g.nameservers.is_empty());
    let mut guests = guest_nodes(raw, &lxc_chains, &vm_chains, &host_ip);

    let dns = dns::derive(raw, &domain.value, &host, ports.dns.clone(), &mut notes);
    let routes = routes::derive(raw, &domain.value, &mut notes);
    let firewall = firewall::derive(raw, &mut notes);
    let certs = stacks::certs(raw);
    let stacks = stacks::stacks(raw, &mut notes)?;

    let router = router(raw, &ports);
    if router.is_none() {
        notes.push(
            "no Traefik LXC found (feature `traefik` or a name containing `traefik`)".to_string(),
        );
    }
    let gateway = gateway(raw, &domain.value, &ports, router.as_ref(), &certs);
    let ca = ca(raw, &domain, &ports);
    let portainer = portainer(raw, &domain, &ports);
    let agents = agents(raw, &ports);
    let components = Components {
        gateway: gateway.as_ref(),
        router: router.as_ref(),
        ca: ca.as_ref(),
        portainer: portainer.as_ref(),
        agents: &agents,
        stacks: &stacks,
    };
    components.add_services(&mut guests);

    let mut clone_cycles = clones::cycles(&raw.lxcs, &lxc_chains);
    clone_cycles.extend(clones::cycles(&raw.vms, &vm_chains));
    let index = Index::build(&host, &guests, &stacks);
    Ok(Intended {
        config_dir: raw.config_dir.clone(),
        domain,
        subnets: subnets(raw, &host_ip, host_prefix),
        host,
        guests,
        ports,
        dns,
        routes,
        firewall,
        certs,
        stacks,
        gateway,
        router,
        ca,
        portainer,
        agents,
        traefik_static: raw.traefik.clone(),
        paths: raw.site.paths.clone(),
        vantages: raw.site.vantages.clone(),
        notes,
        assumptions: raw.assumptions.clone(),
        host_interface_nameservers: parse_ns(&raw.hypervisor.dns_nameservers),
        clone_cycles,
        mounts: mounts(raw),
        index,
    })
}

/// A host directory mounted into a guest (`mount_points` of `phoenix_lxc_configs.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub guest: VantageRef,
    pub host_path: String,
    pub container_path: String,
}

fn mounts(raw: &RawConfig) -> Vec<Mount> {
    raw.lxcs
        .iter()
        .flat_map(|g| {
            g.mount_points.iter().map(|mp| Mount {
                guest: VantageRef::Lxc(g.id.value),
                host_path: mp.host_path.value.clone(),
                container_path: mp.container_path.value.clone(),
            })
        })
        .collect()
}

/// The fixed ports: the site file's `[ports]`, else the config, else the platform's constant.
fn ports(raw: &RawConfig) -> Ports {
    Ports {
        dns: port_of(
            raw,
            "dns",
            None,
            53,
            "hypervisor_feature_setup_dns_server.sh|port=53",
        ),
        gateway: port_of(
            raw,
            "gateway",
            None,
            443,
            "generate_nginx_gateway_config.sh|listen 443 ssl",
        ),
        router: port_of(
            raw,
            "router",
            raw.traefik.as_ref().and_then(|t| {
                let ep = t.entrypoint("web")?;
                Some(Val::new(ep.port?, ep.address.prov.clone()))
            }),
            80,
            "traefik.yml.template|entryPoints.web :80",
        ),
        ca: port_of(
            raw,
            "ca",
            raw.lxcs.iter().find_map(|g| {
                g.traefik_service
                    .as_ref()
                    .filter(|t| t.name.value == "ca")
                    .map(|t| t.port.clone())
            }),
            9000,
            "phoenix_hypervisor_lxc_103.sh|CA_ADDRESS=\":9000\"",
        ),
        portainer: port_of(
            raw,
            "portainer",
            raw.hypervisor.portainer_server_port.clone(),
            9443,
            "portainer-manager.sh|9443/tcp",
        ),
        agent: port_of(
            raw,
            "agent",
            raw.hypervisor.portainer_agent_port.clone(),
            9001,
            "portainer-manager.sh|-p 9001:9001",
        ),
    }
}

/// The Proxmox host: its address, resolvers (the DNS setup's resolv.conf, else the
/// interface's), dnsmasq when the DNS setup runs, and NFS.
fn host_node(raw: &RawConfig, host_ip: &Val<IpAddr>, prefix: Option<u8>, ports: &Ports) -> Node {
    let dns_enabled = raw
        .hypervisor
        .dns_server
        .as_ref()
        .filter(|d| d.enabled.value);
    let (nameservers, nameservers_from) = match dns_enabled {
        Some(d) => {
            let mut v = vec![host_ip.clone()];
            v.extend(parse_ns(&d.upstream_servers));
            (
                v,
                "resolv.conf written by the DNS setup: the host's dnsmasq, then upstream_servers"
                    .to_string(),
            )
        }
        None => (
            parse_ns(&raw.hypervisor.dns_nameservers),
            "network.interfaces.dns_nameservers".to_string(),
        ),
    };
    let mut services = Vec::new();
    if dns_enabled.is_some() {
        for proto in [Proto::Udp, Proto::Tcp] {
            services.push(Service {
                name: "dnsmasq".into(),
                port: ports.dns.clone(),
                proto,
                scheme: Scheme::Dns,
            });
        }
    }
    services.push(Service {
        name: "nfs".into(),
        port: Val::new(
            2049,
            Provenance::platform("hypervisor_feature_setup_nfs.sh", "nfs-kernel-server"),
        ),
        proto: Proto::Tcp,
        scheme: Scheme::Nfs,
    });
    Node {
        vantage: VantageRef::Host,
        kind: NodeKind::Host,
        id: None,
        name: None,
        ip: Some(host_ip.clone()),
        prefix,
        dhcp: false,
        nameservers,
        nameservers_from,
        services,
        traefik_service: None,
        portainer_role: None,
        docker_stacks: Vec::new(),
        features: Vec::new(),
        is_template: false,
        prov: raw.hypervisor.host_address.prov.clone(),
    }
}

/// Every LXC (file order), then every VM, with the resolvers it has or inherits through its
/// clone chain and its `traefik_service`.
fn guest_nodes(
    raw: &RawConfig,
    lxc_chains: &clones::Chains,
    vm_chains: &clones::Chains,
    host_ip: &Val<IpAddr>,
) -> Vec<Node> {
    let ancestors = lxc_chains
        .nearest
        .iter()
        .map(|a| a.map(|i| &raw.lxcs[i]))
        .chain(vm_chains.nearest.iter().map(|a| a.map(|i| &raw.vms[i])));
    raw.lxcs
        .iter()
        .chain(raw.vms.iter())
        .zip(ancestors)
        .map(|(g, ancestor)| guest_node(g, ancestor, host_ip))
        .collect()
}

/// One guest as the model sees it.
fn guest_node(g: &RawGuest, ancestor: Option<&RawGuest>, host_ip: &Val<IpAddr>) -> Node {
    let (nameservers, nameservers_from) = guest_nameservers(g, ancestor, host_ip);
    let services = g
        .traefik_service
        .iter()
        .map(|ts| Service {
            name: ts.name.value.clone(),
            port: ts.port.clone(),
            proto: Proto::Tcp,
            scheme: match ts.port.value {
                443 | 9000 | 9443 | 9001 => Scheme::Https,
                _ => Scheme::Http,
            },
        })
        .collect();
    Node {
        vantage: match g.kind {
            GuestKind::Lxc => VantageRef::Lxc(g.id.value),
            GuestKind::Vm => VantageRef::Vm(g.id.value),
        },
        kind: match g.kind {
            GuestKind::Lxc => NodeKind::Lxc,
            GuestKind::Vm => NodeKind::Vm,
        },
        id: Some(g.id.value),
        name: g.name.clone(),
        ip: static_ip(g),
        prefix: g.ip.as_ref().and_then(|i| match i.value {
            IpSpec::Static { prefix, .. } => prefix,
            IpSpec::Dhcp => None,
        }),
        dhcp: g.ip.as_ref().is_some_and(|i| i.value == IpSpec::Dhcp),
        nameservers,
        nameservers_from,
        services,
        traefik_service: g
            .traefik_service
            .as_ref()
            .map(|t| (t.name.clone(), t.port.clone())),
        portainer_role: g.portainer_role.clone(),
        docker_stacks: g.docker_stacks.iter().map(|s| s.name.clone()).collect(),
        features: g.features.iter().map(|f| f.value.clone()).collect(),
        is_template: g.is_template,
        prov: g.prov.clone(),
    }
}

/// A way to recognise a guest, named for the evidence.
type Way<'w> = (&'static str, &'w dyn Fn(&RawGuest) -> bool);

/// The first LXC (file order) that `how` finds with a static address, trying each way in turn:
/// the way that found it, the guest and its address.
fn find_lxc<'a>(
    raw: &'a RawConfig,
    ways: &[Way<'_>],
) -> Option<(&'static str, &'a RawGuest, Val<IpAddr>)> {
    ways.iter().find_map(|(why, pred)| {
        let g = raw.lxcs.iter().find(|g| pred(g))?;
        Some((*why, g, static_ip(g)?))
    })
}

fn lxc_named(g: &RawGuest, name: &str) -> bool {
    g.name.as_ref().is_some_and(|n| n.value == name)
}

fn lxc_service(g: &RawGuest, name: &str) -> bool {
    g.traefik_service
        .as_ref()
        .is_some_and(|t| t.name.value == name)
}

/// Traefik: the LXC with the `traefik` feature, else one whose name contains `traefik`.
fn router(raw: &RawConfig, ports: &Ports) -> Option<Router> {
    let (why, g, ip) = find_lxc(
        raw,
        &[
            ("feature `traefik`", &|g| g.has_feature("traefik")),
            ("name contains `traefik`", &|g| {
                g.name
                    .as_ref()
                    .is_some_and(|n| n.value.to_ascii_lowercase().contains("traefik"))
            }),
        ],
    )?;
    let t = raw.traefik.as_ref();
    let values = |f: fn(&crate::config::TraefikStatic) -> &Vec<Val<String>>| -> Vec<String> {
        t.map(|t| f(t).iter().map(|p| p.value.clone()).collect())
            .unwrap_or_default()
    };
    Some(Router {
        lxc: g.id.value,
        ip,
        port: ports.router.clone(),
        entrypoints: t
            .map(|t| {
                t.entrypoints
                    .iter()
                    .map(|e| (e.name.clone(), e.port))
                    .collect()
            })
            .unwrap_or_else(|| vec![("web".to_string(), Some(80))]),
        providers: match t {
            Some(_) => values(|t| &t.providers),
            None => vec!["file".to_string()],
        },
        cert_resolvers: values(|t| &t.cert_resolvers),
        static_routers: values(|t| &t.static_routers),
        found_by: why.to_string(),
    })
}

/// The NGINX gateway: the LXC named as the DNS generator looks it up, else the one with
/// `traefik_service` `nginx`; it proxies to Traefik's `web` entrypoint.
fn gateway(
    raw: &RawConfig,
    domain: &str,
    ports: &Ports,
    router: Option<&Router>,
    certs: &[Cert],
) -> Option<Gateway> {
    let (why, g, ip) = find_lxc(
        raw,
        &[
            (
                "name \"Nginx-Phoenix\" (the DNS generator's lookup)",
                &|g| lxc_named(g, dns::GATEWAY_LXC_NAME),
            ),
            ("traefik_service `nginx`", &|g| lxc_service(g, "nginx")),
        ],
    )?;
    let upstream = router.map(|r| SocketAddr::new(r.ip.value, r.port.value));
    let cert_cn = format!("nginx.{domain}");
    Some(Gateway {
        lxc: g.id.value,
        ip,
        listen: ports.gateway.clone(),
        http_port: 80,
        server_names: vec![cert_cn.clone(), format!("portainer.{domain}")],
        ssl_certificate: format!("/etc/nginx/ssl/{cert_cn}.crt"),
        cert: certs.iter().position(|c| c.common_name.value == cert_cn),
        proxy_pass: match upstream {
            Some(u) => format!("http://{u}"),
            None => "http://10.0.0.12:80".to_string(),
        },
        upstream,
        proxy_pass_platform: "http://10.0.0.12:80".to_string(),
        found_by: why.to_string(),
    })
}

/// step-ca: the LXC with `traefik_service` `ca`, else the one with the `step_ca` feature.
fn ca(raw: &RawConfig, domain: &Val<String>, ports: &Ports) -> Option<CaEndpoint> {
    let (why, g, ip) = find_lxc(
        raw,
        &[
            ("traefik_service `ca`", &|g| lxc_service(g, "ca")),
            ("feature `step_ca`", &|g| g.has_feature("step_ca")),
        ],
    )?;
    Some(CaEndpoint {
        lxc: g.id.value,
        ip,
        port: ports.ca.clone(),
        dns_name: raw
            .hypervisor
            .step_ca_dns_name
            .clone()
            .unwrap_or_else(|| Val::new(format!("ca.{}", domain.value), domain.prov.clone())),
        url_platform: "https://10.0.0.10:9000".to_string(),
        found_by: why.to_string(),
    })
}

fn has_role(g: &RawGuest, role: &str) -> bool {
    g.portainer_role.as_ref().is_some_and(|r| r.value == role)
}

/// The Portainer server: the first VM with `portainer_role` primary and a static address.
fn portainer(raw: &RawConfig, domain: &Val<String>, ports: &Ports) -> Option<PortainerServer> {
    let g = raw.vms.iter().find(|g| has_role(g, "primary"))?;
    Some(PortainerServer {
        vm: g.id.value,
        ip: static_ip(g)?,
        port: ports.portainer.clone(),
        hostname: raw
            .hypervisor
            .portainer_hostname
            .clone()
            .unwrap_or_else(|| {
                Val::new(format!("portainer.{}", domain.value), domain.prov.clone())
            }),
    })
}

/// Every VM with `portainer_role` agent and a static address.
fn agents(raw: &RawConfig, ports: &Ports) -> Vec<PortainerAgent> {
    raw.vms
        .iter()
        .filter(|g| has_role(g, "agent"))
        .filter_map(|g| {
            Some(PortainerAgent {
                vm: g.id.value,
                ip: static_ip(g)?,
                port: ports.agent.clone(),
                hostname: g.portainer_agent_hostname.clone(),
            })
        })
        .collect()
}

/// The components found, whose well-known services are added to their guests.
struct Components<'a> {
    gateway: Option<&'a Gateway>,
    router: Option<&'a Router>,
    ca: Option<&'a CaEndpoint>,
    portainer: Option<&'a PortainerServer>,
    agents: &'a [PortainerAgent],
    stacks: &'a [Stack],
}

impl Components<'_> {
    /// Each component's services on its guest (a service already there by name and port is
    /// not added again): NGINX's listeners, Traefik's entrypoints, step-ca, Portainer, the
    /// agents and every stack service published through Traefik on its VMs.
    fn add_services(&self, guests: &mut [Node]) {
        let mut slot: HashMap<VantageRef, usize> = HashMap::new();
        for (i, g) in guests.iter().enumerate() {
            slot.entry(g.vantage).or_insert(i);
        }
        let mut add = |v: VantageRef, name: &str, port: Val<u16>, scheme: Scheme| {
            let Some(n) = slot.get(&v).map(|&i| &mut guests[i]) else {
                return;
            };
            if !n
                .services
                .iter()
                .any(|x| x.name == name && x.port.value == port.value)
            {
                n.services.push(Service {
                    name: name.into(),
                    port,
                    proto: Proto::Tcp,
                    scheme,
                });
            }
        };
        let plat = |p: u16, s: &str, w: &str| Val::new(p, Provenance::platform(s, w));
        if let Some(gw) = self.gateway {
            let v = VantageRef::Lxc(gw.lxc);
            add(v, "nginx-https", gw.listen.clone(), Scheme::Https);
            let http = plat(80, "generate_nginx_gateway_config.sh", "listen 80");
            add(v, "nginx-http", http, Scheme::Http);
        }
        if let Some(r) = self.router {
            for (name, port) in &r.entrypoints {
                if let Some(p) = port {
                    let pv = if name == "web" {
                        r.port.clone()
                    } else {
                        plat(*p, "traefik.yml.template", name)
                    };
                    add(
                        VantageRef::Lxc(r.lxc),
                        &format!("traefik-{name}"),
                        pv,
                        Scheme::Http,
                    );
                }
            }
        }
        if let Some(c) = self.ca {
            add(
                VantageRef::Lxc(c.lxc),
                "step-ca",
                c.port.clone(),
                Scheme::Https,
            );
        }
        if let Some(p) = self.portainer {
            add(
                VantageRef::Vm(p.vm),
                "portainer",
                p.port.clone(),
                Scheme::Https,
            );
            let http = plat(9000, "docker-compose.yml", "9000/tcp");
            add(VantageRef::Vm(p.vm), "portainer-http", http, Scheme::Http);
        }
        for a in self.agents {
            add(
                VantageRef::Vm(a.vm),
                "portainer-agent",
                a.port.clone(),
                Scheme::Https,
            );
        }
        for s in self.stacks {
            for d in &s.deployments {
                for sv in &s.services {
                    if let Some(p) = &sv.lb_port {
                        let scheme = sv.lb_scheme.as_ref().map_or(Scheme::Http, |x| x.value);
                        add(VantageRef::Vm(d.vm), &sv.name, p.clone(), scheme);
                    }
                }
            }
        }
    }
}

/// The platform's subnets: `network.default_subnet`, then the host's own network.
fn subnets(raw: &RawConfig, host_ip: &Val<IpAddr>, prefix: Option<u8>) -> Vec<ipnet::IpNet> {
    let mut subnets = Vec::new();
    if let Some(s) = &raw.hypervisor.default_subnet {
        if let Ok(n) = s.value.parse::<ipnet::IpNet>() {
            subnets.push(n);
        }
    }
    if let Some(p) = prefix {
        if let Ok(n) = ipnet::IpNet::new(host_ip.value, p) {
            let n = n.trunc();
            if !subnets.contains(&n) {
                subnets.push(n);
            }
        }
    }
    subnets
}

impl TryFrom<&RawConfig> for Intended {
    type Error = Error;
    fn try_from(raw: &RawConfig) -> Result<Intended, Error> {
        Intended::from_raw(raw)
    }
}

/// Read a config dir and derive its intended state.
pub fn load(
    config_dir: &std::path::Path,
    stacks_dir: Option<&std::path::Path>,
) -> Result<Intended, Error> {
    Intended::from_raw(&crate::config::load(config_dir, stacks_dir)?)
}

#[cfg(test)]
mod tests {
    //! Each component derivation alone, on the reference config changed by hand.
    use super::*;

    fn reference() -> RawConfig {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/configs/reference/etc"
        );
        crate::config::load(std::path::Path::new(dir), None).unwrap()
    }

    fn lxc(raw: &mut RawConfig, id: u32) -> &mut RawGuest {
        raw.lxcs.iter_mut().find(|g| g.id.value == id).unwrap()
    }

    #[test]
    fn router_by_feature_else_by_name() {
        let mut raw = reference();
        let ports = ports(&raw);
        let r = router(&raw, &ports).unwrap();
        assert_eq!((r.lxc, r.found_by.as_str()), (102, "feature `traefik`"));
        lxc(&mut raw, 102).features.clear();
        let r = router(&raw, &ports).unwrap();
        assert_eq!(
            (r.lxc, r.found_by.as_str()),
            (102, "name contains `traefik`")
        );
        lxc(&mut raw, 102).name = None;
        assert!(router(&raw, &ports).is_none());
    }

    #[test]
    fn gateway_by_name_else_by_service_and_proxies_to_the_router() {
        let mut raw = reference();
        let ports = ports(&raw);
        let r = router(&raw, &ports);
        let g = gateway(&raw, "d.test", &ports, r.as_ref(), &[]).unwrap();
        assert_eq!(g.lxc, 101);
        assert_eq!(g.server_names, ["nginx.d.test", "portainer.d.test"]);
        assert_eq!(g.proxy_pass, "http://10.0.0.12:80");
        assert_eq!(g.ssl_certificate, "/etc/nginx/ssl/nginx.d.test.crt");
        lxc(&mut raw, 101).name = None;
        let g = gateway(&raw, "d.test", &ports, None, &[]).unwrap();
        assert_eq!(
            (g.lxc, g.found_by.as_str()),
            (101, "traefik_service `nginx`")
        );
        assert_eq!(g.upstream, None);
    }

    #[test]
    fn ca_portainer_and_agents_need_a_static_address() {
        let mut raw = reference();
        let ports = ports(&raw);
        let domain = raw.hypervisor.domain.clone();
        let c = ca(&raw, &domain, &ports).unwrap();
        assert_eq!((c.lxc, c.port.value), (103, 9000));
        lxc(&mut raw, 103).ip = None;
        assert!(ca(&raw, &domain, &ports).is_none());
        let p = portainer(&raw, &domain, &ports).unwrap();
        assert_eq!(p.vm, 1001);
        let a = agents(&raw, &ports);
        assert_eq!(a.iter().map(|a| a.vm).collect::<Vec<_>>(), [1002]);
        for vm in &mut raw.vms {
            vm.ip = None;
        }
        assert!(portainer(&raw, &domain, &ports).is_none());
        assert!(agents(&raw, &ports).is_empty());
    }

    #[test]
    fn component_services_are_added_once_to_their_guests() {
        let raw = reference();
        let ports = ports(&raw);
        let host_ip = Val::new("10.0.0.13".parse().unwrap(), Provenance::default());
        let chains = clones::walk(&raw.lxcs, |g| !g.nameservers.is_empty());
        let vm_chains = clones::walk(&raw.vms, |g| !g.nameservers.is_empty());
        let mut guests = guest_nodes(&raw, &chains, &vm_chains, &host_ip);
        let gw = gateway(&raw, "d.test", &ports, None, &[]);
        let c = Components {
            gateway: gw.as_ref(),
            router: None,
            ca: None,
            portainer: None,
            agents: &[],
            stacks: &[],
        };
        c.add_services(&mut guests);
        c.add_services(&mut guests);
        let nginx = guests.iter().find(|g| g.id == Some(101)).unwrap();
        let names: Vec<_> = nginx.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.iter().filter(|n| **n == "nginx-https").count(), 1);
        assert_eq!(names.iter().filter(|n| **n == "nginx-http").count(), 1);
        let traefik = guests.iter().find(|g| g.id == Some(102)).unwrap();
        assert!(!traefik.services.iter().any(|s| s.name.starts_with("nginx")));
    }

    #[test]
    fn host_resolves_through_dnsmasq_only_when_the_dns_setup_runs() {
        let mut raw = reference();
        let ports = ports(&raw);
        let ip = Val::new("10.0.0.13".parse().unwrap(), Provenance::default());
        let h = host_node(&raw, &ip, Some(24), &ports);
        assert_eq!(h.nameservers[0].value, ip.value);
        assert!(h.services.iter().any(|s| s.name == "dnsmasq"));
        raw.hypervisor.dns_server.as_mut().unwrap().enabled.value = false;
        let h = host_node(&raw, &ip, Some(24), &ports);
        assert!(!h.services.iter().any(|s| s.name == "dnsmasq"));
        assert_eq!(h.nameservers_from, "network.interfaces.dns_nameservers");
        assert_eq!(
            subnets(&raw, &ip, Some(24)),
            ["10.0.0.0/24".parse::<ipnet::IpNet>().unwrap()]
        );
    }
}
