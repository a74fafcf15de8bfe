//! The hand-written oracle (`tests/oracle/expected.toml`): its reader, and the comparison of a
//! report (and the observations behind it) with what a person expects. Shared by
//! `tests/oracle/main.rs` (live, against the lab) and `tests/scenarios.rs` (recorded runs).

#![allow(dead_code)]

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The lab without a fault, as `expected.toml` names it.
pub const HEALTHY: &str = "healthy";

/// What one target should look like under one fault.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Case {
    /// The word `healthy`.
    Healthy(String),
    Diverged(Divergence),
}

/// The first divergence a person expects, and the other root causes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Divergence {
    pub hop: String,
    pub from: String,
    pub to: String,
    pub layer: String,
    pub code: String,
    /// The probe's reason at the root step (any one of them).
    pub reasons: Vec<String>,
    /// Every other live error finding, as "hop CODE".
    #[serde(default)]
    pub others: Vec<String>,
    /// When given: every hop whose failures are proxies' answers explained by a broken hop
    /// behind them, as "hop of ROOT-HOP"; such a hop is `blocked`, never a root cause.
    #[serde(default)]
    pub symptoms: Option<Vec<String>>,
}

/// One fault: why, and one case per target.
#[derive(Debug, Clone, Deserialize)]
pub struct FaultCases {
    pub why: String,
    #[serde(flatten)]
    pub targets: BTreeMap<String, Case>,
}

/// `expected.toml`, by fault name.
pub fn load() -> BTreeMap<String, FaultCases> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/expected.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let all: BTreeMap<String, FaultCases> =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (fault, cases) in &all {
        for (target, case) in &cases.targets {
            if let Case::Healthy(word) = case {
                assert_eq!(word, HEALTHY, "{fault}.{target}: `healthy` or a table");
            }
        }
    }
    all
}

/// The probe reason of each step, from a saved run (`--save-run`, or a scenario's `run.json`).
pub fn reasons(saved_run: &Value) -> BTreeMap<String, String> {
    saved_run["runs"][0]["run"]["observations"]
        .as_array()
        .expect("a saved run with observations")
        .iter()
        .filter_map(|o| Some((o["step"].as_str()?.into(), o["reason"].as_str()?.into())))
        .collect()
}

/// Live error findings as "hop CODE", sorted.
fn live_errors(report: &Value) -> Vec<String> {
    let mut out: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error" && f["origin"] == "live")
        .map(|f| {
            format!(
                "{} {}",
                f["hop"].as_str().unwrap(),
                f["code"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

/// The hops whose failing steps are symptoms, as "hop of ROOT-HOP" with the hop's verdict when
/// it is not `blocked`, sorted.
fn symptom_hops(report: &Value) -> Vec<String> {
    let verdict = |hop: &str| {
        report["hops"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["id"] == hop)
            .and_then(|h| h["verdict"].as_str())
            .unwrap_or("-")
            .to_string()
    };
    let mut out: Vec<String> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| {
            let hop = s["hop"].as_str()?;
            let root = s["symptom_of"].as_str()?;
            Some(match verdict(hop).as_str() {
                "blocked" => format!("{hop} of {root}"),
                v => format!("{hop} of {root} ({v})"),
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Where `report` (a trace's JSON report, exit code `exit`, observations' reasons `reasons`)
/// differs from `case`; empty when it matches.
pub fn differences(
    case: &Case,
    report: &Value,
    exit: Option<i32>,
    reasons: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut diff = Vec::new();
    let mut check = |what: &str, want: &str, got: &str| {
        if want != got {
            diff.push(format!("{what}: expected {want}, got {got}"));
        }
    };
    let fd = &report["first_divergence"];
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    match case {
        Case::Healthy(_) => {
            check("verdict", HEALTHY, &s(&report["verdict"]));
            if let Some(code) = exit {
                check("exit", "0", &code.to_string());
            }
            check(
                "first divergence",
                "none",
                if fd.is_null() { "none" } else { "some" },
            );
            check("live errors", "", &live_errors(report).join(", "));
        }
        Case::Diverged(want) => {
            check("verdict", "diverged", &s(&report["verdict"]));
            if let Some(code) = exit {
                check("exit", "1", &code.to_string());
            }
            check("hop", &want.hop, &s(&fd["hop"]));
            check("from", &want.from, &s(&fd["from"]));
            check("to", &want.to, &s(&fd["to"]));
            check("layer", &want.layer, &s(&fd["layer"]));
            check("code", &want.code, &s(&fd["code"]));
            let reason = fd["step"]
                .as_str()
                .and_then(|step| reasons.get(step))
                .cloned()
                .unwrap_or_else(|| "-".into());
            if !want.reasons.contains(&reason) {
                check("reason", &want.reasons.join(" or "), &reason);
            }
            let mut all = want.others.clone();
            all.push(format!("{} {}", want.hop, want.code));
            all.sort();
            check(
                "live errors",
                &all.join(", "),
                &live_errors(report).join(", "),
            );
            if let Some(symptoms) = &want.symptoms {
                let mut symptoms = symptoms.clone();
                symptoms.sort();
                check(
                    "symptoms",
                    &symptoms.join(", "),
                    &symptom_hops(report).join(", "),
                );
            }
        }
    }
    diff
}
