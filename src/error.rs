//! The tool's own failures (never network failures, which are observations) and their exit codes.

use std::fmt;

/// Exit codes shared by every subcommand.
pub mod exit {
    /// Every hop behaved as the intended state says.
    pub const HEALTHY: u8 = 0;
    /// At least one divergence was found.
    pub const DIVERGED: u8 = 1;
    /// Usage or configuration error.
    pub const USAGE: u8 = 2;
    /// The tool (or a vantage) could not judge.
    pub const CANNOT_JUDGE: u8 = 3;
}

/// A failure of the tool itself: bad input, a missing file, an I/O error on our side.
#[derive(Debug)]
pub enum Error {
    /// Bad input (config, probes, arguments): exit code 2. The message names the file,
    /// the JSON path or line, and what was expected.
    Input(String),
    /// The tool could not do its job (I/O, runtime): exit code 3.
    Tool(String),
}

impl Error {
    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }
    pub fn tool(msg: impl Into<String>) -> Self {
        Error::Tool(msg.into())
    }
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input(_) => exit::USAGE,
            Error::Tool(_) => exit::CANNOT_JUDGE,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input(m) | Error::Tool(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
