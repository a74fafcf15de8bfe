//! `check --all` at scale through real transport calls: the platform's reference configuration
//! grown by 200 routed services (`benches/gen_platform.py --services 200 --clients 20`), served
//! by the lab's reference mode on 127.`NET`.0.0/24, and checked with the guests reached through
//! stand-in `pvesh`, `ssh`, `pct` and `qm` (shell scripts first on `PATH` that log each call):
//! the guests are spread over three nodes, and `pct` / `qm` run the agent with the guest's own
//! `/etc/hosts` and `/etc/resolv.conf` (the lab's files for it, bind-mounted in a private mount
//! namespace). Every probed address is on loopback, in the lab's /24.
//!
//! Run under `flock /tmp/pd-net.lock` (it starts the lab).

mod common;

use common::{script, this_node};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

const AGENT: &str = env!("CARGO_BIN_EXE_phoenix-doctor");
/// The lab's network: 127.188.0.0/24.
const NET: u8 = 188;
const SERVICES: usize = 200;
const CLIENTS: u32 = 20;

/// The grown platform: its config dir (`etc/`, `stacks/`) and its traces (`probes/`).
fn grow(out: &Path) {
    let gen = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/gen_platform.py");
    let st = Command::new("python3")
        .arg(gen)
        .arg(out)
        .args(["--services", &SERVICES.to_string()])
        .args(["--clients", &CLIENTS.to_string()])
        .status()
        .expect("python3 runs");
    assert!(st.success(), "gen_platform.py --services failed");
}

/// Every guest the grown config declares (`lxc:<id>`, `vm:<id>`), from its JSON files.
fn guests(etc: &Path) -> Vec<(&'static str, u32)> {
    let read = |f: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(etc.join(f)).unwrap()).unwrap()
    };
    let mut out: Vec<(&'static str, u32)> = read("phoenix_lxc_configs.json")["lxc_configs"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| ("lxc", k.parse().unwrap()))
        .collect();
    for vm in read("phoenix_vm_configs.json")["vms"].as_array().unwrap() {
        out.push(("qemu", vm["vmid"].as_u64().unwrap() as u32));
    }
    out
}

/// The stand-ins. `pvesh` lists `listing`; `ssh root@NODE CMD` runs CMD as a remote shell
/// would (PD_NODE says where); `pct exec ID -- CMD` and `qm guest exec ID ... -- CMD` run CMD
/// with the guest's system files over /etc (the lab's files for that guest, else those of
/// Traefik's guest, which the lab writes for a plain client of the platform); qm answers in
/// `guest-exec-status` JSON. Each logs one line per call.
fn stand_ins(bin: &Path, log: &Path, listing: &Path, vantages: &Path) {
    let l = log.display();
    let v = vantages.display();
    script(
        bin,
        "pvesh",
        &format!("echo \"pvesh $*\" >> {l}\ncat {}", listing.display()),
    );
    script(
        bin,
        "ssh",
        &format!(
            r#"echo "ssh $*" >> {l}
while [ "$1" = "-o" ]; do shift 2; done
node=${{1#root@}}; shift
PD_NODE=$node exec sh -c "$*""#
        ),
    );
    // In a guest: its /etc/hosts and /etc/resolv.conf, bind-mounted in a private mount namespace.
    let in_guest = format!(
        r#"files={v}/$kind-$id; [ -d "$files" ] || files={v}/lxc-102
exec unshare -m --propagation private sh -c 'mount --bind "$0/hosts" /etc/hosts && mount --bind "$0/resolv.conf" /etc/resolv.conf && exec "$@"' "$files""#
    );
    script(
        bin,
        "pct",
        &format!(
            "echo \"pct@${{PD_NODE:-here}} $*\" >> {l}\nkind=lxc id=$2; shift 3\n{in_guest} \"$@\""
        ),
    );
    script(
        bin,
        "qm",
        &format!(
            r#"echo "qm@${{PD_NODE:-here}} $*" >> {l}
kind=vm id=$3
while [ "$1" != "--" ]; do shift; done; shift
set -- python3 -c '
import json, subprocess, sys
p = subprocess.run(sys.argv[1:], stdin=sys.stdin, capture_output=True)
print(json.dumps({{"exited": 1, "exitcode": p.returncode, "out-data": p.stdout.decode(), "err-data": p.stderr.decode()}}))
' "$@"
{in_guest} "$@""#
        ),
    );
}

/// A logged call's guest: `pct@NODE exec ID ...`, `qm@NODE guest exec ID ...` or
/// `ssh -o BatchMode=yes root@NODE pct exec ID ...` → ("pct" | "qm" | "ssh", "lxc:ID" | "vm:ID").
fn call_guest(line: &str) -> Option<(&'static str, String)> {
    let w: Vec<&str> = line.split(' ').collect();
    let guest = |tool: &str, id: &str| match tool {
        "qm" => format!("vm:{id}"),
        _ => format!("lxc:{id}"),
    };
    match w.as_slice() {
        [t, "exec", id, ..] if t.starts_with("pct@") => Some(("pct", guest("pct", id))),
        [t, "guest", "exec", id, ..] if t.starts_with("qm@") => Some(("qm", guest("qm", id))),
        ["ssh", rest @ ..] => {
            let at = rest.iter().position(|x| x.starts_with("root@"))?;
            match &rest[at + 1..] {
                ["pct", "exec", id, ..] => Some(("ssh", guest("pct", id))),
                ["qm", "guest", "exec", id, ..] => Some(("ssh", guest("qm", id))),
                _ => None,
            }
        }
        _ => None,
    }
}

/// 200 routed services and 20 client guests, checked with `check --all` through the stand-in
/// transports: every guest with steps is called once (ssh to its node, then pct or qm there),
/// more than 1,000 steps run, and the verdicts are the grown platform's: healthy, except the
/// reference configuration's own defects.
#[test]
fn check_all_over_200_services_calls_each_guest_once() {
    common::require_root(
        "tests/scale_live.rs",
        "unshare -m, mount --bind",
        &["python3", "unshare", "mount"],
    );
    let dir = tempfile::tempdir().unwrap();
    let platform = dir.path().join("platform");
    grow(&platform);
    let rt = common::lab_runtime();
    let reference = phoenix_doctor::lab::Reference::load(&platform.join("etc"), None).unwrap();
    let spec = phoenix_doctor::lab::LabSpec {
        dir: Some(dir.path().join("lab")),
        faults: Vec::new(),
        net: NET,
    };
    let lab = rt
        .block_on(phoenix_doctor::lab::Lab::start_reference(&spec, &reference))
        .expect("the grown platform's lab starts");
    // Only the host stays simulated (its resolver is the lab's): every guest is reached
    // through its transport.
    let mut site: toml::Table = std::fs::read_to_string(lab.site_file())
        .unwrap()
        .parse()
        .unwrap();
    let vantages = site.get_mut("vantage").unwrap().as_table_mut().unwrap();
    vantages.retain(|k, _| k == "host");
    std::fs::write(lab.site_file(), toml::to_string(&site).unwrap()).unwrap();

    // Every guest of the config, spread over three nodes in turn.
    let here = this_node();
    let nodes = [here.as_str(), "pve2", "pve3"];
    let all = guests(lab.config_dir());
    let listing: Vec<Value> = all
        .iter()
        .enumerate()
        .map(|(i, (kind, id))| {
            serde_json::json!({"vmid": id, "type": kind, "node": nodes[i % 3], "status": "running"})
        })
        .collect();
    let node_of: BTreeMap<String, &str> = all
        .iter()
        .enumerate()
        .map(|(i, (kind, id))| {
            let v = if *kind == "qemu" { "vm" } else { "lxc" };
            (format!("{v}:{id}"), nodes[i % 3])
        })
        .collect();
    let listing_file = dir.path().join("resources.json");
    std::fs::write(&listing_file, serde_json::to_string(&listing).unwrap()).unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("calls.log");
    stand_ins(&bin, &log, &listing_file, &lab.dir().join("vantages"));

    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(AGENT)
        .args(["check", "--all", "--format", "json", "--timeout", "5s"])
        .args(["--scope", &lab.scope().allowed[0].to_string()])
        .arg("--config-dir")
        .arg(lab.config_dir())
        .arg("--stacks-dir")
        .arg(lab.stacks_dir())
        .arg("--probes")
        .arg(platform.join("probes"))
        .args(["--agent-path", AGENT])
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let doc: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
    let reports = doc["reports"].as_array().unwrap();

    // Calls: the one listing, then per guest at most one ssh and one pct/qm, and never a
    // guest on this node through ssh nor one on another node without it.
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        calls.lines().filter(|l| l.starts_with("pvesh ")).count(),
        1,
        "{calls}"
    );
    let mut per_guest: BTreeMap<String, BTreeMap<&str, usize>> = BTreeMap::new();
    for line in calls.lines().filter(|l| !l.starts_with("pvesh ")) {
        let (tool, guest) =
            call_guest(line).unwrap_or_else(|| panic!("an unexpected call: {line}"));
        *per_guest.entry(guest).or_default().entry(tool).or_default() += 1;
    }
    for (guest, by) in &per_guest {
        let node = node_of[guest];
        let entry = by.get("pct").or(by.get("qm")).copied().unwrap_or(0);
        assert_eq!(entry, 1, "{guest}: {by:?}\n{calls}");
        let ssh = by.get("ssh").copied().unwrap_or(0);
        assert_eq!(ssh, usize::from(node != here), "{guest} on {node}: {by:?}");
    }
    // The guests that start steps are exactly the ones called.
    let from: BTreeSet<String> = reports
        .iter()
        .flat_map(|r| r["steps"].as_array().unwrap())
        .map(|s| s["from"].as_str().unwrap().to_string())
        .filter(|f| f != "host")
        .collect();
    let called: BTreeSet<String> = per_guest.keys().cloned().collect();
    assert_eq!(from, called);
    assert!(called.len() >= 24, "{called:?}");
    for i in 0..CLIENTS {
        assert!(called.contains(&format!("lxc:{}", 3000 + i)), "{called:?}");
    }
    // Every guest step ran in its guest, through its node.
    for r in reports {
        for s in r["steps"].as_array().unwrap() {
            let f = s["from"].as_str().unwrap();
            if f == "host" {
                continue;
            }
            let via = s["vantage"]["via"].as_str().unwrap();
            let (tool, id) = f.split_once(':').unwrap();
            let entry = if tool == "vm" {
                format!("qm guest exec {id} --")
            } else {
                format!("pct exec {id} --")
            };
            let want = match node_of[f] {
                n if n == here => entry,
                n => format!("ssh -o BatchMode=yes root@{n} {entry}"),
            };
            assert_eq!(via, want, "{s:#}");
            assert_eq!(s["vantage"]["substituted"], false, "{s:#}");
        }
    }

    let steps: usize = reports
        .iter()
        .map(|r| r["steps"].as_array().unwrap().len())
        .sum();
    assert!(steps >= 1000, "{steps} steps");
    // Written by hand from the reference configuration's own defects, which the services added
    // here do not touch: the gateway certificate names only nginx, portainer and the added
    // services (certificate-manifest.json `sans`), so the names of qdrant, the granite models,
    // ollama and llamacpp fail the host's TLS check at the gateway (PD-TLS-002; qdrant's
    // router also listens on `websecure` only, so Traefik's web entrypoint answers 404,
    // PD-HTTP-001); Traefik's nginx-router sends plain HTTP to the gateway's TLS port 443
    // (PD-HTTP-002 at router-nginx). Everything else, the 200 services and the 20 clients
    // included, is healthy.
    let mut want: BTreeMap<String, (&str, &str)> = BTreeMap::new();
    for t in [
        "qdrant",
        "granite-embedding",
        "granite-3b",
        "ollama",
        "llamacpp",
    ] {
        want.insert(t.into(), ("host-gateway.tls", "PD-TLS-002"));
    }
    want.insert("nginx".into(), ("router-nginx.http", "PD-HTTP-002"));
    let mut got: BTreeMap<String, (&str, &str)> = BTreeMap::new();
    let mut healthy = 0;
    for r in reports {
        let target = r["target"].as_str().unwrap();
        if r["verdict"] == "healthy" {
            healthy += 1;
            continue;
        }
        assert_eq!(
            r["verdict"], "diverged",
            "{target}: {:#}",
            r["first_divergence"]
        );
        let fd = &r["first_divergence"];
        got.insert(
            target.into(),
            (fd["step"].as_str().unwrap(), fd["code"].as_str().unwrap()),
        );
        if target == "qdrant" {
            let router = r["steps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["id"] == "gateway-router.http")
                .unwrap();
            assert_eq!(router["code"], "PD-HTTP-001", "{router:#}");
        }
    }
    assert_eq!(got, want, "{stderr}");
    assert_eq!(healthy, SERVICES + 24, "{stderr}");
    assert_eq!(doc["verdict"], "diverged");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
}
