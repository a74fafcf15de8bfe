//! The evidence items of an observation: what a probe saw, typed, one item per report line
//! (`report::evidence` renders them).

use crate::finding::{EvidenceItem, Meaning};
use crate::observe::{Evidence, Observation, TlsEvidence};

/// The evidence items of `o`.
pub fn observation_items(o: &Observation) -> Vec<EvidenceItem> {
    let mut out = Vec::new();
    match &o.evidence {
        Evidence::None => {}
        Evidence::Dns(d) => {
            out.push(EvidenceItem::DnsAnswer {
                server: d.server.clone(),
                transport: d.protocol,
                rcode: d.rcode,
                answers: d.answers.clone(),
                ttl: d.ttl,
            });
            out.extend(
                d.hosts_entries
                    .iter()
                    .cloned()
                    .map(EvidenceItem::HostsEntry),
            );
            out.extend(d.resolv_conf.clone().map(EvidenceItem::ResolvConf));
            if !d.effective.is_empty() {
                out.push(EvidenceItem::DnsEffective {
                    answers: d.effective.clone(),
                    source: d.effective_source,
                });
            }
        }
        Evidence::Tcp(t) => out.push(EvidenceItem::Tcp {
            addr: t.addr.clone(),
            state: t.state,
            os_error: t.os_error.clone(),
        }),
        Evidence::Tls(t) => tls_items(t, &mut out),
        Evidence::Mtls(m) => {
            tls_items(&m.tls, &mut out);
            out.push(EvidenceItem::ClientCert {
                requested: m.requested,
                ca_hints: m.ca_hints.clone(),
                without: m.without_cert.clone(),
                with: m.with_cert.clone(),
            });
        }
        Evidence::Http(h) => {
            if let Some(t) = &h.tls {
                tls_items(t, &mut out);
            }
            out.push(EvidenceItem::HttpAnswer {
                url: h.url.clone(),
                connect: h.connect.clone(),
                status: h.status,
                server: h.server.clone(),
                meaning: h.proxy_meaning.map(Meaning::Probe),
            });
            let body: String = h.body.chars().take(120).collect();
            if !body.trim().is_empty() {
                out.push(EvidenceItem::Body(body.trim().to_string()));
            }
        }
    }
    out
}

/// A handshake's items: the session, each certificate of the chain, the verification error,
/// the leaf's remaining lifetime.
fn tls_items(t: &TlsEvidence, out: &mut Vec<EvidenceItem>) {
    if !t.protocol.is_empty() {
        out.push(EvidenceItem::TlsSession {
            addr: t.addr.clone(),
            sni: t.sni.clone(),
            protocol: t.protocol.clone(),
            cipher: t.cipher.clone(),
            alpn: t.alpn.clone(),
        });
    }
    out.extend(
        t.chain
            .iter()
            .enumerate()
            .map(|(index, c)| EvidenceItem::Certificate {
                index,
                cert: Box::new(c.clone()),
            }),
    );
    if let Some(error) = t.verify_error {
        out.push(EvidenceItem::VerifyFailed {
            error,
            detail: t.verify_detail.clone(),
        });
    }
    if let (Some(secs), Some(fraction)) = (t.remaining_secs, t.remaining_fraction) {
        out.push(EvidenceItem::LeafLifetime { secs, fraction });
    }
}
