//! Running one command inside a vantage through its transport prefix: argument vectors only,
//! stdin piped, a deadline inside the run's budget, every pipe from the guest bounded, the
//! transport in its own process group (killed whole on timeout or overflow), and
//! `qm guest exec`'s JSON wrapper taken apart.

use super::template::{display_argv, shell_quote, Kind, Template};
use serde::Deserialize;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::time::Instant;

/// What the command inside the vantage did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The program's exit code inside the vantage (None: killed by a signal).
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// A call into a vantage that failed, and the command line it ran (for people): shown as
/// `<command>: <failure>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{command}: {failure}")]
pub struct TransportError {
    /// The command line, for people.
    pub command: String,
    pub failure: Failure,
}

/// What went wrong running a command in a vantage: the transport could not start, timed out,
/// answered too much or in a shape it should not, or the command exited with an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("empty command")]
    EmptyCommand,
    /// The transport's program could not be started.
    #[error("cannot start `{program}`: {error}")]
    Spawn { program: String, error: String },
    /// No answer by the run's deadline; the call was killed with its process group.
    #[error("no answer within {:.1}s, the run's deadline (killed with its process group)", .waited.as_secs_f64())]
    TimedOut { waited: Duration },
    /// stdout or stderr carried more than the bound; the call was killed.
    #[error("the guest's answer exceeded {limit} bytes (killed with its process group)")]
    TooLarge { limit: usize },
    /// Reading the transport's output failed.
    #[error("reading its output: {0}")]
    Read(String),
    /// The transport (or the command in the vantage) exited with an error: its status (None:
    /// killed by a signal) and its stderr, already bounded by [`brief`].
    #[error("exit {}: {stderr}", code_str(*.code))]
    Exited { code: Option<i32>, stderr: String },
    /// `qm guest exec` printed something that is not its JSON status (the first 200
    /// characters).
    #[error("unexpected output from qm guest exec ({error}): {head}")]
    QmUnparsable { error: String, head: String },
    /// `qm guest exec` gave up before the program in the guest exited.
    #[error("the guest program had not exited when qm guest exec gave up (raise --timeout)")]
    QmNotExited,
    /// The guest agent truncated the program's output.
    #[error("the guest agent truncated the program's output")]
    QmTruncated,
}

impl Failure {
    /// A command that exited with an error, its stderr bounded for messages.
    pub fn exited(out: &Output) -> Failure {
        Failure::Exited {
            code: out.code,
            stderr: brief(&out.stderr),
        }
    }
}

impl Output {
    /// This output as an error of `command` unless it succeeded.
    pub fn ok_or_exited(self, command: impl Into<String>) -> Result<Output, TransportError> {
        if self.success() {
            Ok(self)
        } else {
            Err(TransportError {
                command: command.into(),
                failure: Failure::exited(&self),
            })
        }
    }
}

/// How long a transport call may take and how much it may print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The call is killed (with its whole process group) at this instant.
    pub deadline: Instant,
    /// Each of stdout and stderr may carry at most this many bytes.
    pub max_output: usize,
}

impl Limits {
    /// A deadline `timeout` from now.
    pub fn within(timeout: Duration, max_output: usize) -> Limits {
        Limits {
            deadline: Instant::now() + timeout,
            max_output,
        }
    }

    /// Time left until the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The same deadline with another output bound.
    pub fn with_output(self, max_output: usize) -> Limits {
        Limits { max_output, ..self }
    }
}

/// A transport bound to one vantage.
#[derive(Debug, Clone)]
pub struct Transport {
    pub template: Template,
    pub kind: Kind,
    pub id: Option<u32>,
    /// The Proxmox node the vantage runs on (`{node}` in templates).
    pub node: String,
}

impl Transport {
    /// The prefix words for this vantage.
    pub fn prefix(&self) -> Vec<String> {
        self.template.prefix_on(self.kind, self.id, &self.node)
    }

    /// The prefix for people (`ip netns exec phx-102`).
    pub fn via(&self) -> String {
        display_argv(&self.prefix())
    }

    /// The full argument vector to run `cmd` in the vantage (`timeout`: what `qm guest exec`
    /// is told to wait).
    pub fn argv(&self, cmd: &[String], with_stdin: bool, timeout: Duration) -> Vec<String> {
        let mut argv = self.prefix();
        let mut words = cmd.to_vec();
        if self.template.is_qm() {
            // Options go before the `--` that ends qm's own arguments.
            let mut opts = vec![
                "--timeout".to_string(),
                timeout.as_secs().max(1).to_string(),
            ];
            if with_stdin {
                opts.push("--pass-stdin".into());
                opts.push("1".into());
            }
            let at = argv.iter().rposition(|w| w == "--").unwrap_or(argv.len());
            let tail = argv.split_off(at);
            argv.extend(opts);
            if tail.is_empty() {
                argv.push("--".into());
            } else {
                argv.extend(tail);
            }
        }
        if self.template.remote_shell() {
            // The far side's shell joins the words: each is quoted (qm's options above are
            // plain words and read the same either way).
            words = words.iter().map(|w| quote_always(w)).collect();
        }
        argv.extend(words);
        argv
    }

    /// Run `cmd` in the vantage, feeding `stdin`, within `limits`.
    pub async fn run(
        &self,
        cmd: &[String],
        stdin: Option<&[u8]>,
        limits: Limits,
    ) -> Result<Output, TransportError> {
        let argv = self.argv(cmd, stdin.is_some(), limits.remaining());
        let raw = exec(&argv, stdin, limits).await?;
        if !self.template.is_qm() {
            return Ok(raw);
        }
        let command = display_argv(&argv);
        let raw = raw.ok_or_exited(command.clone())?;
        parse_qm_output(&raw.stdout).map_err(|failure| TransportError { command, failure })
    }
}

/// Quote a word for the remote shell, even a plain one (`'agent'`): a word that reaches a shell
/// is never read as anything but itself.
fn quote_always(w: &str) -> String {
    let q = shell_quote(w);
    if q.starts_with('\'') {
        q
    } else {
        format!("'{q}'")
    }
}

/// A transport's stderr for a message: trimmed, and at most 2,000 characters.
pub fn brief(stderr: &str) -> String {
    const MAX: usize = 2000;
    let t = stderr.trim();
    match t.char_indices().nth(MAX) {
        Some((at, _)) => format!("{} [... {} more bytes]", &t[..at], t.len() - at),
        None => t.to_string(),
    }
}

/// An exit status for people: the code, or `by signal`.
pub fn code_str(c: Option<i32>) -> String {
    c.map(|c| c.to_string())
        .unwrap_or_else(|| "by signal".into())
}

/// Kills the transport's whole process group (the transport and whatever it started) when
/// dropped: on success, on timeout, on overflow, and when the run's budget aborts the task.
struct Group(Option<rustix::process::Pid>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // ESRCH (the group is gone already) is the normal case after a clean exit.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Why a pipe stopped being read.
enum Pipe {
    Io(std::io::Error),
    Over,
}

/// Read a pipe to its end, refusing more than `limit` bytes.
async fn read_capped<R: AsyncRead + Unpin>(pipe: Option<R>, limit: usize) -> Result<Vec<u8>, Pipe> {
    let mut buf = Vec::new();
    if let Some(p) = pipe {
        p.take(limit as u64 + 1)
            .read_to_end(&mut buf)
            .await
            .map_err(Pipe::Io)?;
    }
    if buf.len() > limit {
        return Err(Pipe::Over);
    }
    Ok(buf)
}

/// Run an argument vector (never a shell) in its own process group, within `limits`: past the
/// deadline, or when stdout or stderr carries more than `limits.max_output` bytes, the whole
/// group is killed and the call is an error.
pub async fn exec(
    argv: &[String],
    stdin: Option<&[u8]>,
    limits: Limits,
) -> Result<Output, TransportError> {
    let started = Instant::now();
    let command = display_argv(argv);
    let err = |failure: Failure| TransportError {
        command: command.clone(),
        failure,
    };
    let Some(prog) = argv.first() else {
        return Err(err(Failure::EmptyCommand));
    };
    let mut cmd = Command::new(prog);
    cmd.args(&argv[1..])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        err(Failure::Spawn {
            program: prog.clone(),
            error: e.to_string(),
        })
    })?;
    let _group = Group(
        child
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(id as i32)),
    );
    let feed = {
        let input = stdin.map(<[u8]>::to_vec);
        let pipe = child.stdin.take();
        async move {
            if let (Some(mut pipe), Some(input)) = (pipe, input) {
                // A child that exits without reading gives EPIPE: its exit status tells the story.
                let _ = pipe.write_all(&input).await;
                let _ = pipe.shutdown().await;
            }
            Ok::<(), Pipe>(())
        }
    };
    let (out, errp) = (child.stdout.take(), child.stderr.take());
    let limit = limits.max_output;
    let run = async {
        let ((), out, errp) =
            tokio::try_join!(feed, read_capped(out, limit), read_capped(errp, limit))?;
        let status = child.wait().await.map_err(Pipe::Io)?;
        Ok::<_, Pipe>((status, out, errp))
    };
    match tokio::time::timeout_at(limits.deadline, run).await {
        Err(_) => Err(err(Failure::TimedOut {
            waited: started.elapsed(),
        })),
        Ok(Err(Pipe::Over)) => Err(err(Failure::TooLarge { limit })),
        Ok(Err(Pipe::Io(e))) => Err(err(Failure::Read(e.to_string()))),
        Ok(Ok((status, out, errp))) => Ok(Output {
            code: status.code(),
            stdout: out,
            stderr: String::from_utf8_lossy(&errp).into_owned(),
        }),
    }
}

/// `qm guest exec` prints the guest agent's `guest-exec-status` as JSON, with `out-data` and
/// `err-data` already decoded from base64 by Proxmox.
#[derive(Debug, Deserialize)]
struct QmStatus {
    #[serde(default)]
    exited: serde_json::Value,
    #[serde(default)]
    exitcode: Option<i64>,
    #[serde(default, rename = "out-data")]
    out_data: Option<String>,
    #[serde(default, rename = "err-data")]
    err_data: Option<String>,
    #[serde(default)]
    signal: Option<i64>,
    #[serde(default, rename = "out-truncated")]
    out_truncated: serde_json::Value,
}

fn truthy(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(n) => n.as_i64().unwrap_or(0) != 0,
        serde_json::Value::String(s) => s == "1" || s == "true",
        _ => false,
    }
}

/// Take `qm guest exec`'s JSON apart into the guest program's exit code and output.
pub fn parse_qm_output(stdout: &[u8]) -> Result<Output, Failure> {
    let text = String::from_utf8_lossy(stdout);
    let st: QmStatus = serde_json::from_str(text.trim()).map_err(|e| Failure::QmUnparsable {
        error: e.to_string(),
        head: text.chars().take(200).collect(),
    })?;
    if !truthy(&st.exited) {
        return Err(Failure::QmNotExited);
    }
    if truthy(&st.out_truncated) {
        return Err(Failure::QmTruncated);
    }
    let code = match (st.exitcode, st.signal) {
        (Some(c), _) => Some(c as i32),
        (None, _) => None,
    };
    Ok(Output {
        code,
        stdout: st.out_data.unwrap_or_default().into_bytes(),
        stderr: st.err_data.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(template: &str, kind: Kind, id: u32, node: &str) -> Transport {
        Transport {
            template: Template::parse(template).unwrap(),
            kind,
            id: Some(id),
            node: node.into(),
        }
    }

    fn lim(ms: u64) -> Limits {
        Limits::within(Duration::from_millis(ms), 64 * 1024)
    }

    #[test]
    fn qm_json_is_taken_apart() {
        let o = parse_qm_output(br#"{"exitcode":0,"exited":1,"out-data":"{\"version\":1}\n"}"#)
            .unwrap();
        assert_eq!(o.code, Some(0));
        assert_eq!(o.stdout, b"{\"version\":1}\n");
        let o = parse_qm_output(
            br#"{ "err-data" : "sh: 1: phoenix-doctor: not found\n", "exitcode" : 127, "exited" : 1 }"#,
        )
        .unwrap();
        assert_eq!(o.code, Some(127));
        assert!(o.stderr.contains("not found"));
        assert!(o.stdout.is_empty());
        let o = parse_qm_output(br#"{"exited":true,"signal":9}"#).unwrap();
        assert_eq!(o.code, None);
    }

    #[test]
    fn qm_json_failures_are_errors() {
        let e = parse_qm_output(br#"{"exited":0}"#).unwrap_err();
        assert_eq!(e, Failure::QmNotExited);
        assert!(e.to_string().contains("had not exited"));
        let e = parse_qm_output(b"QEMU guest agent is not running").unwrap_err();
        assert!(
            matches!(&e, Failure::QmUnparsable { head, .. } if head == "QEMU guest agent is not running"),
            "{e:?}"
        );
        assert!(e
            .to_string()
            .starts_with("unexpected output from qm guest exec ("));
        assert_eq!(
            parse_qm_output(br#"{"exited":1,"exitcode":0,"out-truncated":1}"#),
            Err(Failure::QmTruncated)
        );
    }

    #[test]
    fn qm_options_go_before_the_double_dash() {
        let t = transport("qm", Kind::Vm, 1001, "pve1");
        let argv = t.argv(
            &["pd".into(), "agent".into()],
            true,
            Duration::from_secs(20),
        );
        assert_eq!(
            argv,
            [
                "qm",
                "guest",
                "exec",
                "1001",
                "--timeout",
                "20",
                "--pass-stdin",
                "1",
                "--",
                "pd",
                "agent"
            ]
        );
        let argv = t.argv(
            &["cat".into(), "/etc/hosts".into()],
            false,
            Duration::from_secs(5),
        );
        assert_eq!(
            argv,
            [
                "qm",
                "guest",
                "exec",
                "1001",
                "--timeout",
                "5",
                "--",
                "cat",
                "/etc/hosts"
            ]
        );
    }

    #[test]
    fn ssh_quotes_the_remote_words() {
        let t = transport("ssh", Kind::Lxc, 102, "pve1");
        let argv = t.argv(
            &["/opt/p d".into(), "agent".into()],
            true,
            Duration::from_secs(5),
        );
        assert_eq!(argv[argv.len() - 3..], ["lxc-102", "'/opt/p d'", "'agent'"]);
    }

    #[test]
    fn qm_through_a_remote_node_gets_its_options_and_quoted_words() {
        let t = transport(crate::vantage::cluster::REMOTE_QM, Kind::Vm, 1001, "pve3");
        assert!(t.template.is_qm() && t.template.remote_shell());
        let argv = t.argv(
            &["/opt/p d".into(), "agent".into()],
            true,
            Duration::from_secs(20),
        );
        assert_eq!(
            argv,
            [
                "ssh",
                "-o",
                "BatchMode=yes",
                "root@pve3",
                "qm",
                "guest",
                "exec",
                "1001",
                "--timeout",
                "20",
                "--pass-stdin",
                "1",
                "--",
                "'/opt/p d'",
                "'agent'"
            ]
        );
    }

    #[tokio::test]
    async fn exec_runs_argv_without_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pwned");
        let word = format!("x; touch {}", marker.display());
        let o = exec(&["echo".into(), word.clone()], None, lim(5000))
            .await
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), word);
        assert!(!marker.exists());
        let o = exec(&["cat".into()], Some(b"in"), lim(5000)).await.unwrap();
        assert_eq!(o.stdout, b"in");
        let e = exec(&["/nonexistent/prog".into()], None, lim(5000))
            .await
            .unwrap_err();
        assert!(
            matches!(&e.failure, Failure::Spawn { program, .. } if program == "/nonexistent/prog")
        );
        assert!(
            e.to_string()
                .starts_with("/nonexistent/prog: cannot start `/nonexistent/prog`: "),
            "{e}"
        );
        let e = exec(&["sleep".into(), "5".into()], None, lim(200))
            .await
            .unwrap_err();
        assert!(
            matches!(e.failure, Failure::TimedOut { waited } if waited >= Duration::from_millis(200))
        );
        assert!(e.to_string().contains("no answer within 0."), "{e}");
    }

    #[test]
    fn stderr_in_messages_is_brief() {
        assert_eq!(brief("  no such guest\n"), "no such guest");
        let long = "é".repeat(2500);
        let b = brief(&long);
        assert!(b.starts_with(&"é".repeat(2000)));
        assert!(
            b.ends_with("[... 1000 more bytes]"),
            "{}",
            &b[b.len() - 40..]
        );
    }

    #[tokio::test]
    async fn an_endless_answer_is_cut_at_the_limit() {
        let started = std::time::Instant::now();
        let e = exec(
            &["yes".into()],
            None,
            Limits::within(Duration::from_secs(20), 4096),
        )
        .await
        .unwrap_err();
        assert_eq!(e.failure, Failure::TooLarge { limit: 4096 }, "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // stderr is bounded too
        let argv: Vec<String> = ["sh", "-c", "yes >&2"].map(String::from).to_vec();
        let e = exec(&argv, None, Limits::within(Duration::from_secs(20), 4096))
            .await
            .unwrap_err();
        assert_eq!(e.failure, Failure::TooLarge { limit: 4096 }, "{e}");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_grandchildren_too() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 1000 & echo $! > {}; wait", pidfile.display());
        let argv: Vec<String> = vec!["sh".into(), "-c".into(), script];
        let e = exec(&argv, None, lim(500)).await.unwrap_err();
        assert!(matches!(e.failure, Failure::TimedOut { .. }), "{e}");
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        let proc = format!("/proc/{}", pid.trim());
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while std::path::Path::new(&proc).exists()
            && !std::fs::read_to_string(format!("{proc}/stat"))
                .unwrap_or_default()
                .contains(") Z")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the transport's grandchild {pid} survived the timeout"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
