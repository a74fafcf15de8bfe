//! The command line itself: help with examples on every subcommand, completions, the man page,
//! `explain` for every code, and usage errors.

use std::process::Command;

fn bin(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

const SUBCOMMANDS: &[&[&str]] = &[
    &["demo"],
    &["lab"],
    &["trace"],
    &["check"],
    &["plan"],
    &["lint"],
    &["show"],
    &["probe"],
    &["probe", "dns"],
    &["probe", "tcp"],
    &["probe", "tls"],
    &["probe", "mtls"],
    &["probe", "http"],
    &["explain"],
    &["agent"],
    &["serve"],
    &["completions"],
    &["man"],
];

#[test]
fn every_subcommand_has_help_with_an_example() {
    // `demo` and `lab` exist in the default build only (cargo feature `lab`).
    let built = |s: &&&[&str]| cfg!(feature = "lab") || !matches!(s[0], "demo" | "lab");
    for sub in SUBCOMMANDS.iter().filter(built) {
        let mut args: Vec<&str> = sub.to_vec();
        args.push("--help");
        let (code, out, err) = bin(&args);
        assert_eq!(code, 0, "{sub:?}: {err}");
        assert!(
            out.contains("Example: phoenix-doctor"),
            "{sub:?} --help has no example:\n{out}"
        );
    }
    let (_, out, _) = bin(&["trace", "--help"]);
    assert!(out.contains(
        "Exit codes: 0 healthy, 1 divergence found, 2 usage or config error, 3 could not judge"
    ));
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef phoenix-doctor"),
        ("fish", "complete -c phoenix-doctor"),
    ] {
        let (code, out, _) = bin(&["completions", shell]);
        assert_eq!(code, 0);
        assert!(out.contains(marker), "{shell}");
        assert!(
            out.contains("trace") && out.contains("explain"),
            "{shell} lists subcommands"
        );
    }
    let (code, out, _) = bin(&["man"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(".ie") || out.contains(".TH phoenix-doctor"),
        "{}",
        &out[..200.min(out.len())]
    );
    assert!(out.contains("trace"));
}

#[test]
fn explain_covers_every_code_it_lists() {
    let (code, list, _) = bin(&["explain"]);
    assert_eq!(code, 0);
    let codes: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(codes.len() > 40, "{list}");
    for c in &codes {
        let (code, out, err) = bin(&["explain", c]);
        assert_eq!(code, 0, "{c}: {err}");
        assert!(
            out.contains("What it means") && out.contains("Confirm by hand") && out.contains("Fix"),
            "{c}"
        );
    }
    let (code, out, _) = bin(&["explain", "pd-dns-003"]);
    assert_eq!(code, 0, "codes are case-insensitive");
    assert!(out.contains("hosts-file override"));
}

#[test]
fn an_unknown_code_suggests_the_closest() {
    let (code, _, err) = bin(&["explain", "PD-DNS-03"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("did you mean PD-DNS-003") || err.contains("did you mean PD-DNS-00"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(bin(&["frobnicate"]).0, 2);
    assert_eq!(bin(&["trace", "qdrant", "--timeout", "soon"]).0, 2);
    assert_eq!(bin(&["check"]).0, 2, "check needs targets or --all");
    // without the lab (the agent build), `demo` and `lab` are unknown commands
    assert_eq!(bin(&["demo", "--healthy", "--fault", "no-route"]).0, 2);
    let (code, _, err) = bin(&["demo", "--fault", "no-such-fault"]);
    assert_eq!(code, 2);
    if cfg!(feature = "lab") {
        assert!(
            err.contains("hosts-override"),
            "lists the known faults: {err}"
        );
    } else {
        assert!(err.contains("unrecognized subcommand 'demo'"), "{err}");
        assert_eq!(bin(&["lab"]).0, 2);
    }
}

#[test]
#[cfg(feature = "lab")]
fn a_reader_that_stops_early_is_not_a_crash() {
    // `phoenix-doctor demo | head -1`: stdout and stderr close before the report is written.
    let mut child = Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"))
        .args(["demo", "--healthy"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "a closed pipe must not panic (exit 101)"
    );
}

// Duration options: extreme and malformed values are a usage error (exit 2) in one clear line
// naming the option, never a panic (exit 101) and never a run with a silently chosen unit.

/// (command line before the option, the option). Probes aim at a loopback port nothing listens
/// on, so a value that slipped through would run (exit 1), not fail for another reason.
fn options() -> Vec<(Vec<&'static str>, &'static str)> {
    let mut v = Vec::new();
    for cmd in [vec!["trace", "qdrant"], vec!["check", "qdrant"]] {
        for opt in ["--timeout", "--budget", "--wait", "--interval"] {
            v.push((cmd.clone(), opt));
        }
    }
    for probe in [
        vec![
            "probe",
            "dns",
            "a.test",
            "--server",
            "127.0.0.1:1",
            "--hosts-file",
            "/dev/null",
            "--resolv-conf",
            "/dev/null",
        ],
        vec!["probe", "tcp", "127.0.0.1:1"],
        vec!["probe", "tls", "127.0.0.1:1", "--sni", "a.test"],
        vec!["probe", "mtls", "127.0.0.1:1", "--sni", "a.test"],
        vec!["probe", "http", "http://127.0.0.1:1/"],
    ] {
        v.push((probe, "--timeout"));
    }
    v
}

/// Each bad value and a word its message must contain.
const BAD: &[(&str, &str)] = &[
    ("100000000000000000000s", "too long"),
    ("10000000000000000000s", "too long"),
    ("18446744073709551616ms", "too long"),
    ("99999999h", "too long"),
    ("25h", "too long"),
    ("2", "add a unit, e.g. 2s"),
    ("0", "add a unit"),
    ("0s", "zero"),
    ("0ms", "zero"),
    ("soon", "not a duration"),
    ("-1s", "not a duration"),
    ("2x", "not a duration"),
];

#[test]
fn every_duration_option_rejects_extremes_in_one_line() {
    let mut failures = Vec::new();
    for (cmd, opt) in options() {
        for (value, word) in BAD {
            let mut args = cmd.clone();
            let arg = format!("{opt}={value}");
            args.push(&arg);
            let (code, stdout, stderr) = bin(&args);
            let lines: Vec<&str> = stderr.lines().collect();
            let ok = code == 2
                && stdout.is_empty()
                && lines.len() == 1
                && lines[0].contains(opt)
                && lines[0].contains(word);
            if !ok {
                failures.push(format!("{args:?}: exit {code}, stderr {stderr:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_accepted_range_is_the_documented_one() {
    // the largest accepted values pass the command line (the probe then runs: refused, exit 1)
    let (code, _, err) = bin(&["probe", "tcp", "127.0.0.1:1", "--timeout", "1h"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = bin(&["probe", "tcp", "127.0.0.1:1", "--timeout", "1m 30s"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = bin(&["probe", "tcp", "127.0.0.1:1", "--timeout", "61m"]);
    assert_eq!(code, 2, "{err}");
    for (opt, max, over) in [
        ("--budget", "24h", "1441m"),
        ("--wait", "24h", "24h 1s"),
        ("--interval", "1h", "3601s"),
    ] {
        // an accepted value gets past the command line to the missing saved run (exit 2 there)
        let (code, _, err) = bin(&["trace", "qdrant", opt, max, "--replay", "/nonexistent/run"]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("/nonexistent/run"), "{opt} {max}: {err}");
        let (code, _, err) = bin(&["trace", "qdrant", opt, over, "--replay", "/nonexistent/run"]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("too long") && err.contains(max),
            "{opt} {over}: {err}"
        );
    }
}
