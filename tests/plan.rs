//! Plans resolved from the built-in trace definitions against fixture configs (nothing is sent).

use assert_cmd::Command;
use phoenix_doctor::error::Error;
use phoenix_doctor::model::{self, Intended};
use phoenix_doctor::observe::Layer;
use phoenix_doctor::plan::{self, Plan, ProbeSpec, Step, Trust, VantageRef};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn reference() -> Intended {
    model::load(&fixtures().join("configs/reference/etc"), None).unwrap()
}

fn qdrant() -> Plan {
    let defs = plan::load_defs(None).unwrap();
    plan::build(&reference(), &defs, "qdrant").unwrap()
}

fn step<'a>(p: &'a Plan, id: &str) -> &'a Step {
    p.steps
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

#[test]
fn qdrant_plan_table_snapshot() {
    insta::assert_snapshot!("plan_qdrant_table", plan::render::table(&qdrant(), 120));
}

#[test]
fn qdrant_plan_json_snapshot() {
    insta::assert_snapshot!("plan_qdrant_json", plan::render::json(&qdrant()));
}

#[test]
fn qdrant_hop_chain_is_the_documented_one() {
    let p = qdrant();
    let hops: Vec<(&str, String, &str)> = p
        .hops
        .iter()
        .map(|h| (h.id.as_str(), h.from.to_string(), h.to.as_str()))
        .collect();
    assert_eq!(
        hops,
        [
            ("host-dns", "host".to_string(), "dnsmasq"),
            ("host-gateway", "host".into(), "nginx"),
            ("gateway-router", "lxc:101".into(), "traefik"),
            ("router-dns", "lxc:102".into(), "dnsmasq"),
            ("router-qdrant", "lxc:102".into(), "qdrant"),
            ("host-gateway-portainer", "host".into(), "nginx"),
            ("gateway-router-portainer", "lxc:101".into(), "traefik"),
            ("router-portainer", "lxc:102".into(), "portainer"),
            ("portainer-dns", "vm:1001".into(), "dnsmasq"),
            ("portainer-agent", "vm:1001".into(), "portainer-agent"),
            ("host-ca", "host".into(), "step-ca"),
        ]
    );
    assert_eq!(p.hops[1].title, "host → NGINX gateway :443");
    assert_eq!(p.hops[2].from_label, "nginx");
    let ids: Vec<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
    for id in [
        "host-dns.dns.qdrant",
        "host-dns.dns.portainer",
        "host-dns.dns.portainer-agent",
        "host-dns.dns.ca",
        "host-gateway.tcp",
        "host-gateway.tls",
        "host-gateway.http",
        "gateway-router.tcp",
        "gateway-router.http",
        "router-dns.dns.qdrant",
        "router-dns.dns.ca",
        "router-qdrant.tcp",
        "router-qdrant.http",
        "router-portainer.tls",
        "portainer-dns.dns.portainer-agent",
        "portainer-agent.tls",
        "portainer-agent.http",
        "host-ca.tls",
        "host-ca.http",
    ] {
        assert!(ids.contains(&id), "missing {id}");
    }
    assert!(
        !ids.contains(&"router-portainer.mtls"),
        "no client identity on the real platform"
    );
    // step ids are unique and prerequisites come first
    for (i, s) in p.steps.iter().enumerate() {
        assert_eq!(p.steps.iter().filter(|x| x.id == s.id).count(), 1);
        for d in &s.depends_on {
            let j = p
                .steps
                .iter()
                .position(|x| &x.id == d)
                .expect("dependency exists");
            assert!(j < i && p.steps[j].hop == s.hop, "{} depends on {d}", s.id);
        }
        assert!(!s.provenance.is_empty(), "{} has no provenance", s.id);
        assert!(!s.expect.is_empty());
        assert_eq!(s.layer, s.probe.layer());
    }
}

#[test]
fn qdrant_steps_carry_the_model_values() {
    let p = qdrant();
    let dns = step(&p, "host-dns.dns.qdrant");
    match &dns.probe {
        ProbeSpec::Dns {
            name,
            server,
            expect,
            system,
        } => {
            assert_eq!(name, "qdrant.internal.thinkheads.ai");
            assert_eq!(server.to_string(), "10.0.0.13:53");
            assert_eq!(expect, &["10.0.0.153".parse::<std::net::IpAddr>().unwrap()]);
            assert!(system);
        }
        other => panic!("{other:?}"),
    }
    assert!(dns.depends_on.is_empty());
    assert!(dns
        .provenance
        .iter()
        .any(|p| p.file == "stacks/qdrant_service/phoenix.json"));
    let agent_dns = step(&p, "host-dns.dns.portainer-agent");
    assert!(
        matches!(&agent_dns.probe, ProbeSpec::Dns { expect, .. } if expect[0].to_string() == "10.0.0.102")
    );

    let tls = step(&p, "host-gateway.tls");
    assert_eq!(tls.depends_on, ["host-gateway.tcp"]);
    match &tls.probe {
        ProbeSpec::Tls { addr, sni, trust } => {
            assert_eq!(addr.to_string(), "10.0.0.153:443");
            assert_eq!(sni, "qdrant.internal.thinkheads.ai");
            assert_eq!(
                trust,
                &Trust::Ca {
                    file: "/mnt/pve/quickOS/lxc-persistent-data/103/ssl/phoenix_ca.crt".into()
                }
            );
        }
        other => panic!("{other:?}"),
    }
    let http = step(&p, "host-gateway.http");
    assert_eq!(http.depends_on, ["host-gateway.tls"]);
    assert_eq!(http.through, ["gateway-router", "router-qdrant"]);
    assert!(
        matches!(&http.probe, ProbeSpec::Http { url, connect, expect_status, .. }
        if url == "https://qdrant.internal.thinkheads.ai/healthz" && connect.to_string() == "10.0.0.153:443" && expect_status == &[200])
    );

    let gr = step(&p, "gateway-router.http");
    assert_eq!(gr.from, VantageRef::Lxc(101));
    assert_eq!(gr.depends_on, ["gateway-router.tcp"]);
    assert_eq!(gr.through, ["router-qdrant"]);
    assert!(
        matches!(&gr.probe, ProbeSpec::Http { url, connect, trust: None, .. }
        if url == "http://qdrant.internal.thinkheads.ai/healthz" && connect.to_string() == "10.0.0.12:80")
    );

    let rdns = step(&p, "router-dns.dns.ca");
    assert_eq!(rdns.from, VantageRef::Lxc(102));
    assert!(
        matches!(&rdns.probe, ProbeSpec::Dns { server, system: true, .. } if server.to_string() == "10.0.0.13:53")
    );
    assert!(rdns
        .provenance
        .iter()
        .any(|p| p.pointer == "/lxc_configs/102/network_config/nameservers"));

    let rq = step(&p, "router-qdrant.http");
    assert!(matches!(&rq.probe, ProbeSpec::Http { url, connect, .. }
        if url == "http://10.0.0.102:6333/healthz" && connect.to_string() == "10.0.0.102:6333"));
    assert!(rq
        .provenance
        .iter()
        .any(|p| p.pointer.ends_with("/traefik_labels/5")));

    let rp = step(&p, "router-portainer.tls");
    assert!(
        matches!(&rp.probe, ProbeSpec::Tls { sni, trust: Trust::Ca { file }, .. }
        if sni == "10.0.0.111" && file.to_str() == Some("/etc/step-ca/ssl/phoenix_root_ca.crt"))
    );
    let rph = step(&p, "router-portainer.http");
    assert!(
        matches!(&rph.probe, ProbeSpec::Http { url, identity: None, .. } if url == "https://10.0.0.111:9443/api/system/status")
    );

    let pa = step(&p, "portainer-agent.tls");
    assert_eq!(pa.from, VantageRef::Vm(1001));
    assert!(
        matches!(&pa.probe, ProbeSpec::Tls { trust: Trust::SelfSigned { names }, .. } if names == &["localhost", "10.0.0.102"])
    );
    let pah = step(&p, "portainer-agent.http");
    assert!(
        matches!(&pah.probe, ProbeSpec::Http { url, expect_status, trust: Some(Trust::SelfSigned { .. }), .. }
        if url == "https://10.0.0.102:9001/ping" && expect_status == &[204])
    );

    let ca = step(&p, "host-ca.http");
    assert!(
        matches!(&ca.probe, ProbeSpec::Http { connect, .. } if connect.to_string() == "10.0.0.10:9000")
    );
    assert_eq!(step(&p, "host-ca.tls").layer, Layer::Tls);
}

#[test]
fn site_identity_adds_the_mtls_layer() {
    let m = model::load(&fixtures().join("configs/variants/loopback-lab/etc"), None).unwrap();
    let defs = plan::load_defs(None).unwrap();
    let p = plan::build(&m, &defs, "qdrant").unwrap();
    let mtls = step(&p, "router-portainer.mtls");
    assert_eq!(mtls.depends_on, ["router-portainer.tls"]);
    match &mtls.probe {
        ProbeSpec::Mtls {
            identity: Some(id),
            require,
            sni,
            ..
        } => {
            assert!(require);
            assert_eq!(sni, "127.0.0.12");
            assert_eq!(id.cert.to_str(), Some("/tmp/lab/pki/proxy-client.crt"));
        }
        other => panic!("{other:?}"),
    }
    assert!(mtls
        .provenance
        .iter()
        .any(|p| p.file == "etc/phoenix-doctor.toml" && p.pointer == "/paths/router_client_cert"));
    let http = step(&p, "router-portainer.http");
    assert_eq!(http.depends_on, ["router-portainer.mtls"]);
    assert!(matches!(
        &http.probe,
        ProbeSpec::Http {
            identity: Some(_),
            ..
        }
    ));
    // the site file's trust anchor replaces the TOML default
    assert!(
        matches!(&step(&p, "host-gateway.tls").probe, ProbeSpec::Tls { trust: Trust::Ca { file }, .. } if file.to_str() == Some("/tmp/lab/pki/ca-bundle.pem"))
    );
    assert_eq!(p.hops[1].title, "host → NGINX gateway :8443");
    assert_eq!(p.hops[0].title, "host → dnsmasq :5353");
}

#[test]
fn every_stack_and_routed_service_has_a_target() {
    let m = reference();
    let defs = plan::load_defs(None).unwrap();
    let t = plan::targets(&m, &defs);
    assert_eq!(
        t,
        [
            "qdrant",
            "portainer",
            "agent",
            "step-ca",
            "granite-embedding",
            "granite-3b",
            "nginx",
            "ollama",
            "llamacpp",
            "thinkheads_ai_app"
        ]
    );
    for target in &t {
        let p = plan::build(&m, &defs, target).unwrap_or_else(|e| panic!("{target}: {e}"));
        assert!(!p.steps.is_empty(), "{target}");
        assert_eq!(&p.target, target);
    }
    // aliases select the named trace
    assert_eq!(
        plan::build(&m, &defs, "qdrant_service").unwrap().target,
        "qdrant"
    );
    assert_eq!(plan::build(&m, &defs, "ca").unwrap().target, "step-ca");
    // a generic routed service: backend scheme decides whether there is a TLS layer
    let g = plan::build(&m, &defs, "granite-embedding").unwrap();
    assert!(g
        .steps
        .iter()
        .all(|s| s.id != "router-granite-embedding.tls"));
    assert!(
        matches!(&step(&g, "router-granite-embedding.http").probe, ProbeSpec::Http { url, .. } if url == "http://10.0.0.141:8000/health")
    );
    assert_eq!(
        step(&g, "host-gateway.http").through,
        ["gateway-router", "router-granite-embedding"]
    );
    // a stack without a hostname is traced by its published ports
    let app = plan::build(&m, &defs, "thinkheads_ai_app").unwrap();
    assert!(
        matches!(&app.steps[0].probe, ProbeSpec::Tcp { addr } if addr.to_string() == "10.0.0.102:8000")
    );
}

#[test]
fn unknown_target_lists_known_ones_and_suggests() {
    let m = reference();
    let defs = plan::load_defs(None).unwrap();
    let e = plan::build(&m, &defs, "qdarnt").unwrap_err();
    let Error::Plan(msg) = e else {
        panic!("not a plan error: {e:?}")
    };
    assert!(
        msg.starts_with("unknown target `qdarnt`. Did you mean `qdrant`?"),
        "{msg}"
    );
    assert!(
        msg.contains("Known targets: qdrant, portainer, agent, step-ca, granite-embedding"),
        "{msg}"
    );
    let out = Command::cargo_bin("phoenix-doctor")
        .unwrap()
        .args(["plan", "portaner", "--config-dir"])
        .arg(fixtures().join("configs/reference/etc"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("Did you mean `portainer`?"));
}

#[test]
fn plan_command_prints_table_and_json() {
    let etc = fixtures().join("configs/reference/etc");
    let out = Command::cargo_bin("phoenix-doctor")
        .unwrap()
        .args(["plan", "qdrant", "--format", "json", "--config-dir"])
        .arg(&etc)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let back: Plan = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(back, qdrant());
    let out = Command::cargo_bin("phoenix-doctor")
        .unwrap()
        .args(["plan", "agent", "--config-dir"])
        .arg(&etc)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("plan agent: 3 hops, 7 steps"), "{text}");
    assert!(text.contains("Portainer → agent :9001 (portainer-agent)"));
}

#[test]
fn probes_dir_overrides_the_builtin_definitions() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("web.toml"),
        r#"name = "web"
[vars]
root_ca = "/x/root.pem"
[[hop]]
id = "host-gw"
from = "host"
to = "gateway"
tcp = true
tls = { sni = "nginx.{domain}", trust = "{root_ca}" }
"#,
    )
    .unwrap();
    let defs = plan::load_defs(Some(tmp.path())).unwrap();
    let m = reference();
    assert_eq!(plan::targets(&m, &defs), ["web", "thinkheads_ai_app"]);
    let p = plan::build(&m, &defs, "web").unwrap();
    assert_eq!(p.steps.len(), 2);
    assert_eq!(p.hops[0].title, "host → nginx :443");
    let tls = step(&p, "host-gw.tls");
    assert!(tls.provenance.iter().any(|p| p.file.ends_with("web.toml")
        && p.pointer == "/vars/root_ca"
        && p.line == Some(3)));
    assert!(plan::build(&m, &defs, "qdrant").is_err());

    // bad definitions are input errors naming the file and line
    std::fs::write(
        tmp.path().join("web.toml"),
        "name = \"web\"\n[[hop]]\nid = \"a\"\nfrom = \"host\"\nto = \"gateway\"\ntcp = \"yes\"\n",
    )
    .unwrap();
    let e = plan::load_defs(Some(tmp.path())).unwrap_err().to_string();
    assert!(e.contains("web.toml:6"), "{e}");
    std::fs::write(tmp.path().join("web.toml"), "name = \"web\"\n[[hop]]\nid = \"a\"\nfrom = \"host\"\nto = \"gateway\"\ntls = { sni = \"{nope}\" }\n").unwrap();
    let defs = plan::load_defs(Some(tmp.path())).unwrap();
    let e = plan::build(&m, &defs, "web").unwrap_err().to_string();
    assert!(e.contains("hop `a`") && e.contains("{nope}"), "{e}");
    std::fs::write(
        tmp.path().join("web.toml"),
        "name = \"web\"\n[[hop]]\nid = \"a\"\nfrom = \"lxc:999\"\nto = \"gateway\"\ntcp = true\n",
    )
    .unwrap();
    let defs = plan::load_defs(Some(tmp.path())).unwrap();
    let e = plan::build(&m, &defs, "web").unwrap_err().to_string();
    assert!(e.contains("lxc:999"), "{e}");
}

/// `check` plans every target from one service list: the same plans as one `build` per target,
/// by name or by hostname, and the same error for an unknown target.
#[test]
fn build_many_plans_what_build_plans() {
    let m = reference();
    let defs = plan::load_defs(None).unwrap();
    let mut targets = plan::targets(&m, &defs);
    assert!(targets.len() > 3, "{targets:?}");
    targets.push("qdrant.internal.thinkheads.ai".into());
    let many = plan::build_many(&m, &defs, &targets).unwrap();
    assert_eq!(many.len(), targets.len());
    for (t, p) in targets.iter().zip(&many) {
        assert_eq!(p, &plan::build(&m, &defs, t).unwrap(), "{t}");
    }
    let err = plan::build_many(&m, &defs, &["qdrant".into(), "nope".into()]).unwrap_err();
    assert!(err.to_string().contains("unknown target `nope`"), "{err}");
}
