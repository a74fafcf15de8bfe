//! The HTTP probe: hyper's HTTP/1 client over the probe's own TCP (and TLS) connection, with
//! per-phase timings, bounded body reads, status/body expectations, and the meaning of proxy
//! answers (Traefik and NGINX error shapes).

use super::tls::{self, apply_trust, fill_chain, load_identity};
use super::{fail, ms, observation, tcp, Deadline, ProbeCtx};
use crate::observe::{Evidence, HttpEvidence, Observation, Outcome, Timings, TlsEvidence};
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
pub fn proxy_meaning(status: u16, server: Option<&str>, body: &str) -> Option<&'static str> {
    let b = body.trim();
    let nginx = server.is_some_and(|s| s.to_ascii_lowercase().starts_with("nginx"));
    match status {
        404 if b == "404 page not found" => Some("no-router"),
        502 => Some("backend-refused"),
        504 => Some("backend-timeout"),
        500 if !nginx && server.is_none() && b == "Internal Server Error" => Some("backend-tls"),
        503 if nginx || b == "Service Unavailable" || b == "no available server" => {
            Some("no-backend")
        }
        _ => None,
    }
}

struct Exchange {
    status: u16,
    server: Option<String>,
    body: String,
    first_byte_ms: f64,
}

enum ExchangeFail {
    /// No response head by the deadline.
    Timeout(&'static str),
    Error(&'static str, String),
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
        Err(_) => return Err(ExchangeFail::Timeout("request")),
        Ok(r) => r.map_err(|e| ExchangeFail::Error("request", e.to_string()))?,
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
        .map_err(|e| ExchangeFail::Error("request", e.to_string()))?;
    let t = Instant::now();
    let resp: Response<Incoming> =
        match tokio::time::timeout_at(deadline.at, sender.send_request(req)).await {
            Err(_) => {
                driver.abort();
                return Err(ExchangeFail::Timeout("first-byte"));
            }
            Ok(Err(e)) => {
                driver.abort();
                return Err(ExchangeFail::Error("response", e.to_string()));
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

/// Run the HTTP probe.
pub async fn probe(ctx: &ProbeCtx, r: &HttpRequest<'_>) -> Observation {
    let t = Instant::now();
    let mut ev = HttpEvidence {
        url: r.url.to_string(),
        connect: r.connect.to_string(),
        ..HttpEvidence::default()
    };
    let uri: hyper::Uri = match r.url.parse() {
        Ok(u) => u,
        Err(e) => {
            return Observation::tool_error("", "request", format!("invalid URL `{}`: {e}", r.url))
        }
    };
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => {
            return Observation::tool_error(
                "",
                "request",
                format!("invalid URL `{}`: expected http:// or https://", r.url),
            )
        }
    };
    let Some(host) = uri
        .host()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
    else {
        return Observation::tool_error("", "request", format!("invalid URL `{}`: no host", r.url));
    };
    let host_header = match uri.port_u16() {
        Some(p) => format!("{}:{p}", uri.host().unwrap_or_default()),
        None => uri.host().unwrap_or_default().to_string(),
    };
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut timings = Timings::default();
    let addr = r.connect;
    let deadline = Deadline::after(ctx.timeout);
    let result = if https {
        let key = match r.identity.map(load_identity).transpose() {
            Ok(k) => k,
            Err(e) => {
                return Observation::tool_error("", "request", format!("client identity: {e}"))
            }
        };
        let hs = tls::handshake(addr, &host, key, &[b"http/1.1"], deadline).await;
        timings.connect_ms = hs.connect_ms;
        timings.tls_ms = hs.tls_ms;
        let mut tev = TlsEvidence {
            addr: addr.to_string(),
            sni: host.clone(),
            protocol: hs.protocol.clone(),
            cipher: hs.cipher.clone(),
            alpn: hs.alpn.clone(),
            ..TlsEvidence::default()
        };
        fill_chain(&mut tev, &hs.chain);
        let stream = match hs.result {
            Ok(s) => s,
            Err(f) => {
                ev.tls = Some(tev);
                timings.total_ms = ms(t);
                let outcome = if f.timed_out {
                    Outcome::TimedOut
                } else {
                    Outcome::Failed
                };
                let o = observation(outcome, Evidence::Http(ev), timings);
                return fail(
                    o,
                    outcome,
                    f.phase,
                    f.class.reason,
                    format!("{}: {}", r.url, f.class.detail),
                );
            }
        };
        if let Some(trust) = r.trust {
            if let Err(e) = apply_trust(&mut tev, &hs.chain, &host, trust) {
                return Observation::tool_error("", "verify", e);
            }
        }
        if let Some(reason) = tev.verify_error.clone() {
            let detail = tev.verify_detail.clone();
            ev.tls = Some(tev);
            timings.total_ms = ms(t);
            let o = observation(Outcome::Failed, Evidence::Http(ev), timings);
            return fail(
                o,
                Outcome::Failed,
                "verify",
                &reason,
                format!("{}: {detail}", r.url),
            );
        }
        ev.tls = Some(tev);
        exchange(stream, &host_header, &path, ctx.body_limit, deadline).await
    } else {
        let (s, tc) = tcp::connect(addr, deadline).await;
        timings.connect_ms = Some(tc);
        match s {
            Ok(s) => exchange(s, &host_header, &path, ctx.body_limit, deadline).await,
            Err(f) => {
                timings.total_ms = ms(t);
                let o = observation(f.outcome(), Evidence::Http(ev), timings);
                let msg = format!("{}: {}", r.url, tcp::connect_message(addr, &f));
                return fail(o, f.outcome(), "connect", f.class.reason, msg);
            }
        }
    };
    timings.total_ms = ms(t);
    let x = match result {
        Ok(x) => x,
        Err(ExchangeFail::Timeout(phase)) => {
            let o = observation(Outcome::TimedOut, Evidence::Http(ev), timings);
            let msg = format!(
                "{}: no response within {} ms",
                r.url,
                ctx.timeout.as_millis()
            );
            return fail(o, Outcome::TimedOut, phase, "timeout", msg);
        }
        Err(ExchangeFail::Body {
            status,
            server,
            first_byte_ms,
            got,
            timed_out,
            detail,
        }) => {
            timings.first_byte_ms = Some(first_byte_ms);
            ev.status = Some(status);
            ev.server = server;
            let outcome = if timed_out {
                Outcome::TimedOut
            } else {
                Outcome::Failed
            };
            let reason = if timed_out { "timeout" } else { "http-error" };
            let o = observation(outcome, Evidence::Http(ev), timings);
            let msg = format!(
                "{}: status {status}, but {detail} ({got} bytes read)",
                r.url
            );
            return fail(o, outcome, "body", reason, msg);
        }
        Err(ExchangeFail::Error(phase, e)) => {
            let o = observation(Outcome::Failed, Evidence::Http(ev), timings);
            return fail(
                o,
                Outcome::Failed,
                phase,
                "http-error",
                format!("{}: {e}", r.url),
            );
        }
    };
    timings.first_byte_ms = Some(x.first_byte_ms);
    ev.status = Some(x.status);
    ev.server = x.server.clone();
    ev.proxy_meaning = proxy_meaning(x.status, x.server.as_deref(), &x.body).map(str::to_string);
    ev.body = x.body.clone();
    let meaning = ev
        .proxy_meaning
        .as_ref()
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
        return fail(o, Outcome::Failed, "status", "status-mismatch", msg);
    }
    if let Some(want) = r.expect_body {
        if !x.body.contains(want) {
            let start: String = x.body.chars().take(80).collect();
            let msg = format!(
                "{}: body does not contain {want:?} (starts {start:?})",
                r.url
            );
            return fail(o, Outcome::Failed, "body", "body-mismatch", msg);
        }
    }
    let mut o = o;
    o.phase = Some("body".into());
    o.message = format!(
        "{}: status {}{server} in {:.1} ms",
        r.url, x.status, o.timings.total_ms
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_answers_have_meanings() {
        assert_eq!(
            proxy_meaning(404, None, "404 page not found\n"),
            Some("no-router")
        );
        assert_eq!(proxy_meaning(404, Some("nginx"), "<html>"), None);
        assert_eq!(
            proxy_meaning(502, Some("nginx/1.22.1"), ""),
            Some("backend-refused")
        );
        assert_eq!(
            proxy_meaning(504, None, "Gateway Timeout"),
            Some("backend-timeout")
        );
        assert_eq!(
            proxy_meaning(500, None, "Internal Server Error"),
            Some("backend-tls")
        );
        assert_eq!(
            proxy_meaning(500, Some("nginx"), "Internal Server Error"),
            None
        );
        assert_eq!(proxy_meaning(200, None, "ok"), None);
    }
}
