//! The baseline parser and matcher, with hand-written files and findings.

use super::*;
use crate::diagnose::{HopResult, StepResult};
use crate::finding::Code;
use crate::observe::Layer;

const CODES: &[&str] = &["PD-HTTP-002", "PD-TLS-002", "PD-CERT-006", "PD-TCP-001"];

fn parse(text: &str) -> Result<Baseline> {
    Baseline::parse(text, Path::new("known.toml"), CODES)
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("accepted a bad baseline:\n{text}"),
        Err(e) => {
            assert_eq!(
                e.kind(),
                crate::error::Kind::Input,
                "bad baseline is a usage error: {e}"
            );
            e.to_string()
        }
    }
}

fn day(s: &str) -> Day {
    Day::parse(s).unwrap()
}

#[test]
fn parses_entries_with_their_lines() {
    let b = parse(
        "# known\n\n[[accept]]\ncode = \"PD-HTTP-002\"\nhop = \"router-nginx\"\nsubject = \"nginx\"\nreason = \"plain HTTP to :443\"\nexpires = \"2027-01-31\"\n\n[[accept]]\ncode = \"PD-CERT-006\"\nreason = \"renews hourly\"\nexpires = 2026-06-30\n",
    )
    .unwrap();
    assert_eq!(b.entries.len(), 2);
    let e = &b.entries[0];
    assert_eq!(e.code, "PD-HTTP-002");
    assert_eq!(e.hop.as_deref(), Some("router-nginx"));
    assert_eq!(e.subject.as_deref(), Some("nginx"));
    assert_eq!(e.expires, Some(day("2027-01-31")));
    assert_eq!(e.line, 3);
    assert!(!e.is_static());
    let s = &b.entries[1];
    assert_eq!(s.line, 10);
    assert!(s.is_static());
    assert_eq!(
        s.expires,
        Some(day("2026-06-30")),
        "a TOML date is a date too"
    );
}

#[test]
fn bad_files_name_the_file_and_line() {
    let e = err("[[accept]]\ncode = \"PD-HTTP-002\"\nreason = \"x\"\nexpires = \"2027-02-30\"\n");
    assert!(e.starts_with("known.toml:4:"), "{e}");
    assert!(e.contains("YYYY-MM-DD"), "{e}");

    let e = err("[[accept]]\ncode = \"PD-HTTP-002\"\n");
    assert!(
        e.starts_with("known.toml:1:") && e.contains("`reason`"),
        "{e}"
    );

    let e = err("[[accept]]\ncode = \"PD-HTTP-002\"\nreason = \"x\"\n\n[[accept]]\ncode = \"PD-NOPE-001\"\nreason = \"x\"\n");
    assert!(
        e.starts_with("known.toml:6:") && e.contains("PD-NOPE-001"),
        "{e}"
    );

    let e = err("[[accept]]\ncode = \"PD-HTTP-002\"\nreason = \"x\"\nhpo = \"typo\"\n");
    assert!(e.starts_with("known.toml:4:") && e.contains("`hpo`"), "{e}");

    let e = err("[[accept]]\ncode = \"PD-HTTP-002\"\nreason = \"x\nhop = 1\n");
    assert!(e.starts_with("known.toml:3:"), "{e}");

    let e = err("[[accept]]\ncode = \"PD-HTTP-002\"\nreason = \"\"\n");
    assert!(
        e.starts_with("known.toml:3:") && e.contains("`reason`"),
        "{e}"
    );

    let e = err("[accept]\ncode = \"PD-HTTP-002\"\n");
    assert!(e.starts_with("known.toml:1:"), "{e}");

    let e =
        err("[[accept]]\ncode = \"PD-HTTP-002\"\nreason = \"x\"\nexpires = 2027-01-31T10:00:00Z\n");
    assert!(e.starts_with("known.toml:4:"), "{e}");

    let e = err("[[accept]]\ncode = \"PD-HTTP-002\"\nreason = \"x\"\n[other]\nx = 1\n");
    assert!(
        e.starts_with("known.toml:4:") && e.contains("`other`"),
        "{e}"
    );
}

#[test]
fn dates_are_calendar_dates() {
    assert!(Day::parse("2027-01-31").is_some());
    assert!(Day::parse("2028-02-29").is_some());
    for bad in [
        "2027-02-29",
        "2027-13-01",
        "2027-1-31",
        "27-01-31",
        "2027-01-31x",
        "",
    ] {
        assert!(Day::parse(bad).is_none(), "{bad}");
    }
    assert!(day("2027-01-31") < day("2027-02-01"));
    assert!(day("2026-12-31") < day("2027-01-01"));
}

fn live(code: &str, hop: &str) -> Finding {
    let mut f = Finding::new(
        Code::lookup(code).unwrap(),
        Severity::Error,
        format!("{code} on {hop}"),
    );
    f.hop = hop.to_string();
    f.layer = Some(Layer::Http);
    f.subjects = vec!["lxc:102".into(), "127.9.0.153".into()];
    f
}

fn step(id: &str, hop: &str, code: &str, verdict: Verdict, symptom_of: Option<&str>) -> StepResult {
    StepResult {
        id: id.into(),
        hop: hop.into(),
        from: "lxc:102".into(),
        to: "nginx".into(),
        layer: Layer::Http,
        verdict,
        expected: "200".into(),
        actual: "reset".into(),
        evidence: vec![],
        provenance: vec![],
        duration_ms: 1.0,
        code: Some(Code::lookup(code).unwrap()),
        symptom_of: symptom_of.map(str::to_string),
        vantage: Default::default(),
        path: String::new(),
    }
}

fn report(target: &str, findings: Vec<Finding>, steps: Vec<StepResult>) -> Report {
    let first_divergence = findings.first().map(|f| Divergence {
        hop: f.hop.clone(),
        from: "lxc:102".into(),
        to: "nginx".into(),
        layer: Layer::Http,
        code: f.code,
        step: format!("{}.http", f.hop),
        title: f.title.clone(),
    });
    Report {
        schema_version: 1,
        target: target.into(),
        verdict: Overall::Diverged,
        first_divergence,
        hops: vec![HopResult {
            id: "router-nginx".into(),
            from: "lxc:102".into(),
            to: "nginx".into(),
            from_label: String::new(),
            title: "t".into(),
            verdict: Verdict::Diverged,
            path: String::new(),
        }],
        steps,
        findings,
        started_at: String::new(),
        duration_ms: 1.0,
        attempts: 1,
        baseline: None,
    }
}

fn nginx_step() -> StepResult {
    step(
        "router-nginx.http",
        "router-nginx",
        "PD-HTTP-002",
        Verdict::Diverged,
        None,
    )
}

/// The nginx trace with its known finding (plain HTTP to :443) and `steps`.
fn nginx(steps: Vec<StepResult>) -> Vec<Report> {
    vec![report(
        "nginx",
        vec![live("PD-HTTP-002", "router-nginx")],
        steps,
    )]
}

const NGINX: &str = "[[accept]]\ncode = \"PD-HTTP-002\"\nhop = \"router-nginx\"\nsubject = \"nginx\"\nreason = \"the nginx route sends plain HTTP to :443\"\nexpires = \"2027-01-31\"\n";

#[test]
fn an_accepted_finding_is_shown_but_does_not_count() {
    let b = parse(NGINX).unwrap();
    let mut rs = nginx(vec![nginx_step()]);
    let s = apply_reports(&mut rs, &b, day("2026-12-03"));
    let r = &rs[0];
    assert_eq!(r.verdict, Overall::Healthy);
    assert!(r.first_divergence.is_none());
    assert_eq!(r.findings.len(), 1, "still shown");
    let a = r.findings[0].accepted.as_ref().expect("marked accepted");
    assert_eq!(a.reason, "the nginx route sends plain HTTP to :443");
    assert_eq!(a.expires.as_deref(), Some("2027-01-31"));
    assert_eq!(s.accepted, 1);
    assert!(s.stale.is_empty() && s.expired.is_empty());
    assert_eq!(r.baseline.as_ref(), Some(&s));
    assert_eq!(accepted_count(r), 1);
    assert!(step_acceptance(r, &r.steps[0]).is_some());
}

#[test]
fn accepted_with_a_cannot_judge_step_is_cannot_judge() {
    let b = parse(NGINX).unwrap();
    let mut rs = nginx(vec![
        nginx_step(),
        step(
            "host-dns.dns",
            "host-dns",
            "PD-RUN-002",
            Verdict::CannotJudge,
            None,
        ),
    ]);
    apply_reports(&mut rs, &b, day("2026-12-03"));
    assert_eq!(rs[0].verdict, Overall::CannotJudge);
}

#[test]
fn an_expired_entry_accepts_nothing_and_is_reported() {
    let b = parse(NGINX).unwrap();
    let mut rs = nginx(vec![nginx_step()]);
    let s = apply_reports(&mut rs, &b, day("2027-02-01"));
    assert_eq!(rs[0].verdict, Overall::Diverged);
    assert!(rs[0].findings[0].accepted.is_none());
    assert_eq!(s.expired.len(), 1);
    assert_eq!(s.expired[0].line, 1);
    assert!(
        s.stale.is_empty(),
        "an expired entry that matched is not stale"
    );
    assert!(step_acceptance(&rs[0], &rs[0].steps[0]).is_none());
    // The last day itself still accepts.
    let mut rs = nginx(vec![]);
    apply_reports(&mut rs, &b, day("2027-01-31"));
    assert_eq!(rs[0].verdict, Overall::Healthy);
}

#[test]
fn matching_needs_code_hop_and_subject() {
    let b = parse(NGINX).unwrap();
    for (target, f) in [
        ("nginx", live("PD-TLS-002", "router-nginx")),
        ("nginx", live("PD-HTTP-002", "gateway-router")),
        ("ollama", live("PD-HTTP-002", "router-nginx")),
    ] {
        let mut rs = vec![report(target, vec![f], vec![])];
        apply_reports(&mut rs, &b, day("2026-12-03"));
        assert_eq!(
            rs[0].verdict,
            Overall::Diverged,
            "{target}: {:?}",
            rs[0].findings[0]
        );
        assert!(rs[0].findings[0].accepted.is_none());
    }
    // Without a subject an entry accepts the code on that hop in any trace.
    let b = parse("[[accept]]\ncode = \"PD-HTTP-002\"\nhop = \"router-nginx\"\nreason = \"x\"\n")
        .unwrap();
    let mut rs = vec![report(
        "ollama",
        vec![live("PD-HTTP-002", "router-nginx")],
        vec![],
    )];
    apply_reports(&mut rs, &b, day("2026-12-03"));
    assert_eq!(rs[0].verdict, Overall::Healthy);
}

#[test]
fn a_new_finding_beside_an_accepted_one_still_diverges_and_leads() {
    let b = parse(NGINX).unwrap();
    let mut rs = vec![report(
        "nginx",
        vec![
            live("PD-HTTP-002", "router-nginx"),
            live("PD-TCP-001", "router-ollama"),
        ],
        vec![
            nginx_step(),
            step(
                "router-ollama.tcp",
                "router-ollama",
                "PD-TCP-001",
                Verdict::Unreachable,
                None,
            ),
        ],
    )];
    apply_reports(&mut rs, &b, day("2026-12-03"));
    let r = &rs[0];
    assert_eq!(r.verdict, Overall::Diverged);
    let fd = r.first_divergence.as_ref().expect("a divergence remains");
    assert_eq!(
        (fd.hop.as_str(), fd.code.as_str()),
        ("router-ollama", "PD-TCP-001")
    );
    assert_eq!(fd.step, "router-ollama.tcp");
    assert!(r.findings[1].accepted.is_none());
}

#[test]
fn stale_entries_are_the_unmatched_ones_this_run_could_see() {
    let b = parse(&format!(
        "{NGINX}\n[[accept]]\ncode = \"PD-TLS-002\"\nhop = \"host-gateway\"\nsubject = \"qdrant\"\nreason = \"x\"\n\n[[accept]]\ncode = \"PD-TCP-001\"\nhop = \"router-ollama\"\nsubject = \"nginx\"\nreason = \"fixed since\"\n\n[[accept]]\ncode = \"PD-CERT-006\"\nreason = \"static\"\n"
    ))
    .unwrap();
    let mut rs = nginx(vec![]);
    let s = apply_reports(&mut rs, &b, day("2026-12-03"));
    // qdrant was not traced; the static entry is lint's to judge.
    assert_eq!(s.stale.len(), 1, "{:?}", s.stale);
    assert_eq!(s.stale[0].code, "PD-TCP-001");
    assert_eq!(s.stale[0].line, 14);
    assert_eq!(
        rs[0].verdict,
        Overall::Healthy,
        "a stale entry never changes the verdict"
    );

    let mut statics = vec![Finding::new(
        Code::lookup("PD-TLS-002").unwrap(),
        Severity::Error,
        "other",
    )
    .static_origin()];
    let s = apply_findings(&mut statics, &b, day("2026-12-03"));
    assert_eq!(s.stale.len(), 1);
    assert_eq!(s.stale[0].code, "PD-CERT-006");
}

#[test]
fn static_findings_match_by_their_config_location() {
    let manifest =
        |ptr: &str| crate::config::Provenance::new("etc/certificate-manifest.json", ptr, Some(14));
    let mut f = Finding::new(
        Code::lookup("PD-CERT-006").unwrap(),
        Severity::Error,
        "no sans",
    )
    .static_origin();
    f.subjects = vec!["10.0.0.111".into()];
    f.provenance = vec![manifest("/1")];
    let k = key(&f, "qdrant");
    assert_eq!(k.hop, "");
    assert_eq!(k.subject, "etc/certificate-manifest.json#/1");
    let b = parse("[[accept]]\ncode = \"PD-CERT-006\"\nsubject = \"etc/certificate-manifest.json#/1\"\nreason = \"x\"\n").unwrap();
    let mut fs = vec![f.clone()];
    let s = apply_findings(&mut fs, &b, day("2026-12-03"));
    assert!(fs[0].accepted.is_some());
    assert!(!counts(&fs[0]));
    assert_eq!(s.accepted, 1);
    let mut other = f;
    other.provenance = vec![manifest("/2")];
    let mut fs = vec![other];
    apply_findings(&mut fs, &b, day("2026-12-03"));
    assert!(counts(&fs[0]));
    // Without a config location, the subjects.
    let mut bare =
        Finding::new(Code::lookup("PD-CERT-006").unwrap(), Severity::Error, "x").static_origin();
    bare.subjects = vec!["lxc:102".into(), "traefik.internal.thinkheads.ai".into()];
    assert_eq!(
        key(&bare, "").subject,
        "lxc:102 traefik.internal.thinkheads.ai"
    );
}

#[test]
fn symptoms_and_later_failures_follow_their_hop() {
    let b = parse(NGINX).unwrap();
    let mut rs = nginx(vec![
        nginx_step(),
        step(
            "gateway-router.http",
            "gateway-router",
            "PD-HTTP-003",
            Verdict::Diverged,
            Some("router-nginx"),
        ),
    ]);
    apply_reports(&mut rs, &b, day("2026-12-03"));
    assert!(step_acceptance(&rs[0], &rs[0].steps[1]).is_some());
    // Not accepted: the symptom counts as its root cause does.
    let mut rs = nginx(vec![step(
        "gateway-router.http",
        "gateway-router",
        "PD-HTTP-003",
        Verdict::Diverged,
        Some("router-nginx"),
    )]);
    apply_reports(&mut rs, &Baseline::default(), day("2026-12-03"));
    assert!(step_acceptance(&rs[0], &rs[0].steps[0]).is_none());
}

#[test]
fn written_files_are_sorted_stable_and_parse_back() {
    let mut stat = Finding::new(
        Code::lookup("PD-CERT-006").unwrap(),
        Severity::Error,
        "portainer has no `sans`",
    )
    .static_origin();
    stat.subjects = vec!["127.9.0.111".into()];
    stat.provenance = vec![crate::config::Provenance::new(
        "etc/certificate-manifest.json",
        "/1",
        Some(14),
    )];
    let warn = Finding::new(
        Code::lookup("PD-TLS-002").unwrap(),
        Severity::Warning,
        "a warning",
    );
    let found = vec![
        (live("PD-TCP-001", "router-ollama"), "ollama".to_string()),
        (live("PD-HTTP-002", "router-nginx"), "nginx".to_string()),
        (stat.clone(), "nginx".to_string()),
        (stat, "qdrant".to_string()),
        (warn, "nginx".to_string()),
    ];
    let text = render(&found);
    let mut reversed = found.clone();
    reversed.reverse();
    assert_eq!(text, render(&reversed), "order of findings does not matter");
    let b = parse(&text).unwrap();
    let got: Vec<(&str, Option<&str>, Option<&str>)> = b
        .entries
        .iter()
        .map(|e| (e.code.as_str(), e.hop.as_deref(), e.subject.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "PD-CERT-006",
                None,
                Some("etc/certificate-manifest.json#/1")
            ),
            ("PD-HTTP-002", Some("router-nginx"), Some("nginx")),
            ("PD-TCP-001", Some("router-ollama"), Some("ollama")),
        ],
        "{text}"
    );
    assert!(
        !text.contains("127.9.0.153"),
        "no addresses that are not the subject"
    );
    assert_eq!(
        b.entries[1].reason, "known: unexpected HTTP status",
        "the code's catalogue title, not the finding's words"
    );
}
