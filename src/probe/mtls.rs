//! The mTLS probe: does the server request a client certificate (and which CA names does it
//! hint), is a connection without one refused (TLS 1.2 handshake alert, TLS 1.3 alert on the
//! first read, or NGINX's HTTP 400 after a completed handshake), and is the given one accepted?

use super::tls::{self, apply_trust, fill_chain, load_identity, session_words};
use super::{classify, fail, ms, observation, Deadline, ProbeCtx};
use crate::observe::{Evidence, MtlsEvidence, Observation, Outcome, Timings, TlsEvidence};
use crate::plan::{Identity, Trust};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Send a minimal HTTP request and read the start of the answer: `accepted`, `http-400`,
/// `http-495`, `http-496`, `alert:<name>`, `closed`, `reset`, `no-answer`.
pub(crate) async fn exchange(mut s: TlsStream<TcpStream>, host: &str, timeout: Duration) -> String {
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: phoenix-doctor\r\nConnection: close\r\n\r\n"
    );
    let fut = async {
        if let Err(e) = s.write_all(req.as_bytes()).await {
            return classify::rejection_word(&e);
        }
        let _ = s.flush().await;
        let mut buf = vec![0u8; 2048];
        let mut got = 0;
        loop {
            match s.read(&mut buf[got..]).await {
                Ok(0) if got == 0 => return "closed".to_string(),
                Ok(0) => break,
                Ok(n) => {
                    got += n;
                    if got >= 12 || got == buf.len() {
                        break;
                    }
                }
                Err(e) if got == 0 => return classify::rejection_word(&e),
                Err(_) => break,
            }
        }
        let head = String::from_utf8_lossy(&buf[..got]);
        let status = head
            .strip_prefix("HTTP/1.")
            .and_then(|r| r.get(2..5))
            .and_then(|c| c.parse::<u16>().ok());
        match status {
            Some(c @ (400 | 495 | 496)) => format!("http-{c}"),
            Some(_) => "accepted".to_string(),
            None => "accepted".to_string(),
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| "no-answer".to_string())
}

/// True when a word says the server turned the client away.
pub fn is_rejection(word: &str) -> bool {
    word.starts_with("alert:")
        || matches!(
            word,
            "http-400"
                | "http-495"
                | "http-496"
                | "closed"
                | "reset"
                | "peer-closed"
                | "handshake-failure"
        )
}

/// Run the mTLS probe.
pub async fn probe(
    ctx: &ProbeCtx,
    addr: SocketAddr,
    sni: &str,
    trust: &Trust,
    identity: Option<&Identity>,
    require: bool,
) -> Observation {
    let t = Instant::now();
    let host = sni.to_string();
    let hs = tls::handshake(
        addr,
        sni,
        None,
        &[b"http/1.1"],
        Deadline::after(ctx.timeout),
    )
    .await;
    let mut ev = MtlsEvidence {
        tls: TlsEvidence {
            addr: addr.to_string(),
            sni: sni.to_string(),
            protocol: hs.protocol.clone(),
            cipher: hs.cipher.clone(),
            alpn: hs.alpn.clone(),
            ..TlsEvidence::default()
        },
        ..MtlsEvidence::default()
    };
    fill_chain(&mut ev.tls, &hs.chain);
    ev.requested = hs.client_auth.is_some();
    ev.ca_hints = hs.client_auth.clone().unwrap_or_default();
    let mut timings = Timings {
        connect_ms: hs.connect_ms,
        tls_ms: hs.tls_ms,
        ..Timings::default()
    };
    let chain = hs.chain.clone();
    ev.without_cert = match hs.result {
        Ok(s) => {
            let t1 = Instant::now();
            let w = exchange(s, &host, ctx.timeout).await;
            timings.first_byte_ms = Some(ms(t1));
            w
        }
        Err(f) if f.phase == "connect" || chain.is_empty() => {
            let outcome = if f.timed_out {
                Outcome::TimedOut
            } else {
                Outcome::Failed
            };
            timings.total_ms = ms(t);
            ev.verdict = "unknown".into();
            let o = observation(outcome, Evidence::Mtls(ev), timings);
            let msg = format!("{addr} ({sni}): {}", f.class.detail);
            return fail(o, outcome, f.phase, f.class.reason, msg);
        }
        Err(f) => match &f.io {
            Some(e) => classify::rejection_word(e),
            None => f.class.reason.to_string(),
        },
    };
    if let Err(e) = apply_trust(&mut ev.tls, &chain, sni, trust) {
        let mut o = Observation::tool_error("", "verify", e);
        o.evidence = Evidence::Mtls(ev);
        return o;
    }
    if let Some(id) = identity {
        let key = match load_identity(id) {
            Ok(k) => k,
            Err(e) => {
                let mut o =
                    Observation::tool_error("", "client-auth", format!("client identity: {e}"));
                o.evidence = Evidence::Mtls(ev);
                return o;
            }
        };
        let hs2 = tls::handshake(
            addr,
            sni,
            Some(key),
            &[b"http/1.1"],
            Deadline::after(ctx.timeout),
        )
        .await;
        if hs2.client_auth.is_some() {
            ev.requested = true;
            if ev.ca_hints.is_empty() {
                ev.ca_hints = hs2.client_auth.clone().unwrap_or_default();
            }
        }
        if ev.tls.protocol.is_empty() {
            // TLS 1.2 servers fail the first handshake: take the session facts from this one
            ev.tls.protocol = hs2.protocol.clone();
            ev.tls.cipher = hs2.cipher.clone();
            ev.tls.alpn = hs2.alpn.clone();
        }
        ev.with_cert = Some(match hs2.result {
            Ok(s) => exchange(s, &host, ctx.timeout).await,
            Err(f) => match &f.io {
                Some(e) => classify::rejection_word(e),
                None => f.class.reason.to_string(),
            },
        });
    }
    timings.total_ms = ms(t);
    let rejected_without = is_rejection(&ev.without_cert);
    ev.verdict = if !ev.requested {
        "not-requested"
    } else if !rejected_without {
        "optional"
    } else {
        match ev.with_cert.as_deref() {
            Some("accepted") => "required-accepting",
            Some(_) => "required-rejecting",
            None => "required",
        }
    }
    .to_string();
    let words = session_words(&ev.tls);
    let hints = if ev.ca_hints.is_empty() {
        String::new()
    } else {
        format!(" (hints: {})", ev.ca_hints.join("; "))
    };
    let summary = format!(
        "client certificate {}{hints}; without one: {}{}",
        if ev.requested {
            "requested"
        } else {
            "not requested"
        },
        ev.without_cert,
        ev.with_cert
            .as_ref()
            .map(|w| format!("; with ours: {w}"))
            .unwrap_or_default()
    );
    let verify_error = ev.tls.verify_error.clone();
    let verify_detail = ev.tls.verify_detail.clone();
    let verdict = ev.verdict.clone();
    let with_cert = ev.with_cert.clone();
    let o = observation(Outcome::Ok, Evidence::Mtls(ev), timings);
    let prefix = format!("{addr} ({sni})");
    if let Some(r) = verify_error {
        return fail(
            o,
            Outcome::Failed,
            "verify",
            &r,
            format!("{prefix}: {verify_detail}; {summary}"),
        );
    }
    let failure = match verdict.as_str() {
        "not-requested" if require => Some("client-cert-not-requested"),
        "optional" if require => Some("client-cert-optional"),
        "required-rejecting" => Some("client-cert-rejected"),
        _ if with_cert.as_deref().is_some_and(|w| w != "accepted") => Some("client-cert-rejected"),
        _ => None,
    };
    match failure {
        Some(r) => fail(
            o,
            Outcome::Failed,
            "client-auth",
            r,
            format!("{prefix}: {verdict}: {summary}"),
        ),
        None => {
            let mut o = o;
            o.phase = Some("client-auth".into());
            o.message = format!("{prefix}: {verdict}: {summary}; {words}");
            o
        }
    }
}
