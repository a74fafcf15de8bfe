//! The mTLS probe: does the server request a client certificate (and which CA names does it
//! hint), is a connection without one refused (TLS 1.2 handshake alert, TLS 1.3 alert on the
//! first read, or NGINX's HTTP 400 after a completed handshake), and is the given one accepted?

use super::tls::{self, apply_trust, load_identity, session_words};
use super::{classify, fail, ms, observation, Deadline, ProbeCtx};
use crate::observe::{
    ClientCertAnswer, Evidence, MtlsEvidence, MtlsVerdict, Observation, Outcome, Phase, Reason,
    Timings,
};
use crate::plan::{Identity, Trust};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Send a minimal HTTP request and read the start of the answer: `accepted`, `http-400`,
/// `http-495`, `http-496`, `alert:<name>`, `closed`, `reset`, `no-answer`.
pub(crate) async fn exchange(
    mut s: TlsStream<TcpStream>,
    host: &str,
    timeout: Duration,
) -> ClientCertAnswer {
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: phoenix-doctor\r\nConnection: close\r\n\r\n"
    );
    let fut = async {
        if let Err(e) = s.write_all(req.as_bytes()).await {
            return classify::rejection(&e);
        }
        let _ = s.flush().await;
        let mut buf = vec![0u8; 2048];
        let mut got = 0;
        loop {
            match s.read(&mut buf[got..]).await {
                Ok(0) if got == 0 => return ClientCertAnswer::Closed,
                Ok(0) => break,
                Ok(n) => {
                    got += n;
                    if got >= 12 || got == buf.len() {
                        break;
                    }
                }
                Err(e) if got == 0 => return classify::rejection(&e),
                Err(_) => break,
            }
        }
        let head = String::from_utf8_lossy(&buf[..got]);
        let status = head
            .strip_prefix("HTTP/1.")
            .and_then(|r| r.get(2..5))
            .and_then(|c| c.parse::<u16>().ok());
        match status {
            Some(c @ (400 | 495 | 496)) => ClientCertAnswer::HttpStatus(c),
            _ => ClientCertAnswer::Accepted,
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or(ClientCertAnswer::NoAnswer)
}

/// What a handshake that did not complete says about the client it was offered.
fn answer_of(f: &tls::HandshakeFail) -> ClientCertAnswer {
    match &f.io {
        Some(e) => classify::rejection(e),
        None => ClientCertAnswer::Failed(f.class.reason),
    }
}

/// The verdict from what the server asked and answered.
pub fn verdict_of(ev: &MtlsEvidence) -> MtlsVerdict {
    let rejected_without = ev.without_cert.as_ref().is_some_and(|a| a.is_rejection());
    if !ev.requested {
        MtlsVerdict::NotRequested
    } else if !rejected_without {
        MtlsVerdict::Optional
    } else {
        match &ev.with_cert {
            Some(ClientCertAnswer::Accepted) => MtlsVerdict::RequiredAccepting,
            Some(_) => MtlsVerdict::RequiredRejecting,
            None => MtlsVerdict::Required,
        }
    }
}

/// The mTLS evidence of the first handshake (no client certificate offered).
fn first_evidence(
    addr: SocketAddr,
    sni: &str,
    hs: &tls::Handshake,
    warn_days: u32,
) -> MtlsEvidence {
    let mut ev = MtlsEvidence {
        tls: hs.evidence(addr, sni, warn_days),
        ..MtlsEvidence::default()
    };
    ev.requested = hs.client_auth.is_some();
    ev.ca_hints = hs.client_auth.clone().unwrap_or_default();
    ev
}

/// Offer our client certificate in a second handshake and record what the server does with it.
async fn offer_identity(
    ctx: &ProbeCtx,
    addr: SocketAddr,
    sni: &str,
    id: &Identity,
    ev: &mut MtlsEvidence,
) -> Result<(), String> {
    let key = load_identity(id).map_err(|e| format!("client identity: {e}"))?;
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
        Ok(s) => exchange(s, sni, ctx.timeout).await,
        Err(f) => answer_of(&f),
    });
    Ok(())
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
    let hs = tls::handshake(
        addr,
        sni,
        None,
        &[b"http/1.1"],
        Deadline::after(ctx.timeout),
    )
    .await;
    let mut ev = first_evidence(addr, sni, &hs, ctx.warn_days);
    let mut timings = Timings {
        connect_ms: hs.connect_ms,
        tls_ms: hs.tls_ms,
        ..Timings::default()
    };
    let chain = hs.chain.clone();
    ev.without_cert = Some(match hs.result {
        Ok(s) => {
            let t1 = Instant::now();
            let w = exchange(s, sni, ctx.timeout).await;
            timings.first_byte_ms = Some(ms(t1));
            w
        }
        Err(f) if f.phase == Phase::Connect || chain.is_empty() => {
            timings.total_ms = ms(t);
            ev.verdict = MtlsVerdict::Unknown;
            let o = observation(f.outcome(), Evidence::Mtls(ev), timings);
            let msg = format!("{addr} ({sni}): {}", f.class.detail);
            return fail(o, f.outcome(), f.phase, f.class.reason, msg);
        }
        Err(f) => answer_of(&f),
    });
    if let Err(e) = apply_trust(&mut ev.tls, &chain, sni, trust) {
        let mut o = Observation::tool_error("", Phase::Verify, e);
        o.evidence = Evidence::Mtls(ev);
        return o;
    }
    if let Some(id) = identity {
        if let Err(e) = offer_identity(ctx, addr, sni, id, &mut ev).await {
            let mut o = Observation::tool_error("", Phase::ClientAuth, e);
            o.evidence = Evidence::Mtls(ev);
            return o;
        }
    }
    timings.total_ms = ms(t);
    ev.verdict = verdict_of(&ev);
    conclude(ev, timings, &format!("{addr} ({sni})"), require)
}

/// The observation for the evidence gathered: a verification failure, a client-certificate
/// behaviour the step does not accept, or what the server does.
fn conclude(ev: MtlsEvidence, timings: Timings, prefix: &str, require: bool) -> Observation {
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
        ev.without_cert
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        ev.with_cert
            .as_ref()
            .map(|w| format!("; with ours: {w}"))
            .unwrap_or_default()
    );
    let verify_error = ev.tls.verify_error;
    let verify_detail = ev.tls.verify_detail.clone();
    let verdict = ev.verdict;
    let ours_refused = ev
        .with_cert
        .as_ref()
        .is_some_and(|w| *w != ClientCertAnswer::Accepted);
    let o = observation(Outcome::Ok, Evidence::Mtls(ev), timings);
    if let Some(e) = verify_error {
        return fail(
            o,
            Outcome::Failed,
            Phase::Verify,
            Reason::Verify(e),
            format!("{prefix}: {verify_detail}; {summary}"),
        );
    }
    let failure = match verdict {
        MtlsVerdict::NotRequested if require => Some(Reason::ClientCertNotRequested),
        MtlsVerdict::Optional if require => Some(Reason::ClientCertOptional),
        MtlsVerdict::RequiredRejecting => Some(Reason::ClientCertRejected),
        _ if ours_refused => Some(Reason::ClientCertRejected),
        _ => None,
    };
    match failure {
        Some(r) => fail(
            o,
            Outcome::Failed,
            Phase::ClientAuth,
            r,
            format!("{prefix}: {verdict}: {summary}"),
        ),
        None => {
            let mut o = o;
            o.phase = Some(Phase::ClientAuth);
            o.message = format!("{prefix}: {verdict}: {summary}; {words}");
            o
        }
    }
}
