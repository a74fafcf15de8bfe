//! Snapshot tests of every format for a healthy and a broken report.

use super::*;
use crate::diagnose::tests::{backend_tls_path, deploy_path};
use crate::diagnose::{Overall, Report, Verdict};

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

/// Written from the fault, not from the output: Portainer serves a certificate the router cannot
/// verify, so router-portainer.tls is the root cause; the gateway's 502 and the router's 500 are
/// its symptoms and name TLS verification as what was seen behind them; the Prometheus series say
/// diverged, with the root-cause step as first divergence.
#[test]
fn backend_tls_reports_say_what_the_fault_is_in_junit_and_prometheus() {
    let r = broken();
    let junit = render_str(&r, Format::Junit);
    for status in ["502", "500"] {
        assert!(
            junit.contains(&format!(
                "{status} meaning backend failure: TLS verification failed, seen at router-portainer.tls"
            )),
            "{junit}"
        );
    }
    assert!(junit.contains("symptom of router-portainer"), "{junit}");
    let prom = render_str(&r, Format::Prometheus);
    assert!(
        prom.contains("phoenix_doctor_trace_verdict{target=\"qdrant\",verdict=\"diverged\"} 1"),
        "{prom}"
    );
    assert!(
        prom.contains("phoenix_doctor_trace_healthy{target=\"qdrant\"} 0"),
        "{prom}"
    );
    assert!(
        prom.contains(
            "phoenix_doctor_step_first_divergence{target=\"qdrant\",step=\"router-portainer.tls\"} 1"
        ),
        "{prom}"
    );
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
    render(
        &broken(),
        Format::Table,
        Style {
            color: true,
            ..Default::default()
        },
        &mut out,
    )
    .unwrap();
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
    // Read back, typed evidence is its text: the same report, rendered the same.
    let back: Report = serde_json::from_str(&s).unwrap();
    assert_eq!(render_str(&back, Format::Json), s);
    assert_eq!(back.findings.len(), r.findings.len());
    assert!(!back.findings[0].evidence.is_empty());
    assert!(back.findings[0]
        .evidence
        .iter()
        .all(|e| matches!(e, crate::finding::EvidenceItem::Text(_))));
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
    assert!(s.contains("phoenix_doctor_trace_healthy{target=\"qdrant\"} 0"));
    assert!(s.contains("phoenix_doctor_trace_verdict{target=\"qdrant\",verdict=\"diverged\"} 1"));
    assert!(s.contains("phoenix_doctor_trace_verdict{target=\"qdrant\",verdict=\"healthy\"} 0"));
    assert!(s.contains(
        "phoenix_doctor_step_first_divergence{target=\"qdrant\",step=\"router-portainer.tls\"} 1"
    ));
    assert!(s.contains("phoenix_doctor_step_ok{target=\"qdrant\",step=\"router-portainer.tls\",hop=\"router-portainer\",from=\"lxc:102\",layer=\"tls\"} 0"));
    // Without the run's observations there are no phase timings and no certificate expiry.
    assert!(!s.contains("phoenix_doctor_probe_duration_seconds"));
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

/// A static finding that bears on two targets is in the check document once; each report
/// points at it by index and keeps its live findings.
#[test]
fn check_json_carries_static_findings_once() {
    use crate::finding::{Code, Finding, Severity};
    let shared =
        Finding::new(Code::lookup("PD-FW-005").unwrap(), Severity::Warning, "x").static_origin();
    let only_b =
        Finding::new(Code::lookup("PD-DNSCFG-006").unwrap(), Severity::Error, "y").static_origin();
    let mut a = broken();
    let live = a.findings.len();
    assert!(live > 0);
    a.findings.push(shared.clone());
    let mut b = healthy();
    b.target = "portainer".into();
    b.findings.push(only_b);
    b.findings.push(shared);
    let mut out = Vec::new();
    render_many(&[a, b], Format::Json, Style::default(), &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let codes: Vec<&str> = v["static_findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["PD-FW-005", "PD-DNSCFG-006"]);
    assert_eq!(v["reports"][0]["static_findings"], serde_json::json!([0]));
    assert_eq!(
        v["reports"][1]["static_findings"],
        serde_json::json!([1, 0])
    );
    let own = |i: usize| v["reports"][i]["findings"].as_array().unwrap().clone();
    assert_eq!(own(0).len(), live);
    assert!(own(0).iter().all(|f| f["origin"] == "live"));
    assert!(own(1).is_empty());
    assert_eq!(
        String::from_utf8(out).unwrap().matches("PD-FW-005").count(),
        1
    );
    // Inside the wrapper a report has the trace report's fields plus the indices.
    let lone = serde_json::to_value(healthy()).unwrap();
    let mut keys: Vec<&str> = lone
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.push("static_findings");
    keys.sort();
    let inner: Vec<&str> = v["reports"][1]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(inner, keys);
}

/// Monitoring-plugins states, from the definition: diverged CRITICAL, cannot-judge UNKNOWN,
/// healthy with a step judged `warn` WARNING, else OK; diverged wins over the others.
#[test]
fn nagios_states() {
    use super::nagios::{state, State};
    assert_eq!(state(&[healthy()]), State::Ok);
    assert_eq!(state(&[broken()]), State::Critical);
    let mut warned = healthy();
    warned.steps[0].verdict = Verdict::Warn;
    assert_eq!(state(std::slice::from_ref(&warned)), State::Warning);
    let mut unknown = healthy();
    unknown.verdict = Overall::CannotJudge;
    assert_eq!(state(&[unknown.clone(), warned.clone()]), State::Unknown);
    assert_eq!(state(&[unknown, broken(), warned.clone()]), State::Critical);
    let codes: Vec<u8> = [State::Ok, State::Warning, State::Critical, State::Unknown]
        .iter()
        .map(|s| s.exit_code())
        .collect();
    assert_eq!(codes, [0, 1, 2, 3]);
    let line = render_str(&warned, Format::Nagios);
    assert!(
        line.starts_with("PHOENIX-DOCTOR WARNING - qdrant: healthy with 1 warning step(s) | "),
        "{line}"
    );
    let line = render_str(&broken(), Format::Nagios);
    assert!(
        line.starts_with(
            "PHOENIX-DOCTOR CRITICAL - qdrant: PD-TLS-005 at router-portainer tls from lxc:102 | "
        ),
        "{line}"
    );
}

/// Several targets: one Markdown document, one fenced block per target.
#[test]
fn mermaid_several_targets_are_fenced_blocks() {
    let mut other = healthy();
    other.target = "portainer".into();
    let mut out = Vec::new();
    render_many(
        &[broken(), other],
        Format::Mermaid,
        Style::default(),
        &mut out,
    )
    .unwrap();
    let s = String::from_utf8(out).unwrap();
    assert!(s.starts_with("# phoenix-doctor check: diverged\n"), "{s}");
    assert_eq!(s.matches("```mermaid\nsequenceDiagram\n").count(), 2, "{s}");
    assert_eq!(s.matches("\n```\n").count(), 2, "{s}");
    assert!(s.contains("## trace qdrant: diverged"));
    assert!(s.contains("## trace portainer: healthy"));
}

/// A static finding shown beside several traces is annotated once; live ones name their trace.
#[test]
fn github_annotates_each_static_finding_once() {
    let mut a = broken();
    let f = crate::finding::Finding::new(
        crate::finding::Code::lookup("PD-FW-005").unwrap(),
        crate::finding::Severity::Warning,
        "x",
    )
    .static_origin();
    a.findings.push(f.clone());
    let mut b = healthy();
    b.target = "portainer".into();
    b.findings.push(f);
    let mut out = Vec::new();
    render_many(&[a, b], Format::Github, Style::default(), &mut out).unwrap();
    let s = String::from_utf8(out).unwrap();
    assert_eq!(s.matches("title=PD-FW-005::").count(), 1, "{s}");
    assert!(s.contains("title=PD-TLS-005 trace qdrant::"), "{s}");
    assert!(
        s.ends_with(
            "::notice title=phoenix-doctor::diverged (qdrant: diverged, portainer: healthy)\n"
        ),
        "{s}"
    );
}
