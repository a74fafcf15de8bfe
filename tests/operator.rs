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
    let job = format!(
        r#"{{"version": {}, "timeout_ms": 500, "budget_ms": 2000, "body_limit": 1024, "scope": ["127.0.0.0/8"], "steps": []}}"#,
        phoenix_doctor::vantage::job::AGENT_PROTOCOL_VERSION
    );
    let job = job.as_bytes();
    let mut cases: Vec<(Vec<&str>, &[u8])> = vec![
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
    // `demo` and `lab` exist in the default build only (cargo feature `lab`)
    cases.retain(|(a, _)| cfg!(feature = "lab") || !matches!(a[0], "demo" | "lab"));
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

/// A trace report fits the screen too: its tables and its long lines (the headline's actual,
/// evidence with file paths) are fitted, and the finding code and the step stay whole.
#[test]
fn a_trace_report_fits_the_terminal() {
    let replay = format!(
        "{}/fixtures/scenarios/backend-tls/run.json",
        env!("CARGO_MANIFEST_DIR")
    );
    for cols in ["120", "80"] {
        let (code, out, err) = run(
            &["trace", "qdrant", "--replay", &replay],
            &[("COLUMNS", cols)],
        );
        assert_eq!(code, 1, "{err}");
        let limit: usize = cols.parse().unwrap();
        for line in out.lines() {
            assert!(
                display_width(line) <= limit,
                "{cols}: {} columns: {line}",
                display_width(line)
            );
        }
        assert!(out.contains("PD-TLS-005"), "{out}");
        assert!(out.contains("router-portainer.tls"), "{out}");
    }
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
    for sub in ["trace", "check", "lint", "probe", "probe-tls", "man"]
        .into_iter()
        .chain(cfg!(feature = "lab").then_some("demo"))
    {
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

// ---------------------------------------------------------------- configs from the platform's history

fn variant_etc(name: &str) -> String {
    root()
        .join("fixtures/configs/variants")
        .join(name)
        .join("etc")
        .display()
        .to_string()
}

fn lint_json(etc: &str) -> Vec<serde_json::Value> {
    let (code, out, err) = run(&["lint", "--config-dir", etc, "--format", "json"], &[]);
    assert!(code == 0 || code == 1, "lint {etc}: exit {code}: {err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    doc["findings"].as_array().unwrap().clone()
}

/// The one finding of `code` in a variant, with its severity and config file checked.
fn one_finding(etc: &str, code: &str, severity: &str, file: &str) -> serde_json::Value {
    let f = lint_json(etc);
    let hits: Vec<&serde_json::Value> = f.iter().filter(|f| f["code"] == code).collect();
    assert_eq!(hits.len(), 1, "{code}: {f:#?}");
    assert_eq!(hits[0]["severity"], severity);
    assert_eq!(hits[0]["provenance"][0]["file"], file);
    hits[0].clone()
}

#[test]
fn every_variant_is_read_by_lint_plan_and_show() {
    let dir = root().join("fixtures/configs/variants");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in ["no-domain-name", "no-vm-file", "compose-variable-port"] {
        assert!(names.contains(&n.to_string()), "{n} fixture");
    }
    for n in &names {
        let etc = variant_etc(n);
        lint_json(&etc);
        for what in ["dns", "routes", "firewall"] {
            let (code, out, err) = run(&["show", what, "--config-dir", &etc], &[]);
            assert_eq!(code, 0, "{n}: show {what}: {err}");
            if what == "dns" {
                assert!(out.contains("address=/"), "{n}: {out}");
            }
        }
        // Every target the config has plans; a refusal is one line naming why.
        let (code, out, err) = run(&["plan", "--config-dir", &etc, "no-such-target"], &[]);
        assert_eq!(code, 2, "{n}: {out}");
        assert_eq!(err.trim().lines().count(), 1, "{n}: {err}");
        let known = err.split("Known targets: ").nth(1).unwrap_or("").trim();
        for t in known.split(", ").filter(|t| !t.is_empty()) {
            let (code, _, err) = run(&["plan", t, "--config-dir", &etc], &[]);
            assert!(code == 0 || code == 2, "{n}: plan {t}: {code} {err}");
            assert!(!err.contains("panicked"), "{n}: plan {t}: {err}");
            if code == 2 {
                assert_eq!(err.trim().lines().count(), 1, "{n}: plan {t}: {err}");
            }
        }
    }
}

#[test]
fn a_config_without_domain_name_uses_the_hard_coded_domain_and_says_so() {
    let etc = variant_etc("no-domain-name");
    let cfg = one_finding(
        &etc,
        "PD-CFG-001",
        "info",
        "etc/phoenix_hypervisor_config.json",
    );
    assert!(cfg["title"]
        .as_str()
        .unwrap()
        .contains("internal.thinkheads.ai"));
    let (_, dns, _) = run(&["show", "dns", "--config-dir", &etc], &[]);
    assert!(
        dns.contains("address=/qdrant.internal.thinkheads.ai/10.0.0.153"),
        "{dns}"
    );
    assert!(
        dns.contains("address=/ca.internal.thinkheads.ai/10.0.0.10"),
        "{dns}"
    );
    // The reference config has the key: no such finding there.
    assert!(!lint_json(&reference())
        .iter()
        .any(|f| f["code"] == "PD-CFG-001"));
}

#[test]
fn a_config_without_a_vm_file_has_no_vms_and_says_so() {
    let etc = variant_etc("no-vm-file");
    one_finding(&etc, "PD-CFG-002", "info", "etc/phoenix_vm_configs.json");
    let (code, fw, _) = run(&["show", "firewall", "--config-dir", &etc], &[]);
    assert_eq!(code, 0);
    assert!(!fw.contains("1001.fw") && !fw.contains("1002.fw"), "{fw}");
    let (_, dns, _) = run(&["show", "dns", "--config-dir", &etc], &[]);
    assert!(!dns.contains("10.0.0.111"), "no VM addresses: {dns}");
}

#[test]
fn a_compose_variable_port_is_unknown_warned_about_and_not_planned() {
    let etc = variant_etc("compose-variable-port");
    let cfg = one_finding(
        &etc,
        "PD-CFG-003",
        "warning",
        "stacks/thinkheads_ai_app/phoenix.json",
    );
    let text = cfg.to_string();
    assert!(
        text.contains("loadbalancer.server.port=${API_PORT}"),
        "{text}"
    );
    assert!(text.contains("API_PORT"), "{text}");
    assert_eq!(cfg["provenance"][0]["line"], 11);
    for target in ["api", "api.internal.thinkheads.ai"] {
        let (code, _, err) = run(&["plan", target, "--config-dir", &etc], &[]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("not planned") && err.contains("API_PORT"),
            "{err}"
        );
        assert!(
            err.contains("stacks/thinkheads_ai_app/phoenix.json:11"),
            "{err}"
        );
    }
    // Not among the targets `check --all` would trace.
    let (_, _, err) = run(&["plan", "no-such-target", "--config-dir", &etc], &[]);
    assert!(!err.contains(" api,") && !err.ends_with(" api"), "{err}");
    // The rest of the config still plans.
    let (code, _, err) = run(&["plan", "qdrant", "--config-dir", &etc], &[]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_compose_variable_set_in_the_production_environment_gives_the_port() {
    let tmp = tempfile::tempdir().unwrap();
    let src = root().join("fixtures/configs/variants/compose-variable-port");
    let copy = |from: &Path, to: &Path| {
        let out = Command::new("cp")
            .arg("-r")
            .arg(from)
            .arg(to)
            .output()
            .unwrap();
        assert!(out.status.success());
    };
    copy(&src.join("etc"), &tmp.path().join("etc"));
    copy(&src.join("stacks"), &tmp.path().join("stacks"));
    let manifest = tmp.path().join("stacks/thinkheads_ai_app/phoenix.json");
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "\"production\": {",
        "\"production\": {\n            \"variables\": [{\"name\": \"API_PORT\", \"value\": \"8000\"}],",
    );
    std::fs::write(&manifest, text).unwrap();
    let etc = tmp.path().join("etc").display().to_string();
    assert!(!lint_json(&etc).iter().any(|f| f["code"] == "PD-CFG-003"));
    let (code, out, err) = run(
        &["plan", "api", "--config-dir", &etc, "--format", "json"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("10.0.0.102:8000"), "{out}");
}

// ---------------------------------------------------------------- the newcomer's command

#[test]
fn the_test_script_without_root_runs_what_it_can_and_names_the_rest() {
    let fake = tempfile::tempdir().unwrap();
    let script = |name: &str, body: &str| {
        let p = fake.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        let out = Command::new("chmod").arg("+x").arg(&p).output().unwrap();
        assert!(out.status.success());
    };
    // Not root, and a cargo that reports how it was called and fails like a failing suite.
    script("id", "echo 1000");
    script("cargo", "echo \"cargo $*\"; exit 101");
    let path = format!(
        "{}:{}",
        fake.path().display(),
        std::env::var("PATH").unwrap()
    );
    let out = Command::new(root().join("test"))
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(101),
        "cargo's exit code passes through"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let call = lines.iter().find(|l| l.starts_with("cargo test")).unwrap();
    assert!(
        call.contains("--lib") && call.contains("--test operator"),
        "{call}"
    );
    assert!(
        !call.contains("trace_netns") && !call.contains("vantage_netns"),
        "{call}"
    );
    assert!(
        call.contains("--skip tcp_states_under_nftables_in_a_private_netns"),
        "{call}"
    );
    let last = lines.last().unwrap();
    assert!(last.starts_with("./test: not run without root: "), "{last}");
    for named in [
        "tests/trace_netns.rs",
        "tests/vantage_netns.rs",
        "need root",
    ] {
        assert!(last.contains(named), "{named} in {last}");
    }
}

// ---------------------------------------------------------------- citations users can follow

/// Names of documents users do not have (design notes of the tool's authors, their section and
/// item numbers), found in `text`: `(line, what)`.
fn foreign_citations(text: &str) -> Vec<(usize, String)> {
    let docs = [
        concat!("PLATFORM", "_FACTS"),
        concat!("ANCH", "ORS"),
        concat!("STYLE", "_STUDY"),
        concat!("TEST", "LAB.md"),
        "\u{a7}",
    ];
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for d in docs {
            if line.contains(d) {
                out.push((n + 1, d.to_string()));
            }
        }
        // Item numbers as whole words: `F` and one or two digits, or `A`, one digit and an
        // optional letter; `-A` and a digit (a grep option) is not one.
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if !chars[i].is_alphanumeric() {
                i += 1;
                continue;
            }
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let prev = if start > 0 { chars[start - 1] } else { ' ' };
            let digits = |s: &str, max: usize| {
                !s.is_empty() && s.len() <= max && s.chars().all(|c| c.is_ascii_digit())
            };
            let item = match word.chars().next() {
                Some('F') => digits(&word[1..], 2),
                Some('A') if prev != '-' => {
                    let rest = word[1..].trim_end_matches(|c: char| c.is_ascii_lowercase());
                    digits(rest, 1) && word.len() - 1 - rest.len() <= 1
                }
                _ => false,
            };
            if item {
                out.push((n + 1, word));
            }
        }
    }
    out
}

#[test]
fn the_citation_scanner_finds_item_numbers_and_nothing_else() {
    assert_eq!(
        foreign_citations(concat!("see F", "27 and A", "5b")).len(),
        2
    );
    assert_eq!(
        foreign_citations(concat!("PLATFORM", "_FACTS \u{a7}2")).len(),
        2
    );
    assert!(foreign_citations("grep -A3 PVEFW; F100; AF1; A10; lxc:101 (A)").is_empty());
}

#[test]
fn no_message_doc_or_source_file_cites_documents_users_do_not_have() {
    let mut files = vec![root().join("README.md")];
    let mut dirs = vec![
        root().join("src"),
        root().join("probes"),
        root().join("docs"),
        root().join("tests"),
        root().join("benches"),
    ];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| {
                ["rs", "md", "toml", "sh", "snap", "json"].contains(&x.to_str().unwrap_or(""))
            }) {
                files.push(p);
            }
        }
    }
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (line, what) in foreign_citations(&text) {
            bad.push(format!("{}:{line}: {what}", f.display()));
        }
    }
    // What the tool prints about every code.
    let (_, explain, _) = run(&["explain"], &[]);
    for (line, what) in foreign_citations(&explain) {
        bad.push(format!("explain:{line}: {what}"));
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert!(files.len() > 50, "walked {} files", files.len());
}

// ---------------------------------------------------------------- a short-lived certificate

/// `openssl s_server` with a certificate that lives one day: `probe tls` says how many hours
/// are left, not "0 days".
#[test]
fn probe_tls_on_a_24_hour_certificate_prints_hours() {
    let dir = tempfile::tempdir().unwrap();
    let (crt, key) = (dir.path().join("leaf.crt"), dir.path().join("leaf.key"));
    let ca = dir.path().join("ca.crt");
    // A root valid for a week, and a server leaf it signs for one day.
    let script = r#"set -e
cd "$1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 -subj "/CN=Short Test Root" -keyout ca.key -out ca.crt
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=short.test -keyout leaf.key -out leaf.csr
printf 'subjectAltName=DNS:short.test\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' > leaf.ext
openssl x509 -req -in leaf.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile leaf.ext -out leaf.crt
"#;
    let out = Command::new("bash")
        .args(["-c", script, "mkcerts"])
        .arg(dir.path())
        .output()
        .expect("bash and openssl are installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let addr = "127.0.41.7:18443";
    let mut server = Command::new("openssl")
        .args(["s_server", "-accept", addr, "-www", "-quiet"])
        .arg("-cert")
        .arg(&crt)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..50 {
        if std::net::TcpStream::connect(addr).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let ca_s = ca.display().to_string();
    let result = up.then(|| {
        run(
            &["probe", "tls", addr, "--sni", "short.test", "--ca", &ca_s],
            &[],
        )
    });
    let _ = server.kill();
    let _ = server.wait();
    let (code, text, err) = result.expect("openssl s_server listens");
    assert_eq!(code, 0, "{text}{err}");
    let line = text
        .lines()
        .find(|l| l.contains("remaining"))
        .unwrap_or_else(|| panic!("no remaining line: {text}"));
    assert!(
        line.contains("23h5") || line.contains("24h00m"),
        "hours and minutes for a one-day leaf: {line}"
    );
    assert!(!line.contains("days"), "{line}");
    assert!(line.contains("% of its life"), "{line}");
}
