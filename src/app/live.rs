//! Building and executing live plans from the configs (shared by trace, check and demo).

use crate::cli::{GlobalArgs, RunArgs};
use crate::diagnose::catalog::CodeInfo;
use crate::engine::SavedRun;
use crate::error::{Error, Result};

/// Every target `check --all` traces.
pub(crate) fn all_targets(_g: &GlobalArgs) -> Result<Vec<String>> {
    Err(Error::tool("check --all: not built yet"))
}

/// Plan and execute each target once.
pub(crate) fn execute(
    _g: &GlobalArgs,
    _targets: &[String],
    _run: &RunArgs,
) -> Result<Vec<SavedRun>> {
    Err(Error::tool("live traces: not built yet"))
}

/// The catalogue behind `explain`.
pub(crate) fn catalogue() -> Vec<CodeInfo> {
    super::trace::live_codes()
}
