//! `lab` and `demo`: the simulated platform.

use crate::cli::{DemoArgs, GlobalArgs, LabArgs};
use crate::error::{Error, Result};

pub fn demo(_g: &GlobalArgs, _a: &DemoArgs) -> Result<u8> {
    Err(Error::tool("demo: not built yet"))
}

pub fn lab(_g: &GlobalArgs, _a: &LabArgs) -> Result<u8> {
    Err(Error::tool("lab: not built yet"))
}
