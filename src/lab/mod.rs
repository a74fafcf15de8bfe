//! The simulated Phoenix platform on loopback, with the platform's real faults.
//!
//! [`Lab::start`] binds a DNS server, an NGINX-like gateway, a Traefik-like router, a
//! Portainer-like mTLS API, an agent, qdrant and step-ca on `127.<n>.0.x` (the platform's last
//! octets), generates a step-ca-like PKI and writes a platform-format config dir pointing at
//! all of it, so a trace runs against the lab exactly as against the real platform.

mod config;
mod deployed;
mod dns;
mod faults;
mod pki;
mod reference;
mod servers;

pub use config::{Backend, Route, DOMAIN, VANTAGES};
pub use deployed::{drifted_router_port, hand_edited_rule};
pub use faults::{faults, Expected, Fault, FaultInfo};
pub use reference::Reference;
pub use servers::{GATEWAY_UPSTREAM_TIMEOUT, ROUTER_BACKEND_TIMEOUT, SLOW_BACKEND_DELAY};

use crate::engine::Scope;
use crate::error::{Error, Result};
use ipnet::{IpNet, Ipv4Net};
use pki::{Validity, CLIENT_EKU, SERVER_EKU};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// What to start.
#[derive(Debug, Clone, Default)]
pub struct LabSpec {
    /// Where to write the config dir, PKI and vantage files (default: a temp dir removed on
    /// shutdown).
    pub dir: Option<PathBuf>,
    pub faults: Vec<Fault>,
    /// Second octet of the loopback block: the lab lives on `127.<net>.0.0/24` (default 0, the
    /// addresses of the docs). Distinct values let several labs run side by side.
    pub net: u8,
}

/// The lab's addresses: the platform's last octets on `127.<octet>.0.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addrs {
    pub octet: u8,
    /// Proxmox host and its DNS server (.13).
    pub host: Ipv4Addr,
    /// step-ca, LXC 103 (.10).
    pub ca: Ipv4Addr,
    /// NGINX gateway, LXC 101 (.153).
    pub gateway: Ipv4Addr,
    /// Traefik, LXC 102 (.12).
    pub router: Ipv4Addr,
    /// Portainer, VM 1001 (.111).
    pub portainer: Ipv4Addr,
    /// Agent and qdrant, VM 1002 (.102).
    pub agent: Ipv4Addr,
    /// The old Portainer IP (.101), where nothing listens.
    pub old_portainer: Ipv4Addr,
}

impl Addrs {
    pub fn new(octet: u8) -> Addrs {
        let a = |last| Ipv4Addr::new(127, octet, 0, last);
        Addrs {
            octet,
            host: a(13),
            ca: a(10),
            gateway: a(153),
            router: a(12),
            portainer: a(111),
            agent: a(102),
            old_portainer: a(101),
        }
    }
    /// A nameserver address in the lab's block where nothing listens (fault `resolv-nowhere`).
    pub fn nowhere_nameserver(&self) -> Ipv4Addr {
        Ipv4Addr::new(127, self.octet, 0, 99)
    }
    /// The block every lab address lies in.
    pub fn net(&self) -> Ipv4Net {
        Ipv4Net::new(Ipv4Addr::new(127, self.octet, 0, 0), 24).expect("valid prefix")
    }
}

/// The ports the lab serves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub dns: u16,
    pub gateway: u16,
    pub router: u16,
    pub ca: u16,
    pub portainer: u16,
    pub agent: u16,
    pub qdrant: u16,
    /// True when 53/443/80 could not be used and high ports stand in for them.
    pub high: bool,
}

impl Ports {
    fn new(high: bool) -> Ports {
        let (dns, gateway, router) = if high {
            (5353, 8443, 8080)
        } else {
            (53, 443, 80)
        };
        Ports {
            dns,
            gateway,
            router,
            ca: 9000,
            portainer: 9443,
            agent: 9001,
            qdrant: 6333,
            high,
        }
    }
}

/// Paths of the PEM files the lab wrote under `<dir>/pki/`.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    /// The root (`phoenix_root_ca.crt`): trust anchor for every client, the router included.
    pub root_ca: PathBuf,
    /// Intermediate + root (`phoenix_ca.crt`).
    pub ca_bundle: PathBuf,
    pub intermediate: PathBuf,
    /// The chain the gateway serves and its key.
    pub gateway_cert: PathBuf,
    pub gateway_key: PathBuf,
    pub portainer_cert: PathBuf,
    pub portainer_key: PathBuf,
    pub step_ca_cert: PathBuf,
    pub step_ca_key: PathBuf,
    /// The router's client identity (leaf + intermediate) for Portainer's mTLS.
    pub router_client_cert: PathBuf,
    pub router_client_key: PathBuf,
    pub agent_cert: PathBuf,
    pub agent_key: PathBuf,
}

/// The simulated platform.
pub struct Lab;

/// A running lab; dropping it (or [`LabHandle::shutdown`]) stops every component.
pub struct LabHandle {
    root: PathBuf,
    config_dir: PathBuf,
    stacks_dir: PathBuf,
    site_file: PathBuf,
    /// The guests' deployed files (`drift --deployed`).
    deployed_dir: PathBuf,
    pki: PkiFiles,
    addrs: Addrs,
    ports: Ports,
    faults: Vec<Fault>,
    dns_records: Vec<(String, Ipv4Addr)>,
    routes: Vec<Route>,
    startup: Duration,
    dns_queries: Arc<std::sync::atomic::AtomicUsize>,
    tasks: Vec<JoinHandle<()>>,
    _temp: Option<tempfile::TempDir>,
}

impl LabHandle {
    /// The root of everything the lab wrote (`etc/`, `stacks/`, `pki/`, `vantages/`, `deployed/`).
    pub fn dir(&self) -> &Path {
        &self.root
    }
    /// The platform config dir (`--config-dir`): the JSON files and `phoenix-doctor.toml`.
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }
    /// `stacks/*/phoenix.json` (the default `../stacks` beside the config dir).
    pub fn stacks_dir(&self) -> &Path {
        &self.stacks_dir
    }
    /// The site file the lab wrote.
    pub fn site_file(&self) -> &Path {
        &self.site_file
    }
    /// The deployed files of the lab's guests, in the layout `drift --deployed DIR` reads
    /// (`host/etc/dnsmasq.d/...`, `lxc-101/etc/nginx/...`, `lxc-102/etc/traefik/...`).
    pub fn deployed_dir(&self) -> &Path {
        &self.deployed_dir
    }
    pub fn pki(&self) -> &PkiFiles {
        &self.pki
    }
    pub fn addrs(&self) -> &Addrs {
        &self.addrs
    }
    pub fn ports(&self) -> &Ports {
        &self.ports
    }
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }
    /// The networks the lab uses: a trace against it needs no other.
    pub fn scope(&self) -> Scope {
        Scope {
            allowed: vec![IpNet::V4(self.addrs.net())],
        }
    }
    /// The DNS records the lab's server answers (after faults).
    pub fn dns_records(&self) -> &[(String, Ipv4Addr)] {
        &self.dns_records
    }
    /// The router's routes (after faults).
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
    /// How long [`Lab::start`] took.
    /// DNS queries the lab's nameserver has answered so far.
    pub fn dns_queries(&self) -> usize {
        self.dns_queries.load(std::sync::atomic::Ordering::Relaxed)
    }
    pub fn startup_time(&self) -> Duration {
        self.startup
    }
    /// Socket addresses of the components.
    pub fn dns_addr(&self) -> SocketAddr {
        SocketAddr::from((self.addrs.host, self.ports.dns))
    }
    pub fn gateway_addr(&self) -> SocketAddr {
        SocketAddr::from((self.addrs.gateway, self.ports.gateway))
    }
    pub fn router_addr(&self) -> SocketAddr {
        SocketAddr::from((self.addrs.router, self.ports.router))
    }
    pub fn portainer_addr(&self) -> SocketAddr {
        SocketAddr::from((self.addrs.portainer, self.ports.portainer))
    }
    pub fn agent_addr(&self) -> SocketAddr {
        SocketAddr::from((self.addrs.agent, self.ports.agent))
    }
    pub fn qdrant_addr(&self) -> SocketAddr {
        SocketAddr::from((self.addrs.agent, self.ports.qdrant))
    }
    pub fn ca_addr(&self) -> SocketAddr {
        SocketAddr::from((self.addrs.ca, self.ports.ca))
    }
    /// Stop every component (listeners close at once). A temp dir is removed.
    pub fn shutdown(mut self) {
        self.abort_all();
    }
    /// Stop every component and wait until every listener is closed.
    pub async fn stop(mut self) {
        let tasks: Vec<JoinHandle<()>> = self.tasks.drain(..).collect();
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
    fn abort_all(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for LabHandle {
    fn drop(&mut self) {
        self.abort_all();
    }
}

/// True when the process runs with effective uid 0 (read from /proc, no libc call).
fn effective_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn bind_err(what: &str, addr: SocketAddr, e: std::io::Error) -> Error {
    Error::tool(format!("lab: binding {what} on {addr}: {e}"))
}

struct Listeners {
    dns: Option<(UdpSocket, TcpListener)>,
    gateway: TcpListener,
    router: TcpListener,
}

async fn bind_front(addrs: &Addrs, ports: &Ports, dns: bool) -> std::io::Result<Listeners> {
    let dns = if dns {
        let a = SocketAddr::from((addrs.host, ports.dns));
        Some((UdpSocket::bind(a).await?, TcpListener::bind(a).await?))
    } else {
        None
    };
    Ok(Listeners {
        dns,
        gateway: TcpListener::bind((addrs.gateway, ports.gateway)).await?,
        router: TcpListener::bind((addrs.router, ports.router)).await?,
    })
}

async fn bind_tcp(what: &str, addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| bind_err(what, addr, e))
}

fn write_file(path: &Path, contents: &str) -> Result<()> {
    config::write_new(path, contents, 0o644)
}

impl Lab {
    /// Start the lab: bind every component, generate the PKI, write the config dir.
    pub async fn start(spec: &LabSpec) -> Result<LabHandle> {
        Lab::start_with(spec, None).await
    }

    /// Start the lab serving the platform `reference` describes (see [`Reference`]) instead of
    /// the built-in one; `spec.faults` are injected on top of the config's own defects.
    pub async fn start_reference(spec: &LabSpec, reference: &Reference) -> Result<LabHandle> {
        Lab::start_with(spec, Some(reference)).await
    }

    async fn start_with(spec: &LabSpec, reference: Option<&Reference>) -> Result<LabHandle> {
        let t0 = Instant::now();
        let faults: HashSet<Fault> = spec.faults.iter().copied().collect();
        let has = |f: Fault| faults.contains(&f);
        let addrs = Addrs::new(spec.net);

        // 0. The dir first: a refused --dir is reported before anything is bound.
        let (root, temp) = match &spec.dir {
            Some(d) => (config::prepare_dir(d)?, None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("phoenix-doctor-lab-")
                    .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
                    .tempdir()
                    .map_err(|e| Error::tool(format!("lab: creating a temp dir: {e}")))?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let root = std::fs::canonicalize(&root).unwrap_or(root);

        // 1. Listeners: the ports decide what the site file says.
        let want_dns = !has(Fault::DnsDown);
        let mut ports = Ports::new(!effective_root());
        let front = match bind_front(&addrs, &ports, want_dns).await {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && !ports.high => {
                ports = Ports::new(true);
                bind_front(&addrs, &ports, want_dns).await.map_err(|e| {
                    Error::tool(format!(
                        "lab: binding DNS/gateway/router on {} (ports {}/{}/{}): {e}",
                        addrs.net(),
                        ports.dns,
                        ports.gateway,
                        ports.router
                    ))
                })?
            }
            Err(e) => {
                return Err(Error::tool(format!(
                    "lab: binding DNS/gateway/router on {} (ports {}/{}/{}): {e}",
                    addrs.net(),
                    ports.dns,
                    ports.gateway,
                    ports.router
                )))
            }
        };
        let portainer_l = bind_tcp(
            "Portainer",
            SocketAddr::from((addrs.portainer, ports.portainer)),
        )
        .await?;
        let agent_l = bind_tcp("the agent", SocketAddr::from((addrs.agent, ports.agent))).await?;
        let qdrant_l = if has(Fault::QdrantDown) {
            None
        } else {
            Some(bind_tcp("qdrant", SocketAddr::from((addrs.agent, ports.qdrant))).await?)
        };
        let ca_l = if has(Fault::CaDown) {
            None
        } else {
            Some(bind_tcp("step-ca", SocketAddr::from((addrs.ca, ports.ca))).await?)
        };

        let pki_dir = root.join("pki");

        // 3. The PKI.
        let d = |s: &str| format!("{s}.{DOMAIN}");
        let ca_root = pki::root(pki::ROOT_CN)?;
        let ca_int = pki::intermediate(&ca_root, pki::INTERMEDIATE_CN)?;
        let gw_names_full = [d("nginx"), d("portainer"), d("qdrant")];
        let ref_names = reference.map(Reference::gateway_names);
        let gw_names: Vec<&str> = if let Some(names) = &ref_names {
            let qdrant = d("qdrant");
            names
                .iter()
                .filter(|n| !(has(Fault::WrongSan) && **n == qdrant))
                .map(String::as_str)
                .collect()
        } else if has(Fault::WrongSan) {
            gw_names_full[..2].iter().map(String::as_str).collect()
        } else {
            gw_names_full.iter().map(String::as_str).collect()
        };
        let validity = if has(Fault::ExpiredLeaf) {
            Validity::Expired
        } else {
            Validity::Day
        };
        let other_root = if has(Fault::UntrustedCa) || has(Fault::ClientCertRejected) {
            let r = pki::root("Other Internal CA Root CA")?;
            let i = pki::intermediate(&r, "Other Internal CA Intermediate CA")?;
            Some((r, i))
        } else {
            None
        };
        let gw_issuer = match (&other_root, has(Fault::UntrustedCa)) {
            (Some((_, i)), true) => i,
            _ => &ca_int,
        };
        let mut gateway_leaf =
            pki::issue(gw_issuer, &d("nginx"), &gw_names, &[], SERVER_EKU, validity)?;
        if has(Fault::IntermediateMissing) {
            gateway_leaf = gateway_leaf.leaf_only();
        }
        let portainer_leaf = if has(Fault::BackendTls) {
            pki::self_signed("portainer", &["localhost"], &[IpAddr::V4(addrs.portainer)])?
        } else {
            pki::issue(
                &ca_int,
                &d("portainer"),
                &[&d("portainer")],
                &[IpAddr::V4(addrs.portainer)],
                SERVER_EKU,
                Validity::Day,
            )?
        };
        let step_leaf = pki::issue(
            &ca_int,
            &d("ca"),
            &[&d("ca"), DOMAIN, &format!("*.{DOMAIN}")],
            &[IpAddr::V4(addrs.ca)],
            SERVER_EKU,
            Validity::Day,
        )?;
        let router_client = pki::issue(
            &ca_int,
            &d("traefik"),
            &[&d("traefik")],
            &[],
            CLIENT_EKU,
            Validity::Day,
        )?;
        let agent_leaf = pki::self_signed(
            "portainer-agent",
            &["localhost"],
            &[IpAddr::V4(addrs.agent)],
        )?;

        let p = |n: &str| pki_dir.join(n);
        let files = PkiFiles {
            root_ca: p("phoenix_root_ca.crt"),
            ca_bundle: p("phoenix_ca.crt"),
            intermediate: p("intermediate_ca.crt"),
            gateway_cert: p(&format!("nginx.{DOMAIN}.crt")),
            gateway_key: p(&format!("nginx.{DOMAIN}.key")),
            portainer_cert: p("portainer.crt"),
            portainer_key: p("portainer.key"),
            step_ca_cert: p("step-ca.crt"),
            step_ca_key: p("step-ca.key"),
            router_client_cert: p("traefik-client.crt"),
            router_client_key: p("traefik-client.key"),
            agent_cert: p("agent.crt"),
            agent_key: p("agent.key"),
        };
        write_file(&files.root_ca, &ca_root.pem())?;
        write_file(&files.intermediate, &ca_int.pem())?;
        write_file(
            &files.ca_bundle,
            &format!("{}{}", ca_int.pem(), ca_root.pem()),
        )?;
        for (leaf, cert, key) in [
            (&gateway_leaf, &files.gateway_cert, &files.gateway_key),
            (&portainer_leaf, &files.portainer_cert, &files.portainer_key),
            (&step_leaf, &files.step_ca_cert, &files.step_ca_key),
            (
                &router_client,
                &files.router_client_cert,
                &files.router_client_key,
            ),
            (&agent_leaf, &files.agent_cert, &files.agent_key),
        ] {
            write_file(cert, &leaf.chain_pem)?;
            config::write_new(key, &leaf.key_pem, 0o600)?;
        }

        // 4. The config dir.
        let pki_paths = config::PkiPaths {
            root_ca: files.root_ca.clone(),
            ca_bundle: files.ca_bundle.clone(),
            gateway_cert: files.gateway_cert.clone(),
            gateway_key: files.gateway_key.clone(),
            portainer_cert: files.portainer_cert.clone(),
            portainer_key: files.portainer_key.clone(),
            router_client_cert: files.router_client_cert.clone(),
            router_client_key: files.router_client_key.clone(),
        };
        let cfg = match reference {
            Some(r) => r.build(&addrs, &pki_paths),
            None => config::build(&addrs, &pki_paths)?,
        };
        let written = config::write_dir(&root, &cfg, &addrs, &ports, &pki_paths, &spec.faults)?;

        // 5. What the running components do (intended state, then the faults).
        // The DNS answers are what the platform's generator derives from the written config
        // (the same model code the trace uses), so a healthy lab agrees with the plan.
        let intended = crate::model::load(&written.config_dir, Some(&written.stacks_dir))?;
        let mut records = model_records(&intended);
        if has(Fault::Nxdomain) {
            records.retain(|(h, _)| *h != d("qdrant"));
        }
        if has(Fault::AgentDnsGateway) {
            for (h, ip) in records.iter_mut() {
                if *h == d("portainer-agent") {
                    *ip = addrs.gateway;
                }
            }
        }
        let mut routes = model_routes(&intended);
        if has(Fault::NoRoute) {
            routes.retain(|r| r.host != d("qdrant"));
        }
        if has(Fault::DnsmasqStale) {
            for (h, ip) in records.iter_mut() {
                if *h == d("qdrant") {
                    *ip = addrs.old_portainer;
                }
            }
        }
        if has(Fault::TraefikRouterHandEdited) {
            // The narrowed rule matches no request of a trace (they ask for `/...` paths
            // outside /admin): the route is gone for them.
            routes.retain(|r| !(r.host == d("portainer") && r.provider == "file"));
        }
        let deployed_dir =
            deployed::write(&root.join("deployed"), &intended, &addrs, &spec.faults)?;
        config::seal_dir(&root)?;
        let gateway_upstream = if has(Fault::GatewayUpstreamDrifted) {
            SocketAddr::from((addrs.router, drifted_router_port(ports.router)))
        } else {
            SocketAddr::from((addrs.router, ports.router))
        };

        // 6. Start the components.
        let mut tasks = Vec::new();
        let dns_queries: Arc<std::sync::atomic::AtomicUsize> = Default::default();
        if let Some((udp, tcp)) = front.dns {
            let zone = Arc::new(dns::Zone {
                domain: DOMAIN.to_string(),
                records: records.clone(),
                queries: dns_queries.clone(),
            });
            tasks.push(tokio::spawn(dns::serve_udp(udp, zone.clone())));
            tasks.push(tokio::spawn(dns::serve_tcp(tcp, zone)));
        }
        let gw_tls =
            servers::server_config("the gateway", &gateway_leaf, servers::ClientAuth::None)?;
        tasks.push(tokio::spawn(servers::serve(
            front.gateway,
            Some(gw_tls),
            servers::gateway(gateway_upstream),
        )));
        let client = servers::router_client(ca_root.der(), &router_client)?;
        tasks.push(tokio::spawn(servers::serve(
            front.router,
            None,
            servers::router(routes.clone(), client),
        )));
        let client_auth = if has(Fault::MtlsNotEnforced) {
            servers::ClientAuth::None
        } else if let (Some((r, _)), true) = (&other_root, has(Fault::ClientCertRejected)) {
            servers::ClientAuth::Require(vec![r.der()])
        } else {
            servers::ClientAuth::Require(vec![ca_root.der()])
        };
        let portainer_tls = servers::server_config("Portainer", &portainer_leaf, client_auth)?;
        let instance_id = instance_id(&ca_root.der());
        tasks.push(tokio::spawn(servers::serve(
            portainer_l,
            Some(portainer_tls),
            servers::portainer(instance_id),
        )));
        let agent_tls =
            servers::server_config("the agent", &agent_leaf, servers::ClientAuth::None)?;
        tasks.push(tokio::spawn(servers::serve(
            agent_l,
            Some(agent_tls),
            servers::agent(),
        )));
        if let Some(l) = qdrant_l {
            let delay = has(Fault::SlowBackend).then_some(SLOW_BACKEND_DELAY);
            tasks.push(tokio::spawn(servers::serve(
                l,
                None,
                servers::qdrant(delay),
            )));
        }
        if let Some(l) = ca_l {
            let ca_tls = servers::server_config("step-ca", &step_leaf, servers::ClientAuth::None)?;
            tasks.push(tokio::spawn(servers::serve(
                l,
                Some(ca_tls),
                servers::step_ca(),
            )));
        }

        if reference.is_some() {
            // Every other service the config's traces expect to answer.
            let own = [
                SocketAddr::from((addrs.host, ports.dns)),
                SocketAddr::from((addrs.gateway, ports.gateway)),
                SocketAddr::from((addrs.router, ports.router)),
                SocketAddr::from((addrs.portainer, ports.portainer)),
                SocketAddr::from((addrs.agent, ports.agent)),
                SocketAddr::from((addrs.agent, ports.qdrant)),
                SocketAddr::from((addrs.ca, ports.ca)),
            ];
            let backends = reference::declared_backends(&intended, &own)?;
            tasks.extend(reference::serve_backends(&backends).await?);
        }

        let mut fault_list: Vec<Fault> = Vec::new();
        for f in &spec.faults {
            if !fault_list.contains(f) {
                fault_list.push(*f);
            }
        }
        Ok(LabHandle {
            root,
            config_dir: written.config_dir,
            stacks_dir: written.stacks_dir,
            site_file: written.site_file,
            deployed_dir,
            pki: files,
            addrs,
            ports,
            faults: fault_list,
            dns_records: records,
            routes,
            startup: t0.elapsed(),
            dns_queries,
            tasks,
            _temp: temp,
        })
    }
}

/// A stable UUID-like id derived from the lab root (so one lab answers one InstanceID).
fn instance_id(root_der: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(root_der);
    let x: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// The A records the platform's dnsmasq generator derives from the lab's config (with the CA's
/// real address where the generator hard-codes 10.0.0.10, so nothing in the lab points off
/// loopback).
fn model_records(m: &crate::model::Intended) -> Vec<(String, Ipv4Addr)> {
    m.dns
        .records
        .iter()
        .filter_map(|r| match r.guest_ip.or(r.ip) {
            Some(std::net::IpAddr::V4(ip)) => Some((r.hostname.clone(), ip)),
            _ => None,
        })
        .collect()
}

/// The router's routes, as the model derives them: the file provider's (what
/// generate_traefik_config.sh writes: VMs over https, LXCs over http, the dashboard), then the
/// docker provider's stack labels on the web entrypoint (the lab's Traefik reads both).
fn model_routes(m: &crate::model::Intended) -> Vec<config::Route> {
    use config::{Backend, Route};
    let mut out = Vec::new();
    for r in &m.routes.routes {
        let backend = match (r.is_api, r.backend, r.scheme.as_str()) {
            (true, _, _) => Backend::Api,
            (false, Some(a), "https") => Backend::Https(a),
            (false, Some(a), _) => Backend::Http(a),
            (false, None, _) => continue,
        };
        out.push(Route {
            name: r.router.clone(),
            host: r.host.clone(),
            backend,
            provider: "file",
        });
    }
    for stack in &m.stacks {
        for d in stack.deployments.iter().filter(|d| d.applied) {
            let Some(ip) = m.vm(d.vm).and_then(|n| n.ip_addr()) else {
                continue;
            };
            for svc in &stack.services {
                let enabled = svc.enabled.as_ref().is_some_and(|e| e.value);
                let Some(port) = svc.lb_port.as_ref().map(|p| p.value) else {
                    continue;
                };
                for r in svc.routers.iter().filter(|_| enabled) {
                    let on_web = r.entrypoints.is_empty()
                        || r.entrypoints
                            .iter()
                            .any(|e| e.value.split(',').any(|x| x.trim() == "web"));
                    if let (true, Some(host)) = (on_web, &r.host) {
                        out.push(Route {
                            name: format!("{}@docker", r.name),
                            host: host.clone(),
                            backend: Backend::Http(SocketAddr::new(ip, port)),
                            provider: "docker",
                        });
                    }
                }
            }
        }
    }
    out
}
