//! `agent`: run a job of steps from stdin (bounded), observations to stdout.

use crate::cli::GlobalArgs;
use phoenix_doctor::error::{Error, Result};
use phoenix_doctor::vantage::job::MAX_JOB_BYTES;
use std::io::{Read, Write};

pub fn agent(_g: &GlobalArgs) -> Result<u8> {
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_JOB_BYTES as u64 + 1)
        .read_to_end(&mut input)
        .map_err(|e| Error::tool(format!("agent: reading the job from stdin: {e}")))?;
    if input.len() > MAX_JOB_BYTES {
        return Err(Error::input(format!(
            "agent: the job on stdin is over {MAX_JOB_BYTES} bytes"
        )));
    }
    let out = super::runtime()?.block_on(phoenix_doctor::vantage::job::serve(&input))?;
    let mut stdout = super::stdout();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::tool(format!("agent: writing the result: {e}")))?;
    Ok(0)
}
