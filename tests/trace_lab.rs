//! The fault matrix: for the healthy lab and for every named fault, `trace` (the real binary,
//! against the built-in lab on loopback) names the expected first divergence: hop, layer and
//! finding code. Faults seen through proxies must give exactly one root-cause finding with the
//! symptoms attached.

mod common;

use phoenix_doctor::lab::{Fault, Lab, LabHandle, LabSpec};
use serde_json::Value;
use std::process::Command;

/// fault, trace target, first divergence (hop, layer, code), seen through proxies as symptoms.
const MATRIX: &[(&str, &str, &str, &str, &str, bool)] = &[
    (
        "hosts-override",
        "qdrant",
        "router-dns",
        "dns",
        "PD-DNS-003",
        false,
    ),
    (
        "agent-dns-gateway",
        "qdrant",
        "host-dns",
        "dns",
        "PD-DNS-002",
        false,
    ),
    (
        "agent-dns-gateway",
        "agent",
        "portainer-dns",
        "dns",
        "PD-DNS-002",
        false,
    ),
    ("nxdomain", "qdrant", "host-dns", "dns", "PD-DNS-001", false),
    ("dns-down", "qdrant", "host-dns", "dns", "PD-DNS-004", false),
    (
        "resolv-nowhere",
        "qdrant",
        "router-dns",
        "dns",
        "PD-DNS-006",
        false,
    ),
    (
        "agent-moved",
        "agent",
        "portainer-agent",
        "tcp",
        "PD-TCP-001",
        false,
    ),
    (
        "cert-not-reloaded",
        "qdrant",
        "host-gateway",
        "tls",
        "PD-TLS-010",
        false,
    ),
    (
        "qdrant-down",
        "qdrant",
        "router-qdrant",
        "tcp",
        "PD-TCP-001",
        true,
    ),
    (
        "expired-leaf",
        "qdrant",
        "host-gateway",
        "tls",
        "PD-TLS-001",
        false,
    ),
    (
        "wrong-san",
        "qdrant",
        "host-gateway",
        "tls",
        "PD-TLS-002",
        false,
    ),
    (
        "untrusted-ca",
        "qdrant",
        "host-gateway",
        "tls",
        "PD-TLS-003",
        false,
    ),
    (
        "intermediate-missing",
        "qdrant",
        "host-gateway",
        "tls",
        "PD-TLS-004",
        false,
    ),
    (
        "mtls-not-enforced",
        "portainer",
        "router-portainer",
        "mtls",
        "PD-MTLS-001",
        false,
    ),
    (
        "client-cert-rejected",
        "portainer",
        "router-portainer",
        "mtls",
        "PD-MTLS-002",
        true,
    ),
    (
        "no-route",
        "qdrant",
        "gateway-router",
        "http",
        "PD-HTTP-001",
        true,
    ),
    (
        "backend-tls",
        "qdrant",
        "router-portainer",
        "tls",
        "PD-TLS-005",
        true,
    ),
    (
        "backend-tls",
        "portainer",
        "router-portainer",
        "tls",
        "PD-TLS-005",
        true,
    ),
    ("ca-down", "qdrant", "host-ca", "tcp", "PD-TCP-001", false),
    ("ca-down", "step-ca", "host-ca", "tcp", "PD-TCP-001", false),
    (
        "slow-backend",
        "qdrant",
        "router-qdrant",
        "http",
        "PD-HTTP-004",
        true,
    ),
    (
        "gateway-upstream-drifted",
        "qdrant",
        "host-gateway",
        "http",
        "PD-HTTP-005",
        false,
    ),
    (
        "dnsmasq-stale",
        "qdrant",
        "host-dns",
        "dns",
        "PD-DNS-002",
        false,
    ),
    (
        "traefik-router-hand-edited",
        "portainer",
        "gateway-router-portainer",
        "http",
        "PD-HTTP-001",
        false,
    ),
];

fn start(net: u8, faults: &[Fault]) -> (tokio::runtime::Runtime, LabHandle, tempfile::TempDir) {
    common::start_lab(net, faults)
}

fn trace(h: &LabHandle, target: &str, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["--timeout", "700ms"];
    args.extend_from_slice(extra);
    common::lab_trace(h, target, &args)
}

fn live_errors(v: &Value) -> Vec<&Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error" && f["origin"] == "live")
        .collect()
}

#[test]
fn healthy_lab_traces_healthy_for_every_target() {
    let (_rt, h, _d) = start(40, &[]);
    for target in ["qdrant", "portainer", "agent", "step-ca"] {
        let (code, v, stderr) = trace(&h, target, &[]);
        assert_eq!(v["verdict"], "healthy", "{target}: {v:#}\n{stderr}");
        assert_eq!(code, 0, "{target}");
        assert!(v["first_divergence"].is_null());
        assert!(live_errors(&v).is_empty(), "{target}: no error findings");
    }
    h.shutdown();
}

#[test]
fn every_fault_names_its_first_divergence() {
    let mut failures = Vec::new();
    // Each fault gets its own lab on its own 127.<net>.0.0/24.
    let mut faults: Vec<&str> = MATRIX.iter().map(|m| m.0).collect();
    faults.dedup();
    for (i, fault) in faults.iter().enumerate() {
        let (_rt, h, _d) = start(41 + i as u8, &[Fault::parse(fault).unwrap()]);
        for (_, target, hop, layer, code, symptoms) in MATRIX.iter().filter(|m| m.0 == *fault) {
            let (exit, v, stderr) = trace(&h, target, &[]);
            let fd = &v["first_divergence"];
            let got = (
                fd["hop"].as_str().unwrap_or("-").to_string(),
                fd["layer"].as_str().unwrap_or("-").to_string(),
                fd["code"].as_str().unwrap_or("-").to_string(),
            );
            let want = (hop.to_string(), layer.to_string(), code.to_string());
            if got != want || exit != 1 || v["verdict"] != "diverged" {
                failures.push(format!(
                    "{fault} / trace {target}: want {want:?}, got {got:?} exit {exit}\n{}\n{stderr}",
                    serde_json::to_string_pretty(&v["findings"]).unwrap()
                ));
                continue;
            }
            if *symptoms {
                let errs = live_errors(&v);
                let at_hop: Vec<_> = errs.iter().filter(|f| f["hop"] == *hop).collect();
                let has_symptom = at_hop.iter().any(|f| {
                    f["evidence"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|e| e.as_str().unwrap_or("").starts_with("symptom at "))
                });
                let others: Vec<_> = errs.iter().filter(|f| f["hop"] != *hop).collect();
                if at_hop.len() != 1 || !has_symptom || !others.is_empty() {
                    failures.push(format!(
                        "{fault} / trace {target}: expected one root cause at {hop} with symptoms attached:\n{}",
                        serde_json::to_string_pretty(&v["findings"]).unwrap()
                    ));
                }
            }
        }
        h.shutdown();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn saved_runs_replay_to_the_same_report_without_the_lab() {
    let (_rt, h, dir) = start(60, &[Fault::BackendTls]);
    let file = dir.path().join("run.json");
    let (_, live, _) = trace(&h, "qdrant", &["--save-run", file.to_str().unwrap()]);
    h.shutdown();
    let out = Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"))
        .args(["trace", "qdrant", "--format", "json", "--replay"])
        .arg(&file)
        .args(["--config-dir", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let replayed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(replayed["first_divergence"], live["first_divergence"]);
    assert_eq!(replayed["findings"], live["findings"]);
    assert_eq!(replayed["steps"], live["steps"]);
}

#[test]
fn wait_retries_until_the_platform_comes_up() {
    // Write the lab's config dir, stop the lab, start `trace --wait`, then bring the lab back:
    // the trace must turn healthy on a later attempt and say how many it took.
    let (rt, h, dir) = start(61, &[]);
    let config = h.config_dir().to_path_buf();
    let stacks = h.stacks_dir().to_path_buf();
    let scope = h.scope().allowed[0].to_string();
    rt.block_on(h.stop());
    let child = Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"))
        .args([
            "trace",
            "agent",
            "--format",
            "json",
            "--timeout",
            "300ms",
            "--wait",
            "20s",
            "--interval",
            "300ms",
        ])
        .args(["--scope", &scope])
        .arg("--config-dir")
        .arg(&config)
        .arg("--stacks-dir")
        .arg(&stacks)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let spec = LabSpec {
        dir: Some(dir.path().to_path_buf()),
        faults: vec![],
        net: 61,
    };
    let h2 = rt.block_on(Lab::start(&spec)).expect("lab restarts");
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{v:#}\n{stderr}");
    assert_eq!(v["verdict"], "healthy");
    let attempts = v["attempts"].as_u64().unwrap();
    assert!(attempts > 1, "took {attempts} attempt(s)");
    assert!(
        stderr.contains(&format!("healthy after {attempts} attempts")),
        "{stderr}"
    );
    h2.shutdown();
}

/// The hosts-file override lives only in the router guest (lxc:102). With `--vantage host` no
/// step runs there: the router's steps cannot be judged ok, so the trace is never healthy; the
/// table's headline counts the checks it could not make and names the way to make them.
#[test]
fn a_guest_only_fault_with_no_agent_in_the_guest_never_exits_0() {
    let (_rt, h, _d) = start(62, &[Fault::HostsOverride]);
    let (code, v, stderr) = trace(&h, "qdrant", &["--vantage", "host"]);
    assert_eq!(code, 3, "{v:#}\n{stderr}");
    assert_eq!(v["verdict"], "cannot-judge");
    let step = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "router-dns.dns.portainer")
        .unwrap();
    assert_eq!(step["verdict"], "cannot-judge", "{step:#}");
    assert_eq!(step["code"], "PD-RUN-003", "{step:#}");
    assert_eq!(step["vantage"]["substituted"], true);
    // Every step whose traffic starts in a guest is unjudged; the host's own are judged.
    let guest_steps: Vec<&Value> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["from"] != "host")
        .collect();
    assert!(!guest_steps.is_empty());
    for s in &guest_steps {
        assert_eq!(s["verdict"], "cannot-judge", "{s:#}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"))
        .args(["trace", "qdrant", "--vantage", "host", "--timeout", "700ms"])
        .args(["--scope", &h.scope().allowed[0].to_string()])
        .arg("--config-dir")
        .arg(h.config_dir())
        .arg("--stacks-dir")
        .arg(h.stacks_dir())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let table = String::from_utf8_lossy(&out.stdout);
    let head = table.lines().next().unwrap_or_default();
    assert!(head.contains("CANNOT-JUDGE"), "{table}");
    // The note under the headline (wrapped to the terminal's width).
    let note = table
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        note.starts_with(&format!("{} check(s) could not be made", guest_steps.len())),
        "{table}"
    );
    assert!(note.contains("--push"), "{table}");
    h.shutdown();
}

/// Two faults at once, one on the target's own request (host → gateway → Traefik → qdrant) and
/// one off it (the router's hosts file for another name, the Portainer deploy path, the CA), in
/// both chain orders. Written by hand from the faults' definitions: the headline is the fault
/// that breaks the client's request for qdrant; the other is listed after it; the verdict is
/// diverged.
#[allow(clippy::type_complexity)]
const TWO_FAULTS: &[(&[&str], (&str, &str, &str), &[(&str, &str)])] = &[
    // Off the path first in chain order (router-dns, host-dns come before router-qdrant).
    (
        &["qdrant-down", "hosts-override"],
        ("router-qdrant", "tcp", "PD-TCP-001"),
        &[("router-dns", "PD-DNS-003")],
    ),
    (
        &["agent-dns-gateway", "qdrant-down"],
        ("router-qdrant", "tcp", "PD-TCP-001"),
        &[("host-dns", "PD-DNS-002")],
    ),
    // On the path first in chain order (the deploy path and the CA come after it).
    (
        &["expired-leaf", "ca-down"],
        ("host-gateway", "tls", "PD-TLS-001"),
        &[("host-ca", "PD-TCP-001")],
    ),
    (
        &["qdrant-down", "backend-tls"],
        ("router-qdrant", "tcp", "PD-TCP-001"),
        &[("router-portainer", "PD-TLS-005")],
    ),
];

#[test]
fn two_faults_the_headline_is_the_one_that_breaks_the_target() {
    let mut failures = Vec::new();
    for (i, (faults, (hop, layer, code), others)) in TWO_FAULTS.iter().enumerate() {
        let faults: Vec<Fault> = faults.iter().map(|f| Fault::parse(f).unwrap()).collect();
        let (_rt, h, _d) = start(63 + i as u8, &faults);
        let (exit, v, stderr) = trace(&h, "qdrant", &[]);
        h.shutdown();
        let fd = &v["first_divergence"];
        let got = (
            fd["hop"].as_str().unwrap_or("-"),
            fd["layer"].as_str().unwrap_or("-"),
            fd["code"].as_str().unwrap_or("-"),
        );
        let live: Vec<(&str, &str)> = live_errors(&v)
            .iter()
            .map(|f| (f["hop"].as_str().unwrap(), f["code"].as_str().unwrap()))
            .collect();
        let mut want: Vec<(&str, &str)> = vec![(*hop, *code)];
        want.extend(others.iter().copied());
        if got != (*hop, *layer, *code) || exit != 1 || v["verdict"] != "diverged" || live != want {
            failures.push(format!(
                "{faults:?}: want headline {:?} then {others:?}, got {got:?} then {live:?}, exit {exit}\n{stderr}",
                (hop, layer, code)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn step<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

/// A proxy's error answer is a backend failure; which one is named only from the tool's own
/// probe of the hop behind it. qdrant refusing and Portainer's certificate failing Traefik's
/// verification give different words at the gateway; with the hop behind not in the trace, the
/// gateway's 502 says only "backend failure".
#[test]
fn proxy_answers_say_only_what_was_observed_behind_them() {
    let (_rt, h, dir) = start(70, &[Fault::QdrantDown]);
    let (_, v, _) = trace(&h, "qdrant", &[]);
    for id in ["host-gateway.http", "gateway-router.http"] {
        let a = step(&v, id)["actual"].as_str().unwrap();
        assert!(
            a.contains(
                "status 502 (backend failure: connection refused, seen at router-qdrant.tcp)"
            ),
            "{id}: {a}"
        );
    }
    // The same lab, traced with a definition that stops at the gateway.
    let probes = dir.path().join("probes");
    std::fs::create_dir(&probes).unwrap();
    std::fs::write(
        probes.join("qdrant.toml"),
        r#"name = "qdrant"
[vars]
ca_bundle = "/mnt/pve/quickOS/lxc-persistent-data/103/ssl/phoenix_ca.crt"
[[hop]]
id = "host-gateway"
from = "host"
to = "gateway"
path = "target"
tcp = true
http = { url = "https://qdrant.{domain}/healthz", status = [200], trust = "{ca_bundle}" }
"#,
    )
    .unwrap();
    let (exit, v, stderr) = trace(&h, "qdrant", &["--probes", probes.to_str().unwrap()]);
    h.shutdown();
    assert_eq!(exit, 1, "{v:#}\n{stderr}");
    assert_eq!(v["first_divergence"]["code"], "PD-HTTP-005");
    let a = step(&v, "host-gateway.http")["actual"].as_str().unwrap();
    assert!(a.contains("status 502 (backend failure),"), "{a}");
    assert!(!a.contains("refused"), "{a}");
    let text = v["findings"].to_string();
    assert!(!text.contains("refused"), "{text}");

    let (_rt, h, _d) = start(71, &[Fault::BackendTls]);
    let (_, v, _) = trace(&h, "qdrant", &[]);
    h.shutdown();
    let a = step(&v, "host-gateway-portainer.http")["actual"]
        .as_str()
        .unwrap();
    assert!(
        a.contains("(backend failure: TLS verification failed, seen at router-portainer.tls)"),
        "{a}"
    );
}

/// `check A B --format json` against the lab, in its scope.
fn check(h: &LabHandle, targets: &[&str]) -> (i32, Value) {
    let scope = h.scope().allowed[0].to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"))
        .arg("check")
        .args(targets)
        .args(["--format", "json", "--timeout", "700ms", "--scope", &scope])
        .arg("--config-dir")
        .arg(h.config_dir())
        .arg("--stacks-dir")
        .arg(h.stacks_dir())
        .env("NO_COLOR", "1")
        .output()
        .expect("runs phoenix-doctor");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"));
    (out.status.code().unwrap_or(-1), v)
}

/// In the lab every DNS question of a `portainer` trace (the host's and the Portainer VM's
/// lookups of portainer and portainer-agent) is also one of `qdrant`'s (whose plan checks every
/// name the gateway serves): `check qdrant portainer` asks the lab's nameserver exactly what
/// `trace qdrant` asks, where the two traces ask the shared questions twice.
#[test]
fn a_check_probes_each_shared_step_once() {
    let (_rt, h, _d) = start(236, &[]);
    let mut alone = Vec::new();
    for t in ["qdrant", "portainer"] {
        let before = h.dns_queries();
        let (code, v, stderr) = trace(&h, t, &[]);
        assert_eq!(code, 0, "{t}: {v:#}\n{stderr}");
        alone.push(h.dns_queries() - before);
    }
    assert!(alone[1] > 0, "{alone:?}");
    let before = h.dns_queries();
    let (code, v) = check(&h, &["qdrant", "portainer"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["reports"].as_array().unwrap().len(), 2);
    assert_eq!(h.dns_queries() - before, alone[0], "alone {alone:?}");
    h.shutdown();
}

/// The router guest's resolv.conf names 127.72.0.99, where nothing listens, while the intended
/// nameserver (the host) answers: a program in lxc:102 gets no answer, so the trace is not
/// healthy, and the finding names the resolv.conf file, its line 2 and the dead nameserver.
#[test]
fn a_resolv_conf_naming_a_dead_nameserver_is_a_divergence_not_healthy() {
    let (_rt, h, _d) = start(72, &[Fault::ResolvNowhere]);
    let (code, v, stderr) = trace(&h, "qdrant", &[]);
    assert_eq!(code, 1, "{v:#}\n{stderr}");
    assert_eq!(v["verdict"], "diverged");
    let f = live_errors(&v)
        .into_iter()
        .find(|f| f["code"] == "PD-DNS-006")
        .unwrap_or_else(|| panic!("no PD-DNS-006 finding: {v:#}"));
    assert_eq!(f["hop"], "router-dns", "{f:#}");
    let text = f.to_string();
    let resolv = h.dir().join("vantages/lxc-102/resolv.conf");
    assert!(
        text.contains(&format!(
            "{}:2 names nameserver 127.72.0.99",
            resolv.display()
        )),
        "{f:#}"
    );
    assert!(text.contains("127.72.0.99:53"), "{f:#}");
    // the wrong claim is gone: no effective answer is claimed for the router's view
    let step = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "router-dns.dns.qdrant")
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_ne!(step["verdict"], "healthy", "{step:#}");
    assert!(
        !step.to_string().contains("effective answer at the vantage"),
        "{step:#}"
    );
    h.shutdown();
}

/// `agent-moved`: the agent on VM 1002 listens on 9002, the config says 9001. The trace names
/// the refused port and, from VM 1002's socket table and their owners, where the agent listens
/// instead (written from the fault: the agent's port plus one, on the agent's address, owned by
/// the lab's `portainer-agent` process).
#[test]
fn a_moved_agent_is_refused_and_the_trace_names_the_port_it_listens_on() {
    let (_rt, h, _d) = start(73, &[Fault::AgentMoved]);
    let (code, v, stderr) = trace(&h, "agent", &[]);
    assert_eq!(code, 1, "{v:#}\n{stderr}");
    let f = live_errors(&v)
        .into_iter()
        .find(|f| f["hop"] == "portainer-agent")
        .unwrap_or_else(|| panic!("no finding at portainer-agent: {v:#}"));
    assert_eq!(f["code"], "PD-TCP-001", "{f:#}");
    let actual = f["actual"].as_str().unwrap();
    assert!(
        actual.contains(
            "in vm:1002: nothing listens on :9001; a process (portainer-agent) listens on :9002"
        ),
        "{f:#}"
    );
    let agent_ip = h.agent_addr().ip();
    assert!(
        f["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap()
                == format!(
                    "vm:1002:/proc/net/tcp{{,6}}: listening on {agent_ip}:6333 (qdrant), {agent_ip}:9002 (portainer-agent)"
                )),
        "{f:#}"
    );
    h.shutdown();
}

/// `cert-not-reloaded`: the file at the manifest's cert_path holds a certificate issued after
/// the one the gateway serves. The served one is still valid, so only the file on disk shows
/// the cause: the finding is PD-TLS-010 at host-gateway, naming the file.
#[test]
fn a_certificate_renewed_on_disk_but_not_reloaded_is_named() {
    let (_rt, h, _d) = start(74, &[Fault::CertNotReloaded]);
    let (code, v, stderr) = trace(&h, "qdrant", &[]);
    assert_eq!(code, 1, "{v:#}\n{stderr}");
    assert_eq!(v["first_divergence"]["code"], "PD-TLS-010", "{v:#}");
    assert_eq!(v["first_divergence"]["hop"], "host-gateway", "{v:#}");
    let f = live_errors(&v)
        .into_iter()
        .find(|f| f["code"] == "PD-TLS-010")
        .unwrap();
    let cert = h.pki().gateway_cert.display().to_string();
    let text = f.to_string();
    assert!(text.contains("renewed on disk, not reloaded"), "{f:#}");
    assert!(text.contains(&format!("host:{cert}")), "{f:#}");
    h.shutdown();
}
