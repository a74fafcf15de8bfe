//! `probe dns|tcp|tls|mtls|http`: one probe by hand, printed as text or JSON.

use crate::cli::{Format, GlobalArgs, ProbeCommand, ProbeCommon};
use phoenix_doctor::engine::Scope;
use phoenix_doctor::error::{exit, Error, Result};
use phoenix_doctor::observe::{
    DnsEvidence, Evidence, HttpEvidence, MtlsEvidence, Observation, Outcome, TcpEvidence, Timings,
    TlsEvidence,
};
use phoenix_doctor::plan::{Identity, ProbeSpec, Step, Trust, VantageRef};
use phoenix_doctor::probe::{self, ProbeCtx, SystemFiles};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

fn sock(s: &str, what: &str) -> Result<SocketAddr> {
    s.parse().map_err(|_| {
        Error::input(format!(
            "{what}: expected IP:PORT (e.g. 127.0.0.1:443 or [::1]:443), found `{s}`"
        ))
    })
}

fn dns_server(s: &str) -> Result<SocketAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    s.parse()
        .map_err(|_| Error::input(format!("--server: expected IP or IP:PORT, found `{s}`")))
}

/// The scope of `--scope`; none given = any address.
fn scope_of(cidrs: &[ipnet::IpNet]) -> Option<Scope> {
    (!cidrs.is_empty()).then(|| Scope {
        allowed: cidrs.to_vec(),
    })
}

fn trust(ca: &Option<PathBuf>) -> Trust {
    match ca {
        Some(f) => Trust::Ca { file: f.clone() },
        None => Trust::None,
    }
}

fn identity(cert: &Option<PathBuf>, key: &Option<PathBuf>) -> Option<Identity> {
    match (cert, key) {
        (Some(c), Some(k)) => Some(Identity {
            cert: c.clone(),
            key: k.clone(),
        }),
        _ => None,
    }
}

/// Turn `--resolve NAME:IP` / `NAME:PORT:IP` and the URL into the address to dial.
fn http_connect(url: &str, resolve: &Option<String>) -> Result<SocketAddr> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| Error::input(format!("URL `{url}`: {e}")))?;
    let https = match uri.scheme_str().and_then(|s| s.parse().ok()) {
        Some(phoenix_doctor::observe::Scheme::Https) => true,
        Some(phoenix_doctor::observe::Scheme::Http) => false,
        _ => {
            return Err(Error::input(format!(
                "URL `{url}`: expected http:// or https://"
            )))
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| Error::input(format!("URL `{url}`: no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    if let Some(r) = resolve {
        let bad = || {
            Error::input(format!(
                "--resolve: expected NAME:IP or NAME:PORT:IP, found `{r}`"
            ))
        };
        let (name, rest) = r.split_once(':').ok_or_else(bad)?;
        let (rport, ip) = match rest.split_once(':') {
            Some((p, ip)) if p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => {
                (Some(p.parse::<u16>().map_err(|_| bad())?), ip)
            }
            _ => (None, rest),
        };
        let ip: IpAddr = ip
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| bad())?;
        if !name.eq_ignore_ascii_case(&host) {
            return Err(Error::input(format!(
                "--resolve names `{name}` but the URL's host is `{host}`"
            )));
        }
        return Ok(SocketAddr::new(ip, rport.unwrap_or(port)));
    }
    let ip: IpAddr = host.parse().map_err(|_| {
        Error::input(format!(
            "URL host `{host}` is a name: give --resolve {host}:IP (the system resolver is never used)"
        ))
    })?;
    Ok(SocketAddr::new(ip, port))
}

pub fn probe(g: &GlobalArgs, p: &ProbeCommand) -> Result<u8> {
    let (spec, common, system): (ProbeSpec, &ProbeCommon, SystemFiles) = match p {
        ProbeCommand::Dns(a) => {
            probe::dns::check_name(&a.name).map_err(Error::input)?;
            let mut expect = Vec::new();
            for e in &a.expect {
                expect.push(e.parse::<IpAddr>().map_err(|_| {
                    Error::input(format!("--expect: expected an IP address, found `{e}`"))
                })?);
            }
            (
                ProbeSpec::Dns {
                    name: a.name.clone(),
                    server: dns_server(&a.server)?,
                    expect,
                    system: true,
                },
                &a.common,
                SystemFiles {
                    hosts_file: a.hosts_file.clone(),
                    resolv_conf: a.resolv_conf.clone(),
                },
            )
        }
        ProbeCommand::Tcp(a) => (
            ProbeSpec::Tcp {
                addr: sock(&a.addr, "address")?,
            },
            &a.common,
            SystemFiles::default(),
        ),
        ProbeCommand::Tls(a) => (
            ProbeSpec::Tls {
                addr: sock(&a.addr, "address")?,
                sni: a.sni.clone(),
                trust: trust(&a.ca),
            },
            &a.common,
            SystemFiles::default(),
        ),
        ProbeCommand::Mtls(a) => (
            ProbeSpec::Mtls {
                addr: sock(&a.addr, "address")?,
                sni: a.sni.clone(),
                trust: trust(&a.ca),
                identity: identity(&a.cert, &a.key),
                require: true,
            },
            &a.common,
            SystemFiles::default(),
        ),
        ProbeCommand::Http(a) => (
            ProbeSpec::Http {
                url: a.url.clone(),
                connect: http_connect(&a.url, &a.resolve)?,
                trust: a.ca.as_ref().map(|f| Trust::Ca { file: f.clone() }),
                identity: identity(&a.cert, &a.key),
                expect_status: a.expect_status.clone(),
                expect_body: a.expect_body.clone(),
            },
            &a.common,
            SystemFiles::default(),
        ),
    };
    let timeout = common.timeout;
    let scope = scope_of(&common.scope);
    let layer = spec.layer();
    let step = Step {
        id: format!("probe.{layer}"),
        hop: "probe".into(),
        from: VantageRef::Host,
        to: spec.target_addr().to_string(),
        layer,
        probe: spec,
        expect: String::new(),
        provenance: Vec::new(),
        depends_on: Vec::new(),
        through: Vec::new(),
    };
    let ctx = ProbeCtx {
        timeout,
        system,
        scope: scope.clone(),
        ..ProbeCtx::default()
    };
    let obs = match &scope {
        Some(s) if !s.allows(step.probe.target_addr().ip()) => {
            phoenix_doctor::engine::out_of_scope(&step, s)
        }
        _ => {
            let rt = super::runtime()?;
            let mut o = rt.block_on(probe::run(&ctx, &step));
            probe::apply_floor(&mut o, layer, timeout);
            o
        }
    };
    let mut out = super::stdout();
    let written = match g.format {
        Format::Json => super::versioned_json(&obs).and_then(|s| {
            out.write_all(s.as_bytes())
                .map_err(|e| Error::tool(format!("writing JSON: {e}")))
        }),
        _ => {
            // A peer's answer (banner, body, certificate names) reaches the terminal escaped.
            let mut text = Vec::new();
            write_text(&mut text, &obs).map_err(|e| Error::tool(format!("writing output: {e}")))?;
            drop(out);
            super::print_stdout(&String::from_utf8_lossy(&text), Format::Table, false)
        }
    };
    written?;
    Ok(exit_code(&obs))
}

/// The exit code for one observation.
pub fn exit_code(o: &Observation) -> u8 {
    match o.outcome {
        Outcome::Ok => exit::HEALTHY,
        Outcome::TimedOut if probe::is_tool_limit(o.reason) => exit::CANNOT_JUDGE,
        Outcome::Failed | Outcome::TimedOut | Outcome::Blocked => exit::DIVERGED,
        Outcome::OutOfScope => exit::USAGE,
        Outcome::ToolError => exit::CANNOT_JUDGE,
    }
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "OK",
        Outcome::Failed => "FAILED",
        Outcome::TimedOut => "TIMED OUT",
        Outcome::Blocked => "BLOCKED",
        Outcome::OutOfScope => "OUT OF SCOPE",
        Outcome::ToolError => "TOOL ERROR",
    }
}

fn row(w: &mut dyn Write, k: &str, v: impl std::fmt::Display) -> std::io::Result<()> {
    writeln!(w, "  {k:<14} {v}")
}

fn write_tls(w: &mut dyn Write, t: &TlsEvidence) -> std::io::Result<()> {
    if !t.protocol.is_empty() {
        row(w, "protocol", format!("{} {}", t.protocol, t.cipher))?;
    }
    if let Some(a) = &t.alpn {
        row(w, "alpn", a)?;
    }
    for (i, c) in t.chain.iter().enumerate() {
        row(w, &format!("cert[{i}]"), &c.subject)?;
        row(w, "  issuer", &c.issuer)?;
        let mut sans: Vec<String> = c.dns_sans.clone();
        sans.extend(c.ip_sans.iter().map(|i| i.to_string()));
        if !sans.is_empty() {
            row(w, "  sans", sans.join(", "))?;
        }
        row(w, "  valid", format!("{} .. {}", c.not_before, c.not_after))?;
        row(
            w,
            "  key",
            format!("{}{}", c.key_type, if c.is_ca { ", CA" } else { "" }),
        )?;
        row(w, "  serial", &c.serial)?;
        row(w, "  sha256", &c.sha256)?;
    }
    if let (Some(s), Some(f)) = (t.remaining_secs, t.remaining_fraction) {
        row(
            w,
            "remaining",
            format!(
                "{} ({:.0}% of its life)",
                phoenix_doctor::observe::remaining_life(s),
                f * 100.0
            ),
        )?;
    }
    let v = match &t.verify_error {
        Some(e) => format!("no: {e} ({})", t.verify_detail),
        None if t.verified => "yes".into(),
        None => "not checked".into(),
    };
    row(w, "verified", v)
}

/// The readable form of one observation.
pub fn write_text(w: &mut dyn Write, o: &Observation) -> std::io::Result<()> {
    writeln!(
        w,
        "{}  {}{}",
        outcome_word(o.outcome),
        o.message,
        o.reason
            .as_ref()
            .map(|r| format!("  [{r}]"))
            .unwrap_or_default()
    )?;
    match &o.evidence {
        Evidence::None => {}
        Evidence::Dns(d) => write_dns(w, d)?,
        Evidence::Tcp(t) => write_tcp(w, t)?,
        Evidence::Tls(t) => write_tls(w, t)?,
        Evidence::Mtls(m) => write_mtls(w, m)?,
        Evidence::Http(h) => write_http(w, h)?,
    }
    write_timings(w, &o.timings)
}

/// DNS evidence: the server, the answer, and the vantage's own view (hosts file, resolv.conf).
fn write_dns(w: &mut dyn Write, d: &DnsEvidence) -> std::io::Result<()> {
    row(
        w,
        "server",
        format!(
            "{} ({})",
            d.server,
            d.protocol.map(|p| p.as_str()).unwrap_or("-")
        ),
    )?;
    row(
        w,
        "rcode",
        d.rcode
            .map(|r| r.to_string())
            .unwrap_or_else(|| "(no answer)".into()),
    )?;
    let a: Vec<String> = d.answers.iter().map(|i| i.to_string()).collect();
    row(
        w,
        "answers",
        if a.is_empty() {
            "-".into()
        } else {
            a.join(", ")
        },
    )?;
    if let Some(t) = d.ttl {
        row(w, "ttl", t)?;
    }
    for h in &d.hosts_entries {
        row(
            w,
            "hosts entry",
            format!("{}:{} {} {}", h.file, h.line, h.ip, h.names.join(" ")),
        )?;
    }
    if let Some(rc) = &d.resolv_conf {
        let ns: Vec<String> = rc.nameservers.iter().map(|i| i.to_string()).collect();
        row(
            w,
            "resolv.conf",
            format!(
                "{}: nameservers {} search {}",
                rc.file,
                ns.join(", "),
                rc.search.join(" ")
            ),
        )?;
    }
    let e: Vec<String> = d.effective.iter().map(|i| i.to_string()).collect();
    row(
        w,
        "effective",
        if e.is_empty() {
            "-".into()
        } else {
            format!("{} (from {})", e.join(", "), d.effective_source)
        },
    )?;
    Ok(())
}

fn write_tcp(w: &mut dyn Write, t: &TcpEvidence) -> std::io::Result<()> {
    row(w, "addr", &t.addr)?;
    row(w, "state", t.state)?;
    if let Some(e) = &t.os_error {
        row(w, "os error", e)?;
    }
    Ok(())
}

fn write_mtls(w: &mut dyn Write, m: &MtlsEvidence) -> std::io::Result<()> {
    write_tls(w, &m.tls)?;
    row(w, "requested", m.requested)?;
    for h in &m.ca_hints {
        row(w, "ca hint", h)?;
    }
    row(
        w,
        "without cert",
        m.without_cert
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default(),
    )?;
    if let Some(c) = &m.with_cert {
        row(w, "with cert", c)?;
    }
    row(w, "verdict", m.verdict)?;
    Ok(())
}

fn write_http(w: &mut dyn Write, h: &HttpEvidence) -> std::io::Result<()> {
    row(w, "url", &h.url)?;
    row(w, "connect", &h.connect)?;
    if let Some(t) = &h.tls {
        write_tls(w, t)?;
    }
    if let Some(s) = h.status {
        row(w, "status", s)?;
    }
    if let Some(s) = &h.server {
        row(w, "server", s)?;
    }
    if let Some(m) = &h.proxy_meaning {
        row(w, "proxy meaning", m)?;
    }
    let start: String = h.body.chars().take(200).collect();
    if !start.is_empty() {
        row(w, "body", format!("{:?}", start))?;
    }
    Ok(())
}

/// The per-phase timings that were measured, and the total.
fn write_timings(w: &mut dyn Write, t: &Timings) -> std::io::Result<()> {
    let mut parts = Vec::new();
    for (k, v) in [
        ("resolve", t.resolve_ms),
        ("connect", t.connect_ms),
        ("tls", t.tls_ms),
        ("first byte", t.first_byte_ms),
    ] {
        if let Some(v) = v {
            parts.push(format!("{k} {v:.1} ms"));
        }
    }
    parts.push(format!("total {:.1} ms", t.total_ms));
    row(w, "timings", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_flag_gives_the_dial_address() {
        let a = http_connect(
            "https://q.example.test/x",
            &Some("q.example.test:127.0.0.5".into()),
        )
        .unwrap();
        assert_eq!(a, "127.0.0.5:443".parse().unwrap());
        let a = http_connect(
            "http://q.example.test:8080/",
            &Some("q.example.test:8080:127.0.0.5".into()),
        )
        .unwrap();
        assert_eq!(a, "127.0.0.5:8080".parse().unwrap());
        assert!(http_connect("https://q.example.test/", &None).is_err());
        assert!(http_connect("https://q.example.test/", &Some("other:127.0.0.1".into())).is_err());
        assert_eq!(
            http_connect("http://127.0.0.9/", &None).unwrap(),
            "127.0.0.9:80".parse().unwrap()
        );
    }

    #[test]
    fn scope_parses() {
        assert!(scope_of(&[]).is_none());
        let net = crate::cli::parse_cidr("127.0.0.0/8").unwrap();
        let s = scope_of(&[net]).unwrap();
        assert!(s.allows("127.1.2.3".parse().unwrap()));
        assert!(!s.allows("128.0.0.1".parse().unwrap()));
        assert!(crate::cli::parse_cidr("nope").is_err());
        let one = crate::cli::parse_cidr("127.0.0.5").unwrap();
        assert_eq!(one.to_string(), "127.0.0.5/32");
    }
}
