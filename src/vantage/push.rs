//! `--push`: copying this executable into a guest as its agent, through `pct push` or the
//! guest's transport (stdin, in chunks for `qm guest exec`), and checking every byte arrived.

use super::template;
use super::transport::{self, Limits, Output, Transport, TransportError};
use std::path::{Path, PathBuf};

/// Why the agent could not be copied into a guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// A call into the guest failed, or a command there exited with an error.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// This executable's path is unknown.
    #[error("finding this executable: {0}")]
    CurrentExe(String),
    /// This executable could not be read.
    #[error("reading {}: {error}", .path.display())]
    ReadExe { path: PathBuf, error: String },
    /// The copy in the guest does not have every byte (`got`: its size, when `wc -c` said;
    /// else `wc`'s stderr, bounded).
    #[error("{command}: the copy in the guest has {}, expected {want} (stdin through this transport is not binary-safe; push with another transport, e.g. --via vm=ssh)", size_text(*.got, .stderr))]
    ShortCopy {
        command: String,
        got: Option<usize>,
        stderr: String,
        want: usize,
    },
}

fn size_text(got: Option<usize>, stderr: &str) -> String {
    match got {
        Some(g) => format!("{g} bytes"),
        None => format!("unknown ({stderr}) bytes"),
    }
}

/// Copy `exe` into the vantage as `dest`; returns how, for people.
pub async fn push(
    t: &Transport,
    exe: &Path,
    dest: &str,
    limits: Limits,
) -> Result<String, PushError> {
    if t.template.is_pct() {
        let id = t.id.map(|i| i.to_string()).unwrap_or_default();
        let argv: Vec<String> = vec![
            "pct".into(),
            "push".into(),
            id,
            exe.display().to_string(),
            dest.to_string(),
            "--perms".into(),
            "0755".into(),
        ];
        let cmd = template::display_argv(&argv);
        transport::exec(&argv, None, limits)
            .await?
            .ok_or_exited(cmd.clone())?;
        return Ok(cmd);
    }
    let bin = tokio::fs::read(exe).await.map_err(|e| PushError::ReadExe {
        path: exe.to_path_buf(),
        error: e.to_string(),
    })?;
    let sh = |script: &str| -> Vec<String> {
        vec![
            "sh".into(),
            "-c".into(),
            script.into(),
            "sh".into(),
            dest.to_string(),
        ]
    };
    let check = |cmd: &[String], out: Result<Output, TransportError>| -> Result<(), PushError> {
        let command = template::display_argv(&t.argv(cmd, true, limits.remaining()));
        out?.ok_or_exited(command)?;
        Ok(())
    };
    if t.template.is_qm() {
        // The guest agent takes stdin as `input-data` (at most 1 MiB per call): append in chunks.
        const CHUNK: usize = 512 * 1024;
        for (i, chunk) in bin.chunks(CHUNK).enumerate() {
            let cmd = sh(if i == 0 {
                "cat > \"$1\""
            } else {
                "cat >> \"$1\""
            });
            check(&cmd, t.run(&cmd, Some(chunk), limits).await)?;
        }
        let cmd = vec!["chmod".into(), "0755".into(), dest.to_string()];
        check(&cmd, t.run(&cmd, None, limits).await)?;
        verify_size(t, dest, bin.len(), limits).await?;
        return Ok(format!(
            "{} sh -c 'cat >> \"$1\"' in 512 KiB chunks",
            t.via()
        ));
    }
    let cmd = sh("cat > \"$1\" && chmod 0755 \"$1\"");
    check(&cmd, t.run(&cmd, Some(&bin), limits).await)?;
    verify_size(t, dest, bin.len(), limits).await?;
    Ok(template::display_argv(&t.argv(
        &cmd,
        true,
        limits.remaining(),
    )))
}

/// After a copy through stdin, the file in the guest must have every byte.
async fn verify_size(
    t: &Transport,
    dest: &str,
    want: usize,
    limits: Limits,
) -> Result<(), PushError> {
    let cmd: Vec<String> = vec![
        "sh".into(),
        "-c".into(),
        "wc -c < \"$1\"".into(),
        "sh".into(),
        dest.to_string(),
    ];
    let out = t.run(&cmd, None, limits).await?;
    let got = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<usize>()
        .ok();
    if out.success() && got == Some(want) {
        return Ok(());
    }
    Err(PushError::ShortCopy {
        command: template::display_argv(&t.argv(&cmd, false, limits.remaining())),
        got,
        stderr: transport::brief(&out.stderr),
        want,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vantage::template::{Kind, Template};
    use crate::vantage::transport::Failure;
    use std::time::Duration;

    fn via(template: &str) -> Transport {
        Transport {
            template: Template::parse(template).unwrap(),
            kind: Kind::Lxc,
            id: Some(9),
            node: "pve1".into(),
        }
    }

    #[test]
    fn push_errors_say_which() {
        let e = PushError::ShortCopy {
            command: "sh -c x".into(),
            got: Some(3),
            stderr: String::new(),
            want: 5,
        };
        assert!(
            e.to_string()
                .starts_with("sh -c x: the copy in the guest has 3 bytes, expected 5 ("),
            "{e}"
        );
        let e = PushError::from(TransportError {
            command: "pct push 9 a b".into(),
            failure: Failure::Exited {
                code: Some(2),
                stderr: "no such container".into(),
            },
        });
        assert_eq!(e.to_string(), "pct push 9 a b: exit 2: no such container");
    }

    #[tokio::test]
    async fn a_copy_through_stdin_is_checked_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("exe");
        std::fs::write(&exe, b"0123456789").unwrap();
        let dest = dir.path().join("copy");
        let limits = Limits::within(Duration::from_secs(20), 64 * 1024);
        // A transport that runs here: the copy arrives whole.
        let how = push(&via("env --"), &exe, &dest.display().to_string(), limits)
            .await
            .unwrap();
        assert!(how.starts_with("env -- sh -c"), "{how}");
        assert_eq!(std::fs::read(&dest).unwrap(), b"0123456789");
        // A transport that drops stdin: the size check refuses the copy.
        let e = push(
            &via("sh -c 'exec \"$@\" </dev/null' sh"),
            &exe,
            &dest.display().to_string(),
            limits,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                e,
                PushError::ShortCopy {
                    got: Some(0),
                    want: 10,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = push(&via("env --"), &dir.path().join("none"), "x", limits)
            .await
            .unwrap_err();
        assert!(matches!(e, PushError::ReadExe { .. }), "{e:?}");
    }
}
