//! Where each guest runs in a Proxmox cluster: `pvesh get /cluster/resources` read once per run
//! (bounded, parsed strictly), the node this tool runs on, and the transport prefixes that reach
//! a guest on another node through that node.

use super::transport::{self, brief, Limits};
use crate::plan::VantageRef;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The one listing of the cluster's guests a run makes.
pub const RESOURCES: &[&str] = &[
    "pvesh",
    "get",
    "/cluster/resources",
    "--type",
    "vm",
    "--output-format",
    "json",
];
/// An LXC on another node: through that node's `pct`.
pub const REMOTE_PCT: &str = "ssh -o BatchMode=yes root@{node} pct exec {id} --";
/// A VM on another node: through that node's `qm`.
pub const REMOTE_QM: &str = "ssh -o BatchMode=yes root@{node} qm guest exec {id} --";
/// How long the listing may take (at most; never longer than the run's budget).
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// The most the listing may print (about 300 bytes per guest: 100,000 guests).
pub const MAX_OUTPUT: usize = 32 * 1024 * 1024;

/// One guest as the cluster lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub node: String,
    /// `running`, `stopped`, `paused` ...
    pub status: String,
}

/// What the cluster said about its guests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The node this tool runs on.
    pub local: String,
    /// Each listed guest, or why its entry could not be used.
    pub guests: BTreeMap<VantageRef, std::result::Result<Placement, String>>,
    /// Entries that name no guest (no usable `vmid` or `type`), for messages.
    pub unattributed: Vec<String>,
    /// The listing itself failed (pvesh failed, timed out, or did not print a JSON array): every
    /// guest is then `cannot-judge` with this reason.
    pub failed: Option<String>,
}

/// How a guest is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Where {
    /// On this node (or not a cluster guest: the host).
    Here,
    /// On another node, through it.
    Node(String),
    /// Not reachable: stopped, unlisted, or the listing failed.
    Unreachable(Unreachable),
}

/// Why a guest cannot be reached; shown as the reason its steps cannot be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    /// The cluster listing failed (pvesh failed, timed out, or printed no JSON array).
    #[error("where {guest} runs is unknown: {why}")]
    ListingFailed { guest: VantageRef, why: String },
    /// Listed, but not running (`stopped`, `paused` ...).
    #[error("{guest} is {status} on node {node}")]
    NotRunning {
        guest: VantageRef,
        status: String,
        node: String,
    },
    /// Listed with an entry that cannot be used.
    #[error("{guest}'s entry in `{}` is unusable: {why}", RESOURCES.join(" "))]
    Unusable { guest: VantageRef, why: String },
    /// Not in the listing; `unattributed`: the entries that name no guest.
    #[error("{guest} is not listed by `{}`{}", RESOURCES.join(" "), unattributed_text(.unattributed))]
    NotListed {
        guest: VantageRef,
        unattributed: Vec<String>,
    },
}

fn unattributed_text(entries: &[String]) -> String {
    if entries.is_empty() {
        String::new()
    } else {
        format!(" (entries naming no guest: {})", entries.join("; "))
    }
}

impl Cluster {
    /// Where the guest `v` runs, or why it cannot be reached.
    pub fn locate(&self, v: VantageRef) -> Where {
        if v == VantageRef::Host {
            return Where::Here;
        }
        if let Some(why) = &self.failed {
            return Where::Unreachable(Unreachable::ListingFailed {
                guest: v,
                why: why.clone(),
            });
        }
        match self.guests.get(&v) {
            Some(Ok(p)) if p.status != "running" => Where::Unreachable(Unreachable::NotRunning {
                guest: v,
                status: p.status.clone(),
                node: p.node.clone(),
            }),
            Some(Ok(p)) if p.node == self.local => Where::Here,
            Some(Ok(p)) => Where::Node(p.node.clone()),
            Some(Err(why)) => Where::Unreachable(Unreachable::Unusable {
                guest: v,
                why: why.clone(),
            }),
            None => Where::Unreachable(Unreachable::NotListed {
                guest: v,
                unattributed: self.unattributed.clone(),
            }),
        }
    }

    /// The node `v` is listed on (the host's is this node).
    pub fn node_of(&self, v: VantageRef) -> Option<&str> {
        match self.guests.get(&v) {
            Some(Ok(p)) if v != VantageRef::Host => Some(&p.node),
            _ => None,
        }
    }
}

/// A node name that can go into `root@{node}` for ssh: letters, digits, `-`, `.` and `_`, not
/// starting with `-`.
fn valid_node(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && !n.starts_with('-')
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

/// Parse `pvesh get /cluster/resources --type vm --output-format json`. The listing must be a
/// JSON array; an entry with a usable `vmid` and `type` but a bad `node` or `status` makes that
/// guest unusable; an entry naming no guest is only remembered for messages.
pub fn parse_resources(local: &str, text: &[u8]) -> Cluster {
    let mut c = Cluster {
        local: local.to_string(),
        guests: BTreeMap::new(),
        unattributed: Vec::new(),
        failed: None,
    };
    let entries = match serde_json::from_slice::<Value>(text) {
        Ok(Value::Array(a)) => a,
        Ok(other) => {
            c.failed = Some(format!(
                "expected a JSON array of guests, found {}",
                kind_of(&other)
            ));
            return c;
        }
        Err(e) => {
            c.failed = Some(format!("its output is not JSON ({e})"));
            return c;
        }
    };
    for (i, e) in entries.iter().enumerate() {
        let at = format!("[{i}]");
        let Some(obj) = e.as_object() else {
            c.unattributed
                .push(format!("{at}: expected an object, found {}", kind_of(e)));
            continue;
        };
        let vmid = obj
            .get("vmid")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok());
        let v = match (obj.get("type").and_then(Value::as_str), vmid) {
            (Some("lxc"), Some(id)) => VantageRef::Lxc(id),
            (Some("qemu"), Some(id)) => VantageRef::Vm(id),
            (t, id) => {
                c.unattributed.push(format!(
                    "{at}: expected `type` \"lxc\" or \"qemu\" and a numeric `vmid`, found type {} and vmid {}",
                    t.map(|t| format!("{t:?}")).unwrap_or_else(|| "none".into()),
                    id.map(|i| i.to_string()).unwrap_or_else(|| "none".into()),
                ));
                continue;
            }
        };
        let node = obj.get("node").and_then(Value::as_str);
        let status = obj.get("status").and_then(Value::as_str);
        let placement = match (node, status) {
            (Some(n), Some(s)) if valid_node(n) && !s.is_empty() => Ok(Placement {
                node: n.to_string(),
                status: s.to_string(),
            }),
            (Some(n), Some(_)) if !valid_node(n) => Err(format!(
                "{at}.node {:?} is not a node name",
                n.chars().take(80).collect::<String>()
            )),
            _ => Err(format!("{at}: expected string fields `node` and `status`")),
        };
        let placement = match c.guests.get(&v) {
            Some(Ok(p)) => match &placement {
                Ok(q) => Err(format!(
                    "listed twice, on node {} and on node {}",
                    p.node, q.node
                )),
                Err(_) => placement,
            },
            Some(Err(_)) => continue,
            None => placement,
        };
        c.guests.insert(v, placement);
    }
    c
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `pvesh` on `PATH`, if there is one (no `pvesh`: a single machine, today's behaviour).
pub fn pvesh_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("pvesh"))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// This node's name: the short host name (Proxmox names a node after it).
pub fn local_node() -> String {
    let read = |p: &str| {
        crate::fsutil::read_bounded_string(Path::new(p), crate::fsutil::FileKind::SystemFile).ok()
    };
    read("/proc/sys/kernel/hostname")
        .or_else(|| read("/etc/hostname"))
        .map(|h| h.trim().split('.').next().unwrap_or("").to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Ask the cluster where its guests run: one `pvesh` call, bounded in time (15 s or `budget`,
/// whichever is less) and output. `None`
/// when there is no `pvesh` (not a Proxmox host); a failing call is a [`Cluster`] whose
/// `failed` says why.
pub async fn discover(budget: Duration) -> Option<Cluster> {
    pvesh_on_path()?;
    let local = local_node();
    let argv: Vec<String> = RESOURCES.iter().map(|w| w.to_string()).collect();
    let command = RESOURCES.join(" ");
    let limits = Limits::within(TIMEOUT.min(budget), MAX_OUTPUT);
    let failed = |why: String| Cluster {
        local: local.clone(),
        guests: BTreeMap::new(),
        unattributed: Vec::new(),
        failed: Some(format!("`{command}` {why}")),
    };
    Some(match transport::exec(&argv, None, limits).await {
        Err(e) => failed(e.failure.to_string()),
        Ok(out) if !out.success() => failed(format!(
            "exited {}: {}",
            out.code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "by signal".into()),
            brief(&out.stderr)
        )),
        Ok(out) => {
            let mut c = parse_resources(&local, &out.stdout);
            if let Some(why) = c.failed.take() {
                c.failed = Some(format!("`{command}`: {why}"));
            }
            c
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = r#"[
      {"id":"lxc/101","vmid":101,"node":"pve1","type":"lxc","status":"running","name":"Nginx-Phoenix"},
      {"id":"lxc/102","vmid":102,"node":"pve2","type":"lxc","status":"running"},
      {"id":"qemu/1001","vmid":1001,"node":"pve3","type":"qemu","status":"running"},
      {"id":"lxc/103","vmid":103,"node":"pve2","type":"lxc","status":"stopped"},
      {"id":"qemu/1002","vmid":1002,"node":"pve1","type":"qemu","status":"paused"}
    ]"#;

    #[test]
    fn guests_are_placed_on_their_nodes() {
        let c = parse_resources("pve1", LISTING.as_bytes());
        assert_eq!(c.failed, None);
        assert_eq!(c.locate(VantageRef::Host), Where::Here);
        assert_eq!(c.locate(VantageRef::Lxc(101)), Where::Here);
        assert_eq!(c.locate(VantageRef::Lxc(102)), Where::Node("pve2".into()));
        assert_eq!(c.locate(VantageRef::Vm(1001)), Where::Node("pve3".into()));
        // lxc 1001 is not qemu 1001
        assert!(
            matches!(c.locate(VantageRef::Lxc(1001)), Where::Unreachable(m) if m.to_string().contains("lxc:1001 is not listed"))
        );
        let why = |v| match c.locate(v) {
            Where::Unreachable(u) => (u.clone(), u.to_string()),
            w => panic!("{w:?}"),
        };
        assert_eq!(
            why(VantageRef::Lxc(103)),
            (
                Unreachable::NotRunning {
                    guest: VantageRef::Lxc(103),
                    status: "stopped".into(),
                    node: "pve2".into()
                },
                "lxc:103 is stopped on node pve2".into()
            )
        );
        assert_eq!(
            why(VantageRef::Vm(1002)).1,
            "vm:1002 is paused on node pve1"
        );
        assert_eq!(c.node_of(VantageRef::Vm(1001)), Some("pve3"));
    }

    #[test]
    fn a_bad_listing_concerns_every_guest() {
        for (text, why) in [
            ("not json", "not JSON"),
            ("{\"data\":[]}", "found an object"),
            ("", "not JSON"),
        ] {
            let c = parse_resources("pve1", text.as_bytes());
            assert!(c.failed.as_deref().unwrap().contains(why), "{c:?}");
            match c.locate(VantageRef::Lxc(101)) {
                Where::Unreachable(m) => {
                    assert!(matches!(m, Unreachable::ListingFailed { .. }), "{m:?}");
                    assert!(m.to_string().contains(why), "{m}");
                }
                w => panic!("{w:?}"),
            }
            assert_eq!(c.locate(VantageRef::Host), Where::Here);
        }
    }

    #[test]
    fn a_bad_entry_concerns_its_guest_only() {
        let text = r#"[
          {"vmid":101,"node":"pve1","type":"lxc","status":"running"},
          {"vmid":102,"node":"-oProxyCommand=x","type":"lxc","status":"running"},
          {"vmid":103,"node":"pve2","type":"lxc"},
          {"vmid":"104","node":"pve2","type":"lxc","status":"running"},
          {"vmid":105,"node":"pve2","type":"lxc","status":"running"},
          {"vmid":105,"node":"pve3","type":"lxc","status":"running"},
          7
        ]"#;
        let c = parse_resources("pve1", text.as_bytes());
        assert_eq!(c.locate(VantageRef::Lxc(101)), Where::Here);
        let why = |v| match c.locate(v) {
            Where::Unreachable(m) => m.to_string(),
            w => panic!("{w:?}"),
        };
        assert!(why(VantageRef::Lxc(102)).contains("is not a node name"));
        assert!(why(VantageRef::Lxc(103)).contains("`node` and `status`"));
        assert!(why(VantageRef::Lxc(104)).contains("not listed"));
        assert!(why(VantageRef::Lxc(104)).contains("[3]: expected `type`"));
        assert!(why(VantageRef::Lxc(104)).contains("[6]: expected an object"));
        assert!(why(VantageRef::Lxc(105)).contains("listed twice, on node pve2 and on node pve3"));
    }

    #[test]
    fn node_names_are_checked() {
        assert!(valid_node("pve-01.lan"));
        for bad in ["", "-x", "a b", "a;b", "a$(b)", "root@x"] {
            assert!(!valid_node(bad), "{bad}");
        }
    }
}
