//! Starting the lab: one named step per component (the dir, the listeners, the PKI, the config
//! dir, what DNS answers and the router routes, then one server per component).

use super::config::{self, Backend, Route, DOMAIN};
use super::pki::{self, Ca, Leaf, Validity, CLIENT_EKU, SERVER_EKU};
use super::reference::{self, Reference};
use super::servers::{self, SLOW_BACKEND_DELAY};
use super::{dns, roots, Addrs, Fault, LabHandle, LabSpec, PkiFiles, Ports};
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// The faults a lab runs with.
struct Faults(HashSet<Fault>);

impl Faults {
    fn new(list: &[Fault]) -> Faults {
        Faults(list.iter().copied().collect())
    }
    fn has(&self, f: Fault) -> bool {
        self.0.contains(&f)
    }
}

/// `name.<DOMAIN>`.
fn fqdn(name: &str) -> String {
    format!("{name}.{DOMAIN}")
}

/// Start the lab (see [`super::Lab::start`]): every step in the order its inputs need.
pub(super) async fn start_with(spec: &LabSpec, reference: Option<&Reference>) -> Result<LabHandle> {
    let t0 = Instant::now();
    let faults = Faults::new(&spec.faults);
    let addrs = Addrs::new(spec.net);

    // The dir first: a refused --dir is reported before anything is bound.
    let (root, temp) = root_dir(spec)?;
    // The listeners: the ports decide what the site file says.
    let (ports, bound) = bind_all(&addrs, &faults).await?;
    let certs = Certs::issue(&addrs, &faults, reference)?;
    let files = write_pki(&root.join("pki"), &certs)?;

    let pki_paths = files.config_paths();
    let cfg = match reference {
        Some(r) => r.build(&addrs, &pki_paths),
        None => config::build(&addrs, &pki_paths)?,
    };
    let written = config::write_dir(&root, &cfg, &addrs, &ports, &pki_paths, &spec.faults)?;

    // What the running components do: the intended state the platform's generators derive from
    // the written config (the same model code the trace uses), then the faults.
    let intended = crate::model::load(&written.config_dir, Some(&written.stacks_dir))?;
    let records = dns_records(&intended, &faults, &addrs);
    let routes = router_routes(&intended, &faults);
    // The guests' deployed files, as the generators write them (with the drift faults' edits).
    let deployed_dir =
        super::deployed::write(&root.join("deployed"), &intended, &addrs, &spec.faults)?;
    config::seal_dir(&root)?;

    let dns_queries: Arc<AtomicUsize> = Default::default();
    let mut tasks = Vec::new();
    if let Some((udp, tcp)) = bound.dns {
        tasks.extend(spawn_dns(udp, tcp, &records, &dns_queries));
    }
    tasks.push(spawn_gateway(
        bound.gateway,
        &certs,
        &addrs,
        &ports,
        &faults,
    )?);
    tasks.push(spawn_router(bound.router, &certs, routes.clone())?);
    tasks.push(spawn_portainer(bound.portainer, &certs, &faults)?);
    tasks.push(spawn_agent(bound.agent, &certs)?);
    if let Some(l) = bound.qdrant {
        tasks.push(spawn_qdrant(l, &faults));
    }
    if let Some(l) = bound.ca {
        tasks.push(spawn_step_ca(l, &certs)?);
    }
    if reference.is_some() {
        tasks.extend(spawn_declared_backends(&intended, &addrs, &ports).await?);
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
        faults: distinct(&spec.faults),
        dns_records: records,
        routes,
        startup: t0.elapsed(),
        dns_queries,
        tasks,
        _temp: temp,
    })
}

/// The faults in the order given, each once.
fn distinct(faults: &[Fault]) -> Vec<Fault> {
    let mut out: Vec<Fault> = Vec::new();
    for f in faults {
        if !out.contains(f) {
            out.push(*f);
        }
    }
    out
}

/// The lab's root: `spec.dir` (refused unless empty or the lab's own), else a private temp dir.
fn root_dir(spec: &LabSpec) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
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
    Ok((std::fs::canonicalize(&root).unwrap_or(root), temp))
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

/// Every listener the lab serves on (`None`: the component is down by a fault).
struct Bound {
    dns: Option<(UdpSocket, TcpListener)>,
    gateway: TcpListener,
    router: TcpListener,
    portainer: TcpListener,
    agent: TcpListener,
    qdrant: Option<TcpListener>,
    ca: Option<TcpListener>,
}

/// The listeners on the platform's well-known ports (53/443/80), which may need root.
struct Front {
    dns: Option<(UdpSocket, TcpListener)>,
    gateway: TcpListener,
    router: TcpListener,
}

async fn bind_front(addrs: &Addrs, ports: &Ports, dns: bool) -> std::io::Result<Front> {
    let dns = if dns {
        let a = SocketAddr::from((addrs.host, ports.dns));
        Some((UdpSocket::bind(a).await?, TcpListener::bind(a).await?))
    } else {
        None
    };
    Ok(Front {
        dns,
        gateway: TcpListener::bind((addrs.gateway, ports.gateway)).await?,
        router: TcpListener::bind((addrs.router, ports.router)).await?,
    })
}

/// The front listeners on the well-known ports, or on high ports when those are refused.
async fn bind_front_ports(addrs: &Addrs, want_dns: bool) -> Result<(Ports, Front)> {
    let mut ports = Ports::new(!effective_root());
    let failed = |ports: &Ports, e: std::io::Error| {
        Error::tool(format!(
            "lab: binding DNS/gateway/router on {} (ports {}/{}/{}): {e}",
            addrs.net(),
            ports.dns,
            ports.gateway,
            ports.router
        ))
    };
    let front = match bind_front(addrs, &ports, want_dns).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && !ports.high => {
            ports = Ports::new(true);
            bind_front(addrs, &ports, want_dns)
                .await
                .map_err(|e| failed(&ports, e))?
        }
        Err(e) => return Err(failed(&ports, e)),
    };
    Ok((ports, front))
}

async fn bind_tcp(what: &str, addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| bind_err(what, addr, e))
}

/// A listener unless `down` (a fault takes the component away).
async fn bind_unless(down: bool, what: &str, addr: SocketAddr) -> Result<Option<TcpListener>> {
    if down {
        return Ok(None);
    }
    bind_tcp(what, addr).await.map(Some)
}

/// Bind every component's listener.
async fn bind_all(addrs: &Addrs, faults: &Faults) -> Result<(Ports, Bound)> {
    let (ports, front) = bind_front_ports(addrs, !faults.has(Fault::DnsDown)).await?;
    let at = |ip: Ipv4Addr, port: u16| SocketAddr::from((ip, port));
    let bound = Bound {
        dns: front.dns,
        gateway: front.gateway,
        router: front.router,
        portainer: bind_tcp("Portainer", at(addrs.portainer, ports.portainer)).await?,
        agent: bind_tcp(
            "the agent",
            at(
                addrs.agent,
                roots::agent_port(&ports, faults.has(Fault::AgentMoved)),
            ),
        )
        .await?,
        qdrant: bind_unless(
            faults.has(Fault::QdrantDown),
            "qdrant",
            at(addrs.agent, ports.qdrant),
        )
        .await?,
        ca: bind_unless(faults.has(Fault::CaDown), "step-ca", at(addrs.ca, ports.ca)).await?,
    };
    Ok((ports, bound))
}

/// The lab's certificates: the platform's step-ca hierarchy, its leaves, and the foreign CA
/// some faults use.
struct Certs {
    root: Ca,
    intermediate: Ca,
    /// A root and intermediate the platform does not trust (faults `untrusted-ca`,
    /// `client-cert-rejected`).
    other: Option<(Ca, Ca)>,
    gateway: Leaf,
    /// The gateway's certificate file at the manifest's cert_path: the served one, or a newer
    /// one the gateway did not load (`cert-not-reloaded`).
    gateway_on_disk: Leaf,
    portainer: Leaf,
    step_ca: Leaf,
    router_client: Leaf,
    agent: Leaf,
}

impl Certs {
    fn issue(addrs: &Addrs, faults: &Faults, reference: Option<&Reference>) -> Result<Certs> {
        let root = pki::root(pki::ROOT_CN)?;
        let intermediate = pki::intermediate(&root, pki::INTERMEDIATE_CN)?;
        let other = if faults.has(Fault::UntrustedCa) || faults.has(Fault::ClientCertRejected) {
            let r = pki::root("Other Internal CA Root CA")?;
            let i = pki::intermediate(&r, "Other Internal CA Intermediate CA")?;
            Some((r, i))
        } else {
            None
        };
        let gateway = gateway_leaf(&intermediate, other.as_ref(), faults, reference, false)?;
        let gateway_on_disk = if faults.has(Fault::CertNotReloaded) {
            gateway_leaf(&intermediate, other.as_ref(), faults, reference, true)?
        } else {
            gateway.clone()
        };
        let portainer = portainer_leaf(&intermediate, addrs, faults)?;
        let step_ca = pki::issue(
            &intermediate,
            &fqdn("ca"),
            &[&fqdn("ca"), DOMAIN, &format!("*.{DOMAIN}")],
            &[IpAddr::V4(addrs.ca)],
            SERVER_EKU,
            Validity::Day,
        )?;
        let traefik = fqdn("traefik");
        let router_client = pki::issue(
            &intermediate,
            &traefik,
            &[&traefik],
            &[],
            CLIENT_EKU,
            Validity::Day,
        )?;
        let agent = pki::self_signed(
            "portainer-agent",
            &["localhost"],
            &[IpAddr::V4(addrs.agent)],
        )?;
        Ok(Certs {
            root,
            intermediate,
            other,
            gateway,
            gateway_on_disk,
            portainer,
            step_ca,
            router_client,
            agent,
        })
    }
}

/// The names the gateway's certificate carries: the reference's server names (or the built-in
/// platform's three), without qdrant's under fault `wrong-san`.
fn gateway_names(reference: Option<Vec<String>>, wrong_san: bool) -> Vec<String> {
    let names = reference.unwrap_or_else(|| vec![fqdn("nginx"), fqdn("portainer"), fqdn("qdrant")]);
    let qdrant = fqdn("qdrant");
    names
        .into_iter()
        .filter(|n| !(wrong_san && *n == qdrant))
        .collect()
}

/// The gateway's certificate: issued by the platform's intermediate (the foreign one under
/// `untrusted-ca`), expired under `expired-leaf`, served without its intermediate under
/// `intermediate-missing`, issued 20 hours ago under `cert-not-reloaded` unless `renewed` (the
/// file the renewal wrote, which the gateway did not load).
fn gateway_leaf(
    intermediate: &Ca,
    other: Option<&(Ca, Ca)>,
    faults: &Faults,
    reference: Option<&Reference>,
    renewed: bool,
) -> Result<Leaf> {
    let names = gateway_names(
        reference.map(Reference::gateway_names),
        faults.has(Fault::WrongSan),
    );
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let validity = if faults.has(Fault::ExpiredLeaf) {
        Validity::Expired
    } else if faults.has(Fault::CertNotReloaded) && !renewed {
        Validity::Old
    } else {
        Validity::Day
    };
    let issuer = match (other, faults.has(Fault::UntrustedCa)) {
        (Some((_, i)), true) => i,
        _ => intermediate,
    };
    let leaf = pki::issue(issuer, &fqdn("nginx"), &names, &[], SERVER_EKU, validity)?;
    Ok(if faults.has(Fault::IntermediateMissing) {
        leaf.leaf_only()
    } else {
        leaf
    })
}

/// Portainer's certificate: from the platform's CA, or self-signed under `backend-tls`.
fn portainer_leaf(intermediate: &Ca, addrs: &Addrs, faults: &Faults) -> Result<Leaf> {
    let ip = [IpAddr::V4(addrs.portainer)];
    if faults.has(Fault::BackendTls) {
        return pki::self_signed("portainer", &["localhost"], &ip);
    }
    let name = fqdn("portainer");
    pki::issue(
        intermediate,
        &name,
        &[&name],
        &ip,
        SERVER_EKU,
        Validity::Day,
    )
}

fn write_file(path: &Path, contents: &str) -> Result<()> {
    config::write_new(path, contents, 0o644)
}

/// Write the PEM files under `pki_dir` (keys 0600).
fn write_pki(pki_dir: &Path, certs: &Certs) -> Result<PkiFiles> {
    let files = PkiFiles::at(pki_dir);
    write_file(&files.root_ca, &certs.root.pem())?;
    write_file(&files.intermediate, &certs.intermediate.pem())?;
    let bundle = format!("{}{}", certs.intermediate.pem(), certs.root.pem());
    write_file(&files.ca_bundle, &bundle)?;
    for (leaf, cert, key) in [
        (
            &certs.gateway_on_disk,
            &files.gateway_cert,
            &files.gateway_key,
        ),
        (
            &certs.portainer,
            &files.portainer_cert,
            &files.portainer_key,
        ),
        (&certs.step_ca, &files.step_ca_cert, &files.step_ca_key),
        (
            &certs.router_client,
            &files.router_client_cert,
            &files.router_client_key,
        ),
        (&certs.agent, &files.agent_cert, &files.agent_key),
    ] {
        write_file(cert, &leaf.chain_pem)?;
        config::write_new(key, &leaf.key_pem, 0o600)?;
    }
    Ok(files)
}

impl PkiFiles {
    /// Where the lab writes each PEM file under `pki_dir`.
    fn at(pki_dir: &Path) -> PkiFiles {
        let p = |n: &str| pki_dir.join(n);
        PkiFiles {
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
        }
    }
    /// The files the config dir and the site file name.
    fn config_paths(&self) -> config::PkiPaths {
        config::PkiPaths {
            root_ca: self.root_ca.clone(),
            ca_bundle: self.ca_bundle.clone(),
            gateway_cert: self.gateway_cert.clone(),
            gateway_key: self.gateway_key.clone(),
            portainer_cert: self.portainer_cert.clone(),
            portainer_key: self.portainer_key.clone(),
            router_client_cert: self.router_client_cert.clone(),
            router_client_key: self.router_client_key.clone(),
        }
    }
}

/// What the lab's nameserver answers: the records the generator derives, minus qdrant's under
/// `nxdomain`, the agent's name on the gateway under `agent-dns-gateway`.
fn dns_records(
    intended: &crate::model::Intended,
    faults: &Faults,
    addrs: &Addrs,
) -> Vec<(String, Ipv4Addr)> {
    let mut records = model_records(intended);
    if faults.has(Fault::Nxdomain) {
        records.retain(|(h, _)| *h != fqdn("qdrant"));
    }
    if faults.has(Fault::AgentDnsGateway) {
        for (h, ip) in records.iter_mut() {
            if *h == fqdn("portainer-agent") {
                *ip = addrs.gateway;
            }
        }
    }
    if faults.has(Fault::DnsmasqStale) {
        // The stale records file dnsmasq loads maps qdrant to the old address.
        for (h, ip) in records.iter_mut() {
            if *h == fqdn("qdrant") {
                *ip = addrs.old_portainer;
            }
        }
    }
    records
}

/// The router's routes: the model's, without qdrant's under `no-route`.
fn router_routes(intended: &crate::model::Intended, faults: &Faults) -> Vec<Route> {
    let mut routes = model_routes(intended);
    if faults.has(Fault::NoRoute) {
        routes.retain(|r| r.host != fqdn("qdrant"));
    }
    if faults.has(Fault::TraefikRouterHandEdited) {
        // The narrowed rule matches no request of a trace (they ask for paths outside /admin):
        // the route is gone for them.
        routes.retain(|r| !(r.host == fqdn("portainer") && r.provider == "file"));
    }
    routes
}

/// The nameserver on UDP and TCP, counting the queries it answers.
fn spawn_dns(
    udp: UdpSocket,
    tcp: TcpListener,
    records: &[(String, Ipv4Addr)],
    queries: &Arc<AtomicUsize>,
) -> [JoinHandle<()>; 2] {
    let zone = Arc::new(dns::Zone {
        domain: DOMAIN.to_string(),
        records: records.to_vec(),
        queries: queries.clone(),
    });
    [
        tokio::spawn(dns::serve_udp(udp, zone.clone())),
        tokio::spawn(dns::serve_tcp(tcp, zone)),
    ]
}

/// The NGINX-like gateway: TLS with the gateway's certificate, proxying to the router (to the
/// router's port + 1 under `gateway-upstream-drifted`, as its deployed site says).
fn spawn_gateway(
    l: TcpListener,
    certs: &Certs,
    addrs: &Addrs,
    ports: &Ports,
    faults: &Faults,
) -> Result<JoinHandle<()>> {
    let tls = servers::server_config("the gateway", &certs.gateway, servers::ClientAuth::None)?;
    let port = if faults.has(Fault::GatewayUpstreamDrifted) {
        super::drifted_router_port(ports.router)
    } else {
        ports.router
    };
    let router = SocketAddr::from((addrs.router, port));
    Ok(tokio::spawn(servers::serve(
        l,
        Some(tls),
        servers::gateway(router),
    )))
}

/// The Traefik-like router: plain HTTP in, its client identity towards https backends.
fn spawn_router(l: TcpListener, certs: &Certs, routes: Vec<Route>) -> Result<JoinHandle<()>> {
    let client = servers::router_client(certs.root.der(), &certs.router_client)?;
    Ok(tokio::spawn(servers::serve(
        l,
        None,
        servers::router(routes, client),
    )))
}

/// Who Portainer accepts as a client: the platform's root, a foreign root under
/// `client-cert-rejected`, anyone under `mtls-not-enforced`.
fn portainer_client_auth(certs: &Certs, faults: &Faults) -> servers::ClientAuth {
    if faults.has(Fault::MtlsNotEnforced) {
        return servers::ClientAuth::None;
    }
    match (&certs.other, faults.has(Fault::ClientCertRejected)) {
        (Some((r, _)), true) => servers::ClientAuth::Require(vec![r.der()]),
        _ => servers::ClientAuth::Require(vec![certs.root.der()]),
    }
}

/// The Portainer-like mTLS API.
fn spawn_portainer(l: TcpListener, certs: &Certs, faults: &Faults) -> Result<JoinHandle<()>> {
    let auth = portainer_client_auth(certs, faults);
    let tls = servers::server_config("Portainer", &certs.portainer, auth)?;
    let id = instance_id(&certs.root.der());
    Ok(tokio::spawn(servers::serve(
        l,
        Some(tls),
        servers::portainer(id),
    )))
}

/// The Portainer agent (self-signed, as the real one).
fn spawn_agent(l: TcpListener, certs: &Certs) -> Result<JoinHandle<()>> {
    let tls = servers::server_config("the agent", &certs.agent, servers::ClientAuth::None)?;
    Ok(tokio::spawn(servers::serve(l, Some(tls), servers::agent())))
}

/// qdrant (plain HTTP), slow under `slow-backend`.
fn spawn_qdrant(l: TcpListener, faults: &Faults) -> JoinHandle<()> {
    let delay = faults.has(Fault::SlowBackend).then_some(SLOW_BACKEND_DELAY);
    tokio::spawn(servers::serve(l, None, servers::qdrant(delay)))
}

/// step-ca's health endpoint over TLS.
fn spawn_step_ca(l: TcpListener, certs: &Certs) -> Result<JoinHandle<()>> {
    let tls = servers::server_config("step-ca", &certs.step_ca, servers::ClientAuth::None)?;
    Ok(tokio::spawn(servers::serve(
        l,
        Some(tls),
        servers::step_ca(),
    )))
}

/// Every other service a reference config's traces expect to answer.
async fn spawn_declared_backends(
    intended: &crate::model::Intended,
    addrs: &Addrs,
    ports: &Ports,
) -> Result<Vec<JoinHandle<()>>> {
    let own = [
        SocketAddr::from((addrs.host, ports.dns)),
        SocketAddr::from((addrs.gateway, ports.gateway)),
        SocketAddr::from((addrs.router, ports.router)),
        SocketAddr::from((addrs.portainer, ports.portainer)),
        SocketAddr::from((addrs.agent, ports.agent)),
        SocketAddr::from((addrs.agent, ports.qdrant)),
        SocketAddr::from((addrs.ca, ports.ca)),
    ];
    let backends = reference::declared_backends(intended, &own)?;
    reference::serve_backends(&backends).await
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
fn model_routes(m: &crate::model::Intended) -> Vec<Route> {
    let mut out = Vec::new();
    for r in &m.routes.routes {
        let backend = match (r.is_api, r.backend, r.scheme) {
            (true, _, _) => Backend::Api,
            (false, Some(a), crate::observe::Scheme::Https) => Backend::Https(a),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The intended state of the built-in lab platform, as the lab writes it.
    fn lab_model() -> crate::model::Intended {
        let dir = tempfile::tempdir().expect("temp dir");
        let addrs = Addrs::new(0);
        let pki = PkiFiles::at(&dir.path().join("pki")).config_paths();
        let cfg = config::build(&addrs, &pki).expect("lab config");
        let written = config::write_dir(dir.path(), &cfg, &addrs, &Ports::new(true), &pki, &[])
            .expect("lab config dir");
        crate::model::load(&written.config_dir, Some(&written.stacks_dir)).expect("lab loads")
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn gateway_names_are_the_three_platform_names_unless_wrong_san_drops_qdrant() {
        let all = names(&[
            "nginx.internal.thinkheads.ai",
            "portainer.internal.thinkheads.ai",
            "qdrant.internal.thinkheads.ai",
        ]);
        assert_eq!(gateway_names(None, false), all);
        assert_eq!(gateway_names(None, true), all[..2].to_vec());
        let reference = names(&["qdrant.internal.thinkheads.ai", "a.internal.thinkheads.ai"]);
        assert_eq!(gateway_names(Some(reference.clone()), false), reference);
        assert_eq!(
            gateway_names(Some(reference), true),
            names(&["a.internal.thinkheads.ai"])
        );
    }

    #[test]
    fn faults_are_kept_once_in_the_order_given() {
        let got = distinct(&[Fault::NoRoute, Fault::Nxdomain, Fault::NoRoute]);
        assert_eq!(got, vec![Fault::NoRoute, Fault::Nxdomain]);
    }

    #[test]
    fn dns_faults_change_exactly_the_records_they_name() {
        let m = lab_model();
        let addrs = Addrs::new(0);
        let healthy = dns_records(&m, &Faults::new(&[]), &addrs);
        let ip_of =
            |rs: &[(String, Ipv4Addr)], h: &str| rs.iter().find(|(n, _)| n == h).map(|(_, ip)| *ip);
        assert!(ip_of(&healthy, "qdrant.internal.thinkheads.ai").is_some());
        let agent = ip_of(&healthy, "portainer-agent.internal.thinkheads.ai");
        assert!(agent.is_some_and(|ip| ip != addrs.gateway));

        let nx = dns_records(&m, &Faults::new(&[Fault::Nxdomain]), &addrs);
        assert_eq!(ip_of(&nx, "qdrant.internal.thinkheads.ai"), None);
        assert_eq!(nx.len(), healthy.len() - 1);

        let gw = dns_records(&m, &Faults::new(&[Fault::AgentDnsGateway]), &addrs);
        let agent_name = "portainer-agent.internal.thinkheads.ai";
        assert_eq!(ip_of(&gw, agent_name), Some(addrs.gateway));
        let others = |rs: &[(String, Ipv4Addr)]| {
            rs.iter()
                .filter(|(n, _)| n != agent_name)
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(others(&gw), others(&healthy));
    }

    #[test]
    fn no_route_removes_only_the_qdrant_route() {
        let m = lab_model();
        let healthy = router_routes(&m, &Faults::new(&[]));
        let qdrant = "qdrant.internal.thinkheads.ai";
        assert!(healthy.iter().any(|r| r.host == qdrant));
        let cut = router_routes(&m, &Faults::new(&[Fault::NoRoute]));
        let kept: Vec<&Route> = healthy.iter().filter(|r| r.host != qdrant).collect();
        assert_eq!(cut.iter().collect::<Vec<_>>(), kept);
    }

    #[test]
    fn portainer_trusts_the_platform_root_unless_a_fault_says_otherwise() {
        let addrs = Addrs::new(0);
        let certs =
            Certs::issue(&addrs, &Faults::new(&[Fault::ClientCertRejected]), None).expect("certs");
        let roots = |auth| match auth {
            servers::ClientAuth::Require(r) => Some(r),
            servers::ClientAuth::None => None,
        };
        let healthy = roots(portainer_client_auth(&certs, &Faults::new(&[])));
        assert_eq!(healthy, Some(vec![certs.root.der()]));
        let rejected = Faults::new(&[Fault::ClientCertRejected]);
        let other = certs.other.as_ref().map(|(r, _)| r.der()).expect("other");
        assert_eq!(
            roots(portainer_client_auth(&certs, &rejected)),
            Some(vec![other])
        );
        let open = Faults::new(&[Fault::MtlsNotEnforced]);
        assert!(roots(portainer_client_auth(&certs, &open)).is_none());
    }
}
