//! Resolving trace definitions against the model into concrete steps (pure; sends nothing).

use super::{Hop, Identity, Plan, ProbeSpec, Step, Trust, VantageRef};
use crate::config::Provenance;
use crate::error::Error;
use crate::hops::traces::{DnsDef, HopDef, HttpDef, MtlsDef, TlsDef, TraceDef, Var};
use crate::model::Intended;
use crate::observe::{Layer, Scheme};
use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Where a hop goes, resolved through the model.
#[derive(Debug, Clone)]
struct Target {
    /// `Step::to`: `nginx`, `traefik`, `step-ca`, `portainer`, `portainer-agent`, `qdrant`, ...
    component: String,
    addr: SocketAddr,
    scheme: Scheme,
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
        Error::plan(format!("{}: hop `{hop}`: {msg}", self.def.file))
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
                 scheme: Scheme| Target {
            component: component.to_string(),
            addr: SocketAddr::new(ip.value, port.value),
            scheme,
            prov: vec![ip.prov.clone(), port.prov.clone()],
        };
        Ok(match to {
            "dnsmasq" => {
                let s = &m.dns.server;
                Target {
                    component: "dnsmasq".into(),
                    addr: s.value,
                    scheme: Scheme::Dns,
                    prov: vec![s.prov.clone(), m.ports.dns.prov.clone()],
                }
            }
            "gateway" => {
                let g = m.gateway.as_ref().ok_or_else(|| missing("the NGINX gateway LXC (named Nginx-Phoenix)"))?;
                t("nginx", &g.ip, &g.listen, Scheme::Https)
            }
            "router" => {
                let r = m.router.as_ref().ok_or_else(|| missing("the Traefik LXC"))?;
                t("traefik", &r.ip, &r.port, Scheme::Http)
            }
            "ca" => {
                let c = m.ca.as_ref().ok_or_else(|| missing("the step-ca LXC"))?;
                t("step-ca", &c.ip, &c.port, Scheme::Https)
            }
            "portainer" => {
                let p = m.portainer.as_ref().ok_or_else(|| missing("a VM with portainer_role primary"))?;
                t("portainer", &p.ip, &p.port, Scheme::Https)
            }
            "agent" => {
                let a = m.agents.first().ok_or_else(|| missing("a VM with portainer_role agent"))?;
                t("portainer-agent", &a.ip, &a.port, Scheme::Https)
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
        scheme: r.scheme,
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
        scheme: svc.lb_scheme.as_ref().map_or(Scheme::Http, |x| x.value),
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
            return Error::plan(why);
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
    Error::plan(format!(
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

fn scheme_ok(when: &Option<Scheme>, t: &Target) -> bool {
    when.is_none_or(|w| w == t.scheme)
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

/// One hop being resolved: where it runs, what it reaches, and the variables its text may use
/// (`{ip}`, `{port}`, `{scheme}` of the target on top of the trace's own).
struct HopCtx<'c, 'a> {
    ctx: &'c Ctx<'a>,
    id: &'c str,
    from: VantageRef,
    tgt: Target,
    local: Vec<(&'c str, String)>,
}

/// The nameserver a DNS hop asks, with where it comes from and words for the expectation.
struct DnsServer {
    addr: SocketAddr,
    prov: Vec<Provenance>,
    words: String,
}

/// The nameserver a `dns` layer queries: the platform DNS, or (`own`) the vantage's first
/// configured nameserver, on the platform's DNS port when that is the host.
fn dns_server(m: &Intended, from: VantageRef, own: bool, tgt: &Target) -> DnsServer {
    let platform = |prov: Vec<Provenance>, words: String| DnsServer {
        addr: m.dns.server.value,
        prov,
        words,
    };
    if !own {
        return platform(tgt.prov.clone(), "the platform DNS (dnsmasq)".to_string());
    }
    let node = m.node(from).expect("vantage resolved");
    match node.nameservers.first() {
        Some(ns) => {
            let port = if Some(ns.value) == m.host.ip_addr() {
                m.ports.dns.value
            } else {
                53
            };
            DnsServer {
                addr: SocketAddr::new(ns.value, port),
                prov: vec![ns.prov.clone()],
                words: format!("{from}'s nameserver ({})", node.nameservers_from),
            }
        }
        None => platform(
            vec![m.dns.server.prov.clone()],
            format!("{from} has no nameserver in the config; the platform DNS"),
        ),
    }
}

/// What a DNS step expects for `fq`: the addresses the generator derives, the expectation in
/// words, and the provenance of the record.
fn dns_expectation(
    m: &Intended,
    fq: &str,
    server: &DnsServer,
) -> (Vec<IpAddr>, String, Vec<Provenance>) {
    let mut prov = server.prov.clone();
    let Some(r) = m.dns.answer(fq) else {
        let words = format!(
            "an answer from {} (the config derives no record for {fq})",
            server.words
        );
        return (Vec::new(), words, prov);
    };
    prov.extend(r.provenance.iter().cloned());
    // The generator hard-codes `ca` → 10.0.0.10; the intent is the CA guest's address (lint
    // reports the literal when the two differ).
    let Some(ip) = r.guest_ip.or(r.ip) else {
        return (
            Vec::new(),
            format!("the record \"{}\" (not an IP)", r.ip_text),
            prov,
        );
    };
    let literal = if r.guest_ip.is_some() {
        format!("; the generator writes {}", r.ip_text)
    } else {
        String::new()
    };
    let words = format!(
        "A {ip} from {} (rule {}: {}{literal})",
        server.words,
        r.rule.number(),
        r.rule.describe(),
    );
    (vec![ip], words, prov)
}

/// The host part of a URL (`https://qdrant.example:443/x` → `qdrant.example`).
fn url_host(url: &str) -> &str {
    url.split("://")
        .nth(1)
        .and_then(|r| r.split(['/', ':']).next())
        .unwrap_or("")
}

/// The statuses an HTTP step accepts, in words.
fn status_words(status: &[u16]) -> String {
    if status.is_empty() {
        return "a 2xx status".to_string();
    }
    status
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}

impl<'c, 'a> HopCtx<'c, 'a> {
    fn new(
        ctx: &'c Ctx<'a>,
        id: &'c str,
        from: VantageRef,
        tgt: Target,
        base: &[(&'c str, String)],
    ) -> Self {
        let mut local: Vec<(&'c str, String)> = base.to_vec();
        local.push(("ip", tgt.addr.ip().to_string()));
        local.push(("port", tgt.addr.port().to_string()));
        local.push(("scheme", tgt.scheme.to_string()));
        HopCtx {
            ctx,
            id,
            from,
            tgt,
            local,
        }
    }

    fn must(&self, text: &str, prov: &mut Vec<Provenance>) -> Result<String, Error> {
        self.ctx.must(self.id, text, &self.local, prov)
    }

    fn trust(
        &self,
        trust: &Option<String>,
        self_signed: &Option<Vec<String>>,
        prov: &mut Vec<Provenance>,
    ) -> Result<(Trust, String), Error> {
        trust_of(self.ctx, self.id, trust, self_signed, &self.local, prov)
    }

    fn step(&self, layer: Layer, probe: ProbeSpec, expect: String) -> Step {
        Step {
            id: format!("{}.{}", self.id, layer.as_str()),
            hop: self.id.to_string(),
            from: self.from,
            to: self.tgt.component.clone(),
            layer,
            probe,
            expect,
            provenance: self.tgt.prov.clone(),
            depends_on: Vec::new(),
            through: Vec::new(),
        }
    }

    /// One DNS step per name of the `dns` layer.
    fn dns_steps(&self, d: &DnsDef, server: &DnsServer) -> Result<Vec<Step>, Error> {
        let m = self.ctx.m;
        let mut out = Vec::new();
        for n in &d.names {
            let fq = fqdn_of(m, &self.must(n, &mut Vec::new())?);
            let (expect, words, prov) = dns_expectation(m, &fq, server);
            let mut s = self.step(
                Layer::Dns,
                ProbeSpec::Dns {
                    name: fq.clone(),
                    server: server.addr,
                    expect,
                    system: d.system,
                },
                words,
            );
            s.id = format!("{}.dns.{}", self.id, short_of(m, &fq));
            s.provenance = prov;
            out.push(s);
        }
        Ok(out)
    }

    fn tcp_step(&self) -> Step {
        let t = &self.tgt;
        let expect = format!("connects to {} ({})", t.addr, t.component);
        self.step(Layer::Tcp, ProbeSpec::Tcp { addr: t.addr }, expect)
    }

    fn tls_step(&self, t: &TlsDef) -> Result<Step, Error> {
        let mut prov = self.tgt.prov.clone();
        let sni = self.must(&t.sni, &mut prov)?;
        if let Some(r) = self.ctx.m.dns.record(&sni) {
            prov.extend(r.provenance.first().cloned());
        }
        let (trust, words) = self.trust(&t.trust, &t.self_signed, &mut prov)?;
        let expect = format!("TLS handshake with SNI {sni}; {words}");
        let addr = self.tgt.addr;
        let mut s = self.step(Layer::Tls, ProbeSpec::Tls { addr, sni, trust }, expect);
        s.provenance = prov;
        Ok(s)
    }

    /// The `mtls` layer with the identity it presents; `None` when the layer is optional and
    /// its client identity is not defined.
    fn mtls_step(&self, t: &MtlsDef) -> Result<Option<(Step, Option<Identity>)>, Error> {
        let mut prov = self.tgt.prov.clone();
        let mut opt = |v: &Option<String>| {
            v.as_ref()
                .map(|c| self.ctx.subst(self.id, c, &self.local, &mut prov))
                .transpose()
        };
        let (cert, key) = (opt(&t.cert)?, opt(&t.key)?);
        let defined = !matches!(cert, Some(None)) && !matches!(key, Some(None));
        if !defined && t.optional {
            return Ok(None);
        }
        let cert = cert.map(|c| c.ok_or(())).transpose();
        let key = key.map(|c| c.ok_or(())).transpose();
        let (Ok(cert), Ok(key)) = (cert, key) else {
            return Err(self.ctx.err(self.id, "mtls cert/key use a variable that is not defined; mark the layer `optional = true` or define it in the site file's [paths]"));
        };
        let sni = self.must(&t.sni, &mut prov)?;
        let (trust, words) = self.trust(&t.trust, &None, &mut prov)?;
        let identity = match (cert, key) {
            (Some(c), Some(k)) => Some(Identity {
                cert: PathBuf::from(c),
                key: PathBuf::from(k),
            }),
            _ => None,
        };
        let who = identity
            .as_ref()
            .map(|i| format!("accepts the client certificate {}", i.cert.display()))
            .unwrap_or_else(|| "is probed without a client certificate".into());
        let required = if t.require {
            "a client certificate is required and "
        } else {
            ""
        };
        let probe = ProbeSpec::Mtls {
            addr: self.tgt.addr,
            sni,
            trust,
            identity: identity.clone(),
            require: t.require,
        };
        let mut s = self.step(
            Layer::Mtls,
            probe,
            format!("{required}the server {who}; {words}"),
        );
        s.provenance = prov;
        Ok(Some((s, identity)))
    }

    fn http_step(
        &self,
        hd: &HttpDef,
        service: Option<&Service>,
        identity: Option<Identity>,
    ) -> Result<Step, Error> {
        let mut prov = self.tgt.prov.clone();
        let url = self.must(&hd.url, &mut prov)?;
        if let Some(r) = self.ctx.m.dns.record(url_host(&url)) {
            prov.extend(r.provenance.first().cloned());
        }
        let trust = if url.starts_with("https://") {
            Some(self.trust(&hd.trust, &hd.self_signed, &mut prov)?)
        } else {
            None
        };
        let status = if hd.status.is_empty() {
            service
                .and_then(|s| self.ctx.def.status.get(&s.name).cloned())
                .unwrap_or_default()
        } else {
            hd.status.clone()
        };
        let body = hd
            .body
            .as_ref()
            .map(|b| self.must(b, &mut prov))
            .transpose()?;
        let mut words = format!(
            "GET {url} via {} → {}",
            self.tgt.addr,
            status_words(&status)
        );
        if let Some(b) = &body {
            words.push_str(&format!(", body contains \"{b}\""));
        }
        if let Some((_, tw)) = &trust {
            words.push_str(&format!("; {tw}"));
        }
        let probe = ProbeSpec::Http {
            url,
            connect: self.tgt.addr,
            trust: trust.map(|t| t.0),
            identity,
            expect_status: status,
            expect_body: body,
        };
        let mut s = self.step(Layer::Http, probe, words);
        s.provenance = prov;
        Ok(s)
    }

    /// The hop's title: its own (with `{port}` the port the hop dials) or `from → to :port`.
    fn title(&self, h: &HopDef, port: u16) -> Result<String, Error> {
        if h.title.is_empty() {
            return Ok(format!("{} → {} :{port}", self.from, self.tgt.component));
        }
        let mut tl = self.local.clone();
        if let Some(p) = tl.iter_mut().find(|(k, _)| *k == "port") {
            p.1 = port.to_string();
        }
        self.ctx.must(self.id, &h.title, &tl, &mut Vec::new())
    }
}

/// Resolve one hop of a definition into its steps, each layer depending on the one before.
fn hop(
    ctx: &Ctx,
    h: &HopDef,
    id: &str,
    base: &[(&str, String)],
    service: Option<&Service>,
    plan: &mut Plan,
) -> Result<(), Error> {
    let (from, from_label) = ctx.vantage(id, &h.from)?;
    let to_text = ctx.must(id, &h.to, base, &mut Vec::new())?;
    let tgt = ctx.target(id, &to_text, service)?;
    let through: Vec<String> = h
        .through
        .iter()
        .map(|t| ctx.must(id, t, base, &mut Vec::new()))
        .collect::<Result<_, _>>()?;
    let hc = HopCtx::new(ctx, id, from, tgt, base);

    let mut steps: Vec<Step> = Vec::new();
    let mut title_port = hc.tgt.addr.port();
    if let Some(d) = &h.dns {
        let server = dns_server(ctx.m, from, d.server == "own", &hc.tgt);
        title_port = server.addr.port();
        steps.extend(hc.dns_steps(d, &server)?);
    }
    // Each connection layer depends on the one before it.
    let mut chain: Vec<Step> = Vec::new();
    if h.tcp {
        chain.push(hc.tcp_step());
    }
    if let Some(t) = h.tls.as_ref().filter(|t| scheme_ok(&t.when, &hc.tgt)) {
        chain.push(hc.tls_step(t)?);
    }
    let mut identity: Option<Identity> = None;
    if let Some(t) = h.mtls.as_ref().filter(|t| scheme_ok(&t.when, &hc.tgt)) {
        if let Some((s, i)) = hc.mtls_step(t)? {
            chain.push(s);
            identity = i;
        }
    }
    if let Some(hd) = &h.http {
        let mut s = hc.http_step(hd, service, identity)?;
        s.through = through;
        chain.push(s);
    }
    for i in 1..chain.len() {
        chain[i].depends_on = vec![chain[i - 1].id.clone()];
    }
    steps.extend(chain);

    plan.hops.push(Hop {
        id: id.to_string(),
        from,
        to: hc.tgt.component.clone(),
        from_label,
        title: hc.title(h, title_port)?,
        path: h.path.clone().unwrap_or_default(),
    });
    plan.steps.extend(steps);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::path::Path;

    fn reference() -> Intended {
        let etc = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/configs/reference/etc");
        crate::model::load(&etc, None).expect("reference config loads")
    }

    fn target(m: &Intended) -> Target {
        Target {
            component: "qdrant".into(),
            addr: SocketAddr::from((Ipv4Addr::new(10, 0, 0, 102), 6333)),
            scheme: Scheme::Http,
            prov: vec![m.domain.prov.clone()],
        }
    }

    fn sock(a: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::from(a), port))
    }

    #[test]
    fn a_dns_hop_asks_the_platform_dns_or_the_vantages_own_nameserver_on_its_port() {
        let mut m = reference();
        // The host's dnsmasq listens on a port of its own; a guest nameserver on another IP is
        // asked on 53.
        m.ports.dns.value = 5353;
        let t = target(&m);
        let platform = dns_server(&m, VantageRef::Lxc(102), false, &t);
        assert_eq!(platform.addr, m.dns.server.value);
        assert_eq!(platform.words, "the platform DNS (dnsmasq)");
        assert_eq!(platform.prov, t.prov);

        let router = dns_server(&m, VantageRef::Lxc(102), true, &t);
        assert_eq!(router.addr, sock([10, 0, 0, 13], 5353));
        assert!(
            router.words.starts_with("lxc:102's nameserver ("),
            "{}",
            router.words
        );

        let template = dns_server(&m, VantageRef::Lxc(900), true, &t);
        assert_eq!(template.addr, sock([8, 8, 8, 8], 53));
    }

    #[test]
    fn a_dns_step_expects_the_generators_record_or_any_answer_when_none_is_derived() {
        let m = reference();
        let server = DnsServer {
            addr: sock([10, 0, 0, 13], 53),
            prov: Vec::new(),
            words: "S".into(),
        };
        let (ips, words, prov) = dns_expectation(&m, "qdrant.internal.thinkheads.ai", &server);
        // The gateway serves qdrant's name: the generator points it at NGINX (.153).
        assert_eq!(ips, vec![IpAddr::from([10, 0, 0, 153])]);
        assert!(words.starts_with("A 10.0.0.153 from S (rule "), "{words}");
        assert!(!prov.is_empty(), "the record's provenance is kept");

        let (ips, words, prov) = dns_expectation(&m, "nosuch.example.org", &server);
        assert!(ips.is_empty());
        assert_eq!(
            words,
            "an answer from S (the config derives no record for nosuch.example.org)"
        );
        assert!(prov.is_empty());
    }

    #[test]
    fn url_hosts_and_status_words() {
        assert_eq!(url_host("https://qdrant.x.ai:8443/healthz"), "qdrant.x.ai");
        assert_eq!(url_host("http://10.0.0.102/healthz"), "10.0.0.102");
        assert_eq!(url_host("qdrant"), "");
        assert_eq!(status_words(&[]), "a 2xx status");
        assert_eq!(status_words(&[200, 204]), "200 or 204");
    }
}
