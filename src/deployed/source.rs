//! Where deployed files are read from: a source of files per vantage (read-only, bounded), and
//! the operator's copy of them (`--deployed DIR`: `DIR/host/etc/...`, `DIR/lxc-101/etc/...`).

use crate::fsutil::{read_bounded_string, FileKind};
use crate::observe::VantageRef;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Most files one glob may name (a directory of thousands of files is not a config dir).
pub const MAX_GLOB_FILES: usize = 4096;

/// One file as read from a vantage.
#[derive(Debug, Clone, PartialEq)]
pub enum FileRead {
    /// Its text.
    Text {
        path: String,
        text: String,
        /// When it was last written, when the source can say.
        mtime: Option<SystemTime>,
    },
    /// It does not exist there (a generator that never ran, an include of nothing).
    Missing { path: String },
    /// It exists but could not be read: why (permission, size, not text, transport failure).
    Unreadable { path: String, why: String },
}

impl FileRead {
    pub fn path(&self) -> &str {
        match self {
            FileRead::Text { path, .. }
            | FileRead::Missing { path }
            | FileRead::Unreadable { path, .. } => path,
        }
    }
}

/// A source of deployed files, per vantage.
pub trait FileSource {
    /// Read `paths` at `v`. A `*` in the last component of a path is a glob: every matching
    /// file, sorted by name (none when the directory does not exist). One result per file.
    fn read(&self, v: VantageRef, paths: &[String]) -> Vec<FileRead>;

    /// Where the files come from, in words (for reports).
    fn describe(&self) -> String;
}

/// The operator's copy of the deployed files: `<root>/<vantage dir>/<absolute path>`, where the
/// vantage dir is `host`, `lxc-<id>` or `vm-<id>` (`docs/cli.md`, drift).
#[derive(Debug, Clone)]
pub struct DirSource {
    pub root: PathBuf,
}

/// The directory of a vantage under a `--deployed` root.
pub fn vantage_dir(v: VantageRef) -> String {
    match v {
        VantageRef::Host => "host".to_string(),
        VantageRef::Lxc(id) => format!("lxc-{id}"),
        VantageRef::Vm(id) => format!("vm-{id}"),
    }
}

/// Does `name` match `pattern` (`*` any run of characters, nothing else special)?
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

impl DirSource {
    fn local(&self, v: VantageRef, path: &str) -> PathBuf {
        self.root
            .join(vantage_dir(v))
            .join(path.trim_start_matches('/'))
    }

    fn read_one(&self, shown: String, local: &Path) -> FileRead {
        match read_bounded_string(local, FileKind::Deployed) {
            Ok(text) => FileRead::Text {
                path: shown,
                text,
                mtime: std::fs::metadata(local).and_then(|m| m.modified()).ok(),
            },
            Err(e) if e.is_not_found() => FileRead::Missing { path: shown },
            Err(e) => FileRead::Unreadable {
                path: shown,
                why: e.to_string(),
            },
        }
    }

    fn glob(&self, v: VantageRef, path: &str, out: &mut Vec<FileRead>) {
        let (dir, pattern) = path.rsplit_once('/').unwrap_or(("", path));
        let local_dir = self.local(v, dir);
        let entries = match std::fs::read_dir(&local_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                out.push(FileRead::Unreadable {
                    path: path.to_string(),
                    why: format!("{}: {e}", local_dir.display()),
                });
                return;
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.') && glob_match(pattern, n))
            .take(MAX_GLOB_FILES + 1)
            .collect();
        names.sort();
        if names.len() > MAX_GLOB_FILES {
            out.push(FileRead::Unreadable {
                path: path.to_string(),
                why: format!("more than {MAX_GLOB_FILES} files match"),
            });
            return;
        }
        for n in names {
            let shown = format!("{dir}/{n}");
            let local = local_dir.join(&n);
            out.push(self.read_one(shown, &local));
        }
    }
}

impl FileSource for DirSource {
    fn read(&self, v: VantageRef, paths: &[String]) -> Vec<FileRead> {
        let mut out = Vec::new();
        for p in paths {
            let last = p.rsplit('/').next().unwrap_or(p);
            if last.contains('*') {
                self.glob(v, p, &mut out);
            } else {
                out.push(self.read_one(p.clone(), &self.local(v, p)));
            }
        }
        out
    }

    fn describe(&self) -> String {
        format!("the copy in {}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_stars_only() {
        assert!(glob_match("*.conf", "00-phoenix-internal.conf"));
        assert!(!glob_match("*.conf", "00-phoenix-internal.conf.bak"));
        assert!(glob_match("*", "gateway"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxc"));
        assert!(glob_match("gateway", "gateway"));
        assert!(!glob_match("ab*ba", "aba"));
    }

    #[test]
    fn dir_source_reads_per_vantage_and_globs() {
        let d = tempfile::tempdir().unwrap();
        let etc = d.path().join("host/etc/dnsmasq.d");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("b.conf"), "address=/b/1.2.3.4\n").unwrap();
        std::fs::write(etc.join("a.conf"), "").unwrap();
        std::fs::write(etc.join("a.conf.bak"), "").unwrap();
        let s = DirSource {
            root: d.path().to_path_buf(),
        };
        let r = s.read(
            VantageRef::Host,
            &[
                "/etc/dnsmasq.d/*.conf".to_string(),
                "/etc/dnsmasq.conf".to_string(),
                "/etc/nowhere/*".to_string(),
            ],
        );
        let paths: Vec<&str> = r.iter().map(|f| f.path()).collect();
        assert_eq!(
            paths,
            [
                "/etc/dnsmasq.d/a.conf",
                "/etc/dnsmasq.d/b.conf",
                "/etc/dnsmasq.conf"
            ]
        );
        assert!(
            matches!(&r[1], FileRead::Text { text, mtime: Some(_), .. } if text.contains("1.2.3.4"))
        );
        assert!(matches!(&r[2], FileRead::Missing { .. }));
        assert!(
            s.read(VantageRef::Lxc(101), &["/etc/x".into()])[0]
                == FileRead::Missing {
                    path: "/etc/x".into()
                }
        );
    }
}
