//! Traefik's deployed routers and services against `generate_traefik_config.sh`'s output.

use super::catalog;
use super::compare::{Artefact, Ctx, Drift, Looks, TRAEFIK_SCRIPT};
use super::source::FileSource;
use super::traefik::{self, Dynamic, RouterD, ServiceD};
use super::{At, Loaded};
use crate::model::{Intended, Route};
use crate::observe::VantageRef;
use std::collections::{HashMap, HashSet};

/// Is `rule` a single ``Host(`x`)``, as the generator writes every rule?
fn generator_rule(rule: &str) -> bool {
    rule.starts_with("Host(`") && rule.ends_with("`)") && rule.matches('`').count() == 2
}

/// Is `url` `http(s)://<platform address>:<port>`, as the generator writes every URL?
fn generator_url(m: &Intended, url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let Ok(addr) = rest.trim_end_matches('/').parse::<std::net::SocketAddr>() else {
        return false;
    };
    matches!(
        scheme.parse(),
        Ok(crate::observe::Scheme::Http | crate::observe::Scheme::Https)
    ) && (m.subnets.iter().any(|n| n.contains(&addr.ip())) || addr.ip().is_loopback())
}

pub(crate) fn traefik(
    m: &Intended,
    src: &dyn FileSource,
    ctx: &Ctx,
    arts: &mut Vec<Artefact>,
    out: &mut Vec<Drift>,
) {
    let Some(router) = &m.router else {
        return;
    };
    let v = VantageRef::Lxc(router.lxc);
    let loaded = traefik::load(src, v);
    let a = super::compare::artefact("traefik-dynamic", v, &loaded);
    if !loaded.unreadable.is_empty() {
        arts.push(a);
        return;
    }
    arts.push(a);
    let d = &loaded.value;
    let ix = Index::of(d);
    let mut named: HashSet<&str> = HashSet::with_capacity(m.routes.routes.len());
    for r in &m.routes.routes {
        named.insert(r.router.as_str());
        route(m, r, &ix, &loaded, ctx, v, out);
    }
    for r in d
        .routers
        .iter()
        .filter(|r| !named.contains(r.name.as_str()))
    {
        let shaped = generator_rule(&r.rule) && r.name.ends_with("-router");
        out.push(Drift {
            code: catalog::TRAEFIK,
            title: format!("Traefik router {} is not one the generator writes", r.name),
            expected: format!("no router {} (the configs derive none)", r.name),
            actual: format!("{v} {}: router {} rule {}", r.at, r.name, r.rule),
            vantage: v,
            deployed: Some((r.rule_at.clone(), format!("rule: \"{}\"", r.rule))),
            looks: ctx.looks(loaded.mtime(&r.at.file), shaped),
            regenerate: TRAEFIK_SCRIPT,
            prov: vec![crate::config::Provenance::platform(
                "generate_traefik_config.sh",
                "routers from VM and LXC traefik_service",
            )],
            subject: r.name.clone(),
        });
    }
}

/// The deployed routers and services by name (the first of a name, as the provider keeps it).
struct Index<'a> {
    routers: HashMap<&'a str, &'a RouterD>,
    services: HashMap<&'a str, &'a ServiceD>,
}

impl<'a> Index<'a> {
    fn of(d: &'a Dynamic) -> Index<'a> {
        let mut ix = Index {
            routers: HashMap::with_capacity(d.routers.len()),
            services: HashMap::with_capacity(d.services.len()),
        };
        for r in &d.routers {
            ix.routers.entry(r.name.as_str()).or_insert(r);
        }
        for s in &d.services {
            ix.services.entry(s.name.as_str()).or_insert(s);
        }
        ix
    }
}

fn route(
    m: &Intended,
    r: &Route,
    d: &Index,
    loaded: &Loaded<Dynamic>,
    ctx: &Ctx,
    v: VantageRef,
    out: &mut Vec<Drift>,
) {
    let mk = |title: String,
              expected: String,
              actual: String,
              at: Option<(At, String)>,
              looks: (Looks, String)| Drift {
        code: catalog::TRAEFIK,
        title,
        expected,
        actual,
        vantage: v,
        deployed: at,
        looks,
        regenerate: TRAEFIK_SCRIPT,
        prov: r.provenance.clone(),
        subject: r.host.clone(),
    };
    let Some(dr) = d.routers.get(r.router.as_str()).copied() else {
        let mtime = loaded.files.first().and_then(|(_, t)| *t);
        out.push(mk(
            format!("Traefik router {} is missing", r.router),
            format!(
                "router {}: rule \"{}\", service {}",
                r.router, r.rule, r.service
            ),
            format!(
                "no router {} in the files the file provider loads",
                r.router
            ),
            None,
            ctx.looks(mtime, true),
        ));
        return;
    };
    let mtime = loaded.mtime(&dr.at.file);
    if dr.rule != r.rule || dr.service != r.service || dr.entrypoints != r.entrypoints {
        let shaped = generator_rule(&dr.rule) && dr.service.ends_with("-service");
        out.push(mk(
            format!(
                "Traefik router {} differs: rule {}, service {}",
                r.router, dr.rule, dr.service
            ),
            format!(
                "rule \"{}\", service \"{}\", entryPoints [{}]",
                r.rule,
                r.service,
                r.entrypoints.join(", ")
            ),
            format!(
                "{v} {}: rule \"{}\", service \"{}\", entryPoints [{}]",
                dr.rule_at,
                dr.rule,
                dr.service,
                dr.entrypoints.join(", ")
            ),
            Some((dr.rule_at.clone(), format!("rule: \"{}\"", dr.rule))),
            ctx.looks(mtime, shaped),
        ));
    }
    if r.is_api {
        return;
    }
    let Some(ds) = d.services.get(r.service.as_str()).copied() else {
        out.push(mk(
            format!("Traefik service {} is missing", r.service),
            format!("service {}: url {}", r.service, r.url),
            format!(
                "no service {} in the files the file provider loads",
                r.service
            ),
            None,
            ctx.looks(mtime, true),
        ));
        return;
    };
    let urls: Vec<&str> = ds.urls.iter().map(|(u, _)| u.as_str()).collect();
    if urls != [r.url.as_str()] {
        let (u, at) = ds
            .urls
            .iter()
            .find(|(u, _)| *u != r.url)
            .cloned()
            .unwrap_or_else(|| (String::new(), ds.at.clone()));
        out.push(mk(
            format!(
                "Traefik service {} sends {} to {u}, the generator writes {}",
                r.service, r.host, r.url
            ),
            format!("url \"{}\"", r.url),
            format!("{v} {at}: url \"{u}\""),
            Some((at.clone(), format!("- url: \"{u}\""))),
            ctx.looks(loaded.mtime(&at.file), generator_url(m, &u)),
        ));
    }
    if ds.transport != r.servers_transport {
        out.push(mk(
            format!(
                "Traefik service {} uses serversTransport {}",
                r.service,
                ds.transport.as_deref().unwrap_or("(none)")
            ),
            format!(
                "serversTransport {}",
                r.servers_transport.as_deref().unwrap_or("(none)")
            ),
            format!(
                "{v} {}: serversTransport {}",
                ds.at,
                ds.transport.as_deref().unwrap_or("(none)")
            ),
            Some((ds.at.clone(), format!("{}:", ds.name))),
            ctx.looks(mtime, false),
        ));
    }
}
