//! The lab: each component answers as the platform's does (checked with real client software:
//! dig, curl, openssl), the config dir has the platform's shape, every fault changes exactly the
//! behaviour it names, and the lab runs unprivileged on high ports.
//!
//! Every lab here lives on its own `127.<net>.0.0/24` block so the tests run in parallel.

use phoenix_doctor::lab::{self, Fault, Lab, LabHandle, LabSpec, DOMAIN};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn start(rt: &tokio::runtime::Runtime, net: u8, faults: &[Fault]) -> LabHandle {
    rt.block_on(Lab::start(&LabSpec {
        dir: None,
        faults: faults.to_vec(),
        net,
    }))
    .unwrap_or_else(|e| panic!("lab on 127.{net}.0.0/24 did not start: {e}"))
}

/// Run a real client; a missing binary fails the test loudly.
fn run(prog: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("`{prog}` must be installed for this test: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn name(n: &str) -> String {
    format!("{n}.{DOMAIN}")
}

/// `dig` one A query: `STATUS addr,...` or `no-answer` when the server did not answer.
fn dig(h: &LabHandle, qname: &str, tcp: bool) -> String {
    let server = format!("@{}", h.addrs().host);
    let port = h.ports().dns.to_string();
    let mut args = vec![
        server.as_str(),
        "-p",
        port.as_str(),
        "+tries=1",
        "+time=1",
        "+noall",
        "+comments",
        "+answer",
        qname,
        "A",
    ];
    if tcp {
        args.push("+tcp");
    }
    let (_, out, _) = run("dig", &args);
    let Some(status) = out
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .map(|s| s.split(',').next().unwrap_or("").to_string())
    else {
        return "no-answer".into();
    };
    let answers: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [_, _, "IN", "A", addr] => Some(addr),
            _ => None,
        })
        .collect();
    format!("{status} {}", answers.join(",")).trim().to_string()
}

/// `curl` → `rc code` (and the body when `with_body`).
fn curl(args: &[&str], with_body: bool) -> String {
    let mut all = vec!["-s", "--max-time", "3", "-w", "\n%{http_code}"];
    all.extend_from_slice(args);
    let (rc, out, _) = run("curl", &all);
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", out.as_str()));
    if with_body {
        format!("{rc} {code} {body}")
    } else {
        format!("{rc} {code}")
    }
}

fn pki(h: &LabHandle, f: fn(&lab::PkiFiles) -> &Path) -> String {
    f(h.pki()).display().to_string()
}

/// Through the gateway, as the host does it: `--resolve NAME:443:<gateway>`, the root as CA.
fn via_gateway(h: &LabHandle, host: &str, path: &str, with_body: bool) -> String {
    let resolve = format!("{host}:{}:{}", h.ports().gateway, h.addrs().gateway);
    let url = format!("https://{host}:{}{path}", h.ports().gateway);
    let ca = pki(h, |p| &p.root_ca);
    curl(&["--cacert", &ca, "--resolve", &resolve, &url], with_body)
}

/// Straight to the router with a Host header, as the gateway does it.
fn via_router(h: &LabHandle, host: &str, path: &str, with_body: bool) -> String {
    let url = format!("http://{}{path}", h.router_addr());
    curl(&["-H", &format!("Host: {host}"), &url], with_body)
}

/// `openssl s_client` against the gateway with SNI and hostname check for `host`.
fn gateway_tls(h: &LabHandle, host: &str) -> (String, usize) {
    let connect = h.gateway_addr().to_string();
    let ca = pki(h, |p| &p.root_ca);
    let (_, out, _) = run(
        "openssl",
        &[
            "s_client",
            "-connect",
            &connect,
            "-servername",
            host,
            "-verify_hostname",
            host,
            "-CAfile",
            &ca,
            "-showcerts",
        ],
    );
    let verify = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Verify return code: "))
        .unwrap_or("no handshake")
        .to_string();
    (verify, out.matches("-----BEGIN CERTIFICATE-----").count())
}

/// Every behaviour the faults may change, observed with real clients.
fn observe(h: &LabHandle) -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    let root = pki(h, |p| &p.root_ca);
    let cert = pki(h, |p| &p.router_client_cert);
    let key = pki(h, |p| &p.router_client_key);
    m.insert("dns:qdrant", dig(h, &name("qdrant"), false));
    m.insert("dns:portainer", dig(h, &name("portainer"), false));
    m.insert(
        "dns:portainer-agent",
        dig(h, &name("portainer-agent"), false),
    );
    m.insert("dns:ca", dig(h, &name("ca"), false));
    let hosts = std::fs::read_to_string(h.dir().join("vantages/lxc-102/hosts")).unwrap();
    let pinned: Vec<&str> = hosts
        .lines()
        .filter(|l| !l.starts_with("127.0.0.1\t") && !l.starts_with("::1\t"))
        .collect();
    m.insert("hosts:lxc-102", pinned.join(";"));
    let (verify, certs) = gateway_tls(h, &name("qdrant"));
    m.insert("tls:gateway-verify", verify);
    m.insert("tls:gateway-certs", certs.to_string());
    m.insert(
        "https:qdrant",
        via_gateway(h, &name("qdrant"), "/healthz", false),
    );
    m.insert(
        "https:portainer",
        via_gateway(h, &name("portainer"), "/api/system/status", false),
    );
    m.insert(
        "router:qdrant",
        via_router(h, &name("qdrant"), "/healthz", true),
    );
    m.insert(
        "router:portainer",
        via_router(h, &name("portainer"), "/api/system/status", false),
    );
    let portainer = format!("https://{}/api/system/status", h.portainer_addr());
    m.insert("portainer:no-cert", curl(&["-k", &portainer], false));
    m.insert(
        "portainer:client-cert",
        curl(&["-k", "--cert", &cert, "--key", &key, &portainer], false),
    );
    m.insert(
        "portainer:verified",
        curl(
            &[
                "--cacert", &root, "--cert", &cert, "--key", &key, &portainer,
            ],
            false,
        ),
    );
    let agent = format!("https://{}/ping", h.agent_addr());
    m.insert("agent:ping", curl(&["-k", &agent], false));
    let qdrant = format!("http://{}/healthz", h.qdrant_addr());
    m.insert("qdrant:healthz", curl(&[&qdrant], true));
    let ca = format!("https://{}/health", h.ca_addr());
    m.insert("ca:health", curl(&["--cacert", &root, &ca], true));
    m
}

/// What a healthy lab on `127.<net>.0.0/24` answers.
fn healthy(net: u8) -> BTreeMap<&'static str, String> {
    let ip = |last: u8| format!("127.{net}.0.{last}");
    BTreeMap::from([
        ("dns:qdrant", format!("NOERROR {}", ip(153))),
        ("dns:portainer", format!("NOERROR {}", ip(153))),
        ("dns:portainer-agent", format!("NOERROR {}", ip(102))),
        ("dns:ca", format!("NOERROR {}", ip(10))),
        ("hosts:lxc-102", String::new()),
        ("tls:gateway-verify", "0 (ok)".into()),
        ("tls:gateway-certs", "2".into()),
        ("https:qdrant", "0 200".into()),
        ("https:portainer", "0 200".into()),
        ("router:qdrant", "0 200 healthz check passed".into()),
        ("router:portainer", "0 200".into()),
        // TLS 1.3: the handshake completes, the server's alert arrives on the first read.
        ("portainer:no-cert", "56 000".into()),
        ("portainer:client-cert", "0 200".into()),
        ("portainer:verified", "0 200".into()),
        ("agent:ping", "0 204".into()),
        ("qdrant:healthz", "0 200 healthz check passed".into()),
        ("ca:health", "0 200 {\"status\":\"ok\"}\n".into()),
    ])
}

/// Start a lab with `fault`, observe everything, and require that exactly `changed` differs
/// from the healthy lab, with exactly these values.
fn fault_changes_exactly(net: u8, fault: Fault, changed: &[(&str, String)]) {
    let rt = rt();
    let h = start(&rt, net, &[fault]);
    let seen = observe(&h);
    let base = healthy(net);
    let diff: BTreeMap<&str, String> = seen
        .iter()
        .filter(|(k, v)| base.get(*k) != Some(*v))
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let want: BTreeMap<&str, String> = changed.iter().cloned().collect();
    assert_eq!(
        diff, want,
        "fault {fault}: observed changes differ from the expected ones"
    );
    h.shutdown();
}

#[test]
fn healthy_lab_components_answer_like_the_platform() {
    let rt = rt();
    let h = start(&rt, 1, &[]);
    assert_eq!(observe(&h), healthy(1));

    // DNS: TCP too; unknown names in the zone are NXDOMAIN, other zones REFUSED; subdomains of
    // an address= record answer like dnsmasq.
    assert_eq!(dig(&h, &name("qdrant"), true), "NOERROR 127.1.0.153");
    assert_eq!(dig(&h, &name("nope"), false), "NXDOMAIN");
    assert_eq!(dig(&h, "example.com", false), "REFUSED");
    assert_eq!(
        dig(&h, &format!("x.{}", name("qdrant")), false),
        "NOERROR 127.1.0.153"
    );
    assert_eq!(dig(&h, &name("drphoenix"), false), "NOERROR 127.1.0.102");
    assert_eq!(dig(&h, &name("traefik"), false), "NOERROR 127.1.0.153");

    // The gateway says it is nginx and relays the router's answers.
    let resolve = format!(
        "{}:{}:{}",
        name("qdrant"),
        h.ports().gateway,
        h.addrs().gateway
    );
    let url = format!("https://{}:{}/healthz", name("qdrant"), h.ports().gateway);
    let (rc, out, _) = run(
        "curl",
        &[
            "-si",
            "--cacert",
            &pki(&h, |p| &p.root_ca),
            "--resolve",
            &resolve,
            &url,
        ],
    );
    assert_eq!(rc, 0);
    assert!(out.to_ascii_lowercase().contains("server: nginx"), "{out}");
    assert!(out.ends_with("healthz check passed"), "{out}");

    // The router: Traefik's exact 404 for an unknown Host.
    let (rc, out, _) = run(
        "curl",
        &[
            "-si",
            "-H",
            "Host: unknown.example",
            &format!("http://{}/", h.router_addr()),
        ],
    );
    assert_eq!(rc, 0);
    assert!(out.starts_with("HTTP/1.1 404"), "{out}");
    assert!(
        out.contains("content-type: text/plain; charset=utf-8"),
        "{out}"
    );
    assert!(out.ends_with("\r\n\r\n404 page not found\n"), "{out:?}");

    // Portainer's status JSON; the agent's self-signed cert names localhost and its IP.
    let portainer = curl(
        &[
            "--cacert",
            &pki(&h, |p| &p.root_ca),
            "--cert",
            &pki(&h, |p| &p.router_client_cert),
            "--key",
            &pki(&h, |p| &p.router_client_key),
            &format!("https://{}/api/system/status", h.portainer_addr()),
        ],
        true,
    );
    let json: serde_json::Value =
        serde_json::from_str(portainer.trim_start_matches("0 200 ")).unwrap();
    assert_eq!(json["Version"], "2.19.4");
    assert_eq!(json["InstanceID"].as_str().map(str::len), Some(36));
    let (_, out, _) = run(
        "sh",
        &[
            "-c",
            &format!(
                "echo | openssl s_client -connect {} 2>/dev/null | openssl x509 -noout -ext subjectAltName -subject -issuer",
                h.agent_addr()
            ),
        ],
    );
    assert!(out.contains("DNS:localhost"), "{out}");
    assert!(out.contains("IP Address:127.1.0.102"), "{out}");
    let subject = out.lines().find(|l| l.starts_with("subject")).unwrap();
    let issuer = out.lines().find(|l| l.starts_with("issuer")).unwrap();
    assert_eq!(
        subject.trim_start_matches("subject="),
        issuer.trim_start_matches("issuer=")
    );

    // qdrant's root document.
    let root = curl(&[&format!("http://{}/", h.qdrant_addr())], true);
    let json: serde_json::Value = serde_json::from_str(root.trim_start_matches("0 200 ")).unwrap();
    assert_eq!(json["title"], "qdrant - vector search engine");

    // Portainer asks for a client certificate signed by the lab CA.
    let (_, out, _) = run(
        "sh",
        &[
            "-c",
            &format!(
                "echo | openssl s_client -tls1_2 -connect {} 2>&1",
                h.portainer_addr()
            ),
        ],
    );
    assert!(
        out.contains("Acceptable client certificate CA names"),
        "{out}"
    );
    assert!(out.contains("ThinkHeads Internal CA Root CA"), "{out}");
    h.shutdown();
}

#[test]
fn pki_is_step_ca_like() {
    let rt = rt();
    let h = start(&rt, 2, &[]);
    let p = h.pki();
    let s = |x: &Path| x.display().to_string();
    for (leaf, purpose) in [
        (&p.gateway_cert, "sslserver"),
        (&p.portainer_cert, "sslserver"),
        (&p.step_ca_cert, "sslserver"),
        (&p.router_client_cert, "sslclient"),
    ] {
        let (rc, out, err) = run(
            "openssl",
            &[
                "verify",
                "-purpose",
                purpose,
                "-CAfile",
                &s(&p.root_ca),
                "-untrusted",
                &s(&p.intermediate),
                &s(leaf),
            ],
        );
        assert_eq!(rc, 0, "{}: {out}{err}", leaf.display());
        // 24-hour validity: valid now, expired in 25 h.
        assert_eq!(
            run("openssl", &["x509", "-in", &s(leaf), "-checkend", "0"]).0,
            0
        );
        assert_ne!(
            run("openssl", &["x509", "-in", &s(leaf), "-checkend", "90000"]).0,
            0
        );
        let (_, text, _) = run("openssl", &["x509", "-in", &s(leaf), "-noout", "-text"]);
        assert!(text.contains("ASN1 OID: prime256v1"), "{text}");
        assert!(
            text.contains(
                "Issuer: O = ThinkHeads Internal CA, CN = ThinkHeads Internal CA Intermediate CA"
            ),
            "{text}"
        );
    }
    let (_, text, _) = run(
        "openssl",
        &[
            "x509",
            "-in",
            &s(&p.gateway_cert),
            "-noout",
            "-ext",
            "subjectAltName",
        ],
    );
    for n in ["nginx", "portainer", "qdrant"] {
        assert!(text.contains(&format!("DNS:{n}.{DOMAIN}")), "{text}");
    }
    let (_, text, _) = run(
        "openssl",
        &[
            "x509",
            "-in",
            &s(&p.portainer_cert),
            "-noout",
            "-ext",
            "subjectAltName",
        ],
    );
    assert!(text.contains("IP Address:127.2.0.111"), "{text}");
    let (_, text, _) = run(
        "openssl",
        &["x509", "-in", &s(&p.root_ca), "-noout", "-subject"],
    );
    assert!(
        text.contains("CN = ThinkHeads Internal CA Root CA"),
        "{text}"
    );
    // The router's identity is a client certificate, not a server one.
    let (rc, _, _) = run(
        "openssl",
        &[
            "verify",
            "-purpose",
            "sslserver",
            "-CAfile",
            &s(&p.root_ca),
            "-untrusted",
            &s(&p.intermediate),
            &s(&p.router_client_cert),
        ],
    );
    assert_ne!(rc, 0);
    h.shutdown();
}

fn read_json(p: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
}

#[test]
fn config_dir_has_the_platform_shape() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let h = rt
        .block_on(Lab::start(&LabSpec {
            dir: Some(dir.path().join("lab")),
            faults: vec![],
            net: 3,
        }))
        .unwrap();
    let etc = h.config_dir();
    assert_eq!(
        etc,
        std::fs::canonicalize(dir.path()).unwrap().join("lab/etc")
    );
    assert_eq!(h.stacks_dir(), etc.parent().unwrap().join("stacks"));

    let hyp = read_json(&etc.join("phoenix_hypervisor_config.json"));
    assert_eq!(hyp["domain_name"], DOMAIN);
    assert_eq!(hyp["network"]["interfaces"]["address"], "127.3.0.13/8");
    assert_eq!(hyp["shared_volumes"]["firewall"]["enabled"], true);
    assert_eq!(hyp["dns_server"]["enabled"], true);
    assert_eq!(
        hyp["portainer_api"]["portainer_hostname"],
        name("portainer")
    );
    assert_ne!(hyp["portainer_api"]["admin_password"], "NewKick@$$2025");
    assert_eq!(hyp["step_ca"]["root_ca_name"], "ThinkHeads Internal CA");

    let lxc = read_json(&etc.join("phoenix_lxc_configs.json"));
    let l = lxc["lxc_configs"].as_object().unwrap();
    let ids: Vec<&str> = l.keys().map(String::as_str).collect();
    assert_eq!(ids, ["101", "102", "103"]);
    for (id, nm, ip) in [
        ("101", "Nginx-Phoenix", "127.3.0.153/8"),
        ("102", "Traefik-Internal", "127.3.0.12/8"),
        ("103", "Step-CA", "127.3.0.10/8"),
    ] {
        assert_eq!(l[id]["name"], nm);
        assert_eq!(l[id]["network_config"]["ip"], ip);
        assert_eq!(l[id]["network_config"]["nameservers"], "127.3.0.13");
    }
    assert_eq!(
        l["101"]["traefik_service"],
        serde_json::json!({"name": "nginx", "port": 443})
    );
    assert_eq!(
        l["103"]["traefik_service"],
        serde_json::json!({"name": "ca", "port": 9000})
    );
    assert!(l["102"].get("traefik_service").is_none());

    let vms = read_json(&etc.join("phoenix_vm_configs.json"));
    let find = |id: u64| {
        vms["vms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["vmid"] == id)
            .cloned()
            .unwrap()
    };
    let p = find(1001);
    assert_eq!(p["name"], "Portainer");
    assert_eq!(p["network_config"]["ip"], "127.3.0.111/8");
    assert_eq!(
        p["traefik_service"],
        serde_json::json!({"name": "portainer", "port": 9443})
    );
    assert_eq!(p["docker_stacks"], serde_json::json!(["portainer_service"]));
    let a = find(1002);
    assert_eq!(a["name"], "drphoenix");
    assert_eq!(a["portainer_role"], "agent");
    assert_eq!(a["portainer_agent_hostname"], name("portainer-agent"));
    assert_eq!(
        a["traefik_service"],
        serde_json::json!({"name": "portainer-agent", "port": 9001})
    );
    assert_eq!(a["docker_stacks"], serde_json::json!(["qdrant_service"]));

    let manifest = read_json(&etc.join("certificate-manifest.json"));
    let gw = &manifest[0];
    assert_eq!(gw["common_name"], name("nginx"));
    assert_eq!(
        gw["sans"],
        serde_json::json!([name("nginx"), name("portainer"), name("qdrant")])
    );
    assert_eq!(gw["cert_path"], h.pki().gateway_cert.display().to_string());

    let q = read_json(&h.stacks_dir().join("qdrant_service/phoenix.json"));
    let labels = q["environments"]["production"]["services"]["qdrant"]["traefik_labels"].clone();
    let labels: Vec<String> = serde_json::from_value(labels).unwrap();
    assert!(labels.contains(&format!(
        "traefik.http.routers.qdrant.rule=Host(`{}`)",
        name("qdrant")
    )));
    assert!(labels.contains(&"traefik.http.routers.qdrant.entrypoints=web".to_string()));
    assert!(
        labels.contains(&"traefik.http.services.qdrant.loadbalancer.server.port=6333".to_string())
    );
    read_json(&h.stacks_dir().join("portainer_service/phoenix.json"));

    let tpl = std::fs::read_to_string(etc.join("traefik/traefik.yml.template")).unwrap();
    assert!(tpl.contains("  web:\n    address: \":80\""), "{tpl}");
    assert!(
        tpl.contains("  file:\n") && tpl.contains("  docker:\n"),
        "{tpl}"
    );

    // The site file: PEM paths, one vantage per simulated guest with its own system files.
    let site: toml::Table =
        toml::from_str(&std::fs::read_to_string(etc.join("phoenix-doctor.toml")).unwrap()).unwrap();
    assert!(
        site.get("ports").is_none(),
        "root binds the platform's own ports"
    );
    for k in [
        "root_ca",
        "router_root_ca",
        "router_client_cert",
        "router_client_key",
    ] {
        let path = site["paths"][k].as_str().unwrap();
        let pem = std::fs::read_to_string(path).unwrap();
        assert!(pem.starts_with("-----BEGIN "), "{k}: {path}");
    }
    for v in ["host", "lxc:101", "lxc:102", "vm:1001", "vm:1002"] {
        let t = &site["vantage"][v];
        let hosts = std::fs::read_to_string(t["hosts_file"].as_str().unwrap()).unwrap();
        assert!(
            hosts
                .lines()
                .all(|l| l.starts_with("127.0.0.1\t") || l.starts_with("::1\t")),
            "{v}: {hosts}"
        );
        let resolv = std::fs::read_to_string(t["resolv_conf"].as_str().unwrap()).unwrap();
        assert_eq!(resolv, format!("search {DOMAIN}\nnameserver 127.3.0.13\n"));
    }

    // Nothing of the real platform's network leaks into the lab's config.
    for f in [
        "phoenix_hypervisor_config.json",
        "phoenix_lxc_configs.json",
        "phoenix_vm_configs.json",
    ] {
        let text = std::fs::read_to_string(etc.join(f)).unwrap();
        assert!(!text.contains("10.0.0."), "{f} still names 10.0.0.x");
    }

    // The DNS server's records are the generator's, derived from this config.
    let recs: Vec<(String, String)> = h
        .dns_records()
        .iter()
        .map(|(n, ip)| (n.clone(), ip.to_string()))
        .collect();
    // jq's unique_by sorts by the full hostname: "nginx-phoenix." before "nginx.".
    let want: Vec<(String, String)> = [
        ("ca", 10),
        ("drphoenix", 102),
        ("nginx-phoenix", 153),
        ("nginx", 153),
        ("portainer-agent", 102),
        ("portainer", 153),
        ("qdrant", 153),
        ("step-ca", 10),
        ("traefik-internal", 12),
        ("traefik", 153),
    ]
    .iter()
    .map(|(n, l)| (name(n), format!("127.3.0.{l}")))
    .collect();
    assert_eq!(recs, want);
    let hosts: Vec<(&str, &str)> = h
        .routes()
        .iter()
        .map(|r| (r.host.as_str(), r.provider))
        .collect();
    assert!(
        hosts.contains(&(name("qdrant").as_str(), "docker")),
        "{hosts:?}"
    );
    assert!(
        hosts.contains(&(name("portainer").as_str(), "file")),
        "{hosts:?}"
    );
    h.shutdown();
}

#[test]
fn fault_catalogue_is_complete_and_parses() {
    let names: Vec<&str> = lab::faults().iter().map(|f| f.name).collect();
    assert_eq!(names.len(), 21);
    for f in lab::faults() {
        assert_eq!(Fault::parse(f.name).unwrap(), f.fault);
        assert_eq!(f.fault.name(), f.name);
    }
    // Each expected finding is a live code of the diagnosis, at the fault's layer.
    for f in lab::faults() {
        let code = phoenix_doctor::diagnose::catalog::lookup(f.expected.code)
            .unwrap_or_else(|| panic!("{}: unknown code {}", f.name, f.expected.code));
        assert_eq!(code.layer, Some(f.expected.layer), "{}", f.name);
    }
    let hops = [
        "host-dns",
        "host-gateway",
        "gateway-router",
        "router-dns",
        "router-qdrant",
        "host-gateway-portainer",
        "gateway-router-portainer",
        "router-portainer",
        "portainer-dns",
        "portainer-agent",
        "host-ca",
    ];
    for f in lab::faults() {
        assert!(
            hops.contains(&f.expected.hop),
            "{}: {}",
            f.name,
            f.expected.hop
        );
    }
    let err = Fault::parse("nope").unwrap_err();
    assert_eq!(err.kind(), phoenix_doctor::error::Kind::Input);
    assert!(err.to_string().contains("no-route"));
    let (rc, out, _) = run(
        env!("CARGO_BIN_EXE_phoenix-doctor"),
        &["lab", "--list-faults"],
    );
    assert_eq!(rc, 0);
    for n in names {
        assert!(out.contains(n), "{out}");
    }
    let (rc, out, _) = run(
        env!("CARGO_BIN_EXE_phoenix-doctor"),
        &["--format", "json", "lab", "--list-faults"],
    );
    assert_eq!(rc, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let list = json.as_array().unwrap();
    assert_eq!(list.len(), lab::faults().len());
    for (j, f) in list.iter().zip(lab::faults()) {
        assert_eq!(j["name"], f.name);
        assert_eq!(j["expected"]["hop"], f.expected.hop);
        assert_eq!(j["expected"]["layer"], f.expected.layer.as_str());
        assert_eq!(j["expected"]["code"], f.expected.code);
    }
    let (rc, _, err) = run(
        env!("CARGO_BIN_EXE_phoenix-doctor"),
        &["lab", "--fault", "bogus"],
    );
    assert_eq!(rc, 2, "{err}");
}

#[test]
fn fault_hosts_override() {
    fault_changes_exactly(
        11,
        Fault::HostsOverride,
        &[(
            "hosts:lxc-102",
            format!("127.11.0.101\t{}", name("portainer")),
        )],
    );
}

#[test]
fn fault_agent_dns_gateway() {
    fault_changes_exactly(
        12,
        Fault::AgentDnsGateway,
        &[("dns:portainer-agent", "NOERROR 127.12.0.153".into())],
    );
}

#[test]
fn fault_nxdomain() {
    fault_changes_exactly(13, Fault::Nxdomain, &[("dns:qdrant", "NXDOMAIN".into())]);
}

#[test]
fn fault_dns_down() {
    fault_changes_exactly(
        14,
        Fault::DnsDown,
        &[
            ("dns:ca", "no-answer".into()),
            ("dns:portainer", "no-answer".into()),
            ("dns:portainer-agent", "no-answer".into()),
            ("dns:qdrant", "no-answer".into()),
        ],
    );
}

#[test]
fn fault_qdrant_down() {
    fault_changes_exactly(
        15,
        Fault::QdrantDown,
        &[
            ("https:qdrant", "0 502".into()),
            ("router:qdrant", "0 502 Bad Gateway".into()),
            ("qdrant:healthz", "7 000 ".into()),
        ],
    );
}

#[test]
fn fault_expired_leaf() {
    fault_changes_exactly(
        16,
        Fault::ExpiredLeaf,
        &[
            ("https:portainer", "60 000".into()),
            ("https:qdrant", "60 000".into()),
            ("tls:gateway-verify", "10 (certificate has expired)".into()),
        ],
    );
}

#[test]
fn fault_wrong_san() {
    fault_changes_exactly(
        17,
        Fault::WrongSan,
        &[
            ("https:qdrant", "60 000".into()),
            ("tls:gateway-verify", "62 (hostname mismatch)".into()),
        ],
    );
}

#[test]
fn fault_untrusted_ca() {
    fault_changes_exactly(
        18,
        Fault::UntrustedCa,
        &[
            ("https:portainer", "60 000".into()),
            ("https:qdrant", "60 000".into()),
            (
                "tls:gateway-verify",
                "20 (unable to get local issuer certificate)".into(),
            ),
        ],
    );
}

#[test]
fn fault_intermediate_missing() {
    fault_changes_exactly(
        19,
        Fault::IntermediateMissing,
        &[
            ("https:portainer", "60 000".into()),
            ("https:qdrant", "60 000".into()),
            ("tls:gateway-certs", "1".into()),
            (
                "tls:gateway-verify",
                "21 (unable to verify the first certificate)".into(),
            ),
        ],
    );
}

#[test]
fn fault_mtls_not_enforced() {
    fault_changes_exactly(
        20,
        Fault::MtlsNotEnforced,
        &[("portainer:no-cert", "0 200".into())],
    );
}

#[test]
fn fault_client_cert_rejected() {
    fault_changes_exactly(
        21,
        Fault::ClientCertRejected,
        &[
            ("https:portainer", "0 500".into()),
            ("portainer:client-cert", "56 000".into()),
            ("portainer:verified", "56 000".into()),
            ("router:portainer", "0 500".into()),
        ],
    );
}

#[test]
fn fault_no_route() {
    // 404 for qdrant's Host, portainer's still routed (router:portainer unchanged).
    fault_changes_exactly(
        22,
        Fault::NoRoute,
        &[
            ("https:qdrant", "0 404".into()),
            ("router:qdrant", "0 404 404 page not found\n".into()),
        ],
    );
}

#[test]
fn fault_backend_tls() {
    fault_changes_exactly(
        23,
        Fault::BackendTls,
        &[
            ("https:portainer", "0 500".into()),
            ("portainer:verified", "60 000".into()),
            ("router:portainer", "0 500".into()),
        ],
    );
}

#[test]
fn fault_ca_down() {
    fault_changes_exactly(24, Fault::CaDown, &[("ca:health", "7 000 ".into())]);
}

#[test]
fn fault_slow_backend() {
    fault_changes_exactly(
        25,
        Fault::SlowBackend,
        &[
            ("https:qdrant", "0 504".into()),
            ("router:qdrant", "0 504 Gateway Timeout".into()),
            ("qdrant:healthz", "28 000 ".into()),
        ],
    );
}

#[test]
fn faults_combine() {
    let rt = rt();
    let h = start(&rt, 26, &[Fault::NoRoute, Fault::CaDown, Fault::NoRoute]);
    assert_eq!(h.faults(), [Fault::NoRoute, Fault::CaDown]);
    let seen = observe(&h);
    assert_eq!(seen["router:qdrant"], "0 404 404 page not found\n");
    assert_eq!(seen["ca:health"], "7 000 ");
    assert_eq!(seen["router:portainer"], "0 200");
    h.shutdown();
}

#[test]
fn shutdown_closes_every_listener() {
    let rt = rt();
    let h = start(&rt, 27, &[]);
    let addrs = [
        h.gateway_addr(),
        h.router_addr(),
        h.portainer_addr(),
        h.agent_addr(),
        h.qdrant_addr(),
        h.ca_addr(),
    ];
    let dir = h.dir().to_path_buf();
    assert!(dir.join("etc/phoenix-doctor.toml").exists());
    h.shutdown();
    // Aborted tasks drop their listeners once the runtime has polled the abort.
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
    for a in addrs {
        assert!(
            std::net::TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_err(),
            "{a} still open"
        );
    }
    assert!(!dir.exists(), "the temp dir is removed on shutdown");
}

/// The `lab` subcommand as uid 65534: high ports written to the site file, served there.
#[test]
fn lab_runs_unprivileged_on_high_ports() {
    let work = tempfile::tempdir().unwrap();
    let bin = work.path().join("phoenix-doctor");
    std::fs::copy(env!("CARGO_BIN_EXE_phoenix-doctor"), &bin).unwrap();
    let labdir = work.path().join("lab");
    std::fs::create_dir(&labdir).unwrap();
    for p in [work.path(), labdir.as_path()] {
        run("chmod", &["0777", &p.display().to_string()]);
    }
    run("chmod", &["0755", &bin.display().to_string()]);
    let t0 = Instant::now();
    let mut child = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(&bin)
        .args(["lab", "--dir"])
        .arg(&labdir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv (util-linux) must be installed");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let mut guard = Kill(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut printed = String::new();
    let mut trace_line = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("trace it: ") {
            trace_line = Some(line);
            break;
        }
    }
    let trace_line = trace_line.unwrap_or_else(|| {
        let mut err = String::new();
        use std::io::Read;
        let _ = guard.0.stderr.take().unwrap().read_to_string(&mut err);
        panic!("the lab did not start as nobody:\n{printed}{err}")
    });
    let started = t0.elapsed();
    let etc = std::fs::canonicalize(&labdir).unwrap().join("etc");
    assert_eq!(
        trace_line,
        format!(
            "trace it: phoenix-doctor trace qdrant --config-dir {}",
            etc.display()
        )
    );
    let site: toml::Table =
        toml::from_str(&std::fs::read_to_string(etc.join("phoenix-doctor.toml")).unwrap()).unwrap();
    let ports = &site["ports"];
    assert_eq!(ports["dns"].as_integer(), Some(5353));
    assert_eq!(ports["gateway"].as_integer(), Some(8443));
    assert_eq!(ports["router"].as_integer(), Some(8080));
    // Files the lab wrote belong to nobody.
    let (_, owner, _) = run(
        "stat",
        &[
            "-c",
            "%u",
            &etc.join("phoenix-doctor.toml").display().to_string(),
        ],
    );
    assert_eq!(owner.trim(), "65534");

    let (_, out, _) = run(
        "dig",
        &[
            "@127.0.0.13",
            "-p",
            "5353",
            "+short",
            "+tries=1",
            "+time=1",
            &name("qdrant"),
        ],
    );
    assert_eq!(out.trim(), "127.0.0.153");
    let root = labdir.join("pki/phoenix_root_ca.crt").display().to_string();
    let resolve = format!("{}:8443:127.0.0.153", name("qdrant"));
    let got = curl(
        &[
            "--cacert",
            &root,
            "--resolve",
            &resolve,
            &format!("https://{}:8443/healthz", name("qdrant")),
        ],
        true,
    );
    assert_eq!(got, "0 200 healthz check passed");
    assert_eq!(
        curl(
            &[
                "-H",
                &format!("Host: {}", name("nope")),
                "http://127.0.0.12:8080/"
            ],
            false
        ),
        "0 404"
    );

    // SIGTERM stops it cleanly.
    run("kill", &["-TERM", &pid.to_string()]);
    let status = guard.0.wait().unwrap();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    assert!(started < Duration::from_secs(10));
}
