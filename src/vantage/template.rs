//! Transport templates: a command prefix split into words once, with `{id}`, `{kind}`, `{name}`
//! and `{node}` substituted inside words. Nothing here ever goes through a shell.

use std::fmt;

/// The kind of vantage a template serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Host,
    Lxc,
    Vm,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::Lxc => "lxc",
            Kind::Vm => "vm",
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "host" => Ok(Kind::Host),
            "lxc" => Ok(Kind::Lxc),
            "vm" => Ok(Kind::Vm),
            _ => Err(format!(
                "unknown vantage kind `{s}`: expected `host`, `lxc` or `vm`"
            )),
        }
    }
}

/// The default LXC transport.
pub const PCT: &str = "pct exec {id} --";
/// The default VM transport (QEMU guest agent; output is JSON).
pub const QM: &str = "qm guest exec {id} --";
/// The ssh preset: `host`, `lxc-102`, `vm-1001` ... are host aliases in `~/.ssh/config`.
pub const SSH: &str = "ssh -o BatchMode=yes -o ConnectTimeout=5 {name}";

/// Programs that pass the words after them to a shell on the far side: a template naming one of
/// them anywhere is treated as a remote shell.
pub const REMOTE_SHELLS: &[&str] = &[
    "ssh", "autossh", "rsh", "slogin", "dbclient", "plink", "sshpass", "vzctl",
];

/// How the words after the prefix reach the guest's program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The prefix execs the remaining words as they are (`pct exec`, `ip netns exec`, ...).
    Exec,
    /// `qm guest exec`: stdin goes through `--pass-stdin 1`, output comes back as JSON.
    QmGuestExec,
    /// `ssh`: the remote side joins the words into a shell command, so each is quoted.
    Ssh,
}

/// A transport prefix, split into words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The template as given (for messages).
    pub source: String,
    words: Vec<String>,
}

impl Template {
    /// Parse a template or a preset name (`pct`, `qm`, `ssh`).
    pub fn parse(s: &str) -> Result<Template, String> {
        let src = match s.trim() {
            "pct" => PCT,
            "qm" => QM,
            "ssh" => SSH,
            other => other,
        };
        let words = split_words(src)?;
        if words.is_empty() {
            return Err("empty transport template".into());
        }
        if words.len() == 1 && words[0].contains(char::is_whitespace) {
            return Err(format!(
                "the template `{src}` is a single quoted word; quote it once for your shell only, e.g. --via lxc='pct exec {{id}} --'"
            ));
        }
        Ok(Template {
            source: src.to_string(),
            words,
        })
    }

    /// The words with `{id}`, `{kind}` and `{name}` substituted (`{kind}`: host, lxc, vm;
    /// `{id}`: the guest id, or `host` for the host; `{name}`: `lxc-102`, `vm-1001` or `host`),
    /// and `{node}` left as it is (see [`Template::prefix_on`]).
    pub fn prefix(&self, kind: Kind, id: Option<u32>) -> Vec<String> {
        let (id, name) = match id {
            Some(i) => (i.to_string(), format!("{}-{i}", kind.as_str())),
            None => ("host".to_string(), "host".to_string()),
        };
        self.words
            .iter()
            .map(|w| {
                w.replace("{id}", &id)
                    .replace("{kind}", kind.as_str())
                    .replace("{name}", &name)
            })
            .collect()
    }

    /// [`Template::prefix`] with `{node}` substituted too: the Proxmox node the vantage runs on.
    pub fn prefix_on(&self, kind: Kind, id: Option<u32>, node: &str) -> Vec<String> {
        self.prefix(kind, id)
            .into_iter()
            .map(|w| w.replace("{node}", node))
            .collect()
    }

    /// True when a remote shell (`ssh` and its kin) is any word of the prefix: the words after
    /// the prefix are then quoted for the far side's shell.
    pub fn remote_shell(&self) -> bool {
        self.words.iter().any(|w| REMOTE_SHELLS.contains(&base(w)))
    }

    /// True when the prefix runs `qm guest exec` (behind wrappers or a remote shell too): its
    /// options go before the `--` and its output is the guest agent's JSON.
    pub fn is_qm(&self) -> bool {
        self.words
            .windows(3)
            .any(|w| base(&w[0]) == "qm" && w[1] == "guest" && w[2] == "exec")
    }

    /// How the prefix passes a command on. A remote shell (`ssh` and its kin) anywhere in the
    /// prefix makes it [`Style::Ssh`], whatever wraps it (`timeout 20 ssh ...`, `env ssh ...`,
    /// `sudo -u u ssh ...`): the remote side joins the words into a shell command line, so every
    /// word after the prefix is quoted. `qm guest exec` is recognised after wrappers too.
    pub fn style(&self) -> Style {
        if self.remote_shell() {
            Style::Ssh
        } else if self.is_qm() {
            Style::QmGuestExec
        } else {
            Style::Exec
        }
    }

    /// True for `pct ...` templates (pushing uses `pct push`).
    pub fn is_pct(&self) -> bool {
        self.words[0].rsplit('/').next() == Some("pct")
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A program's name without its directory.
fn base(w: &str) -> &str {
    w.rsplit('/').next().unwrap_or("")
}

/// Split a template into words like a POSIX shell would, but only quoting is understood:
/// single quotes, double quotes (with `\"` and `\\`), and backslash escapes. Shell operators
/// (`;`, `|`, `&&`, `$(...)`) are plain characters inside words: nothing is ever run by a shell.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated single quote in `{s}`")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(format!("unterminated double quote in `{s}`")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated double quote in `{s}`")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => {
                    in_word = true;
                    cur.push(c);
                }
                None => return Err(format!("trailing backslash in `{s}`")),
            },
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Quote one word for a POSIX shell (used only for the remote side of ssh, and for display).
pub fn shell_quote(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%{}".contains(c))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

/// A command line for people: words quoted where needed, joined with spaces.
pub fn display_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_plain_and_quoted_words() {
        assert_eq!(
            split_words("pct exec {id} --").unwrap(),
            ["pct", "exec", "{id}", "--"]
        );
        assert_eq!(
            split_words(r#"  ssh -o 'ProxyCommand=nc %h 22' "root@a b" x\ y "q\"t" "#).unwrap(),
            [
                "ssh",
                "-o",
                "ProxyCommand=nc %h 22",
                "root@a b",
                "x y",
                "q\"t"
            ]
        );
        assert_eq!(split_words("a ''").unwrap(), ["a", ""]);
        assert_eq!(split_words("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn shell_operators_stay_inside_words() {
        assert_eq!(
            split_words("echo {id}; touch /tmp/x && $(rm -rf /) | cat").unwrap(),
            ["echo", "{id};", "touch", "/tmp/x", "&&", "$(rm", "-rf", "/)", "|", "cat"]
        );
    }

    #[test]
    fn rejects_unterminated_quotes() {
        assert!(split_words("ssh 'abc")
            .unwrap_err()
            .contains("single quote"));
        assert!(split_words("ssh \"abc")
            .unwrap_err()
            .contains("double quote"));
        assert!(split_words("ssh abc\\").unwrap_err().contains("backslash"));
        assert!(Template::parse("   ").is_err());
        assert!(Template::parse("'pct exec {id} --'")
            .unwrap_err()
            .contains("single quoted word"));
    }

    #[test]
    fn substitutes_id_inside_words() {
        let t = Template::parse("ip netns exec phx-{id}").unwrap();
        assert_eq!(
            t.prefix(Kind::Lxc, Some(102)),
            ["ip", "netns", "exec", "phx-102"]
        );
        assert_eq!(
            t.prefix(Kind::Host, None),
            ["ip", "netns", "exec", "phx-host"]
        );
        let t = Template::parse("ssh").unwrap();
        assert_eq!(t.style(), Style::Ssh);
        assert_eq!(t.prefix(Kind::Vm, Some(1001)).last().unwrap(), "vm-1001");
        assert_eq!(t.prefix(Kind::Host, None).last().unwrap(), "host");
        let t = Template::parse("x {kind}:{id} {name}").unwrap();
        assert_eq!(t.prefix(Kind::Lxc, Some(9)), ["x", "lxc:9", "lxc-9"]);
        assert_eq!(Template::parse("qm").unwrap().style(), Style::QmGuestExec);
        assert_eq!(
            Template::parse("/usr/sbin/qm guest exec {id} --")
                .unwrap()
                .style(),
            Style::QmGuestExec
        );
        assert_eq!(Template::parse("pct").unwrap().style(), Style::Exec);
        assert!(Template::parse("pct").unwrap().is_pct());
    }

    #[test]
    fn a_remote_shell_is_found_behind_wrappers() {
        for t in [
            "ssh lxc-{id}",
            "timeout 20 ssh lxc-{id}",
            "env ssh lxc-{id}",
            "env FOO=1 /usr/bin/ssh -o BatchMode=yes lxc-{id}",
            "nice -n 5 ssh lxc-{id}",
            "sudo -u admin ssh lxc-{id}",
            "stdbuf -o0 ssh lxc-{id}",
            "ionice -c3 timeout 5 ssh {name}",
            "sshpass -f pw ssh root@{name}",
        ] {
            assert_eq!(Template::parse(t).unwrap().style(), Style::Ssh, "{t}");
        }
        for t in [
            "pct exec {id} --",
            "ip netns exec ssh-{id}",
            "lxc-attach -n {id} --",
        ] {
            assert_eq!(Template::parse(t).unwrap().style(), Style::Exec, "{t}");
        }
        assert_eq!(
            Template::parse("timeout 30 qm guest exec {id} --")
                .unwrap()
                .style(),
            Style::QmGuestExec
        );
    }

    #[test]
    fn quotes_for_display_and_ssh() {
        assert_eq!(shell_quote("phoenix-doctor"), "phoenix-doctor");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's;x"), r"'it'\''s;x'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(
            display_argv(&["pct".into(), "exec".into(), "1 2".into()]),
            "pct exec '1 2'"
        );
    }
}
