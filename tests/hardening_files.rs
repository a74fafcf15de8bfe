//! Hostile files and interrupted runs: FIFOs, devices, unreadable and oversized inputs, files
//! the tool writes (`--save-run`, `lab --dir`), secrets and control characters in messages,
//! duplicate JSON keys, and signals during `demo`/`lab`. Expected outcomes are written from the
//! defect's definition (docs/security.md), never recorded from the tool's output.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Run the tool with a hard deadline (a hang fails the test instead of stalling it).
fn run_in(dir: Option<&Path>, args: &[&str], setpriv: bool) -> (i32, String, String) {
    let exe = env!("CARGO_BIN_EXE_phoenix-doctor");
    let mut cmd = if setpriv {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            exe,
        ]);
        c
    } else {
        Command::new(exe)
    };
    cmd.args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("phoenix-doctor {args:?} hung for 60 s");
        }
    };
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn run(args: &[&str]) -> (i32, String, String) {
    run_in(None, args, false)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

/// A copy of the reference platform tree (`etc/`, `stacks/`) in a fresh temp dir that
/// everyone may enter (so `setpriv` runs can reach it).
fn reference_tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let st = Command::new("cp")
        .arg("-r")
        .arg(fixtures().join("configs/reference/etc"))
        .arg(fixtures().join("configs/reference/stacks"))
        .arg(t.path())
        .status()
        .unwrap();
    assert!(st.success());
    chmod(t.path(), 0o755);
    t
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mkfifo(p: &Path) {
    let _ = std::fs::remove_file(p);
    assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
}

fn etc(t: &tempfile::TempDir) -> String {
    t.path().join("etc").display().to_string()
}

/// The commands that read the whole config dir.
const READERS: &[&[&str]] = &[&["lint"], &["show", "dns"], &["plan", "qdrant"]];

/// Exit 2 with one line on stderr naming `file` and why.
fn assert_clear_error(args: &[&str], code: i32, err: &str, file: &str, why: &str) {
    assert_eq!(code, 2, "{args:?}: exit {code}, stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    assert!(
        err.contains(file) && err.contains(why),
        "{args:?}: expected `{file}` and `{why}` in: {err}"
    );
}

// ------------------------------------------------------------ item 2: FIFOs and devices

#[test]
fn a_fifo_or_dev_zero_as_a_platform_file_is_a_clear_error() {
    for name in [
        "phoenix_lxc_configs.json",
        "certificate-manifest.json",
        "phoenix-doctor.toml",
    ] {
        for kind in ["fifo", "zero"] {
            let t = reference_tree();
            let p = t.path().join("etc").join(name);
            let why = if kind == "fifo" {
                mkfifo(&p);
                "a FIFO"
            } else {
                let _ = std::fs::remove_file(&p);
                std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
                "a character device"
            };
            for cmd in READERS {
                let mut args = cmd.to_vec();
                let e = etc(&t);
                args.extend(["--config-dir", &e]);
                let t0 = Instant::now();
                let (code, _, err) = run(&args);
                assert!(t0.elapsed() < Duration::from_secs(20), "{args:?} too slow");
                assert_clear_error(&args, code, &err, name, why);
            }
        }
    }
}

#[test]
fn a_fifo_or_dev_zero_as_a_stack_manifest_is_a_clear_error() {
    for kind in ["fifo", "zero"] {
        let t = reference_tree();
        let p = t.path().join("stacks/qdrant_service/phoenix.json");
        if kind == "fifo" {
            mkfifo(&p);
        } else {
            std::fs::remove_file(&p).unwrap();
            std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
        }
        for cmd in READERS {
            let mut args = cmd.to_vec();
            let e = etc(&t);
            args.extend(["--config-dir", &e]);
            let (code, _, err) = run(&args);
            assert_clear_error(&args, code, &err, "qdrant_service/phoenix.json", "");
        }
    }
}

// ------------------------------------------------------------ item 3: unreadable stacks

/// Every way a stack manifest can be unreadable makes lint, show dns and plan fail with the
/// manifest named: the DNS generator's jq fails on such a file too, so the records it would add
/// are not known (docs/config.md, "Stacks").
#[test]
fn an_unreadable_stack_manifest_is_never_skipped() {
    let cases: &[(&str, &str)] = &[
        ("directory", "a directory"),
        ("dangling", "dangling symlink"),
        ("loop", "symbolic links"),
        ("mode000", "Permission denied"),
    ];
    for (case, why) in cases {
        if *case == "mode000" && !is_root() {
            continue; // setpriv needs root to switch users
        }
        let t = reference_tree();
        let p = t.path().join("stacks/qdrant_service/phoenix.json");
        match *case {
            "directory" => {
                std::fs::remove_file(&p).unwrap();
                std::fs::create_dir(&p).unwrap();
            }
            "dangling" => {
                std::fs::remove_file(&p).unwrap();
                std::os::unix::fs::symlink(t.path().join("nowhere.json"), &p).unwrap();
            }
            "loop" => {
                std::fs::remove_file(&p).unwrap();
                std::os::unix::fs::symlink(&p, &p).unwrap();
            }
            _ => chmod(&p, 0o000),
        }
        // Everything else stays readable for the unprivileged user.
        if *case == "mode000" {
            let st = Command::new("chmod")
                .args(["-R", "a+rX"])
                .arg(t.path().join("etc"))
                .status()
                .unwrap();
            assert!(st.success());
        }
        for cmd in READERS {
            let mut args = cmd.to_vec();
            let e = etc(&t);
            args.extend(["--config-dir", &e]);
            let (code, out, err) = run_in(None, &args, *case == "mode000");
            assert_clear_error(&args, code, &err, "qdrant_service/phoenix.json", why);
            assert!(
                !out.contains("address=/"),
                "{case}: show dns printed records without the stack"
            );
        }
    }
}

#[test]
fn an_unreadable_stacks_dir_is_an_error_not_an_empty_one() {
    if !is_root() {
        return;
    }
    let t = reference_tree();
    let st = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(t.path())
        .status()
        .unwrap();
    assert!(st.success());
    chmod(&t.path().join("stacks"), 0o000);
    let e = etc(&t);
    for cmd in READERS {
        let mut args = cmd.to_vec();
        args.extend(["--config-dir", &e]);
        let (code, _, err) = run_in(None, &args, true);
        assert_clear_error(&args, code, &err, "stacks", "Permission denied");
    }
}

// ------------------------------------------------------------ item 10: duplicate keys

/// LXC 102 is given twice in the fixture: first a stale entry (`Stale-Traefik`, 10.0.0.250/24),
/// then the real one (10.0.0.12/24). The platform reads the file with jq, where the last wins:
/// one LXC 102, the real one, and no record for the stale name.
#[test]
fn duplicate_keys_keep_the_last_value_as_jq_does() {
    let d = fixtures().join("configs/variants/duplicate-keys/etc");
    let raw = phoenix_doctor::config::load(&d, None).unwrap();
    let l102: Vec<_> = raw.lxcs.iter().filter(|g| g.id.value == 102).collect();
    assert_eq!(l102.len(), 1);
    let ip = l102[0].ip.as_ref().unwrap();
    assert_eq!(ip.value.ip(), Some("10.0.0.12".parse().unwrap()));
    assert_eq!(ip.prov.line, Some(796));
    let (code, out, err) = run(&["show", "dns", "--config-dir", d.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("/10.0.0.12\n") && !out.contains("10.0.0.250") && !out.contains("stale"),
        "{out}"
    );
}

#[test]
fn a_fifo_or_dev_zero_as_a_replay_file_or_trace_definition_is_a_clear_error() {
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("run.json");
    mkfifo(&fifo);
    let probes = t.path().join("probes");
    std::fs::create_dir(&probes).unwrap();
    mkfifo(&probes.join("qdrant.toml"));
    let e = fixtures().join("configs/reference/etc");
    let e = e.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec!["trace", "qdrant", "--replay", fifo.to_str().unwrap()],
            "run.json",
            "a FIFO",
        ),
        (
            vec!["trace", "qdrant", "--replay", "/dev/zero"],
            "/dev/zero",
            "a character device",
        ),
        (
            vec![
                "plan",
                "qdrant",
                "--config-dir",
                e,
                "--probes",
                probes.to_str().unwrap(),
            ],
            "qdrant.toml",
            "a FIFO",
        ),
    ];
    for (args, file, why) in cases {
        let (code, _, err) = run(&args);
        assert_clear_error(&args, code, &err, file, why);
    }
}

// ------------------------------------------------------------ the in-process lab

fn lab(net: u8, faults: &[phoenix_doctor::lab::Fault]) -> (tokio::runtime::Runtime, Lab) {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let spec = phoenix_doctor::lab::LabSpec {
        dir: Some(dir.path().to_path_buf()),
        faults: faults.to_vec(),
        net,
    };
    let h = rt.block_on(phoenix_doctor::lab::Lab::start(&spec)).unwrap();
    (rt, Lab { h, _dir: dir })
}

struct Lab {
    h: phoenix_doctor::lab::LabHandle,
    _dir: tempfile::TempDir,
}

impl Lab {
    fn root(&self) -> PathBuf {
        self.h.config_dir().parent().unwrap().to_path_buf()
    }

    fn trace_args(&self, target: &str) -> Vec<String> {
        vec![
            "trace".into(),
            target.into(),
            "--format".into(),
            "json".into(),
            "--timeout".into(),
            "700ms".into(),
            "--scope".into(),
            self.h.scope().allowed[0].to_string(),
            "--config-dir".into(),
            self.h.config_dir().display().to_string(),
            "--stacks-dir".into(),
            self.h.stacks_dir().display().to_string(),
        ]
    }
}

fn json(out: &str, err: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}\nstderr: {err}"))
}

// ------------------------------------------------------------ item 3: a vantage's files

/// The hosts-override fault lives in LXC 102's hosts file. When that file (or its resolv.conf)
/// cannot be read, what a program on LXC 102 resolves is unknown: the trace must say
/// cannot-judge (exit 3) at that vantage's DNS step, never healthy.
#[test]
fn an_unreadable_vantage_file_makes_its_dns_step_cannot_judge() {
    use phoenix_doctor::lab::Fault;
    let (_rt, lab) = lab(211, &[Fault::HostsOverride]);
    let vdir = lab.root().join("vantages/lxc-102");
    let mut cases = vec!["missing", "zero", "fifo", "resolv-fifo"];
    if is_root() {
        cases.push("mode000");
        let st = Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(lab.root())
            .status()
            .unwrap();
        assert!(st.success());
    }
    let hosts = vdir.join("hosts");
    let resolv = vdir.join("resolv.conf");
    let hosts_text = std::fs::read(&hosts).unwrap();
    let resolv_text = std::fs::read(&resolv).unwrap();
    for case in cases {
        let _ = std::fs::remove_file(&hosts);
        std::fs::write(&hosts, &hosts_text).unwrap();
        let _ = std::fs::remove_file(&resolv);
        std::fs::write(&resolv, &resolv_text).unwrap();
        chmod(&hosts, 0o644);
        let file = match case {
            "missing" => {
                std::fs::remove_file(&hosts).unwrap();
                "hosts"
            }
            "zero" => {
                std::fs::remove_file(&hosts).unwrap();
                std::os::unix::fs::symlink("/dev/zero", &hosts).unwrap();
                "hosts"
            }
            "fifo" => {
                mkfifo(&hosts);
                "hosts"
            }
            "resolv-fifo" => {
                mkfifo(&resolv);
                "resolv.conf"
            }
            _ => {
                chmod(&hosts, 0o000);
                "hosts"
            }
        };
        let args = lab.trace_args("qdrant");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = run_in(None, &args, case == "mode000");
        let v = json(&out, &err);
        assert_eq!(v["verdict"], "cannot-judge", "{case}: {v:#}");
        assert_eq!(code, 3, "{case}");
        // The DNS step at LXC 102 (the router's vantage) is the one that cannot be judged.
        let steps: Vec<&serde_json::Value> = v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["layer"] == "dns" && s["from"] == "lxc:102")
            .collect();
        assert!(!steps.is_empty(), "{case}: no DNS step at lxc:102: {v:#}");
        for s in steps {
            assert_eq!(s["verdict"], "cannot-judge", "{case}: {s:#}");
            let text = s.to_string();
            assert!(
                text.contains(&format!("lxc-102/{file}")),
                "{case}: the step does not name the file: {s:#}"
            );
        }
    }
    lab.h.shutdown();
}

// ------------------------------------------------------------ item 8: --save-run

#[test]
fn save_run_never_overwrites_or_follows_a_symlink_and_keeps_the_verdict() {
    let (_rt, lab) = lab(212, &[]);
    let t = tempfile::tempdir().unwrap();
    let existing = t.path().join("existing.json");
    std::fs::write(&existing, b"keep me").unwrap();
    let outside = t.path().join("outside.txt");
    std::fs::write(&outside, b"outside").unwrap();
    let link = t.path().join("link.json");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let missing_dir = t.path().join("no/such/dir/run.json");
    let fresh = t.path().join("fresh.json");
    let base = lab.trace_args("qdrant");
    let with = |file: &Path, force: bool| {
        let mut a = base.clone();
        a.push("--save-run".into());
        a.push(file.display().to_string());
        if force {
            a.push("--force".into());
        }
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run(&a)
    };
    // Refused: the report is printed anyway, one line says the run was not saved, and the
    // exit code is the healthy trace's 0.
    for (file, force) in [
        (&existing, false),
        (&link, false),
        (&link, true),
        (&missing_dir, false),
    ] {
        let (code, out, err) = with(file, force);
        let v = json(&out, &err);
        assert_eq!(v["verdict"], "healthy", "{file:?}: {v:#}");
        assert_eq!(code, 0, "{file:?}: {err}");
        assert!(
            err.lines()
                .any(|l| l.contains("NOT saved") && l.contains(&file.display().to_string())),
            "{file:?}: {err}"
        );
    }
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
    assert_eq!(std::fs::read(&outside).unwrap(), b"outside");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    // A new file, and --force on an existing regular file: saved, mode 0600, replayable.
    for (file, force) in [(&fresh, false), (&existing, true)] {
        let (code, _, err) = with(file, force);
        assert_eq!(code, 0, "{err}");
        assert!(!err.contains("NOT saved"), "{err}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (code, out, err) = run(&[
            "trace",
            "qdrant",
            "--format",
            "json",
            "--replay",
            file.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(json(&out, &err)["verdict"], "healthy");
    }
    lab.h.shutdown();
}

// ------------------------------------------------------------ item 1: lab --dir

/// A snapshot of a tree: every path with its kind, mode and contents (symlinks by target).
fn tree(root: &Path) -> Vec<(PathBuf, String)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let what = if m.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(&p).unwrap().display())
        } else if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
            format!("dir {:o}", m.permissions().mode())
        } else {
            format!(
                "file {:o} {:?}",
                m.permissions().mode(),
                std::fs::read(&p).unwrap()
            )
        };
        out.push((p, what));
    }
    out.sort();
    out
}

/// `lab --dir` on a platform tree (with a symlink to a file outside it) changes nothing and
/// exits 2; so do a symlinked dir and a file. An empty dir and a new path are accepted.
#[test]
fn lab_dir_refuses_anything_but_a_new_or_empty_directory() {
    let t = reference_tree();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim.toml");
    std::fs::write(&victim, b"production").unwrap();
    std::os::unix::fs::symlink(&victim, t.path().join("etc/phoenix-doctor.toml")).unwrap();
    std::os::unix::fs::symlink(&victim, t.path().join("pki")).unwrap();
    let link_dir = outside.path().join("link-to-tree");
    std::os::unix::fs::symlink(t.path(), &link_dir).unwrap();
    let before = tree(t.path());
    for dir in [
        t.path().to_path_buf(),
        t.path().join("etc"),
        link_dir.clone(),
        victim.clone(),
    ] {
        let args = ["lab", "--dir", dir.to_str().unwrap()];
        let (code, out, err) = run(&args);
        assert_eq!(code, 2, "{dir:?}: {out}{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(dir.to_str().unwrap()), "{err}");
    }
    assert_eq!(tree(t.path()), before, "the tree changed");
    assert_eq!(std::fs::read(&victim).unwrap(), b"production");
}

// ------------------------------------------------------------ item 7: signals and modes

/// Every private key 0600, every directory 0700 (the lab's own tree).
fn assert_private(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut keys = 0;
    for (p, _) in tree(root) {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let mode = m.permissions().mode() & 0o777;
        if m.is_dir() {
            assert_eq!(mode, 0o700, "{p:?}");
        } else if p.extension().is_some_and(|x| x == "key") {
            assert_eq!(mode, 0o600, "{p:?}");
            keys += 1;
        }
    }
    assert!(keys >= 5, "only {keys} keys under {root:?}");
}

/// The one directory `prefix*` in `tmp`, once it holds the lab's keys.
fn wait_for_lab_dir(tmp: &Path, prefix: &str, child: &mut std::process::Child) -> PathBuf {
    let t0 = Instant::now();
    loop {
        let found = std::fs::read_dir(tmp)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
            });
        if let Some(d) = found {
            // The lab's list of its files is written last, once every file is in place.
            if d.join(".phoenix-doctor-lab").exists() {
                return d;
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            panic!("exited early: {st}");
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no {prefix}* dir");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn kill(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("did not exit after the signal");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills its child when dropped (a failed assertion never leaves a lab running).
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const SIGNALS: &[(&str, i32)] = &[("INT", 2), ("TERM", 15), ("HUP", 1), ("QUIT", 3)];

/// `lab` (temporary dir) and `demo`, each stopped by each signal: keys 0600 in 0700 dirs while
/// they run, the directory gone afterwards. The demo is frozen (SIGSTOP) while it is inspected
/// so the signal surely arrives mid-run; it then exits with 128 + the signal's number.
/// Binds the lab's loopback ports: run under `flock /tmp/pd-net.lock`.
#[test]
fn lab_and_demo_clean_up_on_every_stop_signal() {
    if !is_root() {
        return; // the CLI lab binds 53/443 on 127.0.0.0/24
    }
    let exe = env!("CARGO_BIN_EXE_phoenix-doctor");
    for (sig, n) in SIGNALS {
        for cmd in ["lab", "demo"] {
            let tmp = tempfile::tempdir().unwrap();
            let mut reap = Reap(
                Command::new(exe)
                    .arg(cmd)
                    .env("TMPDIR", tmp.path())
                    .env("NO_COLOR", "1")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            );
            let child = &mut reap.0;
            let prefix = format!("phoenix-doctor-{cmd}-");
            let dir = wait_for_lab_dir(tmp.path(), &prefix, child);
            if cmd == "demo" {
                kill(child.id(), "STOP");
            }
            assert_private(&dir);
            assert!(child.try_wait().unwrap().is_none(), "{cmd} ended too soon");
            kill(child.id(), sig);
            if cmd == "demo" {
                kill(child.id(), "CONT");
            }
            let st = wait_exit(child);
            assert!(!dir.exists(), "{cmd} SIG{sig}: {dir:?} left behind");
            let want = if cmd == "demo" { 128 + n } else { 0 };
            assert_eq!(st.code(), Some(want), "{cmd} SIG{sig}: {st}");
        }
    }
}

// ------------------------------------------------------------ item 9: secrets and controls

const HOSTILE: &str = "\\u001b]0;pwned\\u0007\\u001b[2J\\u0000\\u009b";

fn assert_no_controls(what: &str, s: &str) {
    assert!(
        !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t'),
        "{what}: raw control characters in: {s:?}"
    );
}

/// Config strings with terminal escapes (an LXC name, a bad address) reach the human formats
/// and stderr only escaped; `--format json` stays valid JSON.
#[test]
fn config_strings_with_escapes_are_escaped_in_every_human_format() {
    let t = reference_tree();
    let lxc = t.path().join("etc/phoenix_lxc_configs.json");
    let text = std::fs::read_to_string(&lxc).unwrap();
    let evil = text.replacen(
        "\"name\": \"Traefik-Internal\"",
        &format!("\"name\": \"Traefik{HOSTILE}\""),
        1,
    );
    assert_ne!(evil, text);
    std::fs::write(&lxc, &evil).unwrap();
    let e = etc(&t);
    for cmd in [&["lint"][..], &["show", "dns"], &["plan", "qdrant"]] {
        let mut args = cmd.to_vec();
        args.extend(["--config-dir", &e]);
        let (_, out, err) = run(&args);
        assert_no_controls(&format!("{args:?} stdout"), &out);
        assert_no_controls(&format!("{args:?} stderr"), &err);
        // `show dns` names every guest (lint groups findings by cause and may not name it).
        if cmd[0] == "show" {
            assert!(out.contains("\\x1b]0;pwned\\x07"), "{args:?}: {out}");
        }
        args.extend(["--format", "json"]);
        let (_, out, err) = run(&args);
        let _ = json(&out, &err);
    }
    // A quoted value in an error message.
    let bad = text.replacen(
        "\"ip\": \"10.0.0.12/24\"",
        &format!("\"ip\": \"10.0.0.12{HOSTILE}\""),
        1,
    );
    assert_ne!(bad, text);
    std::fs::write(&lxc, bad).unwrap();
    let (code, _, err) = run(&["lint", "--config-dir", &e]);
    assert_eq!(code, 2, "{err}");
    assert_no_controls("error message", &err);
    assert!(err.contains("\\x1b]0;pwned"), "{err}");
}

/// A saved run whose messages carry terminal escapes: replayed as a table, escaped.
#[test]
fn replayed_messages_with_escapes_are_escaped() {
    let t = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixtures().join("scenarios/qdrant-down/run.json")).unwrap();
    let evil = text.replace("\"message\": \"", &format!("\"message\": \"{HOSTILE}"));
    assert_ne!(evil, text);
    let f = t.path().join("run.json");
    std::fs::write(&f, evil).unwrap();
    let (code, out, err) = run(&["trace", "qdrant", "--replay", f.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert_no_controls("table", &out);
    assert_no_controls("stderr", &err);
    assert!(out.contains("\\x1b]0;pwned"), "{out}");
    for format in ["json", "mermaid"] {
        let (_, out, err) = run(&[
            "trace",
            "qdrant",
            "--replay",
            f.to_str().unwrap(),
            "--format",
            format,
        ]);
        if format == "json" {
            let v = json(&out, &err);
            assert!(v.to_string().contains("\\u001b]0;pwned"));
        } else {
            assert_no_controls(format, &out);
        }
    }
}

/// The site file's type errors never echo a value under a secret-like key.
#[test]
fn site_file_errors_redact_secret_values() {
    let t = reference_tree();
    let site = t.path().join("etc/phoenix-doctor.toml");
    for text in [
        "[ports]\ntoken = \"S3CRET-canary\"\n",
        "[paths]\nadmin_password = 12345678\n",
    ] {
        std::fs::write(&site, text).unwrap();
        for cmd in READERS {
            let mut args = cmd.to_vec();
            let e = etc(&t);
            args.extend(["--config-dir", &e]);
            let (code, out, err) = run(&args);
            assert_clear_error(&args, code, &err, "phoenix-doctor.toml:2", "");
            assert!(
                !err.contains("S3CRET") && !err.contains("12345678") && !out.contains("S3CRET"),
                "{err}"
            );
        }
    }
}

/// A dir the lab sealed can be reused (a restarted lab); one with a file the lab did not write,
/// or with a symlink in place of one of its files, is refused and left as it is.
#[test]
fn a_lab_dir_is_reused_only_as_the_lab_left_it() {
    use phoenix_doctor::lab::{Lab as L, LabSpec};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("lab");
    let spec = LabSpec {
        dir: Some(dir.clone()),
        faults: vec![],
        net: 213,
    };
    let start = |spec: &LabSpec| rt.block_on(L::start(spec));
    rt.block_on(start(&spec).unwrap().stop());
    rt.block_on(start(&spec).expect("a sealed lab dir is reused").stop());
    let outside = t.path().join("outside");
    std::fs::write(&outside, b"keep").unwrap();
    let site = dir.join("etc/phoenix-doctor.toml");
    for case in ["added", "symlink"] {
        if case == "added" {
            std::fs::write(dir.join("etc/extra.json"), b"{}").unwrap();
        } else {
            std::fs::remove_file(dir.join("etc/extra.json")).unwrap();
            std::fs::remove_file(&site).unwrap();
            std::os::unix::fs::symlink(&outside, &site).unwrap();
        }
        let before = tree(&dir);
        let e = match start(&spec) {
            Ok(_) => panic!("{case}: reused"),
            Err(e) => e,
        };
        assert_eq!(e.kind(), phoenix_doctor::error::Kind::Input, "{case}: {e}");
        assert!(e.to_string().contains("lab --dir"), "{e}");
        assert_eq!(tree(&dir), before, "{case}: the dir changed");
    }
    assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
}
