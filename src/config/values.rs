//! Small value types shared by `config` and `model`: IP specs (`"dhcp"`, CIDR, bare IP),
//! Proxmox port lists (`"80,443"`, `"8000:8010"`), rule addresses, guest kinds, directions.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// A guest's `network_config.ip`: `"dhcp"`, or an address with an optional prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum IpSpec {
    Dhcp,
    Static { ip: IpAddr, prefix: Option<u8> },
}

impl IpSpec {
    pub fn parse(s: &str) -> Option<IpSpec> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("dhcp") {
            return Some(IpSpec::Dhcp);
        }
        match s.split_once('/') {
            Some((ip, p)) => {
                let ip: IpAddr = ip.parse().ok()?;
                let prefix: u8 = p.parse().ok()?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                (prefix <= max).then_some(IpSpec::Static {
                    ip,
                    prefix: Some(prefix),
                })
            }
            None => Some(IpSpec::Static {
                ip: s.parse().ok()?,
                prefix: None,
            }),
        }
    }

    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            IpSpec::Dhcp => None,
            IpSpec::Static { ip, .. } => Some(*ip),
        }
    }
}

/// A rule's `source` or `dest`: an IP or a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AddrSpec {
    Ip(IpAddr),
    Net(IpNet),
}

impl AddrSpec {
    pub fn parse(s: &str) -> Option<AddrSpec> {
        let s = s.trim();
        if s.contains('/') {
            s.parse().ok().map(AddrSpec::Net)
        } else {
            s.parse().ok().map(AddrSpec::Ip)
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match self {
            AddrSpec::Ip(a) => *a == ip,
            AddrSpec::Net(n) => n.contains(&ip),
        }
    }
}

impl std::fmt::Display for AddrSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddrSpec::Ip(a) => write!(f, "{a}"),
            AddrSpec::Net(n) => write!(f, "{n}"),
        }
    }
}

/// A Proxmox port list: comma-separated ports and `a:b` ranges (inclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSet {
    pub ranges: Vec<(u16, u16)>,
}

impl PortSet {
    pub fn parse(s: &str) -> Option<PortSet> {
        let mut ranges = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return None;
            }
            let (a, b) = match part.split_once(':') {
                Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
                None => {
                    let p: u16 = part.parse().ok()?;
                    (p, p)
                }
            };
            if a > b {
                return None;
            }
            ranges.push((a, b));
        }
        Some(PortSet { ranges })
    }

    pub fn single(p: u16) -> PortSet {
        PortSet {
            ranges: vec![(p, p)],
        }
    }

    pub fn contains(&self, port: u16) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= port && port <= b)
    }

    /// Every port in the set (ranges expanded).
    pub fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..=b)
    }
}

/// LXC container or QEMU VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestKind {
    Lxc,
    Vm,
}

impl GuestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GuestKind::Lxc => "lxc",
            GuestKind::Vm => "vm",
        }
    }
}

/// A firewall rule's direction (`type` in the JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_upper(self) -> &'static str {
        match self {
            Direction::In => "IN",
            Direction::Out => "OUT",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_specs() {
        assert_eq!(IpSpec::parse("dhcp"), Some(IpSpec::Dhcp));
        assert_eq!(
            IpSpec::parse("10.0.0.12/24"),
            Some(IpSpec::Static {
                ip: "10.0.0.12".parse().unwrap(),
                prefix: Some(24)
            })
        );
        assert_eq!(
            IpSpec::parse("10.0.0.12").unwrap().ip(),
            Some("10.0.0.12".parse().unwrap())
        );
        assert_eq!(IpSpec::parse("10.0.0.12/33"), None);
        assert_eq!(IpSpec::parse("ten"), None);
    }

    #[test]
    fn port_sets() {
        let p = PortSet::parse("80,443").unwrap();
        assert!(p.contains(80) && p.contains(443) && !p.contains(81));
        let r = PortSet::parse("8000:8002").unwrap();
        assert_eq!(r.ports().collect::<Vec<_>>(), vec![8000, 8001, 8002]);
        assert!(PortSet::parse("9001").unwrap().contains(9001));
        assert!(PortSet::parse("80,").is_none());
        assert!(PortSet::parse("9:1").is_none());
        assert!(PortSet::parse("http").is_none());
    }

    #[test]
    fn addr_specs() {
        let n = AddrSpec::parse("10.0.0.0/24").unwrap();
        assert!(n.contains("10.0.0.13".parse().unwrap()));
        assert!(!n.contains("10.0.1.13".parse().unwrap()));
        assert!(AddrSpec::parse("10.0.0.13")
            .unwrap()
            .contains("10.0.0.13".parse().unwrap()));
        assert!(AddrSpec::parse("nope").is_none());
    }
}
