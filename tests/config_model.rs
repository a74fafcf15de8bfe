//! Config reading and the intended-state model: generator goldens, the invalid-config corpus,
//! secrets never printed, and the historical config shapes.

use assert_cmd::Command;
use phoenix_doctor::config::{self, Direction, IpSpec};
use phoenix_doctor::error::{Error, Kind};
use phoenix_doctor::model::{self, render, DnsRule, FwScope, Intended, RuleOrigin};
use phoenix_doctor::plan::{self, ProbeSpec, VantageRef};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn reference() -> Intended {
    model::load(&fixtures().join("configs/reference/etc"), None).expect("reference config loads")
}

fn golden(name: &str) -> String {
    std::fs::read_to_string(fixtures().join("golden").join(name)).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

// ---------------------------------------------------------------- goldens

#[test]
fn dnsmasq_records_equal_the_generator_output() {
    assert_eq!(
        render::dnsmasq(&reference()),
        golden("00-phoenix-internal.conf")
    );
}

#[test]
fn traefik_dynamic_config_equals_the_generator_output() {
    assert_eq!(
        render::traefik_dynamic(&reference()),
        golden("dynamic_conf.yml")
    );
}

#[test]
fn firewall_files_equal_the_generator_output() {
    let m = reference();
    for f in ["cluster", "1001", "1002"] {
        assert_eq!(
            render::firewall(&m, Some(f)).unwrap(),
            golden(&format!("{f}.fw")),
            "{f}.fw"
        );
    }
    let all = render::firewall(&m, None).unwrap();
    let expected = format!(
        "# ==> cluster.fw <==\n{}\n# ==> 1001.fw <==\n{}\n# ==> 1002.fw <==\n{}",
        golden("cluster.fw"),
        golden("1001.fw"),
        golden("1002.fw")
    );
    assert_eq!(all, expected);
    let e = render::firewall(&m, Some("4242")).unwrap_err();
    assert!(
        matches!(&e, Error::Input(msg) if msg.contains("known files are cluster, 1001, 1002")),
        "{e}"
    );
}

#[test]
fn show_command_prints_the_golden_files() {
    let dir = fixtures().join("configs/reference/etc");
    let out = Command::cargo_bin("phoenix-doctor")
        .unwrap()
        .args(["show", "dns", "--config-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        golden("00-phoenix-internal.conf")
    );
    let out = Command::cargo_bin("phoenix-doctor")
        .unwrap()
        .args(["show", "firewall", "--file", "1002"])
        .env("PHOENIX_DOCTOR_CONFIG_DIR", &dir)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), golden("1002.fw"));
    let m = reference();
    assert_eq!(render::traefik_dynamic(&m), golden("dynamic_conf.yml"));
}

// ---------------------------------------------------------------- model facts

#[test]
fn dns_records_keep_the_rule_that_won_and_what_they_shadowed() {
    let m = reference();
    let portainer = m.dns.record("portainer.internal.thinkheads.ai").unwrap();
    assert_eq!(portainer.rule, DnsRule::StackLabel);
    assert_eq!(portainer.ip, Some(ip("10.0.0.153")));
    // the VM name rule (5) would have given the VM's own IP; it lost
    assert!(portainer
        .shadowed
        .iter()
        .any(|s| s.rule == DnsRule::VmName && s.ip_text == "10.0.0.111"));
    assert_eq!(
        portainer.provenance[0].file,
        "stacks/portainer_service/phoenix.json"
    );
    assert_eq!(portainer.provenance[0].line, Some(11));
    let agent = m
        .dns
        .record("portainer-agent.internal.thinkheads.ai")
        .unwrap();
    assert_eq!(
        (agent.rule, agent.ip),
        (DnsRule::VmTraefikService, Some(ip("10.0.0.102")))
    );
    let ca = m.dns.record("ca.internal.thinkheads.ai").unwrap();
    assert_eq!(ca.rule, DnsRule::LxcTraefikService);
    assert_eq!(
        ca.guest_ip, None,
        "LXC 103 really is 10.0.0.10 in the reference"
    );
    assert_eq!(m.dns.records.len(), 22);
    // address=/d/ip also answers subdomains
    assert_eq!(
        m.dns
            .answer("x.qdrant.internal.thinkheads.ai")
            .unwrap()
            .hostname,
        "qdrant.internal.thinkheads.ai"
    );
    assert_eq!(m.dns.server.value.to_string(), "10.0.0.13:53");
}

#[test]
fn routes_use_guest_type_for_the_scheme() {
    let m = reference();
    let names: Vec<&str> = m.routes.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "portainer",
            "portainer-agent",
            "granite-embedding",
            "granite-3b",
            "nginx",
            "ollama",
            "llamacpp",
            "ca",
            "traefik-dashboard"
        ]
    );
    let ca = m.routes.by_name("ca").unwrap();
    assert_eq!(
        (ca.scheme.as_str(), ca.url.as_str()),
        ("http", "http://10.0.0.10:9000")
    );
    assert_eq!(ca.guest, Some(VantageRef::Lxc(103)));
    let p = m
        .routes
        .by_host("portainer.internal.thinkheads.ai")
        .unwrap();
    assert_eq!(p.servers_transport.as_deref(), Some("internal-ca@file"));
    assert_eq!(p.backend.unwrap().to_string(), "10.0.0.111:9443");
}

#[test]
fn firewall_has_proxmox_semantics() {
    let m = reference();
    let cluster = m.firewall.cluster.as_ref().unwrap();
    assert!(cluster.enforced);
    assert_eq!(cluster.rules.len(), 44);
    assert_eq!(cluster.rules[0].origin, RuleOrigin::Global);
    let vm1002 = m.firewall.for_vantage(VantageRef::Vm(1002)).unwrap();
    assert!(vm1002.enforced);
    assert!(!vm1002.options.policies_written);
    assert_eq!(
        vm1002.options.policy_in.value.verdict(),
        Some(phoenix_doctor::model::Verdict::Drop)
    );
    // stack rules follow the VM's own rules
    assert!(
        matches!(&vm1002.rules[6].origin, RuleOrigin::Stack { name, vm: 1002 } if name == "qdrant_service")
    );
    // Traefik → agent: allowed by rule 3; a random source: dropped by policy
    let d = vm1002.decide(
        Direction::In,
        ip("10.0.0.12"),
        Some(ip("10.0.0.102")),
        phoenix_doctor::observe::Proto::Tcp,
        9001,
    );
    assert!(d.accepted && d.rule == Some(3));
    let d = vm1002.decide(
        Direction::In,
        ip("10.0.0.50"),
        Some(ip("10.0.0.102")),
        phoenix_doctor::observe::Proto::Tcp,
        9001,
    );
    assert!(!d.accepted && d.rule.is_none());
    // LXC rule sets are recorded but not enforced
    let lxc103 = m.firewall.for_vantage(VantageRef::Lxc(103)).unwrap();
    assert_eq!(lxc103.scope, FwScope::Lxc(103));
    assert!(!lxc103.enforced);
    assert!(lxc103.enforced_why.contains("enable"));
    assert!(
        lxc103
            .decide(
                Direction::In,
                ip("10.0.0.13"),
                None,
                phoenix_doctor::observe::Proto::Tcp,
                9000
            )
            .accepted
    );
    // 80,443 port lists
    let r = m.firewall.for_vantage(VantageRef::Lxc(101)).unwrap();
    assert!(r.rules[4].dport.as_ref().unwrap().contains(443));
}

#[test]
fn components_certs_and_stacks_are_derived() {
    let m = reference();
    let gw = m.gateway.as_ref().unwrap();
    assert_eq!(
        (gw.lxc, gw.ip.value, gw.listen.value),
        (101, ip("10.0.0.153"), 443)
    );
    assert_eq!(gw.proxy_pass, "http://10.0.0.12:80");
    assert_eq!(gw.proxy_pass_platform, "http://10.0.0.12:80");
    assert_eq!(
        gw.server_names,
        [
            "nginx.internal.thinkheads.ai",
            "portainer.internal.thinkheads.ai"
        ]
    );
    let cert = &m.certs[gw.cert.unwrap()];
    assert_eq!(
        cert.effective_sans,
        [
            "nginx.internal.thinkheads.ai",
            "portainer.internal.thinkheads.ai"
        ]
    );
    let pcert = m
        .certs
        .iter()
        .find(|c| c.common_name.value.starts_with("portainer"))
        .unwrap();
    assert!(!pcert.sans_declared);
    assert_eq!(pcert.guest, Some(VantageRef::Vm(1001)));
    assert_eq!(cert.guest, Some(VantageRef::Lxc(101)));
    assert_eq!(pcert.effective_sans, ["portainer.internal.thinkheads.ai"]);
    let r = m.router.as_ref().unwrap();
    assert_eq!((r.lxc, r.port.value), (102, 80));
    assert_eq!(r.port.prov.file, "etc/traefik/traefik.yml.template");
    assert!(r.cert_resolvers.is_empty());
    assert_eq!(r.static_routers, ["dashboard"]);
    let web = m
        .traefik_static
        .as_ref()
        .unwrap()
        .entrypoint("web")
        .unwrap();
    assert_eq!(web.address.prov.line, Some(23));
    let ca = m.ca.as_ref().unwrap();
    assert_eq!(
        (ca.lxc, ca.port.value, ca.dns_name.value.as_str()),
        (103, 9000, "ca.internal.thinkheads.ai")
    );
    assert_eq!(m.portainer.as_ref().unwrap().vm, 1001);
    assert_eq!(m.agents[0].vm, 1002);
    let q = m.stack("qdrant_service").unwrap();
    assert_eq!(q.hosts(), ["qdrant.internal.thinkheads.ai"]);
    let svc = &q.services[0];
    assert_eq!(svc.lb_port.as_ref().unwrap().value, 6333);
    assert_eq!(svc.routers[0].entrypoints[0].value, "websecure");
    assert_eq!(
        svc.routers[0].certresolver.as_ref().unwrap().value,
        "internal-resolver"
    );
    assert_eq!(q.deployments[0].vm, 1002);
    let app = m.stack("thinkheads_ai_app").unwrap();
    assert!(app.hosts().is_empty() && app.firewall_rules.len() == 1);
    // nameservers: own, or inherited through the clone chain (801 → 911 → 901 → 900: 8.8.8.8)
    assert_eq!(m.lxc(102).unwrap().nameservers[0].value, ip("10.0.0.13"));
    let n801 = m.lxc(801).unwrap();
    assert_eq!(n801.nameservers[0].value, ip("8.8.8.8"));
    assert!(
        n801.nameservers_from.contains("lxc:900"),
        "{}",
        n801.nameservers_from
    );
    assert_eq!(m.host.nameservers[0].value, ip("10.0.0.13"));
    assert!(m.vm(9000).unwrap().dhcp);
    assert!(m.subnets.iter().any(|n| n.to_string() == "10.0.0.0/24"));
}

#[test]
fn every_value_carries_file_pointer_and_line() {
    let m = reference();
    let p = &m.lxc(102).unwrap().ip.as_ref().unwrap().prov;
    assert_eq!(p.file, "etc/phoenix_lxc_configs.json");
    assert_eq!(p.pointer, "/lxc_configs/102/network_config/ip");
    let text =
        std::fs::read_to_string(fixtures().join("configs/reference/etc/phoenix_lxc_configs.json"))
            .unwrap();
    let line = text.lines().nth(p.line.unwrap() as usize - 1).unwrap();
    assert!(line.contains("\"ip\": \"10.0.0.12/24\""), "{line}");
    let host = &m.host.ip.as_ref().unwrap().prov;
    let text = std::fs::read_to_string(
        fixtures().join("configs/reference/etc/phoenix_hypervisor_config.json"),
    )
    .unwrap();
    assert!(text
        .lines()
        .nth(host.line.unwrap() as usize - 1)
        .unwrap()
        .contains("10.0.0.13/24"));
}

// ---------------------------------------------------------------- invalid corpus

#[test]
fn invalid_configs_give_one_clear_message_each() {
    let root = fixtures().join("configs/invalid");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "corpus has {} cases", cases.len());
    for case in cases {
        let etc = case.join("etc");
        let expected = std::fs::read_to_string(case.join("expected.txt"))
            .unwrap()
            .trim_end()
            .replace("{config_dir}", &etc.display().to_string());
        let got = match model::load(&etc, None) {
            Ok(_) => panic!("{}: loaded without error", case.display()),
            Err(e) if e.kind() == Kind::Input => e.to_string(),
            Err(e) => panic!("{}: not an input error: {e}", case.display()),
        };
        assert_eq!(got, expected, "case {}", case.display());
        assert!(
            !got.contains("CANARY"),
            "{}: leaked a secret: {got}",
            case.display()
        );
    }
}

#[test]
fn bad_config_exits_2_with_the_message_on_stderr() {
    let etc = fixtures().join("configs/invalid/bad-firewall-port/etc");
    let out = Command::cargo_bin("phoenix-doctor")
        .unwrap()
        .args(["plan", "qdrant", "--config-dir"])
        .arg(&etc)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("etc/phoenix_vm_configs.json:58: /vms/1/firewall/rules/0/port"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let out = Command::cargo_bin("phoenix-doctor")
        .unwrap()
        .args(["show", "dns", "--config-dir", "/nonexistent/phoenix/etc"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("/nonexistent/phoenix/etc does not exist"));
}

// ---------------------------------------------------------------- secrets

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

#[test]
fn secrets_never_appear_in_any_output() {
    const CANARY: &str = "CANARY-9d41e7";
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("configs/reference"), tmp.path());
    let hyp = tmp.path().join("etc/phoenix_hypervisor_config.json");
    let text = std::fs::read_to_string(&hyp).unwrap();
    assert!(text.contains("\"admin_password\": \"NewKick@$$2025\""));
    let text = text
        .replace("\"admin_password\": \"NewKick@$$2025\"", &format!("\"admin_password\": \"{CANARY}-pw\""))
        .replace("\"password_hash\": \"NOT_SET\"", &format!("\"password_hash\": \"{CANARY}-hash\", \"api_token\": \"{CANARY}-token\", \"client_secret\": \"{CANARY}-secret\", \"private_key\": \"{CANARY}-key\""));
    std::fs::write(&hyp, &text).unwrap();
    let etc = tmp.path().join("etc");

    let raw = config::load(&etc, None).unwrap();
    let m = Intended::from_raw(&raw).unwrap();
    let defs = plan::load_defs(None).unwrap();
    let mut outputs = vec![
        format!("{raw:?}"),
        serde_json::to_string(&raw).unwrap(),
        format!("{m:?}"),
        serde_json::to_string(&m).unwrap(),
        render::dnsmasq(&m),
        render::traefik_dynamic(&m),
        render::firewall(&m, None).unwrap(),
    ];
    for t in plan::targets(&m, &defs) {
        let p = plan::build(&m, &defs, &t).unwrap();
        outputs.push(plan::render::table(&p, 100));
        outputs.push(plan::render::json(&p));
    }
    for args in [
        &["show", "dns"][..],
        &["show", "routes"],
        &["show", "firewall"],
        &["plan", "qdrant"],
        &["plan", "portainer", "--format", "json"],
    ] {
        let out = Command::cargo_bin("phoenix-doctor")
            .unwrap()
            .args(args)
            .arg("--config-dir")
            .arg(&etc)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
        outputs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    for o in &outputs {
        assert!(
            !o.contains(CANARY),
            "a secret leaked: …{}…",
            &o[o.find(CANARY).unwrap().saturating_sub(60)..][..80]
        );
    }

    // A syntax error right after the secret, and a secret typed where a number belongs.
    std::fs::write(
        &hyp,
        text.replace(&format!("\"{CANARY}-pw\","), &format!("\"{CANARY}-pw\" x")),
    )
    .unwrap();
    let e = config::load(&etc, None).unwrap_err().to_string();
    assert!(e.contains("malformed JSON") && !e.contains(CANARY), "{e}");
    std::fs::write(
        &hyp,
        text.replace(
            "\"portainer_server_port\": 9443",
            &format!("\"portainer_server_port\": {{\"token\": \"{CANARY}\"}}"),
        ),
    )
    .unwrap();
    let e = config::load(&etc, None).unwrap_err().to_string();
    assert!(
        e.contains("/network/portainer_server_port") && !e.contains(CANARY),
        "{e}"
    );
    std::fs::write(
        &hyp,
        text.replace(
            "\"domain_name\": \"internal.thinkheads.ai\"",
            &format!("\"domain_name\": [\"{CANARY}\"]"),
        ),
    )
    .unwrap();
    let e = config::load(&etc, None).unwrap_err().to_string();
    assert!(!e.contains(CANARY), "{e}");
}

// ---------------------------------------------------------------- historical shapes

fn variant(name: &str) -> Intended {
    model::load(
        &fixtures().join("configs/variants").join(name).join("etc"),
        None,
    )
    .unwrap_or_else(|e| panic!("variant {name}: {e}"))
}

#[test]
fn variant_history_objects_parse() {
    let d = fixtures().join("configs/variants/history-2025-objects/etc");
    let raw = config::load(&d, None).unwrap();
    // string-typed dns_nameservers, bare IP without CIDR, number port, stacks as objects
    assert_eq!(raw.hypervisor.dns_nameservers[0].value, "8.8.8.8");
    let l102 = raw.lxcs.iter().find(|g| g.id.value == 102).unwrap();
    assert_eq!(
        l102.ip.as_ref().unwrap().value,
        IpSpec::Static {
            ip: ip("10.0.0.12"),
            prefix: None
        }
    );
    let fw = raw.hypervisor.firewall.as_ref().unwrap();
    assert_eq!(fw.rules[0].iface.as_ref().unwrap().value, "vmbr0");
    assert!(fw.rules[1].proto.is_none() && fw.rules[1].port.is_none());
    assert_eq!(fw.rules[4].port.as_ref().unwrap().value, "2049");
    assert!(raw.certs.is_empty());
    assert!(raw
        .notes
        .iter()
        .any(|n| n.contains("certificate-manifest.json not found")));

    let m = variant("history-2025-objects");
    // the traefik_service port given as a string
    assert_eq!(
        m.routes.by_name("granite-embedding").unwrap().url,
        "http://10.0.0.141:8000"
    );
    // development deployment: labels and rules silently missing on the platform
    let app = m.stack("thinkheads_ai_app").unwrap();
    assert!(!app.has_production);
    assert!(!app.deployments[0].applied);
    assert_eq!(app.deployments[0].environment.value, "development");
    let q = m.stack("qdrant_service").unwrap();
    assert!(q.deployments[0].applied);
    // websecure and the resolver exist in this era's Traefik template
    let r = m.router.as_ref().unwrap();
    assert!(r
        .entrypoints
        .iter()
        .any(|(n, p)| n == "websecure" && *p == Some(8443)));
    assert_eq!(r.cert_resolvers, ["internal-resolver"]);
    assert_eq!(r.found_by, "name contains `traefik`");
    // the rule without proto or port accepts everything from the subnet
    let c = m.firewall.cluster.as_ref().unwrap();
    assert!(
        c.decide(
            Direction::In,
            ip("10.0.0.55"),
            Some(ip("10.0.0.13")),
            phoenix_doctor::observe::Proto::Udp,
            12345
        )
        .accepted
    );
    assert!(c.rules[5].dport.as_ref().unwrap().contains(8005));
    // an LXC without nameservers inherits its clone source's
    assert_eq!(m.lxc(801).unwrap().nameservers[0].value, ip("8.8.8.8"));
    // a VM without a nameserver: vm-manager forces the host's dnsmasq
    let v1001 = m.vm(1001).unwrap();
    assert_eq!(v1001.nameservers[0].value, ip("10.0.0.13"));
    assert!(v1001.nameservers_from.contains("vm-manager"));
    // the plan still resolves: the router port comes from entryPoints.web
    let defs = plan::load_defs(None).unwrap();
    assert!(plan::build(&m, &defs, "qdrant").is_ok());
}

#[test]
fn variant_early_design_parses() {
    let m = variant("early-829c047");
    let v8000 = m.vm(8000).unwrap();
    assert_eq!(
        v8000
            .nameservers
            .iter()
            .map(|n| n.value)
            .collect::<Vec<_>>(),
        [ip("10.0.0.13"), ip("8.8.8.8")]
    );
    assert!(m.vm(9000).unwrap().dhcp);
    assert!(m.firewall.cluster.is_none() && m.firewall.vms.is_empty());
    assert_eq!(m.routes.routes.len(), 1, "only the dashboard");
    assert!(m.router.is_none() && m.ca.is_none() && m.portainer.is_none());
    assert!(!m.dns.enabled);
    assert!(m.notes.iter().any(|n| n.contains("stacks dir")));
    // no Traefik: a trace that needs it says so
    let defs = plan::load_defs(None).unwrap();
    let e = plan::build(&m, &defs, "qdrant").unwrap_err().to_string();
    assert!(e.contains("Traefik") || e.contains("stack"), "{e}");
}

#[test]
fn variant_loopback_lab_uses_the_site_file() {
    let m = variant("loopback-lab");
    assert_eq!(m.ports.dns.value, 5353);
    assert_eq!(m.ports.dns.prov.file, "etc/phoenix-doctor.toml");
    assert_eq!(m.dns.server.value.to_string(), "127.0.0.53:5353");
    let gw = m.gateway.as_ref().unwrap();
    assert_eq!(gw.listen.value, 8443);
    assert_eq!(gw.proxy_pass, "http://127.0.0.11:8080");
    assert_eq!(gw.proxy_pass_platform, "http://10.0.0.12:80");
    // the ca record keeps the generator's literal 10.0.0.10 and records the guest's real IP
    let ca = m.dns.record("ca.internal.thinkheads.ai").unwrap();
    assert_eq!(ca.ip_text, "10.0.0.10");
    assert_eq!(ca.guest_ip, Some(ip("127.0.0.14")));
    assert!(!m.firewall.cluster.as_ref().unwrap().enforced);
    assert_eq!(
        m.paths["router_client_cert"].value,
        "/tmp/lab/pki/proxy-client.crt"
    );
    assert_eq!(
        m.vantages["lxc:102"].hosts_file.as_ref().unwrap().value,
        "/tmp/lab/vantages/lxc-102/hosts"
    );
    // every address the qdrant plan sends to is loopback
    let defs = plan::load_defs(None).unwrap();
    let p = plan::build(&m, &defs, "qdrant").unwrap();
    for s in &p.steps {
        assert!(
            s.probe.target_addr().ip().is_loopback(),
            "{} → {}",
            s.id,
            s.probe.target_addr()
        );
    }
    let q = p
        .steps
        .iter()
        .find(|s| s.id == "router-qdrant.http")
        .unwrap();
    assert!(
        matches!(&q.probe, ProbeSpec::Http { url, .. } if url == "http://127.0.0.13:16333/healthz")
    );
}

#[test]
fn flows_are_judged_by_both_ends() {
    let m = reference();
    // Traefik (LXC 102, not enforced) → agent VM 1002:9001: VM 1002 accepts from 10.0.0.12
    let f = m.flow(
        VantageRef::Lxc(102),
        ip("10.0.0.102"),
        phoenix_doctor::observe::Proto::Tcp,
        9001,
    );
    assert!(f.allowed);
    assert_eq!(f.inbound.as_ref().unwrap().file, "1002");
    assert_eq!(f.inbound.as_ref().unwrap().decision.rule, Some(3));
    assert!(!f.out.as_ref().unwrap().decision.enforced);
    // Portainer VM 1001 → agent VM 1002:9443 is not opened on 1002: dropped by policy_in
    let f = m.flow(
        VantageRef::Vm(1001),
        ip("10.0.0.102"),
        phoenix_doctor::observe::Proto::Tcp,
        9443,
    );
    assert!(!f.allowed);
    assert!(
        f.out.as_ref().unwrap().decision.accepted,
        "policy_out ACCEPT"
    );
    assert_eq!(f.inbound.as_ref().unwrap().decision.rule, None);
    // Traefik → Portainer 9443 opened by the stack manifest rule
    let f = m.flow(
        VantageRef::Lxc(102),
        ip("10.0.0.111"),
        phoenix_doctor::observe::Proto::Tcp,
        9443,
    );
    assert!(f.allowed);
    let side = f.inbound.unwrap();
    let rule =
        &m.firewall.for_vantage(VantageRef::Vm(1001)).unwrap().rules[side.decision.rule.unwrap()];
    assert!(matches!(&rule.origin, RuleOrigin::Stack { name, .. } if name == "portainer_service"));
}

#[test]
fn show_json_carries_rules_and_enforcement() {
    let m = reference();
    let show = |args: &[&str]| -> (Option<i32>, serde_json::Value) {
        let out = Command::cargo_bin("phoenix-doctor")
            .unwrap()
            .args(["show", "--format", "json"])
            .args(args)
            .arg("--config-dir")
            .arg(fixtures().join("configs/reference/etc"))
            .output()
            .unwrap();
        let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (out.status.code(), v)
    };
    let (code, dns) = show(&["dns"]);
    assert_eq!(code, Some(0));
    assert_eq!(dns["schema_version"], 1);
    let recs = dns["records"].as_array().unwrap();
    assert_eq!(recs.len(), 22);
    let p = recs
        .iter()
        .find(|r| r["hostname"] == "portainer.internal.thinkheads.ai")
        .unwrap();
    assert_eq!(p["rule"], "stack-label");
    assert_eq!(p["shadowed"][0]["rule"], "vm-traefik-service");
    let (code, fw) = show(&["firewall", "--file", "103"]);
    assert_eq!(code, Some(0));
    assert_eq!(fw["enforced"], false);
    assert_eq!(fw["scope"]["kind"], "lxc");
    // the LXC rule file as Proxmox writes it: pvesh prepends, so the JSON order is reversed
    let text = render::firewall(&m, Some("103")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "[OPTIONS]");
    assert_eq!(
        lines[3],
        "OUT ACCEPT -dest 10.0.0.13 -p udp -dport 53 # Allow outbound DNS queries to CoreDNS"
    );
    assert_eq!(show(&["dns", "--file", "1"]).0, Some(2));
}

#[test]
fn site_file_relative_paths_are_taken_from_the_config_dir() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(
        &fixtures().join("configs/variants/loopback-lab"),
        tmp.path(),
    );
    let etc = tmp.path().join("etc");
    std::fs::write(
        etc.join("phoenix-doctor.toml"),
        "[paths]\nroot_ca = \"pki/root.crt\"\n[vantage.\"vm:1001\"]\nresolv_conf = \"vantages/1001/resolv.conf\"\n",
    )
    .unwrap();
    let m = model::load(&etc, None).unwrap();
    assert_eq!(
        m.paths["root_ca"].value,
        etc.join("pki/root.crt").display().to_string()
    );
    assert_eq!(m.paths["root_ca"].prov.line, Some(2));
    assert_eq!(
        m.vantages["vm:1001"].resolv_conf.as_ref().unwrap().value,
        etc.join("vantages/1001/resolv.conf").display().to_string()
    );
    // without a site file: the platform's ports
    std::fs::remove_file(etc.join("phoenix-doctor.toml")).unwrap();
    let m = model::load(&etc, None).unwrap();
    assert_eq!(
        (
            m.ports.dns.value,
            m.ports.gateway.value,
            m.ports.router.value
        ),
        (53, 443, 80)
    );
    assert!(m.ports.gateway.prov.file.starts_with("platform:"));
}

#[test]
fn without_the_nginx_phoenix_name_the_dns_file_holds_only_the_header() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("configs/reference"), tmp.path());
    let lxc = tmp.path().join("etc/phoenix_lxc_configs.json");
    let text = std::fs::read_to_string(&lxc)
        .unwrap()
        .replace("\"Nginx-Phoenix\"", "\"nginx-phoenix\"");
    std::fs::write(&lxc, text).unwrap();
    let m = model::load(&tmp.path().join("etc"), None).unwrap();
    assert_eq!(
        render::dnsmasq(&m),
        "# Phoenix Hypervisor Internal DNS Records\n"
    );
    assert!(m.dns.gateway_ip.is_none());
    assert!(m.notes.iter().any(|n| n.contains("Nginx-Phoenix")));
    // the gateway itself is still found through its traefik_service
    let gw = m.gateway.as_ref().unwrap();
    assert_eq!(
        (gw.lxc, gw.found_by.as_str()),
        (101, "traefik_service `nginx`")
    );
    // and a plan still resolves, expecting no particular DNS answer
    let defs = plan::load_defs(None).unwrap();
    let p = plan::build(&m, &defs, "qdrant").unwrap();
    let s = p
        .steps
        .iter()
        .find(|s| s.id == "host-dns.dns.qdrant")
        .unwrap();
    assert!(matches!(&s.probe, ProbeSpec::Dns { expect, .. } if expect.is_empty()));
    assert!(s.expect.contains("no record"), "{}", s.expect);
}
