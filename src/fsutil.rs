//! Files the tool does not own: bounded reads that never block on a FIFO or a device, atomic
//! writes that never follow a symlink, and escaping of untrusted text for a terminal.
//!
//! Every read of a file that is not the tool's own (platform configs, the site file, trust
//! anchors, a guest's hosts or resolv.conf, a replay file) goes through [`read_bounded`]; every
//! file the tool writes goes through [`write_atomic`].

use std::borrow::Cow;
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// What kind of file is read, which sets its size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A platform JSON file (`etc/*.json`, `stacks/*/phoenix.json`, the certificate manifest).
    PlatformConfig,
    /// The site file `phoenix-doctor.toml` or a trace definition `probes/*.toml`.
    SiteFile,
    /// A PEM file: trust anchors, client identities.
    Pem,
    /// `/etc/hosts`, `/etc/resolv.conf` and other small system files.
    SystemFile,
    /// A deployed artefact in an operator's copy (`drift --deployed DIR`): what the platform's
    /// generators write from the configs, so it grows with them (cluster.fw and Traefik's
    /// dynamic file pass 1 MiB at about 4,000 guests).
    Deployed,
    /// A saved run (`--save-run` / `--replay`).
    SavedRun,
}

impl FileKind {
    /// The largest file of this kind the tool reads, in bytes.
    pub const fn limit(self) -> u64 {
        match self {
            FileKind::PlatformConfig => 16 << 20,
            FileKind::SiteFile => 1 << 20,
            FileKind::Pem => 1 << 20,
            FileKind::SystemFile => 1 << 20,
            FileKind::Deployed => 16 << 20,
            FileKind::SavedRun => 256 << 20,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            FileKind::PlatformConfig => "a platform config file",
            FileKind::SiteFile => "a site or trace definition file",
            FileKind::Pem => "a PEM file",
            FileKind::SystemFile => "a system file",
            FileKind::Deployed => "a deployed artefact",
            FileKind::SavedRun => "a saved run",
        }
    }
}

/// Why a bounded read failed.
#[derive(Debug)]
pub enum ReadError {
    /// Open or read failed (missing, permission denied, ...).
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not a regular file (FIFO, device, directory, socket).
    NotRegular { path: PathBuf, what: &'static str },
    /// Larger than the kind's limit.
    TooLarge {
        path: PathBuf,
        kind: FileKind,
        limit: u64,
    },
    /// Not UTF-8 (only from [`read_bounded_string`]).
    NotUtf8 { path: PathBuf },
}

impl ReadError {
    /// The file that could not be read.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::Io { path, .. }
            | ReadError::NotRegular { path, .. }
            | ReadError::TooLarge { path, .. }
            | ReadError::NotUtf8 { path } => path,
        }
    }

    /// True when the file does not exist (callers may treat a missing optional file as absent).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            ReadError::NotRegular { path, what } => {
                write!(f, "{}: is {what}, expected a regular file", path.display())
            }
            ReadError::TooLarge { path, kind, limit } => write!(
                f,
                "{}: larger than {} bytes, the limit for {}",
                path.display(),
                limit,
                kind.noun()
            ),
            ReadError::NotUtf8 { path } => write!(f, "{}: is not UTF-8 text", path.display()),
        }
    }
}

impl std::error::Error for ReadError {}

/// True for the null device (character device 1:3), read as an empty file.
fn is_dev_null(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    meta.file_type().is_char_device() && meta.rdev() == libc::makedev(1, 3)
}

fn file_type_name(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Read at most `kind.limit()` bytes of a regular file. The open never blocks (a FIFO is opened
/// non-blocking and refused), a symlink is followed to its target (which must be a regular file),
/// and a file over the limit is refused rather than truncated.
pub fn read_bounded(path: &Path, kind: FileKind) -> Result<Vec<u8>, ReadError> {
    read_bounded_limit(path, kind, kind.limit())
}

/// [`read_bounded`] with an explicit limit (tests and callers with a tighter bound).
pub fn read_bounded_limit(path: &Path, kind: FileKind, limit: u64) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if is_dev_null(&meta) {
        // `--hosts-file /dev/null`: the usual way to say "an empty file"; it never blocks.
        return Ok(Vec::new());
    }
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            what: file_type_name(&meta.file_type()),
        });
    }
    let too_large = || ReadError::TooLarge {
        path: path.to_path_buf(),
        kind,
        limit,
    };
    if meta.len() > limit {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut buf).map_err(io)?;
    if buf.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(buf)
}

/// [`read_bounded`] for text files.
pub fn read_bounded_string(path: &Path, kind: FileKind) -> Result<String, ReadError> {
    let bytes = read_bounded(path, kind)?;
    String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// How [`write_atomic`] treats an existing file at the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Refuse to replace it.
    Refuse,
    /// Replace a regular file (never a symlink, which is refused either way).
    Replace,
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader sees the old file or the new one, never a part. A symlink at `path` is refused (it is
/// never followed); with [`Existing::Refuse`] so is any existing file. The file gets `mode`.
pub fn write_atomic(
    path: &Path,
    bytes: &[u8],
    existing: Existing,
    mode: u32,
) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "{} is a symlink; refusing to write through it",
                    path.display()
                ),
            ))
        }
        Ok(m) if !m.file_type().is_file() => {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("{} exists and is not a regular file", path.display()),
            ))
        }
        Ok(_) if existing == Existing::Refuse => {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "{} already exists; refusing to overwrite it",
                    path.display()
                ),
            ))
        }
        _ => {}
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".phoenix-doctor-")
        .tempfile_in(dir)?;
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    match existing {
        Existing::Refuse => tmp.persist_noclobber(path).map(|_| ()).map_err(|e| e.error),
        Existing::Replace => tmp.persist(path).map(|_| ()).map_err(|e| e.error),
    }
}

/// Escape control characters (C0 but newline and tab, DEL, C1) so untrusted text (guest output,
/// config strings, replayed files) cannot drive the operator's terminal. Printable text,
/// including non-ASCII, is unchanged; `\x1b` becomes the four characters `\x1b`.
pub fn escape_terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            let n = c as u32;
            if n <= 0xff {
                out.push_str(&format!("\\x{n:02x}"));
            } else {
                out.push_str(&format!("\\u{{{n:x}}}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Like [`escape_terminal`], and newlines and tabs too: for text that must stay on one line.
pub fn escape_terminal_line(s: &str) -> Cow<'_, str> {
    if !s
        .chars()
        .any(|c| needs_escape(c) || c == '\n' || c == '\t' || c == '\r')
    {
        return escape_terminal(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push_str(&escape_terminal(c.encode_utf8(&mut [0; 4]))),
        }
    }
    Cow::Owned(out)
}

/// The only escape sequences the tool itself writes: the table's colours (red, green, yellow,
/// bold, reset). [`escape_terminal_output`] keeps exactly these when colour is on.
const OWN_SGR: &[&str] = &["\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[1m", "\x1b[0m"];

/// [`escape_terminal`] for a whole rendered human-format output (a table, a plan, `show`'s
/// files): every control character but newline and tab is escaped; with `keep_colour`, the
/// tool's own colour codes survive (and nothing else: a guest's ESC sequence never does).
pub fn escape_terminal_output(s: &str, keep_colour: bool) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == '\x1b' && keep_colour {
            if let Some(sgr) = OWN_SGR.iter().find(|q| rest.starts_with(**q)) {
                out.push_str(sgr);
                rest = &rest[sgr.len()..];
                continue;
            }
        }
        out.push_str(&escape_terminal(c.encode_utf8(&mut [0; 4])));
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    match c {
        '\n' | '\t' => false,
        c => {
            c.is_control()
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let st = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(st.success());
        let err = read_bounded(&fifo, FileKind::PlatformConfig).unwrap_err();
        assert!(
            matches!(err, ReadError::NotRegular { what: "a FIFO", .. }),
            "{err}"
        );
    }

    #[test]
    fn dev_null_reads_as_an_empty_file() {
        assert!(read_bounded(Path::new("/dev/null"), FileKind::SystemFile)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn devices_and_dirs_are_refused() {
        let err = read_bounded(Path::new("/dev/zero"), FileKind::SystemFile).unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = read_bounded(dir.path(), FileKind::SystemFile).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
    }

    #[test]
    fn oversized_file_is_refused_not_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::write(&p, vec![b'a'; 101]).unwrap();
        let err = read_bounded_limit(&p, FileKind::SystemFile, 100).unwrap_err();
        assert!(
            matches!(err, ReadError::TooLarge { limit: 100, .. }),
            "{err}"
        );
        assert_eq!(
            read_bounded_limit(&p, FileKind::SystemFile, 101)
                .unwrap()
                .len(),
            101
        );
    }

    #[test]
    fn write_atomic_never_follows_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(write_atomic(&link, b"x", Existing::Replace, 0o600).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        let out = dir.path().join("out");
        write_atomic(&out, b"one", Existing::Refuse, 0o600).unwrap();
        assert!(write_atomic(&out, b"two", Existing::Refuse, 0o600).is_err());
        write_atomic(&out, b"three", Existing::Replace, 0o600).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"three");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn escapes_terminal_controls() {
        assert_eq!(escape_terminal("plain é"), "plain é");
        assert_eq!(
            escape_terminal("a\x1b]0;pwned\x07b"),
            "a\\x1b]0;pwned\\x07b"
        );
        assert_eq!(escape_terminal("nul\0"), "nul\\x00");
        assert_eq!(escape_terminal("c1\u{9b}"), "c1\\x9b");
        assert_eq!(escape_terminal("two\nlines"), "two\nlines");
        assert_eq!(escape_terminal_line("two\nlines\x1b"), "two\\nlines\\x1b");
        assert_eq!(escape_terminal("rtl\u{202e}"), "rtl\\u{202e}");
    }

    #[test]
    fn whole_outputs_keep_only_the_tools_own_colours() {
        let s = "\x1b[31mERR\x1b[0m \x1b]0;title\x07 \x1b[2J\x1b[31m";
        assert_eq!(
            escape_terminal_output(s, true),
            "\x1b[31mERR\x1b[0m \\x1b]0;title\\x07 \\x1b[2J\x1b[31m"
        );
        assert_eq!(
            escape_terminal_output(s, false),
            "\\x1b[31mERR\\x1b[0m \\x1b]0;title\\x07 \\x1b[2J\\x1b[31m"
        );
        assert_eq!(escape_terminal_output("a\tb\nc", false), "a\tb\nc");
    }
}
