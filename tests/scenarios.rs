//! Scenario fixtures (`fixtures/scenarios/*`: observations recorded from the built-in lab with
//! one of the platform's faults) replayed with no network: the diagnosis against the hand-written
//! oracle (`tests/oracle/expected.toml`), every output format, the exit codes and the JSON
//! contract; the recorded reports as a change detector.

#[path = "oracle/expect.rs"]
mod expect;

use phoenix_doctor::diagnose::{self, Report};
use phoenix_doctor::engine::SavedRuns;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn scenarios() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("run.json").exists())
        .collect();
    out.sort();
    assert!(
        out.len() >= 17,
        "expected the healthy scenario and 16 faults, found {}",
        out.len()
    );
    out
}

fn replay_lib(dir: &Path) -> Report {
    let saved: SavedRuns =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let s = &saved.runs[0];
    diagnose::diagnose(&s.plan, &s.run, &s.static_findings)
}

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

/// `trace qdrant --replay DIR/run.json --format json`: the report as printed (exit 0 or 1).
fn replay_json(dir: &Path) -> String {
    let run = dir.join("run.json");
    let (code, out, err) = bin(&[
        "trace",
        "qdrant",
        "--replay",
        run.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(code == 0 || code == 1, "{}: {err}", dir.display());
    out
}

fn run_file(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/scenarios")
        .join(name)
        .join("run.json")
        .to_string_lossy()
        .to_string()
}

/// The oracle: each scenario is the lab with one fault (or none) traced for qdrant, and its replay
/// gives the diagnosis written by hand for that fault and target in `tests/oracle/expected.toml`.
#[test]
fn every_scenario_replays_to_the_hand_written_diagnosis() {
    let oracle = expect::load();
    let mut failures = Vec::new();
    for dir in scenarios() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let case = &oracle
            .get(&name)
            .unwrap_or_else(|| panic!("{name}: not a lab fault in tests/oracle/expected.toml"))
            .targets["qdrant"];
        let report = serde_json::to_value(replay_lib(&dir)).unwrap();
        let run: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
        let diff = expect::differences(case, &report, None, &expect::reasons(&run));
        if !diff.is_empty() {
            failures.push(format!("{name}: {}", diff.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A change detector, not an oracle: the JSON report each recorded run replays to is byte-identical
/// to the one recorded beside it (`report.json`, re-recorded with the observations by
/// `regenerate.sh`). It fails on any change of the output, intended or not; whether the diagnosis
/// is right is the test above.
#[test]
fn change_detector_replayed_json_is_byte_identical_to_the_recorded_report() {
    let mut changed = Vec::new();
    for dir in scenarios() {
        let out = replay_json(&dir);
        let recorded = std::fs::read_to_string(dir.join("report.json")).unwrap();
        if out != recorded {
            changed.push(dir.display().to_string());
        }
    }
    assert!(
        changed.is_empty(),
        "the replayed JSON changed (re-record with fixtures/scenarios/regenerate.sh if intended): {changed:#?}"
    );
}

#[test]
fn every_replayed_report_matches_the_documented_json_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema/trace-report.v1.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    for dir in scenarios() {
        let out = replay_json(&dir);
        let v: Value = serde_json::from_str(&out).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&v)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", dir.display());
    }
}

#[test]
fn exit_codes() {
    let (code, _, _) = bin(&[
        "trace",
        "qdrant",
        "--replay",
        &run_file("healthy"),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "healthy");
    let (code, _, _) = bin(&[
        "trace",
        "qdrant",
        "--replay",
        &run_file("no-route"),
        "--format",
        "json",
    ]);
    assert_eq!(code, 1, "diverged");
    let (code, _, err) = bin(&["trace", "qdrant", "--replay", "/nonexistent/run.json"]);
    assert_eq!(code, 2, "missing saved run: {err}");
    assert!(err.contains("/nonexistent/run.json"));
    let (code, _, err) = bin(&["trace", "no-such-target", "--replay", &run_file("healthy")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no saved run for `no-such-target`"), "{err}");
    let (code, _, _) = bin(&["trace"]);
    assert_eq!(code, 2, "usage error");
    let (code, _, err) = bin(&[
        "trace",
        "qdrant",
        "--config-dir",
        "/nonexistent-phoenix-etc",
    ]);
    assert_eq!(code, 2, "missing config dir: {err}");
    // Every target outside the scope: nothing is sent, nothing can be judged.
    let lab =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/configs/variants/loopback-lab/etc");
    let (code, out, err) = bin(&[
        "trace",
        "qdrant",
        "--config-dir",
        lab.to_str().unwrap(),
        "--scope",
        "192.0.2.0/24",
        "--vantage",
        "host",
        "--format",
        "json",
    ]);
    assert_eq!(code, 3, "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "cannot-judge");
    assert!(v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["verdict"] == "cannot-judge" || s["verdict"] == "blocked"));
}

fn snapshot_formats(scenario: &str) {
    for format in [
        "table",
        "json",
        "junit",
        "mermaid",
        "prometheus",
        "github",
        "nagios",
    ] {
        let (_, out, err) = bin(&[
            "trace",
            "qdrant",
            "--replay",
            &run_file(scenario),
            "--format",
            format,
        ]);
        assert!(!out.is_empty(), "{scenario} {format}: {err}");
        insta::assert_snapshot!(format!("{scenario}_{format}"), out);
    }
}

#[test]
fn every_format_for_the_healthy_scenario() {
    snapshot_formats("healthy");
}

#[test]
fn every_format_for_the_seed_scenario() {
    snapshot_formats("hosts-override");
}

#[test]
fn every_format_for_a_fault_seen_through_proxies() {
    snapshot_formats("backend-tls");
}
