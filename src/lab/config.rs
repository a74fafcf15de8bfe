//! The lab's platform-format config dir: the reference JSON files moved onto loopback, the
//! stacks, the Traefik template, the site file, the vantages' system files; and the DNS
//! records and router routes derived from that config the way the platform derives them.

use super::{Addrs, Fault, Ports};
use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The platform's domain.
pub const DOMAIN: &str = "internal.thinkheads.ai";

const REF_HYP: &str =
    include_str!("../../fixtures/configs/reference/etc/phoenix_hypervisor_config.json");
const REF_LXC: &str = include_str!("../../fixtures/configs/reference/etc/phoenix_lxc_configs.json");
const REF_VM: &str = include_str!("../../fixtures/configs/reference/etc/phoenix_vm_configs.json");
const REF_PORTAINER_STACK: &str =
    include_str!("../../fixtures/configs/reference/stacks/portainer_service/phoenix.json");
const REF_QDRANT_STACK: &str =
    include_str!("../../fixtures/configs/reference/stacks/qdrant_service/phoenix.json");

/// The lab's config, as JSON values (what is written to disk).
pub struct LabConfig {
    pub hypervisor: Value,
    pub lxc: Value,
    pub vm: Value,
    pub manifest: Value,
    /// `(stack name, stacks/<name>/phoenix.json)`.
    pub stacks: Vec<(String, Value)>,
}

/// Files the lab's PKI wrote, as the site file and the manifest name them.
pub struct PkiPaths {
    pub root_ca: PathBuf,
    pub ca_bundle: PathBuf,
    pub gateway_cert: PathBuf,
    pub gateway_key: PathBuf,
    pub portainer_cert: PathBuf,
    pub portainer_key: PathBuf,
    pub router_client_cert: PathBuf,
    pub router_client_key: PathBuf,
}

fn parse(text: &str, what: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        Error::tool(format!(
            "lab: the embedded reference {what} is not JSON: {e}"
        ))
    })
}

/// Move every `10.0.0.x` address of a reference value onto the lab's loopback block.
pub(super) fn relocate(v: &mut Value, addrs: &Addrs) {
    match v {
        Value::String(s) => {
            if s == "10.0.0.0/24" {
                *s = "127.0.0.0/8".to_string();
                return;
            }
            if s.contains("10.0.0.") {
                let prefix = format!("127.{}.0.", addrs.octet);
                let mut out = s.replace("10.0.0.", &prefix);
                if out.starts_with(&prefix) && out.ends_with("/24") && !out.contains(',') {
                    out.truncate(out.len() - 3);
                    out.push_str("/8");
                }
                *s = out;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| relocate(x, addrs)),
        Value::Object(o) => o.values_mut().for_each(|x| relocate(x, addrs)),
        _ => {}
    }
}

/// Build the lab's config from the reference platform config.
pub fn build(addrs: &Addrs, pki: &PkiPaths) -> Result<LabConfig> {
    let mut hyp = parse(REF_HYP, "phoenix_hypervisor_config.json")?;
    relocate(&mut hyp, addrs);
    hyp["network"]["interfaces"]["address"] = json!(format!("{}/8", addrs.host));
    hyp["network"]["interfaces"]["dns_nameservers"] = json!([addrs.host.to_string()]);
    hyp["network"]["fallback_dns"] = json!(addrs.host.to_string());
    hyp["dns_server"]["upstream_servers"] = json!([]);
    hyp["portainer_api"]["admin_password"] = json!("lab-placeholder-password");

    let mut lxc = parse(REF_LXC, "phoenix_lxc_configs.json")?;
    if let Some(map) = lxc["lxc_configs"].as_object_mut() {
        map.retain(|id, _| matches!(id.as_str(), "101" | "102" | "103"));
    }
    relocate(&mut lxc, addrs);

    let mut vm = parse(REF_VM, "phoenix_vm_configs.json")?;
    relocate(&mut vm, addrs);
    if let Some(vms) = vm["vms"].as_array_mut() {
        for v in vms.iter_mut() {
            if v["vmid"] == json!(1002) {
                v["docker_stacks"] = json!(["qdrant_service"]);
            }
        }
    }

    let mut portainer = parse(REF_PORTAINER_STACK, "portainer_service/phoenix.json")?;
    relocate(&mut portainer, addrs);
    let mut qdrant = parse(REF_QDRANT_STACK, "qdrant_service/phoenix.json")?;
    relocate(&mut qdrant, addrs);
    // The lab runs the docker provider, so these labels are live routes on the web entrypoint.
    qdrant["environments"]["production"]["services"]["qdrant"]["traefik_labels"] = json!([
        "traefik.enable=true",
        format!("traefik.http.routers.qdrant.rule=Host(`qdrant.{DOMAIN}`)"),
        "traefik.http.routers.qdrant.entrypoints=web",
        "traefik.http.services.qdrant.loadbalancer.server.port=6333"
    ]);

    let manifest = json!([
        {
            "common_name": format!("nginx.{DOMAIN}"),
            "sans": [format!("nginx.{DOMAIN}"), format!("portainer.{DOMAIN}"), format!("qdrant.{DOMAIN}")],
            "cert_path": pki.gateway_cert,
            "key_path": pki.gateway_key,
            "owner": "root:www-data",
            "permissions": "640",
            "post_renewal_command": "pct exec 101 -- systemctl reload nginx"
        },
        {
            "common_name": format!("portainer.{DOMAIN}"),
            "sans": [format!("portainer.{DOMAIN}")],
            "cert_path": pki.portainer_cert,
            "key_path": pki.portainer_key,
            "owner": "nobody:nogroup",
            "permissions": "600",
            "post_renewal_command": "qm guest exec 1001 -- docker restart portainer_server"
        }
    ]);

    Ok(LabConfig {
        hypervisor: hyp,
        lxc,
        vm,
        manifest,
        stacks: vec![
            ("portainer_service".to_string(), portainer),
            ("qdrant_service".to_string(), qdrant),
        ],
    })
}

/// The file in a lab dir that lists (one relative path a line) every file the lab wrote there.
pub const MARKER: &str = ".phoenix-doctor-lab";

/// Every entry below `root` (never following a symlink), relative, with its kind.
fn walk(root: &Path) -> std::io::Result<Vec<(PathBuf, std::fs::FileType)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            }
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap_or(&e.path())
                .to_path_buf();
            out.push((rel, ft));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Write the marker: the list of every regular file now below `root`.
pub fn seal_dir(root: &Path) -> Result<()> {
    let io = |e: std::io::Error| Error::tool(format!("lab: listing {}: {e}", root.display()));
    let mut list = String::new();
    for (rel, ft) in walk(root).map_err(io)? {
        if ft.is_file() {
            list.push_str(&rel.display().to_string());
            list.push('\n');
        }
    }
    write_new(&root.join(MARKER), &list, 0o600)
}

/// A non-empty `dir` is reused only when it is a lab dir the tool sealed: its marker is a
/// regular file, and every entry is a directory or a regular file the marker lists (no symlink,
/// nothing added). Those files are then replaced one by one, atomically, so a trace reading the
/// dir meanwhile sees the old file or the new one.
fn reuse_sealed(dir: &Path, refuse: &dyn Fn(&str) -> Error) -> Result<()> {
    use crate::fsutil::{read_bounded_string, FileKind};
    let marker = dir.join(MARKER);
    if !std::fs::symlink_metadata(&marker).is_ok_and(|m| m.is_file()) {
        return Err(refuse("is not empty"));
    }
    let listed = read_bounded_string(&marker, FileKind::SiteFile)
        .map_err(|e| refuse(&format!("its lab marker cannot be read ({e})")))?;
    let listed: std::collections::HashSet<&str> = listed.lines().collect();
    let entries = walk(dir).map_err(|e| refuse(&format!("cannot be listed ({e})")))?;
    for (rel, ft) in &entries {
        let name = rel.display().to_string();
        let ours =
            ft.is_dir() || (ft.is_file() && (listed.contains(name.as_str()) || name == MARKER));
        if !ours {
            return Err(refuse(&format!(
                "is a lab dir, but {name} is not a file the lab wrote there"
            )));
        }
    }
    Ok(())
}

/// Make `dir` ready for a lab: create it (mode 0700) when it does not exist, accept an empty
/// directory or a lab dir the tool sealed before (see [`seal_dir`]), and refuse anything else (a
/// non-empty directory, a symlink, a file) with an input error: the lab never writes into a tree
/// it did not create (docs/security.md).
pub fn prepare_dir(dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let refuse = |why: &str| {
        Error::input(format!(
            "lab --dir {}: {why}; the lab writes only into a new or empty directory (give a new path, or remove it first)",
            dir.display()
        ))
    };
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => return Err(refuse("is a symlink")),
        Ok(m) if !m.is_dir() => return Err(refuse("exists and is not a directory")),
        Ok(_) => {
            let mut entries =
                std::fs::read_dir(dir).map_err(|e| refuse(&format!("cannot be listed ({e})")))?;
            if entries.next().is_some() {
                reuse_sealed(dir, &refuse)?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::tool(format!("lab: creating {}: {e}", dir.display())))?;
        }
        Err(e) => return Err(refuse(&format!("cannot be inspected ({e})"))),
    }
    std::fs::canonicalize(dir)
        .map_err(|e| Error::tool(format!("lab: resolving {}: {e}", dir.display())))
}

/// Write a file atomically (never through a symlink) with `mode`, creating its missing parent
/// directories with mode 0700. Private keys get 0600, everything else 0644. Only called below a
/// dir [`prepare_dir`] accepted: new, empty, or a lab dir holding nothing but the lab's files.
pub fn write_new(path: &Path, contents: &str, mode: u32) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| Error::tool(format!("lab: creating {}: {e}", parent.display())))?;
    }
    crate::fsutil::write_atomic(
        path,
        contents.as_bytes(),
        crate::fsutil::Existing::Replace,
        mode,
    )
    .map_err(|e| Error::tool(format!("lab: writing {}: {e}", path.display())))
}

fn write(path: &Path, contents: &str) -> Result<()> {
    write_new(path, contents, 0o644)
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// The simulated vantages: (id as the plan names it, directory name under `vantages/`).
pub const VANTAGES: &[(&str, &str)] = &[
    ("host", "host"),
    ("lxc:101", "lxc-101"),
    ("lxc:102", "lxc-102"),
    ("lxc:103", "lxc-103"),
    ("vm:1001", "vm-1001"),
    ("vm:1002", "vm-1002"),
];

/// Everything `write_dir` produced.
pub struct Written {
    pub config_dir: PathBuf,
    pub stacks_dir: PathBuf,
    pub site_file: PathBuf,
}

/// Write the config dir (`etc/`), the stacks, the vantages' files and the site file.
pub fn write_dir(
    root: &Path,
    cfg: &LabConfig,
    addrs: &Addrs,
    ports: &Ports,
    pki: &PkiPaths,
    faults: &[Fault],
) -> Result<Written> {
    let hosts_override = faults.contains(&Fault::HostsOverride);
    let resolv_nowhere = faults.contains(&Fault::ResolvNowhere);
    let etc = root.join("etc");
    let stacks = root.join("stacks");
    write(
        &etc.join("phoenix_hypervisor_config.json"),
        &pretty(&cfg.hypervisor),
    )?;
    write(&etc.join("phoenix_lxc_configs.json"), &pretty(&cfg.lxc))?;
    write(&etc.join("phoenix_vm_configs.json"), &pretty(&cfg.vm))?;
    write(
        &etc.join("certificate-manifest.json"),
        &pretty(&cfg.manifest),
    )?;
    for (name, v) in &cfg.stacks {
        write(&stacks.join(name).join("phoenix.json"), &pretty(v))?;
    }
    write(
        &etc.join("traefik").join("traefik.yml.template"),
        &traefik_template(ports),
    )?;

    let mut site = toml::Table::new();
    if ports.high {
        let mut p = toml::Table::new();
        p.insert("dns".into(), i64::from(ports.dns).into());
        p.insert("gateway".into(), i64::from(ports.gateway).into());
        p.insert("router".into(), i64::from(ports.router).into());
        p.insert("ca".into(), i64::from(ports.ca).into());
        site.insert("ports".into(), toml::Value::Table(p));
    }
    let path_str = |p: &Path| toml::Value::String(p.display().to_string());
    let mut paths = toml::Table::new();
    paths.insert("root_ca".into(), path_str(&pki.root_ca));
    paths.insert("ca_bundle".into(), path_str(&pki.ca_bundle));
    paths.insert("router_root_ca".into(), path_str(&pki.root_ca));
    paths.insert(
        "router_client_cert".into(),
        path_str(&pki.router_client_cert),
    );
    paths.insert("router_client_key".into(), path_str(&pki.router_client_key));
    site.insert("paths".into(), toml::Value::Table(paths));

    let mut vantages = toml::Table::new();
    for (id, dir) in VANTAGES {
        let vdir = root.join("vantages").join(dir);
        let hosts = vdir.join("hosts");
        let resolv = vdir.join("resolv.conf");
        let mut text =
            String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        if hosts_override && *id == "lxc:102" {
            text.push_str(&format!("{}\tportainer.{DOMAIN}\n", addrs.old_portainer));
        }
        write(&hosts, &text)?;
        // `resolv-nowhere`: the router guest's resolver is an address where nothing listens.
        let nameserver = if resolv_nowhere && *id == "lxc:102" {
            addrs.nowhere_nameserver()
        } else {
            addrs.host
        };
        write(
            &resolv,
            &format!("search {DOMAIN}\nnameserver {nameserver}\n"),
        )?;
        // The guest's `/`: its socket tables and certificate files now, the files its generators
        // deploy once the model is known (`deployed::write`).
        let vroot = root.join("deployed").join(dir);
        super::roots::write_root(&vroot, id, addrs, ports, faults, pki)?;
        let mut t = toml::Table::new();
        t.insert("hosts_file".into(), path_str(&hosts));
        t.insert("resolv_conf".into(), path_str(&resolv));
        t.insert("root".into(), path_str(&vroot));
        vantages.insert((*id).to_string(), toml::Value::Table(t));
    }
    site.insert("vantage".into(), toml::Value::Table(vantages));
    let site_text = format!(
        "# Site facts of the phoenix-doctor lab (simulated platform on {}.0/24).\n{}",
        format_args!("127.{}.0", addrs.octet),
        toml::to_string(&site)
            .map_err(|e| Error::tool(format!("lab: serialising the site file: {e}")))?
    );
    let site_file = etc.join("phoenix-doctor.toml");
    write(&site_file, &site_text)?;
    Ok(Written {
        config_dir: etc,
        stacks_dir: stacks,
        site_file,
    })
}

fn traefik_template(ports: &Ports) -> String {
    let dashboard_port = if ports.high { 8081 } else { 8080 };
    format!(
        r#"global:
  checkNewVersion: false
  sendAnonymousUsage: false

log:
  level: DEBUG

ping:
  entryPoint: "traefik"

api:
  dashboard: true
  insecure: true # Required for dashboard access via internal network

entryPoints:
  web:
    address: ":{router}"
  traefik:
    address: ":{dashboard_port}"

providers:
  file:
    directory: /etc/traefik/dynamic
    filename: dynamic_conf.yml
    watch: true
  docker:
    exposedByDefault: false
"#,
        router = ports.router
    )
}

// ---- derivations (the platform's generators, applied to the lab config) ----

/// How the router reaches a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Http(SocketAddr),
    /// Verified with the lab root, server name = the IP, presenting the router's client identity.
    Https(SocketAddr),
    /// Traefik's own API/dashboard (`api@internal`).
    Api,
}

/// One router rule: `Host(`host`)` on the web entrypoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub host: String,
    pub backend: Backend,
    /// `file` (generated dynamic_conf.yml) or `docker` (stack labels).
    pub provider: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relocation_moves_every_platform_address() {
        let addrs = Addrs::new(9);
        let mut v = json!({"a": "10.0.0.13/24", "b": ["https://10.0.0.10:9000", "10.0.0.0/24"], "c": "10.0.0.102"});
        relocate(&mut v, &addrs);
        assert_eq!(
            v,
            json!({"a": "127.9.0.13/8", "b": ["https://127.9.0.10:9000", "127.0.0.0/8"], "c": "127.9.0.102"})
        );
    }
}
