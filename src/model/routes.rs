//! Traefik routes as `generate_traefik_config.sh` (v4, HTTP-only) writes them: VMs first, then
//! LXCs in file order, then the dashboard; the backend scheme is decided by guest type (VM →
//! https with the `internal-ca` serversTransport, LXC → http).

use crate::config::{GuestKind, Provenance, RawConfig, Val};
use crate::observe::{Scheme, VantageRef};
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;

const SCRIPT: &str = "generate_traefik_config.sh";
/// `serversTransports.internal-ca.rootCAs[0]` as the generator writes it (a path inside LXC 102).
pub const INTERNAL_CA_ROOT: &str = "/etc/step-ca/ssl/phoenix_root_ca.crt";

/// One router + service of `dynamic_conf.yml`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    /// `traefik_service.name` (`portainer`, `ca`, `traefik-dashboard`).
    pub name: String,
    /// The router key: `<name>-router`.
    pub router: String,
    /// The Host the rule matches: `<name>.<domain>`.
    pub host: String,
    /// ``Host(`<host>`)``.
    pub rule: String,
    /// `<name>-service`, or `api@internal` for the dashboard.
    pub service: String,
    pub entrypoints: Vec<String>,
    /// The backend URL (`https://10.0.0.111:9443`); the dashboard's is `http://127.0.0.1:8080`.
    pub url: String,
    /// `http` or `https`.
    pub scheme: Scheme,
    /// The backend address (None for the dashboard, which Traefik serves itself).
    pub backend: Option<SocketAddr>,
    /// The guest that runs the backend.
    pub guest: Option<VantageRef>,
    pub is_api: bool,
    /// `serversTransport: "internal-ca@file"` (https backends only).
    pub servers_transport: Option<String>,
    pub provenance: Vec<Provenance>,
}

/// The dynamic config as a whole.
#[derive(Debug, Clone, Serialize)]
pub struct Routes {
    pub routes: Vec<Route>,
    /// `serversTransports.internal-ca`: `insecureSkipVerify: false`, these root CAs.
    pub internal_ca_roots: Vec<String>,
    pub insecure_skip_verify: bool,
    /// Lower-cased host → index of the first route with it.
    #[serde(skip)]
    hosts: HashMap<String, usize>,
    /// Name → index of the first route with it.
    #[serde(skip)]
    names: HashMap<String, usize>,
}

impl Routes {
    /// The route whose Host is `host` (case-insensitive; the first one, as Traefik keeps the
    /// first of duplicate YAML keys only if the YAML parser does; duplicates are a lint matter).
    pub fn by_host(&self, host: &str) -> Option<&Route> {
        self.hosts
            .get(&host.to_ascii_lowercase())
            .map(|&i| &self.routes[i])
    }

    pub fn by_name(&self, name: &str) -> Option<&Route> {
        self.names.get(name).map(|&i| &self.routes[i])
    }

    fn new(routes: Vec<Route>) -> Routes {
        let mut hosts = HashMap::with_capacity(routes.len());
        let mut names = HashMap::with_capacity(routes.len());
        for (i, r) in routes.iter().enumerate() {
            hosts.entry(r.host.to_ascii_lowercase()).or_insert(i);
            names.entry(r.name.clone()).or_insert(i);
        }
        Routes {
            routes,
            internal_ca_roots: vec![INTERNAL_CA_ROOT.to_string()],
            insecure_skip_verify: false,
            hosts,
            names,
        }
    }
}

pub(crate) fn derive(raw: &RawConfig, domain: &str, notes: &mut Vec<String>) -> Routes {
    let mut routes = Vec::new();
    let guests = raw
        .vms
        .iter()
        .filter(|g| g.kind == GuestKind::Vm)
        .chain(raw.lxcs.iter());
    for g in guests {
        let Some(ts) = &g.traefik_service else {
            continue;
        };
        let (scheme, vantage) = match g.kind {
            GuestKind::Vm => (Scheme::Https, VantageRef::Vm(g.id.value)),
            GuestKind::Lxc => (Scheme::Http, VantageRef::Lxc(g.id.value)),
        };
        let ip_text = match &g.ip {
            Some(ip) => match ip.value.ip() {
                Some(a) => a.to_string(),
                None => "dhcp".to_string(),
            },
            None => {
                notes.push(format!(
                    "{vantage} has traefik_service but no network_config.ip: the Traefik generator writes an unusable URL for it"
                ));
                "null".to_string()
            }
        };
        let url = format!("{scheme}://{ip_text}:{}", ts.port.value);
        let backend = g.ip_addr().map(|a| SocketAddr::new(a, ts.port.value));
        let host = format!("{}.{domain}", ts.name.value);
        let mut provenance = vec![ts.name.prov.clone(), ts.port.prov.clone()];
        if let Some(ip) = &g.ip {
            provenance.push(ip.prov.clone());
        }
        routes.push(Route {
            name: ts.name.value.clone(),
            router: format!("{}-router", ts.name.value),
            rule: format!("Host(`{host}`)"),
            host,
            service: format!("{}-service", ts.name.value),
            entrypoints: vec!["web".to_string()],
            url,
            scheme,
            backend,
            guest: Some(vantage),
            is_api: false,
            servers_transport: scheme.is_tls().then(|| "internal-ca@file".to_string()),
            provenance,
        });
    }
    let host = format!("traefik.{domain}");
    routes.push(Route {
        name: "traefik-dashboard".to_string(),
        router: "traefik-dashboard-router".to_string(),
        rule: format!("Host(`{host}`)"),
        host,
        service: "api@internal".to_string(),
        entrypoints: vec!["web".to_string()],
        url: "http://127.0.0.1:8080".to_string(),
        scheme: Scheme::Http,
        backend: None,
        guest: None,
        is_api: true,
        servers_transport: None,
        provenance: vec![Provenance::platform(
            SCRIPT,
            "traefik-dashboard (api@internal)",
        )],
    });
    Routes::new(routes)
}

/// Stack label routers (`traefik.http.routers.<r>.*`) and services, parsed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelRouter {
    pub name: String,
    pub rule: Option<Val<String>>,
    /// The first ``Host(`...`)`` of the rule.
    pub host: Option<String>,
    pub entrypoints: Vec<Val<String>>,
    pub tls: Option<Val<bool>>,
    pub certresolver: Option<Val<String>>,
}
