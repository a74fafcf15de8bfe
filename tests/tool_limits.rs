//! The tool's own limits are the tool's: a step cut by `--budget`, or timed out under a
//! `--timeout` below its layer's floor (docs/cli.md), is `cannot-judge` (exit 3, PD-RUN-004)
//! with a reason that names the budget or the timeout, never a divergence of the platform. The
//! built-in lab's slow-backend fault (qdrant answers after 10 s) is the peer.

mod common;

use common::start_lab as start;
use phoenix_doctor::lab::{Fault, LabHandle};
use serde_json::Value;
use std::process::Command;

fn trace(h: &LabHandle, extra: &[&str]) -> (i32, Value) {
    let (code, v, _) = common::lab_trace(h, "qdrant", extra);
    (code, v)
}

fn step<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}: {v:#}"))
}

/// The run is cannot-judge with no divergence anywhere, and `id` was cut with PD-RUN-004: its text.
fn cut_step(v: &Value, id: &str) -> String {
    assert_eq!(v["verdict"], "cannot-judge", "{v:#}");
    assert!(v["first_divergence"].is_null(), "{v:#}");
    for s in v["steps"].as_array().unwrap() {
        assert!(
            s["verdict"] != "diverged" && s["verdict"] != "unreachable",
            "{s:#}"
        );
    }
    let s = step(v, id);
    assert_eq!(s["verdict"], "cannot-judge");
    assert_eq!(s["code"], "PD-RUN-004");
    s["actual"].as_str().unwrap().to_string()
}

#[test]
fn a_budget_cut_is_cannot_judge_and_the_full_run_still_diverges() {
    let (_rt, h, _d) = start(91, &[Fault::SlowBackend]);
    // 20 ms: the slow backend's steps (and most others) are cut by the budget
    let (code, v) = trace(&h, &["--budget", "20ms"]);
    assert_eq!(code, 3);
    let actual = cut_step(&v, "router-qdrant.http");
    assert!(actual.contains("--budget 20 ms"), "{actual}");

    // the same lab with the default budget: the hung backend is the platform's divergence
    let (code, v) = trace(&h, &["--timeout", "700ms"]);
    assert_eq!(v["verdict"], "diverged", "{v:#}");
    assert_eq!(code, 1);
    assert_eq!(v["first_divergence"]["hop"], "router-qdrant");
    assert_eq!(v["first_divergence"]["code"], "PD-HTTP-004");
    h.shutdown();
}

#[test]
fn a_timeout_below_the_floor_is_cannot_judge_at_and_above_it_diverges() {
    let (_rt, h, _d) = start(92, &[Fault::SlowBackend]);
    // 100 ms is below the 500 ms floor for http steps: the hung backend cannot be judged
    let (code, v) = trace(&h, &["--timeout", "100ms"]);
    assert_eq!(code, 3);
    let actual = cut_step(&v, "router-qdrant.http");
    assert!(
        actual.contains("--timeout 100 ms") && actual.contains("500 ms floor"),
        "{actual}"
    );
    // exactly at the floor the silence is evidence again
    let (code, v) = trace(&h, &["--timeout", "500ms"]);
    assert_eq!(v["verdict"], "diverged", "{v:#}");
    assert_eq!(code, 1);
    assert_eq!(v["first_divergence"]["code"], "PD-HTTP-004");
    h.shutdown();
}

#[test]
fn probe_by_hand_under_the_floor_is_cannot_judge() {
    // a listener that accepts and never answers: the HTTP probe times out
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let _keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming().take(4).flatten() {
            held.push(c);
        }
        std::thread::sleep(std::time::Duration::from_secs(5));
    });
    let url = format!("http://{addr}/");
    let run = |t: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"))
            .args(["probe", "http", &url, "--timeout", t, "--format", "json"])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code().unwrap_or(-1), v)
    };
    let (code, v) = run("200ms");
    assert_eq!(code, 3, "{v:#}");
    assert_eq!(v["reason"], "timeout-below-floor");
    let (code, v) = run("600ms");
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["reason"], "timeout");
}
