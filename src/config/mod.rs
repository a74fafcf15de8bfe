//! Reading the platform's JSON config files as they really are, with provenance for every value.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a value came from: the file, the JSON pointer inside it, and the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Provenance {
    pub file: String,
    pub pointer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

impl Provenance {
    pub fn new(file: impl Into<String>, pointer: impl Into<String>, line: Option<u32>) -> Self {
        Provenance {
            file: file.into(),
            pointer: pointer.into(),
            line,
        }
    }
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{} {}", self.file, l, self.pointer),
            None => write!(f, "{} {}", self.file, self.pointer),
        }
    }
}
