//! One probe per kind (dns, tcp, tls, mtls, http); each returns an observation, never a
//! network `Err`.

use crate::observe::Observation;
use crate::plan::Step;
use std::path::PathBuf;
use std::time::Duration;

/// The system files that describe a vantage's own name resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemFiles {
    pub hosts_file: PathBuf,
    pub resolv_conf: PathBuf,
}

impl Default for SystemFiles {
    fn default() -> Self {
        SystemFiles {
            hosts_file: PathBuf::from("/etc/hosts"),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
        }
    }
}

/// What every probe needs besides its step.
#[derive(Debug, Clone)]
pub struct ProbeCtx {
    /// Timeout for each phase (connect, handshake, first byte ...).
    pub timeout: Duration,
    /// Bodies are read up to this many bytes.
    pub body_limit: usize,
    /// The vantage's hosts file and resolv.conf (for DNS steps with `system`).
    pub system: SystemFiles,
}

impl Default for ProbeCtx {
    fn default() -> Self {
        ProbeCtx {
            timeout: Duration::from_secs(2),
            body_limit: 64 * 1024,
            system: SystemFiles::default(),
        }
    }
}

/// Run one step's probe from here (stub until the probes land).
pub async fn run(ctx: &ProbeCtx, step: &Step) -> Observation {
    let _ = ctx;
    Observation::tool_error(&step.id, "probe", "probe not built yet")
}
