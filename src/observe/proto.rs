//! What a service speaks: its transport protocol ([`Proto`]) and its application scheme
//! ([`Scheme`]), typed so that the model, the plan, lint and the lab match enums, never strings.
//! Each serializes as the text the configs, the trace files and the JSON output use.

use super::vocab::text_enum;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

text_enum! {
    /// The transport protocol of a port (a service, a documented hop, a firewall question).
    #[derive(Default)]
    pub enum Proto {
        #[default]
        Tcp = "tcp",
        Udp = "udp",
    }
}

text_enum! {
    /// The application protocol spoken on a port, as a URL scheme (`http://...`), a Traefik
    /// `loadbalancer.server.scheme` label or a trace's `when`.
    pub enum Scheme {
        Http = "http",
        Https = "https",
        /// HTTP/2 without TLS (a Traefik `loadbalancer.server.scheme`).
        H2c = "h2c",
        Dns = "dns",
        Nfs = "nfs",
    }
}

impl Scheme {
    /// The scheme of `url` (`https://...`), when it is one of these.
    pub fn of_url(url: &str) -> Option<Scheme> {
        url.split_once("://")?.0.parse().ok()
    }

    /// True for a scheme that runs over TLS.
    pub fn is_tls(self) -> bool {
        self == Scheme::Https
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_texts_round_trip_and_others_are_refused() {
        for p in Proto::ALL {
            assert_eq!(p.as_str().parse::<Proto>(), Ok(*p));
        }
        for s in Scheme::ALL {
            assert_eq!(s.as_str().parse::<Scheme>(), Ok(*s));
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(Proto::Udp.to_string(), "udp");
        assert!("HTTPS".parse::<Scheme>().is_err());
        assert!("sctp".parse::<Proto>().unwrap_err().contains("tcp, udp"));
        assert_eq!(Scheme::of_url("https://10.0.0.1:9000"), Some(Scheme::Https));
        assert_eq!(Scheme::of_url("ftp://x"), None);
        assert_eq!(Scheme::of_url("10.0.0.1"), None);
        assert!(Scheme::Https.is_tls() && !Scheme::Http.is_tls() && !Scheme::H2c.is_tls());
    }
}
