//! Evidence in words: each typed [`EvidenceItem`] of a finding or a step rendered to its one
//! line, the line every format prints and the JSON lists (`Display`, which `Serialize` uses).

use crate::finding::{BackendFailure, EvidenceItem, Meaning, ProxyPart};
use crate::observe::Layer;
use std::fmt::{self, Display, Formatter};

impl Display for EvidenceItem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        use EvidenceItem as E;
        match self {
            E::DnsAnswer { .. } => dns_answer(self, f),
            E::HostsEntry(h) => write!(f, "{}:{}: {} {}", h.file, h.line, h.ip, h.names.join(" ")),
            E::ResolvConf(r) => write!(
                f,
                "{}: nameserver {} search {}",
                r.file,
                joined(&r.nameservers, " "),
                r.search.join(" ")
            ),
            E::DnsEffective { answers, source } => write!(
                f,
                "effective answer at the vantage: {} (from {source})",
                joined(answers, ", ")
            ),
            E::Tcp {
                addr,
                state,
                os_error,
            } => {
                write!(f, "tcp {addr}: {state}")?;
                match os_error {
                    Some(e) => write!(f, " ({e})"),
                    None => Ok(()),
                }
            }
            E::TlsSession { .. } => tls_session(self, f),
            E::Certificate { index, cert } => {
                let mut names = cert.dns_sans.clone();
                names.extend(cert.ip_sans.iter().map(|i| i.to_string()));
                write!(
                    f,
                    "cert[{index}] subject {} issuer {} names [{}] valid {} .. {}",
                    cert.subject,
                    cert.issuer,
                    names.join(", "),
                    cert.not_before,
                    cert.not_after
                )
            }
            E::VerifyFailed { error, detail } if detail.is_empty() => {
                write!(f, "verification failed: {error}")
            }
            E::VerifyFailed { error, detail } => {
                write!(f, "verification failed: {error} ({detail})")
            }
            E::LeafLifetime { secs, fraction } => write!(
                f,
                "leaf lifetime left: {} ({:.0}%)",
                crate::observe::remaining_life(*secs),
                fraction * 100.0
            ),
            E::ClientCert { .. } => client_cert(self, f),
            E::HttpAnswer { .. } => http_answer(self, f),
            E::Body(b) => write!(f, "body: {b}"),
            E::Substituted { from, via } => write!(
                f,
                "ran from this machine instead of {from} ({})",
                if via.is_empty() { "substituted" } else { via }
            ),
            E::SymptomAt {
                step,
                layer,
                from,
                actual,
            } => write!(f, "symptom at {step} ({layer} from {from}): {actual}"),
            E::AlsoSeen { step, from, actual } => write!(f, "also {step} (from {from}): {actual}"),
            E::StepFailed { step, from, actual } => write!(f, "{step} (from {from}): {actual}"),
            E::StepWorked {
                step,
                from,
                expected,
            } => write!(f, "{step} (from {from}): ok, {expected}"),
            E::Text(t) => f.write_str(t),
            E::Listening { .. }
            | E::SocketsUnreadable { .. }
            | E::CertFile { .. }
            | E::CertFileEmpty { .. }
            | E::CertFileUnreadable { .. }
            | E::Deployed { .. }
            | E::RouterMissing { .. }
            | E::Intended { .. } => guest_fact(self, f),
        }
    }
}

/// What was read in a guest or on the host: listening sockets, the certificate file, the
/// deployed proxy configs against the generators'.
fn guest_fact(item: &EvidenceItem, f: &mut Formatter<'_>) -> fmt::Result {
    use EvidenceItem as E;
    match item {
        E::Listening { vantage, addrs } if addrs.is_empty() => write!(
            f,
            "{vantage}:/proc/net/tcp{{,6}}: listening on nothing reachable at its address"
        ),
        E::Listening { vantage, addrs } => write!(
            f,
            "{vantage}:/proc/net/tcp{{,6}}: listening on {}",
            addrs.join(", ")
        ),
        E::SocketsUnreadable { vantage, why } => {
            write!(f, "{vantage}: listening sockets unreadable: {why}")
        }
        E::CertFile {
            path,
            sha256,
            names,
            not_before,
            not_after,
        } => write!(
            f,
            "host:{path}: sha256 {} names [{}] valid {not_before} .. {not_after}",
            sha256.get(..16).unwrap_or(sha256),
            names.join(", ")
        ),
        E::CertFileEmpty { path } => write!(f, "host:{path}: no PEM certificate in it"),
        E::CertFileUnreadable { path, why } => write!(f, "host:{path}: unreadable: {why}"),
        E::Deployed {
            part,
            vantage,
            at,
            directive,
        } => write!(f, "deployed {part}: {vantage} {at}: {directive}"),
        E::RouterMissing {
            vantage,
            router,
            files,
        } => write!(
            f,
            "deployed: {vantage}: no router {router} in {}",
            files.join(", ")
        ),
        E::Intended {
            part,
            directive,
            from,
        } => write!(
            f,
            "intended {part}: {directive} from {}",
            from.join(" and ")
        ),
        _ => Ok(()),
    }
}

fn joined<T: Display>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

fn dns_answer(item: &EvidenceItem, f: &mut Formatter<'_>) -> fmt::Result {
    let EvidenceItem::DnsAnswer {
        server,
        transport,
        rcode,
        answers,
        ttl,
    } = item
    else {
        return Ok(());
    };
    write!(
        f,
        "dns @{server} {}: ",
        transport.map(|p| p.as_str()).unwrap_or("udp")
    )?;
    match rcode {
        Some(r) => write!(f, "{r}")?,
        None => f.write_str("no answer")?,
    }
    write!(f, " [{}]", joined(answers, ", "))?;
    match ttl {
        Some(t) => write!(f, " ttl {t}"),
        None => Ok(()),
    }
}

fn tls_session(item: &EvidenceItem, f: &mut Formatter<'_>) -> fmt::Result {
    let EvidenceItem::TlsSession {
        addr,
        sni,
        protocol,
        cipher,
        alpn,
    } = item
    else {
        return Ok(());
    };
    let sni = if sni.is_empty() { "-" } else { sni };
    write!(f, "tls {addr} sni {sni}: {protocol} {cipher}")?;
    match alpn {
        Some(a) => write!(f, " alpn {a}"),
        None => Ok(()),
    }
}

fn client_cert(item: &EvidenceItem, f: &mut Formatter<'_>) -> fmt::Result {
    let EvidenceItem::ClientCert {
        requested,
        ca_hints,
        without,
        with,
    } = item
    else {
        return Ok(());
    };
    write!(
        f,
        "client certificate {}; hinted CAs: {}; without a certificate: ",
        if *requested {
            "requested"
        } else {
            "not requested"
        },
        if ca_hints.is_empty() {
            "none".to_string()
        } else {
            ca_hints.join("; ")
        },
    )?;
    if let Some(a) = without {
        write!(f, "{a}")?;
    }
    match with {
        Some(w) => write!(f, "; with ours: {w}"),
        None => Ok(()),
    }
}

fn http_answer(item: &EvidenceItem, f: &mut Formatter<'_>) -> fmt::Result {
    let EvidenceItem::HttpAnswer {
        url,
        connect,
        status,
        server,
        meaning,
    } = item
    else {
        return Ok(());
    };
    write!(f, "http {url} via {connect}: ")?;
    match status {
        Some(s) => write!(f, "{s}")?,
        None => f.write_str("no response")?,
    }
    if let Some(s) = server {
        write!(f, " (Server: {s})")?;
    }
    match meaning {
        Some(m) => write!(f, " meaning {m}"),
        None => Ok(()),
    }
}

impl Display for Meaning {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Meaning::Probe(m) => f.write_str(m.as_str()),
            Meaning::Backend(b) => b.fmt(f),
        }
    }
}

/// `backend failure: <what the hop behind showed>, seen at <step>`.
impl Display for BackendFailure {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            BackendFailure::SeenAt { code, step } => {
                write!(f, "backend failure: {}, seen at {step}", cause_words(*code))
            }
            BackendFailure::ProxyTimeout => f.write_str("backend failure: the proxy's own timeout"),
            BackendFailure::Unknown => f.write_str("backend failure"),
        }
    }
}

/// What a backend failure was, in words, from the code of the step that saw it.
fn cause_words(code: crate::finding::Code) -> &'static str {
    use crate::diagnose::catalog::{PD_HTTP_001, PD_HTTP_004, PD_TCP_001, PD_TCP_002, PD_TCP_003};
    let words = [
        (PD_TCP_001, "connection refused"),
        (PD_TCP_002, "connection filtered (no answer)"),
        (PD_TCP_003, "host unreachable"),
        (PD_HTTP_004, "timeout"),
        (PD_HTTP_001, "no route for the Host"),
    ];
    if let Some((_, w)) = words.iter().find(|(c, _)| *c == code) {
        return w;
    }
    match code.layer() {
        Some(Layer::Tls) => "TLS verification failed",
        Some(Layer::Mtls) => "client certificate not accepted",
        Some(Layer::Dns) => "name resolution",
        _ => "the backend's own error",
    }
}

impl Display for ProxyPart {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProxyPart::Upstream => "upstream",
            ProxyPart::Router => "router",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::catalog::{PD_TCP_001, PD_TLS_005};
    use crate::observe::{EffectiveSource, Rcode, TcpState, VantageRef};

    /// Each line written by hand from the item's documented form (docs/output-json.md).
    #[test]
    fn each_kind_renders_to_its_line() {
        let cases: Vec<(EvidenceItem, &str)> = vec![
            (
                EvidenceItem::DnsAnswer {
                    server: "127.0.0.1:53".into(),
                    transport: None,
                    rcode: Some(Rcode::NoError),
                    answers: vec!["10.0.0.12".parse().unwrap()],
                    ttl: Some(60),
                },
                "dns @127.0.0.1:53 udp: NOERROR [10.0.0.12] ttl 60",
            ),
            (
                EvidenceItem::DnsEffective {
                    answers: vec!["127.0.0.101".parse().unwrap()],
                    source: EffectiveSource::Hosts,
                },
                "effective answer at the vantage: 127.0.0.101 (from hosts)",
            ),
            (
                EvidenceItem::Tcp {
                    addr: "10.0.0.12:443".into(),
                    state: TcpState::Refused,
                    os_error: Some("os error 111".into()),
                },
                "tcp 10.0.0.12:443: refused (os error 111)",
            ),
            (
                EvidenceItem::SymptomAt {
                    step: "host-gateway.http".into(),
                    layer: Layer::Http,
                    from: "host".into(),
                    actual: "status 502".into(),
                },
                "symptom at host-gateway.http (http from host): status 502",
            ),
            (
                EvidenceItem::StepWorked {
                    step: "router-qdrant.tcp".into(),
                    from: "lxc:102".into(),
                    expected: "open".into(),
                },
                "router-qdrant.tcp (from lxc:102): ok, open",
            ),
            (
                EvidenceItem::Listening {
                    vantage: VantageRef::Lxc(102),
                    addrs: vec![],
                },
                "lxc:102:/proc/net/tcp{,6}: listening on nothing reachable at its address",
            ),
            (
                EvidenceItem::Intended {
                    part: ProxyPart::Upstream,
                    directive: "proxy_pass http://10.0.0.12:80;".into(),
                    from: vec!["a.json:3".into(), "b.json:4".into()],
                },
                "intended upstream: proxy_pass http://10.0.0.12:80; from a.json:3 and b.json:4",
            ),
            (
                EvidenceItem::HttpAnswer {
                    url: "https://q.x/".into(),
                    connect: "10.0.0.12:443".into(),
                    status: Some(502),
                    server: None,
                    meaning: Some(Meaning::Backend(BackendFailure::SeenAt {
                        code: PD_TCP_001,
                        step: "router-qdrant.tcp".into(),
                    })),
                },
                "http https://q.x/ via 10.0.0.12:443: 502 meaning backend failure: connection refused, seen at router-qdrant.tcp",
            ),
        ];
        for (item, line) in cases {
            assert_eq!(item.to_string(), line);
            assert_eq!(
                serde_json::to_string(&item).unwrap(),
                serde_json::to_string(line).unwrap()
            );
        }
    }

    #[test]
    fn a_backend_failure_is_named_by_the_layer_that_saw_it() {
        let seen = |code| BackendFailure::SeenAt {
            code,
            step: "s".into(),
        };
        assert_eq!(
            seen(PD_TLS_005).to_string(),
            "backend failure: TLS verification failed, seen at s"
        );
        assert_eq!(
            BackendFailure::ProxyTimeout.to_string(),
            "backend failure: the proxy's own timeout"
        );
        assert_eq!(BackendFailure::Unknown.to_string(), "backend failure");
    }
}
