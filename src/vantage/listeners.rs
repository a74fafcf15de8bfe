//! The sockets listening in a guest, from its `/proc/net/tcp` and `/proc/net/tcp6` (bounded
//! parsing), the processes that own them (the agent maps socket inodes to `/proc/<pid>/comm`
//! through `/proc/<pid>/fd`; without an agent, `ss -Hltnp`), and the sentence that explains a
//! refused or filtered port with them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// At most this many lines of one file are read (a busy guest has thousands of connections;
/// listeners come first in practice, the rest are ignored).
pub const MAX_LINES: usize = 65_536;
/// A line longer than this is not a socket line.
const MAX_LINE: usize = 512;
/// The `st` column of a listening socket.
const TCP_LISTEN: &str = "0A";

/// The request for the owners of the listening sockets. No kernel file has this name (nothing
/// but the kernel writes under `/proc`): the agent answers it by walking `/proc/<pid>/fd`, the
/// shell reader with `ss -Hltnp`, and a simulated guest's root holds a file of that name.
pub const OWNERS: &str = "/proc/phoenix-doctor/socket-owners";
/// At most this many processes are looked at.
pub const MAX_PIDS: usize = 8192;
/// At most this many descriptors of one process are looked at.
pub const MAX_FDS: usize = 4096;
/// A process name is cut to this many characters (the kernel's `comm` holds 15).
const MAX_NAME: usize = 32;

/// Who owns a listening socket: by inode (the agent's answer) or by address (`ss`'s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub inode: Option<u64>,
    pub addr: Option<SocketAddr>,
    pub name: String,
}

/// The owners of `listeners` on this machine (or in the guest the agent runs in), one line each:
/// `<inode> <pid> <comm>`; bounded by [`MAX_PIDS`] and [`MAX_FDS`]; unreadable processes are
/// skipped.
pub fn owners_here(listeners: &[Listener]) -> String {
    use std::collections::HashSet;
    let wanted: HashSet<u64> = listeners
        .iter()
        .map(|l| l.inode)
        .filter(|&i| i != 0)
        .collect();
    let mut out = String::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    let mut seen = HashSet::new();
    let pids = procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .take(MAX_PIDS);
    for pid in pids {
        if seen.len() == wanted.len() {
            break;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.take(MAX_FDS).filter_map(|e| e.ok()) {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let inode = link
                .to_str()
                .and_then(|l| l.strip_prefix("socket:["))
                .and_then(|l| l.strip_suffix(']'))
                .and_then(|l| l.parse::<u64>().ok());
            let Some(inode) = inode.filter(|i| wanted.contains(i) && !seen.contains(i)) else {
                continue;
            };
            let comm = crate::fsutil::read_bounded_string(
                std::path::Path::new(&format!("/proc/{pid}/comm")),
                crate::fsutil::FileKind::SystemFile,
            )
            .unwrap_or_default();
            seen.insert(inode);
            out.push_str(&format!("{inode} {pid} {}\n", clean(comm.trim_end())));
        }
    }
    out
}

/// A process name as shown: at most [`MAX_NAME`] characters, control characters escaped.
fn clean(name: &str) -> String {
    name.chars()
        .take(MAX_NAME)
        .flat_map(|c| {
            if c.is_control() || c.is_whitespace() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// A local address as `ss` prints it: `0.0.0.0:9002`, `[::]:22`, `*:22`, `127.0.0.53%lo:53`.
fn parse_ss_addr(field: &str) -> Option<SocketAddr> {
    let (host, port) = field.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.split('%').next()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = match host {
        "*" | "0.0.0.0" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        h => h.parse().ok()?,
    };
    Some(SocketAddr::new(ip, port))
}

/// The owners in the agent's answer (`<inode> <pid> <comm>`) or in `ss -Hltnp`'s
/// (`LISTEN 0 4096 0.0.0.0:9002 0.0.0.0:* users:(("portainer-agen",pid=812,fd=3))`); other
/// lines are skipped, at most [`MAX_LINES`] read.
pub fn parse_owners(text: &str) -> Vec<Owner> {
    let mut out = Vec::new();
    for line in text.lines().take(MAX_LINES) {
        if line.len() > MAX_LINE {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() == Some(&"LISTEN") {
            let name = line
                .split_once("((\"")
                .and_then(|(_, r)| r.split_once('"'))
                .map(|(n, _)| clean(n));
            if let (Some(addr), Some(name)) = (f.get(3).and_then(|a| parse_ss_addr(a)), name) {
                out.push(Owner {
                    inode: None,
                    addr: Some(addr),
                    name,
                });
            }
            continue;
        }
        if let [inode, pid, name, ..] = f[..] {
            if let (Ok(inode), Ok(_)) = (inode.parse::<u64>(), pid.parse::<u32>()) {
                out.push(Owner {
                    inode: Some(inode),
                    addr: None,
                    name: clean(name),
                });
            }
        }
    }
    out
}

/// The name of the process that owns `l`, when known.
pub fn owner_of<'a>(owners: &'a [Owner], l: &Listener) -> Option<&'a str> {
    owners
        .iter()
        .find(|o| o.inode == Some(l.inode) || o.addr == Some(l.addr))
        .map(|o| o.name.as_str())
}

/// `a process (name)` or `a process`.
fn a_process(owners: &[Owner], l: &Listener) -> String {
    match owner_of(owners, l) {
        Some(n) => format!("a process ({n})"),
        None => "a process".to_string(),
    }
}

/// A listening TCP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listener {
    pub addr: SocketAddr,
    /// The socket's inode (to find its process when `/proc/<pid>/fd` is readable).
    pub inode: u64,
}

/// Parse the kernel's hex address: IPv4 as one 32-bit word, IPv6 as four, each printed in the
/// kernel's (little-endian on x86 and arm64) byte order; the port in network order.
fn parse_addr(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::to_le_bytes);
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(ip.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The listening sockets of a `/proc/net/tcp` or `tcp6` text (header and malformed lines are
/// skipped; at most [`MAX_LINES`] lines are read).
pub fn parse_proc_net_tcp(text: &str) -> Vec<Listener> {
    let mut out = Vec::new();
    for line in text.lines().take(MAX_LINES) {
        if line.len() > MAX_LINE {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().take(10).collect();
        if f.len() < 10 || f[3] != TCP_LISTEN {
            continue;
        }
        let (Some(addr), Ok(inode)) = (parse_addr(f[1]), f[9].parse::<u64>()) else {
            continue;
        };
        out.push(Listener { addr, inode });
    }
    out.sort();
    out.dedup();
    out
}

/// The `/proc/net/tcp` text (IPv4 sockets; IPv6 ones are left out) of a guest whose listening
/// sockets are `addrs`, as the kernel prints it: what the lab's simulated guests hold.
pub fn format_proc_net_tcp(addrs: &[SocketAddr]) -> String {
    let mut out = String::from(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
    );
    for (i, a) in addrs.iter().enumerate() {
        let IpAddr::V4(ip) = a.ip() else { continue };
        out.push_str(&format!(
            "{i:4}: {:08X}:{:04X} 00000000:0000 {TCP_LISTEN} 00000000:00000000 00:00000000 00000000     0        0 {} 1 0000000000000000 100 0 0 10 0\n",
            u32::from_le_bytes(ip.octets()),
            a.port(),
            1000 + i
        ));
    }
    out
}

/// The owners' answer for a guest whose listening sockets are `addrs` (as
/// [`format_proc_net_tcp`] numbers their inodes), owned by the processes `names`.
pub fn format_owners(addrs: &[SocketAddr], names: &[&str]) -> String {
    addrs
        .iter()
        .zip(names)
        .enumerate()
        .map(|(i, (_, n))| format!("{} {} {n}\n", 1000 + i, 100 + i))
        .collect()
}

/// Whether `l` accepts connections to `want` (a wildcard address accepts any of its family;
/// `[::]` also IPv4 unless the socket is v6-only, which /proc does not say).
fn accepts(l: &Listener, want: SocketAddr) -> bool {
    l.addr.port() == want.port()
        && (l.addr.ip() == want.ip()
            || l.addr.ip().is_unspecified()
            || l.addr.ip().is_loopback() && want.ip().is_loopback())
}

/// What the listeners say about a connection to `want` that failed: "nothing listens on :9001;
/// a process (portainer-agent) listens on :9002", or who listens on the port but on another
/// address; a process is named when `owners` knows it.
pub fn explain(listeners: &[Listener], owners: &[Owner], want: SocketAddr) -> String {
    let port = want.port();
    if let Some(l) = listeners.iter().find(|l| accepts(l, want)) {
        let who = owner_of(owners, l)
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        return format!(
            "a socket{who} listens on {} (the refusal or the silence comes from elsewhere: a firewall, or a full backlog)",
            l.addr
        );
    }
    let mut msg = format!("nothing listens on :{port}");
    let same_port: Vec<String> = listeners
        .iter()
        .filter(|l| l.addr.port() == port)
        .map(|l| l.addr.to_string())
        .collect();
    if !same_port.is_empty() {
        msg.push_str(&format!(
            " at {}; :{port} is bound to {} only",
            want.ip(),
            same_port.join(", ")
        ));
        return msg;
    }
    // The nearest port a client of `want` could reach: on its address or on a wildcard (a
    // socket on another address, loopback included, is not reachable there).
    let near = listeners
        .iter()
        .filter(|l| l.addr.ip() == want.ip() || l.addr.ip().is_unspecified())
        .min_by_key(|l| (l.addr.port().abs_diff(port), l.addr.port()));
    if let Some(l) = near {
        msg.push_str(&format!(
            "; {} listens on :{}",
            a_process(owners, l),
            l.addr.port()
        ));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as a Linux 6.x kernel prints them (this machine's /proc/net/tcp and tcp6).
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1062 1 00000000191cbf40 100 0 0 10 0
   1: 6F00967F:24E3 0100007F:D294 06 00000000:00000000 03:00000F64 00000000     0        0 0 3 00000000e38e1387
   2: 0100007F:8B4A 0C001A7F:0050 01 00000000:00000000 03:00000BD4 00000000     0        0 0 3 00000000689d8184
   3: 6600000A:2329 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:18BD 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5150 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0
";

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_listening_sockets_with_their_addresses_and_inodes() {
        let l = parse_proc_net_tcp(TCP);
        let got: Vec<(SocketAddr, u64)> = l.iter().map(|l| (l.addr, l.inode)).collect();
        // 0.0.0.0:2024 and 10.0.0.102:9001 listen; the two connections (st 06, 01) do not
        assert_eq!(
            got,
            vec![(sa("0.0.0.0:2024"), 1062), (sa("10.0.0.102:9001"), 4242)]
        );
        let l6 = parse_proc_net_tcp(TCP6);
        let got: Vec<SocketAddr> = l6.iter().map(|l| l.addr).collect();
        assert_eq!(got, vec![sa("[::]:6333"), sa("[::1]:631")]);
    }

    #[test]
    fn the_lab_table_reads_back() {
        let t = format_proc_net_tcp(&[sa("127.9.0.102:9002"), sa("10.0.0.102:6333")]);
        let got: Vec<SocketAddr> = parse_proc_net_tcp(&t).iter().map(|l| l.addr).collect();
        assert_eq!(got, vec![sa("10.0.0.102:6333"), sa("127.9.0.102:9002")]);
        // The kernel's own line for 10.0.0.102:9001 (see TCP above) has the same address field.
        assert!(format_proc_net_tcp(&[sa("10.0.0.102:9001")]).contains("6600000A:2329"));
    }

    #[test]
    fn owners_come_from_the_agent_or_from_ss_and_name_the_nearest_listener() {
        let l = parse_proc_net_tcp(&format_proc_net_tcp(&[sa("0.0.0.0:9002")]));
        let agent = parse_owners(&format_owners(&[sa("0.0.0.0:9002")], &["portainer-agent"]));
        assert_eq!(
            explain(&l, &agent, sa("10.0.0.102:9001")),
            "nothing listens on :9001; a process (portainer-agent) listens on :9002"
        );
        // `ss -Hltnp` as iproute2 6.x prints it (names by address, not inode).
        let ss = "LISTEN 0      4096         0.0.0.0:9002      0.0.0.0:*    users:((\"portainer-agen\",pid=812,fd=3))\nLISTEN 0 128 [::]:22 [::]:* users:((\"sshd\",pid=1,fd=4),(\"sshd\",pid=2,fd=4))\nLISTEN 0 5 127.0.0.53%lo:53 0.0.0.0:*\n";
        let o = parse_owners(ss);
        assert_eq!(
            o,
            vec![
                Owner {
                    inode: None,
                    addr: Some(sa("0.0.0.0:9002")),
                    name: "portainer-agen".into()
                },
                Owner {
                    inode: None,
                    addr: Some(sa("[::]:22")),
                    name: "sshd".into()
                }
            ]
        );
        assert_eq!(
            explain(&l, &o, sa("10.0.0.102:9001")),
            "nothing listens on :9001; a process (portainer-agen) listens on :9002"
        );
        // A name from the guest is cut and its control characters escaped.
        let o = parse_owners("1000 7 a\u{1b}[31mb\n");
        assert_eq!(o[0].name, "a\\u{1b}[31mb");
        assert_eq!(
            parse_owners(&format!("1000 7 {}\n", "x".repeat(100)))[0]
                .name
                .len(),
            32
        );
    }

    #[test]
    fn the_owner_of_a_socket_here_is_found_through_proc() {
        let s = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        let l: Vec<Listener> =
            parse_proc_net_tcp(&std::fs::read_to_string("/proc/net/tcp").unwrap())
                .into_iter()
                .filter(|l| l.addr.port() == port)
                .collect();
        assert_eq!(l.len(), 1, "{l:?}");
        let me = std::fs::read_to_string("/proc/self/comm").unwrap();
        let o = parse_owners(&owners_here(&l));
        assert_eq!(owner_of(&o, &l[0]), Some(me.trim_end()), "{o:?}");
    }

    #[test]
    fn malformed_and_oversized_lines_are_skipped() {
        let long = format!("   0: 00000000:07E8 00000000:0000 0A {}\n", "0".repeat(600));
        let text =
            format!("{long}   1: zz:07E8 00000000:0000 0A 0 0 0 0 0 7\n   2: 00000000:07E8\n");
        assert!(parse_proc_net_tcp(&text).is_empty());
    }

    #[test]
    fn the_explanation_names_the_missing_port_and_the_nearest_listener() {
        let moved = parse_proc_net_tcp(
            "   0: 00000000:2332 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7 1 0 100 0 0 10 0\n   1: 00000000:18BD 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 8 1 0 100 0 0 10 0\n",
        );
        assert_eq!(
            explain(&moved, &[], sa("10.0.0.102:9001")),
            "nothing listens on :9001; a process listens on :9010"
        );
        let l = parse_proc_net_tcp(TCP);
        assert!(explain(&l, &[], sa("10.0.0.102:9001"))
            .starts_with("a socket listens on 10.0.0.102:9001"));
        assert_eq!(
            explain(&l, &[], sa("10.0.0.103:9001")),
            "nothing listens on :9001 at 10.0.0.103; :9001 is bound to 10.0.0.102:9001 only"
        );
        assert_eq!(
            explain(&[], &[], sa("10.0.0.102:9001")),
            "nothing listens on :9001"
        );
        // A socket on another address (loopback here) is not reachable at the target's.
        let lo = parse_proc_net_tcp(&format_proc_net_tcp(&[sa("127.0.0.1:9002")]));
        assert_eq!(
            explain(&lo, &[], sa("10.0.0.102:9001")),
            "nothing listens on :9001"
        );
        let moved = parse_proc_net_tcp(&format_proc_net_tcp(&[
            sa("127.0.0.1:9001"),
            sa("10.0.0.102:9002"),
        ]));
        assert_eq!(
            explain(&moved, &[], sa("10.0.0.102:9001")),
            "nothing listens on :9001 at 10.0.0.102; :9001 is bound to 127.0.0.1:9001 only"
        );
    }
}
