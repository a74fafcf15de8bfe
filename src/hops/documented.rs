//! The documented firewall hops (`probes/platform/hops.toml`): which component dials which,
//! on what protocol. `lint` places them on the model's guests.

use crate::error::Error;
use serde::Deserialize;

/// A component a documented hop starts from or reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum End {
    Host,
    Gateway,
    Router,
    Ca,
    Portainer,
    /// Each Portainer agent VM.
    Agent,
    /// The host's dnsmasq.
    Dnsmasq,
    /// Any LAN client: a free address in the gateway's subnet.
    Lan,
    /// Each Traefik route's backend guest (not the dashboard).
    Route,
    /// Each Portainer and agent VM (their docker TLS feature).
    DockerVm,
    /// Each guest, not a template, whose nameserver is the host's dnsmasq.
    Guest,
}

/// The protocol a hop uses (`tcp` unless the file says otherwise).
pub use crate::observe::Proto;

/// One documented hop.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Documented {
    /// The hop's id in docs/platform.md (`gateway-router`, `host-ca`, ...).
    pub id: String,
    /// Words for people (`{route}` and `{url}` name a route's backend).
    pub what: String,
    pub from: End,
    pub to: End,
    #[serde(default)]
    pub proto: Proto,
}

impl Documented {
    /// A certificate client dialling the CA.
    pub fn to_ca(&self) -> bool {
        self.to == End::Ca
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    hop: Vec<Documented>,
}

/// Parse the documented hops.
pub fn parse(file: &str, text: &str) -> Result<Vec<Documented>, Error> {
    let f: File = toml::from_str(text)
        .map_err(|e| Error::input(format!("{file}: {}", e.message().trim_end())))?;
    Ok(f.hop)
}
