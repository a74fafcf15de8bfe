//! The tool's own failures (never network failures, which are observations), typed by the layer
//! that found them so a caller can tell which: a config file (with its file, line and JSON
//! pointer), a trace that cannot be planned, other bad input, or the tool itself. The library says
//! what [`Kind`] of failure an error is; the binary maps kinds to exit codes.

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
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A platform config, stack, site or trace-definition file is malformed or inconsistent.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A trace cannot be planned: an unknown target, or a hop its definition cannot resolve.
    #[error("{0}")]
    Plan(String),
    /// Other bad input (arguments, a baseline, a saved run). The message names the file or
    /// option and what was expected.
    #[error("{0}")]
    Input(String),
    /// The tool could not do its job (I/O, runtime).
    #[error("{0}")]
    Tool(String),
}

/// Whether a failure is the user's input or the tool's own limit; the binary maps the first to
/// exit 2 and the second to exit 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad input: a config, a trace definition, an argument, a file the user named.
    Input,
    /// The tool could not judge.
    Tool,
}

/// Where in which file a config error is, and what was expected there. Shown as
/// `file[:line[:column]][: pointer]: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file as the user knows it (relative to the config dir when inside it).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known (syntax errors).
    pub column: Option<usize>,
    /// The JSON pointer (or TOML key path) of the value, when there is one.
    pub pointer: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ConfigError {
    /// An error about `file` as a whole.
    pub fn new(file: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.into(),
            line: None,
            column: None,
            pointer: None,
            message: message.into(),
        }
    }

    /// At this line.
    pub fn at_line(mut self, line: Option<usize>) -> ConfigError {
        self.line = line;
        self
    }

    /// At this column of the line.
    pub fn at_column(mut self, column: usize) -> ConfigError {
        self.column = Some(column);
        self
    }

    /// At this JSON pointer.
    pub fn at_pointer(mut self, pointer: impl Into<String>) -> ConfigError {
        self.pointer = Some(pointer.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        if let Some(p) = &self.pointer {
            write!(f, ": {p}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Error {
    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }
    pub fn tool(msg: impl Into<String>) -> Self {
        Error::Tool(msg.into())
    }
    pub fn plan(msg: impl Into<String>) -> Self {
        Error::Plan(msg.into())
    }

    /// Input or the tool's own failure.
    pub fn kind(&self) -> Kind {
        match self {
            Error::Config(_) | Error::Plan(_) | Error::Input(_) => Kind::Input,
            Error::Tool(_) => Kind::Tool,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_name_file_line_column_and_pointer() {
        let e = ConfigError::new(
            "phoenix_lxc_configs.json",
            "expected a number, found a string",
        );
        assert_eq!(
            e.to_string(),
            "phoenix_lxc_configs.json: expected a number, found a string"
        );
        let e = e.at_line(Some(12)).at_pointer("/lxc_configs/101/memory_mb");
        assert_eq!(
            e.to_string(),
            "phoenix_lxc_configs.json:12: /lxc_configs/101/memory_mb: expected a number, found a string"
        );
        let e = ConfigError::new("a.json", "malformed JSON: x")
            .at_line(Some(3))
            .at_column(7);
        assert_eq!(e.to_string(), "a.json:3:7: malformed JSON: x");
        let e = Error::from(e);
        assert_eq!(e.kind(), Kind::Input);
        assert!(matches!(&e, Error::Config(c) if c.line == Some(3)));
        assert_eq!(Error::tool("x").kind(), Kind::Tool);
        assert_eq!(Error::plan("no such target").kind(), Kind::Input);
    }
}
