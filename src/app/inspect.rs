//! `plan`, `lint`, `show`: commands that read the configs and send nothing.

use crate::cli::{GlobalArgs, PlanArgs, ShowArgs};
use crate::error::{Error, Result};

pub fn plan(_g: &GlobalArgs, _a: &PlanArgs) -> Result<u8> {
    Err(Error::tool("plan: not built yet"))
}

pub fn lint(_g: &GlobalArgs) -> Result<u8> {
    Err(Error::tool("lint: not built yet"))
}

pub fn show(_g: &GlobalArgs, _a: &ShowArgs) -> Result<u8> {
    Err(Error::tool("show: not built yet"))
}
