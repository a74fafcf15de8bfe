//! Helpers shared by the integration tests: the built-in lab on its own loopback /24, root and
//! tool checks, commands that must succeed, and the switch-plus-node network (a bridge in its own
//! namespace, one namespace per node).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The agent that runs inside the guests: `PD_AGENT_BIN` when set (the static build without the
/// lab that `scripts/build-agent.sh` makes, and `./test` sets as root), else the binary under
/// test.
pub fn agent_bin() -> &'static str {
    static BIN: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| match std::env::var("PD_AGENT_BIN") {
            Ok(p) if !p.is_empty() => {
                assert!(
                    std::path::Path::new(&p).is_file(),
                    "PD_AGENT_BIN={p}: no such file (build it with scripts/build-agent.sh)"
                );
                p
            }
            _ => env!("CARGO_BIN_EXE_phoenix-doctor").to_string(),
        });
    &BIN
}

/// Run `prefix... agent agent` with `job` on stdin (fed from a thread, so an agent that stops
/// reading early cannot block the test).
pub fn run_agent(prefix: &[&str], agent: &str, job: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut argv: Vec<&str> = prefix.to_vec();
    argv.extend([agent, "agent"]);
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let job = job.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&job);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

/// Fail loudly unless running as root with every tool in `bins` on PATH.
pub fn require_root(test_file: &str, why: &str, bins: &[&str]) {
    let uid =
        String::from_utf8(Command::new("id").arg("-u").output().expect("id -u").stdout).unwrap();
    assert_eq!(
        uid.trim(),
        "0",
        "{test_file} needs root ({why}); run it as root like CI does"
    );
    for bin in bins {
        let ok = Command::new("sh")
            .args(["-c", "command -v \"$1\"", "sh", bin])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "`{bin}` is missing: .ci/run installs the test peers");
    }
}

/// Run a command that must succeed.
pub fn sh(argv: &[&str]) {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Write an executable `#!/bin/sh` script `dir/name` (a stand-in for a command such as `pct`).
pub fn script(dir: &std::path::Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// This machine's node name, as Proxmox names a node: the short host name.
pub fn this_node() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    h.trim().split('.').next().unwrap().to_string()
}

/// Create the switch namespace `sw` with a bridge `br0`.
pub fn add_switch(sw: &str) {
    sh(&["ip", "netns", "add", sw]);
    sh(&["ip", "-n", sw, "link", "set", "lo", "up"]);
    sh(&["ip", "-n", sw, "link", "add", "br0", "type", "bridge"]);
    sh(&["ip", "-n", sw, "link", "set", "br0", "up"]);
}

/// Create node namespace `ns` with `ip/24` on `eth0`, plugged into the switch's bridge through
/// veth `v<node>`, and `/etc/netns/<ns>/{hosts,resolv.conf}` (bind-mounted by `ip netns exec`).
/// Returns the `/etc/netns/<ns>` dir.
pub fn add_node(
    sw: &str,
    ns: &str,
    node: &str,
    ip: &str,
    hosts: &str,
    resolv_conf: &str,
) -> PathBuf {
    sh(&["ip", "netns", "add", ns]);
    sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    let v = format!("v{node}");
    sh(&[
        "ip", "-n", sw, "link", "add", &v, "type", "veth", "peer", "name", "eth0", "netns", ns,
    ]);
    sh(&["ip", "-n", sw, "link", "set", &v, "master", "br0", "up"]);
    sh(&[
        "ip",
        "-n",
        ns,
        "addr",
        "add",
        &format!("{ip}/24"),
        "dev",
        "eth0",
    ]);
    sh(&["ip", "-n", ns, "link", "set", "eth0", "up"]);
    let etc = PathBuf::from("/etc/netns").join(ns);
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("hosts"), hosts).unwrap();
    std::fs::write(etc.join("resolv.conf"), resolv_conf).unwrap();
    etc
}

/// Kill what still runs in each namespace and delete it (last created first), with its
/// `/etc/netns/<ns>` files.
pub fn remove_namespaces(namespaces: &[String]) {
    for ns in namespaces.iter().rev() {
        if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        // Retry: a namespace whose last process is still exiting can refuse once.
        for attempt in 0..5 {
            let ok = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok || !PathBuf::from("/run/netns").join(ns).exists() {
                break;
            }
            if attempt == 4 {
                eprintln!("could not delete network namespace {ns}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(ns));
    }
}

#[cfg(feature = "lab")]
/// A started lab: the runtime its servers run on, the handle, the temp dir holding its files.
pub type RunningLab = (
    tokio::runtime::Runtime,
    phoenix_doctor::lab::LabHandle,
    tempfile::TempDir,
);

#[cfg(feature = "lab")]
/// Start the built-in lab with `faults` on 127.`net`.0.0/24, its files in a temp dir.
pub fn start_lab(net: u8, faults: &[phoenix_doctor::lab::Fault]) -> RunningLab {
    let dir = tempfile::tempdir().unwrap();
    let rt = lab_runtime();
    let spec = phoenix_doctor::lab::LabSpec {
        dir: Some(dir.path().to_path_buf()),
        faults: faults.to_vec(),
        net,
    };
    let h = rt
        .block_on(phoenix_doctor::lab::Lab::start(&spec))
        .expect("lab starts");
    (rt, h, dir)
}

#[cfg(feature = "lab")]
/// The runtime a lab's servers run on.
pub fn lab_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[cfg(feature = "lab")]
/// Start the lab serving the platform's reference configuration
/// (`fixtures/configs/reference/etc`) on 127.`net`.0.0/24, its files in a temp dir.
pub fn start_reference_lab(net: u8, faults: &[phoenix_doctor::lab::Fault]) -> RunningLab {
    let dir = tempfile::tempdir().unwrap();
    let rt = lab_runtime();
    let etc =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/configs/reference/etc");
    let reference = phoenix_doctor::lab::Reference::load(&etc, None).unwrap();
    let spec = phoenix_doctor::lab::LabSpec {
        dir: Some(dir.path().join("lab")),
        faults: faults.to_vec(),
        net,
    };
    let h = rt
        .block_on(phoenix_doctor::lab::Lab::start_reference(&spec, &reference))
        .expect("the reference lab starts");
    (rt, h, dir)
}

#[cfg(feature = "lab")]
/// `trace TARGET --format json` against a running lab, in its scope, with `extra` options:
/// the exit code, the report, and stderr.
pub fn lab_trace(
    h: &phoenix_doctor::lab::LabHandle,
    target: &str,
    extra: &[&str],
) -> (i32, serde_json::Value, String) {
    let scope = h.scope().allowed[0].to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"))
        .args(["trace", target, "--format", "json", "--scope", &scope])
        .arg("--config-dir")
        .arg(h.config_dir())
        .arg("--stacks-dir")
        .arg(h.stacks_dir())
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .expect("runs phoenix-doctor");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let v: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
    (out.status.code().unwrap_or(-1), v, stderr)
}
