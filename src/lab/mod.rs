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
mod roots;
mod servers;
mod start;

pub use config::{Backend, Route, DOMAIN, VANTAGES};
pub use deployed::{drifted_router_port, hand_edited_rule, FIREWALL_PID};
pub use faults::{faults, Expected, Fault, FaultInfo};
pub use reference::Reference;
pub use servers::{GATEWAY_UPSTREAM_TIMEOUT, ROUTER_BACKEND_TIMEOUT, SLOW_BACKEND_DELAY};

use crate::engine::Scope;
use crate::error::Result;
use ipnet::{IpNet, Ipv4Net};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
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

impl Lab {
    /// Start the lab: bind every component, generate the PKI, write the config dir.
    pub async fn start(spec: &LabSpec) -> Result<LabHandle> {
        start::start_with(spec, None).await
    }

    /// Start the lab serving the platform `reference` describes (see [`Reference`]) instead of
    /// the built-in one; `spec.faults` are injected on top of the config's own defects.
    pub async fn start_reference(spec: &LabSpec, reference: &Reference) -> Result<LabHandle> {
        start::start_with(spec, Some(reference)).await
    }
}
