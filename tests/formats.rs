//! Every command × every format it prints, through the format's real consumer or validator:
//! JSON Schema (docs/schema), `promtool check metrics`, a JUnit parser (python `junitparser`),
//! Mermaid's own parser (node + jsdom, when installed) and a strict stand-in for its grammar,
//! GitHub's workflow-command syntax, the monitoring-plugins status line. Scenario replays only:
//! no network.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn bin(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_WORKSPACE")
        .current_dir(root())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn scenario(name: &str) -> String {
    root()
        .join("fixtures/scenarios")
        .join(name)
        .join("run.json")
        .to_string_lossy()
        .into_owned()
}

/// A saved run with two targets: the healthy qdrant trace and the backend-tls one renamed.
fn two_targets(dir: &Path) -> String {
    let read = |n: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(scenario(n)).unwrap()).unwrap()
    };
    let mut doc = read("healthy");
    let mut broken = read("backend-tls")["runs"][0].clone();
    broken["plan"]["target"] = "qdrant-broken".into();
    broken["run"]["target"] = "qdrant-broken".into();
    doc["runs"].as_array_mut().unwrap().push(broken);
    let file = dir.join("two.json");
    std::fs::write(&file, serde_json::to_string(&doc).unwrap()).unwrap();
    file.to_string_lossy().into_owned()
}

/// The runs walked: (label, arguments before `--format`, expected native exit code).
fn runs(two: &str) -> Vec<(String, Vec<String>, i32)> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        (
            "trace healthy".into(),
            s(&["trace", "qdrant", "--replay", &scenario("healthy")]),
            0,
        ),
        (
            "trace diverged".into(),
            s(&["trace", "qdrant", "--replay", &scenario("backend-tls")]),
            1,
        ),
        (
            "check healthy".into(),
            s(&["check", "--replay", &scenario("healthy")]),
            0,
        ),
        (
            "check diverged".into(),
            s(&["check", "--replay", &scenario("expired-leaf")]),
            1,
        ),
        (
            "check two targets".into(),
            s(&["check", "--replay", two]),
            1,
        ),
        (
            "check --all two targets".into(),
            s(&["check", "--all", "--replay", two]),
            1,
        ),
    ]
}

fn with_format(args: &[String], format: &str) -> Vec<String> {
    let mut a = args.to_vec();
    a.push("--format".into());
    a.push(format.into());
    a
}

fn run_fmt(args: &[String], format: &str) -> (i32, String, String) {
    let a = with_format(args, format);
    bin(&a.iter().map(String::as_str).collect::<Vec<_>>())
}

fn check_schema() -> jsonschema::Validator {
    let load = |n: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(root().join("docs/schema").join(n)).unwrap())
            .unwrap()
    };
    let trace = load("trace-report.v1.json");
    let registry = jsonschema::Registry::new()
        .add(trace["$id"].as_str().unwrap(), trace.clone())
        .unwrap()
        .prepare()
        .unwrap();
    jsonschema::options()
        .with_registry(&registry)
        .build(&load("check-report.v1.json"))
        .expect("the check schema compiles")
}

#[test]
fn json_of_trace_and_check_matches_the_published_check_schema() {
    let dir = tempfile::tempdir().unwrap();
    let two = two_targets(dir.path());
    let v = check_schema();
    for (label, args, code) in runs(&two) {
        let (rc, out, err) = run_fmt(&args, "json");
        assert_eq!(rc, code, "{label}: {err}");
        let doc: Value = serde_json::from_str(&out).unwrap();
        let errors: Vec<String> = v
            .iter_errors(&doc)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{label}: {errors:#?}");
        assert_eq!(doc["schema_version"], 1, "{label}");
        if label.contains("two targets") {
            assert_eq!(doc["verdict"], "diverged");
            assert_eq!(doc["reports"][0]["target"], "qdrant");
            assert_eq!(doc["reports"][1]["target"], "qdrant-broken");
        }
    }
    // The schema is not vacuous: a wrapper with one report, a bad verdict, no schema_version fail.
    let one: Value = serde_json::from_str(
        &run_fmt(&runs(&two)[0].1, "json")
            .1
            .replace("\"schema_version\": 1", "\"schema_version\": 2"),
    )
    .unwrap();
    assert!(!v.is_valid(&one));
    let (_, out, _) = run_fmt(&runs(&two)[4].1, "json");
    let mut doc: Value = serde_json::from_str(&out).unwrap();
    doc["verdict"] = "broken".into();
    assert!(!v.is_valid(&doc));
    doc["verdict"] = "diverged".into();
    doc["reports"].as_array_mut().unwrap().pop();
    assert!(!v.is_valid(&doc), "a wrapper holds several reports");
}

#[test]
fn every_json_document_carries_schema_version() {
    let reference = root().join("fixtures/configs/reference/etc");
    let cd = reference.to_str().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["plan", "qdrant", "--config-dir", cd],
        vec!["show", "dns", "--config-dir", cd],
        vec!["show", "routes", "--config-dir", cd],
        vec!["show", "firewall", "--config-dir", cd],
        vec!["show", "firewall", "--file", "103", "--config-dir", cd],
        vec!["lint", "--config-dir", cd],
        vec!["probe", "tcp", &addr, "--scope", "127.0.0.0/8"],
    ];
    for mut args in cases {
        args.extend(["--format", "json"]);
        let (rc, out, err) = bin(&args);
        assert!(rc == 0 || rc == 1, "{args:?}: {rc} {err}");
        let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert_eq!(doc["schema_version"], 1, "{args:?}");
    }
    drop(listener);
}

/// Run promtool on `text` when it is installed.
fn promtool(text: &str) -> Option<(bool, String)> {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipping promtool: not runnable ({e})");
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Some((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// metric name → label names, written by hand: every label names what was traced, none its state.
fn expected_labels() -> BTreeMap<&'static str, Vec<&'static str>> {
    BTreeMap::from([
        ("phoenix_doctor_last_run_timestamp_seconds", vec![]),
        ("phoenix_doctor_trace_healthy", vec!["target"]),
        ("phoenix_doctor_trace_verdict", vec!["target", "verdict"]),
        ("phoenix_doctor_trace_duration_seconds", vec!["target"]),
        (
            "phoenix_doctor_step_ok",
            vec!["target", "step", "hop", "from", "layer"],
        ),
        (
            "phoenix_doctor_step_first_divergence",
            vec!["target", "step"],
        ),
        (
            "phoenix_doctor_step_duration_seconds",
            vec!["target", "step"],
        ),
        (
            "phoenix_doctor_probe_duration_seconds",
            vec!["target", "step", "phase"],
        ),
        (
            "phoenix_doctor_cert_expiry_timestamp_seconds",
            vec!["target", "hop", "server_name"],
        ),
        (
            "phoenix_doctor_findings",
            vec!["target", "severity", "origin"],
        ),
    ])
}

/// One sample line: metric name, labels in order, value.
type Sample = (String, Vec<(String, String)>, f64);

/// The samples of an exposition.
fn samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (head, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match head.split_once('{') {
            None => (head.to_string(), vec![]),
            Some((n, rest)) => {
                let body = rest.strip_suffix('}').unwrap();
                let labels = body
                    .split("\",")
                    .map(|kv| {
                        let (k, v) = kv.split_once("=\"").unwrap();
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (n.to_string(), labels)
            }
        };
        out.push((name, labels, value.parse().unwrap()));
    }
    out
}

#[test]
fn prometheus_passes_promtool_and_keeps_every_label_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let two = two_targets(dir.path());
    let states: BTreeSet<&str> = [
        "ok",
        "diverged",
        "unreachable",
        "blocked",
        "cannot-judge",
        "warn",
        "healthy",
    ]
    .into();
    let want = expected_labels();
    for (label, args, code) in runs(&two) {
        let (rc, out, err) = run_fmt(&args, "prometheus");
        assert_eq!(rc, code, "{label}: {err}");
        if let Some((ok, msg)) = promtool(&out) {
            assert!(ok, "{label}: promtool check metrics: {msg}\n{out}");
        }
        let mut verdicts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for (name, labels, value) in samples(&out) {
            let names: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(
                Some(&names),
                want.get(name.as_str()),
                "{label}: labels of {name}"
            );
            seen.insert(name.clone());
            for (k, v) in &labels {
                assert!(!v.contains(' '), "{label}: free text in {name}{{{k}={v}}}");
                if name == "phoenix_doctor_trace_verdict" && k == "verdict" {
                    verdicts
                        .entry(labels[0].1.clone())
                        .or_default()
                        .insert(v.clone());
                } else {
                    assert!(
                        !states.contains(v.as_str()),
                        "{label}: the state `{v}` is a label value of {name}"
                    );
                }
            }
            if name.ends_with("_timestamp_seconds") {
                assert!(value > 1.7e9, "{label}: {name} is a Unix time");
            }
        }
        for (target, vs) in &verdicts {
            assert_eq!(
                vs.iter().map(String::as_str).collect::<Vec<_>>(),
                ["cannot-judge", "diverged", "healthy"],
                "{label}: every verdict present for {target}"
            );
        }
        for m in [
            "phoenix_doctor_last_run_timestamp_seconds",
            "phoenix_doctor_cert_expiry_timestamp_seconds",
            "phoenix_doctor_probe_duration_seconds",
        ] {
            assert!(seen.contains(m), "{label}: {m} missing");
        }
    }
    // The verdict of a diverged trace is 1 on `diverged` only; its first divergence is the TLS
    // step of the hop to Portainer (the fault serves a self-signed certificate there).
    let (_, out, _) = run_fmt(&runs(&two)[1].1, "prometheus");
    assert!(out.contains("phoenix_doctor_trace_verdict{target=\"qdrant\",verdict=\"diverged\"} 1"));
    assert!(out.contains("phoenix_doctor_trace_verdict{target=\"qdrant\",verdict=\"healthy\"} 0"));
    assert!(out.contains("phoenix_doctor_trace_healthy{target=\"qdrant\"} 0"));
    assert!(out.contains(
        "phoenix_doctor_step_first_divergence{target=\"qdrant\",step=\"router-portainer.tls\"} 1"
    ));
    let ones = out
        .lines()
        .filter(|l| l.starts_with("phoenix_doctor_step_first_divergence{") && l.ends_with(" 1"))
        .count();
    assert_eq!(ones, 1, "exactly one first divergence");
}

/// Certificate expiry read from the served chains: every certificate of the healthy lab is valid
/// at the run's time; the expired-leaf fault serves one that expired before it.
#[test]
fn prometheus_certificate_expiry_is_read_from_the_served_chain() {
    let expiry = |name: &str| -> (f64, Vec<f64>) {
        let (_, out, _) = bin(&[
            "trace",
            "qdrant",
            "--replay",
            &scenario(name),
            "--format",
            "prometheus",
        ]);
        let s = samples(&out);
        let now = s
            .iter()
            .find(|x| x.0 == "phoenix_doctor_last_run_timestamp_seconds")
            .unwrap()
            .2;
        let certs = s
            .iter()
            .filter(|x| x.0 == "phoenix_doctor_cert_expiry_timestamp_seconds")
            .map(|x| x.2)
            .collect();
        (now, certs)
    };
    let (now, certs) = expiry("healthy");
    assert!(!certs.is_empty());
    assert!(certs.iter().all(|t| *t > now), "{now} {certs:?}");
    let (now, certs) = expiry("expired-leaf");
    assert!(certs.iter().any(|t| *t < now), "{now} {certs:?}");
}

/// A change of state changes values, not series: every scenario (healthy and each fault) exposes
/// the same series of the verdict, step and findings gauges.
#[test]
fn prometheus_series_do_not_change_with_the_state() {
    let stable = [
        "phoenix_doctor_trace_healthy",
        "phoenix_doctor_trace_verdict",
        "phoenix_doctor_trace_duration_seconds",
        "phoenix_doctor_step_ok",
        "phoenix_doctor_step_first_divergence",
        "phoenix_doctor_step_duration_seconds",
        "phoenix_doctor_findings",
    ];
    let series = |name: &str| -> BTreeSet<String> {
        let (_, out, _) = bin(&[
            "trace",
            "qdrant",
            "--replay",
            &scenario(name),
            "--format",
            "prometheus",
        ]);
        samples(&out)
            .into_iter()
            .filter(|s| stable.contains(&s.0.as_str()))
            .map(|(n, l, _)| format!("{n}{l:?}"))
            .collect()
    };
    let healthy = series("healthy");
    assert!(healthy.len() > 50);
    let mut dirs: Vec<String> = std::fs::read_dir(root().join("fixtures/scenarios"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("run.json").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 16);
    for d in dirs {
        assert_eq!(series(&d), healthy, "{d}");
    }
}

#[test]
fn prometheus_label_guard_rejects_a_state_label() {
    // The guard above is not vacuous: the old `verdict` label on step_ok fails it.
    let bad = "phoenix_doctor_step_ok{target=\"q\",step=\"s\",hop=\"h\",from=\"host\",layer=\"tls\",verdict=\"diverged\"} 0\n";
    let s = samples(bad);
    let names: Vec<&str> = s[0].1.iter().map(|(k, _)| k.as_str()).collect();
    assert_ne!(
        Some(&names),
        expected_labels().get("phoenix_doctor_step_ok")
    );
}

/// Parse JUnit XML with python's junitparser; None (skipped, with the reason) when absent.
fn junit_parse(xml: &str) -> Option<Result<String, String>> {
    let script = r#"
import sys
try:
    from junitparser import JUnitXml, Failure, Error, Skipped
except ImportError as e:
    print("SKIP", e); sys.exit(0)
xml = JUnitXml.fromfile(sys.argv[1])
for suite in xml:
    cases = list(suite)
    res = lambda kind: sum(1 for c in cases for r in c.result if isinstance(r, kind))
    assert suite.tests == len(cases), (suite.name, suite.tests, len(cases))
    assert suite.failures == res(Failure), (suite.name, "failures", suite.failures, res(Failure))
    assert suite.errors == res(Error), (suite.name, "errors")
    assert suite.skipped == res(Skipped), (suite.name, "skipped")
    print(suite.name, suite.tests, suite.failures, suite.errors, suite.skipped)
"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, xml).unwrap();
    let out = match Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("skipping the JUnit parser: python3 not runnable ({e})");
            return None;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if stdout.starts_with("SKIP") {
        eprintln!("skipping the JUnit parser: {stdout} (pip install junitparser)");
        return None;
    }
    Some(if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
    })
}

#[test]
fn junit_is_read_by_a_junit_parser() {
    let dir = tempfile::tempdir().unwrap();
    let two = two_targets(dir.path());
    for (label, args, code) in runs(&two) {
        let (rc, out, err) = run_fmt(&args, "junit");
        assert_eq!(rc, code, "{label}: {err}");
        if let Some(r) = junit_parse(&out) {
            let suites = r.unwrap_or_else(|e| panic!("{label}: {e}\n{out}"));
            let failing: usize = suites
                .lines()
                .map(|l| l.split(' ').nth_back(2).unwrap().parse::<usize>().unwrap())
                .sum();
            assert_eq!(failing > 0, code == 1, "{label}: {suites}");
        }
    }
}

/// The Mermaid blocks of an output: the whole text, or each fenced block of a Markdown document.
fn mermaid_blocks(out: &str) -> Vec<String> {
    if out.starts_with("sequenceDiagram\n") {
        return vec![out.to_string()];
    }
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in out.lines() {
        match (&mut cur, line) {
            (None, "```mermaid") => cur = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                cur = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            (None, l) => assert!(
                l.is_empty() || l.starts_with('#'),
                "only headings between blocks: {l:?}"
            ),
        }
    }
    assert!(cur.is_none(), "unclosed block");
    blocks
}

/// A strict stand-in for Mermaid's sequence-diagram grammar, limited to the statements we emit.
fn sequence_grammar(block: &str) -> Result<(), String> {
    let mut lines = block.lines();
    if lines.next() != Some("sequenceDiagram") {
        return Err("the first line is not `sequenceDiagram`".into());
    }
    let ident = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let text_ok = |s: &str| !s.is_empty() && !s.contains([';', '#', '\n']);
    let mut participants = BTreeSet::new();
    let mut depth = 0i32;
    for l in lines {
        let t = l.trim();
        if let Some(rest) = t.strip_prefix("title ") {
            if !text_ok(rest) {
                return Err(format!("bad title {t:?}"));
            }
        } else if let Some(rest) = t.strip_prefix("participant ") {
            let (id, label) = rest
                .split_once(" as ")
                .ok_or(format!("bad participant {t:?}"))?;
            if !ident(id) || !text_ok(label) {
                return Err(format!("bad participant {t:?}"));
            }
            participants.insert(id.to_string());
        } else if t.starts_with("rect rgb(") && t.ends_with(')') {
            depth += 1;
        } else if t == "end" {
            depth -= 1;
            if depth < 0 {
                return Err("`end` without `rect`".into());
            }
        } else if let Some(rest) = t.strip_prefix("Note over ") {
            let (who, text) = rest.split_once(": ").ok_or(format!("bad note {t:?}"))?;
            if !who.split(',').all(|p| participants.contains(p)) || !text_ok(text) {
                return Err(format!("bad note {t:?}"));
            }
        } else {
            let (arrow, text) = t
                .split_once(": ")
                .ok_or(format!("unknown statement {t:?}"))?;
            let (from, to) = arrow
                .split_once("->>")
                .or_else(|| arrow.split_once("-x"))
                .ok_or(format!("unknown arrow {t:?}"))?;
            if !participants.contains(from) || !participants.contains(to) || !text_ok(text) {
                return Err(format!("bad message {t:?}"));
            }
        }
    }
    if depth != 0 {
        return Err("unclosed `rect`".into());
    }
    Ok(())
}

/// Mermaid's own parser, when `node` and the `mermaid` and `jsdom` packages are there
/// (`npm install --prefix target/mermaid mermaid@11 jsdom`, or PD_MERMAID_MODULES=dir).
fn mermaid_real(blocks: &[String]) -> Option<Result<(), String>> {
    let modules = std::env::var_os("PD_MERMAID_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/mermaid/node_modules"));
    if !modules.join("mermaid/package.json").exists() || !modules.join("jsdom").exists() {
        eprintln!(
            "skipping Mermaid's own parser: no mermaid+jsdom in {} (npm install --prefix target/mermaid mermaid@11 jsdom)",
            modules.display()
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        let f = dir.path().join(format!("{i}.mmd"));
        std::fs::write(&f, b).unwrap();
        files.push(f);
    }
    let out = match Command::new("node")
        .arg(root().join("tests/data/mermaid-parse.mjs"))
        .arg(&modules)
        .args(&files)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("skipping Mermaid's own parser: node not runnable ({e})");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    Some(
        if out.status.success() && text.lines().count() == blocks.len() {
            Ok(())
        } else {
            Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
        },
    )
}

#[test]
fn mermaid_is_one_valid_document() {
    let dir = tempfile::tempdir().unwrap();
    let two = two_targets(dir.path());
    for (label, args, code) in runs(&two) {
        let (rc, out, err) = run_fmt(&args, "mermaid");
        assert_eq!(rc, code, "{label}: {err}");
        let blocks = mermaid_blocks(&out);
        let several = label.contains("two targets");
        assert_eq!(blocks.len(), if several { 2 } else { 1 }, "{label}\n{out}");
        assert_eq!(out.starts_with("sequenceDiagram\n"), !several, "{label}");
        for b in &blocks {
            sequence_grammar(b).unwrap_or_else(|e| panic!("{label}: {e}\n{b}"));
        }
        if let Some(r) = mermaid_real(&blocks) {
            r.unwrap_or_else(|e| panic!("{label}: Mermaid's parser: {e}\n{out}"));
        }
    }
    // The stand-in rejects what Mermaid rejects: two diagrams in one document.
    let (_, one, _) = run_fmt(&runs(&two)[1].1, "mermaid");
    assert!(sequence_grammar(&format!("{one}{one}")).is_err());
    if let Some(r) = mermaid_real(&[format!("{one}{one}")]) {
        assert!(r.is_err(), "Mermaid accepts two diagrams in one document?");
    }
}

/// One workflow command: `::cmd[ k=v,k=v]::message`, escaped as GitHub's toolkit does.
fn github_command(line: &str) -> Result<(String, BTreeMap<String, String>, String), String> {
    let rest = line.strip_prefix("::").ok_or("no leading ::")?;
    let (head, message) = rest.split_once("::").ok_or("no :: before the message")?;
    let (cmd, props) = head.split_once(' ').unwrap_or((head, ""));
    if !["error", "warning", "notice"].contains(&cmd) {
        return Err(format!("unknown command {cmd}"));
    }
    let escaped_ok = |s: &str, extra: &[&str]| {
        s.match_indices('%').all(|(i, _)| {
            ["%25", "%0D", "%0A"]
                .iter()
                .chain(extra)
                .any(|e| s[i..].starts_with(e))
        }) && !s.contains(['\r', '\n'])
    };
    if !escaped_ok(message, &[]) {
        return Err(format!("message not escaped: {message}"));
    }
    let mut map = BTreeMap::new();
    for kv in props.split(',').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').ok_or(format!("bad property {kv}"))?;
        if !["file", "line", "col", "endLine", "endColumn", "title"].contains(&k) {
            return Err(format!("unknown property {k}"));
        }
        if v.contains(':') || !escaped_ok(v, &["%3A", "%2C"]) {
            return Err(format!("property {k} not escaped: {v}"));
        }
        if k == "line" && v.parse::<u32>().is_err() {
            return Err(format!("line is not a number: {v}"));
        }
        map.insert(k.to_string(), v.to_string());
    }
    Ok((cmd.to_string(), map, message.to_string()))
}

#[test]
fn github_annotations_follow_the_workflow_command_syntax() {
    let dir = tempfile::tempdir().unwrap();
    let two = two_targets(dir.path());
    for (label, args, code) in runs(&two) {
        let (rc, out, err) = run_fmt(&args, "github");
        assert_eq!(rc, code, "{label}: {err}");
        let cmds: Vec<_> = out
            .lines()
            .map(|l| github_command(l).unwrap_or_else(|e| panic!("{label}: {e}: {l}")))
            .collect();
        let errors = cmds.iter().filter(|c| c.0 == "error").count();
        assert_eq!(errors > 0, code == 1, "{label}\n{out}");
        assert_eq!(cmds.last().unwrap().1["title"], "phoenix-doctor", "{label}");
    }
    // The backend-tls fault: Portainer serves a self-signed certificate; the annotation sits on
    // the config file that gives Portainer's address, with its line.
    let (_, out, _) = run_fmt(&runs(&two)[1].1, "github");
    let (_, props, msg) = out
        .lines()
        .map(|l| github_command(l).unwrap())
        .find(|c| c.0 == "error")
        .unwrap();
    assert_eq!(props["title"], "PD-TLS-005 trace qdrant");
    assert_eq!(props["file"], "etc/phoenix_vm_configs.json");
    assert!(props.contains_key("line"));
    assert!(msg.contains("self-signed"), "{msg}");
    // lint: one annotation per static finding, on the reference config's lines.
    let cd = root().join("fixtures/configs/reference/etc");
    let (rc, out, err) = bin(&[
        "lint",
        "--config-dir",
        cd.to_str().unwrap(),
        "--format",
        "github",
    ]);
    let (_, json, _) = bin(&[
        "lint",
        "--config-dir",
        cd.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let findings = serde_json::from_str::<Value>(&json).unwrap()["findings"]
        .as_array()
        .unwrap()
        .len();
    assert!(rc == 0 || rc == 1, "{err}");
    assert_eq!(out.lines().count(), findings);
    for l in out.lines() {
        let (_, props, _) = github_command(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        if let Some(f) = props.get("file") {
            // Run from the repository root, paths are relative to it.
            assert!(root().join(f).is_file(), "{f}");
        }
    }
}

/// `STATE - text | perfdata` of the monitoring-plugins guidelines.
fn nagios_line(out: &str) -> Result<String, String> {
    let line = out.strip_suffix('\n').ok_or("no newline")?;
    if line.contains('\n') {
        return Err("more than one line".into());
    }
    let rest = line
        .strip_prefix("PHOENIX-DOCTOR ")
        .ok_or("no service name")?;
    let (state, rest) = rest.split_once(" - ").ok_or("no ` - `")?;
    if !["OK", "WARNING", "CRITICAL", "UNKNOWN"].contains(&state) {
        return Err(format!("bad state {state}"));
    }
    if let Some((text, perf)) = rest.split_once(" | ") {
        if text.is_empty() {
            return Err("empty text".into());
        }
        for p in perf.split(' ') {
            let (label, data) = p.rsplit_once('=').ok_or(format!("bad perfdata {p}"))?;
            let quoted = label.len() > 2 && label.starts_with('\'') && label.ends_with('\'');
            if !quoted && (label.contains(['\'', ' ']) || label.is_empty()) {
                return Err(format!("bad label {label}"));
            }
            let mut fields = data.split(';');
            let value = fields.next().unwrap();
            let num = value.trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == '%');
            let uom = &value[num.len()..];
            if num.parse::<f64>().is_err()
                || !["", "s", "ms", "us", "%", "B", "KB", "MB", "TB", "c"].contains(&uom)
            {
                return Err(format!("bad value {value}"));
            }
            let rest: Vec<&str> = fields.collect();
            if rest.len() > 4
                || rest
                    .iter()
                    .any(|f| !f.is_empty() && f.parse::<f64>().is_err())
            {
                return Err(format!("bad thresholds {data}"));
            }
        }
    }
    Ok(state.to_string())
}

#[test]
fn nagios_prints_one_plugin_line_with_the_plugin_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let two = two_targets(dir.path());
    for (label, args, code) in runs(&two) {
        let (rc, out, err) = run_fmt(&args, "nagios");
        let state = nagios_line(&out).unwrap_or_else(|e| panic!("{label}: {e}: {out:?}"));
        // Native healthy → OK 0, diverged → CRITICAL 2.
        let (want_state, want_rc) = if code == 0 {
            ("OK", 0)
        } else {
            ("CRITICAL", 2)
        };
        assert_eq!(
            (state.as_str(), rc),
            (want_state, want_rc),
            "{label}: {err}"
        );
    }
    // The tool's own failure is UNKNOWN (3), not a usage error (2).
    let (rc, out, _) = bin(&[
        "check",
        "--replay",
        "/nonexistent/run.json",
        "--format",
        "nagios",
    ]);
    assert_eq!(rc, 3);
    assert_eq!(nagios_line(&out).unwrap(), "UNKNOWN");
    assert!(nagios_line("PHOENIX-DOCTOR FINE - x | a=1\n").is_err());
    assert!(nagios_line("PHOENIX-DOCTOR OK - x | a b=1\n").is_err());
}

#[test]
fn table_is_printed_for_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let two = two_targets(dir.path());
    for (label, args, code) in runs(&two) {
        let (rc, out, err) = run_fmt(&args, "table");
        assert_eq!(rc, code, "{label}: {err}");
        assert!(out.contains("trace qdrant: "), "{label}\n{out}");
    }
}

/// Which command prints which format, by hand (docs/cli.md has the same table).
#[test]
fn unsupported_formats_are_refused_with_exit_2() {
    let formats = [
        "table",
        "json",
        "junit",
        "mermaid",
        "prometheus",
        "github",
        "nagios",
    ];
    let healthy = scenario("healthy");
    let cd = root().join("fixtures/configs/reference/etc");
    let cd = cd.to_str().unwrap();
    let commands: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["trace", "qdrant", "--replay", &healthy],
            formats.to_vec(),
        ),
        (vec!["check", "--replay", &healthy], formats.to_vec()),
        (
            vec!["plan", "qdrant", "--config-dir", cd],
            vec!["table", "json"],
        ),
        (
            vec!["show", "dns", "--config-dir", cd],
            vec!["table", "json"],
        ),
        (
            vec!["lint", "--config-dir", cd],
            vec!["table", "json", "junit", "github"],
        ),
        (
            vec!["probe", "tcp", "127.0.0.1:9", "--scope", "192.0.2.0/24"],
            vec!["table", "json"],
        ),
        (vec!["explain", "PD-DNS-001"], vec!["table"]),
        (vec!["completions", "bash"], vec!["table"]),
        (vec!["man"], vec!["table"]),
        (vec!["serve", "--listen", "127.0.0.1:0"], vec!["table"]),
        (vec!["lab", "--list-faults"], vec!["table", "json"]),
        (vec!["demo", "--list-faults"], formats.to_vec()),
    ];
    // `demo` and `lab` exist in the default build only (cargo feature `lab`)
    let lab_built =
        |(a, _): &(Vec<&str>, Vec<&str>)| cfg!(feature = "lab") || !matches!(a[0], "demo" | "lab");
    let commands: Vec<_> = commands.into_iter().filter(lab_built).collect();
    for (args, ok) in &commands {
        for f in formats.iter().filter(|f| !ok.contains(f)) {
            let mut a = args.clone();
            a.extend(["--format", f]);
            let (rc, out, err) = bin(&a);
            assert_eq!(rc, 2, "{a:?} is refused: {out}{err}");
            assert!(
                err.contains(&format!("--format {f} is not available")),
                "{a:?}: {err}"
            );
            assert!(out.is_empty(), "{a:?} printed {out}");
        }
    }
}
