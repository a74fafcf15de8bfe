//! The TCP probe: open, refused, filtered (silent drop) or unreachable, with the connect time.

use super::classify::{self, Class};
use super::{fail, ms, observation, Deadline, ProbeCtx};
use crate::observe::{
    Evidence, Observation, Outcome, Phase, Reason, TcpEvidence, TcpState, Timings,
};
use std::net::SocketAddr;
use std::time::Instant;
use tokio::net::TcpStream;

/// Why a connect did not give a stream.
#[derive(Debug, Clone)]
pub(crate) struct ConnectFail {
    pub class: Class,
    /// No answer before the timeout (a silent drop).
    pub timed_out: bool,
}

impl ConnectFail {
    pub fn outcome(&self) -> Outcome {
        if self.timed_out {
            Outcome::TimedOut
        } else {
            Outcome::Failed
        }
    }
}

/// Connect by the step's deadline; returns the stream or the classified failure, and the time
/// taken.
pub(crate) async fn connect(
    addr: SocketAddr,
    deadline: Deadline,
) -> (Result<TcpStream, ConnectFail>, f64) {
    let t = Instant::now();
    let r = match tokio::time::timeout_at(deadline.at, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => {
            let class = classify::connect_error(&e);
            let timed_out = class.reason == Reason::Filtered;
            Err(ConnectFail { class, timed_out })
        }
        Err(_) => Err(ConnectFail {
            class: Class {
                reason: Reason::Filtered,
                detail: format!("no answer within {} ms", deadline.ms()),
            },
            timed_out: true,
        }),
    };
    (r, ms(t))
}

/// A human sentence for a failed connect.
pub(crate) fn connect_message(addr: SocketAddr, f: &ConnectFail) -> String {
    match f.class.reason {
        Reason::Refused => {
            format!("{addr}: connection refused (nothing listens, or a reject rule)")
        }
        Reason::Filtered => format!("{addr}: {} (filtered: packets dropped)", f.class.detail),
        Reason::Unreachable => format!(
            "{addr}: host unreachable ({}; ICMP host-unreachable or admin-prohibited)",
            f.class.detail
        ),
        Reason::NetUnreachable => format!("{addr}: network unreachable ({})", f.class.detail),
        _ => format!("{addr}: connect failed: {}", f.class.detail),
    }
}

/// Run the TCP probe.
pub async fn probe(ctx: &ProbeCtx, addr: SocketAddr) -> Observation {
    let (r, t) = connect(addr, Deadline::after(ctx.timeout)).await;
    let timings = Timings {
        connect_ms: Some(t),
        total_ms: t,
        ..Timings::default()
    };
    match r {
        Ok(_s) => {
            let ev = TcpEvidence {
                addr: addr.to_string(),
                state: TcpState::Open,
                os_error: None,
            };
            let mut o = observation(Outcome::Ok, Evidence::Tcp(ev), timings);
            o.phase = Some(Phase::Connect);
            o.message = format!("{addr}: open ({t:.1} ms)");
            o
        }
        Err(f) => {
            let ev = TcpEvidence {
                addr: addr.to_string(),
                state: classify::tcp_state(f.class.reason),
                os_error: (!f.timed_out || f.class.detail.contains("os error"))
                    .then(|| f.class.detail.clone()),
            };
            let o = observation(f.outcome(), Evidence::Tcp(ev), timings);
            let msg = connect_message(addr, &f);
            fail(o, f.outcome(), Phase::Connect, f.class.reason, msg)
        }
    }
}
