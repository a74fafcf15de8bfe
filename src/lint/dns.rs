//! DNS records and resolvers: the missing gateway, names that resolve elsewhere than their hop
//! expects, shadowed records, resolvers that are not DNS servers, guests without dnsmasq.

use super::catalog as codes;
use super::{finding, label, node_subjects, with_subjects};
use crate::finding::Finding;
use crate::model::{DnsRule, Intended};
use std::net::IpAddr;

/// PD-DNSCFG-001: no LXC named `Nginx-Phoenix`, so no records at all.
pub(crate) fn no_gateway(m: &Intended) -> Vec<Finding> {
    if !m.dns.enabled || m.dns.gateway_ip.is_some() {
        return Vec::new();
    }
    let lost = m.guests.iter().filter(|g| g.ip.is_some()).count();
    let server = m.dns.server.value;
    vec![finding(
        codes::PD_DNSCFG_001,
        "no LXC is named `Nginx-Phoenix`: 00-phoenix-internal.conf gets no records",
    )
    .expected(format!(
        "an LXC named exactly `{}` whose IP the DNS generator uses for gateway records",
        crate::model::dns::GATEWAY_LXC_NAME
    ))
    .actual(format!(
        "no such LXC: the file holds only its header and every name of {} ({lost} guests with addresses) answers NXDOMAIN",
        m.domain.value
    ))
    .hint("Name the gateway LXC `Nginx-Phoenix` (phoenix_lxc_configs.json) and re-run the DNS setup.")
    .provenance([m.dns.server.prov.clone(), m.domain.prov.clone()])
    .subject(server.ip().to_string())
    .subject(server.to_string())
    .subject("host")]
}

/// PD-DNSCFG-003: names that a documented hop dials and expects to be the guest itself.
pub(crate) fn expected_guest(m: &Intended) -> Vec<Finding> {
    let mut want: Vec<(String, IpAddr, String, crate::config::Provenance, String)> = Vec::new();
    for a in &m.agents {
        if let Some(h) = &a.hostname {
            want.push((
                h.value.clone(),
                a.ip.value,
                format!("vm:{}", a.vm),
                h.prov.clone(),
                format!("Portainer dials tcp://{}:{} (C1)", h.value, a.port.value),
            ));
        }
    }
    if let Some(ca) = &m.ca {
        want.push((
            ca.dns_name.value.clone(),
            ca.ip.value,
            format!("lxc:{}", ca.lxc),
            ca.dns_name.prov.clone(),
            format!(
                "step clients wait for `getent hosts {}` and dial it on :{} (D3, D5)",
                ca.dns_name.value, ca.port.value
            ),
        ));
    }
    let mut out = Vec::new();
    for (name, ip, who, prov, why) in want {
        let Some(rec) = m.dns.answer(&name) else {
            continue;
        };
        if rec.ip == Some(ip) {
            continue;
        }
        let to_gateway = m
            .gateway
            .as_ref()
            .is_some_and(|g| rec.ip == Some(g.ip.value));
        let mut f = finding(
            codes::PD_DNSCFG_003,
            format!(
                "{name} resolves to {} instead of {who} ({ip})",
                rec.ip_text
            ),
        )
        .expected(format!("{name} → {ip} ({who}): {why}"))
        .actual(format!(
            "the generator writes {name} → {} (rule {}: {}, from {}){}",
            rec.ip_text,
            rec.rule.number(),
            rec.rule.describe(),
            rec.subject,
            if to_gateway { ", the gateway" } else { "" }
        ))
        .hint(if rec.rule == DnsRule::LxcTraefikService && name.starts_with("ca.") {
            "The DNS generator hard-codes ca → 10.0.0.10: give the CA LXC that address.".to_string()
        } else {
            "Remove or rename the record that wins unique_by over the guest's own (stack label, VM traefik_service, static record).".to_string()
        })
        .provenance([prov])
        .provenance(rec.provenance.clone())
        .subject(name.clone())
        .subject(who)
        .subject(ip.to_string());
        if let Some(x) = rec.ip {
            f = f.subject(x.to_string());
        }
        out.push(f);
    }
    out
}

/// PD-DNSCFG-002: a name with a Traefik route that resolves to its backend, not the gateway.
pub(crate) fn bypass_gateway(m: &Intended) -> Vec<Finding> {
    let Some(gw) = &m.gateway else {
        return Vec::new();
    };
    let direct: Vec<String> = m
        .agents
        .iter()
        .filter_map(|a| a.hostname.as_ref().map(|h| h.value.to_ascii_lowercase()))
        .chain(m.ca.iter().map(|c| c.dns_name.value.to_ascii_lowercase()))
        .collect();
    let mut out = Vec::new();
    for r in m.routes.routes.iter().filter(|r| !r.is_api) {
        if direct.contains(&r.host.to_ascii_lowercase()) {
            continue;
        }
        let Some(rec) = m.dns.answer(&r.host) else {
            continue;
        };
        if rec.ip == Some(gw.ip.value) {
            continue;
        }
        let mut f = finding(
            codes::PD_DNSCFG_002,
            format!(
                "{} has Traefik route {} but resolves to {}, not the gateway",
                r.host, r.router, rec.ip_text
            ),
        )
        .expected(format!(
            "{} → {} (the gateway), so that NGINX and Traefik route it to {}",
            r.host, gw.ip.value, r.url
        ))
        .actual(format!(
            "{} → {} (rule {}: {}): clients reach the backend directly over plain HTTP and the route is unused",
            r.host,
            rec.ip_text,
            rec.rule.number(),
            rec.rule.describe()
        ))
        .hint("LXC traefik_service names resolve to the LXC itself; point the name at the gateway or treat it as a direct service (and allow clients in the backend's firewall).")
        .provenance(rec.provenance.clone())
        .subject(r.host.clone())
        .subject(gw.ip.value.to_string())
        .subject(format!("lxc:{}", gw.lxc));
        if let Some(g) = r.guest {
            f = f.subject(g.to_string());
        }
        if let Some(x) = rec.ip {
            f = f.subject(x.to_string());
        }
        out.push(f);
    }
    out
}

/// PD-DNSCFG-004: a record that shadows another candidate with a different address.
pub(crate) fn shadowed_records(m: &Intended) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in &m.dns.records {
        for s in r.shadowed.iter().filter(|s| s.ip_text != r.ip_text) {
            let mut f = finding(
                codes::PD_DNSCFG_004,
                format!(
                    "{} → {} ({}) shadows {} → {} ({})",
                    r.hostname, r.ip_text, r.subject, r.hostname, s.ip_text, s.subject
                ),
            )
            .expected(format!(
                "one address per hostname; {} also claims {} → {} ({})",
                s.subject,
                r.hostname,
                s.ip_text,
                s.rule.describe()
            ))
            .actual(format!(
                "unique_by(.hostname) keeps rule {} ({}) → {} and drops rule {} ({}) → {}",
                r.rule.number(),
                r.rule.describe(),
                r.ip_text,
                s.rule.number(),
                s.rule.describe(),
                s.ip_text
            ))
            .hint("Rename the guest or the service so each hostname has one address; reach the shadowed guest by IP meanwhile.")
            .provenance(r.provenance.clone())
            .provenance(s.provenance.clone())
            .subject(r.hostname.clone())
            .subject(r.ip_text.clone())
            .subject(s.ip_text.clone());
            for x in [&r.subject, &s.subject] {
                if x.starts_with("lxc:") || x.starts_with("vm:") {
                    f = f.subject(x.clone());
                }
            }
            out.push(f);
        }
    }
    out
}

/// PD-DNSCFG-005: a nameserver that is a platform node running no DNS server.
pub(crate) fn nameserver_not_dns(m: &Intended) -> Vec<Finding> {
    let mut lists: Vec<(String, &Vec<crate::config::Val<IpAddr>>, String)> = vec![(
        "host".to_string(),
        &m.host_interface_nameservers,
        "network.interfaces.dns_nameservers (written to /etc/network/interfaces.d/50-vmbr0.cfg)"
            .to_string(),
    )];
    for n in std::iter::once(&m.host).chain(m.guests.iter()) {
        lists.push((
            n.vantage.to_string(),
            &n.nameservers,
            n.nameservers_from.clone(),
        ));
    }
    let mut out = Vec::new();
    for (who, list, from) in lists {
        for ns in list {
            let Some(node) = m.node_by_ip(ns.value) else {
                continue;
            };
            if node
                .services
                .iter()
                .any(|s| s.scheme == crate::observe::Scheme::Dns)
            {
                continue;
            }
            out.push(with_subjects(
                finding(
                    codes::PD_DNSCFG_005,
                    format!(
                        "{who} uses {} as a nameserver, but {} runs no DNS server",
                        ns.value,
                        node.vantage
                    ),
                )
                .expected(format!(
                    "nameservers that serve DNS: the host's dnsmasq {} and upstream resolvers",
                    m.dns.server.value
                ))
                .actual(format!(
                    "{from} lists {} = {}, which serves no DNS (lookups wait for a timeout before the next resolver)",
                    ns.value,
                    label(node)
                ))
                .hint(format!(
                    "Replace {} with {} in the config.",
                    ns.value,
                    m.dns.server.value.ip()
                ))
                .provenance([ns.prov.clone()]),
                [who.clone()]
                    .into_iter()
                    .chain(node_subjects(node))
                    .collect::<Vec<_>>(),
            ));
        }
    }
    out
}

/// PD-DNSCFG-006: a guest whose resolvers do not include the platform's dnsmasq.
pub(crate) fn guest_without_internal_dns(m: &Intended) -> Vec<Finding> {
    if !m.dns.enabled {
        return Vec::new();
    }
    let dns_ip = m.dns.server.value.ip();
    let mut out = Vec::new();
    for g in m.guests.iter().filter(|g| !g.is_template) {
        if g.nameservers.is_empty() || g.nameservers.iter().any(|n| n.value == dns_ip) {
            continue;
        }
        let list = g
            .nameservers
            .iter()
            .map(|n| n.value.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        out.push(with_subjects(
            finding(
                codes::PD_DNSCFG_006,
                format!("{} resolves through {list} only", g.vantage),
            )
            .expected(format!(
                "{} resolves {} names through the host's dnsmasq {dns_ip}",
                label(g),
                m.domain.value
            ))
            .actual(format!(
                "nameservers {list} ({}): internal names answer NXDOMAIN there",
                g.nameservers_from
            ))
            .hint(format!(
                "Set network_config.nameservers to \"{dns_ip}\" for {} (or its template).",
                g.vantage
            ))
            .provenance(g.nameservers.iter().map(|n| n.prov.clone()).take(1)),
            node_subjects(g),
        ));
    }
    out
}
