//! The one place that turns io, rustls and DNS errors into stable reason strings.
//!
//! Every reason string produced here is listed in `docs/output-json.md`.

use std::io;

/// A classified failure: the stable reason and the state word for evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    /// Stable machine-readable reason (`refused`, `filtered`, `tls-alert` ...).
    pub reason: &'static str,
    /// A short human detail (`alert certificate-required`, `Connection refused (os error 111)`).
    pub detail: String,
}

/// The reason of a failure of the tool's own resources (open files, buffers, memory): the tool's
/// failure, never the network's (the probe's outcome becomes `tool-error`).
pub const REASON_RESOURCES: &str = "out-of-resources";

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: this process or host ran out of something, nothing was
/// learnt about the peer.
pub fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

fn resources(e: &io::Error) -> Class {
    Class {
        reason: REASON_RESOURCES,
        detail: format!(
            "the tool ran out of resources ({e}); lower --concurrency or raise the open-file limit (ulimit -n)"
        ),
    }
}

/// A TCP connect error: `refused`, `unreachable`, `net-unreachable`, `out-of-resources`, or
/// `connect-error`.
pub fn connect_error(e: &io::Error) -> Class {
    if is_resource_exhaustion(e) {
        return resources(e);
    }
    let reason = match e.raw_os_error() {
        Some(111) => "refused",     // ECONNREFUSED: RST or ICMP port-unreachable
        Some(113) => "unreachable", // EHOSTUNREACH: ICMP host-unreachable / admin-prohibited
        Some(101) => "net-unreachable",
        Some(110) => "filtered", // ETIMEDOUT from the kernel
        Some(104) => "reset",
        _ => match e.kind() {
            io::ErrorKind::ConnectionRefused => "refused",
            io::ErrorKind::HostUnreachable => "unreachable",
            io::ErrorKind::NetworkUnreachable => "net-unreachable",
            io::ErrorKind::TimedOut => "filtered",
            _ => "connect-error",
        },
    };
    Class {
        reason,
        detail: e.to_string(),
    }
}

/// The TCP state word for a connect reason (`TcpEvidence::state`).
pub fn tcp_state(reason: &str) -> &'static str {
    match reason {
        "refused" => "refused",
        "filtered" => "filtered",
        "unreachable" | "net-unreachable" => "unreachable",
        _ => "error",
    }
}

/// A kebab-case name for a TLS alert (`certificate-required`, `handshake-failure`, `unknown-ca`).
pub fn alert_name(a: &rustls::AlertDescription) -> String {
    let raw = format!("{a:?}");
    if raw.starts_with("Unknown") && raw.contains('(') {
        return raw.to_lowercase().replace(['(', ')'], "");
    }
    let mut out = String::new();
    let chars: Vec<char> = raw.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower = i > 0 && chars[i - 1].is_lowercase();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                out.push('-');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(*c);
        }
    }
    match out.as_str() {
        "unknown-c-a" => "unknown-ca".into(),
        _ => out,
    }
}

/// The rustls error inside an io error from tokio-rustls, if any.
pub fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
}

/// A TLS handshake or read failure: `tls-alert`, `not-tls`, `reset`, `peer-closed`,
/// `message-too-large`, `tls-error`.
pub fn tls_error(e: &io::Error) -> Class {
    if let Some(r) = rustls_error(e) {
        return rustls_class(r);
    }
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => Class {
            reason: "reset",
            detail: e.to_string(),
        },
        io::ErrorKind::UnexpectedEof => Class {
            reason: "peer-closed",
            detail: "the peer closed the connection during the handshake".into(),
        },
        _ => Class {
            reason: "tls-error",
            detail: e.to_string(),
        },
    }
}

/// Classify a rustls error.
pub fn rustls_class(r: &rustls::Error) -> Class {
    use rustls::Error as E;
    match r {
        E::AlertReceived(a) => Class {
            reason: "tls-alert",
            detail: format!("alert {}", alert_name(a)),
        },
        E::InvalidMessage(m) => {
            let s = format!("{m:?}");
            let reason = if s.contains("TooLarge") || s.contains("Oversize") {
                "message-too-large"
            } else {
                "not-tls"
            };
            Class {
                reason,
                detail: format!("invalid TLS message from the peer: {s}"),
            }
        }
        E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => Class {
            reason: "not-tls",
            detail: r.to_string(),
        },
        E::PeerIncompatible(p) => Class {
            reason: "tls-incompatible",
            detail: format!("{p:?}"),
        },
        E::NoCertificatesPresented => Class {
            reason: "no-certificate",
            detail: r.to_string(),
        },
        _ => Class {
            reason: "tls-error",
            detail: r.to_string(),
        },
    }
}

/// The mTLS word for a rejection (`alert:certificate-required`, `reset`, `closed`).
pub fn rejection_word(e: &io::Error) -> String {
    if let Some(rustls::Error::AlertReceived(a)) = rustls_error(e) {
        return format!("alert:{}", alert_name(a));
    }
    let c = tls_error(e);
    c.reason.to_string()
}

/// A DNS response code as a reason (`nxdomain`, `servfail`, `refused`, `rcode-<n>`).
pub fn dns_rcode(rcode: &str) -> String {
    match rcode {
        "NXDOMAIN" => "nxdomain".into(),
        "SERVFAIL" => "servfail".into(),
        "REFUSED" => "refused".into(),
        "FORMERR" => "formerr".into(),
        "NOTIMP" => "notimp".into(),
        other => format!("rcode-{}", other.to_lowercase()),
    }
}

/// A DNS transport error (UDP send/recv, TCP connect): `port-unreachable`, `unreachable`,
/// `net-unreachable`, `out-of-resources`, `dns-io-error`.
pub fn dns_io(e: &io::Error) -> Class {
    if is_resource_exhaustion(e) {
        return resources(e);
    }
    let reason = match e.raw_os_error() {
        Some(111) => "port-unreachable",
        Some(113) => "unreachable",
        Some(101) => "net-unreachable",
        _ => match e.kind() {
            io::ErrorKind::ConnectionRefused => "port-unreachable",
            _ => "dns-io-error",
        },
    };
    Class {
        reason,
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_names_are_kebab() {
        assert_eq!(
            alert_name(&rustls::AlertDescription::CertificateRequired),
            "certificate-required"
        );
        assert_eq!(
            alert_name(&rustls::AlertDescription::HandshakeFailure),
            "handshake-failure"
        );
        assert_eq!(
            alert_name(&rustls::AlertDescription::UnknownCA),
            "unknown-ca"
        );
        assert_eq!(
            alert_name(&rustls::AlertDescription::UnsupportedCertificate),
            "unsupported-certificate"
        );
    }

    #[test]
    fn connect_errors_classify() {
        let e = io::Error::from_raw_os_error(111);
        assert_eq!(connect_error(&e).reason, "refused");
        assert_eq!(
            connect_error(&io::Error::from_raw_os_error(113)).reason,
            "unreachable"
        );
        assert_eq!(tcp_state("net-unreachable"), "unreachable");
        assert_eq!(dns_rcode("NXDOMAIN"), "nxdomain");
        assert_eq!(dns_io(&e).reason, "port-unreachable");
    }

    #[test]
    fn the_tools_own_exhaustion_is_never_a_network_failure() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            let e = io::Error::from_raw_os_error(errno);
            assert_eq!(connect_error(&e).reason, REASON_RESOURCES, "{e}");
            assert_eq!(dns_io(&e).reason, REASON_RESOURCES, "{e}");
            assert!(connect_error(&e).detail.contains("ulimit -n"));
        }
        let e = io::Error::from_raw_os_error(libc::ECONNRESET);
        assert_ne!(dns_io(&e).reason, REASON_RESOURCES);
    }
}
