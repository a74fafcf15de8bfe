//! Diagnosis rules on synthetic plans and observations (no network).

use super::*;
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
        reason: reason.map(str::to_string),
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
        proxy_meaning: meaning.map(str::to_string),
        tls: None,
    })
}

pub(crate) fn refused() -> Evidence {
    Evidence::Tcp(TcpEvidence {
        addr: "x".into(),
        state: "refused".into(),
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
        http_ev(502, "Bad Gateway", Some("bad-gateway")),
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
        verify_error: Some("self-signed".into()),
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
    let symptoms: Vec<&String> = errors[0]
        .evidence
        .iter()
        .filter(|e| e.starts_with("symptom"))
        .collect();
    assert_eq!(symptoms.len(), 2, "{:#?}", errors[0].evidence);
    assert!(symptoms.iter().any(|s| s.contains(&b)));
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
            state: "filtered".into(),
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
        .any(|e| e.contains("symptom at host-gateway.http")));
}

fn dns_ev(answers: &[&str], rcode: &str) -> DnsEvidence {
    DnsEvidence {
        qname: "portainer-agent.internal.thinkheads.ai".into(),
        server: "127.0.0.13:53".into(),
        protocol: "udp".into(),
        rcode: rcode.into(),
        answers: answers.iter().map(|a| a.parse().unwrap()).collect(),
        ..Default::default()
    }
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
        .any(|e| e.starts_with("also portainer-dns.dns (from vm:1001)")));
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
    let mut d = dns_ev(&["127.0.0.153"], "NOERROR");
    d.hosts_entries.push(HostsEntry {
        file: "/etc/hosts".into(),
        line: 3,
        ip: "127.0.0.101".parse().unwrap(),
        names: vec!["portainer.internal.thinkheads.ai".into()],
    });
    d.effective = vec!["127.0.0.101".parse().unwrap()];
    d.effective_source = "hosts".into();
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
            .any(|e| e == "/etc/hosts:3: 127.0.0.101 portainer.internal.thinkheads.ai"),
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
            verify_error: Some("expired".into()),
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
        "transport",
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
    let near = Finding::new("PD-FW-001", Severity::Warning, "x")
        .static_origin()
        .subject("lxc:102");
    let far = Finding::new("PD-FW-001", Severity::Warning, "y")
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
    assert!(s
        .evidence
        .iter()
        .any(|e| e.contains("ran from this machine instead of lxc:102")));
}
