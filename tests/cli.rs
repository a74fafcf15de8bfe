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
    for sub in SUBCOMMANDS {
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
    assert_eq!(bin(&["demo", "--healthy", "--fault", "no-route"]).0, 2);
    let (code, _, err) = bin(&["demo", "--fault", "no-such-fault"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("hosts-override"),
        "lists the known faults: {err}"
    );
}

#[test]
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
