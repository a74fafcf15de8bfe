//! The cause at a proxy's error: when the gateway or Traefik answers 502/504/404 for a host
//! name, the deployed upstream for that name (the NGINX site's `proxy_pass`, Traefik's router
//! and service) held against the one the generators write; a drift goes into the finding's
//! `actual` and evidence with both file lines.

use super::Report;
use crate::deployed::source::FileSource;
use crate::deployed::{nginx, traefik, Loaded};
use crate::finding::{EvidenceItem, ProxyPart};
use crate::model::Intended;
use crate::observe::VantageRef;
use crate::plan::{Plan, ProbeSpec};
use std::net::SocketAddr;

/// The codes of a proxy's error answer.
const PROXY_CODES: [&str; 3] = ["PD-HTTP-005", "PD-HTTP-001", "PD-HTTP-004"];

/// The deployed proxy configs, read once per run.
#[derive(Debug, Default)]
pub struct Upstreams {
    pub gateway: Option<(VantageRef, Loaded<nginx::Site>)>,
    pub traefik: Option<(VantageRef, Loaded<traefik::Dynamic>)>,
}

impl Upstreams {
    /// Read the gateway site and Traefik's dynamic files from `src`.
    pub fn read(m: &Intended, src: &dyn FileSource) -> Upstreams {
        Upstreams {
            gateway: m.gateway.as_ref().map(|g| {
                let v = VantageRef::Lxc(g.lxc);
                (v, nginx::load(src, v))
            }),
            traefik: m.router.as_ref().map(|r| {
                let v = VantageRef::Lxc(r.lxc);
                (v, traefik::load(src, v))
            }),
        }
    }
}

/// A drifted upstream, in words and evidence items.
struct Cause {
    actual: String,
    evidence: Vec<EvidenceItem>,
    prov: Vec<crate::config::Provenance>,
}

/// The deployed directive (vantage, file line, text) beside the one the generators write
/// (text, and the config lines it comes from).
fn both(
    part: ProxyPart,
    (vantage, at, directive): (VantageRef, String, String),
    intended: String,
    from: Vec<String>,
) -> Vec<EvidenceItem> {
    vec![
        EvidenceItem::Deployed {
            part,
            vantage,
            at,
            directive,
        },
        EvidenceItem::Intended {
            part,
            directive: intended,
            from,
        },
    ]
}

fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let hostport = rest.split('/').next()?;
    let host = match hostport.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => hostport,
    };
    Some(host.to_ascii_lowercase())
}

fn gateway_cause(m: &Intended, up: &Upstreams, host: &str) -> Option<Cause> {
    let g = m.gateway.as_ref()?;
    let (v, loaded) = up.gateway.as_ref()?;
    let server = loaded.value.server_for(host, g.listen.value)?;
    let (_, target, at) = server.root_proxy()?;
    let (upstream, up_at) = loaded
        .value
        .resolve(target)
        .into_iter()
        .find(|(u, _)| *u != g.proxy_pass && *u != g.proxy_pass_platform)?;
    let at = up_at.unwrap_or_else(|| at.clone());
    let r = m.router.as_ref()?;
    Some(Cause {
        actual: format!(
            "the deployed gateway site proxies {host} to {upstream} ({v} {at}), the generator writes {} ({})",
            g.proxy_pass, r.port.prov
        ),
        evidence: both(
            ProxyPart::Upstream,
            (*v, at.to_string(), format!("proxy_pass {target};")),
            format!("proxy_pass {};", g.proxy_pass),
            vec![r.ip.prov.to_string(), r.port.prov.to_string()],
        ),
        prov: vec![r.ip.prov.clone(), r.port.prov.clone()],
    })
}

fn traefik_cause(m: &Intended, up: &Upstreams, host: &str) -> Option<Cause> {
    let want = m.routes.by_host(host)?;
    let (v, loaded) = up.traefik.as_ref()?;
    let d = &loaded.value;
    let prov = want.provenance.clone();
    let cfg = prov.first().map(|p| p.to_string()).unwrap_or_default();
    let Some(router) = d.router(&want.router) else {
        return Some(Cause {
            actual: format!(
                "Traefik's deployed files have no router {} for {host}; the generator writes one ({cfg})",
                want.router
            ),
            evidence: vec![EvidenceItem::RouterMissing {
                vantage: *v,
                router: want.router.clone(),
                files: loaded.files.iter().map(|f| f.0.to_string()).collect(),
            }],
            prov,
        });
    };
    if router.rule != want.rule || router.service != want.service {
        return Some(Cause {
            actual: format!(
                "the deployed Traefik router {} has rule {} ({v} {}), the generator writes {} ({cfg})",
                router.name, router.rule, router.rule_at, want.rule
            ),
            evidence: both(
                ProxyPart::Router,
                (*v, router.rule_at.to_string(), format!("rule: \"{}\"", router.rule)),
                format!("rule: \"{}\", service {}", want.rule, want.service),
                vec![cfg.clone()],
            ),
            prov,
        });
    }
    let svc = d.service(&want.service)?;
    let (url, at) = svc.urls.iter().find(|(u, _)| *u != want.url)?;
    Some(Cause {
        actual: format!(
            "the deployed Traefik service {} sends {host} to {url} ({v} {at}), the generator writes {} ({cfg})",
            svc.name, want.url
        ),
        evidence: both(
            ProxyPart::Upstream,
            (*v, at.to_string(), format!("url \"{url}\"")),
            format!("url \"{}\"", want.url),
            vec![cfg],
        ),
        prov,
    })
}

/// Does `report` hold a proxy's error whose upstream [`explain`] would look up?
pub fn wanted(report: &Report) -> bool {
    report.findings.iter().any(|f| {
        PROXY_CODES.contains(&f.code.as_str()) && f.origin != crate::finding::Origin::Static
    })
}

/// Name the drifted upstream behind each proxy error of `report`, from `up`.
pub fn explain(report: &mut Report, plan: &Plan, m: &Intended, up: &Upstreams) {
    let gateway = m
        .gateway
        .as_ref()
        .map(|g| SocketAddr::new(g.ip.value, g.listen.value));
    for f in report.findings.iter_mut().filter(|f| {
        PROXY_CODES.contains(&f.code.as_str()) && f.origin != crate::finding::Origin::Static
    }) {
        let Some(ProbeSpec::Http { url, connect, .. }) = plan
            .steps
            .iter()
            .find(|s| s.hop == f.hop && s.layer == crate::observe::Layer::Http)
            .map(|s| &s.probe)
        else {
            continue;
        };
        let Some(host) = host_of(url) else {
            continue;
        };
        let through_gateway = Some(*connect) == gateway;
        let cause = through_gateway
            .then(|| gateway_cause(m, up, &host))
            .flatten()
            .or_else(|| traefik_cause(m, up, &host));
        if let Some(c) = cause {
            f.actual = format!("{}; {}", f.actual, c.actual);
            f.evidence.extend(c.evidence);
            for p in c.prov {
                if !f.provenance.contains(&p) {
                    f.provenance.push(p);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_urls() {
        assert_eq!(
            host_of("https://Qdrant.x:443/healthz").as_deref(),
            Some("qdrant.x")
        );
        assert_eq!(host_of("http://a.b/").as_deref(), Some("a.b"));
        assert_eq!(host_of("nope"), None);
    }
}
