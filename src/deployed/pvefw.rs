//! Proxmox firewall files as deployed (`/etc/pve/firewall/cluster.fw`, `<vmid>.fw`): the
//! `[OPTIONS]` values and the `[RULES]` lines, each with its line number; and whether the
//! firewall filters a guest's traffic, from the host's files (both `enable` options, the NIC's
//! `firewall=1` in the guest's config, pve-firewall's pid file and process).

use super::At;
use crate::observe::VantageRef;

/// One parsed firewall file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FwDeployed {
    /// `[OPTIONS]` keys (lower-cased) → value and line.
    pub options: Vec<(String, String, At)>,
    /// `[RULES]` lines as written (trimmed, inner whitespace collapsed), with their line.
    pub rules: Vec<(String, At)>,
}

impl FwDeployed {
    /// An option's value.
    pub fn option(&self, key: &str) -> Option<(&str, &At)> {
        self.options
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, a)| (v.as_str(), a))
    }
}

/// Collapse runs of blanks to one space, keeping the comment as written.
pub fn normalise_rule(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parse a `.fw` file. Sections other than OPTIONS and RULES (IPSET, ALIASES, group) are kept
/// out; lines before any section are ignored, as `pve-firewall` does with a warning.
pub fn parse(file: &str, text: &str) -> FwDeployed {
    #[derive(PartialEq)]
    enum Sec {
        None,
        Options,
        Rules,
        Other,
    }
    let mut sec = Sec::None;
    let mut out = FwDeployed::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            sec = match line.to_ascii_uppercase().as_str() {
                "[OPTIONS]" => Sec::Options,
                "[RULES]" => Sec::Rules,
                _ => Sec::Other,
            };
            continue;
        }
        let at = At::new(file, i + 1);
        match sec {
            Sec::Options => {
                if let Some((k, v)) = line.split_once(':') {
                    out.options
                        .push((k.trim().to_ascii_lowercase(), v.trim().to_string(), at));
                }
            }
            Sec::Rules => out.rules.push((normalise_rule(line), at)),
            Sec::None | Sec::Other => {}
        }
    }
    out
}

/// The cluster-wide rule set.
pub const CLUSTER_FW: &str = "/etc/pve/firewall/cluster.fw";
/// pve-firewall's pid file (its process is named in `/proc/<pid>/comm`).
pub const PID_FILE: &str = "/run/pve-firewall.pid";

/// The host files that say whether the firewall filters `v`'s traffic (none for the host).
pub fn state_paths(v: VantageRef) -> Vec<String> {
    let Some(conf) = guest_conf(v) else {
        return Vec::new();
    };
    let id = match v {
        VantageRef::Lxc(i) | VantageRef::Vm(i) => i,
        VantageRef::Host => return Vec::new(),
    };
    vec![
        CLUSTER_FW.to_string(),
        format!("/etc/pve/firewall/{id}.fw"),
        conf,
        PID_FILE.to_string(),
    ]
}

/// The guest's config on this node (`/etc/pve/lxc` and `/etc/pve/qemu-server` are this node's
/// directories under `/etc/pve/nodes/<node>/`).
fn guest_conf(v: VantageRef) -> Option<String> {
    match v {
        VantageRef::Lxc(i) => Some(format!("/etc/pve/lxc/{i}.conf")),
        VantageRef::Vm(i) => Some(format!("/etc/pve/qemu-server/{i}.conf")),
        VantageRef::Host => None,
    }
}

/// One file as the host answered for it.
#[derive(Debug, Clone, Copy)]
pub enum Got<'a> {
    Text(&'a str),
    Missing,
    Unreadable(&'a str),
    NotRead,
}

/// Whether the firewall filters a guest's traffic: `Some(true)` only when every switch is on,
/// `Some(false)` when one is off (`why` says which, with its file and line), `None` when a file
/// could not be read (`why` says which and why) and none is known to be off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enforcement {
    pub enforced: Option<bool>,
    pub why: String,
    /// Every switch read, `file:line: what`.
    pub evidence: Vec<String>,
}

/// One switch: on/off with where, or unknown with why.
type Switch = Result<(bool, String), String>;

fn option_switch(path: &str, got: Got, default_off: &str) -> Switch {
    match got {
        Got::Text(t) => match parse(path, t).option("enable") {
            Some((v, at)) => Ok((v.trim() == "1", format!("{at}: enable: {v}"))),
            None => Ok((
                false,
                format!("{path}: no `enable` in [OPTIONS] ({default_off})"),
            )),
        },
        Got::Missing => Ok((false, format!("no {path} ({default_off})"))),
        Got::Unreadable(why) => Err(format!("{path}: {why}")),
        Got::NotRead => Err(format!("{path} was not read")),
    }
}

/// The `netN:` lines of a guest config's main section and whether each has `firewall=1`.
fn nic_switch(path: &str, got: Got) -> Switch {
    let text = match got {
        Got::Text(t) => t,
        Got::Missing => {
            return Err(format!(
                "no {path} on this node (the guest may run on another: /etc/pve/nodes/<node>/)"
            ))
        }
        Got::Unreadable(why) => return Err(format!("{path}: {why}")),
        Got::NotRead => return Err(format!("{path} was not read")),
    };
    let mut nics = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            break; // a snapshot section: not the running config
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        if key.starts_with("net") && key[3..].chars().all(|c| c.is_ascii_digit()) {
            let on = value.split(',').any(|kv| kv.trim() == "firewall=1");
            nics.push((
                on,
                format!("{path}:{}: {key} firewall={}", i + 1, u8::from(on)),
            ));
        }
    }
    match nics.iter().find(|(on, _)| *on).or(nics.first()) {
        Some((on, at)) => Ok((*on, at.clone())),
        None => Ok((false, format!("{path}: no network device"))),
    }
}

fn running_switch(pid: Got, comm: Got) -> Switch {
    match (pid, comm) {
        (Got::Missing, _) => Ok((false, format!("no {PID_FILE}: pve-firewall is not running"))),
        (Got::Text(p), Got::Text(c)) if c.trim() == "pve-firewall" => {
            Ok((true, format!("pve-firewall runs (pid {})", p.trim())))
        }
        (Got::Text(p), Got::Text(_) | Got::Missing) => Ok((
            false,
            format!(
                "{PID_FILE} names pid {}, which is not pve-firewall: it is not running",
                p.trim()
            ),
        )),
        (Got::Unreadable(why), _) => Err(format!("{PID_FILE}: {why}")),
        (Got::Text(p), Got::Unreadable(why)) => Err(format!("/proc/{}/comm: {why}", p.trim())),
        (Got::Text(p), Got::NotRead) => Err(format!("/proc/{}/comm was not read", p.trim())),
        _ => Err(format!("{PID_FILE} was not read")),
    }
}

/// The process whose `comm` tells whether pve-firewall runs, from the pid file's text.
pub fn comm_path(pid_file: &str) -> Option<String> {
    let pid: u32 = pid_file.trim().parse().ok()?;
    Some(format!("/proc/{pid}/comm"))
}

/// Whether the firewall filters `v`'s traffic, from the host's files (`file` answers for each
/// path of [`state_paths`] and for [`comm_path`]).
pub fn enforcement<'a>(v: VantageRef, file: &dyn Fn(&str) -> Got<'a>) -> Option<Enforcement> {
    let paths = state_paths(v);
    let [cluster, guest, conf, pid] = &paths[..] else {
        return None;
    };
    let comm = match file(pid) {
        Got::Text(t) => comm_path(t).map_or(Got::Missing, |c| file(&c)),
        _ => Got::NotRead,
    };
    let switches = [
        option_switch(
            cluster,
            file(cluster),
            "the cluster firewall is off by default",
        ),
        option_switch(guest, file(guest), "a guest's firewall is off by default"),
        nic_switch(conf, file(conf)),
        running_switch(file(pid), comm),
    ];
    let evidence: Vec<String> = switches
        .iter()
        .map(|s| match s {
            Ok((_, at)) => at.clone(),
            Err(why) => format!("unreadable: {why}"),
        })
        .collect();
    let off: Vec<&str> = switches
        .iter()
        .filter_map(|s| match s {
            Ok((false, at)) => Some(at.as_str()),
            _ => None,
        })
        .collect();
    let unknown: Vec<&str> = switches
        .iter()
        .filter_map(|s| s.as_ref().err().map(String::as_str))
        .collect();
    // Without the guest's config this host is not known to run the guest (not a Proxmox host,
    // or the guest lives on another node): the other switches say nothing about it.
    if let Err(why) = &switches[2] {
        return Some(Enforcement {
            enforced: None,
            why: why.clone(),
            evidence,
        });
    }
    let (enforced, why) = if !off.is_empty() {
        (Some(false), off.join("; "))
    } else if !unknown.is_empty() {
        (None, unknown.join("; "))
    } else {
        (Some(true), evidence.join("; "))
    };
    Some(Enforcement {
        enforced,
        why,
        evidence,
    })
}

impl Enforcement {
    /// The sentence for a hop to `v` that timed out.
    pub fn sentence(&self, v: VantageRef) -> String {
        match self.enforced {
            Some(true) => format!(
                "the firewall of {v} is enforced ({}): its rules drop what they do not accept",
                self.why
            ),
            Some(false) => format!(
                "the firewall of {v} is not enforced ({}): the silence comes from elsewhere",
                self.why
            ),
            None => format!(
                "whether the firewall of {v} is enforced is unknown ({})",
                self.why
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_options_and_rules_with_lines() {
        let text = "[OPTIONS]\nenable: 1\npolicy_in:DROP\n\n[RULES]\nIN ACCEPT  -p tcp -dport 443 # a  b\n# comment\n[IPSET x]\n10.0.0.1\n";
        let f = parse("cluster.fw", text);
        assert_eq!(f.option("enable").map(|x| x.0), Some("1"));
        assert_eq!(f.option("policy_in").map(|x| x.1.line), Some(3));
        assert_eq!(f.rules.len(), 1);
        assert_eq!(f.rules[0].0, "IN ACCEPT -p tcp -dport 443 # a b");
        assert_eq!(f.rules[0].1.line, 6);
    }

    fn host<'a>(files: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Got<'a> + 'a {
        move |p: &str| match files.iter().find(|(f, _)| *f == p) {
            Some((_, "UNREADABLE")) => Got::Unreadable("permission denied"),
            Some((_, t)) => Got::Text(t),
            None => Got::Missing,
        }
    }

    /// Written by hand from Proxmox's rules: the cluster's and the guest's `enable`, the NIC's
    /// `firewall=1` and a running pve-firewall must all be on.
    #[test]
    fn a_guest_is_filtered_only_when_every_switch_is_on() {
        let on: Vec<(&str, &str)> = vec![
            (CLUSTER_FW, "[OPTIONS]\nenable: 1\n"),
            ("/etc/pve/firewall/1002.fw", "[OPTIONS]\n\nenable: 1\n"),
            (
                "/etc/pve/qemu-server/1002.conf",
                "cores: 2\nnet0: virtio=BC:24:11:00:00:02,bridge=vmbr0,firewall=1\n[snap]\nnet0: virtio=x,bridge=vmbr0\n",
            ),
            (PID_FILE, "812\n"),
            ("/proc/812/comm", "pve-firewall\n"),
        ];
        let e = enforcement(VantageRef::Vm(1002), &host(&on)).unwrap();
        assert_eq!(e.enforced, Some(true), "{e:?}");
        assert_eq!(
            e.evidence,
            [
                "/etc/pve/firewall/cluster.fw:2: enable: 1",
                "/etc/pve/firewall/1002.fw:3: enable: 1",
                "/etc/pve/qemu-server/1002.conf:2: net0 firewall=1",
                "pve-firewall runs (pid 812)"
            ]
        );
        // The LXC the way lxc-manager leaves it: firewall=1 on net0, no `enable` in its file.
        let lxc: Vec<(&str, &str)> = vec![
            (CLUSTER_FW, "[OPTIONS]\nenable: 1\n"),
            (
                "/etc/pve/firewall/101.fw",
                "[RULES]\nIN ACCEPT -p tcp -dport 443\n",
            ),
            (
                "/etc/pve/lxc/101.conf",
                "net0: name=eth0,bridge=vmbr0,firewall=1,ip=10.0.0.153/24\n",
            ),
            (PID_FILE, "812\n"),
            ("/proc/812/comm", "pve-firewall\n"),
        ];
        let e = enforcement(VantageRef::Lxc(101), &host(&lxc)).unwrap();
        assert_eq!(e.enforced, Some(false));
        assert_eq!(
            e.why,
            "/etc/pve/firewall/101.fw: no `enable` in [OPTIONS] (a guest's firewall is off by default)"
        );
        // The NIC without firewall=1; pve-firewall stopped (a stale pid).
        let mut off = on.clone();
        off[2].1 = "net0: virtio=x,bridge=vmbr0,firewall=0\n";
        off[4].1 = "bash\n";
        let e = enforcement(VantageRef::Vm(1002), &host(&off)).unwrap();
        assert_eq!(e.enforced, Some(false));
        assert_eq!(e.why, "/etc/pve/qemu-server/1002.conf:1: net0 firewall=0; /run/pve-firewall.pid names pid 812, which is not pve-firewall: it is not running");
        // A file that cannot be read: unknown with why, never "off".
        let mut unread = on.clone();
        unread[0].1 = "UNREADABLE";
        let e = enforcement(VantageRef::Vm(1002), &host(&unread)).unwrap();
        assert_eq!(e.enforced, None);
        assert_eq!(e.why, "/etc/pve/firewall/cluster.fw: permission denied");
        // The guest's config on another node: unknown.
        let e = enforcement(VantageRef::Vm(1002), &host(&on[..2])).unwrap();
        assert_eq!(e.enforced, None, "{e:?}");
        assert!(
            e.evidence[2].starts_with("unreadable: no /etc/pve/qemu-server/1002.conf on this node"),
            "{e:?}"
        );
        assert!(enforcement(VantageRef::Host, &host(&on)).is_none());
    }
}
