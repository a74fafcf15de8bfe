//! Runs a plan: bounded concurrency, per-layer timeouts, one overall budget, dependency
//! skipping (a step whose prerequisite failed is `blocked`), and the scope guard.

use crate::observe::Observation;
use crate::plan::Plan;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;

/// The networks the engine may send packets to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub allowed: Vec<IpNet>,
}

impl Scope {
    /// True when `ip` lies inside one of the allowed networks.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|n| n.contains(&ip))
    }
}

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct Settings {
    pub concurrency: usize,
    /// Timeout for each layer of each step.
    pub timeout: Duration,
    /// Overall budget for the whole run.
    pub budget: Duration,
    pub scope: Scope,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            concurrency: 64,
            timeout: Duration::from_secs(2),
            budget: Duration::from_secs(30),
            scope: Scope::default(),
        }
    }
}

/// Everything one execution of a plan observed; saved with `--save-run`, replayed with `--replay`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub schema_version: u32,
    pub target: String,
    /// RFC 3339 start time.
    pub started_at: String,
    pub duration_ms: f64,
    /// One per plan step, in plan order.
    pub observations: Vec<Observation>,
}

/// Current version of the saved-run format.
pub const RUN_SCHEMA_VERSION: u32 = 1;

/// What `--save-run` writes and `--replay` reads: for each traced target, the plan, the
/// observations, and the static findings, so a replay needs neither the network nor the configs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRuns {
    pub schema_version: u32,
    pub runs: Vec<SavedRun>,
}

/// One target's saved run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRun {
    pub plan: Plan,
    pub run: Run,
    #[serde(default)]
    pub static_findings: Vec<crate::finding::Finding>,
}

/// Execute `plan` (stub until the engine lands: every step is reported as a tool error).
pub async fn execute(plan: &Plan, settings: &Settings) -> Run {
    let _ = settings;
    Run {
        schema_version: RUN_SCHEMA_VERSION,
        target: plan.target.clone(),
        started_at: String::new(),
        duration_ms: 0.0,
        observations: plan
            .steps
            .iter()
            .map(|s| Observation::tool_error(&s.id, "engine", "engine not built yet"))
            .collect(),
    }
}
