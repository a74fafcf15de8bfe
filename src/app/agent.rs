//! `agent`: run a job of steps from stdin, observations to stdout.

use crate::cli::GlobalArgs;
use crate::error::{Error, Result};

pub fn agent(_g: &GlobalArgs) -> Result<u8> {
    Err(Error::tool("agent: not built yet"))
}
