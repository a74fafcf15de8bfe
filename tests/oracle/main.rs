//! The independent oracle: every lab fault (and the lab without one) × every target the lab's
//! config plans, traced by the real binary, against the diagnosis written by hand in
//! `tests/oracle/expected.toml` (verdict, first divergence hop, from, to, layer, code, the probe's
//! reason there, and every other root cause). Starts labs on 127.160-176.0.0/24: run it under
//! `flock /tmp/pd-net.lock`.

#[path = "../common/mod.rs"]
mod common;
mod expect;

use expect::{Case, FaultCases, HEALTHY};
use phoenix_doctor::lab::{self, Fault, LabHandle};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// The first 127.<net>.0.0/24 block the oracle's labs use (one per fault).
const FIRST_NET: u8 = 160;
/// Labs running at once.
const PARALLEL: usize = 3;

/// Every target the lab's config dir plans, as `check --all` lists them.
fn lab_targets(h: &LabHandle) -> Vec<String> {
    let m = phoenix_doctor::model::load(h.config_dir(), Some(h.stacks_dir())).unwrap();
    let defs = phoenix_doctor::plan::load_defs(None).unwrap();
    phoenix_doctor::plan::targets(&m, &defs)
}

/// `trace TARGET` against the lab: exit code, JSON report, the probe reasons per step, stderr.
fn trace(
    h: &LabHandle,
    target: &str,
    runs: &std::path::Path,
) -> (Option<i32>, Value, BTreeMap<String, String>, String) {
    let saved = runs.join(format!("{target}.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"))
        .args(["trace", target, "--format", "json", "--timeout", "700ms"])
        .arg("--scope")
        .arg(h.scope().allowed[0].to_string())
        .arg("--config-dir")
        .arg(h.config_dir())
        .arg("--stacks-dir")
        .arg(h.stacks_dir())
        .arg("--save-run")
        .arg(&saved)
        .env("NO_COLOR", "1")
        .output()
        .expect("runs phoenix-doctor");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{target}: not JSON ({e})\n{stderr}"));
    let run: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    (out.status.code(), report, expect::reasons(&run), stderr)
}

/// One lab with `fault` (or none), every target traced; the differences from the oracle.
fn run_fault(net: u8, fault: &str, cases: &FaultCases) -> Vec<String> {
    let faults = match fault {
        HEALTHY => vec![],
        name => vec![Fault::parse(name).unwrap()],
    };
    let (_rt, h, _dir) = common::start_lab(net, &faults);
    let runs = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    let planned: BTreeSet<String> = lab_targets(&h).into_iter().collect();
    let written: BTreeSet<String> = cases.targets.keys().cloned().collect();
    if planned != written {
        out.push(format!(
            "{fault}: the lab plans the targets {planned:?}, expected.toml has {written:?}"
        ));
    }
    for (target, case) in &cases.targets {
        let (exit, report, reasons, stderr) = trace(&h, target, runs.path());
        let diff = expect::differences(case, &report, exit, &reasons);
        if !diff.is_empty() {
            out.push(format!(
                "{fault} / {target}:\n  {}\n  first divergence: {}\n  findings: {}\n  stderr: {}",
                diff.join("\n  "),
                report["first_divergence"],
                report["findings"]
                    .as_array()
                    .map(|f| f
                        .iter()
                        .filter(|f| f["origin"] == "live")
                        .map(|f| format!("{} {} {}", f["hop"], f["code"], f["actual"]))
                        .collect::<Vec<_>>()
                        .join("; "))
                    .unwrap_or_default(),
                stderr.trim()
            ));
        }
    }
    h.shutdown();
    out
}

#[test]
fn every_fault_and_every_target_gets_the_hand_written_diagnosis() {
    let oracle = expect::load();
    let mut names: Vec<&str> = vec![HEALTHY];
    names.extend(lab::faults().iter().map(|f| f.name));
    let written: BTreeSet<&str> = oracle.keys().map(String::as_str).collect();
    assert_eq!(
        written,
        names.iter().copied().collect(),
        "expected.toml has one table per lab fault and `healthy`"
    );
    let jobs: Vec<(u8, &str)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (FIRST_NET + i as u8, *n))
        .collect();
    let mut failures: Vec<String> = Vec::new();
    for chunk in jobs.chunks(PARALLEL) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|(net, name)| s.spawn(|| run_fault(*net, name, &oracle[*name])))
                .collect();
            for h in handles {
                failures.extend(h.join().unwrap());
            }
        });
    }
    assert!(
        failures.is_empty(),
        "{} differences from tests/oracle/expected.toml:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// `lab --list-faults` names, per fault, where a trace finds the first divergence: the oracle,
/// written separately, expects exactly that for one of the fault's targets.
#[test]
fn the_fault_catalogue_agrees_with_the_oracle() {
    let oracle = expect::load();
    for f in lab::faults() {
        let cases = &oracle[f.name];
        let found = cases.targets.values().any(|c| match c {
            Case::Diverged(d) => {
                (d.hop.as_str(), d.layer.as_str(), d.code.as_str())
                    == (f.expected.hop, f.expected.layer.as_str(), f.expected.code)
            }
            Case::Healthy(_) => false,
        });
        assert!(
            found,
            "{}: lab/faults.rs says {} / {} / {}; expected.toml has no target diverging there",
            f.name, f.expected.hop, f.expected.layer, f.expected.code
        );
    }
}
