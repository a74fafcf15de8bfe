//! `drift` against the platform's own generator outputs: the reference configs with the golden
//! files their generators wrote (fixtures/golden) deployed as they are drift nowhere; each
//! hand-made change to a deployed file is the one drift written down here from the change
//! itself (code, file and line, what it looks like, the script that regenerates it). Plus the
//! exit codes, the formats, and property tests over the deployed-file parsers.

use assert_cmd::Command;
use phoenix_doctor::deployed::{self, compare::Ctx, DirSource};
use phoenix_doctor::model;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn config_dir() -> PathBuf {
    root().join("fixtures/configs/reference/etc")
}

/// The gateway site generate_nginx_gateway_config.sh writes for the reference domain, typed
/// from its description (docs/config.md), not from the tool's output.
const GATEWAY_SITE: &str = "server {
    listen 80;
    server_name _;
    location /.well-known/acme-challenge/ { root /var/www/html; allow all; }
    location / { return 301 https://$host$request_uri; }
}
server {
    listen 443 ssl http2;
    server_name nginx.internal.thinkheads.ai portainer.internal.thinkheads.ai;
    ssl_certificate /etc/nginx/ssl/nginx.internal.thinkheads.ai.crt;
    ssl_certificate_key /etc/nginx/ssl/nginx.internal.thinkheads.ai.key;
    location / {
        proxy_pass http://10.0.0.12:80;
        proxy_set_header Host $host;
    }
}
";

/// A deployed tree holding exactly what the platform's generators wrote.
fn golden_tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let g = root().join("fixtures/golden");
    let put = |rel: &str, text: &str| {
        let p = d.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let golden = |n: &str| std::fs::read_to_string(g.join(n)).unwrap();
    put(
        "host/etc/dnsmasq.conf",
        "port=53\nlocal=/internal.thinkheads.ai/\nconf-dir=/etc/dnsmasq.d,*.conf\nserver=8.8.8.8\nserver=1.1.1.1\n",
    );
    put(
        "host/etc/dnsmasq.d/00-phoenix-internal.conf",
        &golden("00-phoenix-internal.conf"),
    );
    for f in ["cluster.fw", "1001.fw", "1002.fw"] {
        put(&format!("host/etc/pve/firewall/{f}"), &golden(f));
    }
    put(
        "lxc-102/etc/traefik/dynamic/dynamic_conf.yml",
        &golden("dynamic_conf.yml"),
    );
    put("lxc-101/etc/nginx/sites-enabled/gateway", GATEWAY_SITE);
    t
}

fn edit(d: &Path, rel: &str, from: &str, to: &str) {
    let p = d.join(rel);
    let t = std::fs::read_to_string(&p).unwrap();
    assert!(t.contains(from), "{rel} lacks {from}");
    std::fs::write(p, t.replacen(from, to, 1)).unwrap();
}

fn run(d: &Path) -> deployed::DriftReport {
    let m = model::load(&config_dir(), None).unwrap();
    deployed::drift(
        &m,
        &DirSource {
            root: d.to_path_buf(),
        },
        &Ctx::for_config(&m),
    )
}

/// The one finding of a report (panics with the list otherwise).
fn only(r: &deployed::DriftReport) -> &phoenix_doctor::finding::Finding {
    assert_eq!(
        r.findings.len(),
        1,
        "{:#?}",
        r.findings.iter().map(|f| &f.title).collect::<Vec<_>>()
    );
    &r.findings[0]
}

fn has(f: &phoenix_doctor::finding::Finding, s: &str) -> bool {
    f.evidence.iter().any(|e| e.to_string().contains(s))
        || f.actual.contains(s)
        || f.hint.contains(s)
}

#[test]
fn the_generators_own_output_does_not_drift() {
    let t = golden_tree();
    let r = run(t.path());
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.verdict().exit_code(), 0);
    let read: usize = r.artefacts.iter().map(|a| a.files.len()).sum();
    // dnsmasq.conf + records, gateway site, dynamic file, three firewall files.
    assert_eq!(read, 7);
}

#[test]
fn a_gateway_proxying_to_another_port_is_a_hand_edit_at_its_line() {
    let t = golden_tree();
    let site = "lxc-101/etc/nginx/sites-enabled/gateway";
    edit(
        t.path(),
        site,
        "proxy_pass http://10.0.0.12:80;",
        "proxy_pass http://10.0.0.12:8081;",
    );
    let r = run(t.path());
    let f = only(&r);
    assert_eq!(f.code, "PD-DRIFT-003");
    // Line 13 of GATEWAY_SITE holds proxy_pass.
    assert!(
        has(
            f,
            "lxc:101 /etc/nginx/sites-enabled/gateway:13: proxy_pass http://10.0.0.12:8081;"
        ),
        "{f:#?}"
    );
    assert!(has(f, "looks like a hand edit"), "{f:#?}");
    assert!(f.hint.contains("generate_nginx_gateway_config.sh"));
    // The config side: LXC 102's address in phoenix_lxc_configs.json.
    assert!(f
        .provenance
        .iter()
        .any(|p| p.file == "etc/phoenix_lxc_configs.json"
            && p.pointer == "/lxc_configs/102/network_config/ip"
            && p.line.is_some()));
    assert_eq!(r.verdict().exit_code(), 1);
}

#[test]
fn an_upstream_block_to_an_older_generators_target_is_stale() {
    let t = golden_tree();
    let site = "lxc-101/etc/nginx/sites-enabled/gateway";
    edit(
        t.path(),
        site,
        "server {\n    listen 80;",
        "upstream traefik {\n    server 10.0.0.12:8443;\n}\nserver {\n    listen 80;",
    );
    edit(
        t.path(),
        site,
        "proxy_pass http://10.0.0.12:80;",
        "proxy_pass https://traefik;",
    );
    let f = &only(&run(t.path())).clone();
    assert_eq!(f.code, "PD-DRIFT-003");
    assert!(has(f, "gateway:2:"), "the upstream server line: {f:#?}");
    assert!(has(f, "https://10.0.0.12:8443"));
    assert!(has(f, "looks like a stale file"), "{f:#?}");
}

#[test]
fn a_changed_record_and_a_leftover_record_are_two_dns_drifts() {
    let t = golden_tree();
    let rec = "host/etc/dnsmasq.d/00-phoenix-internal.conf";
    edit(
        t.path(),
        rec,
        "address=/qdrant.internal.thinkheads.ai/10.0.0.153",
        "address=/qdrant.internal.thinkheads.ai/10.0.0.99",
    );
    let extra = "host/etc/dnsmasq.d/50-hand.conf";
    std::fs::write(
        t.path().join(extra),
        "# mine\nhost-record=old.internal.thinkheads.ai,10.0.0.77\n",
    )
    .unwrap();
    let r = run(t.path());
    assert_eq!(r.findings.len(), 2, "{:#?}", r.findings);
    let a = &r.findings[0];
    assert_eq!(a.code, "PD-DRIFT-001");
    assert_eq!(a.subjects, ["qdrant.internal.thinkheads.ai"]);
    // Line 20 of the golden file is qdrant's record (a header and 18 records before it).
    assert!(
        has(
            a,
            "00-phoenix-internal.conf:20: address=/qdrant.internal.thinkheads.ai/10.0.0.99"
        ),
        "{a:#?}"
    );
    assert!(has(a, "looks like a stale file"));
    assert!(a
        .provenance
        .iter()
        .any(|p| p.file == "stacks/qdrant_service/phoenix.json"));
    let b = &r.findings[1];
    assert_eq!(b.code, "PD-DRIFT-002");
    assert!(
        has(
            b,
            "50-hand.conf:2: host-record=old.internal.thinkheads.ai,10.0.0.77"
        ),
        "{b:#?}"
    );
    assert!(has(b, "looks like a hand edit"), "{b:#?}");
}

/// The reference config's upstream_servers are 8.8.8.8 then 1.1.1.1 (phoenix_hypervisor_config.json
/// lines 371-372); the DNS setup writes one `server=` line for each, in that order, with
/// strict-order. Replacing 1.1.1.1 by 9.9.9.9 in /etc/dnsmasq.conf (line 5) is two drifts: the
/// configured upstream missing, located at its JSON pointer, and the foreign one at its line.
/// Swapping the two lines is one drift: the order.
#[test]
fn dnsmasq_upstream_servers_are_compared_with_upstream_servers() {
    let t = golden_tree();
    let main = "host/etc/dnsmasq.conf";
    edit(t.path(), main, "server=1.1.1.1", "server=9.9.9.9");
    let r = run(t.path());
    assert_eq!(r.findings.len(), 2, "{:#?}", r.findings);
    let missing = &r.findings[0];
    assert_eq!(missing.code, "PD-DRIFT-007");
    assert_eq!(missing.subjects, ["1.1.1.1"]);
    assert!(missing.expected.contains("server=1.1.1.1"), "{missing:#?}");
    assert!(
        missing
            .provenance
            .iter()
            .any(|p| p.file == "etc/phoenix_hypervisor_config.json"
                && p.pointer == "/dns_server/upstream_servers/1"
                && p.line == Some(372)),
        "{missing:#?}"
    );
    let extra = &r.findings[1];
    assert_eq!(extra.code, "PD-DRIFT-007");
    assert!(
        has(extra, "host /etc/dnsmasq.conf:5: server=9.9.9.9"),
        "{extra:#?}"
    );
    assert!(has(extra, "hypervisor_feature_setup_dns_server.sh"));
    assert_eq!(r.verdict().exit_code(), 1);

    let t = golden_tree();
    edit(
        t.path(),
        main,
        "server=8.8.8.8\nserver=1.1.1.1",
        "server=1.1.1.1\nserver=8.8.8.8",
    );
    let r = run(t.path());
    let f = only(&r);
    assert_eq!(f.code, "PD-DRIFT-007");
    assert!(f.actual.contains("in the order 1.1.1.1, 8.8.8.8"), "{f:#?}");
    assert!(has(f, "/etc/dnsmasq.conf:4"), "{f:#?}");
}

/// The manifest's gateway entry writes /mnt/pve/quickOS/lxc-persistent-data/101/ssl/
/// nginx.internal.thinkheads.ai.{crt,key}, which LXC 101 mounts at /etc/nginx/ssl
/// (phoenix_lxc_configs.json mount_points). A site whose ssl_certificate (line 10) names
/// another file serves a certificate the renewal never renews: one drift with both sides; a
/// site without ssl_certificate_key is one drift naming the missing directive. The key file is
/// never read (it does not even exist in the deployed tree).
#[test]
fn the_gateway_certificate_paths_are_compared_with_the_manifest() {
    let t = golden_tree();
    let site = "lxc-101/etc/nginx/sites-enabled/gateway";
    edit(
        t.path(),
        site,
        "ssl_certificate /etc/nginx/ssl/nginx.internal.thinkheads.ai.crt;",
        "ssl_certificate /etc/nginx/ssl/selfsigned.crt;",
    );
    let r = run(t.path());
    let f = only(&r);
    assert_eq!(f.code, "PD-DRIFT-008");
    assert!(
        has(f, "lxc:101 /etc/nginx/sites-enabled/gateway:10: ssl_certificate /etc/nginx/ssl/selfsigned.crt;"),
        "{f:#?}"
    );
    assert!(
        f.expected
            .contains("ssl_certificate /etc/nginx/ssl/nginx.internal.thinkheads.ai.crt;")
            && f.expected.contains(
                "/mnt/pve/quickOS/lxc-persistent-data/101/ssl/nginx.internal.thinkheads.ai.crt"
            ),
        "{f:#?}"
    );
    assert!(
        f.provenance
            .iter()
            .any(|p| p.file == "etc/certificate-manifest.json"
                && p.pointer == "/0/cert_path"
                && p.line == Some(8)),
        "{f:#?}"
    );
    assert_eq!(r.verdict().exit_code(), 1);

    let t = golden_tree();
    edit(
        t.path(),
        site,
        "    ssl_certificate_key /etc/nginx/ssl/nginx.internal.thinkheads.ai.key;\n",
        "",
    );
    let f = only(&run(t.path())).clone();
    assert_eq!(f.code, "PD-DRIFT-008");
    assert!(
        f.actual.contains("no ssl_certificate_key directive"),
        "{f:#?}"
    );
    assert!(
        f.provenance
            .iter()
            .any(|p| p.pointer == "/0/key_path" && p.line == Some(9)),
        "{f:#?}"
    );
}

/// A PEM leaf of `life_h` hours with `left_h` left (rcgen).
fn leaf_pem(cn: &str, life_h: i64, left_h: i64) -> String {
    let mut p = rcgen::CertificateParams::new(vec![cn.to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::hours(life_h - left_h);
    p.not_after = now + time::Duration::hours(left_h);
    let key = rcgen::KeyPair::generate().unwrap();
    p.self_signed(&key).unwrap().pem()
}

/// The manifest's certificate files on the host, by hand: the gateway's 24-hour leaf with 4
/// hours left is under 40% of its life (9.6 h) although far under --warn-days; Portainer's
/// one-year certificate with 20 days left is fine at the default 14 days and close at 30; an
/// expired file is an error. The keys beside them are never read (they do not exist here).
#[test]
fn certificate_files_on_disk_close_to_expiry_are_found() {
    let t = golden_tree();
    let put = |path: &str, text: String| {
        let p = t.path().join("host").join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let gw = "/mnt/pve/quickOS/lxc-persistent-data/101/ssl/nginx.internal.thinkheads.ai.crt";
    let pt = "/mnt/pve/quickOS/vm-persistent-data/1001/portainer/certs/portainer.crt";
    put(gw, leaf_pem("nginx.internal.thinkheads.ai", 24, 4));
    put(
        pt,
        leaf_pem("portainer.internal.thinkheads.ai", 365 * 24, 20 * 24),
    );
    let r = run(t.path());
    let f = only(&r);
    assert_eq!(f.code, "PD-DRIFT-009");
    assert_eq!(f.severity, phoenix_doctor::finding::Severity::Warning);
    assert!(f.actual.contains(gw), "{f:#?}");
    assert!(f
        .provenance
        .iter()
        .any(|p| p.file == "etc/certificate-manifest.json" && p.pointer == "/0/cert_path"));
    assert_eq!(r.verdict().exit_code(), 0, "a warning only");

    let m = model::load(&config_dir(), None).unwrap();
    let ctx = Ctx {
        warn_days: 30,
        ..Ctx::for_config(&m)
    };
    let src = DirSource {
        root: t.path().to_path_buf(),
    };
    let r = deployed::drift(&m, &src, &ctx);
    assert_eq!(r.findings.len(), 2, "{:#?}", r.findings);
    assert!(r.findings.iter().any(|f| f.actual.contains(pt)));

    put(gw, leaf_pem("nginx.internal.thinkheads.ai", 24, -1));
    put(
        pt,
        leaf_pem("portainer.internal.thinkheads.ai", 365 * 24, 200 * 24),
    );
    let r = run(t.path());
    let f = only(&r);
    assert_eq!(f.severity, phoenix_doctor::finding::Severity::Error);
    assert!(f.title.contains("expired"), "{f:#?}");
    assert_eq!(r.verdict().exit_code(), 1);
}

#[test]
fn a_records_file_older_than_the_config_is_a_generator_not_re_run() {
    let t = golden_tree();
    let rec = t.path().join("host/etc/dnsmasq.d/00-phoenix-internal.conf");
    edit(
        t.path(),
        "host/etc/dnsmasq.d/00-phoenix-internal.conf",
        "\naddress=/qdrant.internal.thinkheads.ai/10.0.0.153",
        "",
    );
    let f = std::fs::File::options().write(true).open(&rec).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(86_400))
        .unwrap();
    let r = run(t.path());
    let f = only(&r);
    assert_eq!(f.code, "PD-DRIFT-001");
    assert!(f
        .actual
        .contains("no address= or host-record= line for qdrant.internal.thinkheads.ai"));
    assert!(has(f, "looks like a generator not re-run"), "{f:#?}");
    assert!(has(f, "hypervisor_feature_setup_dns_server.sh"));
}

#[test]
fn a_hand_edited_router_rule_and_a_firewall_rule_are_found_at_their_lines() {
    let t = golden_tree();
    let dynf = "lxc-102/etc/traefik/dynamic/dynamic_conf.yml";
    edit(
        t.path(),
        dynf,
        "rule: \"Host(`ollama.internal.thinkheads.ai`)\"",
        "rule: \"Host(`ollama.internal.thinkheads.ai`) && PathPrefix(`/api`)\"",
    );
    let r = run(t.path());
    let f = only(&r);
    assert_eq!(f.code, "PD-DRIFT-004");
    // ollama-router is the sixth router: its rule is on line 29 of the golden file.
    assert!(has(f, "dynamic_conf.yml:29:"), "{f:#?}");
    assert!(has(f, "looks like a hand edit"));
    let t = golden_tree();
    let fw = "host/etc/pve/firewall/cluster.fw";
    edit(
        t.path(),
        fw,
        "IN ACCEPT -p tcp -dport 6334 # Allow access to Qdrant gRPC API",
        "IN ACCEPT -p tcp -dport 6335 # Allow access to Qdrant gRPC API",
    );
    let f = only(&run(t.path())).clone();
    assert_eq!(f.code, "PD-DRIFT-005");
    assert!(
        has(&f, "cluster.fw:50: IN ACCEPT -p tcp -dport 6335"),
        "{f:#?}"
    );
    assert!(
        f.actual
            .contains("-dport 6334 # Allow access to Qdrant gRPC API` is not deployed"),
        "{f:#?}"
    );
}

#[test]
fn an_unreadable_file_cannot_be_judged_and_a_bad_dir_is_an_input_error() {
    let t = golden_tree();
    let rec = t.path().join("host/etc/dnsmasq.d/00-phoenix-internal.conf");
    std::fs::remove_file(&rec).unwrap();
    std::fs::create_dir(&rec).unwrap();
    let out = Command::cargo_bin("phoenix-doctor")
        .unwrap()
        .args(["drift", "--format", "json", "--deployed"])
        .arg(t.path())
        .arg("--config-dir")
        .arg(config_dir())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "cannot-judge");
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["PD-DRIFT-006"]);
    let out = Command::cargo_bin("phoenix-doctor")
        .unwrap()
        .args(["drift", "--deployed", "/nonexistent/x"])
        .arg("--config-dir")
        .arg(config_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--deployed /nonexistent/x: not a directory")
    );
}

#[test]
fn drift_prints_every_report_format() {
    let t = golden_tree();
    edit(
        t.path(),
        "lxc-101/etc/nginx/sites-enabled/gateway",
        ":80;",
        ":81;",
    );
    for (format, needle) in [
        ("table", "PD-DRIFT-003"),
        ("junit", "<testsuite"),
        ("github", "::error"),
        ("nagios", "CRITICAL"),
        ("prometheus", "phoenix_doctor"),
        ("mermaid", "sequenceDiagram"),
    ] {
        let out = Command::cargo_bin("phoenix-doctor")
            .unwrap()
            .args(["drift", "--format", format, "--deployed"])
            .arg(t.path())
            .arg("--config-dir")
            .arg(config_dir())
            .env("COLUMNS", "200")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(needle), "{format}: {text}");
        assert_ne!(out.status.code(), Some(0), "{format}");
    }
}

fn pcfg() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(pcfg())]

    #[test]
    fn parsers_never_panic_on_hostile_text(s in "(?s).{0,600}") {
        let _ = deployed::dnsmasq::parse("f", &s);
        let _ = deployed::pvefw::parse("f", &s);
        if let Ok(d) = deployed::nginx::parse("f", &s) {
            let site = deployed::nginx::site(&d);
            let _ = site.server_for("a.b", 443);
        }
        let _ = deployed::traefik::parse("f", &s);
    }

    #[test]
    fn mutated_generator_files_never_panic(cut in 0usize..4000, insert in "[{};#\"'`:\\-\\n \\[\\]a-z0-9/=.,*]{0,40}") {
        for name in ["00-phoenix-internal.conf", "dynamic_conf.yml", "cluster.fw"] {
            let text = std::fs::read_to_string(root().join("fixtures/golden").join(name)).unwrap();
            let at = text.char_indices().map(|(i, _)| i).nth(cut % text.chars().count().max(1)).unwrap_or(0);
            let mutated = format!("{}{insert}{}", &text[..at], &text[at..]);
            let _ = deployed::dnsmasq::parse(name, &mutated);
            let _ = deployed::pvefw::parse(name, &mutated);
            let _ = deployed::traefik::parse(name, &mutated);
            let site = format!("{}{insert}{}", &GATEWAY_SITE[..cut % GATEWAY_SITE.len()], &GATEWAY_SITE[cut % GATEWAY_SITE.len()..]);
            if let Ok(d) = deployed::nginx::parse("gateway", &site) {
                let _ = deployed::nginx::site(&d).server_for("nginx.internal.thinkheads.ai", 443);
            }
        }
    }
}
