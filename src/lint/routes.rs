//! Traefik routes, stack labels and the NGINX upstream.

use super::catalog as codes;
use super::{finding, label, with_subjects};
use crate::finding::Finding;
use crate::model::{DnsRule, Intended};
use std::collections::{HashMap, HashSet};

/// PD-ROUTE-001: an http:// route to a port that speaks TLS.
pub(crate) fn plain_http_to_tls(m: &Intended) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in m
        .routes
        .routes
        .iter()
        .filter(|r| !r.is_api && r.scheme == crate::observe::Scheme::Http)
    {
        let (Some(b), Some(g)) = (r.backend, r.guest) else {
            continue;
        };
        let Some(node) = m.node(g) else { continue };
        let Some(svc) = node
            .services
            .iter()
            .find(|s| s.port.value == b.port() && s.scheme == crate::observe::Scheme::Https)
        else {
            continue;
        };
        out.push(with_subjects(
            finding(
                codes::PD_ROUTE_001,
                format!("Traefik route {} sends plain HTTP to TLS port {b}", r.router),
            )
            .expected(format!(
                "https://{b} with serversTransport internal-ca ({} on {} speaks TLS on :{})",
                svc.name,
                label(node),
                b.port()
            ))
            .actual(format!(
                "{} → {} (the generator uses http:// for every LXC backend): the backend answers 400",
                r.service, r.url
            ))
            .hint("Route TLS backends over https:// (or remove the route); for the gateway itself the route loops back to NGINX.")
            .provenance(r.provenance.clone())
            .provenance([svc.port.prov.clone()]),
            [
                g.to_string(),
                b.ip().to_string(),
                b.to_string(),
                r.host.clone(),
            ],
        ));
    }
    out
}

fn has_docker_provider(m: &Intended) -> bool {
    m.router
        .as_ref()
        .is_some_and(|r| r.providers.iter().any(|p| p == "docker" || p == "swarm"))
}

fn deployment_subjects(m: &Intended, s: &crate::model::Stack) -> Vec<String> {
    let mut v = Vec::new();
    for d in &s.deployments {
        v.push(format!("vm:{}", d.vm));
        if let Some(ip) = m.vm(d.vm).and_then(|n| n.ip_addr()) {
            v.push(ip.to_string());
        }
    }
    v
}

/// PD-ROUTE-002: stacks whose Traefik labels no provider reads.
pub(crate) fn labels_without_provider(m: &Intended) -> Vec<Finding> {
    let Some(router) = &m.router else {
        return Vec::new();
    };
    if has_docker_provider(m) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for s in &m.stacks {
        let routers: Vec<&crate::model::LabelRouter> =
            s.services.iter().flat_map(|x| x.routers.iter()).collect();
        if routers.is_empty() {
            continue;
        }
        let hosts = s.hosts();
        let mut f = finding(
            codes::PD_ROUTE_002,
            format!(
                "stack `{}`: Traefik labels for {} are never read",
                s.name,
                if hosts.is_empty() {
                    "its routers".to_string()
                } else {
                    hosts.join(", ")
                }
            ),
        )
        .expected("a Traefik provider that reads container labels (docker), or a file-provider route")
        .actual(format!(
            "Traefik on lxc:{} has providers [{}] only; the labels of {} are injected into the compose file and ignored",
            router.lxc,
            router.providers.join(", "),
            s.file
        ))
        .hint("Give the service a traefik_service so the file provider routes it, or enable the docker provider.")
        .provenance(
            s.services
                .iter()
                .flat_map(|x| x.routers.iter())
                .filter_map(|r| r.rule.as_ref().map(|v| v.prov.clone()))
                .take(2),
        )
        .subject(format!("lxc:{}", router.lxc))
        .subject(router.ip.value.to_string());
        for h in hosts {
            f = f.subject(h.to_string());
        }
        out.push(with_subjects(f, deployment_subjects(m, s)));
    }
    out
}

/// PD-ROUTE-003: labels naming an entrypoint or resolver the static config lacks.
pub(crate) fn label_references(m: &Intended) -> Vec<Finding> {
    let Some(router) = &m.router else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for s in &m.stacks {
        for svc in &s.services {
            for r in &svc.routers {
                let mut bad: Vec<(String, crate::config::Provenance)> = Vec::new();
                for e in &r.entrypoints {
                    if !router.entrypoints.iter().any(|(n, _)| *n == e.value) {
                        bad.push((format!("entrypoint `{}`", e.value), e.prov.clone()));
                    }
                }
                if let Some(c) = &r.certresolver {
                    if !router.cert_resolvers.contains(&c.value) {
                        bad.push((format!("certresolver `{}`", c.value), c.prov.clone()));
                    }
                }
                if bad.is_empty() {
                    continue;
                }
                let what = bad
                    .iter()
                    .map(|(w, _)| w.clone())
                    .collect::<Vec<_>>()
                    .join(" and ");
                let mut f = finding(
                    codes::PD_ROUTE_003,
                    format!("stack `{}` router `{}` references undefined {what}", s.name, r.name),
                )
                .expected(format!(
                    "entrypoints from the static config [{}]{}",
                    router
                        .entrypoints
                        .iter()
                        .map(|(n, p)| match p {
                            Some(p) => format!("{n} :{p}"),
                            None => n.clone(),
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    if router.cert_resolvers.is_empty() {
                        ", no certificate resolvers".to_string()
                    } else {
                        format!(", resolvers [{}]", router.cert_resolvers.join(", "))
                    }
                ))
                .actual(format!("the labels reference {what}"))
                .hint("Use the `web` entrypoint without a resolver (TLS ends at NGINX), or add them to traefik.yml.template.")
                .provenance(bad.into_iter().map(|(_, p)| p))
                .subject(format!("lxc:{}", router.lxc));
                if let Some(h) = &r.host {
                    f = f.subject(h.clone());
                }
                out.push(with_subjects(f, deployment_subjects(m, s)));
            }
        }
    }
    out
}

/// PD-ROUTE-004: names DNS sends to the gateway as services that no Traefik router matches.
pub(crate) fn gateway_names_without_router(m: &Intended) -> Vec<Finding> {
    let (Some(gw), Some(router)) = (&m.gateway, &m.router) else {
        return Vec::new();
    };
    // Lower-cased hosts that a label router on known entrypoints serves (docker provider only).
    let label_hosts: HashSet<String> = if has_docker_provider(m) {
        m.stacks
            .iter()
            .flat_map(|s| s.services.iter().flat_map(|x| x.routers.iter()))
            .filter(|r| {
                r.entrypoints
                    .iter()
                    .all(|e| router.entrypoints.iter().any(|(n, _)| *n == e.value))
            })
            .filter_map(|r| r.host.as_deref().map(str::to_ascii_lowercase))
            .collect()
    } else {
        HashSet::new()
    };
    let label_routed = |host: &str| label_hosts.contains(&host.to_ascii_lowercase());
    let mut out = Vec::new();
    for rec in &m.dns.records {
        if rec.ip != Some(gw.ip.value)
            || !matches!(
                rec.rule,
                DnsRule::StackLabel | DnsRule::VmTraefikService | DnsRule::Static
            )
        {
            continue;
        }
        if m.routes.by_host(&rec.hostname).is_some() || label_routed(&rec.hostname) {
            continue;
        }
        out.push(
            finding(
                codes::PD_ROUTE_004,
                format!("{} goes to the gateway but Traefik has no router for it", rec.hostname),
            )
            .expected(format!(
                "a Traefik router for Host(`{}`) behind the gateway {}",
                rec.hostname, gw.ip.value
            ))
            .actual(format!(
                "DNS sends {} to {} (rule {}: {}, from {}); NGINX proxies it to Traefik, which answers 404 page not found",
                rec.hostname,
                rec.ip_text,
                rec.rule.number(),
                rec.rule.describe(),
                rec.subject
            ))
            .hint("Add a traefik_service for the guest that runs it (the file provider reads only dynamic_conf.yml).")
            .provenance(rec.provenance.clone())
            .subject(rec.hostname.clone())
            .subject(gw.ip.value.to_string())
            .subject(format!("lxc:{}", gw.lxc))
            .subject(format!("lxc:{}", router.lxc))
            .subject(router.ip.value.to_string()),
        );
    }
    out
}

/// PD-ROUTE-005: two guests with the same traefik_service name.
pub(crate) fn duplicate_service_names(m: &Intended) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut first: HashMap<&str, &crate::model::Route> = HashMap::new();
    for b in m.routes.routes.iter().filter(|r| !r.is_api) {
        let a = *first.entry(b.name.as_str()).or_insert(b);
        if std::ptr::eq(a, b) {
            continue;
        }
        let mut f = finding(
            codes::PD_ROUTE_005,
            format!("traefik_service name `{}` is declared twice", b.name),
        )
        .expected(format!("one router `{}` with one backend", b.router))
        .actual(format!(
            "{} ({}) and {} ({}) both write `{}` and `{}`: duplicate YAML keys",
            a.guest.map(|g| g.to_string()).unwrap_or_default(),
            a.url,
            b.guest.map(|g| g.to_string()).unwrap_or_default(),
            b.url,
            b.router,
            b.service
        ))
        .hint("Give each traefik_service a unique name.")
        .provenance(b.provenance.iter().take(1).cloned())
        .provenance(a.provenance.iter().take(1).cloned())
        .subject(b.host.clone());
        for g in [a.guest, b.guest].into_iter().flatten() {
            f = f.subject(g.to_string());
        }
        out.push(f);
    }
    out
}

/// PD-ROUTE-006 / PD-ROUTE-007: the NGINX upstream against Traefik's entrypoints.
pub(crate) fn gateway_upstream(m: &Intended) -> Vec<Finding> {
    let (Some(gw), Some(router)) = (&m.gateway, &m.router) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let eps = router
        .entrypoints
        .iter()
        .map(|(n, p)| match p {
            Some(p) => format!("{n} :{p}"),
            None => n.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let listens = |port: u16| router.entrypoints.iter().any(|(_, p)| *p == Some(port));
    let subjects = [
        format!("lxc:{}", gw.lxc),
        gw.ip.value.to_string(),
        format!("lxc:{}", router.lxc),
        router.ip.value.to_string(),
    ];
    if let Some(up) = gw.upstream {
        if !listens(up.port()) {
            out.push(with_subjects(
                finding(
                    codes::PD_ROUTE_006,
                    format!("the gateway proxies to {up}, where Traefik has no entrypoint"),
                )
                .expected(format!("proxy_pass to a Traefik entrypoint on lxc:{} [{eps}]", router.lxc))
                .actual(format!("proxy_pass {}", gw.proxy_pass))
                .hint("Set [ports].router in phoenix-doctor.toml (or the web entrypoint) to the port Traefik listens on.")
                .provenance([router.port.prov.clone(), router.ip.prov.clone()]),
                subjects.clone(),
            ));
        }
    }
    // The generator's literal `http://10.0.0.12:80`.
    let lit = gw
        .proxy_pass_platform
        .trim_start_matches("http://")
        .parse::<std::net::SocketAddr>()
        .ok();
    if let Some(lit) = lit {
        if lit.ip() != router.ip.value || !listens(lit.port()) {
            out.push(with_subjects(
                finding(
                    codes::PD_ROUTE_007,
                    format!("the gateway generator hard-codes {lit}, not Traefik's {}", router.ip.value),
                )
                .expected(format!(
                    "proxy_pass to lxc:{} {} on an entrypoint [{eps}]",
                    router.lxc, router.ip.value
                ))
                .actual(format!(
                    "generate_nginx_gateway_config.sh writes `proxy_pass {}` whatever the configs say",
                    gw.proxy_pass_platform
                ))
                .hint("Keep the Traefik LXC at 10.0.0.12 with web :80, or change the generator.")
                .provenance([
                    crate::config::Provenance::platform(
                        "generate_nginx_gateway_config.sh",
                        "proxy_pass http://10.0.0.12:80",
                    ),
                    router.ip.prov.clone(),
                ]),
                subjects.clone(),
            ));
        }
    }
    out
}
