//! The HTTP probe: hyper's HTTP/1 client over the probe's own TCP (and TLS) connection, with
//! per-phase timings, bounded body reads, status/body expectations, and the meaning of proxy
//! answers (Traefik and NGINX error shapes).

use super::tls::{self, apply_trust, load_identity};
use super::{fail, ms, observation, tcp, Deadline, ProbeCtx};
use crate::observe::{
    Evidence, HttpEvidence, Observation, Outcome, Phase, ProxyMeaning, Reason, Timings,
};
use crate::plan::{Identity, Trust};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::Response;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};

/// One HTTP step's inputs.
#[derive(Debug, Clone)]
pub struct HttpRequest<'a> {
    pub url: &'a str,
    pub connect: SocketAddr,
    pub trust: Option<&'a Trust>,
    pub identity: Option<&'a Identity>,
    /// Acceptable statuses (empty = any 2xx).
    pub expect_status: &'a [u16],
    pub expect_body: Option<&'a str>,
}

/// What a proxy's answer means, when it looks like one: `no-router` (Traefik's
/// `404 page not found`), `backend-refused` (502), `backend-timeout` (504), `backend-tls`
/// (Traefik's bare 500 when backend TLS verification fails), `no-backend` (503).
pub fn proxy_meaning(status: u16, server: Option<&str>, body: &str) -> Option<ProxyMeaning> {
    let b = body.trim();
    let nginx = server.is_some_and(|s| s.to_ascii_lowercase().starts_with("nginx"));
    match status {
        404 if b == TRAEFIK_NO_ROUTER => Some(ProxyMeaning::NoRouter),
        502 => Some(ProxyMeaning::BackendRefused),
        504 => Some(ProxyMeaning::BackendTimeout),
        500 if !nginx && server.is_none() && b == "Internal Server Error" => {
            Some(ProxyMeaning::BackendTls)
        }
        503 if nginx || b == "Service Unavailable" || b == "no available server" => {
            Some(ProxyMeaning::NoBackend)
        }
        _ => None,
    }
}

/// The body of Traefik's answer when no router matches the Host.
pub const TRAEFIK_NO_ROUTER: &str = "404 page not found";

struct Exchange {
    status: u16,
    server: Option<String>,
    body: String,
    first_byte_ms: f64,
}

enum ExchangeFail {
    /// No response head by the deadline.
    Timeout(Phase),
    Error(Phase, String),
    /// The head came, the body did not end by the deadline (stalled or trickling) or broke off.
    Body {
        status: u16,
        server: Option<String>,
        first_byte_ms: f64,
        got: usize,
        timed_out: bool,
        detail: String,
    },
}

/// Request, response head and body, all by `deadline` (the same one as connect and TLS).
async fn exchange<S>(
    io: S,
    host_header: &str,
    path: &str,
    body_limit: usize,
    deadline: Deadline,
) -> Result<Exchange, ExchangeFail>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let hs = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(io));
    let (mut sender, conn) = match tokio::time::timeout_at(deadline.at, hs).await {
        Err(_) => return Err(ExchangeFail::Timeout(Phase::Request)),
        Ok(r) => r.map_err(|e| ExchangeFail::Error(Phase::Request, e.to_string()))?,
    };
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = hyper::Request::builder()
        .method("GET")
        .uri(path)
        .header(hyper::header::HOST, host_header)
        .header(hyper::header::USER_AGENT, "phoenix-doctor")
        .header(hyper::header::ACCEPT, "*/*")
        .body(Empty::<Bytes>::new())
        .map_err(|e| ExchangeFail::Error(Phase::Request, e.to_string()))?;
    let t = Instant::now();
    let resp: Response<Incoming> =
        match tokio::time::timeout_at(deadline.at, sender.send_request(req)).await {
            Err(_) => {
                driver.abort();
                return Err(ExchangeFail::Timeout(Phase::FirstByte));
            }
            Ok(Err(e)) => {
                driver.abort();
                return Err(ExchangeFail::Error(Phase::Response, e.to_string()));
            }
            Ok(Ok(r)) => r,
        };
    let first_byte_ms = ms(t);
    let status = resp.status().as_u16();
    let server = resp
        .headers()
        .get(hyper::header::SERVER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    // Read until the body ends or `body_limit` bytes are in: the verdict is taken on that prefix.
    let read = async {
        while buf.len() < body_limit {
            match body.frame().await {
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        buf.extend_from_slice(&d);
                    }
                }
                Some(Err(e)) => return Err(e.to_string()),
                None => break,
            }
        }
        Ok(())
    };
    let read = tokio::time::timeout_at(deadline.at, read).await;
    driver.abort();
    let body_fail = |timed_out: bool, detail: String| ExchangeFail::Body {
        status,
        server: server.clone(),
        first_byte_ms,
        got: buf.len(),
        timed_out,
        detail,
    };
    match read {
        Err(_) => {
            return Err(body_fail(
                true,
                format!(
                    "the body did not end within {} ms (stalled or trickling)",
                    deadline.ms()
                ),
            ))
        }
        Ok(Err(e)) => return Err(body_fail(false, format!("the body broke off: {e}"))),
        Ok(Ok(())) => {}
    }
    buf.truncate(body_limit);
    Ok(Exchange {
        status,
        server,
        body: String::from_utf8_lossy(&buf).into_owned(),
        first_byte_ms,
    })
}

/// The parts of a step's URL a request needs.
struct Target {
    https: bool,
    /// The host to verify (brackets of an IPv6 literal removed).
    host: String,
    /// The `Host` header (with the port when the URL names one).
    host_header: String,
    path: String,
}

/// Read the step's URL; `Err` is the tool's own failure (an invalid URL in the plan).
fn target(url: &str) -> Result<Target, String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("invalid URL `{url}`: {e}"))?;
    let https = match uri.scheme_str().and_then(|s| s.parse().ok()) {
        Some(crate::observe::Scheme::Https) => true,
        Some(crate::observe::Scheme::Http) => false,
        _ => return Err(format!("invalid URL `{url}`: expected http:// or https://")),
    };
    let raw_host = uri
        .host()
        .ok_or_else(|| format!("invalid URL `{url}`: no host"))?;
    let host_header = match uri.port_u16() {
        Some(p) => format!("{raw_host}:{p}"),
        None => raw_host.to_string(),
    };
    Ok(Target {
        https,
        host: raw_host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        host_header,
        path: uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into()),
    })
}

/// What stopped a request before it was sent: the finished observation.
type Stopped = Box<Observation>;

/// Connect, shake hands and verify; the TLS evidence goes into `ev` either way.
async fn connect_tls(
    r: &HttpRequest<'_>,
    to: &Target,
    deadline: Deadline,
    ev: &mut HttpEvidence,
    timings: &mut Timings,
    warn_days: u32,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, Stopped> {
    let t = Instant::now();
    let key = r.identity.map(load_identity).transpose().map_err(|e| {
        Box::new(Observation::tool_error(
            "",
            Phase::Request,
            format!("client identity: {e}"),
        ))
    })?;
    let hs = tls::handshake(r.connect, &to.host, key, &[b"http/1.1"], deadline).await;
    timings.connect_ms = hs.connect_ms;
    timings.tls_ms = hs.tls_ms;
    let mut tev = hs.evidence(r.connect, &to.host, warn_days);
    let stream = match hs.result {
        Ok(s) => s,
        Err(f) => {
            ev.tls = Some(tev);
            timings.total_ms = ms(t);
            let o = observation(f.outcome(), Evidence::Http(ev.clone()), timings.clone());
            let msg = format!("{}: {}", r.url, f.class.detail);
            return Err(Box::new(fail(o, f.outcome(), f.phase, f.class.reason, msg)));
        }
    };
    if let Some(trust) = r.trust {
        if let Err(e) = apply_trust(&mut tev, &hs.chain, &to.host, trust) {
            return Err(Box::new(Observation::tool_error("", Phase::Verify, e)));
        }
    }
    let verify_error = tev.verify_error;
    let detail = tev.verify_detail.clone();
    ev.tls = Some(tev);
    if let Some(e) = verify_error {
        timings.total_ms = ms(t);
        let o = observation(Outcome::Failed, Evidence::Http(ev.clone()), timings.clone());
        let msg = format!("{}: {detail}", r.url);
        return Err(Box::new(fail(
            o,
            Outcome::Failed,
            Phase::Verify,
            Reason::Verify(e),
            msg,
        )));
    }
    Ok(stream)
}

/// The observation of an exchange that gave no complete answer.
fn exchange_failed(
    r: &HttpRequest<'_>,
    ctx: &ProbeCtx,
    mut ev: HttpEvidence,
    mut timings: Timings,
    f: ExchangeFail,
) -> Observation {
    match f {
        ExchangeFail::Timeout(phase) => {
            let o = observation(Outcome::TimedOut, Evidence::Http(ev), timings);
            let msg = format!(
                "{}: no response within {} ms",
                r.url,
                ctx.timeout.as_millis()
            );
            fail(o, Outcome::TimedOut, phase, Reason::Timeout, msg)
        }
        ExchangeFail::Body {
            status,
            server,
            first_byte_ms,
            got,
            timed_out,
            detail,
        } => {
            timings.first_byte_ms = Some(first_byte_ms);
            ev.status = Some(status);
            ev.server = server;
            let (outcome, reason) = if timed_out {
                (Outcome::TimedOut, Reason::Timeout)
            } else {
                (Outcome::Failed, Reason::HttpError)
            };
            let o = observation(outcome, Evidence::Http(ev), timings);
            let msg = format!(
                "{}: status {status}, but {detail} ({got} bytes read)",
                r.url
            );
            fail(o, outcome, Phase::Body, reason, msg)
        }
        ExchangeFail::Error(phase, e) => {
            let o = observation(Outcome::Failed, Evidence::Http(ev), timings);
            let msg = format!("{}: {e}", r.url);
            fail(o, Outcome::Failed, phase, Reason::HttpError, msg)
        }
    }
}

/// Judge a complete answer against the step's expected status and body.
fn judge_answer(
    r: &HttpRequest<'_>,
    x: Exchange,
    mut ev: HttpEvidence,
    mut timings: Timings,
) -> Observation {
    timings.first_byte_ms = Some(x.first_byte_ms);
    ev.status = Some(x.status);
    ev.server = x.server.clone();
    ev.proxy_meaning = proxy_meaning(x.status, x.server.as_deref(), &x.body);
    ev.body = x.body.clone();
    let meaning = ev
        .proxy_meaning
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    let server = x
        .server
        .as_ref()
        .map(|s| format!(", server {s}"))
        .unwrap_or_default();
    let status_ok = if r.expect_status.is_empty() {
        (200..300).contains(&x.status)
    } else {
        r.expect_status.contains(&x.status)
    };
    let o = observation(Outcome::Ok, Evidence::Http(ev), timings);
    if !status_ok {
        let want = if r.expect_status.is_empty() {
            "2xx".to_string()
        } else {
            r.expect_status
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        };
        let msg = format!(
            "{}: status {}{meaning}{server}, expected {want}",
            r.url, x.status
        );
        return fail(
            o,
            Outcome::Failed,
            Phase::Status,
            Reason::StatusMismatch,
            msg,
        );
    }
    if let Some(want) = r.expect_body {
        if !x.body.contains(want) {
            let start: String = x.body.chars().take(80).collect();
            let msg = format!(
                "{}: body does not contain {want:?} (starts {start:?})",
                r.url
            );
            return fail(o, Outcome::Failed, Phase::Body, Reason::BodyMismatch, msg);
        }
    }
    let mut o = o;
    o.phase = Some(Phase::Body);
    o.message = format!(
        "{}: status {}{server} in {:.1} ms",
        r.url, x.status, o.timings.total_ms
    );
    o
}

/// Run the HTTP probe.
pub async fn probe(ctx: &ProbeCtx, r: &HttpRequest<'_>) -> Observation {
    let t = Instant::now();
    let mut ev = HttpEvidence {
        url: r.url.to_string(),
        connect: r.connect.to_string(),
        ..HttpEvidence::default()
    };
    let to = match target(r.url) {
        Ok(to) => to,
        Err(e) => return Observation::tool_error("", Phase::Request, e),
    };
    let mut timings = Timings::default();
    let deadline = Deadline::after(ctx.timeout);
    let result = if to.https {
        match connect_tls(r, &to, deadline, &mut ev, &mut timings, ctx.warn_days).await {
            Ok(stream) => {
                exchange(stream, &to.host_header, &to.path, ctx.body_limit, deadline).await
            }
            Err(stopped) => return *stopped,
        }
    } else {
        let (s, tc) = tcp::connect(r.connect, deadline).await;
        timings.connect_ms = Some(tc);
        match s {
            Ok(s) => exchange(s, &to.host_header, &to.path, ctx.body_limit, deadline).await,
            Err(f) => {
                timings.total_ms = ms(t);
                let o = observation(f.outcome(), Evidence::Http(ev), timings);
                let msg = format!("{}: {}", r.url, tcp::connect_message(r.connect, &f));
                return fail(o, f.outcome(), Phase::Connect, f.class.reason, msg);
            }
        }
    };
    timings.total_ms = ms(t);
    match result {
        Ok(x) => judge_answer(r, x, ev, timings),
        Err(f) => exchange_failed(r, ctx, ev, timings, f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_answers_have_meanings() {
        use ProxyMeaning::*;
        assert_eq!(
            proxy_meaning(404, None, "404 page not found\n"),
            Some(NoRouter)
        );
        assert_eq!(proxy_meaning(404, Some("nginx"), "<html>"), None);
        assert_eq!(
            proxy_meaning(502, Some("nginx/1.22.1"), ""),
            Some(BackendRefused)
        );
        assert_eq!(
            proxy_meaning(504, None, "Gateway Timeout"),
            Some(BackendTimeout)
        );
        assert_eq!(
            proxy_meaning(500, None, "Internal Server Error"),
            Some(BackendTls)
        );
        assert_eq!(
            proxy_meaning(500, Some("nginx"), "Internal Server Error"),
            None
        );
        assert_eq!(proxy_meaning(200, None, "ok"), None);
    }
}
