//! The lab's DNS server: answers like the platform's dnsmasq (`local=/<domain>/`, one
//! `address=/<name>/<ip>` per record, no upstreams) over UDP and TCP.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// The zone and its records.
pub struct Zone {
    pub domain: String,
    /// `(hostname, address)`; `address=/d/ip` also answers every subdomain of `d`.
    pub records: Vec<(String, Ipv4Addr)>,
    /// Queries answered so far (UDP and TCP), for tests that count what was sent.
    pub queries: Arc<AtomicUsize>,
}

impl Zone {
    fn lookup(&self, qname: &str) -> Option<Ipv4Addr> {
        self.records
            .iter()
            .filter(|(h, _)| qname == h || qname.ends_with(&format!(".{h}")))
            .max_by_key(|(h, _)| h.len())
            .map(|(_, ip)| *ip)
    }

    fn in_zone(&self, qname: &str) -> bool {
        qname == self.domain || qname.ends_with(&format!(".{}", self.domain))
    }

    /// The answer dnsmasq gives to `request`, or `None` when it is not a query at all.
    pub fn answer(&self, request: &Message) -> Option<Message> {
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        let mut resp = Message::response(request.metadata.id, request.metadata.op_code);
        resp.metadata.recursion_desired = request.metadata.recursion_desired;
        resp.metadata.recursion_available = true;
        if request.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(1232);
            resp.set_edns(edns);
        }
        let Some(q) = request.queries.first() else {
            resp.metadata.response_code = ResponseCode::FormErr;
            return Some(resp);
        };
        resp.add_query(q.clone());
        if request.metadata.op_code != OpCode::Query {
            resp.metadata.response_code = ResponseCode::NotImp;
            return Some(resp);
        }
        let qname = q
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if !self.in_zone(&qname) {
            resp.metadata.response_code = ResponseCode::Refused;
            return Some(resp);
        }
        match (self.lookup(&qname), q.query_type()) {
            (Some(ip), RecordType::A | RecordType::ANY) => {
                resp.metadata.authoritative = true;
                resp.add_answer(Record::from_rdata(q.name().clone(), 0, RData::A(A(ip))));
            }
            _ => resp.metadata.response_code = ResponseCode::NXDomain,
        }
        Some(resp)
    }
}

fn respond(zone: &Zone, packet: &[u8]) -> Option<Vec<u8>> {
    let req = Message::from_vec(packet).ok()?;
    let answer = zone.answer(&req)?;
    zone.queries.fetch_add(1, Ordering::Relaxed);
    answer.to_vec().ok()
}

/// Serve DNS over UDP until the task is aborted.
pub async fn serve_udp(sock: UdpSocket, zone: Arc<Zone>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(out) = respond(&zone, &buf[..n]) {
            let _ = sock.send_to(&out, peer).await;
        }
    }
}

/// Serve DNS over TCP (length-prefixed messages) until the task is aborted.
pub async fn serve_tcp(listener: TcpListener, zone: Arc<Zone>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let zone = zone.clone();
        tokio::spawn(async move {
            loop {
                let Ok(len) = stream.read_u16().await else {
                    return;
                };
                let mut buf = vec![0u8; usize::from(len)];
                if stream.read_exact(&mut buf).await.is_err() {
                    return;
                }
                let Some(out) = respond(&zone, &buf) else {
                    return;
                };
                let Ok(len) = u16::try_from(out.len()) else {
                    return;
                };
                if stream.write_u16(len).await.is_err() || stream.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    fn zone() -> Zone {
        Zone {
            queries: Default::default(),
            domain: "internal.thinkheads.ai".into(),
            records: vec![
                (
                    "qdrant.internal.thinkheads.ai".into(),
                    Ipv4Addr::new(127, 0, 0, 153),
                ),
                (
                    "portainer-agent.internal.thinkheads.ai".into(),
                    Ipv4Addr::new(127, 0, 0, 102),
                ),
            ],
        }
    }

    fn ask(name: &str, t: RecordType) -> Message {
        let mut q = Message::query();
        q.metadata.recursion_desired = true;
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        // Through the wire format, as a client sends it.
        let wire = q.to_vec().unwrap();
        let back = respond(&zone(), &wire).expect("an answer");
        let r = Message::from_vec(&back).unwrap();
        assert_eq!(r.metadata.id, q.metadata.id);
        assert!(r.metadata.recursion_desired && r.metadata.recursion_available);
        r
    }

    fn a(r: &Message) -> Vec<String> {
        r.answers.iter().map(|x| x.data.to_string()).collect()
    }

    #[test]
    fn answers_like_dnsmasq_with_local_and_address() {
        let r = ask("qdrant.internal.thinkheads.ai.", RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.metadata.authoritative);
        assert_eq!(a(&r), ["127.0.0.153"]);
        assert_eq!(r.answers[0].ttl, 0);
        // address=/d/ also answers subdomains, case-insensitively.
        let r = ask("X.Qdrant.internal.thinkheads.ai.", RecordType::A);
        assert_eq!(a(&r), ["127.0.0.153"]);
        // Other types and unknown names in the zone: NXDOMAIN; other zones: REFUSED.
        let r = ask("qdrant.internal.thinkheads.ai.", RecordType::AAAA);
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert!(r.answers.is_empty());
        let r = ask("nope.internal.thinkheads.ai.", RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        let r = ask("example.com.", RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        // A longer record wins over a shorter parent.
        let r = ask("portainer-agent.internal.thinkheads.ai.", RecordType::A);
        assert_eq!(a(&r), ["127.0.0.102"]);
    }

    #[test]
    fn ignores_responses_and_garbage() {
        assert!(respond(&zone(), b"\x00\x01garbage").is_none());
        let mut m = Message::query();
        m.metadata.message_type = MessageType::Response;
        assert!(respond(&zone(), &m.to_vec().unwrap()).is_none());
    }
}
