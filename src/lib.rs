//! phoenix-doctor: traces the Phoenix Hypervisor's documented hops and reports where
//! the intended state (the platform's JSON configs) and the actual state diverge.
//!
//! Data flows one way (see `docs/architecture.md`):
//! `config` → `model` → `plan` → `engine` (with `probe`, `vantage`) → `observe` → `diagnose` → `report`.
//! `lint` reads the model alone; `lab` (cargo feature `lab`, on by default) simulates the platform
//! on loopback and nothing above imports it.

// Functions stay under 120 lines (`clippy.toml`); tests may run longer.
#![warn(clippy::too_many_lines)]

pub mod baseline;
pub mod config;
pub mod deployed;
pub mod diagnose;
pub mod engine;
pub mod error;
pub mod finding;
pub mod fsutil;
pub mod hops;
#[cfg(feature = "lab")]
pub mod lab;
pub mod lint;
pub mod model;
pub mod observe;
pub mod plan;
pub mod probe;
pub mod report;
pub mod vantage;
