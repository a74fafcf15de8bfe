//! The lab serving a platform built from a given config dir (`lab --serve-config DIR`), such as
//! the platform's reference configuration: every `10.0.0.x` address moved to `127.<n>.0.x`, the
//! gateway's certificate issued with the SANs the certificate manifest lists, the router's
//! routes exactly as the config derives them, and a plain HTTP service on every other address
//! the config's traces expect to answer. So the config's own defects (a Traefik route sending
//! plain HTTP to a TLS port, a name the gateway certificate lacks, a route missing from the web
//! entrypoint) show live as they do on the real platform.

use super::config::{relocate, LabConfig, PkiPaths, DOMAIN};
use super::{servers, Addrs};
use crate::error::{Error, Result};
use crate::fsutil::{read_bounded_string, FileKind};
use hyper::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A platform config dir read for the lab: its JSON files, as values.
#[derive(Debug, Clone)]
pub struct Reference {
    /// The config dir it was read from.
    pub config_dir: PathBuf,
    hypervisor: Value,
    lxc: Value,
    vm: Value,
    manifest: Value,
    stacks: Vec<(String, Value)>,
}

fn read_json(path: &Path) -> Result<Value> {
    let text = read_bounded_string(path, FileKind::PlatformConfig)
        .map_err(|e| Error::input(format!("lab --serve-config: {e}")))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::input(format!(
            "{}:{}: not JSON ({e}); expected the platform's config file",
            path.display(),
            e.line()
        ))
    })
}

impl Reference {
    /// Read `config_dir` (`phoenix_*_configs.json`, `certificate-manifest.json`) and the stacks
    /// in `stacks_dir` (default: `../stacks` beside it).
    pub fn load(config_dir: &Path, stacks_dir: Option<&Path>) -> Result<Reference> {
        let f = |n: &str| config_dir.join(n);
        let stacks_dir = stacks_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| config_dir.join("..").join("stacks"));
        let mut stacks = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&stacks_dir) {
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .filter(|e| e.path().join("phoenix.json").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for n in names {
                let v = read_json(&stacks_dir.join(&n).join("phoenix.json"))?;
                stacks.push((n, v));
            }
        }
        let manifest_path = f("certificate-manifest.json");
        Ok(Reference {
            config_dir: config_dir.to_path_buf(),
            hypervisor: read_json(&f("phoenix_hypervisor_config.json"))?,
            lxc: read_json(&f("phoenix_lxc_configs.json"))?,
            vm: read_json(&f("phoenix_vm_configs.json"))?,
            manifest: if manifest_path.exists() {
                read_json(&manifest_path)?
            } else {
                json!([])
            },
            stacks,
        })
    }

    /// The names the gateway's certificate carries: the manifest entry for
    /// `nginx.<domain>` (its `sans`, or its common name alone).
    pub fn gateway_names(&self) -> Vec<String> {
        let cn = format!("nginx.{DOMAIN}");
        let entry = self
            .manifest
            .as_array()
            .and_then(|a| a.iter().find(|e| e["common_name"] == json!(cn)));
        let sans: Vec<String> = entry
            .and_then(|e| e["sans"].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if sans.is_empty() {
            vec![cn]
        } else {
            sans
        }
    }

    /// The lab's config: the platform's files on loopback. The host's resolver is the lab's
    /// DNS, nothing is forwarded upstream, and secrets are replaced by placeholders; the
    /// manifest's certificate files are the lab's own.
    pub fn build(&self, addrs: &Addrs, pki: &PkiPaths) -> LabConfig {
        let mut hyp = self.hypervisor.clone();
        relocate(&mut hyp, addrs);
        hyp["network"]["interfaces"]["address"] = json!(format!("{}/8", addrs.host));
        hyp["network"]["interfaces"]["dns_nameservers"] = json!([addrs.host.to_string()]);
        hyp["network"]["fallback_dns"] = json!(addrs.host.to_string());
        hyp["dns_server"]["upstream_servers"] = json!([]);
        if hyp["portainer_api"].is_object() {
            hyp["portainer_api"]["admin_password"] = json!("lab-placeholder-password");
        }
        let mut lxc = self.lxc.clone();
        relocate(&mut lxc, addrs);
        let mut vm = self.vm.clone();
        relocate(&mut vm, addrs);
        let mut manifest = self.manifest.clone();
        relocate(&mut manifest, addrs);
        if let Some(entries) = manifest.as_array_mut() {
            for e in entries.iter_mut() {
                let cn = e["common_name"].as_str().unwrap_or_default().to_string();
                let (cert, key) = if cn.starts_with("nginx.") {
                    (&pki.gateway_cert, &pki.gateway_key)
                } else if cn.starts_with("portainer.") {
                    (&pki.portainer_cert, &pki.portainer_key)
                } else {
                    continue;
                };
                e["cert_path"] = json!(cert);
                e["key_path"] = json!(key);
            }
        }
        let stacks = self
            .stacks
            .iter()
            .map(|(n, v)| {
                let mut v = v.clone();
                relocate(&mut v, addrs);
                (n.clone(), v)
            })
            .collect();
        LabConfig {
            hypervisor: hyp,
            lxc,
            vm,
            manifest,
            stacks,
        }
    }
}

/// Every address a trace of the served platform expects to answer over TCP (the backends of
/// every target's steps), except those the lab's own components own (`own`: bound or left
/// down by a fault).
pub fn declared_backends(
    m: &crate::model::Intended,
    own: &[SocketAddr],
) -> Result<Vec<SocketAddr>> {
    use crate::plan::ProbeSpec;
    let defs = crate::plan::load_defs(None)?;
    let mut out = BTreeSet::new();
    for t in crate::plan::targets(m, &defs) {
        let Ok(p) = crate::plan::build(m, &defs, &t) else {
            continue;
        };
        for s in &p.steps {
            if matches!(s.probe, ProbeSpec::Dns { .. }) {
                continue;
            }
            let a = s.probe.target_addr();
            if !own.contains(&a) && !own.iter().any(|o| o.ip() == a.ip() && a.port() == 0) {
                out.insert(a);
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// A plain HTTP service answering 200 on every path (an inference server, an app).
fn plain_service() -> servers::Handler {
    Arc::new(|req, _| {
        Box::pin(async move {
            servers::respond(
                StatusCode::OK,
                "application/json",
                format!("{{\"status\":\"ok\",\"path\":\"{}\"}}", req.uri().path()),
            )
        })
    })
}

/// Bind and serve a plain HTTP service on each address.
pub async fn serve_backends(addrs: &[SocketAddr]) -> Result<Vec<JoinHandle<()>>> {
    let mut tasks = Vec::new();
    for a in addrs {
        let l = TcpListener::bind(a)
            .await
            .map_err(|e| Error::tool(format!("lab: binding the service on {a}: {e}")))?;
        tasks.push(tokio::spawn(servers::serve(l, None, plain_service())));
    }
    Ok(tasks)
}
