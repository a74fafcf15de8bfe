//! Docker stacks (where they are deployed, the hostnames their Traefik labels claim, the
//! entrypoints and resolvers those labels reference) and the certificate manifest.

use super::dns::label_host;
use super::routes::LabelRouter;
use crate::config::{Provenance, RawConfig, Val};
use crate::error::Error;
use crate::observe::{Scheme, VantageRef};
use serde::Serialize;
use std::collections::HashMap;

/// A `certificate-manifest.json` entry, as the renewal manager treats it.
#[derive(Debug, Clone, Serialize)]
pub struct Cert {
    pub common_name: Val<String>,
    /// The manifest's `sans` (empty when absent).
    pub sans: Vec<Val<String>>,
    /// False when `sans` is absent: the renewal script then issues `--san <CN>` only and, since
    /// it compares `""` to the real SANs, renews on every run.
    pub sans_declared: bool,
    /// The SANs the issued certificate will carry (`sans`, or the CN).
    pub effective_sans: Vec<String>,
    pub cert_path: Option<Val<String>>,
    pub key_path: Option<Val<String>>,
    pub owner: Option<Val<String>>,
    pub permissions: Option<Val<String>>,
    pub post_renewal_command: Option<Val<String>>,
    /// The guest whose persistent-data dir holds the certificate
    /// (`.../lxc-persistent-data/101/...` → `lxc:101`, `.../vm-persistent-data/1001/...` → `vm:1001`).
    pub guest: Option<VantageRef>,
    pub prov: Provenance,
}

/// Whether certificate names `sans` cover `name`: exactly, or by a wildcard for one label
/// (`*.internal.thinkheads.ai` covers `qdrant.internal.thinkheads.ai`, not `a.b.internal...`).
pub fn san_covers(sans: &[String], name: &str) -> bool {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    sans.iter().any(|s| {
        let s = s.to_ascii_lowercase();
        s == n
            || s.strip_prefix("*.").is_some_and(|base| {
                n.strip_suffix(base)
                    .and_then(|l| l.strip_suffix('.'))
                    .is_some_and(|l| !l.is_empty() && !l.contains('.'))
            })
    })
}

/// The guest a persistent-data path belongs to.
pub fn guest_of_path(path: &str) -> Option<VantageRef> {
    let parts: Vec<&str> = path.split('/').collect();
    parts.windows(2).find_map(|w| {
        let id: u32 = w[1].parse().ok()?;
        match w[0] {
            "lxc-persistent-data" => Some(VantageRef::Lxc(id)),
            "vm-persistent-data" => Some(VantageRef::Vm(id)),
            _ => None,
        }
    })
}

pub(crate) fn certs(raw: &RawConfig) -> Vec<Cert> {
    raw.certs
        .iter()
        .map(|c| {
            let sans = c.sans.clone().unwrap_or_default();
            let effective_sans = if sans.is_empty() {
                vec![c.common_name.value.clone()]
            } else {
                sans.iter().map(|s| s.value.clone()).collect()
            };
            Cert {
                common_name: c.common_name.clone(),
                sans_declared: c.sans.is_some(),
                sans,
                effective_sans,
                cert_path: c.cert_path.clone(),
                key_path: c.key_path.clone(),
                owner: c.owner.clone(),
                permissions: c.permissions.clone(),
                post_renewal_command: c.post_renewal_command.clone(),
                guest: c.cert_path.as_ref().and_then(|p| guest_of_path(&p.value)),
                prov: c.prov.clone(),
            }
        })
        .collect()
}

/// Where a stack is deployed.
#[derive(Debug, Clone, Serialize)]
pub struct StackDeployment {
    pub vm: u32,
    /// The environment the VM asks for (`production` at HEAD, where it is implicit).
    pub environment: Val<String>,
    /// False when that environment is not `production` or the manifest lacks it: the DNS and
    /// firewall generators read only `production`, so labels and rules are silently missing.
    pub applied: bool,
}

/// One service of a stack's production environment.
#[derive(Debug, Clone, Serialize)]
pub struct StackService {
    pub name: String,
    /// `traefik.enable=true`.
    pub enabled: Option<Val<bool>>,
    pub routers: Vec<LabelRouter>,
    /// `traefik.http.services.<s>.loadbalancer.server.port`.
    pub lb_port: Option<Val<u16>>,
    /// `traefik.http.services.<s>.loadbalancer.server.scheme`.
    pub lb_scheme: Option<Val<Scheme>>,
    /// The port label when its value is a compose variable (`...port=${API_PORT}`) that no config
    /// file sets: the port is unknown and nothing that needs it is planned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lb_port_variable: Option<PortVariable>,
    pub prov: Provenance,
}

/// A port label whose value is left to `docker compose`'s environment.
#[derive(Debug, Clone, Serialize)]
pub struct PortVariable {
    /// The whole label, with its provenance.
    pub label: Val<String>,
    /// The variable's name (`API_PORT`).
    pub variable: String,
}

/// The variable a label value names: `${API_PORT}`, `${API_PORT:-8000}`, `$API_PORT`.
fn compose_variable(value: &str) -> Option<String> {
    let v = value.trim().strip_prefix('$')?;
    let name = match v.strip_prefix('{') {
        Some(inner) => inner.strip_suffix('}')?,
        None => v,
    };
    let name: String = name
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

impl StackService {
    /// Every hostname the labels claim.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.routers.iter().filter_map(|r| r.host.as_deref())
    }
}

/// A stack manifest with its deployments.
#[derive(Debug, Clone, Serialize)]
pub struct Stack {
    pub name: String,
    pub file: String,
    pub environments: Vec<Val<String>>,
    pub has_production: bool,
    pub services: Vec<StackService>,
    /// Production `firewall_rules`, as written (they reach `<vmid>.fw` of each deployment).
    pub firewall_rules: Vec<super::FwRule>,
    pub deployments: Vec<StackDeployment>,
    pub prov: Provenance,
}

impl Stack {
    /// Every hostname the stack's labels claim.
    pub fn hosts(&self) -> Vec<&str> {
        self.services.iter().flat_map(|s| s.hosts()).collect()
    }
}

fn label_error(l: &Val<String>, msg: &str) -> Error {
    crate::error::ConfigError::new(l.prov.file.to_string(), msg)
        .at_line(l.prov.line.map(|n| n as usize))
        .at_pointer(l.prov.pointer.to_string())
        .into()
}

fn parse_service(
    name: &str,
    labels: &[Val<String>],
    vars: &[(String, Val<String>)],
    prov: &Provenance,
) -> Result<StackService, Error> {
    let mut s = StackService {
        name: name.to_string(),
        enabled: None,
        routers: Vec::new(),
        lb_port: None,
        lb_scheme: None,
        lb_port_variable: None,
        prov: prov.clone(),
    };
    for l in labels {
        let Some((key, value)) = l.value.split_once('=') else {
            return Err(label_error(l, "expected a Traefik label `key=value`"));
        };
        let v = |x: &str| Val::new(x.to_string(), l.prov.clone());
        if key == "traefik.enable" {
            s.enabled = Some(Val::new(value.trim() == "true", l.prov.clone()));
        } else if let Some(rest) = key.strip_prefix("traefik.http.routers.") {
            let Some((rname, attr)) = rest.split_once('.') else {
                continue;
            };
            let idx = match s.routers.iter().position(|r| r.name == rname) {
                Some(i) => i,
                None => {
                    s.routers.push(LabelRouter {
                        name: rname.to_string(),
                        rule: None,
                        host: None,
                        entrypoints: Vec::new(),
                        tls: None,
                        certresolver: None,
                    });
                    s.routers.len() - 1
                }
            };
            let r = &mut s.routers[idx];
            match attr {
                "rule" => {
                    r.host = label_host(&l.value).map(String::from);
                    r.rule = Some(v(value));
                }
                "entrypoints" => {
                    r.entrypoints = value
                        .split(',')
                        .map(|e| v(e.trim()))
                        .filter(|e| !e.value.is_empty())
                        .collect()
                }
                "tls" => r.tls = Some(Val::new(value.trim() == "true", l.prov.clone())),
                "tls.certresolver" => r.certresolver = Some(v(value.trim())),
                _ => {}
            }
        } else if let Some(rest) = key.strip_prefix("traefik.http.services.") {
            if rest.ends_with(".loadbalancer.server.port") {
                if let Some(variable) = compose_variable(value) {
                    if let Some((_, v)) = vars.iter().find(|(n, _)| *n == variable) {
                        if let Ok(p) = v.value.trim().parse::<u16>() {
                            s.lb_port = Some(Val::new(p, v.prov.clone()));
                            continue;
                        }
                    }
                    s.lb_port_variable = Some(PortVariable {
                        label: l.clone(),
                        variable,
                    });
                    continue;
                }
                let p: u16 = value.trim().parse().map_err(|_| {
                    label_error(
                        l,
                        "expected a port number or a compose ${VARIABLE} after `loadbalancer.server.port=` (Traefik refuses the label)",
                    )
                })?;
                s.lb_port = Some(Val::new(p, l.prov.clone()));
            } else if rest.ends_with(".loadbalancer.server.scheme") {
                let scheme = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|s| matches!(s, Scheme::Http | Scheme::Https | Scheme::H2c))
                    .ok_or_else(|| {
                    label_error(
                        l,
                        "expected http, https or h2c after `loadbalancer.server.scheme=` (Traefik refuses other schemes)",
                    )
                })?;
                s.lb_scheme = Some(Val::new(scheme, l.prov.clone()));
            }
        }
    }
    Ok(s)
}

pub(crate) fn stacks(raw: &RawConfig, notes: &mut Vec<String>) -> Result<Vec<Stack>, Error> {
    // Stack name → (VM, its docker_stacks entry), in VM order then entry order.
    let mut deployed: HashMap<&str, Vec<(&crate::config::RawGuest, &crate::config::RawStackRef)>> =
        HashMap::new();
    for vm in &raw.vms {
        for sref in &vm.docker_stacks {
            deployed
                .entry(sref.name.value.as_str())
                .or_default()
                .push((vm, sref));
        }
    }
    let mut out = Vec::new();
    for st in &raw.stacks {
        let mut services = Vec::new();
        let mut firewall_rules = Vec::new();
        if let Some(env) = &st.production {
            for svc in &env.services {
                services.push(parse_service(
                    &svc.name,
                    &svc.traefik_labels,
                    &env.variables,
                    &svc.prov,
                )?);
            }
            for r in &env.firewall_rules {
                firewall_rules.push(super::FwRule::from_raw(
                    r,
                    super::RuleOrigin::Stack {
                        name: st.name.clone(),
                        vm: 0,
                    },
                ));
            }
        }
        let mut deployments = Vec::new();
        for &(vm, sref) in deployed.get(st.name.as_str()).into_iter().flatten() {
            let environment = sref.environment.clone().unwrap_or_else(|| {
                Val::new(
                    "production".to_string(),
                    Provenance::platform(
                        "portainer-manager.sh",
                        "every stack is deployed as production",
                    ),
                )
            });
            let applied = environment.value == "production" && st.production.is_some();
            if !applied {
                notes.push(format!(
                    "vm:{} deploys stack {} as `{}`, but only `production` labels and rules are read",
                    vm.id.value, st.name, environment.value
                ));
            }
            deployments.push(StackDeployment {
                vm: vm.id.value,
                environment,
                applied,
            });
        }
        out.push(Stack {
            name: st.name.clone(),
            file: st.file.clone(),
            environments: st.environments.clone(),
            has_production: st.production.is_some(),
            services,
            firewall_rules,
            deployments,
            prov: st.prov.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(label: &str) -> Result<StackService, Error> {
        let l = Val::new(label.to_string(), Provenance::default());
        parse_service("api", &[l], &[], &Provenance::default())
    }

    #[test]
    fn a_backend_scheme_label_is_one_traefik_knows() {
        let scheme = |v: &str| {
            service(&format!(
                "traefik.http.services.api.loadbalancer.server.scheme={v}"
            ))
            .map(|s| s.lb_scheme.map(|x| x.value))
        };
        assert_eq!(scheme("https").unwrap(), Some(Scheme::Https));
        assert_eq!(scheme(" h2c ").unwrap(), Some(Scheme::H2c));
        for bad in ["HTTPS", "dns", "ftp"] {
            let e = scheme(bad).unwrap_err();
            assert!(e.to_string().contains("expected http, https or h2c"), "{e}");
        }
    }
}
