//! `agent`: run a job of steps from stdin, observations to stdout.

use crate::cli::GlobalArgs;
use crate::error::{Error, Result};
use std::io::{Read, Write};

pub fn agent(_g: &GlobalArgs) -> Result<u8> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| Error::tool(format!("agent: reading the job from stdin: {e}")))?;
    let out = super::runtime()?.block_on(crate::vantage::job::serve(&input))?;
    let mut stdout = super::stdout();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::tool(format!("agent: writing the result: {e}")))?;
    Ok(0)
}
