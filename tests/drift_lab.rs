//! `drift` and `trace --deployed` against the built-in lab: its guests' deployed files are the
//! generators' output, so a healthy lab drifts nowhere; each drift fault is the one drift its
//! definition names (lab --list-faults), and a trace through the drifted proxy names the
//! deployed upstream with both file lines. Starts lab servers: run under the network lock.

mod common;

use phoenix_doctor::lab::{Fault, LabHandle, DOMAIN};
use serde_json::Value;
use std::process::Command;

fn drift(h: &LabHandle) -> (i32, Value) {
    let (code, v) = drift_from(h, true);
    // Through the lab's simulated vantages (each guest's `root` in the site file): the same.
    let (code2, mut v2) = drift_from(h, false);
    assert_eq!(code2, code, "{v2:#}");
    assert_eq!(v2["findings"], v["findings"]);
    assert!(
        v2["source"].as_str().unwrap().contains("the guests"),
        "{v2:#}"
    );
    v2["source"] = v["source"].clone();
    (code, v)
}

fn drift_from(h: &LabHandle, copy: bool) -> (i32, Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"));
    cmd.args(["drift", "--format", "json", "--config-dir"])
        .arg(h.config_dir())
        .arg("--stacks-dir")
        .arg(h.stacks_dir());
    if copy {
        cmd.arg("--deployed").arg(h.deployed_dir());
    }
    let out = cmd.output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    (out.status.code().unwrap_or(-1), v)
}

fn findings(v: &Value) -> Vec<&Value> {
    v["findings"].as_array().unwrap().iter().collect()
}

fn text(f: &Value) -> String {
    serde_json::to_string(f).unwrap()
}

/// The line of the first line of a deployed file that contains `needle` (read here, not
/// through the tool).
fn line_of(h: &LabHandle, rel: &str, needle: &str) -> usize {
    let t = std::fs::read_to_string(h.deployed_dir().join(rel)).unwrap();
    t.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_healthy_lab_does_not_drift() {
    let (_rt, h, _d) = common::start_lab(170, &[]);
    let (code, v) = drift(&h);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["verdict"], "healthy");
    assert!(findings(&v).is_empty(), "{v:#}");
    h.shutdown();
}

#[test]
fn gateway_upstream_drifted_is_one_hand_edit_and_the_trace_names_it() {
    let (_rt, h, _d) = common::start_lab(171, &[Fault::GatewayUpstreamDrifted]);
    let router = h.router_addr();
    let drifted = format!("http://{}:{}", router.ip(), router.port() + 1);
    let site = "lxc-101/etc/nginx/sites-enabled/gateway";
    let line = line_of(&h, site, "proxy_pass");
    let (code, v) = drift(&h);
    assert_eq!(code, 1);
    let f = findings(&v);
    assert_eq!(f.len(), 1, "{v:#}");
    assert_eq!(f[0]["code"], "PD-DRIFT-003");
    let t = text(f[0]);
    assert!(
        t.contains(&format!(
            "/etc/nginx/sites-enabled/gateway:{line}: proxy_pass {drifted};"
        )),
        "{t}"
    );
    assert!(t.contains("looks like a hand edit"), "{t}");
    assert!(t.contains("generate_nginx_gateway_config.sh"), "{t}");

    let deployed = h.deployed_dir().to_str().unwrap().to_string();
    let (exit, r, _) = common::lab_trace(&h, "qdrant", &["--deployed", &deployed]);
    assert_eq!(exit, 1);
    let f = drifted_gateway_finding(&h, &r);
    assert!(text(f).contains("intended upstream: proxy_pass"), "{f:#}");
    // Without a copy, the trace reads the gateway guest's site through its vantage.
    let (_, r2, _) = common::lab_trace(&h, "qdrant", &[]);
    let f2 = r2["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["hop"] == "host-gateway")
        .unwrap();
    assert_eq!(f2["actual"], f["actual"]);
    h.shutdown();
}

#[test]
fn dnsmasq_stale_is_one_stale_record() {
    let (_rt, h, _d) = common::start_lab(172, &[Fault::DnsmasqStale]);
    let (code, v) = drift(&h);
    assert_eq!(code, 1);
    let f = findings(&v);
    assert_eq!(f.len(), 1, "{v:#}");
    assert_eq!(f[0]["code"], "PD-DRIFT-001");
    assert_eq!(f[0]["subjects"][0], format!("qdrant.{DOMAIN}"));
    let old = h.addrs().old_portainer;
    let rec = "host/etc/dnsmasq.d/00-phoenix-internal.conf";
    let line = line_of(&h, rec, &format!("qdrant.{DOMAIN}"));
    let t = text(f[0]);
    assert!(
        t.contains(&format!(
            "00-phoenix-internal.conf:{line}: address=/qdrant.{DOMAIN}/{old}"
        )),
        "{t}"
    );
    assert!(t.contains("looks like a stale file"), "{t}");
    h.shutdown();
}

#[test]
fn traefik_router_hand_edited_is_one_hand_edit_and_the_trace_names_it() {
    let (_rt, h, _d) = common::start_lab(173, &[Fault::TraefikRouterHandEdited]);
    let dynf = "lxc-102/etc/traefik/dynamic/dynamic_conf.yml";
    let line = line_of(&h, dynf, "PathPrefix");
    let (code, v) = drift(&h);
    assert_eq!(code, 1);
    let f = findings(&v);
    assert_eq!(f.len(), 1, "{v:#}");
    assert_eq!(f[0]["code"], "PD-DRIFT-004");
    let t = text(f[0]);
    assert!(t.contains(&format!("dynamic_conf.yml:{line}:")), "{t}");
    assert!(t.contains("looks like a hand edit"), "{t}");

    let deployed = h.deployed_dir().to_str().unwrap().to_string();
    let (_, r, _) = common::lab_trace(&h, "portainer", &["--deployed", &deployed]);
    assert_eq!(r["first_divergence"]["code"], "PD-HTTP-001");
    let hop = r["first_divergence"]["hop"].as_str().unwrap();
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["hop"] == hop)
        .unwrap();
    let actual = f["actual"].as_str().unwrap();
    assert!(actual.contains(&format!("the deployed Traefik router portainer-router has rule Host(`portainer.{DOMAIN}`) && PathPrefix(`/admin`) (lxc:102 /etc/traefik/dynamic/dynamic_conf.yml:{line})")), "{actual}");
    assert!(actual.contains("etc/phoenix_vm_configs.json:"), "{actual}");
    h.shutdown();
}

/// Write an executable stand-in script.
fn stand_in(dir: &std::path::Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Issue 12: at a proxy's error the drifted upstream is read with the guest's one call. The
/// guests are reached through stand-in `pct` and `qm` that log every call and run the agent
/// here, LXC 101's own `/etc/nginx` (the lab's deployed site) bound over this machine's in a
/// private mount namespace. Expected from the plan's vantages (the gateway, Traefik and
/// Portainer each run steps) and the fault's definition (the site proxies to the router's port
/// plus one): one call per guest, none after the run, and the drifted line named.
#[test]
fn a_drifted_upstream_is_named_with_one_call_per_guest() {
    common::require_root(
        "drift_lab",
        "a private mount namespace per guest",
        &["unshare"],
    );
    let (_rt, h, d) = common::start_lab(176, &[Fault::GatewayUpstreamDrifted]);
    let mut site: toml::Table = std::fs::read_to_string(h.site_file())
        .unwrap()
        .parse()
        .unwrap();
    assert!(site.remove("vantage").is_some());
    std::fs::write(h.site_file(), toml::to_string(&site).unwrap()).unwrap();
    let bin = d.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = d.path().join("calls.log");
    let (l, dep) = (log.display(), h.deployed_dir().display());
    stand_in(
        &bin,
        "pct",
        &format!(
            r#"echo "pct $2" >> {l}
root={dep}/lxc-$2; shift 3
if [ -d "$root/etc/nginx" ]; then
  exec unshare -m sh -c 'mount --bind "$0" /etc/nginx && exec "$@"' "$root/etc/nginx" "$@"
fi
exec "$@""#
        ),
    );
    stand_in(
        &bin,
        "qm",
        &format!(
            r#"echo "qm $3" >> {l}
while [ "$1" != "--" ]; do shift; done; shift
exec python3 -c '
import json, subprocess, sys
p = subprocess.run(sys.argv[1:], stdin=sys.stdin, capture_output=True)
print(json.dumps({{"exited": 1, "exitcode": p.returncode, "out-data": p.stdout.decode(), "err-data": p.stderr.decode()}}))
' "$@""#
        ),
    );
    let agent = env!("CARGO_BIN_EXE_phoenix-doctor");
    let out = Command::new(agent)
        .args(["trace", "qdrant", "--format", "json", "--timeout", "700ms"])
        .args(["--scope", &h.scope().allowed[0].to_string()])
        .arg("--config-dir")
        .arg(h.config_dir())
        .arg("--stacks-dir")
        .arg(h.stacks_dir())
        .args(["--agent-path", agent])
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let mut calls: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    calls.sort();
    assert_eq!(calls, ["pct 101", "pct 102", "qm 1001"], "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{r:#}");
    drifted_gateway_finding(&h, &r);
    h.shutdown();
}

/// The finding at the gateway of a qdrant trace with `gateway-upstream-drifted`: it names the
/// deployed `proxy_pass` (the router's port plus one) with its line, and the config's side.
fn drifted_gateway_finding<'a>(h: &LabHandle, r: &'a Value) -> &'a Value {
    assert_eq!(r["first_divergence"]["hop"], "host-gateway", "{r:#}");
    let router = h.router_addr();
    let drifted = format!("http://{}:{}", router.ip(), router.port() + 1);
    let line = line_of(h, "lxc-101/etc/nginx/sites-enabled/gateway", "proxy_pass");
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["hop"] == "host-gateway")
        .unwrap();
    let actual = f["actual"].as_str().unwrap();
    assert!(actual.contains(&format!("proxies qdrant.{DOMAIN} to {drifted} (lxc:101 /etc/nginx/sites-enabled/gateway:{line})")), "{actual}");
    // The config side: the router's web port comes from the Traefik static template.
    assert!(
        actual.contains("etc/traefik/traefik.yml.template:"),
        "{actual}"
    );
    f
}

/// Issue 12: the static "container firewall rules are not enforced" findings are held against
/// the host's files. The reference lab deploys what the platform's scripts write: LXC 101's
/// rule set without `enable` (lxc-manager never sets it), its net0 with `firewall=1`, cluster.fw
/// with `enable: 1` and pve-firewall running. So PD-FW-005 on lxc:101 is confirmed by the
/// deployed files, which the evidence names (written by hand from those scripts).
#[test]
fn unenforced_container_rules_are_confirmed_by_the_host_files() {
    let (_rt, h, _d) = common::start_reference_lab(177, &[]);
    let (_, r, stderr) = common::lab_trace(&h, "qdrant", &[]);
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "PD-FW-005" && f["title"].as_str().unwrap().starts_with("lxc:101: "))
        .unwrap_or_else(|| panic!("no PD-FW-005 for lxc:101: {r:#}\n{stderr}"));
    assert_eq!(f["reconciliation"]["status"], "confirmed", "{f:#}");
    let pid = phoenix_doctor::lab::FIREWALL_PID;
    let want = format!(
        "deployed (host files), the firewall of lxc:101: /etc/pve/firewall/cluster.fw:2: enable: 1; /etc/pve/firewall/101.fw: no `enable` in [OPTIONS] (a guest's firewall is off by default); /etc/pve/lxc/101.conf:3: net0 firewall=1; pve-firewall runs (pid {pid})"
    );
    assert!(
        f["reconciliation"]["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str() == Some(want.as_str())),
        "{f:#}"
    );
    h.shutdown();
}
