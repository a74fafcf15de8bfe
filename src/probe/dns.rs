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

/// At most this many nameservers of a resolv.conf are used (glibc's MAXNS).
const MAXNS: usize = 3;

/// What a resolv.conf tells a program's resolver: its nameservers in order, each with its line
/// (line 0: none is named, the resolver's default 127.0.0.1), and the `timeout:`/`attempts:`
/// options (defaults 5 s and 2, capped at 30 s and 5 as glibc does).
#[derive(Debug, Clone, PartialEq)]
pub struct ResolverConf {
    pub nameservers: Vec<(u32, IpAddr)>,
    pub timeout: Duration,
    pub attempts: u32,
}

impl ResolverConf {
    pub fn parse(text: &str) -> ResolverConf {
        let mut rc = ResolverConf {
            nameservers: Vec::new(),
            timeout: Duration::from_secs(5),
            attempts: 2,
        };
        for (i, line) in text.lines().enumerate() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut parts = line.split_whitespace();
            match parts.next() {
                Some("nameserver") => {
                    let ip = parts.next().and_then(|p| p.split('%').next()?.parse().ok());
                    if let (Some(ip), true) = (ip, rc.nameservers.len() < MAXNS) {
                        rc.nameservers.push((i as u32 + 1, ip));
                    }
                }
                Some("options") => {
                    for opt in parts {
                        if let Some(v) = opt.strip_prefix("timeout:") {
                            if let Ok(v) = v.parse::<u64>() {
                                rc.timeout = Duration::from_secs(v.clamp(1, 30));
                            }
                        } else if let Some(v) = opt.strip_prefix("attempts:") {
                            if let Ok(v) = v.parse::<u32>() {
                                rc.attempts = v.clamp(1, 5);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        if rc.nameservers.is_empty() {
            rc.nameservers.push((0, IpAddr::from([127, 0, 0, 1])));
        }
        rc
    }
}

/// How a nameserver the tool did not ask is described (its answer is unknown).
const NOT_ASKED: &str = "was not asked";

/// One nameserver a program's resolver asks, and what came of it (`Err`: why no answer).
#[derive(Debug, Clone, PartialEq)]
pub struct Asked {
    pub line: u32,
    pub nameserver: SocketAddr,
    pub result: Result<DnsAnswer, String>,
}

/// Ask the vantage's resolv.conf nameservers in order, as a program there would: each gets
/// `timeout` × `attempts`, the whole walk is capped by the step's timeout; the step's own server
/// (already asked) is not asked again; a nameserver outside the run's scope is not asked. Stops
/// at the first answer other than SERVFAIL/REFUSED (which make a resolver try the next one).
pub async fn program_view(
    ctx: &ProbeCtx,
    name: &str,
    server: SocketAddr,
    intended: &DnsAnswer,
    rc: &ResolverConf,
) -> Vec<Asked> {
    let deadline = Deadline::after(ctx.timeout);
    let mut asked = Vec::new();
    for &(line, ip) in &rc.nameservers {
        let (nameserver, result) = if ip == server.ip() {
            (server, Ok(intended.clone()))
        } else {
            let ns = SocketAddr::new(ip, 53);
            let left = deadline
                .at
                .saturating_duration_since(tokio::time::Instant::now());
            let allowed = ctx.scope.as_ref().is_some_and(|s| s.allows(ip));
            let r = if !allowed {
                Err(format!(
                    "{NOT_ASKED}: it is outside the run's scope (--scope)"
                ))
            } else if left.is_zero() {
                Err(format!("{NOT_ASKED}: the step's timeout ran out"))
            } else {
                let budget = (rc.timeout * rc.attempts).min(left);
                query(name, ns, budget)
                    .await
                    .map_err(|f| format!("does not answer: {}", f.detail))
            };
            (ns, r)
        };
        let last = matches!(&result, Ok(a) if a.rcode != "SERVFAIL" && a.rcode != "REFUSED");
        asked.push(Asked {
            line,
            nameserver,
            result,
        });
        if last {
            break;
        }
    }
    asked
}

fn named_at(file: &str, a: &Asked) -> String {
    if a.line == 0 {
        format!("{file} names no nameserver, so the resolver asks 127.0.0.1")
    } else {
        format!("{file}:{} names nameserver {}", a.line, a.nameserver.ip())
    }
}

/// What a program at the vantage gets, judged.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgramJudged {
    /// The effective answer is set; nothing to report.
    Fine,
    /// A nameserver before any answer was not asked (the run's scope, the step's time): what a
    /// program there gets is unknown, and no effective answer is claimed.
    Unknown(String),
    /// A divergence: the reason and the message.
    Diverged(&'static str, String),
}

fn not_asked(a: &Asked) -> bool {
    matches!(&a.result, Err(e) if e.starts_with(NOT_ASKED))
}

/// Judge what a program at the vantage gets: sets the effective answer (or clears it when it is
/// unknown), and diverges when its resolver gets no answer (`resolver-no-answer`) or asked a
/// nameserver other than the intended one (`resolver-differs`).
pub fn judge_program_view(
    ev: &mut DnsEvidence,
    asked: &[Asked],
    file: &str,
    name: &str,
    server: SocketAddr,
    expect: &[IpAddr],
) -> ProgramJudged {
    let answered = asked.iter().position(
        |a| matches!(&a.result, Ok(ans) if ans.rcode != "SERVFAIL" && ans.rcode != "REFUSED"),
    );
    let before = &asked[..answered.unwrap_or(asked.len())];
    if let Some(a) = before.iter().find(|a| not_asked(a)) {
        ev.effective.clear();
        ev.effective_source.clear();
        let e = a.result.as_ref().err().map(String::as_str).unwrap_or("");
        return ProgramJudged::Unknown(format!(
            "what a program here gets is unknown: {}; {} {e}",
            named_at(file, a),
            a.nameserver
        ));
    }
    let Some(i) = answered else {
        let why: Vec<String> = asked
            .iter()
            .map(|a| match &a.result {
                Ok(ans) => format!("{} answers {}", named_at(file, a), ans.rcode),
                Err(e) => format!("{}; {} {e}", named_at(file, a), a.nameserver),
            })
            .collect();
        ev.effective.clear();
        ev.effective_source.clear();
        return ProgramJudged::Diverged(
            "resolver-no-answer",
            format!(
                "a program at this vantage gets no answer for {name}: {}; the intended nameserver {server} answers {}",
                why.join("; "),
                list(&ev.answers)
            ),
        );
    };
    let (from, ans) = match &asked[i].result {
        Ok(ans) => (&asked[i], ans),
        Err(_) => unreachable!("the answered position holds an answer"),
    };
    ev.effective = ans.answers.clone();
    ev.effective_source = if from.nameserver == server {
        "dns".into()
    } else {
        format!("dns via {}", from.nameserver)
    };
    let Some(first) = asked
        .iter()
        .find(|a| a.nameserver.ip() != server.ip() && !not_asked(a))
    else {
        return ProgramJudged::Fine;
    };
    let gets = if ans.answers.is_empty() {
        ans.rcode.clone()
    } else {
        list(&ans.answers)
    };
    let mut msg = format!(
        "{}, not the intended {} (the vantage's nameserver the config derives); a program there gets {gets} from {}",
        named_at(file, first),
        server.ip(),
        from.nameserver
    );
    if let Err(e) = &first.result {
        msg.push_str(&format!("; {} {e}", first.nameserver));
    }
    if !expect.is_empty() && set(&ans.answers) != set(expect) {
        msg.push_str(&format!(", expected {}", list(expect)));
    }
    ProgramJudged::Diverged("resolver-differs", msg)
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
    let mut resolver: Option<ResolverConf> = None;
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
            Ok(text) => {
                ev.resolv_conf = Some(parse_resolv_conf(rf, &text));
                resolver = Some(ResolverConf::parse(&text));
            }
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
    let mut suffix = if notes.is_empty() {
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
    let mut o = observation(Outcome::Ok, Evidence::Dns(ev.clone()), timings);
    if ans.rcode != "NOERROR" {
        let reason = classify::dns_rcode(&ans.rcode);
        let msg = format!("{name} @{server}: {}{suffix}", ans.rcode);
        return fail(o, Outcome::Failed, "answer", &reason, msg);
    }
    if ans.answers.is_empty() {
        let msg = format!("{name} @{server}: NOERROR with no A record (NODATA){suffix}");
        return fail(o, Outcome::Failed, "answer", "nodata", msg);
    }
    if let (Some(rc), true) = (&resolver, hosts_ips.is_empty()) {
        let file = ev
            .resolv_conf
            .as_ref()
            .map(|r| r.file.clone())
            .unwrap_or_default();
        let asked = program_view(ctx, name, server, &ans, rc).await;
        let total = ms(t);
        o.timings.total_ms = total;
        o.timings.resolve_ms = Some(total);
        let verdict = judge_program_view(&mut ev, &asked, &file, name, server, expect);
        o.evidence = Evidence::Dns(ev.clone());
        match verdict {
            ProgramJudged::Fine => {}
            ProgramJudged::Unknown(note) => suffix.push_str(&format!(" ({note})")),
            ProgramJudged::Diverged(reason, msg) => {
                let msg = format!("{msg}{suffix}");
                return fail(o, Outcome::Failed, "effective", reason, msg);
            }
        }
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn noerror(a: &str) -> DnsAnswer {
        DnsAnswer {
            protocol: "udp".into(),
            rcode: "NOERROR".into(),
            answers: vec![ip(a)],
            ..DnsAnswer::default()
        }
    }

    #[test]
    fn resolver_conf_keeps_order_lines_options_and_glibc_limits() {
        let rc = ResolverConf::parse(
            "search x\nnameserver 198.18.0.99\n# nameserver 1.1.1.1\nnameserver 198.18.0.13 ; c\noptions timeout:1 attempts:9 ndots:2\nnameserver 198.18.0.3\nnameserver 198.18.0.4\n",
        );
        assert_eq!(
            rc.nameservers,
            vec![
                (2, ip("198.18.0.99")),
                (4, ip("198.18.0.13")),
                (6, ip("198.18.0.3"))
            ]
        );
        assert_eq!(rc.timeout, Duration::from_secs(1));
        assert_eq!(rc.attempts, 5);
        let none = ResolverConf::parse("search x\n");
        assert_eq!(none.nameservers, vec![(0, ip("127.0.0.1"))]);
        assert_eq!((none.timeout, none.attempts), (Duration::from_secs(5), 2));
    }

    #[test]
    fn a_dead_nameserver_is_no_answer_and_a_foreign_one_differs() {
        let server: SocketAddr = "198.18.0.13:53".parse().unwrap();
        let dead = Asked {
            line: 2,
            nameserver: "198.18.0.99:53".parse().unwrap(),
            result: Err("does not answer: no answer over UDP".into()),
        };
        let mut ev = DnsEvidence {
            answers: vec![ip("198.18.0.153")],
            effective: vec![ip("198.18.0.153")],
            effective_source: "dns".into(),
            ..DnsEvidence::default()
        };
        let j = judge_program_view(
            &mut ev,
            std::slice::from_ref(&dead),
            "/r",
            "q.x",
            server,
            &[],
        );
        let ProgramJudged::Diverged(reason, msg) = j else {
            panic!("{j:?}")
        };
        assert_eq!(reason, "resolver-no-answer");
        assert!(
            msg.contains("/r:2 names nameserver 198.18.0.99; 198.18.0.99:53 does not answer"),
            "{msg}"
        );
        assert!(ev.effective.is_empty(), "no effective answer is claimed");
        // the dead one first, then the intended one: the program gets the intended answer late,
        // from a resolv.conf that names a nameserver the config does not
        let intended = Asked {
            line: 3,
            nameserver: server,
            result: Ok(noerror("198.18.0.153")),
        };
        let j = judge_program_view(&mut ev, &[dead, intended.clone()], "/r", "q.x", server, &[]);
        assert!(
            matches!(j, ProgramJudged::Diverged("resolver-differs", _)),
            "{j:?}"
        );
        assert_eq!(ev.effective, vec![ip("198.18.0.153")]);
        // only the intended nameserver: fine, and the effective answer is its answer
        let j = judge_program_view(&mut ev, &[intended], "/r", "q.x", server, &[]);
        assert_eq!(j, ProgramJudged::Fine);
        assert_eq!(ev.effective_source, "dns");
        // a nameserver the tool may not ask: unknown, never healthy-by-assumption nor diverged
        let skipped = Asked {
            line: 1,
            nameserver: "10.9.9.9:53".parse().unwrap(),
            result: Err(format!("{NOT_ASKED}: outside")),
        };
        let j = judge_program_view(&mut ev, &[skipped], "/r", "q.x", server, &[]);
        assert!(matches!(j, ProgramJudged::Unknown(_)), "{j:?}");
        assert!(ev.effective.is_empty());
    }
}
