//! What an operator meets at the terminal: a reader that closes the pipe early, tables in a
//! 120-column pane, grouped and filtered `lint` output in every format, and the man pages.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_phoenix-doctor");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn reference() -> String {
    root()
        .join("fixtures/configs/reference/etc")
        .display()
        .to_string()
}

fn replay_file() -> String {
    root()
        .join("fixtures/scenarios/backend-tls/run.json")
        .display()
        .to_string()
}

/// Run with a pipe on stdout whose reader has already gone: the command starts only after the
/// test dropped the reading end, so its first write meets a closed pipe.
fn run_into_closed_pipe(args: &[String], stdin: &[u8]) -> (Option<i32>, String) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("sleep 0.3; exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .env("PHOENIX_DOCTOR_CONFIG_DIR", reference())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code(), err)
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_reader_that_closes_early_ends_every_command_quietly_with_exit_0() {
    let replay = replay_file();
    let job = br#"{"version": 1, "timeout_ms": 200, "body_limit": 1024, "steps": []}"#;
    let cases: Vec<(Vec<&str>, &[u8])> = vec![
        (vec!["demo", "--list-faults"], b""),
        (vec!["lab", "--list-faults"], b""),
        (vec!["trace", "qdrant", "--replay", &replay], b""),
        (vec!["check", "qdrant", "--replay", &replay], b""),
        (vec!["plan", "qdrant"], b""),
        (vec!["plan", "qdrant", "--format", "json"], b""),
        (vec!["lint"], b""),
        (vec!["lint", "--format", "json"], b""),
        (vec!["lint", "--format", "junit"], b""),
        (vec!["show", "dns"], b""),
        (vec!["show", "routes"], b""),
        (vec!["show", "firewall"], b""),
        (
            vec!["probe", "tcp", "127.0.0.1:9", "--timeout", "300ms"],
            b"",
        ),
        (
            vec![
                "probe",
                "dns",
                "x.invalid",
                "--server",
                "127.0.0.1:9",
                "--timeout",
                "300ms",
            ],
            b"",
        ),
        (
            vec![
                "probe",
                "tls",
                "127.0.0.1:9",
                "--sni",
                "x.invalid",
                "--timeout",
                "300ms",
            ],
            b"",
        ),
        (
            vec![
                "probe",
                "mtls",
                "127.0.0.1:9",
                "--sni",
                "x.invalid",
                "--timeout",
                "300ms",
            ],
            b"",
        ),
        (
            vec!["probe", "http", "http://127.0.0.1:9/", "--timeout", "300ms"],
            b"",
        ),
        (vec!["explain"], b""),
        (vec!["explain", "PD-FW-005"], b""),
        (vec!["agent"], job),
        (vec!["completions", "bash"], b""),
        (vec!["completions", "zsh"], b""),
        (vec!["man"], b""),
        (vec!["--help"], b""),
    ];
    for (args, stdin) in cases {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (code, err) = run_into_closed_pipe(&args, stdin);
        assert_eq!(code, Some(0), "{args:?} exit code (stderr: {err})");
        assert!(err.is_empty(), "{args:?} wrote to stderr: {err}");
    }
}

#[test]
fn head_minus_one_sees_exit_0_from_completions_and_plan() {
    for cmd in [
        format!("{BIN} completions bash | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}"),
        format!(
            "{BIN} plan qdrant --config-dir {} | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}",
            reference()
        ),
    ] {
        for _ in 0..5 {
            let out = Command::new("bash").arg("-c").arg(&cmd).output().unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{cmd}");
            assert!(
                out.stderr.is_empty(),
                "{cmd}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn display_width(s: &str) -> usize {
    use unicode_width::UnicodeWidthStr;
    s.width()
}

#[test]
fn lint_and_plan_on_the_reference_config_fit_120_columns() {
    let etc = reference();
    for args in [
        vec!["lint", "--config-dir", &etc],
        vec!["plan", "qdrant", "--config-dir", &etc],
    ] {
        let (code, out, err) = run(&args, &[("COLUMNS", "120")]);
        assert!(code == 0 || code == 1, "{args:?}: {code} {err}");
        for line in out.lines() {
            assert!(
                display_width(line) <= 120,
                "{args:?}: {} columns: {line}",
                display_width(line)
            );
        }
        // The code and the config line stay whole.
        if args[0] == "lint" {
            assert!(out.contains("│ PD-FW-005     │"), "{out}");
            assert!(out.contains("etc/phoenix_lxc_configs.json:"), "{out}");
        } else {
            assert!(
                out.contains("etc/phoenix_hypervisor_config.json:29"),
                "{out}"
            );
            assert!(out.contains("host-dns.dns.qdrant"), "{out}");
        }
    }
    // A pipe without COLUMNS gets 100.
    let (_, out, _) = run(&["lint", "--config-dir", &etc], &[]);
    assert!(out.lines().all(|l| display_width(l) <= 100));
    assert!(out.lines().any(|l| display_width(l) > 90));
}

#[test]
fn lint_groups_the_unenforced_container_firewalls_into_one_row() {
    let etc = reference();
    let (_, json, _) = run(&["lint", "--config-dir", &etc, "--format", "json"], &[]);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let fw5: Vec<&serde_json::Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "PD-FW-005")
        .collect();
    // Eight containers of the reference config have firewall rules and no [OPTIONS] enable:
    // 101, 102, 103, 801, 802, 900, 914, 917.
    assert_eq!(fw5.len(), 8, "JSON keeps one finding per container");
    let (_, table, _) = run(&["lint", "--config-dir", &etc], &[("COLUMNS", "120")]);
    let rows = table
        .lines()
        .filter(|l| l.starts_with("│ PD-FW-005 "))
        .count();
    assert_eq!(rows, 1, "{table}");
    let row: String = table
        .split("│ PD-FW-005 ")
        .nth(1)
        .unwrap()
        .split("\n│ PD-")
        .next()
        .unwrap()
        .to_string();
    for ct in ["101", "102", "103", "801", "802", "900", "914", "917"] {
        assert!(
            row.contains(&format!("lxc:{ct}")),
            "lxc:{ct} missing in {row}"
        );
    }
    assert!(row.contains("(8 cases)"), "{row}");
}

#[test]
fn lint_filters_by_severity_and_code() {
    let etc = reference();
    let findings = |extra: &[&str]| -> Vec<(String, String)> {
        let mut args = vec!["lint", "--config-dir", &etc, "--format", "json"];
        args.extend_from_slice(extra);
        let (_, out, err) = run(&args, &[]);
        let doc: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["code"].as_str().unwrap().to_string(),
                    f["severity"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let all = findings(&[]);
    let errors = findings(&["--severity", "error"]);
    assert!(!errors.is_empty() && errors.iter().all(|(_, s)| s == "error"));
    assert_eq!(
        errors.len(),
        all.iter().filter(|(_, s)| s == "error").count()
    );
    let warn = findings(&["--severity", "warning"]);
    assert!(warn.iter().all(|(_, s)| s != "info"));
    assert!(warn.len() > errors.len());
    let fw = findings(&["--code", "PD-FW"]);
    assert!(!fw.is_empty() && fw.iter().all(|(c, _)| c.starts_with("PD-FW-")));
    let two = findings(&["--code", "PD-FW-005", "--code", "pd-cert-006"]);
    assert_eq!(two.iter().filter(|(c, _)| c == "PD-FW-005").count(), 8);
    assert_eq!(two.iter().filter(|(c, _)| c == "PD-CERT-006").count(), 2);
    assert_eq!(two.len(), 10);
    // Only warnings selected: nothing of error severity, so lint exits 0.
    let (code, _, _) = run(&["lint", "--config-dir", &etc, "--code", "PD-FW-005"], &[]);
    assert_eq!(code, 0);
    let (code, _, _) = run(&["lint", "--config-dir", &etc], &[]);
    assert_eq!(code, 1);
}

#[test]
fn lint_junit_is_well_formed_and_counts_the_errors_as_failures() {
    let etc = reference();
    let (_, json, _) = run(&["lint", "--config-dir", &etc, "--format", "json"], &[]);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let all = doc["findings"].as_array().unwrap();
    let errors = all.iter().filter(|f| f["severity"] == "error").count();
    let (code, xml, err) = run(&["lint", "--config-dir", &etc, "--format", "junit"], &[]);
    assert_eq!(code, 1, "{err}");
    let parsed = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let suites = parsed.root_element();
    assert_eq!(suites.tag_name().name(), "testsuites");
    let cases: Vec<_> = parsed
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), all.len());
    let failures = parsed
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .count();
    assert_eq!(failures, errors);
    assert_eq!(
        suites.attribute("failures"),
        Some(errors.to_string().as_str())
    );
    let (code, _, err) = run(&["lint", "--config-dir", &etc, "--format", "mermaid"], &[]);
    assert_eq!(code, 2, "{err}");
}

/// The pages a roff page refers to as `name(1)`.
fn referenced_pages(roff: &str) -> Vec<String> {
    let text = roff.replace("\\-", "-");
    let mut out = Vec::new();
    for word in text.split(|c: char| c.is_whitespace() || c == '\\') {
        if let Some(name) = word.strip_suffix("(1)") {
            let name = name.trim_start_matches("fB").trim_start_matches("fR");
            if name.starts_with("phoenix-doctor") {
                out.push(name.to_string());
            }
        }
    }
    out
}

#[test]
fn man_names_only_pages_that_exist() {
    let (code, page, _) = run(&["man"], &[]);
    assert_eq!(code, 0);
    assert!(page.contains(".TH phoenix-doctor 1"), "{page}");
    assert!(
        referenced_pages(&page).is_empty(),
        "stdout's single page names other pages: {:?}",
        referenced_pages(&page)
    );
    assert!(page.contains("phoenix\\-doctor trace"));

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man1");
    let d = dir.display().to_string();
    let (code, out, err) = run(&["man", "--dir", &d], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("phoenix-doctor-probe-dns.1"), "{out}");
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for sub in [
        "demo",
        "trace",
        "check",
        "lint",
        "probe",
        "probe-tls",
        "man",
    ] {
        assert!(
            pages.contains(&format!("phoenix-doctor-{sub}.1")),
            "{sub} missing in {pages:?}"
        );
    }
    let mut named = 0;
    for p in &pages {
        let text = std::fs::read_to_string(dir.join(p)).unwrap();
        for r in referenced_pages(&text) {
            named += 1;
            assert!(
                Path::new(&dir).join(format!("{r}.1")).is_file(),
                "{p} names {r}(1), which was not written"
            );
        }
    }
    assert!(named >= 12, "the index pages name their subcommands' pages");

    // A directory that holds anything is refused, and left as it was.
    let (code, _, err) = run(&["man", "--dir", &d], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), pages.len());
}
