//! Trace definitions (`probes/*.toml`) resolved against the model into concrete steps.
//!
//! A [`Plan`] is pure data: every step names its vantage, target, layer, expectation,
//! provenance and prerequisites. Building a plan sends nothing.

use crate::config::Provenance;
use crate::observe::Layer;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

pub use crate::observe::VantageRef;

/// Which certificates a TLS step trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Trust {
    /// Verify the chain against these PEM trust anchors.
    Ca { file: PathBuf },
    /// A documented self-signed server (the Portainer agent): the handshake must succeed and
    /// the leaf must name one of `names` (DNS names or IP literals); the chain is not verified.
    SelfSigned { names: Vec<String> },
    /// Do not verify (record the chain only).
    None,
}

/// A client certificate and key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What to send, and what the step itself checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProbeSpec {
    /// Query `server` directly for `name` (A records); the answer must equal `expect`
    /// (empty `expect` = any answer). `system` also reads the vantage's hosts file and resolv.conf.
    Dns {
        name: String,
        server: SocketAddr,
        expect: Vec<IpAddr>,
        #[serde(default)]
        system: bool,
    },
    /// Open a TCP connection.
    Tcp { addr: SocketAddr },
    /// TLS handshake with `sni`, then verify with `trust`.
    Tls {
        addr: SocketAddr,
        sni: String,
        trust: Trust,
    },
    /// Does the server demand a client certificate, and does it accept `identity`?
    Mtls {
        addr: SocketAddr,
        sni: String,
        trust: Trust,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<Identity>,
        /// The server must require a client certificate.
        #[serde(default)]
        require: bool,
    },
    /// An HTTP request to `url`, connecting to `connect` (like curl `--resolve`).
    Http {
        url: String,
        connect: SocketAddr,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trust: Option<Trust>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<Identity>,
        /// Acceptable statuses (empty = any 2xx).
        #[serde(default)]
        expect_status: Vec<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_body: Option<String>,
    },
}

impl ProbeSpec {
    pub fn layer(&self) -> Layer {
        match self {
            ProbeSpec::Dns { .. } => Layer::Dns,
            ProbeSpec::Tcp { .. } => Layer::Tcp,
            ProbeSpec::Tls { .. } => Layer::Tls,
            ProbeSpec::Mtls { .. } => Layer::Mtls,
            ProbeSpec::Http { .. } => Layer::Http,
        }
    }

    /// The address the probe sends packets to (checked against the scope).
    pub fn target_addr(&self) -> SocketAddr {
        match self {
            ProbeSpec::Dns { server, .. } => *server,
            ProbeSpec::Tcp { addr }
            | ProbeSpec::Tls { addr, .. }
            | ProbeSpec::Mtls { addr, .. } => *addr,
            ProbeSpec::Http { connect, .. } => *connect,
        }
    }
}

/// One concrete check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Unique in the plan, e.g. `gateway.tls` or `router-portainer.tcp`.
    pub id: String,
    /// The hop this step belongs to (a hop is judged by its own layers in order).
    pub hop: String,
    /// Where the traffic starts.
    pub from: VantageRef,
    /// The component the hop reaches (`nginx`, `traefik`, `portainer`, ...).
    pub to: String,
    pub layer: Layer,
    pub probe: ProbeSpec,
    /// The expectation in words, e.g. `A 10.0.0.102` or `chain verifies to phoenix_root_ca.crt`.
    pub expect: String,
    /// Where each expected value came from.
    #[serde(default)]
    pub provenance: Vec<Provenance>,
    /// Steps that must succeed first; if one fails this step is `blocked`.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// For requests through proxies: the hops (in order, nearest first) that the request
    /// passes through behind this hop. A proxy error seen here is a symptom of one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub through: Vec<String>,
}

/// A hop of a trace: from a vantage to a component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    pub id: String,
    pub from: VantageRef,
    pub to: String,
    /// A name for the source in diagrams (`nginx` for lxc:101); empty = the vantage itself.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from_label: String,
    /// Words for people: `host → NGINX gateway :443`.
    pub title: String,
    /// The request path the hop serves: [`TARGET_PATH`] for the target's own request, another
    /// label (`deploy`, `ca`) for the platform's other paths, empty when the trace marks none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
}

/// The `path` of the hops that carry the target's own request.
pub const TARGET_PATH: &str = "target";

/// The resolved plan for one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub target: String,
    /// Hops in documented order (upstream first).
    pub hops: Vec<Hop>,
    /// Steps in execution order (a step's prerequisites come before it).
    pub steps: Vec<Step>,
}

pub mod build;
/// Trace definitions, read from the hop catalogue.
pub use crate::hops::traces as defs;
pub mod render;

pub use crate::hops::traces::{load_defs, HopDef, TraceDef};
pub use build::{build, build_many, targets};
