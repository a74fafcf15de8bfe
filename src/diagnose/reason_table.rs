//! The reason→code table: every reason a probe can emit, judged at the layer that emits it, against
//! a finding code written by hand from the catalogue's meaning (`docs/findings.md`), never from
//! the diagnosis' own output. A changed mapping in `judge` fails a row; a reason the probes or
//! `docs/output-json.md` name without a row, or a live code no row produces, fails the coverage
//! tests.

use super::*;
use crate::observe::{
    DnsEvidence, HostsEntry, HttpEvidence, MtlsEvidence, TcpEvidence, TlsEvidence, VantageNote,
};
use std::collections::BTreeSet;

/// One probe result as the probe emits it, and the code a person expects for it.
struct Row {
    reason: &'static str,
    layer: Layer,
    outcome: Outcome,
    phase: &'static str,
    evidence: Evidence,
    /// The step's request passes through proxies (an HTTP step towards the gateway).
    through: bool,
    verdict: Verdict,
    code: Option<Code>,
}

fn row(
    reason: &'static str,
    layer: Layer,
    outcome: Outcome,
    phase: &'static str,
    evidence: Evidence,
    verdict: Verdict,
    code: Option<Code>,
) -> Row {
    Row {
        reason,
        layer,
        outcome,
        phase,
        evidence,
        through: false,
        verdict,
        code,
    }
}

fn dns(rcode: &str, answers: &[&str]) -> Evidence {
    Evidence::Dns(DnsEvidence {
        qname: "portainer.internal.example.test".into(),
        server: "127.0.0.53:53".into(),
        protocol: "udp".into(),
        rcode: rcode.into(),
        answers: answers.iter().map(|a| a.parse().unwrap()).collect(),
        effective: answers.iter().map(|a| a.parse().unwrap()).collect(),
        effective_source: if rcode.is_empty() { "" } else { "dns" }.into(),
        ..Default::default()
    })
}

/// The seed's LXC 102: `/etc/hosts` pins the name to the gateway, DNS answers the agent.
fn hosts_pinned() -> Evidence {
    Evidence::Dns(DnsEvidence {
        rcode: "NOERROR".into(),
        answers: vec!["127.0.0.12".parse().unwrap()],
        hosts_entries: vec![HostsEntry {
            file: "/etc/hosts".into(),
            line: 3,
            ip: "127.0.0.10".parse().unwrap(),
            names: vec!["portainer.internal.example.test".into()],
        }],
        effective: vec!["127.0.0.10".parse().unwrap()],
        effective_source: "hosts".into(),
        ..Default::default()
    })
}

fn tcp(state: &str) -> Evidence {
    Evidence::Tcp(TcpEvidence {
        addr: "127.0.0.12:9443".into(),
        state: state.into(),
        os_error: None,
    })
}

fn tls_ev(verify_error: Option<&str>) -> TlsEvidence {
    TlsEvidence {
        addr: "127.0.0.10:443".into(),
        sni: "gw.internal.example.test".into(),
        verified: verify_error.is_none(),
        verify_error: verify_error.map(str::to_string),
        ..Default::default()
    }
}

fn tls(verify_error: Option<&str>) -> Evidence {
    Evidence::Tls(tls_ev(verify_error))
}

fn mtls(verdict: &str, without: &str, with: Option<&str>) -> Evidence {
    Evidence::Mtls(MtlsEvidence {
        tls: tls_ev(None),
        requested: verdict != "not-requested",
        ca_hints: vec![],
        without_cert: without.into(),
        with_cert: with.map(str::to_string),
        verdict: verdict.into(),
    })
}

fn http(status: Option<u16>, server: Option<&str>, body: &str, meaning: Option<&str>) -> Evidence {
    Evidence::Http(HttpEvidence {
        url: "https://qdrant.internal.example.test/healthz".into(),
        connect: "127.0.0.10:443".into(),
        status,
        server: server.map(str::to_string),
        body: body.into(),
        proxy_meaning: meaning.map(str::to_string),
        tls: None,
    })
}

fn http_tls(verify_error: Option<&str>) -> Evidence {
    let Evidence::Http(mut h) = http(None, None, "", None) else {
        unreachable!()
    };
    h.tls = Some(tls_ev(verify_error));
    Evidence::Http(h)
}

#[rustfmt::skip]
/// The table. Codes follow the catalogue's meanings: a reason is the layer's failure it names.
fn table() -> Vec<Row> {
    use Layer::{Dns, Http, Mtls, Tcp, Tls};
    use Outcome::{Blocked, Failed, OutOfScope, TimedOut, ToolError};
    use Verdict::{CannotJudge, Diverged, Unreachable};
    let d = Diverged;
    let u = Unreachable;
    let mut rows = vec![
        // dns: the server's response codes.
        row("nxdomain", Dns, Failed, "answer", dns("NXDOMAIN", &[]), d, Some(catalog::PD_DNS_001)),
        row("nodata", Dns, Failed, "answer", dns("NOERROR", &[]), d, Some(catalog::PD_DNS_001)),
        row("servfail", Dns, Failed, "answer", dns("SERVFAIL", &[]), d, Some(catalog::PD_DNS_005)),
        row("refused", Dns, Failed, "answer", dns("REFUSED", &[]), d, Some(catalog::PD_DNS_005)),
        row("formerr", Dns, Failed, "answer", dns("FORMERR", &[]), d, Some(catalog::PD_DNS_005)),
        row("notimp", Dns, Failed, "answer", dns("NOTIMP", &[]), d, Some(catalog::PD_DNS_005)),
        // An rcode without a name of its own and no address: the name does not resolve.
        row("rcode-yxdomain", Dns, Failed, "answer", dns("YXDOMAIN", &[]), d, Some(catalog::PD_DNS_001)),
        row("wrong-answer", Dns, Failed, "answer", dns("NOERROR", &["127.0.0.10"]), d, Some(catalog::PD_DNS_002)),
        row("hosts-override", Dns, Failed, "effective", hosts_pinned(), d, Some(catalog::PD_DNS_003)),
        // What a program at the vantage resolves through its own resolv.conf: its nameservers give
        // no answer, or it asks another nameserver than the config intends.
        row("resolver-no-answer", Dns, Failed, "effective", dns("NOERROR", &["127.0.0.153"]), d, Some(catalog::PD_DNS_006)),
        row("resolver-differs", Dns, Failed, "effective", dns("NOERROR", &["127.0.0.153"]), d, Some(catalog::PD_DNS_007)),
        // dns: no answer at all.
        row("timeout", Dns, TimedOut, "query", dns("", &[]), u, Some(catalog::PD_DNS_004)),
        row("port-unreachable", Dns, Failed, "query", dns("", &[]), u, Some(catalog::PD_DNS_004)),
        row("unreachable", Dns, Failed, "query", dns("", &[]), u, Some(catalog::PD_DNS_004)),
        row("net-unreachable", Dns, Failed, "query", dns("", &[]), u, Some(catalog::PD_DNS_004)),
        row("bad-response", Dns, Failed, "query", dns("", &[]), u, Some(catalog::PD_DNS_004)),
        row("dns-io-error", Dns, Failed, "query", dns("", &[]), u, Some(catalog::PD_DNS_004)),
        // The tool's own failures are never the platform's.
        row("invalid-name", Dns, ToolError, "query", Evidence::None, CannotJudge, Some(catalog::PD_RUN_002)),
        row("invalid-name", Tls, ToolError, "handshake", Evidence::None, CannotJudge, Some(catalog::PD_RUN_002)),
        row("vantage-file-unreadable", Dns, ToolError, "vantage-files", dns("", &[]), CannotJudge, Some(catalog::PD_RUN_002)),
        row("out-of-resources", Tcp, ToolError, "connect", Evidence::None, CannotJudge, Some(catalog::PD_RUN_002)),
        row("out-of-resources", Dns, ToolError, "query", Evidence::None, CannotJudge, Some(catalog::PD_RUN_002)),
        row("tool-error", Http, ToolError, "verify", Evidence::None, CannotJudge, Some(catalog::PD_RUN_002)),
        row("out-of-scope", Tcp, OutOfScope, "", Evidence::None, CannotJudge, Some(catalog::PD_RUN_001)),
        row("budget", Http, TimedOut, "", Evidence::None, CannotJudge, Some(catalog::PD_RUN_004)),
        row("timeout-below-floor", Tcp, TimedOut, "connect", tcp("filtered"), CannotJudge, Some(catalog::PD_RUN_004)),
        row("blocked", Http, Blocked, "", Evidence::None, Verdict::Blocked, None),
        // tcp: the state decides.
        row("refused", Tcp, Failed, "connect", tcp("refused"), u, Some(catalog::PD_TCP_001)),
        row("filtered", Tcp, TimedOut, "connect", tcp("filtered"), u, Some(catalog::PD_TCP_002)),
        row("unreachable", Tcp, Failed, "connect", tcp("unreachable"), u, Some(catalog::PD_TCP_003)),
        row("net-unreachable", Tcp, Failed, "connect", tcp("unreachable"), u, Some(catalog::PD_TCP_003)),
        // A reset answers the SYN: something there refuses, nothing was dropped.
        row("reset", Tcp, Failed, "connect", tcp("error"), u, Some(catalog::PD_TCP_001)),
        row("connect-error", Tcp, Failed, "connect", tcp("error"), u, Some(catalog::PD_TCP_001)),
        // The connect phase of tls, mtls and http is the tcp layer's failure.
        row("refused", Tls, Failed, "connect", tls(None), u, Some(catalog::PD_TCP_001)),
        row("filtered", Mtls, TimedOut, "connect", mtls("unknown", "", None), u, Some(catalog::PD_TCP_002)),
        row("unreachable", Http, Failed, "connect", http(None, None, "", None), u, Some(catalog::PD_TCP_003)),
        row("net-unreachable", Tls, Failed, "connect", tls(None), u, Some(catalog::PD_TCP_003)),
        row("reset", Http, Failed, "connect", http(None, None, "", None), u, Some(catalog::PD_TCP_001)),
        row("connect-error", Tls, Failed, "connect", tls(None), u, Some(catalog::PD_TCP_001)),
        // tls: a handshake that does not complete.
        row("handshake-timeout", Tls, TimedOut, "handshake", tls(None), d, Some(catalog::PD_TLS_006)),
        row("tls-alert", Tls, Failed, "handshake", tls(None), d, Some(catalog::PD_TLS_006)),
        row("not-tls", Tls, Failed, "handshake", tls(None), d, Some(catalog::PD_TLS_006)),
        row("reset", Tls, Failed, "handshake", tls(None), d, Some(catalog::PD_TLS_006)),
        row("peer-closed", Tls, Failed, "handshake", tls(None), d, Some(catalog::PD_TLS_006)),
        row("message-too-large", Tls, Failed, "handshake", tls(None), d, Some(catalog::PD_TLS_006)),
        row("tls-incompatible", Tls, Failed, "handshake", tls(None), d, Some(catalog::PD_TLS_006)),
        row("tls-error", Tls, Failed, "handshake", tls(None), d, Some(catalog::PD_TLS_006)),
        row("no-certificate", Tls, Failed, "verify", tls(Some("no-certificate")), d, Some(catalog::PD_TLS_006)),
        // tls verify: one code per verification error.
        row("expired", Tls, Failed, "verify", tls(Some("expired")), d, Some(catalog::PD_TLS_001)),
        row("not-yet-valid", Tls, Failed, "verify", tls(Some("not-yet-valid")), d, Some(catalog::PD_TLS_001)),
        row("name-mismatch", Tls, Failed, "verify", tls(Some("name-mismatch")), d, Some(catalog::PD_TLS_002)),
        row("unknown-issuer", Tls, Failed, "verify", tls(Some("unknown-issuer")), d, Some(catalog::PD_TLS_003)),
        row("intermediate-not-served", Tls, Failed, "verify", tls(Some("intermediate-not-served")), d, Some(catalog::PD_TLS_004)),
        row("self-signed", Tls, Failed, "verify", tls(Some("self-signed")), d, Some(catalog::PD_TLS_005)),
        row("wrong-key-usage", Tls, Failed, "verify", tls(Some("wrong-key-usage")), d, Some(catalog::PD_TLS_008)),
        row("pin-mismatch", Tls, Failed, "verify", tls(Some("pin-mismatch")), d, Some(catalog::PD_TLS_009)),
        row("bad-certificate", Tls, Failed, "verify", tls(Some("bad-certificate")), d, Some(catalog::PD_TLS_006)),
        // The same verification errors seen by an mTLS or HTTPS probe keep their TLS code.
        row("unknown-issuer", Mtls, Failed, "verify", Evidence::Mtls(MtlsEvidence { tls: tls_ev(Some("unknown-issuer")), verdict: "unknown".into(), ..Default::default() }), d, Some(catalog::PD_TLS_003)),
        row("name-mismatch", Http, Failed, "verify", http_tls(Some("name-mismatch")), d, Some(catalog::PD_TLS_002)),
        row("expired", Http, Failed, "handshake", http_tls(Some("expired")), d, Some(catalog::PD_TLS_001)),
        row("tls-alert", Http, Failed, "handshake", http_tls(None), d, Some(catalog::PD_TLS_006)),
        // mtls: the server's demand for a client certificate.
        row("client-cert-not-requested", Mtls, Failed, "client-auth", mtls("not-requested", "accepted", None), d, Some(catalog::PD_MTLS_001)),
        row("client-cert-optional", Mtls, Failed, "client-auth", mtls("optional", "accepted", Some("accepted")), d, Some(catalog::PD_MTLS_001)),
        row("client-cert-rejected", Mtls, Failed, "client-auth", mtls("required-rejecting", "alert:certificate-required", Some("alert:unknown-ca")), d, Some(catalog::PD_MTLS_002)),
        // The reason alone decides when the verdict word does not (the identity was rejected
        // after a handshake that completed: nginx's HTTP 400).
        row("client-cert-rejected", Mtls, Failed, "client-auth", mtls("required", "http-400", Some("http-400")), d, Some(catalog::PD_MTLS_002)),
        // http: what came back.
        row("status-mismatch", Http, Failed, "status", http(Some(403), Some("nginx/1.22.1"), "forbidden", None), d, Some(catalog::PD_HTTP_002)),
        row("status-mismatch", Http, Failed, "status", http(Some(404), None, "404 page not found", Some("no-router")), d, Some(catalog::PD_HTTP_001)),
        row("status-mismatch", Http, Failed, "status", http(Some(502), Some("nginx/1.22.1"), "Bad Gateway", Some("backend-refused")), d, Some(catalog::PD_HTTP_005)),
        row("status-mismatch", Http, Failed, "status", http(Some(504), Some("nginx/1.22.1"), "Gateway Time-out", Some("backend-timeout")), d, Some(catalog::PD_HTTP_005)),
        row("status-mismatch", Http, Failed, "status", http(Some(500), None, "Internal Server Error", Some("backend-tls")), d, Some(catalog::PD_HTTP_005)),
        row("status-mismatch", Http, Failed, "status", http(Some(503), None, "no available server", Some("no-backend")), d, Some(catalog::PD_HTTP_005)),
        row("body-mismatch", Http, Failed, "body", http(Some(200), None, "another service", None), d, Some(catalog::PD_HTTP_003)),
        row("timeout", Http, TimedOut, "first-byte", http(None, None, "", None), d, Some(catalog::PD_HTTP_004)),
        // A body that stalls after the head: the service hangs, its status was fine.
        row("timeout", Http, TimedOut, "body", http(Some(200), None, "partial", None), d, Some(catalog::PD_HTTP_004)),
        row("http-error", Http, Failed, "response", http(None, None, "", None), d, Some(catalog::PD_HTTP_002)),
        row("http-error", Http, Failed, "body", http(Some(200), None, "", None), d, Some(catalog::PD_HTTP_002)),
    ];
    // Through proxies a missing answer is a hop behind them that hangs: still PD-HTTP-004.
    rows.push(Row {
        through: true,
        ..row(
            "timeout",
            Http,
            TimedOut,
            "first-byte",
            http(None, None, "", None),
            d,
            Some(catalog::PD_HTTP_004),
        )
    });
    rows
}

fn step(layer: Layer, through: bool) -> Step {
    Step {
        id: format!("hop.{}", layer.as_str()),
        hop: "hop".into(),
        from: VantageRef::Host,
        to: "traefik".into(),
        layer,
        probe: ProbeSpec::Tcp {
            addr: "127.0.0.10:443".parse().unwrap(),
        },
        expect: String::new(),
        provenance: vec![],
        depends_on: vec![],
        through: if through {
            vec!["router-qdrant".into()]
        } else {
            vec![]
        },
    }
}

fn observation(r: &Row) -> Observation {
    Observation {
        step: format!("hop.{}", r.layer.as_str()),
        outcome: r.outcome,
        phase: (!r.phase.is_empty()).then(|| r.phase.to_string()),
        reason: Some(r.reason.to_string()),
        message: format!("{} (message for people)", r.reason),
        evidence: r.evidence.clone(),
        timings: Default::default(),
        vantage: VantageNote::default(),
    }
}

#[test]
fn every_probe_reason_maps_to_its_hand_written_code() {
    let mut wrong = vec![];
    for r in table() {
        let j = judge(&step(r.layer, r.through), &observation(&r));
        if (j.verdict, j.code) != (r.verdict, r.code) || (r.through && !j.proxy_answer) {
            wrong.push(format!(
                "{} at {} ({:?}, phase {:?}): judged {:?} {:?}, expected {:?} {:?}",
                r.reason, r.layer, r.outcome, r.phase, j.verdict, j.code, r.verdict, r.code
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The two codes no failure reason produces: a healthy step's near-expiry warning and a guest
/// step that ran from this machine.
#[test]
fn the_codes_of_healthy_steps_are_the_expiry_warning_and_the_substitution() {
    let mut o = observation(&row(
        "",
        Layer::Tls,
        Outcome::Ok,
        "verify",
        Evidence::Tls(TlsEvidence {
            remaining_fraction: Some(EXPIRY_WARN_FRACTION / 2.0),
            ..tls_ev(None)
        }),
        Verdict::Ok,
        None,
    ));
    o.reason = None;
    let j = judge(&step(Layer::Tls, false), &o);
    assert_eq!(
        (j.verdict, j.code),
        (Verdict::Warn, Some(catalog::PD_TLS_007))
    );
    o.evidence = Evidence::Tls(TlsEvidence {
        remaining_fraction: Some(EXPIRY_WARN_FRACTION * 2.0),
        ..tls_ev(None)
    });
    let j = judge(&step(Layer::Tls, false), &o);
    assert_eq!((j.verdict, j.code), (Verdict::Ok, None));

    let mut s = step(Layer::Dns, false);
    s.from = VantageRef::Lxc(102);
    o.evidence = dns("NOERROR", &["127.0.0.12"]);
    o.vantage.substituted = true;
    let j = judge(&s, &o);
    assert_eq!(
        (j.verdict, j.code),
        (Verdict::CannotJudge, Some(SUBSTITUTED))
    );
    // From the host itself nothing was substituted away.
    s.from = VantageRef::Host;
    assert_eq!(judge(&s, &o).code, None);
}

#[test]
fn every_live_code_is_produced_by_the_table() {
    let mut produced: BTreeSet<&str> = table()
        .iter()
        .filter_map(|r| r.code)
        .map(Code::as_str)
        .collect();
    produced.extend([catalog::PD_TLS_007.as_str(), SUBSTITUTED.as_str()]);
    let live: BTreeSet<&str> = catalog::LIVE.iter().map(|c| c.code).collect();
    let never: Vec<_> = live.difference(&produced).collect();
    assert!(never.is_empty(), "live codes no reason produces: {never:?}");
    let unknown: Vec<_> = produced.difference(&live).collect();
    assert!(
        unknown.is_empty(),
        "codes without a catalogue entry: {unknown:?}"
    );
}

/// Every reason in `docs/output-json.md`'s reason table.
fn documented_reasons() -> BTreeSet<String> {
    let doc = include_str!("../../docs/output-json.md");
    let table = doc
        .split("### Reason codes")
        .nth(1)
        .expect("docs/output-json.md has a reason table");
    let mut out = BTreeSet::new();
    for line in table.lines().skip(2) {
        if !line.starts_with('|') {
            break;
        }
        let first = line.split('|').nth(1).unwrap_or_default();
        for part in first.split('`').skip(1).step_by(2) {
            out.insert(part.replace("rcode-<name>", "rcode-yxdomain"));
        }
    }
    out
}

/// Every reason literal in the probes' sources: classifications (`=> "refused"`, `reason:
/// "filtered"`), failures (`fail(o, outcome, "phase", "reason", ...)`), verification errors
/// (`vf("expired", ...)`), the mTLS verdict's reasons and the engine's constants.
fn source_reasons() -> BTreeSet<String> {
    let sources = [
        include_str!("../probe/classify.rs"),
        include_str!("../probe/dns.rs"),
        include_str!("../probe/tcp.rs"),
        include_str!("../probe/tls.rs"),
        include_str!("../probe/mtls.rs"),
        include_str!("../probe/http.rs"),
        include_str!("../probe/mod.rs"),
    ];
    let patterns = [
        r#"reason: "([a-z-]+)""#,
        r#"Some\(\d+\) => "([a-z-]+)""#,
        r#"ErrorKind::\w+ => "([a-z-]+)""#,
        r#"fail\(\s*o,\s*[^,]+,\s*"[a-z-]+",\s*"([a-z-]+)""#,
        r#"vf\(\s*"([a-z-]+)""#,
        r#"=> Some\("(client-cert-[a-z-]+)"\)"#,
        r#"REASON_\w+: &str = "([a-z-]+)""#,
        r#""[A-Z]+" => "([a-z]+)"\.into\(\)"#,
    ];
    let mut out = BTreeSet::new();
    for src in sources {
        // Only the code, not the unit tests at the end of a file.
        let code = src.split("#[cfg(test)]").next().unwrap_or(src);
        for p in patterns {
            let re = regex::Regex::new(p).unwrap();
            for c in re.captures_iter(code) {
                out.insert(c[1].to_string());
            }
        }
    }
    out
}

#[test]
fn every_reason_the_probes_emit_or_the_docs_name_has_a_row() {
    let rows: BTreeSet<String> = table().iter().map(|r| r.reason.to_string()).collect();
    let from_source = source_reasons();
    // The pattern scan must see the probes' reasons at all (a scan that finds nothing proves
    // nothing).
    for known in [
        "refused",
        "nxdomain",
        "wrong-key-usage",
        "body-mismatch",
        "client-cert-rejected",
    ] {
        assert!(
            from_source.contains(known),
            "source scan misses {known}: {from_source:?}"
        );
    }
    let documented = documented_reasons();
    assert!(documented.contains("hosts-override"), "{documented:?}");
    let missing: Vec<_> = from_source
        .union(&documented)
        .filter(|r| !rows.contains(*r))
        .collect();
    assert!(missing.is_empty(), "reasons without a row: {missing:?}");
    let undocumented: Vec<_> = from_source.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "reasons the probes emit that docs/output-json.md does not list: {undocumented:?}"
    );
}
