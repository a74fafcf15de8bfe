//! Reading the platform's JSON config files as they really are, with provenance for every value.
//!
//! [`load`] reads a config dir (`phoenix_hypervisor_config.json`, `phoenix_lxc_configs.json`,
//! `phoenix_vm_configs.json`, `certificate-manifest.json`, `traefik/traefik.yml.template`, the
//! optional site file `phoenix-doctor.toml`) and the stacks dir (`stacks/*/phoenix.json`) into a
//! [`RawConfig`]. Every historical shape of the files is accepted (see `docs/config.md`); unknown
//! keys are ignored; secrets are never read into memory.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

pub mod access;
pub mod json;
pub mod site;
pub mod text;
pub mod traefik;
pub mod values;

use crate::error::Error;
use crate::fsutil::{read_bounded_string, FileKind, ReadError};
use access::{At, Doc};
pub use site::{SiteFile, SitePorts, SiteVantage};
pub use text::Text;
pub use traefik::TraefikStatic;
pub use values::{AddrSpec, Direction, GuestKind, IpSpec, PortSet};

/// Where a value came from: the file, the JSON pointer inside it, and the 1-based line. The
/// file name and the pointer are shared [`Text`]: every copy of a provenance (raw config,
/// model, findings) points at the same characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Provenance {
    pub file: Text,
    pub pointer: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

impl Provenance {
    pub fn new(file: impl Into<Text>, pointer: impl Into<Text>, line: Option<u32>) -> Self {
        Provenance {
            file: file.into(),
            pointer: pointer.into(),
            line,
        }
    }

    /// A value the platform hard-codes in a script rather than in a config file.
    pub fn platform(script: &str, what: &str) -> Self {
        Provenance::new(format!("platform:{script}"), what, None)
    }
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{} {}", self.file, l, self.pointer),
            None => write!(f, "{} {}", self.file, self.pointer),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Val<T> {
    pub value: T,
    pub prov: Provenance,
}

impl<T> Val<T> {
    pub fn new(value: T, prov: Provenance) -> Self {
        Val { value, prov }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Val<U> {
        Val {
            value: f(self.value),
            prov: self.prov,
        }
    }
}

/// Every config file, read as it is.
#[derive(Debug, Clone, Serialize)]
pub struct RawConfig {
    pub config_dir: PathBuf,
    pub stacks_dir: PathBuf,
    pub hypervisor: RawHypervisor,
    /// LXCs in file order (the generators iterate in this order).
    pub lxcs: Vec<RawGuest>,
    /// VMs in file order.
    pub vms: Vec<RawGuest>,
    /// Stack manifests, sorted by directory name (shell glob order).
    pub stacks: Vec<RawStack>,
    /// `certificate-manifest.json` entries (empty if the file is absent).
    pub certs: Vec<RawCert>,
    /// `traefik/traefik.yml.template`, if present.
    pub traefik: Option<TraefikStatic>,
    /// `phoenix-doctor.toml`, if present (else all defaults).
    pub site: SiteFile,
    /// Things worth knowing that are not errors (an optional file was absent, ...).
    pub notes: Vec<String>,
    /// Older shapes of the config read as the platform's scripts of that time read them (a
    /// default for an absent key, no VMs for an absent VM file); `lint` reports each.
    pub assumptions: Vec<Assumption>,
}

/// A reading of an older config shape that the platform's scripts made too, reported as an
/// info finding with `code` so the operator knows what was assumed and where.
#[derive(Debug, Clone, Serialize)]
pub struct Assumption {
    pub code: AssumptionKind,
    pub title: String,
    /// What the tool used instead, and why.
    pub detail: String,
    pub prov: Provenance,
}

/// Which older reading an [`Assumption`] is (serialized as the code `lint` reports it with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AssumptionKind {
    /// No `domain_name`: the domain the scripts hard-coded is used.
    #[serde(rename = "PD-CFG-001")]
    DefaultDomain,
    /// No `phoenix_vm_configs.json`: the platform has no VMs.
    #[serde(rename = "PD-CFG-002")]
    NoVmFile,
}

/// The domain the platform's scripts used before `domain_name` existed (they hard-coded it).
pub const DEFAULT_DOMAIN: &str = "internal.thinkheads.ai";

/// `phoenix_hypervisor_config.json`, the network-relevant parts.
#[derive(Debug, Clone, Serialize)]
pub struct RawHypervisor {
    pub file: String,
    pub domain: Val<String>,
    /// `.network.interfaces.address`: the host's IP on the bridge (dnsmasq listens here).
    pub host_address: Val<IpSpec>,
    pub host_gateway: Option<Val<String>>,
    /// `.network.interfaces.dns_nameservers` (string or list).
    pub dns_nameservers: Vec<Val<String>>,
    pub default_subnet: Option<Val<String>>,
    pub portainer_server_ip: Option<Val<String>>,
    pub portainer_server_port: Option<Val<u16>>,
    pub portainer_agent_port: Option<Val<u16>>,
    pub portainer_hostname: Option<Val<String>>,
    pub dns_server: Option<RawDnsServer>,
    /// `.shared_volumes.firewall`.
    pub firewall: Option<RawClusterFirewall>,
    /// `.step_ca.dns_name`.
    pub step_ca_dns_name: Option<Val<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RawDnsServer {
    pub enabled: Val<bool>,
    pub upstream_servers: Vec<Val<String>>,
    pub prov: Provenance,
}

#[derive(Debug, Clone, Serialize)]
pub struct RawClusterFirewall {
    pub enabled: Val<bool>,
    pub policy_in: Option<Val<String>>,
    pub policy_out: Option<Val<String>>,
    pub rules: Vec<RawRule>,
    pub prov: Provenance,
}

/// One LXC (`lxc_configs.<ctid>`) or VM (`vms[i]`).
#[derive(Debug, Clone, Serialize)]
pub struct RawGuest {
    pub kind: GuestKind,
    pub id: Val<u32>,
    pub name: Option<Val<String>>,
    pub ip: Option<Val<IpSpec>>,
    pub gw: Option<Val<String>>,
    /// `network_config.nameserver` or `.nameservers`, string or list, in order.
    pub nameservers: Vec<Val<String>>,
    pub searchdomain: Option<Val<String>>,
    pub traefik_service: Option<RawTraefikService>,
    pub portainer_role: Option<Val<String>>,
    pub portainer_agent_hostname: Option<Val<String>>,
    pub docker_stacks: Vec<RawStackRef>,
    pub features: Vec<Val<String>>,
    /// `clone_from_ctid` / `clone_from_vmid` (a clone inherits settings it does not set).
    pub clone_from: Option<Val<u32>>,
    pub is_template: bool,
    pub firewall: Option<RawGuestFirewall>,
    pub mount_points: Vec<RawMount>,
    pub prov: Provenance,
}

impl RawGuest {
    pub fn ip_addr(&self) -> Option<std::net::IpAddr> {
        self.ip.as_ref().and_then(|v| v.value.ip())
    }

    pub fn has_feature(&self, f: &str) -> bool {
        self.features.iter().any(|x| x.value == f)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RawTraefikService {
    pub name: Val<String>,
    pub port: Val<u16>,
    pub prov: Provenance,
}

/// A `docker_stacks[]` entry: a name (HEAD) or `{name, environment}` (history).
#[derive(Debug, Clone, Serialize)]
pub struct RawStackRef {
    pub name: Val<String>,
    /// Absent at HEAD, where every stack is deployed as `production`.
    pub environment: Option<Val<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RawGuestFirewall {
    pub enabled: Option<Val<bool>>,
    pub rules: Vec<RawRule>,
    pub prov: Provenance,
}

#[derive(Debug, Clone, Serialize)]
pub struct RawMount {
    pub host_path: Val<String>,
    pub container_path: Val<String>,
}

/// A firewall rule as written in the JSON (strings kept verbatim for rendering).
#[derive(Debug, Clone, Serialize)]
pub struct RawRule {
    pub direction: Val<Direction>,
    pub action: Val<String>,
    pub proto: Option<Val<String>>,
    /// Verbatim `port` (validated as a Proxmox port list).
    pub port: Option<Val<String>>,
    pub source: Option<Val<String>>,
    pub dest: Option<Val<String>>,
    pub iface: Option<Val<String>>,
    pub comment: Option<Val<String>>,
    pub prov: Provenance,
}

/// `stacks/<name>/phoenix.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RawStack {
    pub name: String,
    pub file: String,
    pub description: Option<Val<String>>,
    /// Every environment the manifest declares, in file order.
    pub environments: Vec<Val<String>>,
    /// `environments.production` (the only one HEAD scripts read).
    pub production: Option<RawStackEnv>,
    pub prov: Provenance,
}

#[derive(Debug, Clone, Serialize)]
pub struct RawStackEnv {
    pub services: Vec<RawStackService>,
    pub firewall_rules: Vec<RawRule>,
    /// `variables: [{name, value}]` (history): what docker compose substitutes for `${name}`.
    pub variables: Vec<(String, Val<String>)>,
    pub prov: Provenance,
}

#[derive(Debug, Clone, Serialize)]
pub struct RawStackService {
    pub name: String,
    pub traefik_labels: Vec<Val<String>>,
    pub prov: Provenance,
}

/// A `certificate-manifest.json` entry.
#[derive(Debug, Clone, Serialize)]
pub struct RawCert {
    pub common_name: Val<String>,
    /// `None` when the key is absent (the renewal script then uses the CN only).
    pub sans: Option<Vec<Val<String>>>,
    pub cert_path: Option<Val<String>>,
    pub key_path: Option<Val<String>>,
    pub owner: Option<Val<String>>,
    pub permissions: Option<Val<String>>,
    pub post_renewal_command: Option<Val<String>>,
    pub prov: Provenance,
}

pub const HYPERVISOR_FILE: &str = "phoenix_hypervisor_config.json";
pub const LXC_FILE: &str = "phoenix_lxc_configs.json";
pub const VM_FILE: &str = "phoenix_vm_configs.json";
pub const CERT_FILE: &str = "certificate-manifest.json";
pub const TRAEFIK_TEMPLATE: &str = "traefik/traefik.yml.template";
pub const SITE_FILE: &str = "phoenix-doctor.toml";

/// How a file is named in messages: relative to the config dir's parent when it lies below it
/// (`etc/phoenix_vm_configs.json`, `stacks/qdrant_service/phoenix.json`), else in full.
fn display_name(base: &Path, path: &Path) -> String {
    match path.strip_prefix(base) {
        Ok(rel) if !base.as_os_str().is_empty() => rel.display().to_string(),
        _ => path.display().to_string(),
    }
}

struct Loader {
    base: PathBuf,
}

impl Loader {
    fn read(&self, path: &Path, required: Option<&str>) -> Result<Option<String>, Error> {
        self.read_kind(path, required, FileKind::PlatformConfig)
    }

    fn read_kind(
        &self,
        path: &Path,
        required: Option<&str>,
        kind: FileKind,
    ) -> Result<Option<String>, Error> {
        match read_bounded_string(path, kind) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_not_found() && std::fs::symlink_metadata(path).is_ok() => Err(
                Error::input(format!("cannot read {e} (a dangling symlink)")),
            ),
            Err(e) if e.is_not_found() => match required {
                Some(why) => Err(Error::input(format!(
                    "missing required file {}: looked for {} ({why})",
                    path.file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    path.display()
                ))),
                None => Ok(None),
            },
            Err(ReadError::NotUtf8 { .. }) => Err(Error::input(format!(
                "{}: not valid UTF-8 text",
                display_name(&self.base, path)
            ))),
            Err(e) => Err(Error::input(format!("cannot read {e}"))),
        }
    }

    fn parse(&self, path: &Path, text: &str) -> Result<Doc, Error> {
        let file = display_name(&self.base, path);
        let root = json::parse(text).map_err(|e| {
            crate::error::ConfigError::new(file.to_string(), format!("malformed JSON: {}", e.msg))
                .at_line(Some(e.line as usize))
                .at_column(e.col as usize)
        })?;
        Ok(Doc {
            file: file.into(),
            root,
        })
    }
}

/// Read a platform config dir. `stacks_dir` defaults to `../stacks` beside `config_dir`.
pub fn load(config_dir: &Path, stacks_dir: Option<&Path>) -> Result<RawConfig, Error> {
    if !config_dir.is_dir() {
        return Err(Error::input(format!(
            "config dir {} does not exist or is not a directory (set it with --config-dir or PHOENIX_DOCTOR_CONFIG_DIR; `phoenix-doctor demo` runs against a simulated platform)",
            config_dir.display()
        )));
    }
    let base = config_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let loader = Loader { base: base.clone() };
    let mut notes = Vec::new();
    let why = "the config dir comes from --config-dir or PHOENIX_DOCTOR_CONFIG_DIR";

    let hyp_path = config_dir.join(HYPERVISOR_FILE);
    let hyp_text = loader.read(&hyp_path, Some(why))?.unwrap_or_default();
    let lxc_path = config_dir.join(LXC_FILE);
    let lxc_text = loader.read(&lxc_path, Some(why))?.unwrap_or_default();
    let vm_path = config_dir.join(VM_FILE);
    let vm_text = loader.read(&vm_path, None)?;

    let mut assumptions = Vec::new();
    let hyp_doc = loader.parse(&hyp_path, &hyp_text)?;
    let hypervisor = read_hypervisor(&hyp_doc, &mut assumptions)?;
    let lxc_doc = loader.parse(&lxc_path, &lxc_text)?;
    let lxcs = read_lxcs(&lxc_doc)?;
    let vms = match vm_text {
        Some(t) => read_vms(&loader.parse(&vm_path, &t)?)?,
        None => {
            let file = display_name(&base, &vm_path);
            assumptions.push(Assumption {
                code: AssumptionKind::NoVmFile,
                title: format!("{file} is absent: the platform has no VMs"),
                detail: format!(
                    "no {VM_FILE} in the config dir, as before the platform had VMs; vm-manager.sh has nothing to create, so the model has no VMs, no Portainer and no stacks deployed"
                ),
                prov: Provenance::new(file, "/", None),
            });
            Vec::new()
        }
    };

    let cert_path = config_dir.join(CERT_FILE);
    let certs = match loader.read(&cert_path, None)? {
        Some(t) => read_certs(&loader.parse(&cert_path, &t)?)?,
        None => {
            notes.push(format!(
                "{} not found: no certificates in the model",
                cert_path.display()
            ));
            Vec::new()
        }
    };

    let tpl_path = config_dir.join(TRAEFIK_TEMPLATE);
    let traefik = match loader.read(&tpl_path, None)? {
        Some(t) => Some(traefik::read(&display_name(&base, &tpl_path), &t)?),
        None => {
            notes.push(format!(
                "{} not found: Traefik entrypoints default to web :80",
                tpl_path.display()
            ));
            None
        }
    };

    let site_path = config_dir.join(SITE_FILE);
    let mut site = match loader.read_kind(&site_path, None, FileKind::SiteFile)? {
        Some(t) => site::read(&display_name(&base, &site_path), &t)?,
        None => SiteFile::default(),
    };
    // Relative paths in the site file are taken from the config dir.
    let abs = |v: &mut Val<String>| {
        if !v.value.is_empty() && Path::new(&v.value).is_relative() {
            v.value = config_dir.join(&v.value).display().to_string();
        }
    };
    site.paths.values_mut().for_each(abs);
    for v in site.vantages.values_mut() {
        v.hosts_file.iter_mut().for_each(abs);
        v.resolv_conf.iter_mut().for_each(abs);
    }

    let stacks_dir = match stacks_dir {
        Some(d) => d.to_path_buf(),
        None => base.join("stacks"),
    };
    let stacks = read_stacks(&loader, &stacks_dir, &mut notes)?;

    Ok(RawConfig {
        config_dir: config_dir.to_path_buf(),
        stacks_dir,
        hypervisor,
        lxcs,
        vms,
        stacks,
        certs,
        traefik,
        site,
        notes,
        assumptions,
    })
}

fn read_hypervisor(doc: &Doc, assumptions: &mut Vec<Assumption>) -> Result<RawHypervisor, Error> {
    let root = doc.at();
    root.obj()?;
    let domain = match root.get("domain_name") {
        Some(d) => {
            let domain = d.string()?;
            if domain.value.trim().is_empty() || domain.value.contains(char::is_whitespace) {
                return Err(d.expected("a DNS domain name"));
            }
            domain
        }
        None => {
            let prov = Provenance::new(doc.file.clone(), "/domain_name", None);
            assumptions.push(Assumption {
                code: AssumptionKind::DefaultDomain,
                title: format!("{} has no domain_name: using {DEFAULT_DOMAIN}", doc.file),
                detail: format!(
                    "the key is absent, as before the platform made the domain configurable; the scripts of that time hard-coded {DEFAULT_DOMAIN}, so the model uses it"
                ),
                prov: prov.clone(),
            });
            Val::new(DEFAULT_DOMAIN.to_string(), prov)
        }
    };
    let network = root.field("network", "the host network settings")?;
    network.obj()?;
    let ifaces = network.field("interfaces", "the host bridge interface")?;
    ifaces.obj()?;
    let addr_at = ifaces.field("address", "the host IP on the bridge, e.g. 10.0.0.13/24")?;
    let host_address = ip_spec(&addr_at)?;
    if host_address.value == IpSpec::Dhcp {
        return Err(addr_at.expected("a static IP address or CIDR for the host"));
    }
    let dns_nameservers = match ifaces.get("dns_nameservers") {
        Some(a) => a.string_list()?,
        None => Vec::new(),
    };
    let opt_port = |at: &At, key: &str| at.get(key).map(|a| a.port()).transpose();

    let dns_server = match root.get("dns_server") {
        Some(d) => {
            d.obj()?;
            Some(RawDnsServer {
                enabled: d
                    .opt_bool("enabled")?
                    .unwrap_or_else(|| Val::new(false, d.prov())),
                upstream_servers: match d.get("upstream_servers") {
                    Some(u) => u.string_list()?,
                    None => Vec::new(),
                },
                prov: d.prov(),
            })
        }
        None => None,
    };

    let firewall = match root.get("shared_volumes").and_then(|s| s.get("firewall")) {
        Some(f) => {
            f.obj()?;
            let mut rules = Vec::new();
            for r in f.opt_items("global_firewall_rules")? {
                rules.push(read_rule(&r)?);
            }
            Some(RawClusterFirewall {
                enabled: f
                    .opt_bool("enabled")?
                    .unwrap_or_else(|| Val::new(false, f.prov())),
                policy_in: f.opt_string("default_input_policy")?,
                policy_out: f.opt_string("default_output_policy")?,
                rules,
                prov: f.prov(),
            })
        }
        None => None,
    };

    let portainer_hostname = match root.get("portainer_api") {
        Some(p) => {
            p.obj()?;
            // admin_password and other secrets are deliberately never read.
            p.opt_string("portainer_hostname")?
        }
        None => None,
    };
    let step_ca_dns_name = match root.get("step_ca") {
        Some(s) => {
            s.obj()?;
            s.opt_string("dns_name")?
        }
        None => None,
    };

    Ok(RawHypervisor {
        file: doc.file.to_string(),
        domain,
        host_address,
        host_gateway: ifaces.get("gateway").map(|g| g.string()).transpose()?,
        dns_nameservers,
        default_subnet: network.opt_string("default_subnet")?,
        portainer_server_ip: network.opt_string("portainer_server_ip")?,
        portainer_server_port: opt_port(&network, "portainer_server_port")?,
        portainer_agent_port: opt_port(&network, "portainer_agent_port")?,
        portainer_hostname,
        dns_server,
        firewall,
        step_ca_dns_name,
    })
}

fn ip_spec(at: &At) -> Result<Val<IpSpec>, Error> {
    const WHAT: &str = "an IP address, a CIDR (A.B.C.D/N) or \"dhcp\"";
    let s = at.string().map_err(|_| at.expected(WHAT))?;
    match IpSpec::parse(&s.value) {
        Some(v) => Ok(Val::new(v, s.prov)),
        None => Err(at.expected(WHAT)),
    }
}

fn read_rule(at: &At) -> Result<RawRule, Error> {
    at.obj()?;
    let t = at.field("type", "the rule direction, \"in\" or \"out\"")?;
    let ts = t.string()?;
    let direction = match ts.value.to_ascii_lowercase().as_str() {
        "in" => Direction::In,
        "out" => Direction::Out,
        _ => return Err(t.expected("\"in\" or \"out\"")),
    };
    let action = match at.get("action") {
        Some(a) => a.string()?,
        None => return Err(at.error("missing key `action` (ACCEPT, DROP or REJECT)")),
    };
    let port = match at.get("port") {
        Some(p) => {
            let v = p.string_or_number()?;
            if PortSet::parse(&v.value).is_none() {
                return Err(p.expected("a port list such as \"443\", \"80,443\" or \"8000:8010\""));
            }
            Some(v)
        }
        None => None,
    };
    let addr = |key: &str| -> Result<Option<Val<String>>, Error> {
        match at.get(key) {
            Some(a) => {
                let v = a.string()?;
                if AddrSpec::parse(&v.value).is_none() {
                    return Err(a.expected("an IP address or a CIDR network"));
                }
                Ok(Some(v))
            }
            None => Ok(None),
        }
    };
    Ok(RawRule {
        direction: Val::new(direction, ts.prov),
        action,
        proto: at.opt_string("proto")?,
        port,
        source: addr("source")?,
        dest: addr("dest")?,
        iface: at.opt_string("iface")?,
        comment: at.opt_string("comment")?,
        prov: at.prov(),
    })
}

fn read_guest_firewall(g: &At) -> Result<Option<RawGuestFirewall>, Error> {
    match g.get("firewall") {
        Some(f) => {
            f.obj()?;
            let mut rules = Vec::new();
            for r in f.opt_items("rules")? {
                rules.push(read_rule(&r)?);
            }
            Ok(Some(RawGuestFirewall {
                enabled: f.opt_bool("enabled")?,
                rules,
                prov: f.prov(),
            }))
        }
        None => Ok(None),
    }
}

fn read_guest_common(kind: GuestKind, id: Val<u32>, g: &At) -> Result<RawGuest, Error> {
    g.obj()?;
    let name = g.opt_string("name")?;
    let (mut ip, mut gw, mut nameservers, mut searchdomain) = (None, None, Vec::new(), None);
    if let Some(nc) = g.get("network_config") {
        nc.obj()?;
        if let Some(a) = nc.get("ip") {
            ip = Some(ip_spec(&a)?);
        }
        gw = nc.opt_string("gw")?;
        for key in ["nameservers", "nameserver"] {
            if let Some(ns) = nc.get(key) {
                for v in ns.string_list()? {
                    if IpSpec::parse(&v.value).and_then(|s| s.ip()).is_none() {
                        return Err(ns.expected("nameserver IP addresses"));
                    }
                    nameservers.push(v);
                }
            }
        }
        searchdomain = nc.opt_string("searchdomain")?;
    }
    let traefik_service = match g.get("traefik_service") {
        Some(t) => {
            t.obj()?;
            Some(RawTraefikService {
                name: t.field("name", "the service name")?.string()?,
                port: t.field("port", "the backend port")?.port()?,
                prov: t.prov(),
            })
        }
        None => None,
    };
    let mut docker_stacks = Vec::new();
    for s in g.opt_items("docker_stacks")? {
        if s.is_obj() {
            docker_stacks.push(RawStackRef {
                name: s.field("name", "the stack name")?.string()?,
                environment: s.opt_string("environment")?,
            });
        } else {
            docker_stacks.push(RawStackRef {
                name: s
                    .string()
                    .map_err(|_| s.expected("a stack name or {name, environment}"))?,
                environment: None,
            });
        }
    }
    let mut features = Vec::new();
    for f in g.opt_items("features")? {
        features.push(f.string()?);
    }
    let clone_key = match kind {
        GuestKind::Lxc => "clone_from_ctid",
        GuestKind::Vm => "clone_from_vmid",
    };
    let clone_from = match g.get(clone_key) {
        Some(c) => Some(
            c.uint(u32::MAX as u64, "a guest id")
                .map(|v| v.map(|x| x as u32))?,
        ),
        None => None,
    };
    let mut mount_points = Vec::new();
    for m in g.opt_items("mount_points")? {
        m.obj()?;
        if let (Some(h), Some(c)) = (m.opt_string("host_path")?, m.opt_string("container_path")?) {
            mount_points.push(RawMount {
                host_path: h,
                container_path: c,
            });
        }
    }
    Ok(RawGuest {
        kind,
        id,
        name,
        ip,
        gw,
        nameservers,
        searchdomain,
        traefik_service,
        portainer_role: g.opt_string("portainer_role")?,
        portainer_agent_hostname: g.opt_string("portainer_agent_hostname")?,
        docker_stacks,
        features,
        clone_from,
        is_template: g.opt_bool("is_template")?.is_some_and(|b| b.value),
        firewall: read_guest_firewall(g)?,
        mount_points,
        prov: g.prov(),
    })
}

fn read_lxcs(doc: &Doc) -> Result<Vec<RawGuest>, Error> {
    let root = doc.at();
    root.obj()?;
    let cfgs = root.field("lxc_configs", "an object of containers keyed by CTID")?;
    let mut out = Vec::new();
    for (k, g) in cfgs.members()? {
        let id: u32 = k.parse().map_err(|_| {
            g.error(format_args!(
                "expected a numeric container id as the key, found \"{k}\""
            ))
        })?;
        out.push(read_guest_common(
            GuestKind::Lxc,
            Val::new(id, g.prov()),
            &g,
        )?);
    }
    Ok(out)
}

fn read_vms(doc: &Doc) -> Result<Vec<RawGuest>, Error> {
    let root = doc.at();
    root.obj()?;
    let mut out = Vec::new();
    for g in root.opt_items("vms")? {
        g.obj()?;
        let id = g
            .field("vmid", "the VM id")?
            .uint(u32::MAX as u64, "a numeric VM id")?
            .map(|x| x as u32);
        out.push(read_guest_common(GuestKind::Vm, id, &g)?);
    }
    Ok(out)
}

fn read_certs(doc: &Doc) -> Result<Vec<RawCert>, Error> {
    let mut out = Vec::new();
    for e in doc.at().items()? {
        e.obj()?;
        let sans = match e.get("sans") {
            Some(s) => Some(s.string_list()?),
            None => None,
        };
        out.push(RawCert {
            common_name: e.field("common_name", "the certificate's CN")?.string()?,
            sans,
            cert_path: e.opt_string("cert_path")?,
            key_path: e.opt_string("key_path")?,
            owner: e.opt_string("owner")?,
            permissions: e
                .get("permissions")
                .map(|p| p.string_or_number())
                .transpose()?,
            post_renewal_command: e.opt_string("post_renewal_command")?,
            prov: e.prov(),
        });
    }
    Ok(out)
}

fn read_stacks(
    loader: &Loader,
    dir: &Path,
    notes: &mut Vec<String>,
) -> Result<Vec<RawStack>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            notes.push(format!(
                "stacks dir {} not found: no stacks in the model",
                dir.display()
            ));
            return Ok(Vec::new());
        }
        // The DNS generator's glob over an unreadable dir matches nothing, but a model without
        // the stacks' records would be wrong: refuse rather than skip (docs/config.md).
        Err(e) => {
            return Err(Error::input(format!(
                "cannot read the stacks dir {}: {e}",
                dir.display()
            )))
        }
    };
    // Every `<stack>/phoenix.json` the platform's glob matches (anything at that path, even a
    // dangling symlink or a directory) is read; one that cannot be read is an input error naming
    // it, never silently skipped (jq fails on it in the platform's generators too).
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(
            |p| match std::fs::symlink_metadata(p.join("phoenix.json")) {
                Ok(_) => true,
                Err(e) => !matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ),
            },
        )
        .collect();
    dirs.sort();
    let mut out = Vec::new();
    for d in dirs {
        let path = d.join("phoenix.json");
        let text = loader
            .read(&path, Some("a stack manifest the platform's scripts read"))?
            .unwrap_or_default();
        let doc = loader.parse(&path, &text)?;
        let root = doc.at();
        root.obj()?;
        let name = d
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut environments = Vec::new();
        let mut production = None;
        if let Some(envs) = root.get("environments") {
            for (ename, env) in envs.members()? {
                environments.push(Val::new(ename.clone(), env.prov()));
                if ename != "production" {
                    continue;
                }
                env.obj()?;
                let mut services = Vec::new();
                if let Some(svcs) = env.get("services") {
                    for (sname, s) in svcs.members()? {
                        s.obj()?;
                        let mut labels = Vec::new();
                        for l in s.opt_items("traefik_labels")? {
                            labels.push(l.string()?);
                        }
                        services.push(RawStackService {
                            name: sname,
                            traefik_labels: labels,
                            prov: s.prov(),
                        });
                    }
                }
                let mut firewall_rules = Vec::new();
                for r in env.opt_items("firewall_rules")? {
                    firewall_rules.push(read_rule(&r)?);
                }
                let mut variables = Vec::new();
                for v in env.opt_items("variables")? {
                    v.obj()?;
                    if let (Some(n), Some(val)) = (v.opt_string("name")?, v.get("value")) {
                        variables.push((n.value, val.string_or_number()?));
                    }
                }
                production = Some(RawStackEnv {
                    services,
                    firewall_rules,
                    variables,
                    prov: env.prov(),
                });
            }
        }
        out.push(RawStack {
            name,
            file: doc.file.to_string(),
            description: root.opt_string("description")?,
            environments,
            production,
            prov: root.prov(),
        });
    }
    Ok(out)
}
