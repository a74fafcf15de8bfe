//! Snapshot tests of every format for a healthy and a broken report.

use super::*;
use crate::diagnose::tests::{backend_tls_path, deploy_path};
use crate::diagnose::Report;

fn healthy() -> Report {
    let (mut p, ids) = deploy_path();
    for id in &ids {
        p.ok(id);
    }
    p.run()
}

fn broken() -> Report {
    backend_tls_path().0.run()
}

fn render_str(r: &Report, format: Format) -> String {
    let mut out = Vec::new();
    render(r, format, Style::default(), &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// A healthy trace whose guest steps ran from this machine says so, hop by hop.
#[test]
fn table_marks_substituted_hops() {
    let plain = render_str(&healthy(), Format::Table);
    assert!(!plain.contains("ran from"), "{plain}");
    let mut r = healthy();
    let hop = r.steps[0].hop.clone();
    let from = r.steps[0].from.clone();
    for s in r.steps.iter_mut().filter(|s| s.hop == hop) {
        s.vantage.substituted = true;
    }
    let n = r.steps.iter().filter(|s| s.hop == hop).count();
    let t = render_str(&r, Format::Table);
    assert!(t.contains(&format!("{from} (ran from here)")), "{t}");
    assert_eq!(t.matches("(ran from here)").count(), 1, "{t}");
    assert!(
        t.contains(&format!(
            "{n} step(s) ran from this machine instead of their vantage"
        )),
        "{t}"
    );
}

#[test]
fn table_formats() {
    insta::assert_snapshot!("table_healthy", render_str(&healthy(), Format::Table));
    let t = render_str(&broken(), Format::Table);
    assert!(
        t.contains("First divergence: PD-TLS-005 router-portainer.tls"),
        "{t}"
    );
    assert!(!t.contains("\x1b["), "no colour unless asked");
    insta::assert_snapshot!("table_broken", t);
}

#[test]
fn colour_only_when_asked() {
    let mut out = Vec::new();
    render(&broken(), Format::Table, Style { color: true }, &mut out).unwrap();
    assert!(String::from_utf8(out).unwrap().contains("\x1b[31m"));
}

#[test]
fn json_format_is_the_report() {
    let r = broken();
    let s = render_str(&r, Format::Json);
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["verdict"], "diverged");
    assert_eq!(v["first_divergence"]["hop"], "router-portainer");
    assert_eq!(v["first_divergence"]["layer"], "tls");
    assert_eq!(v["first_divergence"]["code"], "PD-TLS-005");
    let back: Report = serde_json::from_str(&s).unwrap();
    assert_eq!(back, r);
    insta::assert_snapshot!("json_healthy", render_str(&healthy(), Format::Json));
}

#[test]
fn junit_format() {
    let s = render_str(&broken(), Format::Junit);
    assert!(s.contains(r#"tests="7" failures="3" errors="0""#), "{s}");
    assert!(s.contains("<skipped message=\"blocked"));
    assert!(s.contains("symptom of router-portainer"));
    insta::assert_snapshot!("junit_broken", s);
    insta::assert_snapshot!("junit_healthy", render_str(&healthy(), Format::Junit));
}

#[test]
fn mermaid_format() {
    let s = render_str(&broken(), Format::Mermaid);
    assert!(s.starts_with("sequenceDiagram\n"));
    assert!(s.contains("rect rgb(255, 205, 205)"));
    assert!(s.contains("-xportainer: router-portainer"), "{s}");
    insta::assert_snapshot!("mermaid_broken", s);
    insta::assert_snapshot!("mermaid_healthy", render_str(&healthy(), Format::Mermaid));
}

#[test]
fn prometheus_format() {
    let s = render_str(&broken(), Format::Prometheus);
    assert!(s.contains("phoenix_doctor_trace_healthy{target=\"qdrant\",verdict=\"diverged\"} 0"));
    assert!(s.contains("phoenix_doctor_first_divergence_info{target=\"qdrant\",hop=\"router-portainer\",from=\"lxc:102\",layer=\"tls\",code=\"PD-TLS-005\"} 1"));
    insta::assert_snapshot!("prometheus_broken", s);
    insta::assert_snapshot!(
        "prometheus_healthy",
        render_str(&healthy(), Format::Prometheus)
    );
}

#[test]
fn check_json_wraps_reports() {
    let mut out = Vec::new();
    render_many(
        &[healthy(), broken()],
        Format::Json,
        Style::default(),
        &mut out,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["verdict"], "diverged");
    assert_eq!(v["reports"].as_array().unwrap().len(), 2);
}
