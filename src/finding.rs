//! Findings: a divergence between intended and actual (or a static defect), with a stable code.
//!
//! Both `lint` (static) and `diagnose` (live) produce findings; the catalogue of codes behind
//! `explain CODE` and `docs/findings.md` lives in `diagnose::catalog`.

use crate::config::Provenance;
use crate::observe::Layer;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable code, e.g. `PD-DNS-001`.
    pub code: String,
    pub severity: Severity,
    /// The hop it is attributed to (empty for findings that are not about one hop).
    #[serde(default)]
    pub hop: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<Layer>,
    /// One line for people.
    pub title: String,
    pub expected: String,
    pub actual: String,
    /// Supporting facts: probe output, symptoms seen through proxies, config lines.
    #[serde(default)]
    pub evidence: Vec<String>,
    #[serde(default)]
    pub provenance: Vec<Provenance>,
    pub hint: String,
}
