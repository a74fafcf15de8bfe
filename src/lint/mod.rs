//! Static cross-checks on the intended state alone, one function per rule: firewall pairs per
//! documented hop, DNS shadowing and precedence, Traefik routes and labels, the certificate
//! manifest, stray addresses. Every finding has a stable code from [`catalog()`].

use crate::config::Provenance;
use crate::finding::{Code, Finding};
use crate::model::{Intended, Node};
use crate::plan::VantageRef;
use std::collections::BTreeSet;
use std::net::IpAddr;

pub mod catalog;
mod certs;
mod dns;
mod firewall;
mod routes;

use catalog as codes;
pub use catalog::{catalog, lookup, STATIC};

/// Every rule, in report order.
const RULES: &[fn(&Intended) -> Vec<Finding>] = &[
    firewall::hop_in_rules,
    firewall::hop_out_rules,
    firewall::stack_only_rules,
    firewall::one_sided_rules,
    firewall::unenforced_lxc_rules,
    firewall::duplicate_rules,
    firewall::guest_rules_in_cluster,
    dns::no_gateway,
    dns::expected_guest,
    dns::bypass_gateway,
    dns::shadowed_records,
    dns::nameserver_not_dns,
    dns::guest_without_internal_dns,
    routes::plain_http_to_tls,
    routes::labels_without_provider,
    routes::label_references,
    routes::gateway_names_without_router,
    routes::duplicate_service_names,
    routes::gateway_upstream,
    certs::ca_reachability,
    certs::gateway_sans,
    certs::gateway_cert_missing,
    certs::backend_ip_san,
    certs::backend_without_cert,
    certs::entries_without_sans,
    stray_addresses,
    foreign_names,
    stack_deployments,
    config_history,
    port_variables,
    clone_cycles,
    wide_subnets,
];

/// PD-LINT-006: a platform subnet too wide to serve as the default probe scope.
pub(crate) fn wide_subnets(m: &Intended) -> Vec<Finding> {
    use crate::model::{MIN_SCOPE_PREFIX_V4, MIN_SCOPE_PREFIX_V6};
    m.subnets
        .iter()
        .filter(|n| {
            n.prefix_len()
                < match n {
                    ipnet::IpNet::V4(_) => MIN_SCOPE_PREFIX_V4,
                    ipnet::IpNet::V6(_) => MIN_SCOPE_PREFIX_V6,
                }
        })
        .map(|n| {
            finding(
                codes::PD_LINT_006,
                format!("platform subnet {n} is too wide to be a probe scope"),
            )
            .expected("a platform subnet of /16 or longer: the networks a trace may send to by default")
            .actual(format!(
                "{n} (from `network.default_subnet` or the host's address in etc/phoenix_hypervisor_config.json): left out of the default scope; traces probe only 127.0.0.0/8 unless --scope is given"
            ))
            .hint("Write the subnet with its real prefix (10.0.0.0/24), or pass --scope.")
        })
        .collect()
}

/// Every static finding for the intended state, in rule order (duplicates removed).
pub fn run(m: &Intended) -> Vec<Finding> {
    let all: Vec<Finding> = RULES.iter().flat_map(|rule| rule(m)).collect();
    // The first of each (code, title, expected, actual), compared in place.
    let mut seen = std::collections::HashSet::with_capacity(all.len());
    let first: Vec<bool> = all
        .iter()
        .map(|f| seen.insert((f.code, &f.title, &f.expected, &f.actual)))
        .collect();
    drop(seen);
    all.into_iter()
        .zip(first)
        .filter_map(|(f, first)| first.then_some(f))
        .collect()
}

/// A static finding with the catalogue's severity and layer for `code`.
pub(crate) fn finding(code: Code, title: impl Into<String>) -> Finding {
    let mut f = Finding::new(code, code.severity(), title).static_origin();
    f.layer = code.layer();
    f
}

/// Add several subjects, skipping repeats.
pub(crate) fn with_subjects(mut f: Finding, s: impl IntoIterator<Item = String>) -> Finding {
    for x in s {
        if !x.is_empty() && !f.subjects.contains(&x) {
            f.subjects.push(x);
        }
    }
    f
}

/// `lxc:102 Traefik-Internal (10.0.0.12)`.
pub(crate) fn label(n: &Node) -> String {
    let mut s = n.vantage.to_string();
    if !n.name_str().is_empty() {
        s.push(' ');
        s.push_str(n.name_str());
    }
    if let Some(ip) = n.ip_addr() {
        s.push_str(&format!(" ({ip})"));
    }
    s
}

/// The vantage string and address of a node, as subjects.
pub(crate) fn node_subjects(n: &Node) -> Vec<String> {
    let mut v = vec![n.vantage.to_string()];
    if let Some(ip) = n.ip_addr() {
        v.push(ip.to_string());
    }
    v
}

pub(crate) fn vantage_of_ip(m: &Intended, ip: IpAddr) -> Option<VantageRef> {
    m.node_by_ip(ip).map(|n| n.vantage)
}

/// Is `ip` inside the platform's subnets?
pub(crate) fn in_subnets(m: &Intended, ip: IpAddr) -> bool {
    m.subnets.iter().any(|n| n.contains(&ip))
}

/// The subnet's router (`.1`), which no guest has but every guest uses.
fn is_subnet_router(m: &Intended, ip: IpAddr) -> bool {
    m.subnets.iter().any(|n| n.hosts().next() == Some(ip))
}

/// addresses inside the subnet that belong to no node.
pub(crate) fn stray_addresses(m: &Intended) -> Vec<Finding> {
    let mut uses: Vec<(IpAddr, String, Provenance)> = Vec::new();
    for f in m.firewall.files() {
        for r in f.rules.iter().filter(|r| {
            f.scope != crate::model::FwScope::Cluster
                || r.origin == crate::model::RuleOrigin::Global
        }) {
            for (spec, what) in [(&r.source, "source"), (&r.dest, "dest")] {
                if let Some(crate::config::AddrSpec::Ip(ip)) = spec {
                    uses.push((
                        *ip,
                        format!("firewall rule {what} in {}.fw", f.name),
                        r.prov.clone(),
                    ));
                }
            }
        }
    }
    for f in &m.firewall.lxcs {
        for r in &f.rules {
            for (spec, what) in [(&r.source, "source"), (&r.dest, "dest")] {
                if let Some(crate::config::AddrSpec::Ip(ip)) = spec {
                    uses.push((
                        *ip,
                        format!("firewall rule {what} of lxc:{}", f.name),
                        r.prov.clone(),
                    ));
                }
            }
        }
    }
    for r in &m.dns.records {
        if let Some(ip) = r.ip {
            uses.push((
                ip,
                format!("DNS record {}", r.hostname),
                r.provenance.first().cloned().unwrap_or_default(),
            ));
        }
    }
    for r in &m.routes.routes {
        if let Some(b) = r.backend {
            uses.push((
                b.ip(),
                format!("Traefik route {}", r.router),
                r.provenance.first().cloned().unwrap_or_default(),
            ));
        }
    }
    for n in std::iter::once(&m.host).chain(m.guests.iter()) {
        for ns in &n.nameservers {
            uses.push((
                ns.value,
                format!("nameserver of {}", n.vantage),
                ns.prov.clone(),
            ));
        }
    }
    for ns in &m.host_interface_nameservers {
        uses.push((
            ns.value,
            "host dns_nameservers".to_string(),
            ns.prov.clone(),
        ));
    }
    let mut out = Vec::new();
    let mut reported: BTreeSet<(IpAddr, String)> = BTreeSet::new();
    for (ip, what, prov) in uses {
        if !in_subnets(m, ip) || m.node_by_ip(ip).is_some() || is_subnet_router(m, ip) {
            continue;
        }
        if !reported.insert((ip, what.clone())) {
            continue;
        }
        out.push(
            finding(
                codes::PD_LINT_001,
                format!("{ip} ({what}) belongs to no guest"),
            )
            .expected(format!(
                "an address of the host or a guest defined in the configs ({})",
                m.subnets
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .actual(format!("{what} uses {ip}, which no guest has"))
            .hint("A leftover from an address change (Portainer moved from 10.0.0.101 to 10.0.0.111): use the guest's current address or delete the entry.")
            .provenance([prov])
            .subject(ip.to_string()),
        );
    }
    out
}

/// hostnames in the configs outside the platform's domain.
pub(crate) fn foreign_names(m: &Intended) -> Vec<Finding> {
    let domain = m.domain.value.to_ascii_lowercase();
    let inside = |h: &str| {
        let h = h.trim_end_matches('.').to_ascii_lowercase();
        h == domain || h.ends_with(&format!(".{domain}"))
    };
    let mut names: Vec<(String, String, Provenance)> = Vec::new();
    for s in &m.stacks {
        for svc in &s.services {
            for r in &svc.routers {
                if let (Some(h), Some(rule)) = (&r.host, &r.rule) {
                    names.push((
                        h.clone(),
                        format!("stack `{}` router `{}`", s.name, r.name),
                        rule.prov.clone(),
                    ));
                }
            }
        }
    }
    if let Some(p) = &m.portainer {
        names.push((
            p.hostname.value.clone(),
            "portainer_api.portainer_hostname".to_string(),
            p.hostname.prov.clone(),
        ));
    }
    for a in &m.agents {
        if let Some(h) = &a.hostname {
            names.push((
                h.value.clone(),
                format!("vm:{} portainer_agent_hostname", a.vm),
                h.prov.clone(),
            ));
        }
    }
    if let Some(c) = &m.ca {
        names.push((
            c.dns_name.value.clone(),
            "step_ca.dns_name".to_string(),
            c.dns_name.prov.clone(),
        ));
    }
    for c in &m.certs {
        names.push((
            c.common_name.value.clone(),
            "certificate-manifest.json common_name".to_string(),
            c.common_name.prov.clone(),
        ));
        for san in &c.sans {
            if san.value.parse::<IpAddr>().is_err() {
                names.push((
                    san.value.clone(),
                    format!("sans of {}", c.common_name.value),
                    san.prov.clone(),
                ));
            }
        }
    }
    let mut out = Vec::new();
    for (name, what, prov) in names {
        let bare = name.trim_start_matches("*.");
        if inside(bare) || !bare.contains('.') {
            continue;
        }
        out.push(
            finding(
                codes::PD_LINT_002,
                format!("{name} ({what}) is outside {}", m.domain.value),
            )
            .expected(format!(
                "names under {}: dnsmasq answers only those (`local=/{}/`)",
                m.domain.value, m.domain.value
            ))
            .actual(format!(
                "{what} uses {name}, which dnsmasq forwards to the upstream resolvers"
            ))
            .hint(format!(
                "Rename it to <name>.{} (a leftover from the phoenix.thinkheads.ai era).",
                m.domain.value
            ))
            .provenance([prov, m.domain.prov.clone()])
            .subject(name.clone()),
        );
    }
    out
}

/// Stacks deployed in an environment the generators do not read, and missing manifests: stacks a VM deploys whose labels and rules never apply.
pub(crate) fn stack_deployments(m: &Intended) -> Vec<Finding> {
    let mut out = Vec::new();
    for g in m.guests.iter() {
        for name in &g.docker_stacks {
            let Some(st) = m.stack(&name.value) else {
                out.push(with_subjects(
                    finding(
                        codes::PD_LINT_004,
                        format!("{} deploys stack `{}`, which has no manifest", g.vantage, name.value),
                    )
                    .expected(format!("stacks/{}/phoenix.json", name.value))
                    .actual(format!(
                        "the stacks dir has no {}/phoenix.json: the stack's Traefik labels and firewall rules are missing and `sync all` cannot deploy it",
                        name.value
                    ))
                    .hint("Fix the name in docker_stacks or add the manifest (check --stacks-dir).")
                    .provenance([name.prov.clone()]),
                    node_subjects(g),
                ));
                continue;
            };
            for d in st
                .deployments
                .iter()
                .filter(|d| Some(d.vm) == g.id && !d.applied)
            {
                out.push(with_subjects(
                    finding(
                        codes::PD_LINT_003,
                        format!(
                            "{} deploys stack `{}` as `{}`: its labels and rules are never applied",
                            g.vantage, st.name, d.environment.value
                        ),
                    )
                    .expected(format!(
                        "the environment the DNS and firewall generators read (`production`) exists in {} and is the one deployed",
                        st.file
                    ))
                    .actual(format!(
                        "deployed as `{}`; the manifest declares [{}]",
                        d.environment.value,
                        st.environments
                            .iter()
                            .map(|e| e.value.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                    .hint("Deploy the `production` environment (or give the manifest one): only it reaches DNS, cluster.fw and <vmid>.fw.")
                    .provenance([d.environment.prov.clone(), st.prov.clone()])
                    .subject(format!("stack:{}", st.name)),
                    node_subjects(g),
                ));
            }
        }
    }
    out
}

/// Older config shapes read as the platform's scripts of that time read them: one info finding
/// for each default used and each absent optional file.
pub(crate) fn config_history(m: &Intended) -> Vec<Finding> {
    m.assumptions
        .iter()
        .map(|a| {
            let code = match a.code {
                crate::config::AssumptionKind::DefaultDomain => codes::PD_CFG_001,
                crate::config::AssumptionKind::NoVmFile => codes::PD_CFG_002,
            };
            finding(code, a.title.clone())
                .expected(format!(
                    "{} as the platform's current scripts read it",
                    a.prov.file
                ))
                .actual(a.detail.clone())
                .hint("Nothing to do for a platform of that version.")
                .provenance([a.prov.clone()])
        })
        .collect()
}

/// Stack port labels whose value is a compose variable that no config file sets.
pub(crate) fn port_variables(m: &Intended) -> Vec<Finding> {
    let mut out = Vec::new();
    for st in &m.stacks {
        for svc in &st.services {
            let Some(pv) = &svc.lb_port_variable else {
                continue;
            };
            let vms: Vec<String> = st
                .deployments
                .iter()
                .map(|d| format!("vm:{}", d.vm))
                .collect();
            out.push(with_subjects(
                finding(
                    codes::PD_CFG_003,
                    format!(
                        "stack `{}` service `{}`: port is ${{{}}}, which no config sets",
                        st.name, svc.name, pv.variable
                    ),
                )
                .expected(format!(
                    "a port number in `{}`, or {} set in the production environment's variables",
                    pv.label.value, pv.variable
                ))
                .actual(format!(
                    "`{}` leaves the port to docker compose's environment; {} sets no {}: the port is unknown and nothing that needs it is planned",
                    pv.label.value, st.file, pv.variable
                ))
                .hint("Write the port number into the label, or set the variable under environments.production.variables.")
                .provenance([pv.label.prov.clone()]),
                std::iter::once(format!("stack:{}", st.name))
                    .chain(svc.hosts().map(String::from))
                    .chain(vms),
            ));
        }
    }
    out
}

/// PD-LINT-005: clone chains that loop back on themselves, each loop once.
pub(crate) fn clone_cycles(m: &Intended) -> Vec<Finding> {
    /// Members named in the title and the actual; a longer loop is counted, not listed.
    const SHOWN: usize = 12;
    m.clone_cycles
        .iter()
        .filter_map(|c| {
            let first = c.members.first()?;
            let key = match first {
                VantageRef::Vm(_) => "clone_from_vmid",
                _ => "clone_from_ctid",
            };
            let mut chain: Vec<String> = c.members.iter().take(SHOWN).map(|v| v.to_string()).collect();
            if c.members.len() > SHOWN {
                chain.push(format!("… ({} guests in all)", c.members.len()));
            }
            chain.push(first.to_string());
            let chain = chain.join(" → ");
            Some(with_subjects(
                finding(codes::PD_LINT_005, format!("{key} loops: {chain}"))
                    .expected(format!(
                        "every {key} chain ends at a guest that clones nothing"
                    ))
                    .actual(format!(
                        "{chain}: none of these {} guests can be created first, and inheritance through the chain (resolvers) stops where it closes",
                        c.members.len()
                    ))
                    .hint("Point one guest of the loop at a template that clones nothing.")
                    .provenance(c.provenance.iter().take(2).cloned()),
                c.members.iter().map(|v| v.to_string()),
            ))
        })
        .collect()
}
