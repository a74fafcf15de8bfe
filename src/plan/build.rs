//! Resolving trace definitions against the model into concrete steps (pure; sends nothing).

use super::defs::{HopDef, TraceDef, Var};
use super::{Hop, Identity, Plan, ProbeSpec, Step, Trust, VantageRef};
use crate::config::Provenance;
use crate::error::Error;
use crate::model::Intended;
use crate::observe::Layer;
use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Where a hop goes, resolved through the model.
#[derive(Debug, Clone)]
struct Target {
    /// `Step::to`: `nginx`, `traefik`, `step-ca`, `portainer`, `portainer-agent`, `qdrant`, ...
    component: String,
    addr: SocketAddr,
    scheme: String,
    prov: Vec<Provenance>,
}

/// What a generic trace is applied to.
#[derive(Debug, Clone)]
struct Service {
    /// `{service}`: the first label of the hostname (or the route name).
    name: String,
    /// `{host}`: the full hostname.
    host: String,
    backend: Target,
}

struct Ctx<'a> {
    m: &'a Intended,
    def: &'a TraceDef,
    vars: BTreeMap<String, Var>,
}

impl Ctx<'_> {
    fn err(&self, hop: &str, msg: impl std::fmt::Display) -> Error {
        Error::input(format!("{}: hop `{hop}`: {msg}", self.def.file))
    }

    /// Substitute `{name}` variables; unknown names are an error (`None` when `optional`).
    fn subst(
        &self,
        hop: &str,
        text: &str,
        local: &[(&str, String)],
        prov: &mut Vec<Provenance>,
    ) -> Result<Option<String>, Error> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find('{') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let Some(j) = after.find('}') else {
                return Err(self.err(hop, format_args!("unclosed `{{` in \"{text}\"")));
            };
            let name = &after[..j];
            if let Some((_, v)) = local.iter().find(|(k, _)| *k == name) {
                out.push_str(v);
            } else if let Some(v) = self.vars.get(name) {
                out.push_str(&v.value);
                if !prov.contains(&v.prov) {
                    prov.push(v.prov.clone());
                }
            } else {
                return Ok(None);
            }
            rest = &after[j + 1..];
        }
        out.push_str(rest);
        Ok(Some(out))
    }

    fn must(
        &self,
        hop: &str,
        text: &str,
        local: &[(&str, String)],
        prov: &mut Vec<Provenance>,
    ) -> Result<String, Error> {
        match self.subst(hop, text, local, prov)? {
            Some(s) => Ok(s),
            None => {
                let known: Vec<&str> = local
                    .iter()
                    .map(|(k, _)| *k)
                    .chain(self.vars.keys().map(String::as_str))
                    .collect();
                Err(self.err(
                    hop,
                    format_args!(
                        "\"{text}\" uses a variable that is not defined (known: {}); define it in [vars] or in the site file's [paths]",
                        known.join(", ")
                    ),
                ))
            }
        }
    }

    fn vantage(&self, hop: &str, from: &str) -> Result<(VantageRef, String), Error> {
        let m = self.m;
        let missing = |what: &str| {
            self.err(
                hop,
                format_args!("vantage `{from}` needs {what}, which the config does not define"),
            )
        };
        Ok(match from {
            "host" => (VantageRef::Host, String::new()),
            "gateway" => (
                VantageRef::Lxc(
                    m.gateway
                        .as_ref()
                        .ok_or_else(|| missing("the NGINX gateway LXC"))?
                        .lxc,
                ),
                "nginx".into(),
            ),
            "router" => (
                VantageRef::Lxc(
                    m.router
                        .as_ref()
                        .ok_or_else(|| missing("the Traefik LXC"))?
                        .lxc,
                ),
                "traefik".into(),
            ),
            "ca" => (
                VantageRef::Lxc(m.ca.as_ref().ok_or_else(|| missing("the step-ca LXC"))?.lxc),
                "step-ca".into(),
            ),
            "portainer" => (
                VantageRef::Vm(
                    m.portainer
                        .as_ref()
                        .ok_or_else(|| missing("a VM with portainer_role primary"))?
                        .vm,
                ),
                "portainer".into(),
            ),
            "agent" => (
                VantageRef::Vm(
                    m.agents
                        .first()
                        .ok_or_else(|| missing("a VM with portainer_role agent"))?
                        .vm,
                ),
                "portainer-agent".into(),
            ),
            other => {
                let v: VantageRef = other.parse().map_err(|e| self.err(hop, e))?;
                if m.node(v).is_none() {
                    return Err(self.err(
                        hop,
                        format_args!("vantage `{v}` is not a guest of the config"),
                    ));
                }
                let label = m
                    .node(v)
                    .map(|n| n.name_str().to_ascii_lowercase())
                    .unwrap_or_default();
                (v, label)
            }
        })
    }

    fn target(&self, hop: &str, to: &str, service: Option<&Service>) -> Result<Target, Error> {
        let m = self.m;
        let missing = |what: &str| {
            self.err(
                hop,
                format_args!("target `{to}` needs {what}, which the config does not define"),
            )
        };
        let t = |component: &str,
                 ip: &crate::config::Val<IpAddr>,
                 port: &crate::config::Val<u16>,
                 scheme: &str| Target {
            component: component.to_string(),
            addr: SocketAddr::new(ip.value, port.value),
            scheme: scheme.to_string(),
            prov: vec![ip.prov.clone(), port.prov.clone()],
        };
        Ok(match to {
            "dnsmasq" => {
                let s = &m.dns.server;
                Target {
                    component: "dnsmasq".into(),
                    addr: s.value,
                    scheme: "dns".into(),
                    prov: vec![s.prov.clone(), m.ports.dns.prov.clone()],
                }
            }
            "gateway" => {
                let g = m.gateway.as_ref().ok_or_else(|| missing("the NGINX gateway LXC (named Nginx-Phoenix)"))?;
                t("nginx", &g.ip, &g.listen, "https")
            }
            "router" => {
                let r = m.router.as_ref().ok_or_else(|| missing("the Traefik LXC"))?;
                t("traefik", &r.ip, &r.port, "http")
            }
            "ca" => {
                let c = m.ca.as_ref().ok_or_else(|| missing("the step-ca LXC"))?;
                t("step-ca", &c.ip, &c.port, "https")
            }
            "portainer" => {
                let p = m.portainer.as_ref().ok_or_else(|| missing("a VM with portainer_role primary"))?;
                t("portainer", &p.ip, &p.port, "https")
            }
            "agent" => {
                let a = m.agents.first().ok_or_else(|| missing("a VM with portainer_role agent"))?;
                t("portainer-agent", &a.ip, &a.port, "https")
            }
            _ if to.starts_with("stack:") => {
                let name = &to["stack:".len()..];
                stack_target(m, name).map_err(|e| self.err(hop, e))?
            }
            _ if to.starts_with("route:") => {
                let name = &to["route:".len()..];
                route_target(m, name).ok_or_else(|| missing(&format!("a Traefik route named `{name}`")))?
            }
            _ if to.starts_with("backend:") => match service {
                Some(s) => s.backend.clone(),
                None => return Err(self.err(hop, "`backend:` targets exist only in generic traces")),
            },
            _ => {
                return Err(self.err(
                    hop,
                    format_args!(
                        "unknown target `{to}` (expected dnsmasq, gateway, router, ca, portainer, agent, stack:<name>, route:<name> or backend:<service>)"
                    ),
                ))
            }
        })
    }
}

fn route_target(m: &Intended, name: &str) -> Option<Target> {
    let r = m.routes.by_name(name)?;
    let addr = r.backend?;
    Some(Target {
        component: name.to_string(),
        addr,
        scheme: r.scheme.clone(),
        prov: r.provenance.clone(),
    })
}

fn stack_target(m: &Intended, name: &str) -> Result<Target, String> {
    let s = m
        .stack(name)
        .ok_or_else(|| format!("no stack `{name}` in the stacks dir"))?;
    let d = s
        .deployments
        .first()
        .ok_or_else(|| format!("stack `{name}` is not in any VM's docker_stacks"))?;
    let vm = m
        .vm(d.vm)
        .ok_or_else(|| format!("vm:{} is not in the config", d.vm))?;
    let ip = vm
        .ip
        .as_ref()
        .ok_or_else(|| format!("vm:{} (stack `{name}`) has no static IP", d.vm))?;
    let svc = s
        .services
        .iter()
        .find(|x| x.lb_port.is_some())
        .ok_or_else(|| match s.services.iter().find_map(|x| x.lb_port_variable.as_ref()) {
            Some(pv) => format!(
                "stack `{name}`: not planned, its port is unknown: `{}` ({}) leaves it to the compose variable {}, which no config sets (lint: PD-CFG-003)",
                pv.label.value, pv.label.prov, pv.variable
            ),
            None => format!(
                "stack `{name}` has no traefik.http.services.*.loadbalancer.server.port label"
            ),
        })?;
    let port = svc.lb_port.as_ref().unwrap();
    let mut prov = vec![ip.prov.clone(), port.prov.clone()];
    prov.push(d.environment.prov.clone());
    Ok(Target {
        component: svc.name.clone(),
        addr: SocketAddr::new(ip.value, port.value),
        scheme: svc
            .lb_scheme
            .as_ref()
            .map(|x| x.value.clone())
            .unwrap_or_else(|| "http".into()),
        prov,
    })
}

/// The generic services: Traefik routes (not the dashboard), then stack label hostnames, each
/// once, keyed by `{service}`.
fn services(m: &Intended) -> Vec<Service> {
    let mut out: Vec<Service> = Vec::new();
    let mut taken: HashSet<String> = HashSet::new();
    for r in &m.routes.routes {
        if r.is_api || taken.contains(&r.name) {
            continue;
        }
        if let Some(t) = route_target(m, &r.name) {
            taken.insert(r.name.clone());
            out.push(Service {
                name: r.name.clone(),
                host: r.host.clone(),
                backend: t,
            });
        }
    }
    for s in &m.stacks {
        for svc in &s.services {
            for h in svc.hosts() {
                let name = h.split('.').next().unwrap_or(h).to_string();
                if taken.contains(&name) {
                    continue;
                }
                if let Ok(t) = stack_target(m, &s.name) {
                    taken.insert(name.clone());
                    out.push(Service {
                        name,
                        host: h.to_string(),
                        backend: t,
                    });
                }
            }
        }
    }
    out
}

/// Stacks that claim no hostname: traced by their published ports.
fn bare_stacks(m: &Intended) -> Vec<&crate::model::Stack> {
    m.stacks
        .iter()
        .filter(|s| s.hosts().is_empty() && !s.deployments.is_empty())
        .collect()
}

/// Every target `check --all` traces: the named traces, then every routed service and stack
/// hostname without a named trace, then stacks without hostnames.
pub fn targets(m: &Intended, defs: &[TraceDef]) -> Vec<String> {
    let mut out: Vec<String> = defs
        .iter()
        .filter(|d| !d.generic)
        .map(|d| d.name.clone())
        .collect();
    // Every name in `out`, and every alias of a named trace.
    let mut taken: HashSet<String> = out.iter().cloned().collect();
    taken.extend(
        defs.iter()
            .filter(|d| !d.generic)
            .flat_map(|d| d.aliases.iter().cloned()),
    );
    if defs.iter().any(|d| d.generic) {
        for s in services(m) {
            if taken.insert(s.name.clone()) {
                out.push(s.name);
            }
        }
    }
    for s in bare_stacks(m) {
        if taken.insert(s.name.clone()) {
            out.push(s.name.clone());
        }
    }
    out
}

fn unknown_target(m: &Intended, defs: &[TraceDef], target: &str) -> Error {
    // A stack (or one of its hostnames) that is known but cannot be planned says why.
    let names = |s: &crate::model::Stack| {
        s.hosts()
            .iter()
            .any(|h| *h == target || h.split('.').next() == Some(target))
    };
    if let Some(s) = m.stacks.iter().find(|s| s.name == target || names(s)) {
        if let Err(why) = stack_target(m, &s.name) {
            return Error::input(why);
        }
    }
    let known = targets(m, defs);
    let mut all: Vec<String> = known.clone();
    for d in defs.iter().filter(|d| !d.generic) {
        all.extend(d.aliases.iter().cloned());
    }
    let best = all
        .iter()
        .map(|k| (strsim::jaro_winkler(target, k), k))
        .filter(|(s, _)| *s > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let hint = best
        .map(|(_, k)| format!(" Did you mean `{k}`?"))
        .unwrap_or_default();
    Error::input(format!(
        "unknown target `{target}`.{hint} Known targets: {}",
        known.join(", ")
    ))
}

/// Resolve `target` (a trace name or alias, a routed service, a stack hostname or a stack) into
/// a plan.
pub fn build(m: &Intended, defs: &[TraceDef], target: &str) -> Result<Plan, Error> {
    let all = services(m);
    build_with(m, defs, target, |t| {
        all.iter().find(|s| s.name == t || s.host == t)
    })
}

/// [`build`] for several targets (`check`): the service list and its index are built once per
/// run, not once per target.
pub fn build_many(m: &Intended, defs: &[TraceDef], targets: &[String]) -> Result<Vec<Plan>, Error> {
    let all = services(m);
    // The first service whose name or hostname is the key, as `build` finds it.
    let mut by_key: std::collections::HashMap<&str, usize> = Default::default();
    for (i, s) in all.iter().enumerate() {
        by_key.entry(s.name.as_str()).or_insert(i);
        by_key.entry(s.host.as_str()).or_insert(i);
    }
    targets
        .iter()
        .map(|t| build_with(m, defs, t, |t| by_key.get(t).map(|&i| &all[i])))
        .collect()
}

fn build_with<'s>(
    m: &Intended,
    defs: &[TraceDef],
    target: &str,
    service: impl Fn(&str) -> Option<&'s Service>,
) -> Result<Plan, Error> {
    if let Some(d) = defs
        .iter()
        .find(|d| !d.generic && (d.name == target || d.aliases.iter().any(|a| a == target)))
    {
        return build_def(m, d, &d.name, None);
    }
    if let Some(g) = defs.iter().find(|d| d.generic) {
        if let Some(s) = service(target) {
            return build_def(m, g, &s.name, Some(s));
        }
    }
    if let Some(s) = bare_stacks(m).into_iter().find(|s| s.name == target) {
        return Ok(bare_stack_plan(m, s));
    }
    Err(unknown_target(m, defs, target))
}

fn bare_stack_plan(m: &Intended, s: &crate::model::Stack) -> Plan {
    let mut hops = Vec::new();
    let mut steps = Vec::new();
    for d in &s.deployments {
        let Some(vm) = m.vm(d.vm) else { continue };
        let Some(ip) = &vm.ip else { continue };
        let id = format!("host-{}", s.name);
        let mut ports: Vec<(u16, Provenance)> = Vec::new();
        for r in &s.firewall_rules {
            if r.direction != crate::config::Direction::In {
                continue;
            }
            if let Some(ps) = &r.dport {
                if let [(a, b)] = ps.ranges.as_slice() {
                    if a == b && !ports.iter().any(|(p, _)| p == a) {
                        ports.push((*a, r.prov.clone()));
                    }
                }
            }
        }
        if ports.is_empty() {
            continue;
        }
        hops.push(Hop {
            id: id.clone(),
            from: VantageRef::Host,
            to: s.name.clone(),
            from_label: String::new(),
            title: format!("host → {} on vm:{}", s.name, d.vm),
            path: String::new(),
        });
        for (port, p) in ports {
            let addr = SocketAddr::new(ip.value, port);
            steps.push(Step {
                id: format!("{id}.tcp.{port}"),
                hop: id.clone(),
                from: VantageRef::Host,
                to: s.name.clone(),
                layer: Layer::Tcp,
                probe: ProbeSpec::Tcp { addr },
                expect: format!("connects to {addr} (port opened by the stack's firewall rule)"),
                provenance: vec![ip.prov.clone(), p, d.environment.prov.clone()],
                depends_on: Vec::new(),
                through: Vec::new(),
            });
        }
    }
    Plan {
        target: s.name.clone(),
        hops,
        steps,
    }
}

fn trust_of(
    ctx: &Ctx,
    hop: &str,
    trust: &Option<String>,
    self_signed: &Option<Vec<String>>,
    local: &[(&str, String)],
    prov: &mut Vec<Provenance>,
) -> Result<(Trust, String), Error> {
    if let Some(names) = self_signed {
        let mut v = Vec::new();
        for n in names {
            v.push(ctx.must(hop, n, local, prov)?);
        }
        let words = format!("a self-signed certificate naming {}", v.join(" or "));
        return Ok((Trust::SelfSigned { names: v }, words));
    }
    match trust.as_deref() {
        None | Some("none") => Ok((Trust::None, "any certificate (not verified)".into())),
        Some(t) => {
            let file = ctx.must(hop, t, local, prov)?;
            let words = format!("a chain that verifies to {file}");
            Ok((
                Trust::Ca {
                    file: PathBuf::from(file),
                },
                words,
            ))
        }
    }
}

fn scheme_ok(when: &Option<String>, t: &Target) -> bool {
    when.as_ref()
        .is_none_or(|w| w.eq_ignore_ascii_case(&t.scheme))
}

fn build_def(
    m: &Intended,
    def: &TraceDef,
    target: &str,
    service: Option<&Service>,
) -> Result<Plan, Error> {
    let mut vars = def.vars.clone();
    for (k, v) in &m.paths {
        vars.insert(
            k.clone(),
            Var {
                value: v.value.clone(),
                prov: v.prov.clone(),
            },
        );
    }
    vars.insert(
        "domain".into(),
        Var {
            value: m.domain.value.clone(),
            prov: m.domain.prov.clone(),
        },
    );
    let ctx = Ctx { m, def, vars };
    let mut base: Vec<(&str, String)> = Vec::new();
    if let Some(s) = service {
        base.push(("service", s.name.clone()));
        base.push(("host", s.host.clone()));
        base.push((
            "health",
            def.health
                .get(&s.name)
                .cloned()
                .unwrap_or_else(|| "/".into()),
        ));
    }
    let mut plan = Plan {
        target: target.to_string(),
        hops: Vec::new(),
        steps: Vec::new(),
    };
    for h in &def.hops {
        let mut dummy = Vec::new();
        let hop_id = ctx.must(&h.id, &h.id, &base, &mut dummy)?;
        hop(&ctx, h, &hop_id, &base, service, &mut plan)?;
    }
    inherit_paths(&mut plan);
    Ok(plan)
}

/// A hop without a `path` of its own serves the path of the request that passes through it.
fn inherit_paths(plan: &mut Plan) {
    let mut inherited: Vec<(String, String)> = Vec::new();
    for s in &plan.steps {
        let Some(h) = plan.hops.iter().find(|h| h.id == s.hop) else {
            continue;
        };
        if !h.path.is_empty() {
            for t in &s.through {
                inherited.push((t.clone(), h.path.clone()));
            }
        }
    }
    for (id, path) in inherited {
        if let Some(h) = plan
            .hops
            .iter_mut()
            .find(|h| h.id == id && h.path.is_empty())
        {
            h.path = path;
        }
    }
}

fn fqdn_of(m: &Intended, name: &str) -> String {
    match name.strip_suffix('.') {
        Some(full) => full.to_string(),
        None => m.fqdn(name),
    }
}

fn short_of(m: &Intended, fqdn: &str) -> String {
    fqdn.strip_suffix(&format!(".{}", m.domain.value))
        .unwrap_or(fqdn)
        .to_string()
}

fn hop(
    ctx: &Ctx,
    h: &HopDef,
    id: &str,
    base: &[(&str, String)],
    service: Option<&Service>,
    plan: &mut Plan,
) -> Result<(), Error> {
    let m = ctx.m;
    let (from, from_label) = ctx.vantage(id, &h.from)?;
    let mut dummy = Vec::new();
    let to_text = ctx.must(id, &h.to, base, &mut dummy)?;
    let tgt = ctx.target(id, &to_text, service)?;
    let mut local: Vec<(&str, String)> = base.to_vec();
    local.push(("ip", tgt.addr.ip().to_string()));
    local.push(("port", tgt.addr.port().to_string()));
    local.push(("scheme", tgt.scheme.clone()));
    let through: Vec<String> = h
        .through
        .iter()
        .map(|t| ctx.must(id, t, base, &mut dummy))
        .collect::<Result<_, _>>()?;

    let mut steps: Vec<Step> = Vec::new();
    let mut title_port = tgt.addr.port();
    let step = |layer: Layer,
                sid: String,
                probe: ProbeSpec,
                expect: String,
                provenance: Vec<Provenance>,
                depends_on: Vec<String>,
                through: Vec<String>| Step {
        id: sid,
        hop: id.to_string(),
        from,
        to: tgt.component.clone(),
        layer,
        probe,
        expect,
        provenance,
        depends_on,
        through,
    };

    if let Some(d) = &h.dns {
        let (server, server_prov, server_words) = if d.server == "own" {
            let node = m.node(from).expect("vantage resolved");
            match node.nameservers.first() {
                Some(ns) => {
                    let port = if Some(ns.value) == m.host.ip_addr() {
                        m.ports.dns.value
                    } else {
                        53
                    };
                    (
                        SocketAddr::new(ns.value, port),
                        vec![ns.prov.clone()],
                        format!("{from}'s nameserver ({})", node.nameservers_from),
                    )
                }
                None => (
                    m.dns.server.value,
                    vec![m.dns.server.prov.clone()],
                    format!("{from} has no nameserver in the config; the platform DNS"),
                ),
            }
        } else {
            (
                m.dns.server.value,
                tgt.prov.clone(),
                "the platform DNS (dnsmasq)".to_string(),
            )
        };
        title_port = server.port();
        for n in &d.names {
            let name = ctx.must(id, n, &local, &mut dummy)?;
            let fq = fqdn_of(m, &name);
            let rec = m.dns.answer(&fq);
            let mut prov = server_prov.clone();
            let (expect_ips, words) = match rec {
                Some(r) => {
                    prov.extend(r.provenance.iter().cloned());
                    // The generator hard-codes `ca` → 10.0.0.10; the intent is the CA guest's
                    // address (lint reports the literal when the two differ).
                    match r.guest_ip.or(r.ip) {
                        Some(ip) => (
                            vec![ip],
                            format!(
                                "A {ip} from {server_words} (rule {}: {}{})",
                                r.rule.number(),
                                r.rule.describe(),
                                if r.guest_ip.is_some() {
                                    format!("; the generator writes {}", r.ip_text)
                                } else {
                                    String::new()
                                }
                            ),
                        ),
                        None => (
                            Vec::new(),
                            format!("the record \"{}\" (not an IP)", r.ip_text),
                        ),
                    }
                }
                None => (
                    Vec::new(),
                    format!(
                        "an answer from {server_words} (the config derives no record for {fq})"
                    ),
                ),
            };
            steps.push(step(
                Layer::Dns,
                format!("{id}.dns.{}", short_of(m, &fq)),
                ProbeSpec::Dns {
                    name: fq,
                    server,
                    expect: expect_ips,
                    system: d.system,
                },
                words,
                prov,
                Vec::new(),
                Vec::new(),
            ));
        }
    }

    let mut prev: Option<String> = None;
    let deps = |prev: &Option<String>| prev.iter().cloned().collect::<Vec<_>>();
    if h.tcp {
        let sid = format!("{id}.tcp");
        steps.push(step(
            Layer::Tcp,
            sid.clone(),
            ProbeSpec::Tcp { addr: tgt.addr },
            format!("connects to {} ({})", tgt.addr, tgt.component),
            tgt.prov.clone(),
            Vec::new(),
            Vec::new(),
        ));
        prev = Some(sid);
    }
    let mut identity: Option<Identity> = None;
    if let Some(t) = h.tls.as_ref().filter(|t| scheme_ok(&t.when, &tgt)) {
        let mut prov = tgt.prov.clone();
        let sni = ctx.must(id, &t.sni, &local, &mut prov)?;
        if let Some(r) = m.dns.record(&sni) {
            prov.extend(r.provenance.first().cloned());
        }
        let (trust, words) = trust_of(ctx, id, &t.trust, &t.self_signed, &local, &mut prov)?;
        let sid = format!("{id}.tls");
        steps.push(step(
            Layer::Tls,
            sid.clone(),
            ProbeSpec::Tls {
                addr: tgt.addr,
                sni: sni.clone(),
                trust,
            },
            format!("TLS handshake with SNI {sni}; {words}"),
            prov,
            deps(&prev),
            Vec::new(),
        ));
        prev = Some(sid);
    }
    if let Some(t) = h.mtls.as_ref().filter(|t| scheme_ok(&t.when, &tgt)) {
        let mut prov = tgt.prov.clone();
        let cert = t
            .cert
            .as_ref()
            .map(|c| ctx.subst(id, c, &local, &mut prov))
            .transpose()?;
        let key = t
            .key
            .as_ref()
            .map(|c| ctx.subst(id, c, &local, &mut prov))
            .transpose()?;
        let defined = !matches!(cert, Some(None)) && !matches!(key, Some(None));
        if defined || !t.optional {
            let cert = cert.map(|c| c.ok_or(())).transpose();
            let key = key.map(|c| c.ok_or(())).transpose();
            let (Ok(cert), Ok(key)) = (cert, key) else {
                return Err(ctx.err(id, "mtls cert/key use a variable that is not defined; mark the layer `optional = true` or define it in the site file's [paths]"));
            };
            let sni = ctx.must(id, &t.sni, &local, &mut prov)?;
            let (trust, words) = trust_of(ctx, id, &t.trust, &None, &local, &mut prov)?;
            identity = match (cert, key) {
                (Some(c), Some(k)) => Some(Identity {
                    cert: PathBuf::from(c),
                    key: PathBuf::from(k),
                }),
                _ => None,
            };
            let sid = format!("{id}.mtls");
            let who = identity
                .as_ref()
                .map(|i| format!("accepts the client certificate {}", i.cert.display()))
                .unwrap_or_else(|| "is probed without a client certificate".into());
            steps.push(step(
                Layer::Mtls,
                sid.clone(),
                ProbeSpec::Mtls {
                    addr: tgt.addr,
                    sni,
                    trust,
                    identity: identity.clone(),
                    require: t.require,
                },
                format!(
                    "{}the server {who}; {words}",
                    if t.require {
                        "a client certificate is required and "
                    } else {
                        ""
                    }
                ),
                prov,
                deps(&prev),
                Vec::new(),
            ));
            prev = Some(sid);
        }
    }
    if let Some(hd) = &h.http {
        let mut prov = tgt.prov.clone();
        let url = ctx.must(id, &hd.url, &local, &mut prov)?;
        let url_host = url
            .split("://")
            .nth(1)
            .and_then(|r| r.split(['/', ':']).next())
            .unwrap_or("")
            .to_string();
        if let Some(r) = m.dns.record(&url_host) {
            prov.extend(r.provenance.first().cloned());
        }
        let https = url.starts_with("https://");
        let trust = if https {
            Some(trust_of(
                ctx,
                id,
                &hd.trust,
                &hd.self_signed,
                &local,
                &mut prov,
            )?)
        } else {
            None
        };
        let status = if hd.status.is_empty() {
            service
                .and_then(|s| ctx.def.status.get(&s.name).cloned())
                .unwrap_or_default()
        } else {
            hd.status.clone()
        };
        let body = hd
            .body
            .as_ref()
            .map(|b| ctx.must(id, b, &local, &mut prov))
            .transpose()?;
        let status_words = if status.is_empty() {
            "a 2xx status".to_string()
        } else {
            status
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or ")
        };
        let mut words = format!("GET {url} via {} → {status_words}", tgt.addr);
        if let Some(b) = &body {
            words.push_str(&format!(", body contains \"{b}\""));
        }
        if let Some((_, tw)) = &trust {
            words.push_str(&format!("; {tw}"));
        }
        steps.push(step(
            Layer::Http,
            format!("{id}.http"),
            ProbeSpec::Http {
                url,
                connect: tgt.addr,
                trust: trust.map(|t| t.0),
                identity: identity.clone(),
                expect_status: status,
                expect_body: body,
            },
            words,
            prov,
            deps(&prev),
            through,
        ));
    }

    let mut tl = local.clone();
    if let Some(p) = tl.iter_mut().find(|(k, _)| *k == "port") {
        p.1 = title_port.to_string();
    }
    let title = if h.title.is_empty() {
        format!("{from} → {} :{title_port}", tgt.component)
    } else {
        ctx.must(id, &h.title, &tl, &mut dummy)?
    };
    plan.hops.push(Hop {
        id: id.to_string(),
        from,
        to: tgt.component.clone(),
        from_label,
        title,
        path: h.path.clone().unwrap_or_default(),
    });
    plan.steps.extend(steps);
    Ok(())
}
