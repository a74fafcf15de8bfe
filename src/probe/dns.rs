//! The DNS probe: one A query sent straight to the named server (UDP, TCP retry on truncation,
//! explicit attempts, no cache, never the system resolver), plus the vantage's own view: its
//! hosts-file lines for the name, its resolv.conf, and the effective answer (hosts, then DNS).

use super::classify;
use super::resolver::{program_view, VantageResolver};
use super::{fail, ms, observation, Deadline, ProbeCtx};
use crate::observe::{
    DnsEvidence, DnsTransport, EffectiveSource, Evidence, HostsEntry, Observation, Outcome, Phase,
    Rcode, Reason, ResolvConf, Timings,
};
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
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
#[derive(Debug, Clone, PartialEq)]
pub struct DnsAnswer {
    pub protocol: DnsTransport,
    pub rcode: ResponseCode,
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
    pub reason: Reason,
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

fn parse_answer(
    bytes: &[u8],
    protocol: DnsTransport,
    qname: &Name,
) -> Result<(DnsAnswer, bool), String> {
    let m = Message::from_vec(bytes).map_err(|e| format!("undecodable answer: {e}"))?;
    if let Some(why) = not_our_answer(&m, qname) {
        return Err(format!("not an answer to the query: {why}"));
    }
    let rcode = m.metadata.response_code;
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
            protocol,
            rcode,
            answers,
            ttl,
            cnames,
            ignored,
        },
        m.metadata.truncation,
    ))
}

/// A socket error: the tool's own resource exhaustion stays the tool's, not the network's.
fn io_fail(e: &std::io::Error, prefix: &str) -> DnsFail {
    let c = classify::dns_io(e);
    DnsFail {
        reason: c.reason,
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
        reason: Reason::Timeout,
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
            reason: Reason::Timeout,
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
    let invalid = |detail: String| DnsFail {
        reason: Reason::InvalidName,
        detail,
        timed_out: false,
    };
    let qname = check_name(name).map_err(invalid)?;
    let (id, q) = build_query(&qname).map_err(invalid)?;
    let bytes = udp_query(server, &q, id, &qname, deadline).await?;
    let bad = |detail: String| DnsFail {
        reason: Reason::BadResponse,
        detail,
        timed_out: false,
    };
    let (ans, truncated) = parse_answer(&bytes, DnsTransport::Udp, &qname).map_err(bad)?;
    if !truncated {
        return Ok(ans);
    }
    let bytes = tcp_query(server, &q, deadline).await?;
    if bytes.len() < 2 || bytes[..2] != q[..2] {
        return Err(bad(
            "over TCP: an answer with another id than the query".into()
        ));
    }
    let (ans, _) = parse_answer(&bytes, DnsTransport::Tcp, &qname).map_err(bad)?;
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

/// Why a nameserver of the vantage's resolv.conf gave no answer.
#[derive(Debug, Clone, PartialEq)]
pub enum NoAnswer {
    /// The tool did not ask it (the run's scope, the step's time): its answer is unknown.
    NotAsked(&'static str),
    /// It was asked and did not answer.
    Silent(String),
}

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoAnswer::NotAsked(why) => write!(f, "was not asked: {why}"),
            NoAnswer::Silent(detail) => write!(f, "does not answer: {detail}"),
        }
    }
}

/// One nameserver a program's resolver asks, and what came of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Asked {
    pub line: u32,
    pub nameserver: SocketAddr,
    pub result: Result<DnsAnswer, NoAnswer>,
}

impl Asked {
    /// It answered with something a resolver stops at (not SERVFAIL or REFUSED).
    pub(crate) fn is_final(&self) -> bool {
        matches!(&self.result, Ok(a) if !Rcode::from(a.rcode).tries_next_server())
    }

    pub(crate) fn not_asked(&self) -> bool {
        matches!(&self.result, Err(NoAnswer::NotAsked(_)))
    }
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
    Diverged(Reason, String),
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
    let answered = asked.iter().position(Asked::is_final);
    let before = &asked[..answered.unwrap_or(asked.len())];
    if let Some(a) = before.iter().find(|a| a.not_asked()) {
        ev.effective.clear();
        ev.effective_source = EffectiveSource::None;
        let e = a
            .result
            .as_ref()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
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
                Ok(ans) => format!("{} answers {}", named_at(file, a), Rcode::from(ans.rcode)),
                Err(e) => format!("{}; {} {e}", named_at(file, a), a.nameserver),
            })
            .collect();
        ev.effective.clear();
        ev.effective_source = EffectiveSource::None;
        return ProgramJudged::Diverged(
            Reason::ResolverNoAnswer,
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
        EffectiveSource::Dns
    } else {
        EffectiveSource::DnsVia(from.nameserver)
    };
    let Some(first) = asked
        .iter()
        .find(|a| a.nameserver.ip() != server.ip() && !a.not_asked())
    else {
        return ProgramJudged::Fine;
    };
    let gets = if ans.answers.is_empty() {
        Rcode::from(ans.rcode).to_string()
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
    ProgramJudged::Diverged(Reason::ResolverDiffers, msg)
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

/// Read the vantage's hosts file and resolv.conf into `ev`; the resolver they configure
/// (hickory-resolver's, docs/architecture.md), or the finished observation when they could not be read (what a program there
/// resolves is then unknown: the step cannot be judged, whatever the nameserver says).
fn read_vantage_files(
    ctx: &ProbeCtx,
    name: &str,
    ev: &mut DnsEvidence,
    t: Instant,
) -> Result<VantageResolver, Box<Observation>> {
    use crate::fsutil::{read_bounded_string, FileKind, ReadError};
    let mut notes = Vec::new();
    // Running out of descriptors while opening them is the tool's own limit, not the file's.
    let mut exhausted = false;
    let mut exhaustion = |e: &ReadError| {
        exhausted |= matches!(e, ReadError::Io { source, .. }
            if classify::is_resource_exhaustion(source));
    };
    let hf = &ctx.system.hosts_file;
    let mut hosts = String::new();
    match read_bounded_string(hf, FileKind::SystemFile) {
        Ok(text) => {
            ev.hosts_entries = hosts_entries(hf, &text, name);
            hosts = text;
        }
        Err(e) => {
            exhaustion(&e);
            notes.push(format!("hosts file {e}"))
        }
    }
    let rf = &ctx.system.resolv_conf;
    let mut resolver = None;
    match read_bounded_string(rf, FileKind::SystemFile) {
        Ok(text) => {
            ev.resolv_conf = Some(parse_resolv_conf(rf, &text));
            resolver = Some(text);
        }
        Err(e) => {
            exhaustion(&e);
            notes.push(format!("resolv.conf {e}"))
        }
    }
    let resolver = resolver.and_then(|text| {
        VantageResolver::new(&text, &hosts)
            .map_err(|e| {
                notes.push(format!(
                    "resolv.conf {} is not understood: {e}",
                    rf.display()
                ))
            })
            .ok()
    });
    match resolver {
        Some(r) if notes.is_empty() => Ok(r),
        _ => {
            let timings = Timings {
                total_ms: ms(t),
                ..Timings::default()
            };
            let o = observation(Outcome::ToolError, Evidence::Dns(ev.clone()), timings);
            let msg = format!(
                "{name}: cannot judge this vantage's view, its files could not be read: {}",
                notes.join("; ")
            );
            let reason = if exhausted {
                Reason::OutOfResources
            } else {
                Reason::VantageFileUnreadable
            };
            Err(Box::new(fail(
                o,
                Outcome::ToolError,
                Phase::VantageFiles,
                reason,
                msg,
            )))
        }
    }
}

/// One DNS step being judged: its inputs and what was seen so far.
struct DnsStep<'a> {
    name: &'a str,
    server: SocketAddr,
    expect: &'a [IpAddr],
    ev: DnsEvidence,
    /// The addresses the vantage's hosts file gives the name.
    hosts_ips: Vec<IpAddr>,
    /// Notes for the message (records ignored, what a program gets when unknown).
    suffix: String,
}

impl DnsStep<'_> {
    /// No answer from the nameserver (the tool's own invalid name aside).
    fn query_failed(mut self, timings: Timings, f: DnsFail) -> Observation {
        if f.reason == Reason::InvalidName {
            // the input's fault: nothing was sent, nothing is known about the nameserver
            let o = observation(Outcome::ToolError, Evidence::Dns(self.ev), timings);
            return fail(o, Outcome::ToolError, Phase::Query, f.reason, f.detail);
        }
        if !self.hosts_ips.is_empty() {
            self.ev.effective = self.hosts_ips.clone();
            self.ev.effective_source = EffectiveSource::Hosts;
        }
        let outcome = if f.timed_out {
            Outcome::TimedOut
        } else {
            Outcome::Failed
        };
        let o = observation(outcome, Evidence::Dns(self.ev), timings);
        let msg = format!(
            "{} @{}: {}{}",
            self.name, self.server, f.detail, self.suffix
        );
        fail(o, outcome, Phase::Query, f.reason, msg)
    }

    /// The answer, against the hosts file and the expected addresses.
    fn judge_answer(self, mut o: Observation, ans: &DnsAnswer) -> Observation {
        let (name, server, expect, suffix) = (self.name, self.server, self.expect, &self.suffix);
        let overridden = !self.hosts_ips.is_empty() && set(&self.hosts_ips) != set(&ans.answers);
        if overridden {
            let h = &self.ev.hosts_entries[0];
            let detail = format!(
                "{}:{} maps {name} to {} but {server} answers {}",
                h.file,
                h.line,
                list(&self.hosts_ips),
                list(&ans.answers)
            );
            if !expect.is_empty() && set(&self.ev.effective) != set(expect) {
                let msg = format!(
                    "{detail}; a program there gets {}, expected {}{suffix}",
                    list(&self.ev.effective),
                    list(expect)
                );
                return fail(
                    o,
                    Outcome::Failed,
                    Phase::Effective,
                    Reason::HostsOverride,
                    msg,
                );
            }
            if !expect.is_empty() && set(&ans.answers) != set(expect) {
                let msg = format!("{detail}; expected {} from DNS{suffix}", list(expect));
                return fail(o, Outcome::Failed, Phase::Answer, Reason::WrongAnswer, msg);
            }
            o.phase = Some(Phase::Effective);
            o.message = format!("{detail} (hosts file wins){suffix}");
            return o;
        }
        let ttl = ans.ttl.map(|t| format!(" ttl {t}")).unwrap_or_default();
        if !expect.is_empty() && set(&ans.answers) != set(expect) {
            let msg = format!(
                "{name} @{server}: A {}{ttl}, expected {}{suffix}",
                list(&ans.answers),
                list(expect)
            );
            return fail(o, Outcome::Failed, Phase::Answer, Reason::WrongAnswer, msg);
        }
        o.phase = Some(Phase::Answer);
        let via = match ans.protocol {
            DnsTransport::Tcp => " (tcp after truncation)",
            DnsTransport::Udp => "",
        };
        o.message = format!(
            "{name} @{server}: A {}{ttl}{via}{suffix}",
            list(&ans.answers)
        );
        o
    }
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
    let resolver = if system {
        match read_vantage_files(ctx, name, &mut ev, t) {
            Ok(r) => Some(r),
            Err(o) => return *o,
        }
    } else {
        None
    };
    let result = query(name, server, ctx.timeout).await;
    let mut notes = Vec::new();
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
    let mut step = DnsStep {
        name,
        server,
        expect,
        hosts_ips: ev.hosts_entries.iter().map(|h| h.ip).collect(),
        ev,
        suffix: if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        },
    };
    let ans = match result {
        Ok(a) => a,
        Err(f) => return step.query_failed(timings, f),
    };
    let rcode = Rcode::from(ans.rcode);
    step.ev.protocol = Some(ans.protocol);
    step.ev.rcode = Some(rcode);
    step.ev.answers = ans.answers.clone();
    step.ev.ttl = ans.ttl;
    if !step.hosts_ips.is_empty() {
        // what a program gets from the hosts file: hickory's reading of it
        step.ev.effective = resolver
            .as_ref()
            .and_then(|r| r.from_hosts(name))
            .unwrap_or_else(|| step.hosts_ips.clone());
        step.ev.effective_source = EffectiveSource::Hosts;
    } else if !ans.answers.is_empty() {
        step.ev.effective = ans.answers.clone();
        step.ev.effective_source = EffectiveSource::Dns;
    }
    let mut o = observation(Outcome::Ok, Evidence::Dns(step.ev.clone()), timings);
    let suffix = &step.suffix;
    if rcode != Rcode::NoError {
        let msg = format!("{name} @{server}: {rcode}{suffix}");
        return fail(
            o,
            Outcome::Failed,
            Phase::Answer,
            Reason::from_rcode(rcode),
            msg,
        );
    }
    if ans.answers.is_empty() {
        let msg = format!("{name} @{server}: NOERROR with no A record (NODATA){suffix}");
        return fail(o, Outcome::Failed, Phase::Answer, Reason::NoData, msg);
    }
    if let (Some(rc), true) = (&resolver, step.hosts_ips.is_empty()) {
        let file = step
            .ev
            .resolv_conf
            .as_ref()
            .map(|r| r.file.clone())
            .unwrap_or_default();
        let asked = program_view(ctx, name, server, &ans, rc).await;
        let total = ms(t);
        o.timings.total_ms = total;
        o.timings.resolve_ms = Some(total);
        let verdict = judge_program_view(&mut step.ev, &asked, &file, name, server, expect);
        o.evidence = Evidence::Dns(step.ev.clone());
        match verdict {
            ProgramJudged::Fine => {}
            ProgramJudged::Unknown(note) => step.suffix.push_str(&format!(" ({note})")),
            ProgramJudged::Diverged(reason, msg) => {
                let msg = format!("{msg}{}", step.suffix);
                return fail(o, Outcome::Failed, Phase::Effective, reason, msg);
            }
        }
    }
    step.judge_answer(o, &ans)
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
        let (a, trunc) = parse_answer(&m.to_vec().unwrap(), DnsTransport::Udp, &qname).unwrap();
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        assert!(!trunc);
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn noerror(a: &str) -> DnsAnswer {
        DnsAnswer {
            protocol: DnsTransport::Udp,
            rcode: ResponseCode::NoError,
            answers: vec![ip(a)],
            ttl: None,
            cnames: vec![],
            ignored: vec![],
        }
    }

    #[test]
    fn a_dead_nameserver_is_no_answer_and_a_foreign_one_differs() {
        let server: SocketAddr = "198.18.0.13:53".parse().unwrap();
        let dead = Asked {
            line: 2,
            nameserver: "198.18.0.99:53".parse().unwrap(),
            result: Err(NoAnswer::Silent("no answer over UDP".into())),
        };
        let mut ev = DnsEvidence {
            answers: vec![ip("198.18.0.153")],
            effective: vec![ip("198.18.0.153")],
            effective_source: EffectiveSource::Dns,
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
            matches!(j, ProgramJudged::Diverged(Reason::ResolverDiffers, _)),
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
            result: Err(NoAnswer::NotAsked("outside")),
        };
        let j = judge_program_view(&mut ev, &[skipped], "/r", "q.x", server, &[]);
        assert!(matches!(j, ProgramJudged::Unknown(_)), "{j:?}");
        assert!(ev.effective.is_empty());
    }
}
