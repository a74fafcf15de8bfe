//! `trace`, `check`, `explain`: plan → execute → diagnose → render.

use crate::cli::{CheckArgs, ExplainArgs, GlobalArgs, TraceArgs};
use crate::error::{Error, Result};

pub fn trace(_g: &GlobalArgs, _a: &TraceArgs) -> Result<u8> {
    Err(Error::tool("trace: not built yet"))
}

pub fn check(_g: &GlobalArgs, _a: &CheckArgs) -> Result<u8> {
    Err(Error::tool("check: not built yet"))
}

pub fn explain(_g: &GlobalArgs, _a: &ExplainArgs) -> Result<u8> {
    Err(Error::tool("explain: not built yet"))
}
