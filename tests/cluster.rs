//! Proxmox clusters: stand-in `pvesh`, `ssh`, `pct` and `qm` (shell scripts in a temp dir put
//! first on `PATH`) that log every call. `pvesh` lists the guests spread over three nodes (this
//! machine's own name and two others), `ssh root@<node> CMD` runs CMD like a remote shell would,
//! and `pct` / `qm` run the agent. The traces go to the built-in lab on 127.0.0.0/8 only.
//!
//! Run under `flock /tmp/pd-net.lock` (they start the lab).

mod common;

use common::{script, this_node};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const AGENT: &str = env!("CARGO_BIN_EXE_phoenix-doctor");

/// The lab without its simulated vantages, so guest steps go through the transports.
struct Cluster {
    _rt: tokio::runtime::Runtime,
    lab: phoenix_doctor::lab::LabHandle,
    _dir: tempfile::TempDir,
    bin: PathBuf,
    log: PathBuf,
}

impl Cluster {
    /// The lab on 127.`net`.0.0/24 and stand-ins; `listing` is what `pvesh` prints.
    fn up(net: u8, listing: &str) -> Cluster {
        let (rt, lab, dir) = common::start_lab(net, &[]);
        let mut site: toml::Table = std::fs::read_to_string(lab.site_file())
            .unwrap()
            .parse()
            .unwrap();
        assert!(site.remove("vantage").is_some());
        std::fs::write(lab.site_file(), toml::to_string(&site).unwrap()).unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let log = dir.path().join("calls.log");
        let listing_file = dir.path().join("resources.json");
        std::fs::write(&listing_file, listing).unwrap();
        let l = log.display();
        script(
            &bin,
            "pvesh",
            &format!("echo \"pvesh $*\" >> {l}\ncat {}", listing_file.display()),
        );
        // Like ssh: options, then root@NODE, then words the far side's shell joins and runs.
        // PD_NODE tells the stand-ins below which node they run on.
        script(
            &bin,
            "ssh",
            &format!(
                r#"echo "ssh $*" >> {l}
while [ "$1" = "-o" ]; do shift 2; done
node=${{1#root@}}; shift
PD_NODE=$node exec sh -c "$*""#
            ),
        );
        script(
            &bin,
            "pct",
            &format!("echo \"pct@${{PD_NODE:-here}} $*\" >> {l}\nshift 3\nexec \"$@\""),
        );
        // qm guest exec ID [--timeout N] [--pass-stdin 1] -- CMD... ; answers guest-exec-status JSON
        script(
            &bin,
            "qm",
            &format!(
                r#"echo "qm@${{PD_NODE:-here}} $*" >> {l}
while [ "$1" != "--" ]; do shift; done; shift
exec python3 -c '
import json, subprocess, sys
p = subprocess.run(sys.argv[1:], stdin=sys.stdin, capture_output=True)
print(json.dumps({{"exited": 1, "exitcode": p.returncode, "out-data": p.stdout.decode(), "err-data": p.stderr.decode()}}))
' "$@""#
            ),
        );
        Cluster {
            _rt: rt,
            lab,
            _dir: dir,
            bin,
            log,
        }
    }

    /// `trace TARGET --format json` with the stand-ins first on PATH: exit code, report, stderr.
    fn trace(&self, target: &str) -> (i32, Value, String) {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new(AGENT)
            .args(["trace", target, "--format", "json", "--timeout", "700ms"])
            .args(["--scope", &self.lab.scope().allowed[0].to_string()])
            .arg("--config-dir")
            .arg(self.lab.config_dir())
            .arg("--stacks-dir")
            .arg(self.lab.stacks_dir())
            .args(["--agent-path", AGENT])
            .env("PATH", path)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let v: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
        (out.status.code().unwrap_or(-1), v, stderr)
    }

    /// The logged calls, with qm's `--timeout N` (what is left of the budget) written `N`.
    fn calls(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|l| {
                let w: Vec<&str> = l.split(' ').collect();
                let mut out = Vec::new();
                for (i, word) in w.iter().enumerate() {
                    if i > 0 && w[i - 1] == "--timeout" {
                        out.push("N");
                    } else {
                        out.push(word);
                    }
                }
                out.join(" ")
            })
            .collect()
    }
}

/// The steps of a report that start at `from`.
fn steps_from<'a>(v: &'a Value, from: &str) -> Vec<&'a Value> {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["from"] == from)
        .collect()
}

const PVESH: &str = "pvesh get /cluster/resources --type vm --output-format json";

/// qdrant's trace starts in the gateway (lxc:101, here), Traefik (lxc:102, on pve2) and
/// Portainer (vm:1001, on pve3): each is reached on its own node, once, and the platform is
/// healthy.
#[test]
fn guests_on_three_nodes_are_reached_through_their_nodes_once_each() {
    let here = this_node();
    let listing = format!(
        r#"[
  {{"id":"lxc/101","vmid":101,"node":"{here}","type":"lxc","status":"running","name":"Nginx-Phoenix"}},
  {{"id":"lxc/102","vmid":102,"node":"pve2","type":"lxc","status":"running","name":"Traefik-Internal"}},
  {{"id":"lxc/103","vmid":103,"node":"pve2","type":"lxc","status":"running"}},
  {{"id":"qemu/1001","vmid":1001,"node":"pve3","type":"qemu","status":"running"}},
  {{"id":"qemu/1002","vmid":1002,"node":"pve3","type":"qemu","status":"running"}}
]"#
    );
    let c = Cluster::up(144, &listing);
    let (code, v, stderr) = c.trace("qdrant");
    // Written by hand from the listing above and the transports' definitions.
    let mut calls = c.calls();
    calls.sort();
    let mut want = vec![
        PVESH.to_string(),
        format!("pct@here exec 101 -- {AGENT} agent"),
        format!("ssh -o BatchMode=yes root@pve2 pct exec 102 -- '{AGENT}' 'agent'"),
        format!("pct@pve2 exec 102 -- {AGENT} agent"),
        format!(
            "ssh -o BatchMode=yes root@pve3 qm guest exec 1001 --timeout N --pass-stdin 1 -- '{AGENT}' 'agent'"
        ),
        format!("qm@pve3 guest exec 1001 --timeout N --pass-stdin 1 -- {AGENT} agent"),
    ];
    want.sort();
    assert_eq!(calls, want, "{stderr}");
    for (from, via) in [
        ("lxc:101", "pct exec 101 --".to_string()),
        (
            "lxc:102",
            "ssh -o BatchMode=yes root@pve2 pct exec 102 --".into(),
        ),
        (
            "vm:1001",
            "ssh -o BatchMode=yes root@pve3 qm guest exec 1001 --".into(),
        ),
    ] {
        let steps = steps_from(&v, from);
        assert!(!steps.is_empty(), "{from}: {v:#}");
        for s in steps {
            assert_eq!(s["vantage"]["via"], via.as_str(), "{s:#}");
            assert_eq!(s["vantage"]["substituted"], false, "{s:#}");
        }
    }
    assert!(!stderr.contains("note: the gateway"), "{stderr}");
    assert_eq!(v["verdict"], "healthy", "{v:#}\n{stderr}");
    assert_eq!(code, 0);
}

/// A stopped guest is `cannot-judge` with its status, and nothing is run in it or on its node;
/// the gateway on another node is named in a note.
#[test]
fn a_stopped_guest_cannot_be_judged_and_gets_no_call() {
    let listing = r#"[
  {"vmid":101,"node":"pve3","type":"lxc","status":"running"},
  {"vmid":102,"node":"pve2","type":"lxc","status":"stopped"},
  {"vmid":1001,"node":"pve3","type":"qemu","status":"running"}
]"#;
    let c = Cluster::up(145, listing);
    let (code, v, stderr) = c.trace("qdrant");
    let calls = c.calls();
    assert!(
        calls
            .iter()
            .all(|l| !l.contains("102") && !l.contains("pve2")),
        "a call went to the stopped guest or its node: {calls:#?}"
    );
    assert_eq!(calls.iter().filter(|l| l.starts_with("ssh ")).count(), 2);
    let stopped = steps_from(&v, "lxc:102");
    assert!(!stopped.is_empty());
    // Its first steps say why; the steps after them at that vantage are blocked by them.
    let judged = stopped.iter().filter(|s| s["verdict"] != "blocked");
    assert!(judged.clone().count() > 0, "{v:#}");
    for s in judged {
        assert_eq!(s["verdict"], "cannot-judge", "{s:#}");
        assert_eq!(s["code"], "PD-RUN-002", "{s:#}");
        assert_eq!(s["actual"], "lxc:102 is stopped on node pve2", "{s:#}");
    }
    for (from, via) in [
        ("lxc:101", "ssh -o BatchMode=yes root@pve3 pct exec 101 --"),
        (
            "vm:1001",
            "ssh -o BatchMode=yes root@pve3 qm guest exec 1001 --",
        ),
    ] {
        for s in steps_from(&v, from) {
            assert_eq!(s["vantage"]["via"], via, "{s:#}");
        }
    }
    assert_eq!(v["verdict"], "cannot-judge", "{v:#}");
    assert_eq!(code, 3);
    let note: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("note: the gateway"))
        .collect();
    assert_eq!(note.len(), 1, "{stderr}");
    assert!(
        note[0].contains("lxc:101 runs on node pve3") && note[0].contains("docs/cli.md"),
        "{stderr}"
    );
}

/// A listing that is not JSON leaves every guest `cannot-judge` with the reason; the host's
/// steps still run, and no guest is called.
#[test]
fn a_listing_that_is_not_json_is_cannot_judge_for_the_guests() {
    let c = Cluster::up(146, "<html>502 Bad Gateway</html>");
    let (code, v, stderr) = c.trace("qdrant");
    assert_eq!(c.calls(), [PVESH], "{stderr}");
    let mut guest_steps = 0;
    for s in v["steps"].as_array().unwrap() {
        if s["from"] == "host" {
            assert_eq!(s["vantage"]["via"], "local", "{s:#}");
            assert_ne!(s["code"], "PD-RUN-002", "{s:#}");
        } else if s["verdict"] != "blocked" {
            guest_steps += 1;
            assert_eq!(s["verdict"], "cannot-judge", "{s:#}");
            assert_eq!(s["code"], "PD-RUN-002", "{s:#}");
            let m = s["actual"].as_str().unwrap();
            assert!(
                m.contains(&format!(
                    "where {} runs is unknown",
                    s["from"].as_str().unwrap()
                )) && m.contains(PVESH)
                    && m.contains("not JSON"),
                "{m}"
            );
        }
    }
    assert!(guest_steps > 0);
    assert_eq!(v["verdict"], "cannot-judge", "{v:#}");
    assert_eq!(code, 3);
}

/// The same placement over network namespaces: one per node (`ssh root@<node> CMD` runs CMD in
/// it) and one per guest (`pct exec <id> --` / `qm guest exec <id> --` run there), the guests on
/// a bridge in 198.18.0.0/24. A listener in lxc:101 drops vm:1001's address only, so each
/// verdict shows which namespace the step really ran in.
#[test]
fn over_namespaces_each_guest_runs_in_its_own_namespace_through_its_node() {
    use phoenix_doctor::engine::{execute, Scope, Settings};
    use phoenix_doctor::observe::{Layer, Outcome};
    use phoenix_doctor::plan::{Plan, ProbeSpec, Step, VantageRef};
    use phoenix_doctor::vantage::{cluster, VantageOptions, Vantages};
    use std::sync::Arc;
    use std::time::Duration;
    common::require_root(
        "tests/cluster.rs",
        "ip netns add, nft",
        &["ip", "socat", "nft", "ss", "python3"],
    );
    let p = format!("pdc{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let l = log.display();
    let mut namespaces = Vec::new();
    struct Cleanup(Vec<String>, Vec<std::process::Child>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for c in &mut self.1 {
                let _ = c.kill();
                let _ = c.wait();
            }
            common::remove_namespaces(&self.0);
        }
    }
    let sw = format!("{p}-sw");
    namespaces.push(sw.clone());
    common::add_switch(&sw);
    let mut cleanup = Cleanup(namespaces, Vec::new());
    for node in ["pve2", "pve3"] {
        let ns = format!("{p}-{node}");
        cleanup.0.push(ns.clone());
        common::sh(&["ip", "netns", "add", &ns]);
    }
    for (id, ip) in [
        ("101", "198.18.0.101"),
        ("102", "198.18.0.102"),
        ("1001", "198.18.0.111"),
    ] {
        let ns = format!("{p}-g{id}");
        cleanup.0.push(ns.clone());
        common::add_node(&sw, &ns, id, ip, "127.0.0.1 localhost\n", "");
    }
    let listener = Command::new("ip")
        .args(["netns", "exec", &format!("{p}-g101")])
        .args([
            "socat",
            "TCP-LISTEN:9443,bind=198.18.0.101,reuseaddr,fork",
            "SYSTEM:echo ok",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    cleanup.1.push(listener);
    let rules = dir.path().join("rules.nft");
    std::fs::write(
        &rules,
        "table inet pdc {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    ip saddr 198.18.0.111 tcp dport 9443 drop\n  }\n}\n",
    )
    .unwrap();
    common::sh(&[
        "ip",
        "netns",
        "exec",
        &format!("{p}-g101"),
        "nft",
        "-f",
        &rules.display().to_string(),
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let out = Command::new("ip")
            .args(["netns", "exec", &format!("{p}-g101"), "ss", "-H", "-lnt"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("198.18.0.101:9443") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "socat does not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The stand-ins: each logs where it runs (`ip netns identify`: empty on this node).
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    script(
        &bin,
        "ssh",
        &format!(
            r#"while [ "$1" = "-o" ]; do shift 2; done
node=${{1#root@}}; shift
echo "ssh root@$node" >> {l}
exec ip netns exec {p}-$node sh -c "$*""#
        ),
    );
    script(
        &bin,
        "pct",
        &format!(
            "echo \"pct@$(ip netns identify) $1 $2\" >> {l}\nid=$2; shift 3\nexec ip netns exec {p}-g$id \"$@\""
        ),
    );
    script(
        &bin,
        "qm",
        &format!(
            r#"echo "qm@$(ip netns identify) $2 $3" >> {l}
id=$3
while [ "$1" != "--" ]; do shift; done; shift
exec ip netns exec {p}-g$id python3 -c '
import json, subprocess, sys
r = subprocess.run(sys.argv[1:], stdin=sys.stdin, capture_output=True)
print(json.dumps({{"exited": 1, "exitcode": r.returncode, "out-data": r.stdout.decode(), "err-data": r.stderr.decode()}}))
' "$@""#
        ),
    );
    // The default transports name `ssh`, `pct` and `qm`: the stand-ins come first on PATH (this
    // process's own PATH: the other tests here pass theirs to their children explicitly).
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::env::set_var("PATH", path);
    let here = this_node();
    let listing = format!(
        r#"[{{"vmid":101,"node":"{here}","type":"lxc","status":"running"}},
            {{"vmid":102,"node":"pve2","type":"lxc","status":"running"}},
            {{"vmid":1001,"node":"pve3","type":"qemu","status":"running"}}]"#
    );
    let runner = Vantages::new(VantageOptions {
        agent_path: AGENT.into(),
        cluster: Some(cluster::parse_resources(&here, listing.as_bytes())),
        ..VantageOptions::default()
    });
    let tcp = |from: VantageRef, port: u16| Step {
        id: format!("{from}.{port}"),
        hop: from.to_string(),
        from,
        to: "listener".into(),
        layer: Layer::Tcp,
        probe: ProbeSpec::Tcp {
            addr: format!("198.18.0.101:{port}").parse().unwrap(),
        },
        expect: String::new(),
        provenance: Vec::new(),
        depends_on: Vec::new(),
        through: Vec::new(),
    };
    let plan = Plan {
        target: "listener".into(),
        hops: Vec::new(),
        steps: vec![
            tcp(VantageRef::Lxc(101), 9443),
            tcp(VantageRef::Lxc(102), 9443),
            tcp(VantageRef::Lxc(102), 9444),
            tcp(VantageRef::Vm(1001), 9443),
        ],
    };
    let settings = Settings {
        timeout: Duration::from_millis(800),
        scope: Scope {
            allowed: vec!["198.18.0.0/24".parse().unwrap()],
        },
        runner: Arc::new(runner),
        ..Settings::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let run = rt.block_on(execute(&plan, &settings));
    let by = |id: &str| run.observations.iter().find(|o| o.step == id).unwrap();
    // Written by hand: the listener is open to every guest but vm:1001, whose packets the
    // nftables rule drops; port 9444 is closed.
    assert_eq!(
        by("lxc:101.9443").outcome,
        Outcome::Ok,
        "{:?}",
        by("lxc:101.9443")
    );
    assert_eq!(
        by("lxc:102.9443").outcome,
        Outcome::Ok,
        "{:?}",
        by("lxc:102.9443")
    );
    assert_eq!(
        by("lxc:102.9444").outcome,
        Outcome::Failed,
        "{:?}",
        by("lxc:102.9444")
    );
    assert_eq!(
        by("vm:1001.9443").outcome,
        Outcome::TimedOut,
        "{:?}",
        by("vm:1001.9443")
    );
    assert_eq!(by("lxc:101.9443").vantage.via, "pct exec 101 --");
    assert_eq!(
        by("lxc:102.9444").vantage.via,
        "ssh -o BatchMode=yes root@pve2 pct exec 102 --"
    );
    assert_eq!(
        by("vm:1001.9443").vantage.via,
        "ssh -o BatchMode=yes root@pve3 qm guest exec 1001 --"
    );
    let mut calls: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    calls.sort();
    let mut want = vec![
        "pct@ exec 101".to_string(),
        "ssh root@pve2".into(),
        format!("pct@{p}-pve2 exec 102"),
        "ssh root@pve3".into(),
        format!("qm@{p}-pve3 exec 1001"),
    ];
    want.sort();
    assert_eq!(calls, want);
    drop(cleanup);
}
