//! `probe dns|tcp|tls|mtls|http`: one probe by hand.

use crate::cli::{GlobalArgs, ProbeCommand};
use crate::error::{Error, Result};

pub fn probe(_g: &GlobalArgs, _p: &ProbeCommand) -> Result<u8> {
    Err(Error::tool("probe: not built yet"))
}
