//! The intended state derived from the configs: nodes, DNS records, Traefik routes, firewall,
//! certificates and stacks, each value with its provenance.
//!
//! Derivations follow the platform's generators exactly (see `docs/config.md` and the
//! submodules); where a generator hard-codes an address the model also records what the
//! config implies, so that a config with other addresses (the lab) still works.

use crate::config::{GuestKind, IpSpec, Provenance, RawConfig, RawGuest, SiteVantage, Val};
use crate::error::Error;
use crate::observe::VantageRef;
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
pub use firewall::{Decision, Firewall, Flow, FwFile, FwRule, FwScope, RuleOrigin, Side};
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
    /// `tcp` or `udp`.
    pub proto: String,
    /// Application protocol spoken on the port: `dns`, `http`, `https`, `nfs`.
    pub scheme: String,
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

    let ports = Ports {
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
    };

    // --- nodes
    let (host_ns, host_ns_from) = match &raw.hypervisor.dns_server {
        Some(d) if d.enabled.value => {
            let mut v = vec![Val::new(host_ip.value, host_ip.prov.clone())];
            v.extend(parse_ns(&d.upstream_servers));
            (
                v,
                "resolv.conf written by the DNS setup: the host's dnsmasq, then upstream_servers"
                    .to_string(),
            )
        }
        _ => (
            parse_ns(&raw.hypervisor.dns_nameservers),
            "network.interfaces.dns_nameservers".to_string(),
        ),
    };
    let mut host = Node {
        vantage: VantageRef::Host,
        kind: NodeKind::Host,
        id: None,
        name: None,
        ip: Some(host_ip.clone()),
        prefix: host_prefix,
        dhcp: false,
        nameservers: host_ns,
        nameservers_from: host_ns_from,
        services: Vec::new(),
        traefik_service: None,
        portainer_role: None,
        docker_stacks: Vec::new(),
        features: Vec::new(),
        is_template: false,
        prov: raw.hypervisor.host_address.prov.clone(),
    };
    if raw
        .hypervisor
        .dns_server
        .as_ref()
        .is_some_and(|d| d.enabled.value)
    {
        for proto in ["udp", "tcp"] {
            host.services.push(Service {
                name: "dnsmasq".into(),
                port: ports.dns.clone(),
                proto: proto.into(),
                scheme: "dns".into(),
            });
        }
    }
    host.services.push(Service {
        name: "nfs".into(),
        port: Val::new(
            2049,
            Provenance::platform("hypervisor_feature_setup_nfs.sh", "nfs-kernel-server"),
        ),
        proto: "tcp".into(),
        scheme: "nfs".into(),
    });

    let lxc_chains = clones::walk(&raw.lxcs, |g| !g.nameservers.is_empty());
    let vm_chains = clones::walk(&raw.vms, |g| !g.nameservers.is_empty());
    let ancestors = lxc_chains
        .nearest
        .iter()
        .map(|a| a.map(|i| &raw.lxcs[i]))
        .chain(vm_chains.nearest.iter().map(|a| a.map(|i| &raw.vms[i])));
    let mut guests = Vec::new();
    for (g, ancestor) in raw.lxcs.iter().chain(raw.vms.iter()).zip(ancestors) {
        let (nameservers, nameservers_from) = guest_nameservers(g, ancestor, &host_ip);
        let mut services = Vec::new();
        if let Some(ts) = &g.traefik_service {
            services.push(Service {
                name: ts.name.value.clone(),
                port: ts.port.clone(),
                proto: "tcp".into(),
                scheme: match ts.port.value {
                    443 | 9000 | 9443 | 9001 => "https",
                    _ => "http",
                }
                .into(),
            });
        }
        guests.push(Node {
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
        });
    }

    let dns = dns::derive(raw, &domain.value, &host, ports.dns.clone(), &mut notes);
    let routes = routes::derive(raw, &domain.value, &mut notes);
    let firewall = firewall::derive(raw, &mut notes);
    let certs = stacks::certs(raw);
    let stacks = stacks::stacks(raw, &mut notes)?;

    // --- components
    let find_lxc = |pred: &dyn Fn(&RawGuest) -> bool| raw.lxcs.iter().find(|g| pred(g));
    let router = [
        (
            "feature `traefik`",
            find_lxc(&|g: &RawGuest| g.has_feature("traefik")),
        ),
        (
            "name contains `traefik`",
            find_lxc(&|g: &RawGuest| {
                g.name
                    .as_ref()
                    .is_some_and(|n| n.value.to_ascii_lowercase().contains("traefik"))
            }),
        ),
    ]
    .into_iter()
    .find_map(|(why, g)| g.and_then(|g| static_ip(g).map(|ip| (why, g, ip))))
    .map(|(why, g, ip)| Router {
        lxc: g.id.value,
        ip,
        port: ports.router.clone(),
        entrypoints: raw
            .traefik
            .as_ref()
            .map(|t| {
                t.entrypoints
                    .iter()
                    .map(|e| (e.name.clone(), e.port))
                    .collect()
            })
            .unwrap_or_else(|| vec![("web".to_string(), Some(80))]),
        providers: raw
            .traefik
            .as_ref()
            .map(|t| t.providers.iter().map(|p| p.value.clone()).collect())
            .unwrap_or_else(|| vec!["file".to_string()]),
        cert_resolvers: raw
            .traefik
            .as_ref()
            .map(|t| t.cert_resolvers.iter().map(|p| p.value.clone()).collect())
            .unwrap_or_default(),
        static_routers: raw
            .traefik
            .as_ref()
            .map(|t| t.static_routers.iter().map(|p| p.value.clone()).collect())
            .unwrap_or_default(),
        found_by: why.to_string(),
    });
    if router.is_none() {
        notes.push(
            "no Traefik LXC found (feature `traefik` or a name containing `traefik`)".to_string(),
        );
    }

    let gw_names = format!("nginx.{0} portainer.{0}", domain.value);
    let gateway = [
        (
            "name \"Nginx-Phoenix\" (the DNS generator's lookup)",
            find_lxc(&|g: &RawGuest| {
                g.name
                    .as_ref()
                    .is_some_and(|n| n.value == dns::GATEWAY_LXC_NAME)
            }),
        ),
        (
            "traefik_service `nginx`",
            find_lxc(&|g: &RawGuest| {
                g.traefik_service
                    .as_ref()
                    .is_some_and(|t| t.name.value == "nginx")
            }),
        ),
    ]
    .into_iter()
    .find_map(|(why, g)| g.and_then(|g| static_ip(g).map(|ip| (why, g, ip))))
    .map(|(why, g, ip)| {
        let upstream = router
            .as_ref()
            .map(|r| SocketAddr::new(r.ip.value, r.port.value));
        let cert_cn = format!("nginx.{}", domain.value);
        Gateway {
            lxc: g.id.value,
            ip,
            listen: ports.gateway.clone(),
            http_port: 80,
            server_names: gw_names.split(' ').map(String::from).collect(),
            ssl_certificate: format!("/etc/nginx/ssl/{cert_cn}.crt"),
            cert: certs.iter().position(|c| c.common_name.value == cert_cn),
            proxy_pass: match upstream {
                Some(u) => format!("http://{u}"),
                None => "http://10.0.0.12:80".to_string(),
            },
            upstream,
            proxy_pass_platform: "http://10.0.0.12:80".to_string(),
            found_by: why.to_string(),
        }
    });

    let ca = [
        (
            "traefik_service `ca`",
            find_lxc(&|g: &RawGuest| {
                g.traefik_service
                    .as_ref()
                    .is_some_and(|t| t.name.value == "ca")
            }),
        ),
        (
            "feature `step_ca`",
            find_lxc(&|g: &RawGuest| g.has_feature("step_ca")),
        ),
    ]
    .into_iter()
    .find_map(|(why, g)| g.and_then(|g| static_ip(g).map(|ip| (why, g, ip))))
    .map(|(why, g, ip)| CaEndpoint {
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
    });

    let portainer = raw
        .vms
        .iter()
        .find(|g| {
            g.portainer_role
                .as_ref()
                .is_some_and(|r| r.value == "primary")
        })
        .and_then(|g| {
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
        });
    let agents: Vec<PortainerAgent> = raw
        .vms
        .iter()
        .filter(|g| {
            g.portainer_role
                .as_ref()
                .is_some_and(|r| r.value == "agent")
        })
        .filter_map(|g| {
            Some(PortainerAgent {
                vm: g.id.value,
                ip: static_ip(g)?,
                port: ports.agent.clone(),
                hostname: g.portainer_agent_hostname.clone(),
            })
        })
        .collect();

    // --- well-known services on the components
    let mut slot: HashMap<VantageRef, usize> = HashMap::new();
    for (i, g) in guests.iter().enumerate() {
        slot.entry(g.vantage).or_insert(i);
    }
    let add = |guests: &mut Vec<Node>, v: VantageRef, s: Service| {
        if let Some(n) = slot.get(&v).map(|&i| &mut guests[i]) {
            if !n
                .services
                .iter()
                .any(|x| x.name == s.name && x.port.value == s.port.value)
            {
                n.services.push(s);
            }
        }
    };
    let svc = |name: &str, port: Val<u16>, scheme: &str| Service {
        name: name.into(),
        port,
        proto: "tcp".into(),
        scheme: scheme.into(),
    };
    let plat = |p: u16, s: &str, w: &str| Val::new(p, Provenance::platform(s, w));
    if let Some(gw) = &gateway {
        add(
            &mut guests,
            VantageRef::Lxc(gw.lxc),
            svc("nginx-https", gw.listen.clone(), "https"),
        );
        add(
            &mut guests,
            VantageRef::Lxc(gw.lxc),
            svc(
                "nginx-http",
                plat(80, "generate_nginx_gateway_config.sh", "listen 80"),
                "http",
            ),
        );
    }
    if let Some(r) = &router {
        for (name, port) in &r.entrypoints {
            if let Some(p) = port {
                let pv = if name == "web" {
                    r.port.clone()
                } else {
                    plat(*p, "traefik.yml.template", name)
                };
                add(
                    &mut guests,
                    VantageRef::Lxc(r.lxc),
                    svc(&format!("traefik-{name}"), pv, "http"),
                );
            }
        }
    }
    if let Some(c) = &ca {
        add(
            &mut guests,
            VantageRef::Lxc(c.lxc),
            svc("step-ca", c.port.clone(), "https"),
        );
    }
    if let Some(p) = &portainer {
        add(
            &mut guests,
            VantageRef::Vm(p.vm),
            svc("portainer", p.port.clone(), "https"),
        );
        add(
            &mut guests,
            VantageRef::Vm(p.vm),
            svc(
                "portainer-http",
                plat(9000, "docker-compose.yml", "9000/tcp"),
                "http",
            ),
        );
    }
    for a in &agents {
        add(
            &mut guests,
            VantageRef::Vm(a.vm),
            svc("portainer-agent", a.port.clone(), "https"),
        );
    }
    for s in &stacks {
        for d in &s.deployments {
            for sv in &s.services {
                if let Some(p) = &sv.lb_port {
                    let scheme = sv
                        .lb_scheme
                        .as_ref()
                        .map(|x| x.value.clone())
                        .unwrap_or_else(|| "http".into());
                    add(
                        &mut guests,
                        VantageRef::Vm(d.vm),
                        svc(&sv.name, p.clone(), &scheme),
                    );
                }
            }
        }
    }

    let mut subnets = Vec::new();
    if let Some(s) = &raw.hypervisor.default_subnet {
        if let Ok(n) = s.value.parse::<ipnet::IpNet>() {
            subnets.push(n);
        }
    }
    if let Some(p) = host_prefix {
        if let Ok(n) = ipnet::IpNet::new(host_ip.value, p) {
            let n = n.trunc();
            if !subnets.contains(&n) {
                subnets.push(n);
            }
        }
    }

    let mut clone_cycles = clones::cycles(&raw.lxcs, &lxc_chains);
    clone_cycles.extend(clones::cycles(&raw.vms, &vm_chains));
    let index = Index::build(&host, &guests, &stacks);
    Ok(Intended {
        config_dir: raw.config_dir.clone(),
        domain,
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
        subnets,
        notes,
        assumptions: raw.assumptions.clone(),
        host_interface_nameservers: parse_ns(&raw.hypervisor.dns_nameservers),
        clone_cycles,
        index,
    })
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
