//! Reading files from a guest, read-only and bounded: the request (absolute paths, a glob only
//! on the last component, expanded in the guest), the reader here or under a simulated guest's
//! root, the one `sh -c` that reads them all through a transport, and its delimited answer.

use crate::fsutil::{read_bounded_string, FileKind, ReadError};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One file read from a guest, or why it could not be read (later a cannot-judge, never a
/// divergence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FileRead {
    Text { path: String, text: String },
    Unreadable { path: String, why: String },
}

impl FileRead {
    /// The file's path in the guest (for a glob that could not be expanded: the pattern).
    pub fn path(&self) -> &str {
        match self {
            FileRead::Text { path, .. } | FileRead::Unreadable { path, .. } => path,
        }
    }

    /// The text, when the file was read.
    pub fn text(&self) -> Option<&str> {
        match self {
            FileRead::Text { text, .. } => Some(text),
            FileRead::Unreadable { .. } => None,
        }
    }

    /// As a deployed-artefact read: a missing file is `Missing`, a glob over a directory that
    /// does not exist names no file (None).
    pub fn into_deployed(self) -> Option<crate::deployed::FileRead> {
        use crate::deployed::FileRead as D;
        match self {
            FileRead::Text { path, text } => Some(D::Text {
                path,
                text,
                mtime: None,
            }),
            FileRead::Unreadable { why, .. } if why == "no such directory" => None,
            FileRead::Unreadable { path, why } if why.starts_with("no such file") => {
                Some(D::Missing { path })
            }
            FileRead::Unreadable { path, why } => Some(D::Unreadable { path, why }),
        }
    }

    fn unreadable(path: &str, why: impl Into<String>) -> FileRead {
        FileRead::Unreadable {
            path: path.to_string(),
            why: why.into(),
        }
    }
}

/// Every path of `paths` unreadable for the same reason.
pub fn all_unreadable(paths: &[String], why: &str) -> Vec<FileRead> {
    paths.iter().map(|p| FileRead::unreadable(p, why)).collect()
}

/// The most paths one request may name.
pub const MAX_PATHS: usize = 256;
/// The longest path a request may name.
pub const MAX_PATH_LEN: usize = 4096;
/// The most files one answer may hold (globs included).
pub const MAX_FILES: usize = 512;
/// Each file is read up to the limit of a system file (1 MiB); a larger one is unreadable.
pub const FILE_LIMIT: u64 = FileKind::SystemFile.limit();
/// The most bytes of file text one answer may hold; files past it are unreadable.
pub const ANSWER_LIMIT: u64 = 8 << 20;

/// The most bytes a transport may print for a read: the texts, plus one header per file.
pub fn transport_limit(paths: &[String]) -> usize {
    let headers = MAX_FILES * 128 + paths.iter().map(|p| p.len() + 128).sum::<usize>();
    ANSWER_LIMIT as usize + headers + (64 << 10)
}

/// The most bytes of JSON an agent's `files` may take (a control character is escaped in six).
pub fn json_limit(paths: &[String]) -> usize {
    transport_limit(paths).saturating_mul(6)
}

/// True when `path`'s last component is a glob (`*` or `?`).
pub fn is_glob(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|l| l.contains(['*', '?']))
}

/// Why a requested path is refused (None: fine): absolute, no `.`/`..` component, no control
/// character, no `[`/`\`, a glob only on the last component.
pub fn check_path(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some("expected an absolute path".into());
    }
    if path.len() > MAX_PATH_LEN {
        return Some(format!("longer than {MAX_PATH_LEN} bytes"));
    }
    if path
        .chars()
        .any(|c| c.is_control() || c == '[' || c == '\\')
    {
        return Some("a control character, `[` or `\\` in the path".into());
    }
    let parts: Vec<&str> = path[1..].split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Some("an empty, `.` or `..` component".into());
    }
    if parts[..parts.len() - 1]
        .iter()
        .any(|p| p.contains(['*', '?']))
    {
        return Some("a glob is allowed only on the last component".into());
    }
    None
}

/// Whether `name` matches the glob `pat` (`*`: any run, `?`: one character; as the shell does,
/// neither matches a leading dot).
pub fn glob_match(pat: &str, name: &str) -> bool {
    if name.starts_with('.') && !pat.starts_with('.') {
        return false;
    }
    let (p, n): (Vec<char>, Vec<char>) = (pat.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether the requested `pattern` covers the file at `path` (itself, or a match of its glob).
pub fn covers(pattern: &str, path: &str) -> bool {
    if pattern == path {
        return true;
    }
    if !is_glob(pattern) {
        return false;
    }
    match (pattern.rsplit_once('/'), path.rsplit_once('/')) {
        (Some((pd, pl)), Some((d, l))) => pd == d && glob_match(pl, l),
        _ => false,
    }
}

/// Why a bounded read failed, without the path on this machine (it names the guest's).
fn why(e: &ReadError) -> String {
    match e {
        ReadError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            "no such file".into()
        }
        ReadError::Io { source, .. } => format!("cannot be read: {source}"),
        ReadError::NotRegular { what, .. } => format!("is {what}, expected a regular file"),
        ReadError::TooLarge { limit, .. } => {
            format!("larger than {limit} bytes, the limit for a system file")
        }
        ReadError::NotUtf8 { .. } => "is not UTF-8 text".into(),
    }
}

/// Keeps an answer within [`MAX_FILES`] and [`ANSWER_LIMIT`].
#[derive(Default)]
struct Budget {
    files: usize,
    bytes: u64,
}

impl Budget {
    fn admit(&mut self, path: &str, read: FileRead) -> FileRead {
        self.files += 1;
        if self.files > MAX_FILES {
            return FileRead::unreadable(
                path,
                format!("not read: the answer's bound of {MAX_FILES} files is reached"),
            );
        }
        if let FileRead::Text { text, .. } = &read {
            self.bytes += text.len() as u64;
            if self.bytes > ANSWER_LIMIT {
                self.bytes -= text.len() as u64;
                return FileRead::unreadable(
                    path,
                    format!("not read: the answer's bound of {ANSWER_LIMIT} bytes is reached"),
                );
            }
        }
        read
    }
}

/// Read `paths` (globs expanded) as a guest rooted at `root` sees them (`/` for this machine);
/// `rename` maps a guest path to the file that stands for it here (a simulated guest's
/// `/etc/hosts`), checked before the root.
pub fn read_local(
    root: &Path,
    paths: &[String],
    rename: &dyn Fn(&str) -> Option<std::path::PathBuf>,
) -> Vec<FileRead> {
    let mut out = Vec::new();
    let mut budget = Budget::default();
    let here = |p: &str| rename(p).unwrap_or_else(|| root.join(&p[1..]));
    for p in paths.iter().take(MAX_PATHS) {
        if let Some(w) = check_path(p) {
            out.push(FileRead::unreadable(p, w));
            continue;
        }
        if p == super::listeners::OWNERS && root == Path::new("/") {
            let r = FileRead::Text {
                path: p.clone(),
                text: owners_here(),
            };
            out.push(budget.admit(p, r));
            continue;
        }
        if !is_glob(p) {
            let r = match read_bounded_string(&here(p), FileKind::SystemFile) {
                Ok(text) => FileRead::Text {
                    path: p.clone(),
                    text,
                },
                Err(e) => FileRead::unreadable(p, why(&e)),
            };
            out.push(budget.admit(p, r));
            continue;
        }
        let (dir, pat) = p.rsplit_once('/').unwrap_or(("", p));
        let dir = if dir.is_empty() { "/" } else { dir };
        let entries = match std::fs::read_dir(here(dir)) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                out.push(FileRead::unreadable(p, "no such directory"));
                continue;
            }
            Err(e) => {
                out.push(FileRead::unreadable(p, format!("cannot list: {e}")));
                continue;
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| glob_match(pat, n))
            .take(MAX_FILES + 1)
            .collect();
        names.sort();
        for n in names {
            let path = format!("{}/{n}", dir.trim_end_matches('/'));
            let r = match read_bounded_string(&here(&path), FileKind::SystemFile) {
                Ok(text) => FileRead::Text {
                    path: path.clone(),
                    text,
                },
                Err(e) => FileRead::unreadable(&path, why(&e)),
            };
            out.push(budget.admit(&path, r));
        }
    }
    refuse_excess(paths, &mut out);
    out
}

/// The owners of this machine's listening sockets (see [`super::listeners::OWNERS`]).
fn owners_here() -> String {
    use super::listeners;
    let table = |p: &str| {
        read_bounded_string(Path::new(p), FileKind::SystemFile)
            .map(|t| listeners::parse_proc_net_tcp(&t))
            .unwrap_or_default()
    };
    let mut l = table("/proc/net/tcp");
    l.extend(table("/proc/net/tcp6"));
    listeners::owners_here(&l)
}

fn refuse_excess(paths: &[String], out: &mut Vec<FileRead>) {
    for p in paths.iter().skip(MAX_PATHS) {
        out.push(FileRead::unreadable(
            p,
            format!("not read: a request names at most {MAX_PATHS} paths"),
        ));
    }
}

/// The script that reads every path given after its three arguments (nonce, per-file limit,
/// answer limit) and prints, per file, `<nonce> <F|E> <path bytes> <body bytes>\n<path><body>`:
/// `F` with the text, `E` with why it could not be read. Globs are expanded by the shell; a
/// glob that matches nothing prints nothing. It only reads (`test`, `head`, `printf`; for
/// [`super::listeners::OWNERS`], `ss -Hltnp` when the guest has it).
pub const READ_SCRIPT: &str = r#"export LC_ALL=C
n=$1; lim=$2; max=$3; shift 3
tot=0; cnt=0
rec() { printf '%s %s %s %s\n%s%s' "$n" "$1" "${#2}" "${#3}" "$2" "$3"; }
one() {
  cnt=$((cnt+1))
  if [ "$cnt" -gt MAXFILES ]; then rec E "$1" "not read: the answer's bound of MAXFILES files is reached"; return; fi
  if [ ! -e "$1" ]; then rec E "$1" "no such file"; return; fi
  if [ -d "$1" ]; then rec E "$1" "is a directory, expected a regular file"; return; fi
  if [ ! -f "$1" ]; then rec E "$1" "is not a regular file (a FIFO, device or socket)"; return; fi
  if c=$(head -c $((lim+1)) -- "$1" 2>/dev/null && echo x); then
    c=${c%x}
    if [ "${#c}" -gt "$lim" ]; then rec E "$1" "larger than $lim bytes, the limit for a system file"; return; fi
    if [ $((tot+${#c})) -gt "$max" ]; then rec E "$1" "not read: the answer's bound of $max bytes is reached"; return; fi
    tot=$((tot+${#c}))
    rec F "$1" "$c"
  else
    e=$(head -c 1 -- "$1" 2>&1 >/dev/null)
    rec E "$1" "cannot be read: ${e:-head failed}"
  fi
}
for p in "$@"; do
  case $p in
  OWNERS)
    if command -v ss >/dev/null 2>&1; then
      c=$(ss -Hltnp 2>/dev/null | head -c "$lim"); rec F "$p" "$c"
    else
      rec E "$p" "no ss in the guest to name the processes"
    fi
    ;;
  *'*'*|*'?'*)
    d=${p%/*}
    if [ ! -d "$d/" ]; then rec E "$p" "no such directory"; continue; fi
    IFS=
    for f in $p; do
      if [ -e "$f" ] || [ -L "$f" ]; then one "$f"; fi
    done
    unset IFS
    ;;
  *) one "$p" ;;
  esac
done
"#;

/// The argument vector that reads `paths` in a guest: `sh -c READ_SCRIPT sh <nonce> ...`.
/// Paths are arguments, never script text; refused paths are not sent.
pub fn read_command(nonce: &str, paths: &[String]) -> Vec<String> {
    let mut argv = vec![
        "sh".to_string(),
        "-c".to_string(),
        READ_SCRIPT
            .replace("MAXFILES", &MAX_FILES.to_string())
            .replace("OWNERS", super::listeners::OWNERS),
        "sh".to_string(),
        nonce.to_string(),
        FILE_LIMIT.to_string(),
        ANSWER_LIMIT.to_string(),
    ];
    argv.extend(
        paths
            .iter()
            .take(MAX_PATHS)
            .filter(|p| check_path(p).is_none())
            .cloned(),
    );
    argv
}

/// A fresh word the guest's files cannot predict (delimits records).
pub fn nonce() -> String {
    use sha2::{Digest, Sha256};
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let h = Sha256::digest(format!("{t}:{}:{:p}", std::process::id(), &t));
    h.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// Take [`READ_SCRIPT`]'s answer apart. Every request gets an answer: a refused path, or one
/// the output does not mention (cut, or malformed), is unreadable with the reason.
pub fn parse_answer(nonce: &str, paths: &[String], out: &[u8]) -> Vec<FileRead> {
    let mut reads = Vec::new();
    let mut rest = out;
    let mut broken: Option<String> = None;
    while !rest.is_empty() {
        match parse_record(nonce, rest) {
            Ok((r, tail)) => {
                reads.push(r);
                rest = tail;
            }
            Err(e) => {
                broken = Some(e);
                break;
            }
        }
    }
    let mut budget = Budget::default();
    let mut out: Vec<FileRead> = reads
        .into_iter()
        .map(|r| {
            let p = r.path().to_string();
            budget.admit(&p, r)
        })
        .collect();
    for p in paths.iter().take(MAX_PATHS) {
        if let Some(w) = check_path(p) {
            out.push(FileRead::unreadable(p, w));
            continue;
        }
        let mentioned = out.iter().any(|r| covers(p, r.path()));
        if !mentioned && (!is_glob(p) || broken.is_some()) {
            let why = match &broken {
                Some(b) => format!("the guest's answer was cut or malformed ({b})"),
                None => "the guest's answer does not mention this file".to_string(),
            };
            out.push(FileRead::unreadable(p, why));
        }
    }
    refuse_excess(paths, &mut out);
    out
}

/// One record of [`READ_SCRIPT`]'s answer, and what follows it.
fn parse_record<'a>(nonce: &str, s: &'a [u8]) -> Result<(FileRead, &'a [u8]), String> {
    let nl = s
        .iter()
        .take(256)
        .position(|&b| b == b'\n')
        .ok_or("a header without its end")?;
    let header = std::str::from_utf8(&s[..nl]).map_err(|_| "a header that is not text")?;
    let f: Vec<&str> = header.split(' ').collect();
    let [n, kind, plen, blen] = f[..] else {
        return Err(format!("an unexpected header `{}`", header.escape_debug()));
    };
    if n != nonce {
        return Err("a header without this run's delimiter".into());
    }
    let plen: usize = plen.parse().map_err(|_| "a bad path length")?;
    let blen: usize = blen.parse().map_err(|_| "a bad length")?;
    let body = &s[nl + 1..];
    if body.len() < plen.saturating_add(blen) {
        return Err("a record shorter than its header says".into());
    }
    let path = String::from_utf8_lossy(&body[..plen]).into_owned();
    let text = &body[plen..plen + blen];
    let rest = &body[plen + blen..];
    let read = match kind {
        "F" => match std::str::from_utf8(text) {
            Ok(t) => FileRead::Text {
                path,
                text: t.to_string(),
            },
            Err(_) => FileRead::unreadable(&path, "is not UTF-8 text"),
        },
        "E" => FileRead::unreadable(&path, String::from_utf8_lossy(text)),
        k => return Err(format!("an unknown record kind `{}`", k.escape_debug())),
    };
    Ok((read, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn globs_match_like_the_shell() {
        assert!(glob_match("*.conf", "records.conf"));
        assert!(!glob_match("*.conf", "records.conf.bak"));
        assert!(!glob_match("*.conf", ".hidden.conf"));
        assert!(glob_match("*", "gateway"));
        assert!(glob_match("a?c*", "abcdef"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*a*b", "xxaxxb"));
        assert!(covers("/etc/dnsmasq.d/*.conf", "/etc/dnsmasq.d/x.conf"));
        assert!(!covers("/etc/dnsmasq.d/*.conf", "/etc/x.conf"));
        assert!(!covers("/etc/hosts", "/etc/hosts2"));
    }

    #[test]
    fn bad_paths_are_refused_with_the_reason() {
        assert_eq!(check_path("/etc/nginx/sites-enabled/*"), None);
        for (p, want) in [
            ("etc/hosts", "absolute"),
            ("/etc/../shadow", "`..`"),
            ("/etc/*/x", "last component"),
            ("/etc/[ab]", "`[`"),
            ("/etc/a\nb", "control"),
            ("/etc//hosts", "empty"),
        ] {
            let w = check_path(p).unwrap_or_default();
            assert!(w.contains(want), "{p}: {w}");
        }
    }

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("etc/dnsmasq.d")).unwrap();
        std::fs::write(r.join("etc/dnsmasq.d/b.conf"), "address=/b/1\n").unwrap();
        std::fs::write(r.join("etc/dnsmasq.d/a.conf"), "address=/a/1\n").unwrap();
        std::fs::write(r.join("etc/dnsmasq.d/notes.txt"), "x").unwrap();
        std::fs::write(r.join("etc/dnsmasq.d/.hidden.conf"), "x").unwrap();
        std::fs::write(r.join("etc/big"), "x".repeat(FILE_LIMIT as usize + 1)).unwrap();
        std::fs::write(r.join("etc/trailing"), "one\n\n\n").unwrap();
        d
    }

    /// What every reader must answer for [`tree`], written by hand.
    fn expected() -> Vec<FileRead> {
        let text = |p: &str, t: &str| FileRead::Text {
            path: p.into(),
            text: t.into(),
        };
        vec![
            text("/etc/dnsmasq.d/a.conf", "address=/a/1\n"),
            text("/etc/dnsmasq.d/b.conf", "address=/b/1\n"),
            FileRead::unreadable("/etc/missing", "no such file"),
            FileRead::unreadable(
                "/etc/big",
                format!("larger than {FILE_LIMIT} bytes, the limit for a system file"),
            ),
            FileRead::unreadable("/etc/dnsmasq.d", "is a directory, expected a regular file"),
            text("/etc/trailing", "one\n\n\n"),
            FileRead::unreadable("/nowhere/*", "no such directory"),
            FileRead::unreadable("relative", "expected an absolute path"),
        ]
    }

    fn request() -> Vec<String> {
        s(&[
            "/etc/dnsmasq.d/*.conf",
            "/etc/missing",
            "/etc/big",
            "/etc/dnsmasq.d",
            "/etc/trailing",
            "/nowhere/*",
            "/etc/dnsmasq.d/*.none",
            "relative",
        ])
    }

    #[test]
    fn a_root_directory_is_read_as_the_guest_sees_it() {
        let d = tree();
        let got = read_local(d.path(), &request(), &|_| None);
        assert_eq!(got, expected());
        // A renamed file (a simulated guest's /etc/hosts) wins over the root.
        std::fs::write(d.path().join("h"), "127.0.0.1 x\n").unwrap();
        let h = d.path().join("h");
        let got = read_local(d.path(), &s(&["/etc/hosts"]), &|p| {
            (p == "/etc/hosts").then(|| h.clone())
        });
        assert_eq!(got[0].text(), Some("127.0.0.1 x\n"));
    }

    #[tokio::test]
    async fn the_shell_reader_answers_like_the_local_one() {
        let d = tree();
        // The same request, rooted in the temporary tree (the script sees real paths).
        let root = d.path().display().to_string();
        let rooted: Vec<String> = request()
            .iter()
            .map(|p| {
                if p.starts_with('/') {
                    format!("{root}{p}")
                } else {
                    p.clone()
                }
            })
            .collect();
        let n = nonce();
        let out = super::super::transport::exec(
            &read_command(&n, &rooted),
            None,
            super::super::Limits::within(
                std::time::Duration::from_secs(20),
                transport_limit(&rooted),
            ),
        )
        .await
        .unwrap();
        assert!(out.success(), "{}", out.stderr);
        let got: Vec<FileRead> = parse_answer(&n, &rooted, &out.stdout)
            .into_iter()
            .map(|r| match r {
                FileRead::Text { path, text } => FileRead::Text {
                    path: path.replacen(&root, "", 1),
                    text,
                },
                FileRead::Unreadable { path, why } => FileRead::Unreadable {
                    path: path.replacen(&root, "", 1),
                    why,
                },
            })
            .collect();
        assert_eq!(got, expected());
    }

    /// The owners of the listening sockets: computed by the local reader (the agent's) and by
    /// `ss -Hltnp` in the shell reader; both name this test's process for its own socket.
    #[tokio::test]
    async fn both_readers_name_the_owner_of_a_listening_socket() {
        use super::super::listeners::{self, OWNERS};
        let sock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let me = std::fs::read_to_string("/proc/self/comm").unwrap();
        let paths = s(&["/proc/net/tcp", OWNERS]);
        let l = |reads: &[FileRead]| {
            let table = listeners::parse_proc_net_tcp(reads[0].text().unwrap());
            let owners = listeners::parse_owners(reads[1].text().unwrap());
            let mine = table.into_iter().find(|l| l.addr == addr).unwrap();
            listeners::owner_of(&owners, &mine).map(str::to_string)
        };
        let local = read_local(Path::new("/"), &paths, &|_| None);
        assert_eq!(l(&local).as_deref(), Some(me.trim_end()), "{local:?}");
        let n = nonce();
        let out = super::super::transport::exec(
            &read_command(&n, &paths),
            None,
            super::super::Limits::within(
                std::time::Duration::from_secs(20),
                transport_limit(&paths),
            ),
        )
        .await
        .unwrap();
        let shell = parse_answer(&n, &paths, &out.stdout);
        assert_eq!(l(&shell).as_deref(), Some(me.trim_end()), "{shell:?}");
        // Under a simulated guest's root, the request is a file like any other.
        let d = tempfile::tempdir().unwrap();
        let got = read_local(d.path(), &s(&[OWNERS]), &|_| None);
        assert_eq!(got[0], FileRead::unreadable(OWNERS, "no such file"));
        drop(sock);
    }

    #[test]
    fn a_forged_or_cut_answer_leaves_the_rest_unreadable() {
        let n = "abc";
        let paths = s(&["/a", "/b"]);
        // File /a's text pretends to hold a record for /b with another delimiter.
        let out = b"abc F 2 14\n/axyz E 2 3\n/bno";
        let got = parse_answer(n, &paths, out);
        assert_eq!(got[0].text(), Some("xyz E 2 3\n/bno"));
        assert!(
            matches!(&got[1], FileRead::Unreadable { path, why } if path == "/b" && why.contains("does not mention")),
            "{got:?}"
        );
        let got = parse_answer(n, &paths, b"abc F 2 100\n/ashort");
        assert!(got.iter().all(|r| r.text().is_none()), "{got:?}");
        assert!(
            matches!(&got[0], FileRead::Unreadable { why, .. } if why.contains("cut or malformed")),
            "{got:?}"
        );
    }

    #[test]
    fn the_answer_is_bounded_in_files_and_bytes() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..(MAX_FILES + 3) {
            std::fs::write(d.path().join(format!("f{i:04}")), "x").unwrap();
        }
        let got = read_local(d.path(), &s(&["/*"]), &|_| None);
        assert_eq!(got.iter().filter(|r| r.text().is_some()).count(), MAX_FILES);
        assert!(
            matches!(&got[MAX_FILES], FileRead::Unreadable { why, .. } if why.contains("512 files"))
        );
        let mut b = Budget::default();
        let big = "y".repeat(FILE_LIMIT as usize);
        let n = (ANSWER_LIMIT / FILE_LIMIT) as usize;
        for i in 0..n {
            let r = b.admit(
                "/x",
                FileRead::Text {
                    path: format!("/{i}"),
                    text: big.clone(),
                },
            );
            assert!(r.text().is_some());
        }
        let r = b.admit(
            "/over",
            FileRead::Text {
                path: "/over".into(),
                text: "z".into(),
            },
        );
        assert!(matches!(r, FileRead::Unreadable { why, .. } if why.contains("bytes is reached")));
        let many: Vec<String> = (0..MAX_PATHS + 1).map(|i| format!("/p{i}")).collect();
        let got = read_local(d.path(), &many, &|_| None);
        assert!(
            matches!(got.last(), Some(FileRead::Unreadable { why, .. }) if why.contains("at most 256 paths"))
        );
    }
}
