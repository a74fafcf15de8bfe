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
        let mut lxc = self.lxc.clone();
        relocate(&mut lxc, addrs);
        let mut vm = self.vm.clone();
        relocate(&mut vm, addrs);
        for v in [&mut hyp, &mut lxc, &mut vm] {
            scrub(v);
        }
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
                scrub(&mut v);
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

/// Replace secrets (string values of keys naming a password, secret, token or key, but not a
/// file or path holding one) with a placeholder, so the lab never copies them.
fn scrub(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                let k = k.to_ascii_lowercase();
                let secret = ["password", "secret", "token", "api_key", "apikey"]
                    .iter()
                    .any(|s| k.contains(s))
                    && !(k.ends_with("_file") || k.ends_with("_path"));
                if secret && x.is_string() {
                    *x = json!("lab-placeholder-secret");
                } else {
                    scrub(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(scrub),
        _ => {}
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
    let defs = crate::hops::traces()?;
    let mut out = BTreeSet::new();
    for t in crate::plan::targets(m, defs) {
        let Ok(p) = crate::plan::build(m, defs, &t) else {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Reference {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/configs/reference/etc");
        Reference::load(&dir, None).expect("the reference config reads")
    }

    #[test]
    fn the_gateway_certificate_carries_the_manifests_sans() {
        assert_eq!(
            reference().gateway_names(),
            vec![
                "nginx.internal.thinkheads.ai".to_string(),
                "portainer.internal.thinkheads.ai".to_string()
            ]
        );
    }

    #[test]
    fn every_guest_moves_to_loopback_and_no_secret_is_copied() {
        let r = reference();
        let pki = PkiPaths {
            root_ca: "/lab/root.crt".into(),
            ca_bundle: "/lab/ca.crt".into(),
            gateway_cert: "/lab/gw.crt".into(),
            gateway_key: "/lab/gw.key".into(),
            portainer_cert: "/lab/p.crt".into(),
            portainer_key: "/lab/p.key".into(),
            router_client_cert: "/lab/c.crt".into(),
            router_client_key: "/lab/c.key".into(),
        };
        let cfg = r.build(&Addrs::new(9), &pki);
        let all = serde_json::to_string(&json!([
            cfg.hypervisor,
            cfg.lxc,
            cfg.vm,
            cfg.manifest,
            cfg.stacks.iter().map(|(_, v)| v).collect::<Vec<_>>()
        ]))
        .unwrap();
        assert!(!all.contains("10.0.0."), "every platform address moved");
        assert!(
            !all.contains("NewKick"),
            "the Portainer admin password is not copied"
        );
        assert!(all.contains("lab-placeholder-secret"));
        assert!(
            all.contains("phoenix_hf_token.conf"),
            "paths to secrets stay"
        );
        // All guests of the reference are served, not only the built-in lab's.
        let lxcs = cfg.lxc["lxc_configs"].as_object().unwrap();
        assert!(lxcs.len() > 3, "{:?}", lxcs.keys().collect::<Vec<_>>());
        assert_eq!(
            cfg.lxc["lxc_configs"]["917"]["network_config"]["ip"]
                .as_str()
                .map(|s| s.starts_with("127.9.0.")),
            Some(true)
        );
        let names: Vec<&str> = cfg.stacks.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["portainer_service", "qdrant_service", "thinkheads_ai_app"]
        );
        // The manifest's gateway entry points at the lab's certificate.
        assert_eq!(cfg.manifest[0]["cert_path"], json!("/lab/gw.crt"));
    }
}
