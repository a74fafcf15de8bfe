//! Evidence lines for people (moving to `report`).

use crate::observe::{Evidence, Observation};

/// Short evidence lines for people, from structured evidence.
pub fn evidence_lines(o: &Observation) -> Vec<String> {
    let mut out = Vec::new();
    match &o.evidence {
        Evidence::None => {}
        Evidence::Dns(d) => {
            let answers: Vec<String> = d.answers.iter().map(|a| a.to_string()).collect();
            out.push(format!(
                "dns @{} {}: {} [{}]{}",
                d.server,
                d.protocol.map(|p| p.as_str()).unwrap_or("udp"),
                d.rcode
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "no answer".into()),
                answers.join(", "),
                d.ttl.map(|t| format!(" ttl {t}")).unwrap_or_default()
            ));
            for h in &d.hosts_entries {
                out.push(format!(
                    "{}:{}: {} {}",
                    h.file,
                    h.line,
                    h.ip,
                    h.names.join(" ")
                ));
            }
            if let Some(r) = &d.resolv_conf {
                let ns: Vec<String> = r.nameservers.iter().map(|n| n.to_string()).collect();
                out.push(format!(
                    "{}: nameserver {} search {}",
                    r.file,
                    ns.join(" "),
                    r.search.join(" ")
                ));
            }
            if !d.effective.is_empty() {
                let eff: Vec<String> = d.effective.iter().map(|a| a.to_string()).collect();
                out.push(format!(
                    "effective answer at the vantage: {} (from {})",
                    eff.join(", "),
                    d.effective_source
                ));
            }
        }
        Evidence::Tcp(t) => out.push(format!(
            "tcp {}: {}{}",
            t.addr,
            t.state,
            t.os_error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        )),
        Evidence::Tls(t) => tls_lines(t, &mut out),
        Evidence::Mtls(m) => {
            tls_lines(&m.tls, &mut out);
            out.push(format!(
                "client certificate {}; hinted CAs: {}; without a certificate: {}{}",
                if m.requested {
                    "requested"
                } else {
                    "not requested"
                },
                if m.ca_hints.is_empty() {
                    "none".to_string()
                } else {
                    m.ca_hints.join("; ")
                },
                m.without_cert
                    .as_ref()
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
                m.with_cert
                    .as_ref()
                    .map(|w| format!("; with ours: {w}"))
                    .unwrap_or_default()
            ));
        }
        Evidence::Http(h) => {
            if let Some(t) = &h.tls {
                tls_lines(t, &mut out);
            }
            let body: String = h.body.chars().take(120).collect();
            out.push(format!(
                "http {} via {}: {}{}{}",
                h.url,
                h.connect,
                h.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "no response".into()),
                h.server
                    .as_ref()
                    .map(|s| format!(" (Server: {s})"))
                    .unwrap_or_default(),
                h.proxy_meaning
                    .as_ref()
                    .map(|m| format!(" meaning {m}"))
                    .unwrap_or_default()
            ));
            if !body.trim().is_empty() {
                out.push(format!("body: {}", body.trim()));
            }
        }
    }
    out
}

fn tls_lines(t: &crate::observe::TlsEvidence, out: &mut Vec<String>) {
    if !t.protocol.is_empty() {
        out.push(format!(
            "tls {} sni {}: {} {}{}",
            t.addr,
            if t.sni.is_empty() { "-" } else { &t.sni },
            t.protocol,
            t.cipher,
            t.alpn
                .as_ref()
                .map(|a| format!(" alpn {a}"))
                .unwrap_or_default()
        ));
    }
    for (i, c) in t.chain.iter().enumerate() {
        let mut names: Vec<String> = c.dns_sans.clone();
        names.extend(c.ip_sans.iter().map(|i| i.to_string()));
        out.push(format!(
            "cert[{i}] subject {} issuer {} names [{}] valid {} .. {}",
            c.subject,
            c.issuer,
            names.join(", "),
            c.not_before,
            c.not_after
        ));
    }
    if let Some(e) = &t.verify_error {
        out.push(format!(
            "verification failed: {e}{}",
            if t.verify_detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", t.verify_detail)
            }
        ));
    }
    if let (Some(secs), Some(frac)) = (t.remaining_secs, t.remaining_fraction) {
        out.push(format!(
            "leaf lifetime left: {} ({:.0}%)",
            crate::observe::remaining_life(secs),
            frac * 100.0
        ));
    }
}
