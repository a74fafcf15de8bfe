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

/// LXC 102's `network_config.ip` is given twice in the fixture (10.0.0.250/24, then
/// 10.0.0.12/24). The platform reads it with jq, where the last wins.
#[test]
fn duplicate_keys_keep_the_last_value_as_jq_does() {
    let d = fixtures().join("configs/variants/duplicate-keys/etc");
    let raw = phoenix_doctor::config::load(&d, None).unwrap();
    let l102 = raw.lxcs.iter().find(|g| g.id.value == 102).unwrap();
    let ip = l102.ip.as_ref().unwrap();
    assert_eq!(ip.value.ip(), Some("10.0.0.12".parse().unwrap()));
    assert_eq!(ip.prov.line, Some(791));
    let (code, out, err) = run(&["show", "dns", "--config-dir", d.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("/10.0.0.12\n") && !out.contains("10.0.0.250"),
        "{out}"
    );
}
