//! The DNS probe: one A query sent straight to the named server (UDP, TCP retry on truncation,
//! explicit attempts, no cache, never the system resolver), plus the vantage's own view: its
//! hosts-file lines for the name, its resolv.conf, and the effective answer (hosts, then DNS).

use super::classify;
use super::{fail, ms, observation, Deadline, ProbeCtx, REASON_INVALID_NAME};
use crate::observe::{
    DnsEvidence, Evidence, HostsEntry, Observation, Outcome, ResolvConf, Timings,
};
use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// UDP attempts before giving up (each gets an equal share of the timeout).
pub const UDP_ATTEMPTS: u32 = 2;

/// What the nameserver said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DnsAnswer {
    pub protocol: String,
    pub rcode: String,
    pub answers: Vec<IpAddr>,
    pub ttl: Option<u32>,
    /// CNAME targets seen on the way.
    pub cnames: Vec<String>,
    /// Address records for owner names that are neither the question nor on its CNAME chain:
    /// not counted (what a resolver would do).
    pub ignored: Vec<String>,
}

/// The largest DNS message over UDP (an answer over 4096 bytes is still an answer).
const UDP_MAX: usize = 65_535;

/// A failure to get any answer.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsFail {
    pub reason: String,
    pub detail: String,
    pub timed_out: bool,
}

/// Check that `name` is a domain name a query can carry: labels of letters, digits, `-` and `_`,
/// each 1 to 63 bytes, 253 bytes at most in all.
pub fn check_name(name: &str) -> Result<Name, String> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    let bad = |why: &str| {
        Err(format!(
            "invalid domain name `{}`: {why}",
            name.escape_debug()
        ))
    };
    if bare.is_empty() {
        return bad("empty");
    }
    if bare.len() > 253 {
        return bad("longer than 253 bytes");
    }
    for label in bare.split('.') {
        if label.is_empty() {
            return bad("an empty label (two dots in a row, or a leading dot)");
        }
        if label.len() > 63 {
            return bad("a label longer than 63 bytes");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad("a label with a character other than letters, digits, `-` and `_`");
        }
    }
    Name::from_ascii(format!("{bare}.")).or_else(|e| bad(&e.to_string()))
}

fn build_query(n: &Name) -> Result<(u16, Vec<u8>), String> {
    let n = n.clone();
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(n, RecordType::A));
    let id = m.metadata.id;
    let bytes = m.to_vec().map_err(|e| format!("encoding the query: {e}"))?;
    Ok((id, bytes))
}

/// Why a datagram is not the answer to our query, if it is not.
fn not_our_answer(m: &Message, qname: &Name) -> Option<&'static str> {
    if m.metadata.message_type != MessageType::Response {
        return Some("the query itself came back (QR=0)");
    }
    let same = m.queries.len() == 1
        && m.queries[0].query_type() == RecordType::A
        && norm(&m.queries[0].name().to_string()) == norm(&qname.to_string());
    if !same {
        return Some("an answer to another question");
    }
    None
}

fn parse_answer(bytes: &[u8], protocol: &str, qname: &Name) -> Result<(DnsAnswer, bool), String> {
    let m = Message::from_vec(bytes).map_err(|e| format!("undecodable answer: {e}"))?;
    if let Some(why) = not_our_answer(&m, qname) {
        return Err(format!("not an answer to the query: {why}"));
    }
    let rcode = m.metadata.response_code.to_string().to_uppercase();
    let rcode = match rcode.as_str() {
        "NO ERROR" | "NOERROR" => "NOERROR".to_string(),
        _ => rcode_name(u16::from(m.metadata.response_code)),
    };
    // The owner names that answer the question: the name itself and its CNAME chain.
    let mut chain: BTreeSet<String> = BTreeSet::from([norm(&qname.to_string())]);
    let mut cnames = Vec::new();
    loop {
        let before = chain.len();
        for r in &m.answers {
            if let RData::CNAME(c) = &r.data {
                if chain.contains(&norm(&r.name.to_string()))
                    && chain.insert(norm(&c.0.to_string()))
                {
                    cnames.push(c.0.to_string());
                }
            }
        }
        if chain.len() == before {
            break;
        }
    }
    let mut answers = Vec::new();
    let mut ttl: Option<u32> = None;
    let mut ignored = Vec::new();
    for r in &m.answers {
        let ip = match &r.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            _ => continue,
        };
        if !chain.contains(&norm(&r.name.to_string())) {
            ignored.push(format!("{} {ip}", r.name));
            continue;
        }
        answers.push(ip);
        ttl = Some(ttl.map_or(r.ttl, |t| t.min(r.ttl)));
    }
    Ok((
        DnsAnswer {
            protocol: protocol.into(),
            rcode,
            answers,
            ttl,
            cnames,
            ignored,
        },
        m.metadata.truncation,
    ))
}

fn rcode_name(code: u16) -> String {
    match code {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        n => return format!("RCODE{n}"),
    }
    .to_string()
}

/// A socket error: the tool's own resource exhaustion stays the tool's, not the network's.
fn io_fail(e: &std::io::Error, prefix: &str) -> DnsFail {
    let c = classify::dns_io(e);
    DnsFail {
        reason: c.reason.into(),
        detail: format!("{prefix}{}", c.detail),
        timed_out: false,
    }
}

async fn udp_query(
    server: SocketAddr,
    q: &[u8],
    id: u16,
    qname: &Name,
    deadline: Deadline,
) -> Result<Vec<u8>, DnsFail> {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let io = |e: std::io::Error| io_fail(&e, "");
    let sock = UdpSocket::bind(bind).await.map_err(io)?;
    // connect() so an ICMP port-unreachable comes back as ECONNREFUSED on recv.
    sock.connect(server).await.map_err(io)?;
    let per_try = deadline.total / UDP_ATTEMPTS;
    let mut not_answers: Vec<&'static str> = Vec::new();
    let mut buf = vec![0u8; UDP_MAX];
    for attempt in 1..=UDP_ATTEMPTS {
        sock.send(q).await.map_err(io)?;
        let try_end = if attempt == UDP_ATTEMPTS {
            deadline.at
        } else {
            (tokio::time::Instant::now() + per_try).min(deadline.at)
        };
        loop {
            match tokio::time::timeout_at(try_end, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(io(e)),
                Ok(Ok(n)) => {
                    if n < 2 || u16::from_be_bytes([buf[0], buf[1]]) != id {
                        continue; // a stray datagram: keep waiting for ours
                    }
                    // an echoed query or an answer to another question is no answer
                    if let Ok(m) = Message::from_vec(&buf[..n]) {
                        if let Some(why) = not_our_answer(&m, qname) {
                            not_answers.push(why);
                            continue;
                        }
                    }
                    return Ok(buf[..n].to_vec());
                }
            }
        }
    }
    let seen = match not_answers.first() {
        Some(why) => format!(
            "; it sent {} datagram(s) that were not answers ({why})",
            not_answers.len()
        ),
        None => String::new(),
    };
    Err(DnsFail {
        reason: "timeout".into(),
        detail: format!(
            "no answer from {server} over UDP after {UDP_ATTEMPTS} attempts in {} ms{seen}",
            deadline.ms()
        ),
        timed_out: true,
    })
}

async fn tcp_query(server: SocketAddr, q: &[u8], deadline: Deadline) -> Result<Vec<u8>, DnsFail> {
    let io = |e: std::io::Error| io_fail(&e, "over TCP: ");
    let fut = async {
        let mut s = TcpStream::connect(server).await.map_err(io)?;
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(q);
        s.write_all(&framed).await.map_err(io)?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.map_err(io)?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await.map_err(io)?;
        Ok(buf)
    };
    match tokio::time::timeout_at(deadline.at, fut).await {
        Ok(r) => r,
        Err(_) => Err(DnsFail {
            reason: "timeout".into(),
            detail: format!(
                "no answer from {server} over TCP within {} ms (after a truncated UDP answer)",
                deadline.ms()
            ),
            timed_out: true,
        }),
    }
}

/// Query `server` for the A records of `name` (UDP, then TCP when the answer is truncated), all
/// within `timeout`.
pub async fn query(
    name: &str,
    server: SocketAddr,
    timeout: Duration,
) -> Result<DnsAnswer, DnsFail> {
    let deadline = Deadline::after(timeout);
    let qname = check_name(name).map_err(|e| DnsFail {
        reason: REASON_INVALID_NAME.into(),
        detail: e,
        timed_out: false,
    })?;
    let (id, q) = build_query(&qname).map_err(|e| DnsFail {
        reason: REASON_INVALID_NAME.into(),
        detail: e,
        timed_out: false,
    })?;
    let bytes = udp_query(server, &q, id, &qname, deadline).await?;
    let bad = |detail: String| DnsFail {
        reason: "bad-response".into(),
        detail,
        timed_out: false,
    };
    let (ans, truncated) = parse_answer(&bytes, "udp", &qname).map_err(bad)?;
    if !truncated {
        return Ok(ans);
    }
    let bytes = tcp_query(server, &q, deadline).await?;
    if bytes.len() < 2 || bytes[..2] != q[..2] {
        return Err(bad(
            "over TCP: an answer with another id than the query".into()
        ));
    }
    let (ans, _) = parse_answer(&bytes, "tcp", &qname).map_err(bad)?;
    Ok(ans)
}

fn norm(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The lines of a hosts file that name `name` (comments and blank lines skipped).
pub fn hosts_entries(file: &Path, text: &str, name: &str) -> Vec<HostsEntry> {
    let want = norm(name);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        let mut parts = line.split_whitespace();
        let Some(ip) = parts.next().and_then(|p| p.parse::<IpAddr>().ok()) else {
            continue;
        };
        let names: Vec<String> = parts.map(str::to_string).collect();
        if names.iter().any(|n| norm(n) == want) {
            out.push(HostsEntry {
                file: file.display().to_string(),
                line: i as u32 + 1,
                ip,
                names,
            });
        }
    }
    out
}

/// The nameservers and search list of a resolv.conf.
pub fn parse_resolv_conf(file: &Path, text: &str) -> ResolvConf {
    let mut rc = ResolvConf {
        file: file.display().to_string(),
        ..ResolvConf::default()
    };
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut parts = line.split_whitespace();
        match parts.next() {
            Some("nameserver") => {
                if let Some(ip) = parts.next().and_then(|p| p.split('%').next()?.parse().ok()) {
                    rc.nameservers.push(ip);
                }
            }
            Some("search") | Some("domain") => {
                rc.search = parts.map(str::to_string).collect();
            }
            _ => {}
        }
    }
    rc
}

fn set(v: &[IpAddr]) -> BTreeSet<IpAddr> {
    v.iter().copied().collect()
}

fn list(v: &[IpAddr]) -> String {
    if v.is_empty() {
        return "nothing".into();
    }
    v.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Run the DNS probe.
pub async fn probe(
    ctx: &ProbeCtx,
    name: &str,
    server: SocketAddr,
    expect: &[IpAddr],
    system: bool,
) -> Observation {
    let t = Instant::now();
    let mut ev = DnsEvidence {
        qname: name.to_string(),
        server: server.to_string(),
        ..DnsEvidence::default()
    };
    let mut notes = Vec::new();
    if system {
        use crate::fsutil::{read_bounded_string, FileKind};
        let hf = &ctx.system.hosts_file;
        // Running out of descriptors while opening them is the tool's own limit, not the file's.
        let mut exhausted = false;
        let mut exhaustion = |e: &crate::fsutil::ReadError| {
            exhausted |= matches!(e, crate::fsutil::ReadError::Io { source, .. }
                if super::classify::is_resource_exhaustion(source));
        };
        match read_bounded_string(hf, FileKind::SystemFile) {
            Ok(text) => ev.hosts_entries = hosts_entries(hf, &text, name),
            Err(e) => {
                exhaustion(&e);
                notes.push(format!("hosts file {e}"))
            }
        }
        let rf = &ctx.system.resolv_conf;
        match read_bounded_string(rf, FileKind::SystemFile) {
            Ok(text) => ev.resolv_conf = Some(parse_resolv_conf(rf, &text)),
            Err(e) => {
                exhaustion(&e);
                notes.push(format!("resolv.conf {e}"))
            }
        }
        // Without the vantage's own files, what a program there resolves is unknown: the
        // step cannot be judged, whatever the nameserver says.
        if !notes.is_empty() {
            let total = ms(t);
            let timings = Timings {
                total_ms: total,
                ..Timings::default()
            };
            let o = observation(Outcome::ToolError, Evidence::Dns(ev), timings);
            let msg = format!(
                "{name}: cannot judge this vantage's view, its files could not be read: {}",
                notes.join("; ")
            );
            let reason = if exhausted {
                super::classify::REASON_RESOURCES
            } else {
                "vantage-file-unreadable"
            };
            return fail(o, Outcome::ToolError, "vantage-files", reason, msg);
        }
    }
    let result = query(name, server, ctx.timeout).await;
    if let Ok(a) = &result {
        if !a.ignored.is_empty() {
            notes.push(format!(
                "ignored {} record(s) for names off the question's CNAME chain: {}",
                a.ignored.len(),
                a.ignored.join(", ")
            ));
        }
    }
    let total = ms(t);
    let timings = Timings {
        resolve_ms: Some(total),
        total_ms: total,
        ..Timings::default()
    };
    let hosts_ips: Vec<IpAddr> = ev.hosts_entries.iter().map(|h| h.ip).collect();
    let suffix = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    };
    let ans = match result {
        Ok(a) => a,
        Err(f) if f.reason == REASON_INVALID_NAME => {
            // the input's fault: nothing was sent, nothing is known about the nameserver
            let o = observation(Outcome::ToolError, Evidence::Dns(ev), timings);
            return fail(o, Outcome::ToolError, "query", &f.reason, f.detail);
        }
        Err(f) => {
            if !hosts_ips.is_empty() {
                ev.effective = hosts_ips.clone();
                ev.effective_source = "hosts".into();
            }
            let outcome = if f.timed_out {
                Outcome::TimedOut
            } else {
                Outcome::Failed
            };
            let o = observation(outcome, Evidence::Dns(ev), timings);
            let msg = format!("{name} @{server}: {}{suffix}", f.detail);
            return fail(o, outcome, "query", &f.reason, msg);
        }
    };
    ev.protocol = ans.protocol.clone();
    ev.rcode = ans.rcode.clone();
    ev.answers = ans.answers.clone();
    ev.ttl = ans.ttl;
    if !hosts_ips.is_empty() {
        ev.effective = hosts_ips.clone();
        ev.effective_source = "hosts".into();
    } else if !ans.answers.is_empty() {
        ev.effective = ans.answers.clone();
        ev.effective_source = "dns".into();
    }
    let o = observation(Outcome::Ok, Evidence::Dns(ev.clone()), timings);
    if ans.rcode != "NOERROR" {
        let reason = classify::dns_rcode(&ans.rcode);
        let msg = format!("{name} @{server}: {}{suffix}", ans.rcode);
        return fail(o, Outcome::Failed, "answer", &reason, msg);
    }
    if ans.answers.is_empty() {
        let msg = format!("{name} @{server}: NOERROR with no A record (NODATA){suffix}");
        return fail(o, Outcome::Failed, "answer", "nodata", msg);
    }
    let ttl = ans.ttl.map(|t| format!(" ttl {t}")).unwrap_or_default();
    let overridden = !hosts_ips.is_empty() && set(&hosts_ips) != set(&ans.answers);
    if overridden {
        let h = &ev.hosts_entries[0];
        let detail = format!(
            "{}:{} maps {name} to {} but {server} answers {}",
            h.file,
            h.line,
            list(&hosts_ips),
            list(&ans.answers)
        );
        if !expect.is_empty() && set(&ev.effective) != set(expect) {
            let msg = format!(
                "{detail}; a program there gets {}, expected {}{suffix}",
                list(&ev.effective),
                list(expect)
            );
            return fail(o, Outcome::Failed, "effective", "hosts-override", msg);
        }
        if !expect.is_empty() && set(&ans.answers) != set(expect) {
            let msg = format!("{detail}; expected {} from DNS{suffix}", list(expect));
            return fail(o, Outcome::Failed, "answer", "wrong-answer", msg);
        }
        let mut o = o;
        o.phase = Some("effective".into());
        o.message = format!("{detail} (hosts file wins){suffix}");
        return o;
    }
    if !expect.is_empty() && set(&ans.answers) != set(expect) {
        let msg = format!(
            "{name} @{server}: A {}{ttl}, expected {}{suffix}",
            list(&ans.answers),
            list(expect)
        );
        return fail(o, Outcome::Failed, "answer", "wrong-answer", msg);
    }
    let mut o = o;
    o.phase = Some("answer".into());
    let via = if ans.protocol == "tcp" {
        " (tcp after truncation)"
    } else {
        ""
    };
    o.message = format!(
        "{name} @{server}: A {}{ttl}{via}{suffix}",
        list(&ans.answers)
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lines_match_names_with_file_and_line() {
        let text =
            "127.0.0.1 localhost\n# 10.0.0.1 qdrant.x\n\n127.0.0.9 other qdrant.X. # comment\n";
        let e = hosts_entries(Path::new("/h"), text, "qdrant.x");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 4);
        assert_eq!(e[0].ip, "127.0.0.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn resolv_conf_parses() {
        let rc = parse_resolv_conf(
            Path::new("/r"),
            "# x\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\nsearch a.test b.test\noptions ndots:1\n",
        );
        assert_eq!(rc.nameservers.len(), 2);
        assert_eq!(rc.search, vec!["a.test", "b.test"]);
    }

    #[test]
    fn query_encodes_and_answers_decode() {
        let qname = check_name("a.example.test").unwrap();
        let (id, q) = build_query(&qname).unwrap();
        let mut m = Message::from_vec(&q).unwrap();
        assert_eq!(m.metadata.id, id);
        m.metadata.response_code = hickory_proto::op::ResponseCode::NXDomain;
        m.metadata.message_type = MessageType::Response;
        let (a, trunc) = parse_answer(&m.to_vec().unwrap(), "udp", &qname).unwrap();
        assert_eq!(a.rcode, "NXDOMAIN");
        assert!(!trunc);
    }
}
