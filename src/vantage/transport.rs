//! Running one command inside a vantage through its transport prefix: argument vectors only,
//! stdin piped, a deadline, and `qm guest exec`'s JSON wrapper taken apart.

use super::template::{display_argv, shell_quote, Kind, Style, Template};
use serde::Deserialize;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

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

/// The transport itself failed (it could not start, timed out, or its wrapper said no).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    /// The command line, for people.
    pub command: String,
    pub message: String,
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.command, self.message)
    }
}

/// A transport bound to one vantage.
#[derive(Debug, Clone)]
pub struct Transport {
    pub template: Template,
    pub kind: Kind,
    pub id: Option<u32>,
}

impl Transport {
    /// The prefix words for this vantage.
    pub fn prefix(&self) -> Vec<String> {
        self.template.prefix(self.kind, self.id)
    }

    /// The prefix for people (`ip netns exec phx-102`).
    pub fn via(&self) -> String {
        display_argv(&self.prefix())
    }

    /// The full argument vector to run `cmd` in the vantage.
    pub fn argv(&self, cmd: &[String], with_stdin: bool, timeout: Duration) -> Vec<String> {
        let mut argv = self.prefix();
        match self.template.style() {
            Style::Exec => argv.extend(cmd.iter().cloned()),
            Style::Ssh => argv.extend(cmd.iter().map(|w| shell_quote(w))),
            Style::QmGuestExec => {
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
                argv.extend(cmd.iter().cloned());
            }
        }
        argv
    }

    /// Run `cmd` in the vantage, feeding `stdin`, within `timeout`.
    pub async fn run(
        &self,
        cmd: &[String],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, TransportError> {
        let argv = self.argv(cmd, stdin.is_some(), timeout);
        let raw = exec(&argv, stdin, timeout + Duration::from_secs(5)).await?;
        if self.template.style() != Style::QmGuestExec {
            return Ok(raw);
        }
        let command = display_argv(&argv);
        if !raw.success() {
            return Err(TransportError {
                command,
                message: format!("exit {}: {}", code_str(raw.code), raw.stderr.trim()),
            });
        }
        parse_qm_output(&raw.stdout).map_err(|message| TransportError { command, message })
    }
}

fn code_str(c: Option<i32>) -> String {
    c.map(|c| c.to_string())
        .unwrap_or_else(|| "by signal".into())
}

/// Run an argument vector (never a shell) with a deadline; the child is killed on timeout.
pub async fn exec(
    argv: &[String],
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output, TransportError> {
    let command = display_argv(argv);
    let err = |message: String| TransportError {
        command: command.clone(),
        message,
    };
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| err(format!("cannot start `{}`: {e}", argv[0])))?;
    let feed = {
        let input = stdin.map(<[u8]>::to_vec);
        let pipe = child.stdin.take();
        async move {
            if let (Some(mut pipe), Some(input)) = (pipe, input) {
                // A child that exits without reading gives EPIPE: its exit status tells the story.
                let _ = pipe.write_all(&input).await;
                let _ = pipe.shutdown().await;
            }
        }
    };
    let run = async {
        let ((), out) = tokio::join!(feed, child.wait_with_output());
        out
    };
    match tokio::time::timeout(timeout, run).await {
        Err(_) => Err(err(format!(
            "no answer within {:.1}s (killed)",
            timeout.as_secs_f64()
        ))),
        Ok(Err(e)) => Err(err(format!("waiting for it: {e}"))),
        Ok(Ok(o)) => Ok(Output {
            code: o.status.code(),
            stdout: o.stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
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
pub fn parse_qm_output(stdout: &[u8]) -> Result<Output, String> {
    let text = String::from_utf8_lossy(stdout);
    let st: QmStatus = serde_json::from_str(text.trim()).map_err(|e| {
        format!(
            "unexpected output from qm guest exec ({e}): {}",
            text.chars().take(200).collect::<String>()
        )
    })?;
    if !truthy(&st.exited) {
        return Err(
            "the guest program had not exited when qm guest exec gave up (raise --timeout)".into(),
        );
    }
    if truthy(&st.out_truncated) {
        return Err("the guest agent truncated the program's output".into());
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
        assert!(parse_qm_output(br#"{"exited":0}"#)
            .unwrap_err()
            .contains("had not exited"));
        assert!(parse_qm_output(b"QEMU guest agent is not running")
            .unwrap_err()
            .contains("unexpected output"));
        assert!(
            parse_qm_output(br#"{"exited":1,"exitcode":0,"out-truncated":1}"#)
                .unwrap_err()
                .contains("truncated")
        );
    }

    #[test]
    fn qm_options_go_before_the_double_dash() {
        let t = Transport {
            template: Template::parse("qm").unwrap(),
            kind: Kind::Vm,
            id: Some(1001),
        };
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
        let t = Transport {
            template: Template::parse("ssh").unwrap(),
            kind: Kind::Lxc,
            id: Some(102),
        };
        let argv = t.argv(
            &["/opt/p d".into(), "agent".into()],
            true,
            Duration::from_secs(5),
        );
        assert_eq!(argv[argv.len() - 3..], ["lxc-102", "'/opt/p d'", "agent"]);
    }

    #[tokio::test]
    async fn exec_runs_argv_without_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pwned");
        let word = format!("x; touch {}", marker.display());
        let o = exec(&["echo".into(), word.clone()], None, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), word);
        assert!(!marker.exists());
        let o = exec(&["cat".into()], Some(b"in"), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(o.stdout, b"in");
        let e = exec(&["/nonexistent/prog".into()], None, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(e.message.contains("cannot start"));
        let e = exec(
            &["sleep".into(), "5".into()],
            None,
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert!(e.message.contains("no answer"), "{e}");
    }
}
