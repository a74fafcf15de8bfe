//! The deployed artefacts (dnsmasq records, the NGINX gateway site, Traefik's dynamic files,
//! Proxmox firewall files), read read-only through a file source, parsed with file and line,
//! and compared with what the platform's generators would write from the configs now (`drift`).

pub mod catalog;
pub mod compare;
mod compare_certs;
mod compare_fw;
mod compare_traefik;
pub mod dnsmasq;
pub mod nginx;
pub mod pvefw;
pub mod source;
pub mod traefik;

pub use compare::{drift, Artefact, DriftReport, Looks};
pub use source::{DirSource, FileRead, FileSource};

use std::time::SystemTime;

/// Where a deployed value was read: the file (as named in its guest) and the line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct At {
    pub file: String,
    pub line: u32,
}

impl At {
    pub fn new(file: &str, line: usize) -> At {
        At {
            file: file.to_string(),
            line: u32::try_from(line).unwrap_or(u32::MAX),
        }
    }
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// What loading an artefact gave: the parsed value, the files read (with their mtimes), the
/// files that do not exist, and those that could not be read (with why).
#[derive(Debug, Clone, Default)]
pub struct Loaded<T> {
    pub value: T,
    pub files: Vec<(String, Option<SystemTime>)>,
    pub missing: Vec<String>,
    pub unreadable: Vec<(String, String)>,
}

impl<T> Loaded<T> {
    /// Record one read; the text when there is one.
    pub fn take(&mut self, f: FileRead) -> Option<String> {
        match f {
            FileRead::Text { path, text, mtime } => {
                self.files.push((path, mtime));
                Some(text)
            }
            FileRead::Missing { path } => {
                self.missing.push(path);
                None
            }
            FileRead::Unreadable { path, why } => {
                self.unreadable.push((path, why));
                None
            }
        }
    }

    /// When `file` was last written, if known.
    pub fn mtime(&self, file: &str) -> Option<SystemTime> {
        self.files
            .iter()
            .find(|(p, _)| p == file)
            .and_then(|(_, t)| *t)
    }
}
