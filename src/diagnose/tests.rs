//! Diagnosis rules on synthetic plans and observations (no network).

use super::*;
use crate::finding::Origin;
use crate::observe::*;
use crate::plan::{Hop, Trust, VantageRef};
use std::net::SocketAddr;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub(crate) struct P {
    pub(crate) plan: Plan,
    pub(crate) obs: Vec<Observation>,
}

impl P {
    fn new() -> Self {
        P {
            plan: Plan {
                target: "qdrant".into(),
                hops: vec![],
                steps: vec![],
            },
            obs: vec![],
        }
    }
    fn hop(&mut self, id: &str, from: VantageRef, to: &str) {
        self.plan.hops.push(Hop {
            id: id.into(),
            from,
            to: to.into(),
            from_label: String::new(),
            title: id.into(),
            path: String::new(),
        });
    }
    fn step(&mut self, hop: &str, layer: Layer, probe: ProbeSpec, through: &[&str]) -> String {
        let h = self.plan.hops.iter().find(|h| h.id == hop).unwrap().clone();
        let id = format!("{hop}.{}", layer.as_str());
        let prev = self
            .plan
            .steps
            .iter()
            .rev()
            .find(|s| s.hop == hop && s.layer != Layer::Dns)
            .map(|s| s.id.clone());
        self.plan.steps.push(Step {
            id: id.clone(),
            hop: hop.into(),
            from: h.from,
            to: h.to,
            layer,
            probe,
            expect: format!("{layer} ok"),
            provenance: vec![Provenance::new(
                "phoenix_vm_configs.json",
                "/vms/0/network_config/ip",
                Some(20),
            )],
            depends_on: prev.into_iter().collect(),
            through: through.iter().map(|s| s.to_string()).collect(),
        });
        id
    }
    pub(crate) fn ok(&mut self, id: &str) {
        self.obs.push(obs(id, Outcome::Ok, None, Evidence::None));
    }
    pub(crate) fn run(&self) -> Report {
        let run = Run {
            schema_version: 1,
            target: "qdrant".into(),
            started_at: String::new(),
            duration_ms: 1.0,
            observations: self.obs.clone(),
        };
        diagnose(&self.plan, &run, &[])
    }
}

pub(crate) fn obs(
    id: &str,
    outcome: Outcome,
    reason: Option<&str>,
    evidence: Evidence,
) -> Observation {
    Observation {
        step: id.into(),
        outcome,
        phase: None,
        reason: reason.and_then(|r| r.parse().ok()),
        message: reason.unwrap_or("ok").to_string(),
        evidence,
        timings: Timings::default(),
        vantage: VantageNote::default(),
    }
}

pub(crate) fn http_ev(status: u16, body: &str, meaning: Option<&str>) -> Evidence {
    Evidence::Http(HttpEvidence {
        url: "https://x/".into(),
        connect: "127.0.0.1:443".into(),
        status: Some(status),
        server: None,
        body: body.into(),
        proxy_meaning: meaning.map(|m| m.parse().unwrap()),
        tls: None,
    })
}

pub(crate) fn refused() -> Evidence {
    Evidence::Tcp(TcpEvidence {
        addr: "x".into(),
        state: TcpState::Refused,
        os_error: None,
    })
}

fn tcp() -> ProbeSpec {
    ProbeSpec::Tcp {
        addr: addr("127.0.0.1:1"),
    }
}
fn tls() -> ProbeSpec {
    ProbeSpec::Tls {
        addr: addr("127.0.0.1:1"),
        sni: "x".into(),
        trust: Trust::None,
    }
}
fn http() -> ProbeSpec {
    ProbeSpec::Http {
        url: "https://x/".into(),
        connect: addr("127.0.0.1:1"),
        trust: None,
        identity: None,
        expect_status: vec![200],
        expect_body: None,
    }
}

/// The deploy path: host → gateway → router → portainer.
pub(crate) fn deploy_path() -> (P, [String; 7]) {
    let mut p = P::new();
    p.hop("host-gateway-portainer", VantageRef::Host, "nginx");
    p.hop("gateway-router-portainer", VantageRef::Lxc(101), "traefik");
    p.hop("router-portainer", VantageRef::Lxc(102), "portainer");
    let a = p.step("host-gateway-portainer", Layer::Tcp, tcp(), &[]);
    let b = p.step(
        "host-gateway-portainer",
        Layer::Http,
        http(),
        &["gateway-router-portainer", "router-portainer"],
    );
    let c = p.step("gateway-router-portainer", Layer::Tcp, tcp(), &[]);
    let d = p.step(
        "gateway-router-portainer",
        Layer::Http,
        http(),
        &["router-portainer"],
    );
    let e = p.step("router-portainer", Layer::Tcp, tcp(), &[]);
    let f = p.step("router-portainer", Layer::Tls, tls(), &[]);
    let g = p.step("router-portainer", Layer::Http, http(), &[]);
    (p, [a, b, c, d, e, f, g])
}

#[test]
fn healthy_when_every_step_is_ok() {
    let (mut p, ids) = deploy_path();
    for id in &ids {
        p.ok(id);
    }
    let r = p.run();
    assert_eq!(r.verdict, Overall::Healthy);
    assert!(r.findings.is_empty());
    assert!(r.first_divergence.is_none());
    assert_eq!(r.verdict.exit_code(), 0);
    assert!(r.hops.iter().all(|h| h.verdict == Verdict::Ok));
}

/// The deploy path with Portainer serving a self-signed certificate: the router's TLS check
/// fails, and the gateway (502) and router (500) answers are its symptoms.
pub(crate) fn backend_tls_path() -> (P, [String; 7]) {
    let (mut p, ids) = deploy_path();
    let [a, b, c, d, e, f, g] = ids.clone();
    p.ok(&a);
    p.obs.push(obs(
        &b,
        Outcome::Failed,
        Some("502 Bad Gateway from nginx"),
        http_ev(502, "Bad Gateway", Some("backend-refused")),
    ));
    p.ok(&c);
    p.obs.push(obs(
        &d,
        Outcome::Failed,
        Some("500 from the router"),
        http_ev(500, "Internal Server Error", Some("backend-tls")),
    ));
    p.ok(&e);
    let t = TlsEvidence {
        verify_error: Some(VerifyError::SelfSigned),
        verify_detail: "issuer = subject = CN=portainer".into(),
        ..Default::default()
    };
    p.obs.push(obs(
        &f,
        Outcome::Failed,
        Some("self-signed certificate"),
        Evidence::Tls(t),
    ));
    p.obs.push(Observation::blocked(&g, &f));
    (p, ids)
}

#[test]
fn backend_tls_failure_seen_as_gateway_502_is_one_root_cause_at_the_router_hop() {
    let (p, ids) = backend_tls_path();
    let [_, b, _, _, _, _, g] = ids;
    let r = p.run();
    assert_eq!(r.verdict, Overall::Diverged);
    let errors: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let fd = r.first_divergence.as_ref().unwrap();
    assert_eq!(
        (fd.hop.as_str(), fd.layer, fd.code.as_str()),
        ("router-portainer", Layer::Tls, "PD-TLS-005")
    );
    let symptoms: Vec<&str> = errors[0]
        .evidence
        .iter()
        .filter_map(|e| e.symptom_step())
        .collect();
    assert_eq!(symptoms.len(), 2, "{:#?}", errors[0].evidence);
    assert!(symptoms.contains(&b.as_str()), "{symptoms:?}");
    let step_g = r.steps.iter().find(|s| s.id == g).unwrap();
    assert_eq!(step_g.verdict, Verdict::Blocked);
    let hop_gw = r
        .hops
        .iter()
        .find(|h| h.id == "host-gateway-portainer")
        .unwrap();
    assert_eq!(hop_gw.verdict, Verdict::Blocked);
}

#[test]
fn dropped_backend_port_is_unreachable_and_blocks_later_layers() {
    let (mut p, ids) = deploy_path();
    let [a, b, c, d, e, f, g] = ids;
    p.ok(&a);
    p.obs.push(obs(
        &b,
        Outcome::Failed,
        Some("status-mismatch"),
        http_ev(504, "Gateway Timeout", Some("backend-timeout")),
    ));
    p.ok(&c);
    p.obs.push(obs(
        &d,
        Outcome::Failed,
        Some("status-mismatch"),
        http_ev(504, "Gateway Timeout", Some("backend-timeout")),
    ));
    p.obs.push(obs(
        &e,
        Outcome::TimedOut,
        Some("filtered"),
        Evidence::Tcp(TcpEvidence {
            addr: "127.0.0.111:9443".into(),
            state: TcpState::Filtered,
            os_error: None,
        }),
    ));
    p.obs.push(Observation::blocked(&f, &e));
    p.obs.push(Observation::blocked(&g, &f));
    let r = p.run();
    let fd = r.first_divergence.unwrap();
    assert_eq!(
        (fd.hop.as_str(), fd.layer, fd.code.as_str()),
        ("router-portainer", Layer::Tcp, "PD-TCP-002")
    );
    assert_eq!(
        r.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count(),
        1
    );
    assert_eq!(
        r.steps.iter().find(|s| s.id == e).unwrap().verdict,
        Verdict::Unreachable
    );
}

#[test]
fn no_router_is_attributed_to_the_router_hop_not_the_gateway() {
    let mut p = P::new();
    p.hop("host-gateway", VantageRef::Host, "nginx");
    p.hop("gateway-router", VantageRef::Lxc(101), "traefik");
    p.hop("router-qdrant", VantageRef::Lxc(102), "qdrant");
    let a = p.step(
        "host-gateway",
        Layer::Http,
        http(),
        &["gateway-router", "router-qdrant"],
    );
    let b = p.step("gateway-router", Layer::Http, http(), &["router-qdrant"]);
    let c = p.step("router-qdrant", Layer::Http, http(), &[]);
    p.obs.push(obs(
        &a,
        Outcome::Failed,
        Some("status-mismatch"),
        http_ev(404, "404 page not found\n", Some("no-router")),
    ));
    p.obs.push(obs(
        &b,
        Outcome::Failed,
        Some("status-mismatch"),
        http_ev(404, "404 page not found\n", Some("no-router")),
    ));
    p.ok(&c);
    let r = p.run();
    let fd = r.first_divergence.unwrap();
    assert_eq!(
        (fd.hop.as_str(), fd.code.as_str()),
        ("gateway-router", "PD-HTTP-001")
    );
    let errors: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    assert_eq!(errors.len(), 1);
    assert!(errors[0]
        .evidence
        .iter()
        .any(|e| e.symptom_step() == Some("host-gateway.http")));
}

fn dns_ev(answers: &[&str], rcode: &str) -> DnsEvidence {
    DnsEvidence {
        qname: "portainer-agent.internal.thinkheads.ai".into(),
        server: "127.0.0.13:53".into(),
        protocol: Some(DnsTransport::Udp),
        rcode: (!rcode.is_empty()).then(|| rcode.parse().unwrap()),
        answers: answers.iter().map(|a| a.parse().unwrap()).collect(),
        ..Default::default()
    }
}

/// The router's /etc/hosts pins portainer to the old address .101; DNS answers .153.
fn hosts_pinned_portainer() -> DnsEvidence {
    let mut d = dns_ev(&["127.0.0.153"], "NOERROR");
    d.hosts_entries.push(HostsEntry {
        file: "/etc/hosts".into(),
        line: 3,
        ip: "127.0.0.101".parse().unwrap(),
        names: vec!["portainer.internal.thinkheads.ai".into()],
    });
    d.effective = vec!["127.0.0.101".parse().unwrap()];
    d.effective_source = EffectiveSource::Hosts;
    d
}

#[test]
fn a_name_sent_to_the_gateway_is_one_dns_finding_seen_from_each_vantage() {
    let mut p = P::new();
    p.hop("host-dns", VantageRef::Host, "dnsmasq");
    p.hop("portainer-dns", VantageRef::Vm(1001), "dnsmasq");
    p.hop("portainer-agent", VantageRef::Vm(1001), "agent");
    let dns = |n: &str| ProbeSpec::Dns {
        name: n.into(),
        server: addr("127.0.0.13:53"),
        expect: vec!["127.0.0.102".parse().unwrap()],
        system: true,
    };
    let a = p.step("host-dns", Layer::Dns, dns("portainer-agent"), &[]);
    let b = p.step("portainer-dns", Layer::Dns, dns("portainer-agent"), &[]);
    let c = p.step("portainer-agent", Layer::Tcp, tcp(), &[]);
    p.obs.push(obs(
        &a,
        Outcome::Failed,
        Some("wrong-answer"),
        Evidence::Dns(dns_ev(&["127.0.0.153"], "NOERROR")),
    ));
    p.obs.push(obs(
        &b,
        Outcome::Failed,
        Some("wrong-answer"),
        Evidence::Dns(dns_ev(&["127.0.0.153"], "NOERROR")),
    ));
    p.ok(&c);
    let r = p.run();
    let fd = r.first_divergence.unwrap();
    assert_eq!(
        (fd.hop.as_str(), fd.code.as_str()),
        ("host-dns", "PD-DNS-002")
    );
    let codes: Vec<(&str, &str)> = r
        .findings
        .iter()
        .map(|f| (f.hop.as_str(), f.code.as_str()))
        .collect();
    // One nameserver giving one wrong answer is one defect, whatever the vantage.
    assert_eq!(codes, vec![("host-dns", "PD-DNS-002")]);
    assert!(r.findings[0]
        .evidence
        .iter()
        .any(|e| matches!(e, EvidenceItem::AlsoSeen { step, from, .. }
            if step == "portainer-dns.dns" && from == "vm:1001")));
    let hop = r.hops.iter().find(|h| h.id == "portainer-dns").unwrap();
    assert_eq!(hop.verdict, Verdict::Diverged);
}

#[test]
fn hosts_file_override_is_its_own_code_and_names_the_file_line() {
    let mut p = P::new();
    p.hop("router-dns", VantageRef::Lxc(102), "dnsmasq");
    let a = p.step(
        "router-dns",
        Layer::Dns,
        ProbeSpec::Dns {
            name: "portainer".into(),
            server: addr("127.0.0.13:53"),
            expect: vec![],
            system: true,
        },
        &[],
    );
    let d = hosts_pinned_portainer();
    p.obs.push(obs(
        &a,
        Outcome::Failed,
        Some("hosts-override"),
        Evidence::Dns(d),
    ));
    let r = p.run();
    let f = &r.findings[0];
    assert_eq!(f.code, "PD-DNS-003");
    assert!(
        f.evidence
            .iter()
            .any(|e| e.to_string() == "/etc/hosts:3: 127.0.0.101 portainer.internal.thinkheads.ai"),
        "{:?}",
        f.evidence
    );
    assert!(f.title.contains("lxc:102"));
}

#[test]
fn two_independent_breaks_are_both_findings_and_the_earlier_is_first() {
    let (mut p, ids) = deploy_path();
    let [a, b, c, d, e, f, g] = ids;
    p.obs
        .push(obs(&a, Outcome::Failed, Some("refused"), refused()));
    p.obs.push(Observation::blocked(&b, &a));
    p.ok(&c);
    p.ok(&d);
    p.ok(&e);
    p.obs.push(obs(
        &f,
        Outcome::Failed,
        Some("expired"),
        Evidence::Tls(TlsEvidence {
            verify_error: Some(VerifyError::Expired),
            ..Default::default()
        }),
    ));
    p.obs.push(Observation::blocked(&g, &f));
    let r = p.run();
    let fd = r.first_divergence.unwrap();
    assert_eq!(
        (fd.hop.as_str(), fd.code.as_str()),
        ("host-gateway-portainer", "PD-TCP-001")
    );
    let codes: Vec<&str> = r.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(codes, vec!["PD-TCP-001", "PD-TLS-001"]);
}

#[test]
fn tool_failures_are_cannot_judge_not_divergence() {
    let (mut p, ids) = deploy_path();
    for id in &ids[..6] {
        p.ok(id);
    }
    p.obs.push(Observation::tool_error(
        &ids[6],
        Phase::Transport,
        "pct exec 102: no such container",
    ));
    let r = p.run();
    assert_eq!(r.verdict, Overall::CannotJudge);
    assert_eq!(r.verdict.exit_code(), 3);
    assert!(r.first_divergence.is_none());
}

#[test]
fn a_certificate_near_expiry_is_a_warning_only() {
    let (mut p, ids) = deploy_path();
    for id in &ids {
        if id.ends_with(".tls") {
            let t = TlsEvidence {
                remaining_fraction: Some(0.1),
                remaining_secs: Some(8000),
                ..Default::default()
            };
            p.obs.push(obs(id, Outcome::Ok, None, Evidence::Tls(t)));
        } else {
            p.ok(id);
        }
    }
    let r = p.run();
    assert_eq!(r.verdict, Overall::Healthy);
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].code, "PD-TLS-007");
    assert_eq!(r.findings[0].severity, Severity::Warning);
}

#[test]
fn static_findings_are_shown_only_when_they_bear_on_the_plan() {
    let (mut p, ids) = deploy_path();
    for id in &ids {
        p.ok(id);
    }
    let run = Run {
        schema_version: 1,
        target: "qdrant".into(),
        started_at: String::new(),
        duration_ms: 0.0,
        observations: p.obs.clone(),
    };
    let near = Finding::new(Code::lookup("PD-FW-001").unwrap(), Severity::Warning, "x")
        .static_origin()
        .subject("lxc:102");
    let far = Finding::new(Code::lookup("PD-FW-001").unwrap(), Severity::Warning, "y")
        .static_origin()
        .subject("lxc:999");
    let r = diagnose(&p.plan, &run, &[near, far]);
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].title, "x");
    assert_eq!(r.verdict, Overall::Healthy);
}

/// A guest's steps that ran from this machine (no agent there, or `--vantage host`).
fn substituted(mut o: Observation, guest: &str) -> Observation {
    o.vantage = VantageNote {
        name: guest.into(),
        substituted: true,
        via: "local".into(),
    };
    o
}

#[test]
fn a_guest_step_that_ran_from_here_cannot_be_judged_ok() {
    let (mut p, ids) = deploy_path();
    // host-gateway-portainer runs from the host itself; the gateway (lxc:101) and router
    // (lxc:102) hops could not be entered and ran from here, all fine.
    for id in &ids[..2] {
        p.ok(id);
    }
    for (id, guest) in ids[2..]
        .iter()
        .zip(["lxc:101", "lxc:101", "lxc:102", "lxc:102", "lxc:102"])
    {
        p.obs.push(substituted(
            obs(id, Outcome::Ok, None, Evidence::None),
            guest,
        ));
    }
    let r = p.run();
    assert_eq!(r.verdict, Overall::CannotJudge);
    assert_eq!(r.verdict.exit_code(), 3);
    assert!(r.first_divergence.is_none());
    for s in &r.steps {
        let want = if s.from == "host" {
            Verdict::Ok
        } else {
            Verdict::CannotJudge
        };
        assert_eq!(s.verdict, want, "{}", s.id);
    }
    let s = r.steps.iter().find(|s| s.id == ids[4]).unwrap();
    assert_eq!(s.code.as_deref(), Some("PD-RUN-003"));
    assert!(s.actual.contains("instead of lxc:102"), "{}", s.actual);
    assert!(s
        .actual
        .ends_with("--push --agent-path PATH or --via KIND=TEMPLATE runs it there"));
    // One warning per guest that could not be entered, with the way to make it judgeable.
    assert_eq!(r.findings.len(), 2, "{:#?}", r.findings);
    assert!(r.findings.iter().all(|f| f.code == "PD-RUN-003"
        && f.severity == Severity::Warning
        && f.hint.contains("--push")
        && f.hint.contains("--via")));
    let hop = r.hops.iter().find(|h| h.id == "router-portainer").unwrap();
    assert_eq!(hop.verdict, Verdict::CannotJudge);
}

#[test]
fn a_divergence_elsewhere_still_wins_over_what_could_not_be_judged() {
    let (mut p, ids) = deploy_path();
    p.obs
        .push(obs(&ids[0], Outcome::Failed, Some("refused"), refused()));
    p.obs.push(Observation::blocked(&ids[1], &ids[0]));
    for id in &ids[2..] {
        p.obs.push(substituted(
            obs(id, Outcome::Ok, None, Evidence::None),
            "lxc:102",
        ));
    }
    let r = p.run();
    assert_eq!(r.verdict, Overall::Diverged);
    assert_eq!(r.first_divergence.unwrap().code, "PD-TCP-001");
}

#[test]
fn a_failure_seen_from_here_for_a_guest_is_still_a_failure() {
    let (mut p, ids) = deploy_path();
    for id in &ids[..4] {
        p.ok(id);
    }
    p.obs.push(substituted(
        obs(&ids[4], Outcome::Failed, Some("refused"), refused()),
        "lxc:102",
    ));
    p.obs.push(Observation::blocked(&ids[5], &ids[4]));
    p.obs.push(Observation::blocked(&ids[6], &ids[5]));
    let r = p.run();
    assert_eq!(r.verdict, Overall::Diverged);
    let s = r.steps.iter().find(|s| s.id == ids[4]).unwrap();
    assert_eq!(s.verdict, Verdict::Unreachable);
    assert!(s.evidence.iter().any(
        |e| matches!(e, EvidenceItem::Substituted { from, .. } if *from == VantageRef::Lxc(102))
    ));
}

/// A qdrant-like trace: the target's request host → gateway → router → qdrant, the router's
/// own DNS answers, and the CA; `ca_first` puts the CA hop before the request in chain order.
fn two_paths(ca_first: bool) -> (P, Vec<String>) {
    let mut p = P::new();
    let mut hops = vec![
        ("router-dns", VantageRef::Lxc(102), "dnsmasq", ""),
        ("host-gateway", VantageRef::Host, "nginx", "target"),
        ("gateway-router", VantageRef::Lxc(101), "traefik", "target"),
        ("router-qdrant", VantageRef::Lxc(102), "qdrant", "target"),
    ];
    let ca = ("host-ca", VantageRef::Host, "step-ca", "ca");
    if ca_first {
        hops.insert(0, ca);
    } else {
        hops.push(ca);
    }
    for (id, from, to, path) in &hops {
        p.hop(id, *from, to);
        p.plan.hops.last_mut().unwrap().path = path.to_string();
    }
    let dns = |n: &str| ProbeSpec::Dns {
        name: format!("{n}.internal.thinkheads.ai"),
        server: addr("127.0.0.13:53"),
        expect: vec![],
        system: true,
    };
    let url = |u: &str| ProbeSpec::Http {
        url: u.into(),
        connect: addr("127.0.0.1:1"),
        trust: None,
        identity: None,
        expect_status: vec![200],
        expect_body: None,
    };
    let mut ids = Vec::new();
    for (id, ..) in &hops {
        match *id {
            "router-dns" => {
                for n in ["qdrant", "portainer"] {
                    let sid = format!("router-dns.dns.{n}");
                    p.step("router-dns", Layer::Dns, dns(n), &[]);
                    p.plan.steps.last_mut().unwrap().id = sid.clone();
                    ids.push(sid);
                }
            }
            "host-gateway" => {
                ids.push(p.step(id, Layer::Tcp, tcp(), &[]));
                ids.push(p.step(
                    id,
                    Layer::Http,
                    url("https://qdrant.internal.thinkheads.ai/healthz"),
                    &["gateway-router", "router-qdrant"],
                ));
            }
            "gateway-router" => {
                ids.push(p.step(
                    id,
                    Layer::Http,
                    url("http://qdrant.internal.thinkheads.ai/healthz"),
                    &["router-qdrant"],
                ));
            }
            "router-qdrant" => {
                ids.push(p.step(id, Layer::Tcp, tcp(), &[]));
                ids.push(p.step(id, Layer::Http, url("http://127.0.0.102:6333/healthz"), &[]));
            }
            _ => {
                ids.push(p.step(id, Layer::Tcp, tcp(), &[]));
            }
        }
    }
    (p, ids)
}

/// Record `fault` observations for the listed steps and ok for every other.
fn observe_all(p: &mut P, ids: &[String], faults: Vec<Observation>) {
    for id in ids {
        match faults.iter().find(|o| &o.step == id) {
            Some(o) => p.obs.push(o.clone()),
            None => p.ok(id),
        }
    }
}

fn qdrant_refused() -> Vec<Observation> {
    vec![
        obs(
            "host-gateway.http",
            Outcome::Failed,
            Some("status-mismatch"),
            http_ev(502, "Bad Gateway", Some("backend-refused")),
        ),
        obs(
            "gateway-router.http",
            Outcome::Failed,
            Some("status-mismatch"),
            http_ev(502, "Bad Gateway", Some("backend-refused")),
        ),
        obs(
            "router-qdrant.tcp",
            Outcome::Failed,
            Some("refused"),
            refused(),
        ),
        Observation::blocked("router-qdrant.http", "router-qdrant.tcp"),
    ]
}

fn qdrant_and_ca_refused() -> Vec<Observation> {
    let mut faults = qdrant_refused();
    faults.push(obs(
        "host-ca.tcp",
        Outcome::Failed,
        Some("refused"),
        refused(),
    ));
    faults
}

fn headline(r: &Report) -> (String, String) {
    let fd = r.first_divergence.as_ref().expect("a first divergence");
    (fd.hop.clone(), fd.code.to_string())
}

fn live_codes(r: &Report) -> Vec<(String, String)> {
    r.findings
        .iter()
        .filter(|f| f.origin == Origin::Live)
        .map(|f| (f.hop.clone(), f.code.to_string()))
        .collect()
}

#[test]
fn the_headline_is_what_breaks_the_target_not_the_first_hop_in_chain_order() {
    // qdrant refuses (on the target's path, late in the chain) and the router's hosts file pins
    // portainer (another name, early in the chain): the refused qdrant is the headline.
    let (mut p, ids) = two_paths(false);
    let mut d = hosts_pinned_portainer();
    d.qname = "portainer.internal.thinkheads.ai".into();
    let mut faults = qdrant_refused();
    faults.push(obs(
        "router-dns.dns.portainer",
        Outcome::Failed,
        Some("hosts-override"),
        Evidence::Dns(d),
    ));
    observe_all(&mut p, &ids, faults);
    let r = p.run();
    assert_eq!(r.verdict, Overall::Diverged);
    assert_eq!(
        headline(&r),
        ("router-qdrant".to_string(), "PD-TCP-001".to_string())
    );
    assert_eq!(
        live_codes(&r),
        vec![
            ("router-qdrant".to_string(), "PD-TCP-001".to_string()),
            ("router-dns".to_string(), "PD-DNS-003".to_string()),
        ]
    );
    let path = |id: &str| r.steps.iter().find(|s| s.id == id).unwrap().path.clone();
    // The router resolves neither name for the target's request (it reaches qdrant by IP).
    assert_eq!(path("router-dns.dns.portainer"), "");
    assert_eq!(path("router-qdrant.tcp"), "target");
}

#[test]
fn an_off_path_fault_alone_is_still_the_headline_and_diverged() {
    let (mut p, ids) = two_paths(true);
    observe_all(
        &mut p,
        &ids,
        vec![obs(
            "host-ca.tcp",
            Outcome::Failed,
            Some("refused"),
            refused(),
        )],
    );
    let r = p.run();
    assert_eq!(r.verdict, Overall::Diverged);
    assert_eq!(
        headline(&r),
        ("host-ca".to_string(), "PD-TCP-001".to_string())
    );
}

#[test]
fn the_target_path_wins_in_both_chain_orders() {
    for ca_first in [true, false] {
        let (mut p, ids) = two_paths(ca_first);
        let faults = qdrant_and_ca_refused();
        observe_all(&mut p, &ids, faults);
        let r = p.run();
        assert_eq!(r.verdict, Overall::Diverged, "ca_first {ca_first}");
        assert_eq!(
            live_codes(&r),
            vec![
                ("router-qdrant".to_string(), "PD-TCP-001".to_string()),
                ("host-ca".to_string(), "PD-TCP-001".to_string()),
            ],
            "ca_first {ca_first}"
        );
    }
}

#[test]
fn without_path_marks_the_chain_order_decides() {
    let (mut p, ids) = two_paths(true);
    for h in &mut p.plan.hops {
        h.path.clear();
    }
    let faults = qdrant_and_ca_refused();
    observe_all(&mut p, &ids, faults);
    let r = p.run();
    assert_eq!(
        headline(&r),
        ("host-ca".to_string(), "PD-TCP-001".to_string())
    );
}

fn step_actual<'a>(r: &'a Report, id: &str) -> &'a str {
    &r.steps.iter().find(|s| s.id == id).unwrap().actual
}

#[test]
fn a_502_names_the_backend_failure_only_as_observed_behind_the_proxy() {
    // The hop behind was probed and refused: the 502 says so, and where it was seen.
    let (mut p, ids) = two_paths(false);
    observe_all(&mut p, &ids, qdrant_refused());
    let r = p.run();
    for id in ["host-gateway.http", "gateway-router.http"] {
        assert!(
            step_actual(&r, id)
                .contains("backend failure: connection refused, seen at router-qdrant.tcp"),
            "{id}: {}",
            step_actual(&r, id)
        );
    }
    // The same 502 with the hop behind it unprobed (the tool could not run there): only
    // "backend failure", whatever the proxy's page or the probe's guess said.
    let (mut p, ids) = two_paths(false);
    let mut faults = qdrant_refused();
    faults.retain(|o| !o.step.starts_with("router-qdrant"));
    faults.push(Observation::tool_error(
        "router-qdrant.tcp",
        Phase::Transport,
        "pct exec 102: no such container",
    ));
    faults.push(Observation::blocked(
        "router-qdrant.http",
        "router-qdrant.tcp",
    ));
    observe_all(&mut p, &ids, faults);
    let r = p.run();
    let a = step_actual(&r, "host-gateway.http");
    assert!(a.ends_with("(status 502: backend failure)"), "{a}");
    assert!(!a.contains("refused"), "{a}");
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "PD-HTTP-005")
        .expect("the proxy's answer is the finding");
    assert!(!f.actual.contains("refused"), "{}", f.actual);
    assert!(f
        .evidence
        .iter()
        .any(|e| e.to_string().ends_with("meaning backend failure")));
}

#[test]
fn a_proxy_error_behind_which_tls_failed_says_tls() {
    let (p, _) = backend_tls_path();
    let r = p.run();
    let a = step_actual(&r, "host-gateway-portainer.http");
    assert!(
        a.contains("backend failure: TLS verification failed, seen at router-portainer.tls"),
        "{a}"
    );
}

fn run_with_static(p: &P, statics: &[Finding]) -> Report {
    let run = Run {
        schema_version: 1,
        target: "qdrant".into(),
        started_at: String::new(),
        duration_ms: 1.0,
        observations: p.obs.clone(),
    };
    diagnose(&p.plan, &run, statics)
}

/// Static findings as lint writes them: a documented hop from the router dropped (TCP, keyed on
/// the source), the same for a guest this trace never runs from, a duplicate rule (about the
/// config itself: no probe sees it), a route that should send qdrant nowhere (HTTP, by name), and
/// a DNS record defect for qdrant.
fn statics() -> Vec<Finding> {
    let f = |code: &str, layer: Layer, subjects: &[&str]| {
        let mut f =
            Finding::new(Code::lookup(code).unwrap(), Severity::Error, code).static_origin();
        f.layer = Some(layer);
        f.subjects = subjects.iter().map(|s| s.to_string()).collect();
        f
    };
    vec![
        f(
            "PD-FW-001",
            Layer::Tcp,
            &["lxc:102", "127.0.0.1", "127.0.0.1:1"],
        ),
        f("PD-FW-003", Layer::Tcp, &["lxc:900", "127.0.0.1:1"]),
        f("PD-FW-007", Layer::Tcp, &["lxc:102", "127.0.0.1:1"]),
        f(
            "PD-ROUTE-004",
            Layer::Http,
            &["qdrant.internal.thinkheads.ai", "127.0.0.1", "lxc:102"],
        ),
        f(
            "PD-DNSCFG-004",
            Layer::Dns,
            &["qdrant.internal.thinkheads.ai", "127.0.0.153"],
        ),
    ]
}

fn reconciled(r: &Report) -> Vec<(String, &'static str)> {
    r.findings
        .iter()
        .filter(|f| f.origin == Origin::Static)
        .map(|f| {
            let st = f
                .reconciliation
                .as_ref()
                .expect("static findings are reconciled");
            (f.code.to_string(), st.status.as_str())
        })
        .collect()
}

#[test]
fn static_findings_are_confirmed_refuted_or_not_observable_by_the_same_run() {
    // Healthy: the router reaches the address (refutes the firewall finding keyed on it), the
    // client's request for qdrant works (refutes the route finding); nothing ran from lxc:900;
    // a DNS answer that matches the records says nothing about the records.
    let (mut p, ids) = two_paths(false);
    observe_all(&mut p, &ids, vec![]);
    let r = run_with_static(&p, &statics());
    assert_eq!(r.verdict, Overall::Healthy);
    assert_eq!(
        reconciled(&r),
        vec![
            ("PD-FW-001".to_string(), "refuted"),
            ("PD-FW-003".to_string(), "not-observable"),
            ("PD-FW-007".to_string(), "not-observable"),
            ("PD-ROUTE-004".to_string(), "refuted"),
            ("PD-DNSCFG-004".to_string(), "not-observable"),
        ]
    );
    let fw = r.findings.iter().find(|f| f.code == "PD-FW-001").unwrap();
    let ev = &fw.reconciliation.as_ref().unwrap().evidence;
    assert!(
        ev.iter()
            .any(|e| matches!(e, EvidenceItem::StepWorked { step, from, .. }
                if step == "router-qdrant.tcp" && from == "lxc:102")),
        "{ev:?}"
    );
    assert!(
        !ev.iter().any(|e| e.step() == Some("host-gateway.tcp")),
        "the host's connection says nothing about the router's firewall: {ev:?}"
    );

    // qdrant refuses the router: the firewall finding on that path is confirmed by the
    // failure; the route finding is not observable (the gateway's 502s are symptoms of the
    // refusal, not evidence about the route).
    let (mut p, ids) = two_paths(false);
    observe_all(&mut p, &ids, qdrant_refused());
    let r = run_with_static(&p, &statics());
    assert_eq!(
        reconciled(&r),
        vec![
            ("PD-FW-001".to_string(), "confirmed"),
            ("PD-FW-003".to_string(), "not-observable"),
            ("PD-FW-007".to_string(), "not-observable"),
            ("PD-ROUTE-004".to_string(), "not-observable"),
            ("PD-DNSCFG-004".to_string(), "not-observable"),
        ]
    );
}

#[test]
fn a_healthy_table_never_calls_refuted_static_findings_errors() {
    let (mut p, ids) = two_paths(false);
    observe_all(&mut p, &ids, vec![]);
    let r = run_with_static(&p, &statics());
    let mut out = Vec::new();
    crate::report::render(
        &r,
        crate::report::Format::Table,
        crate::report::Style::default(),
        &mut out,
    )
    .unwrap();
    let table = String::from_utf8(out).unwrap();
    let section = &table[table.find("Static findings").expect("a static section")..];
    assert!(
        section.starts_with(
            "Static findings on these hops, from the config files alone (5 static findings: 2 refuted by this run, 3 not observable;"
        ),
        "{section}"
    );
    for line in section.lines().filter(|l| l.contains("refuted by ")) {
        assert!(!line.contains("error"), "{line}");
    }
    assert!(
        section.contains("PD-FW-001      static, refuted by router-qdrant.tcp"),
        "{section}"
    );
    assert!(
        section.contains("PD-FW-003      static error, not observable"),
        "{section}"
    );
}

/// The intended nameserver answers the right address; the vantage's resolver does not reach
/// it (no answer: PD-DNS-006) or is another server (PD-DNS-007): a divergence at the vantage
/// either way, never healthy.
#[test]
fn the_vantages_own_resolver_has_its_own_codes() {
    for (reason, code) in [
        ("resolver-no-answer", "PD-DNS-006"),
        ("resolver-differs", "PD-DNS-007"),
    ] {
        let mut p = P::new();
        p.hop("router-dns", VantageRef::Lxc(102), "dnsmasq");
        let a = p.step(
            "router-dns",
            Layer::Dns,
            ProbeSpec::Dns {
                name: "qdrant".into(),
                server: addr("127.0.0.13:53"),
                expect: vec!["127.0.0.153".parse().unwrap()],
                system: true,
            },
            &[],
        );
        let d = dns_ev(&["127.0.0.153"], "NOERROR");
        p.obs
            .push(obs(&a, Outcome::Failed, Some(reason), Evidence::Dns(d)));
        let r = p.run();
        let codes: Vec<_> = r.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, vec![code], "{reason}");
        let hop = r.hops.iter().find(|h| h.id == "router-dns").unwrap();
        assert_eq!(hop.verdict, Verdict::Diverged, "{reason}");
    }
}
