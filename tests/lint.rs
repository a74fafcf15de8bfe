//! `lint`: every rule fires on a config that has its defect and stays quiet on one that does
//! not (the reference config, edited in a temp dir), the reference config reports the platform's
//! real defects, the output formats and exit codes, and docs/findings.md matches the catalogue.

use assert_cmd::Command;
use phoenix_doctor::finding::{Finding, Origin, Severity};
use phoenix_doctor::{diagnose, lint, model};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/configs/reference")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// A copy of the reference config (etc + stacks) in a temp dir, to edit.
struct Cfg {
    dir: tempfile::TempDir,
}

impl Cfg {
    fn reference() -> Cfg {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&reference_dir(), dir.path());
        Cfg { dir }
    }

    fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    /// Edit a JSON file below the config root (`etc/...` or `stacks/...`).
    fn edit(self, file: &str, f: impl FnOnce(&mut Value)) -> Cfg {
        let p = self.dir.path().join(file);
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
        self
    }

    fn lxc(self, id: &str, f: impl FnOnce(&mut Value)) -> Cfg {
        self.edit("etc/phoenix_lxc_configs.json", |v| {
            f(&mut v["lxc_configs"][id])
        })
    }

    fn vm(self, id: u64, f: impl FnOnce(&mut Value)) -> Cfg {
        self.edit("etc/phoenix_vm_configs.json", |v| {
            let vm = v["vms"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|x| x["vmid"] == json!(id))
                .expect("vm in the reference config");
            f(vm)
        })
    }

    fn text(self, file: &str, f: impl FnOnce(String) -> String) -> Cfg {
        let p = self.dir.path().join(file);
        let t = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, f(t)).unwrap();
        self
    }

    fn lint(&self) -> Vec<Finding> {
        lint::run(&model::load(&self.etc(), None).expect("the edited config loads"))
    }
}

fn reference_findings() -> Vec<Finding> {
    lint::run(&model::load(&reference_dir().join("etc"), None).unwrap())
}

fn has(fs: &[Finding], code: &str, subject: &str) -> bool {
    fs.iter()
        .any(|f| f.code == code && f.subjects.iter().any(|s| s == subject))
}

fn count(fs: &[Finding], code: &str) -> usize {
    fs.iter().filter(|f| f.code == code).count()
}

fn get<'a>(fs: &'a [Finding], code: &str, subject: &str) -> &'a Finding {
    fs.iter()
        .find(|f| f.code == code && f.subjects.iter().any(|s| s == subject))
        .unwrap_or_else(|| panic!("no {code} about {subject} in {:#?}", titles(fs)))
}

fn titles(fs: &[Finding]) -> Vec<String> {
    fs.iter()
        .map(|f| format!("{} {} {:?}", f.code, f.title, f.subjects))
        .collect()
}

fn rule_in(src: &str, port: &str) -> Value {
    json!({"type": "in", "action": "ACCEPT", "source": src, "proto": "tcp", "port": port, "comment": "test"})
}

fn push_rule(g: &mut Value, r: Value) {
    g["firewall"]["rules"].as_array_mut().unwrap().push(r);
}

// ---------------------------------------------------------------- the reference config

#[test]
fn reference_reports_the_platform_defects() {
    let fs = reference_findings();
    let expected = [
        ("PD-FW-002", "10.0.0.153:443"), // LAN clients, Traefik → nginx
        ("PD-FW-004", "vm:1002"),        // 1002.in from .12:9001, 102 has no out
        ("PD-FW-004", "lxc:102"),        // 102.in from .10, 103 has no out to .12
        ("PD-FW-005", "lxc:101"),
        ("PD-FW-005", "lxc:103"),
        ("PD-FW-006", "vm:1001"), // Traefik → 1001:9443 only from the stack
        ("PD-FW-007", "vm:1002"), // .13:9001 twice, qdrant twice
        ("PD-FW-007", "lxc:101"), // 101 out .12:80 twice
        ("PD-FW-007", "lxc:103"), // 103 out .153:80 three times
        ("PD-FW-008", "lxc:102"), // 102 in .10 80 ⊂ 80,443
        ("PD-DNSCFG-002", "ollama.internal.thinkheads.ai"),
        ("PD-DNSCFG-002", "granite-embedding.internal.thinkheads.ai"),
        ("PD-DNSCFG-002", "granite-3b.internal.thinkheads.ai"),
        ("PD-DNSCFG-002", "llamacpp.internal.thinkheads.ai"),
        ("PD-DNSCFG-004", "portainer.internal.thinkheads.ai"), // shadows VM name record
        ("PD-DNSCFG-005", "10.0.0.153"),
        ("PD-DNSCFG-006", "lxc:801"),
        ("PD-ROUTE-001", "10.0.0.10:9000"), // ca
        ("PD-ROUTE-001", "10.0.0.153:443"), // nginx
        ("PD-ROUTE-002", "qdrant.internal.thinkheads.ai"),
        ("PD-ROUTE-003", "qdrant.internal.thinkheads.ai"), // websecure
        ("PD-ROUTE-003", "portainer.internal.thinkheads.ai"),
        ("PD-ROUTE-004", "qdrant.internal.thinkheads.ai"), // 404
        ("PD-CERT-001", "host"),
        ("PD-CERT-001", "vm:1001"),
        ("PD-CERT-001", "vm:1002"),
        ("PD-CERT-002", "qdrant.internal.thinkheads.ai"),
        ("PD-CERT-002", "traefik.internal.thinkheads.ai"),
        ("PD-CERT-004", "10.0.0.111"),
        ("PD-CERT-005", "10.0.0.102:9001"), // agent self-signed
        ("PD-CERT-006", "portainer.internal.thinkheads.ai"),
        ("PD-CERT-006", "traefik.internal.thinkheads.ai"),
    ];
    for (code, subject) in expected {
        assert!(
            has(&fs, code, subject),
            "expected {code} about {subject}; got {:#?}",
            titles(&fs)
        );
    }
    // What the reference config does not have.
    for code in [
        "PD-FW-001",
        "PD-FW-003",
        "PD-DNSCFG-001",
        "PD-DNSCFG-003",
        "PD-ROUTE-005",
        "PD-ROUTE-006",
        "PD-ROUTE-007",
        "PD-CERT-003",
        "PD-LINT-001",
        "PD-LINT-002",
        "PD-LINT-003",
        "PD-LINT-004",
    ] {
        assert_eq!(count(&fs, code), 0, "{code}: {:#?}", titles(&fs));
    }
    // D1 (Traefik → CA) is allowed by 103.in from .12.
    assert!(!has(&fs, "PD-CERT-001", "lxc:102"));
    // portainer-agent and ca are meant to resolve to the guests themselves.
    assert!(!has(
        &fs,
        "PD-DNSCFG-002",
        "portainer-agent.internal.thinkheads.ai"
    ));
    assert!(!has(&fs, "PD-DNSCFG-002", "ca.internal.thinkheads.ai"));
}

#[test]
fn every_finding_is_static_documented_and_traceable() {
    let fs = reference_findings();
    assert!(!fs.is_empty());
    for f in &fs {
        let info = lint::lookup(&f.code).unwrap_or_else(|| panic!("{} not in catalog", f.code));
        assert_eq!(f.origin, Origin::Static, "{}", f.code);
        assert!(
            f.hop.is_empty(),
            "{}: a static finding is not a traced hop",
            f.code
        );
        assert!(!f.expected.is_empty(), "{} has no expected", f.code);
        assert!(!f.actual.is_empty(), "{} has no actual", f.code);
        assert!(!f.hint.is_empty(), "{} has no hint", f.code);
        assert!(!f.subjects.is_empty(), "{} has no subjects", f.code);
        assert!(!f.provenance.is_empty(), "{} has no provenance", f.code);
        assert!(
            f.severity >= info.severity || f.code == "PD-CERT-001",
            "{}",
            f.code
        );
        assert_eq!(f.layer, info.layer, "{}", f.code);
    }
    // Provenance points at config lines.
    let f = get(&fs, "PD-DNSCFG-005", "10.0.0.153");
    let p = &f.provenance[0];
    assert_eq!(p.file, "etc/phoenix_hypervisor_config.json");
    assert_eq!(p.pointer, "/network/interfaces/dns_nameservers/0");
    assert!(p.line.is_some());
    let f = get(&fs, "PD-CERT-004", "10.0.0.111");
    assert_eq!(f.provenance[0].file, "etc/certificate-manifest.json");
}

#[test]
fn catalog_covers_every_code_once_and_explain_knows_them() {
    let codes: Vec<&str> = lint::catalog().iter().map(|c| c.code).collect();
    let mut sorted = codes.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), codes.len(), "duplicate codes");
    for c in lint::catalog() {
        assert!(
            diagnose::catalog::lookup(c.code).is_none(),
            "{} clashes with a live code",
            c.code
        );
        assert!(!c.meaning.is_empty() && !c.confirm.is_empty() && !c.fix.is_empty());
    }
    let out = Command::cargo_bin("phoenix-doctor")
        .unwrap()
        .args(["explain", "PD-ROUTE-001"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Traefik sends plain HTTP to a TLS port"),
        "{text}"
    );
}

// ---------------------------------------------------------------- firewall

#[test]
fn fw_001_enforced_vm_drops_a_documented_hop() {
    // Without the stack rules, nothing on 1001 accepts Traefik on :9443 (policy_in DROP).
    let fs = Cfg::reference()
        .vm(1001, |v| v["docker_stacks"] = json!([]))
        .lint();
    let f = get(&fs, "PD-FW-001", "10.0.0.111:9443");
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.evidence.iter().any(|e| e
            .to_string()
            .starts_with("documented hop router-backend (docs/platform.md):")),
        "{:?}",
        f.evidence
    );
    assert!(f.subjects.contains(&"lxc:102".to_string()));
    assert!(f.subjects.contains(&"vm:1001".to_string()));
    assert_eq!(count(&reference_findings(), "PD-FW-001"), 0);
}

#[test]
fn fw_002_unenforced_lxc_misses_a_hop() {
    let fs = reference_findings();
    let f = get(&fs, "PD-FW-002", "lxc:101");
    assert_eq!(f.severity, Severity::Warning);
    assert!(fs
        .iter()
        .any(|f| f.code == "PD-FW-002" && f.title.contains("LAN client")));
    assert!(has(&fs, "PD-FW-002", "lxc:102"), "Traefik → nginx :443");
    // A rule for Traefik alone closes only its gap; one for the whole subnet closes both.
    let fs = Cfg::reference()
        .lxc("101", |g| push_rule(g, rule_in("10.0.0.12", "443")))
        .lint();
    assert!(!has(&fs, "PD-FW-002", "lxc:102"));
    assert_eq!(count(&fs, "PD-FW-002"), 1);
    let fs = Cfg::reference()
        .lxc("101", |g| push_rule(g, rule_in("10.0.0.0/24", "443")))
        .lint();
    assert_eq!(count(&fs, "PD-FW-002"), 0, "{:#?}", titles(&fs));
}

#[test]
fn fw_003_source_policy_out_drop() {
    let fs = Cfg::reference()
        .edit("etc/phoenix_hypervisor_config.json", |v| {
            v["shared_volumes"]["firewall"]["default_output_policy"] = json!("DROP")
        })
        .vm(1001, |g| g["firewall"]["rules"] = json!([]))
        .lxc("102", |g| g["firewall"]["rules"] = json!([]))
        .lint();
    let f = get(&fs, "PD-FW-003", "10.0.0.111:9443");
    assert!(f.subjects.contains(&"host".to_string()));
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(count(&reference_findings(), "PD-FW-003"), 0);
}

#[test]
fn fw_004_one_sided_rule() {
    assert!(has(&reference_findings(), "PD-FW-004", "lxc:103"));
    // Give 103 the OUT rule that matches 102.in from .10.
    let fs = Cfg::reference()
        .lxc("103", |g| {
            push_rule(
                g,
                json!({"type": "out", "action": "ACCEPT", "dest": "10.0.0.12", "proto": "tcp", "port": "80,443"}),
            )
        })
        .lint();
    assert!(!has(&fs, "PD-FW-004", "lxc:103"), "{:#?}", titles(&fs));
    assert!(has(&fs, "PD-FW-004", "vm:1002"));
}

#[test]
fn fw_005_lxc_rules_not_enforced() {
    assert!(has(&reference_findings(), "PD-FW-005", "lxc:101"));
    let fs = Cfg::reference()
        .lxc("101", |g| {
            g.as_object_mut().unwrap().remove("firewall");
        })
        .lint();
    assert!(!has(&fs, "PD-FW-005", "lxc:101"));
    assert!(has(&fs, "PD-FW-005", "lxc:102"));
}

#[test]
fn fw_006_hop_allowed_only_by_stack_rule() {
    assert!(has(&reference_findings(), "PD-FW-006", "lxc:102"));
    let fs = Cfg::reference()
        .vm(1001, |g| push_rule(g, rule_in("10.0.0.12", "9443")))
        .lint();
    assert!(!has(&fs, "PD-FW-006", "lxc:102"), "{:#?}", titles(&fs));
    assert!(
        has(&fs, "PD-FW-006", "host"),
        "B2 still needs the stack rule"
    );
}

#[test]
fn fw_007_duplicate_rule() {
    let fs = reference_findings();
    assert!(fs.iter().any(|f| f.code == "PD-FW-007"
        && f.subjects.contains(&"vm:1002".to_string())
        && f.subjects.contains(&"10.0.0.13".to_string())));
    // 103 has OUT .153:80 three times: one finding that counts them.
    let f = get(&fs, "PD-FW-007", "lxc:103");
    assert!(f.title.contains("appears 3 times"), "{}", f.title);
    assert_eq!(f.provenance.len(), 3);
    let fs = Cfg::reference()
        .vm(1002, |g| {
            let rules = g["firewall"]["rules"].as_array_mut().unwrap();
            let first = rules
                .iter()
                .position(|r| r["source"] == json!("10.0.0.13"))
                .unwrap();
            rules.remove(first);
        })
        .lint();
    assert!(!fs
        .iter()
        .any(|f| f.code == "PD-FW-007" && f.subjects.contains(&"10.0.0.13".to_string())));
}

#[test]
fn fw_008_rule_covered_by_another() {
    assert!(has(&reference_findings(), "PD-FW-008", "lxc:102"));
    let fs = Cfg::reference()
        .lxc("102", |g| {
            let rules = g["firewall"]["rules"].as_array_mut().unwrap();
            rules.retain(|r| !(r["source"] == json!("10.0.0.10") && r["port"] == json!("80")));
        })
        .lint();
    assert!(!has(&fs, "PD-FW-008", "lxc:102"));
    // A network rule covers a host rule too.
    let fs = Cfg::reference()
        .lxc("101", |g| {
            push_rule(g, rule_in("10.0.0.0/24", "443"));
        })
        .lint();
    assert!(has(&fs, "PD-FW-008", "lxc:101"), "{:#?}", titles(&fs));
}

// ---------------------------------------------------------------- DNS

#[test]
fn dnscfg_001_no_gateway_no_records() {
    let fs = Cfg::reference()
        .lxc("101", |g| g["name"] = json!("Nginx-Gateway"))
        .lint();
    let f = get(&fs, "PD-DNSCFG-001", "10.0.0.13");
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(count(&reference_findings(), "PD-DNSCFG-001"), 0);
}

#[test]
fn dnscfg_002_route_name_bypasses_gateway() {
    assert!(has(
        &reference_findings(),
        "PD-DNSCFG-002",
        "ollama.internal.thinkheads.ai"
    ));
    let fs = Cfg::reference()
        .lxc("914", |g| {
            g.as_object_mut().unwrap().remove("traefik_service");
        })
        .lint();
    assert!(!has(&fs, "PD-DNSCFG-002", "ollama.internal.thinkheads.ai"));
    assert!(has(&fs, "PD-DNSCFG-002", "llamacpp.internal.thinkheads.ai"));
}

#[test]
fn dnscfg_003_agent_name_sent_to_gateway() {
    // a record from an earlier rule (a stack label → gateway) wins over the agent's own.
    let fs = Cfg::reference()
        .edit("stacks/qdrant_service/phoenix.json", |v| {
            v["environments"]["production"]["services"]["qdrant"]["traefik_labels"]
                .as_array_mut()
                .unwrap()
                .push(json!(
                    "traefik.http.routers.agent.rule=Host(`portainer-agent.internal.thinkheads.ai`)"
                ));
        })
        .lint();
    let f = get(
        &fs,
        "PD-DNSCFG-003",
        "portainer-agent.internal.thinkheads.ai",
    );
    assert!(f.subjects.contains(&"vm:1002".to_string()));
    assert!(f.actual.contains("10.0.0.153"), "{}", f.actual);
    // The CA moved away from the address the generator hard-codes.
    let fs = Cfg::reference()
        .lxc("103", |g| g["network_config"]["ip"] = json!("10.0.0.11/24"))
        .lint();
    assert!(has(&fs, "PD-DNSCFG-003", "lxc:103"), "{:#?}", titles(&fs));
    assert_eq!(count(&reference_findings(), "PD-DNSCFG-003"), 0);
}

#[test]
fn dnscfg_004_record_shadowed() {
    let f = get(
        &reference_findings(),
        "PD-DNSCFG-004",
        "portainer.internal.thinkheads.ai",
    )
    .clone();
    assert!(f.subjects.contains(&"vm:1001".to_string()));
    assert!(f.subjects.contains(&"10.0.0.111".to_string()));
    let fs = Cfg::reference()
        .vm(1001, |g| g["name"] = json!("Portainer-VM"))
        .lint();
    assert_eq!(count(&fs, "PD-DNSCFG-004"), 0, "{:#?}", titles(&fs));
}

#[test]
fn dnscfg_005_nameserver_is_not_a_dns_server() {
    assert!(has(&reference_findings(), "PD-DNSCFG-005", "10.0.0.153"));
    let fs = Cfg::reference()
        .edit("etc/phoenix_hypervisor_config.json", |v| {
            v["network"]["interfaces"]["dns_nameservers"] = json!(["10.0.0.13", "8.8.8.8"])
        })
        .lint();
    assert_eq!(count(&fs, "PD-DNSCFG-005"), 0);
}

#[test]
fn dnscfg_006_guest_without_internal_dns() {
    assert!(has(&reference_findings(), "PD-DNSCFG-006", "lxc:801"));
    let fs = Cfg::reference()
        .lxc("801", |g| {
            g["network_config"]["nameservers"] = json!("10.0.0.13")
        })
        .lint();
    assert!(!has(&fs, "PD-DNSCFG-006", "lxc:801"));
    assert!(has(&fs, "PD-DNSCFG-006", "lxc:802"));
}

// ---------------------------------------------------------------- routes

#[test]
fn route_001_plain_http_to_tls_port() {
    assert!(has(&reference_findings(), "PD-ROUTE-001", "lxc:103"));
    let fs = Cfg::reference()
        .lxc("103", |g| {
            g.as_object_mut().unwrap().remove("traefik_service");
        })
        .lint();
    assert!(!has(&fs, "PD-ROUTE-001", "lxc:103"));
    assert!(has(&fs, "PD-ROUTE-001", "lxc:101"));
}

const DOCKER_PROVIDER: &str = "\n  docker:\n    exposedByDefault: false\n";

#[test]
fn route_002_labels_without_provider() {
    assert!(has(
        &reference_findings(),
        "PD-ROUTE-002",
        "qdrant.internal.thinkheads.ai"
    ));
    let fs = Cfg::reference()
        .text("etc/traefik/traefik.yml.template", |t| t + DOCKER_PROVIDER)
        .lint();
    assert_eq!(count(&fs, "PD-ROUTE-002"), 0, "{:#?}", titles(&fs));
}

#[test]
fn route_003_label_references_undefined_entrypoint() {
    assert!(has(
        &reference_findings(),
        "PD-ROUTE-003",
        "qdrant.internal.thinkheads.ai"
    ));
    let fs = Cfg::reference()
        .edit("stacks/qdrant_service/phoenix.json", |v| {
            let labels = v["environments"]["production"]["services"]["qdrant"]["traefik_labels"]
                .as_array_mut()
                .unwrap();
            labels.retain(|l| !l.as_str().unwrap().contains("certresolver"));
            for l in labels.iter_mut() {
                if l.as_str().unwrap().contains("entrypoints=") {
                    *l = json!("traefik.http.routers.qdrant.entrypoints=web");
                }
            }
        })
        .lint();
    assert!(!has(&fs, "PD-ROUTE-003", "qdrant.internal.thinkheads.ai"));
    assert!(has(&fs, "PD-ROUTE-003", "portainer.internal.thinkheads.ai"));
}

#[test]
fn route_004_gateway_name_without_router() {
    assert!(has(
        &reference_findings(),
        "PD-ROUTE-004",
        "qdrant.internal.thinkheads.ai"
    ));
    // With the docker provider and a defined entrypoint the label router exists.
    let fs = Cfg::reference()
        .text("etc/traefik/traefik.yml.template", |t| t + DOCKER_PROVIDER)
        .edit("stacks/qdrant_service/phoenix.json", |v| {
            for l in v["environments"]["production"]["services"]["qdrant"]["traefik_labels"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
            {
                if l.as_str().unwrap().contains("entrypoints=") {
                    *l = json!("traefik.http.routers.qdrant.entrypoints=web");
                }
            }
        })
        .lint();
    assert_eq!(count(&fs, "PD-ROUTE-004"), 0, "{:#?}", titles(&fs));
}

#[test]
fn route_005_duplicate_service_name() {
    let fs = Cfg::reference()
        .lxc("802", |g| {
            g["traefik_service"]["name"] = json!("granite-embedding")
        })
        .lint();
    let f = get(
        &fs,
        "PD-ROUTE-005",
        "granite-embedding.internal.thinkheads.ai",
    );
    assert!(f.subjects.contains(&"lxc:801".to_string()));
    assert!(f.subjects.contains(&"lxc:802".to_string()));
    assert_eq!(count(&reference_findings(), "PD-ROUTE-005"), 0);
}

#[test]
fn route_006_gateway_upstream_not_an_entrypoint() {
    // the old template had websecure :8443 and no web :80.
    let fs = Cfg::reference()
        .text("etc/traefik/traefik.yml.template", |t| {
            t.replace(
                "  web:\n    address: \":80\"",
                "  websecure:\n    address: \":8443\"",
            )
        })
        .lint();
    assert!(has(&fs, "PD-ROUTE-006", "lxc:102"), "{:#?}", titles(&fs));
    assert!(has(&fs, "PD-ROUTE-007", "lxc:102"));
    assert_eq!(count(&reference_findings(), "PD-ROUTE-006"), 0);
}

#[test]
fn route_007_generator_hard_codes_traefik_address() {
    let fs = Cfg::reference()
        .lxc("102", |g| g["network_config"]["ip"] = json!("10.0.0.14/24"))
        .lint();
    let f = get(&fs, "PD-ROUTE-007", "10.0.0.14");
    assert!(f.actual.contains("10.0.0.12:80"));
    assert_eq!(count(&fs, "PD-ROUTE-006"), 0);
    assert_eq!(count(&reference_findings(), "PD-ROUTE-007"), 0);
}

// ---------------------------------------------------------------- certificates

#[test]
fn cert_001_renewing_client_cannot_reach_ca() {
    let fs = reference_findings();
    let f = get(&fs, "PD-CERT-001", "host");
    assert!(f.subjects.contains(&"10.0.0.10:9000".to_string()));
    let fs = Cfg::reference()
        .lxc("103", |g| push_rule(g, rule_in("10.0.0.13", "9000")))
        .lint();
    assert!(!has(&fs, "PD-CERT-001", "host"));
    assert!(has(&fs, "PD-CERT-001", "vm:1001"));
}

#[test]
fn cert_002_gateway_certificate_misses_names() {
    let f = get(
        &reference_findings(),
        "PD-CERT-002",
        "qdrant.internal.thinkheads.ai",
    )
    .clone();
    assert!(!f
        .subjects
        .contains(&"portainer.internal.thinkheads.ai".to_string()));
    let fs = Cfg::reference()
        .edit("etc/certificate-manifest.json", |v| {
            v[0]["sans"].as_array_mut().unwrap().extend([
                json!("qdrant.internal.thinkheads.ai"),
                json!("traefik.internal.thinkheads.ai"),
            ]);
        })
        .lint();
    assert_eq!(count(&fs, "PD-CERT-002"), 0);
    // A wildcard SAN covers one label.
    let fs = Cfg::reference()
        .edit("etc/certificate-manifest.json", |v| {
            v[0]["sans"] = json!(["*.internal.thinkheads.ai"]);
        })
        .lint();
    assert_eq!(count(&fs, "PD-CERT-002"), 0);
}

#[test]
fn cert_003_no_manifest_entry_for_gateway() {
    let fs = Cfg::reference()
        .edit("etc/certificate-manifest.json", |v| {
            v.as_array_mut().unwrap().remove(0);
        })
        .lint();
    assert!(has(&fs, "PD-CERT-003", "lxc:101"));
    assert_eq!(count(&reference_findings(), "PD-CERT-003"), 0);
}

#[test]
fn cert_004_backend_certificate_lacks_ip_san() {
    assert!(has(&reference_findings(), "PD-CERT-004", "vm:1001"));
    let fs = Cfg::reference()
        .edit("etc/certificate-manifest.json", |v| {
            v[1]["sans"] = json!(["portainer.internal.thinkheads.ai", "10.0.0.111"]);
        })
        .lint();
    assert_eq!(count(&fs, "PD-CERT-004"), 0);
    assert!(!has(&fs, "PD-CERT-006", "portainer.internal.thinkheads.ai"));
}

#[test]
fn cert_005_https_backend_without_certificate() {
    assert!(has(&reference_findings(), "PD-CERT-005", "vm:1002"));
    let fs = Cfg::reference()
        .edit("etc/certificate-manifest.json", |v| {
            v.as_array_mut().unwrap().push(json!({
                "common_name": "portainer-agent.internal.thinkheads.ai",
                "sans": ["portainer-agent.internal.thinkheads.ai", "10.0.0.102"],
                "cert_path": "/mnt/pve/quickOS/vm-persistent-data/1002/agent.crt",
                "key_path": "/mnt/pve/quickOS/vm-persistent-data/1002/agent.key"
            }));
        })
        .lint();
    assert_eq!(count(&fs, "PD-CERT-005"), 0);
    assert_eq!(
        count(&fs, "PD-CERT-004"),
        1,
        "only portainer's entry lacks its IP"
    );
}

#[test]
fn cert_006_entry_without_sans() {
    assert!(has(
        &reference_findings(),
        "PD-CERT-006",
        "traefik.internal.thinkheads.ai"
    ));
    assert!(!has(
        &reference_findings(),
        "PD-CERT-006",
        "nginx.internal.thinkheads.ai"
    ));
    let fs = Cfg::reference()
        .edit("etc/certificate-manifest.json", |v| {
            v[2]["sans"] = json!(["traefik.internal.thinkheads.ai"]);
        })
        .lint();
    assert!(!has(&fs, "PD-CERT-006", "traefik.internal.thinkheads.ai"));
}

// ---------------------------------------------------------------- stray addresses

#[test]
fn lint_001_address_of_no_guest() {
    // a rule kept the old Portainer address.
    let fs = Cfg::reference()
        .vm(1002, |g| push_rule(g, rule_in("10.0.0.101", "9001")))
        .lint();
    let f = get(&fs, "PD-LINT-001", "10.0.0.101");
    assert!(f.provenance[0].file.ends_with("phoenix_vm_configs.json"));
    assert_eq!(count(&reference_findings(), "PD-LINT-001"), 0);
}

// ---------------------------------------------------------------- the command

fn cli(config_dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("phoenix-doctor")
        .unwrap()
        .arg("--config-dir")
        .arg(config_dir)
        .arg("--no-color")
        .args(args)
        .env_remove("PHOENIX_DOCTOR_CONFIG_DIR")
        .env_remove("COLUMNS")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn lint_table_on_reference_snapshot() {
    let (code, out, err) = cli(&reference_dir().join("etc"), &["lint"]);
    assert_eq!(code, 1, "errors present → exit 1; stderr: {err}");
    assert!(out.starts_with("ERROR ("), "{out}");
    let e = out.find("ERROR (").unwrap();
    let w = out.find("WARNING (").unwrap();
    let i = out.find("INFO (").unwrap();
    assert!(e < w && w < i, "grouped by severity, errors first");
    insta::assert_snapshot!("lint_reference_table", out);
}

#[test]
fn lint_json_on_reference_snapshot() {
    let (code, out, _) = cli(&reference_dir().join("etc"), &["lint", "--format", "json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema_version"], json!(1));
    let fs: Vec<Finding> = serde_json::from_value(v["findings"].clone()).unwrap();
    assert_eq!(fs, reference_findings());
    // No secret from the configs appears.
    let hyp: Value = serde_json::from_str(
        &std::fs::read_to_string(reference_dir().join("etc/phoenix_hypervisor_config.json"))
            .unwrap(),
    )
    .unwrap();
    let password = hyp["portainer_api"]["admin_password"].as_str().unwrap();
    assert!(!password.is_empty());
    assert!(!out.contains(password) && !out.contains("admin_password"));
    insta::assert_snapshot!("lint_reference_json", out);
}

#[test]
fn lint_exit_codes() {
    // A config with no errors: exit 0.
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("phoenix_hypervisor_config.json"),
        r#"{"domain_name": "internal.thinkheads.ai",
            "network": {"interfaces": {"address": "10.0.0.13/24"}}}"#,
    )
    .unwrap();
    std::fs::write(
        etc.join("phoenix_lxc_configs.json"),
        r#"{"lxc_configs": {}}"#,
    )
    .unwrap();
    std::fs::write(etc.join("phoenix_vm_configs.json"), r#"{"vms": []}"#).unwrap();
    let (code, out, err) = cli(&etc, &["lint"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 findings"), "{out}");
    let (code, out, _) = cli(&etc, &["lint", "--format", "json"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"schema_version": 1, "findings": []})
    );
    // Bad config: exit 2 with the file and line.
    std::fs::write(
        etc.join("phoenix_vm_configs.json"),
        "{\"vms\": [\n  {,}\n]}",
    )
    .unwrap();
    let (code, _, err) = cli(&etc, &["lint"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("phoenix_vm_configs.json:2"), "{err}");
    // A format lint does not print: exit 2.
    let (code, _, err) = cli(
        &reference_dir().join("etc"),
        &["lint", "--format", "mermaid"],
    );
    assert_eq!(code, 2, "{err}");
    // Warnings only: exit 0.
    std::fs::write(etc.join("phoenix_vm_configs.json"), r#"{"vms": []}"#).unwrap();
    std::fs::write(
        etc.join("phoenix_lxc_configs.json"),
        r#"{"lxc_configs": {"150": {"name": "Box", "network_config": {"ip": "10.0.0.50/24"},
            "firewall": {"enabled": true, "rules": [{"type": "in", "action": "ACCEPT",
            "proto": "tcp", "port": "22", "source": "10.0.0.13"}]}}}}"#,
    )
    .unwrap();
    let (code, out, err) = cli(&etc, &["lint"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("PD-FW-005") && out.contains("0 errors, 1 warnings"),
        "{out}"
    );
}

// ---------------------------------------------------------------- docs

#[test]
fn docs_findings_md_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/findings.md");
    let want = phoenix_doctor::diagnose::catalog::findings_markdown();
    for c in diagnose::catalog::LIVE.iter().chain(lint::catalog()) {
        assert!(want.contains(&format!("### {}", c.code)), "{}", c.code);
    }
    assert!(want.contains("## Static findings (lint)"));
    if std::env::var("UPDATE_DOCS").as_deref() == Ok("1") {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/findings.md is stale: run UPDATE_DOCS=1 cargo test --test lint docs_findings_md_is_current"
    );
}

#[test]
fn lint_002_name_outside_the_domain() {
    let fs = Cfg::reference()
        .edit("stacks/qdrant_service/phoenix.json", |v| {
            for l in v["environments"]["production"]["services"]["qdrant"]["traefik_labels"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
            {
                if l.as_str().unwrap().contains(".rule=") {
                    *l = json!(
                        "traefik.http.routers.qdrant.rule=Host(`qdrant.phoenix.thinkheads.ai`)"
                    );
                }
            }
        })
        .lint();
    let f = get(&fs, "PD-LINT-002", "qdrant.phoenix.thinkheads.ai");
    assert!(f.provenance[0]
        .file
        .ends_with("qdrant_service/phoenix.json"));
    assert_eq!(count(&reference_findings(), "PD-LINT-002"), 0);
}

#[test]
fn fw_009_guest_rules_open_the_host() {
    let fs = reference_findings();
    let f = get(&fs, "PD-FW-009", "host");
    assert!(f.actual.contains("6333/tcp"), "{}", f.actual);
    assert!(f.actual.contains("vm:1002"), "{}", f.actual);
    // With a -dest on every guest IN rule nothing opens the host.
    let dest = |g: &mut Value, ip: &str| {
        if let Some(rules) = g["firewall"]["rules"].as_array_mut() {
            for r in rules.iter_mut().filter(|r| r["type"] == json!("in")) {
                r["dest"] = json!(ip);
            }
        }
    };
    let mut c = Cfg::reference();
    for (id, ip) in [
        ("900", "10.0.0.200"),
        ("801", "10.0.0.141"),
        ("802", "10.0.0.142"),
        ("101", "10.0.0.153"),
        ("914", "10.0.0.155"),
        ("917", "10.0.0.157"),
        ("103", "10.0.0.10"),
        ("102", "10.0.0.12"),
    ] {
        c = c.lxc(id, |g| dest(g, ip));
    }
    let fs = c
        .vm(1001, |g| dest(g, "10.0.0.111"))
        .vm(1002, |g| dest(g, "10.0.0.102"))
        .lint();
    assert_eq!(count(&fs, "PD-FW-009"), 0, "{:#?}", titles(&fs));
}

// ---------------------------------------------------------------- the lab's config

#[test]
#[cfg(feature = "lab")]
fn lint_reads_the_lab_config_with_its_own_addresses() {
    use phoenix_doctor::lab::{Lab, LabSpec};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let lab = rt
        .block_on(Lab::start(&LabSpec {
            dir: None,
            faults: vec![],
            net: 91,
        }))
        .expect("lab on 127.91.0.0/24");
    let m = model::load(lab.config_dir(), Some(lab.stacks_dir())).unwrap();
    let fs = lint::run(&m);
    // The generators' literals differ from the lab's addresses: said so, not hidden.
    let f = get(&fs, "PD-ROUTE-007", "127.91.0.12");
    assert!(f.actual.contains("10.0.0.12:80"));
    assert!(has(&fs, "PD-ROUTE-001", "127.91.0.10:9000"));
    // The synthetic LAN client lies in the lab's block and belongs to no node.
    let lan = fs
        .iter()
        .find(|f| f.code == "PD-FW-002" && f.title.contains("LAN client"))
        .expect("LAN client finding");
    let client: std::net::IpAddr = lan.subjects[0].parse().unwrap();
    assert!(client.to_string().starts_with("127.91.0."), "{client}");
    assert!(m.node_by_ip(client).is_none());
    // No finding names a 10.x address as a subject except the generators' literals.
    for f in &fs {
        for s in &f.subjects {
            assert!(
                !s.starts_with("10.") || s.starts_with("10.0.0.10") || s.starts_with("10.0.0.12"),
                "{} {s}",
                f.code
            );
        }
    }
    lab.shutdown();
}

#[test]
fn lint_003_stack_deployed_outside_production() {
    let fs = Cfg::reference()
        .vm(1002, |g| {
            g["docker_stacks"] = json!([
                "qdrant_service",
                {"name": "thinkheads_ai_app", "environment": "development"}
            ])
        })
        .lint();
    let f = get(&fs, "PD-LINT-003", "stack:thinkheads_ai_app");
    assert!(f.subjects.contains(&"vm:1002".to_string()));
    assert!(!has(&fs, "PD-LINT-003", "stack:qdrant_service"));
}

#[test]
fn lint_005_clone_loop_reported_once() {
    assert_eq!(count(&reference_findings(), "PD-LINT-005"), 0);
    // 912 clones 901, 901 clones 900; making 900 clone 912 closes a loop of three, with the
    // other containers of the file hanging off it.
    let fs = Cfg::reference()
        .lxc("900", |g| g["clone_from_ctid"] = json!("912"))
        .lint();
    assert_eq!(count(&fs, "PD-LINT-005"), 1, "{:#?}", titles(&fs));
    let f = get(&fs, "PD-LINT-005", "lxc:900");
    assert_eq!(
        f.title,
        "clone_from_ctid loops: lxc:900 → lxc:912 → lxc:901 → lxc:900"
    );
    assert_eq!(f.severity, Severity::Error);
    for s in ["lxc:900", "lxc:901", "lxc:912"] {
        assert!(f.subjects.iter().any(|x| x == s), "{s} in {:?}", f.subjects);
    }
    assert!(
        !f.subjects.iter().any(|x| x == "lxc:911"),
        "911 only hangs off the loop"
    );
}

/// A subnet written `/0` (or anything shorter than /16) would make every address a probe target:
/// it is no scope, and lint says so; the reference config's /24 is fine.
#[test]
fn lint_006_subnet_too_wide_to_be_a_scope() {
    assert_eq!(count(&reference_findings(), "PD-LINT-006"), 0);
    for wide in ["0.0.0.0/0", "10.0.0.0/8"] {
        let fs = Cfg::reference()
            .edit("etc/phoenix_hypervisor_config.json", |v| {
                v["network"]["default_subnet"] = json!(wide)
            })
            .lint();
        assert_eq!(count(&fs, "PD-LINT-006"), 1, "{wide}: {:#?}", titles(&fs));
        let f = fs.iter().find(|f| f.code == "PD-LINT-006").unwrap();
        assert!(f.title.contains(wide), "{}", f.title);
        assert_eq!(f.severity, Severity::Warning);
    }
    let fs = Cfg::reference()
        .edit("etc/phoenix_hypervisor_config.json", |v| {
            v["network"]["default_subnet"] = json!("10.0.0.0/16")
        })
        .lint();
    assert_eq!(count(&fs, "PD-LINT-006"), 0);
}

#[test]
fn lint_004_stack_without_manifest() {
    let fs = Cfg::reference()
        .vm(1002, |g| {
            g["docker_stacks"] = json!(["qdrant_service", "qdrant_servise"])
        })
        .lint();
    let f = get(&fs, "PD-LINT-004", "vm:1002");
    assert!(f.title.contains("qdrant_servise"));
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(count(&fs, "PD-LINT-004"), 1);
}

// ---------------------------------------------------------------- beside the live hops

#[test]
fn static_findings_attach_to_the_hops_they_bear_on() {
    use phoenix_doctor::engine::Run;
    use phoenix_doctor::plan;
    let m = model::load(&reference_dir().join("etc"), None).unwrap();
    let defs = plan::load_defs(None).unwrap();
    let p = plan::build(&m, &defs, "qdrant").unwrap();
    let run = Run {
        schema_version: 1,
        target: "qdrant".into(),
        started_at: String::new(),
        duration_ms: 0.0,
        observations: vec![],
    };
    let all = lint::run(&m);
    let r = diagnose::diagnose(&p, &run, &all);
    let shown: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|f| f.origin == Origin::Static)
        .collect();
    let shown_has = |code: &str, subject: &str| {
        shown
            .iter()
            .any(|f| f.code == code && f.subjects.iter().any(|s| s == subject))
    };
    // qdrant goes host → gateway → Traefik → 404: its name's defects are shown.
    assert!(shown_has("PD-ROUTE-004", "qdrant.internal.thinkheads.ai"));
    assert!(shown_has("PD-CERT-002", "qdrant.internal.thinkheads.ai"));
    // Defects of guests the trace never touches are not.
    assert!(!shown_has("PD-DNSCFG-006", "lxc:801"));
    assert!(!shown_has("PD-FW-005", "lxc:914"));
    assert!(shown.len() < all.len());
}
