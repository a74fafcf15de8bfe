//! The one place that turns io, rustls and DNS errors into typed reasons ([`Reason`]).
//!
//! Every reason produced here is listed in `docs/output-json.md`.

use crate::observe::{ClientCertAnswer, Reason, TcpState};
use std::io;

/// A classified failure: the reason and a detail for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    /// The stable reason (`refused`, `filtered`, `tls-alert` ...).
    pub reason: Reason,
    /// A short human detail (`alert certificate-required`, `Connection refused (os error 111)`).
    pub detail: String,
}

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
        reason: Reason::OutOfResources,
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
        Some(libc::ECONNREFUSED) => Reason::Refused, // RST or ICMP port-unreachable
        Some(libc::EHOSTUNREACH) => Reason::Unreachable, // ICMP host-unreachable / admin-prohibited
        Some(libc::ENETUNREACH) => Reason::NetUnreachable,
        Some(libc::ETIMEDOUT) => Reason::Filtered, // from the kernel
        Some(libc::ECONNRESET) => Reason::Reset,
        _ => match e.kind() {
            io::ErrorKind::ConnectionRefused => Reason::Refused,
            io::ErrorKind::HostUnreachable => Reason::Unreachable,
            io::ErrorKind::NetworkUnreachable => Reason::NetUnreachable,
            io::ErrorKind::TimedOut => Reason::Filtered,
            _ => Reason::ConnectError,
        },
    };
    Class {
        reason,
        detail: e.to_string(),
    }
}

/// The TCP state for a connect reason (`TcpEvidence::state`).
pub fn tcp_state(reason: Reason) -> TcpState {
    match reason {
        Reason::Refused => TcpState::Refused,
        Reason::Filtered => TcpState::Filtered,
        Reason::Unreachable | Reason::NetUnreachable => TcpState::Unreachable,
        _ => TcpState::Error,
    }
}

/// The kebab-case name of a TLS alert (`certificate-required`, `handshake-failure`,
/// `unknown-ca`), by matching rustls' enum.
pub fn alert_name(a: &rustls::AlertDescription) -> String {
    use rustls::AlertDescription as A;
    let name = match a {
        A::CloseNotify => "close-notify",
        A::UnexpectedMessage => "unexpected-message",
        A::BadRecordMac => "bad-record-mac",
        A::DecryptionFailed => "decryption-failed",
        A::RecordOverflow => "record-overflow",
        A::DecompressionFailure => "decompression-failure",
        A::HandshakeFailure => "handshake-failure",
        A::NoCertificate => "no-certificate",
        A::BadCertificate => "bad-certificate",
        A::UnsupportedCertificate => "unsupported-certificate",
        A::CertificateRevoked => "certificate-revoked",
        A::CertificateExpired => "certificate-expired",
        A::CertificateUnknown => "certificate-unknown",
        A::IllegalParameter => "illegal-parameter",
        A::UnknownCA => "unknown-ca",
        A::AccessDenied => "access-denied",
        A::DecodeError => "decode-error",
        A::DecryptError => "decrypt-error",
        A::ExportRestriction => "export-restriction",
        A::ProtocolVersion => "protocol-version",
        A::InsufficientSecurity => "insufficient-security",
        A::InternalError => "internal-error",
        A::InappropriateFallback => "inappropriate-fallback",
        A::UserCanceled => "user-canceled",
        A::NoRenegotiation => "no-renegotiation",
        A::MissingExtension => "missing-extension",
        A::UnsupportedExtension => "unsupported-extension",
        A::CertificateUnobtainable => "certificate-unobtainable",
        A::UnrecognisedName => "unrecognised-name",
        A::BadCertificateStatusResponse => "bad-certificate-status-response",
        A::BadCertificateHashValue => "bad-certificate-hash-value",
        A::UnknownPSKIdentity => "unknown-psk-identity",
        A::CertificateRequired => "certificate-required",
        A::NoApplicationProtocol => "no-application-protocol",
        A::EncryptedClientHelloRequired => "encrypted-client-hello-required",
        other => return format!("unknown{}", u8::from(*other)),
    };
    name.to_string()
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
            reason: Reason::Reset,
            detail: e.to_string(),
        },
        io::ErrorKind::UnexpectedEof => Class {
            reason: Reason::PeerClosed,
            detail: "the peer closed the connection during the handshake".into(),
        },
        _ => Class {
            reason: Reason::TlsError,
            detail: e.to_string(),
        },
    }
}

/// Classify a rustls error.
pub fn rustls_class(r: &rustls::Error) -> Class {
    use rustls::Error as E;
    use rustls::InvalidMessage as M;
    match r {
        E::AlertReceived(a) => Class {
            reason: Reason::TlsAlert,
            detail: format!("alert {}", alert_name(a)),
        },
        E::InvalidMessage(m) => Class {
            reason: match m {
                M::MessageTooLarge
                | M::HandshakePayloadTooLarge
                | M::CertificatePayloadTooLarge => Reason::MessageTooLarge,
                _ => Reason::NotTls,
            },
            detail: format!("invalid TLS message from the peer: {m:?}"),
        },
        E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => Class {
            reason: Reason::NotTls,
            detail: r.to_string(),
        },
        E::PeerIncompatible(p) => Class {
            reason: Reason::TlsIncompatible,
            detail: format!("{p:?}"),
        },
        E::NoCertificatesPresented => Class {
            reason: Reason::Verify(crate::observe::VerifyError::NoCertificate),
            detail: r.to_string(),
        },
        _ => Class {
            reason: Reason::TlsError,
            detail: r.to_string(),
        },
    }
}

/// What a server's refusal of a client looked like (`alert:certificate-required`, `reset`, ...).
pub fn rejection(e: &io::Error) -> ClientCertAnswer {
    if let Some(rustls::Error::AlertReceived(a)) = rustls_error(e) {
        return ClientCertAnswer::Alert(alert_name(a));
    }
    ClientCertAnswer::Failed(tls_error(e).reason)
}

/// A DNS transport error (UDP send/recv, TCP connect): `port-unreachable`, `unreachable`,
/// `net-unreachable`, `out-of-resources`, `dns-io-error`.
pub fn dns_io(e: &io::Error) -> Class {
    if is_resource_exhaustion(e) {
        return resources(e);
    }
    let reason = match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => Reason::PortUnreachable,
        Some(libc::EHOSTUNREACH) => Reason::Unreachable,
        Some(libc::ENETUNREACH) => Reason::NetUnreachable,
        _ => match e.kind() {
            io::ErrorKind::ConnectionRefused => Reason::PortUnreachable,
            _ => Reason::DnsIoError,
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
        use rustls::AlertDescription as A;
        assert_eq!(alert_name(&A::CertificateRequired), "certificate-required");
        assert_eq!(alert_name(&A::HandshakeFailure), "handshake-failure");
        assert_eq!(alert_name(&A::UnknownCA), "unknown-ca");
        assert_eq!(
            alert_name(&A::UnsupportedCertificate),
            "unsupported-certificate"
        );
        assert_eq!(alert_name(&A::from(0xfe)), "unknown254");
    }

    #[test]
    fn connect_errors_classify() {
        let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(connect_error(&e).reason, Reason::Refused);
        assert_eq!(
            connect_error(&io::Error::from_raw_os_error(libc::EHOSTUNREACH)).reason,
            Reason::Unreachable
        );
        assert_eq!(tcp_state(Reason::NetUnreachable), TcpState::Unreachable);
        assert_eq!(dns_io(&e).reason, Reason::PortUnreachable);
    }

    #[test]
    fn the_tools_own_exhaustion_is_never_a_network_failure() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            let e = io::Error::from_raw_os_error(errno);
            assert_eq!(connect_error(&e).reason, Reason::OutOfResources, "{e}");
            assert_eq!(dns_io(&e).reason, Reason::OutOfResources, "{e}");
            assert!(connect_error(&e).detail.contains("ulimit -n"));
        }
        let e = io::Error::from_raw_os_error(libc::ECONNRESET);
        assert_ne!(dns_io(&e).reason, Reason::OutOfResources);
    }
}
