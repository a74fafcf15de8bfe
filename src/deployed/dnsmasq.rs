//! dnsmasq's configuration as deployed: `address=`, `host-record=` and `server=` lines with their
//! file and line, and the files it loads (`conf-dir`, `conf-file`), read through a file source.

use super::source::{glob_match, FileRead, FileSource};
use super::{At, Loaded};
use crate::observe::VantageRef;

/// The main file; Debian's init also loads `/etc/dnsmasq.d` when it is absent.
pub const MAIN: &str = "/etc/dnsmasq.conf";
/// The directory the platform's generator writes to.
pub const CONF_DIR: &str = "/etc/dnsmasq.d";
/// How deep `conf-file`/`conf-dir` may nest before the rest is ignored (dnsmasq has no limit,
/// a loop would not end).
const MAX_DEPTH: usize = 4;

/// One name → address line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsEntry {
    /// Lower-cased name (dnsmasq compares names without case).
    pub name: String,
    /// The address as written (`10.0.0.153`, `#`, or empty for `address=/d/`).
    pub ip_text: String,
    /// `address` or `host-record`.
    pub directive: &'static str,
    /// The line as written, trimmed.
    pub text: String,
    pub at: At,
}

/// One file's directives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub entries: Vec<DnsEntry>,
    /// `server=` values.
    pub servers: Vec<(String, At)>,
    /// `conf-dir=` as (directory, include patterns, excluded suffixes).
    pub conf_dirs: Vec<(String, Vec<String>, Vec<String>)>,
    /// `conf-file=` paths.
    pub conf_files: Vec<String>,
    /// The first line that is not a comment, when it is one (the generator's header).
    pub header: Option<String>,
}

/// Parse one dnsmasq file. Never fails: lines it does not know are dnsmasq's business.
pub fn parse(file: &str, text: &str) -> Parsed {
    let mut p = Parsed::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at = At::new(file, i + 1);
        if i == 0 && line.starts_with('#') {
            p.header = Some(line.to_string());
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (line, ""),
        };
        match key {
            "address" => address(value, line, &at, &mut p.entries),
            "host-record" => host_record(value, line, &at, &mut p.entries),
            "server" => p.servers.push((value.to_string(), at)),
            "conf-file" if !value.is_empty() => p.conf_files.push(value.to_string()),
            "conf-dir" if !value.is_empty() => {
                let mut parts = value.split(',').map(str::trim);
                let dir = parts.next().unwrap_or_default().to_string();
                let (inc, exc): (Vec<String>, Vec<String>) = parts
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .partition(|s| s.starts_with('*'));
                p.conf_dirs.push((dir, inc, exc));
            }
            _ => {}
        }
    }
    p
}

/// `address=/d1/d2/ip`: every domain gets the address.
fn address(value: &str, line: &str, at: &At, out: &mut Vec<DnsEntry>) {
    let Some(rest) = value.strip_prefix('/') else {
        return;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() < 2 {
        return;
    }
    let ip = parts[parts.len() - 1].trim();
    for d in &parts[..parts.len() - 1] {
        let d = d.trim().trim_end_matches('.');
        if !d.is_empty() {
            out.push(DnsEntry {
                name: d.to_ascii_lowercase(),
                ip_text: ip.to_string(),
                directive: "address",
                text: line.to_string(),
                at: at.clone(),
            });
        }
    }
}

/// `host-record=name[,name...],ipv4[,ipv6][,ttl]`: the names before the first address.
fn host_record(value: &str, line: &str, at: &At, out: &mut Vec<DnsEntry>) {
    let fields: Vec<&str> = value.split(',').map(str::trim).collect();
    let Some(first_ip) = fields
        .iter()
        .position(|f| f.parse::<std::net::IpAddr>().is_ok())
    else {
        return;
    };
    for ip in fields[first_ip..]
        .iter()
        .filter(|f| f.parse::<std::net::Ipv4Addr>().is_ok())
    {
        for name in &fields[..first_ip] {
            out.push(DnsEntry {
                name: name.trim_end_matches('.').to_ascii_lowercase(),
                ip_text: (*ip).to_string(),
                directive: "host-record",
                text: line.to_string(),
                at: at.clone(),
            });
        }
    }
}

/// Everything dnsmasq loads on the host: the main file, then what it includes (depth-first, in
/// dnsmasq's order), each file once; without a main file, `/etc/dnsmasq.d/*`.
pub fn load(src: &dyn FileSource) -> Loaded<Vec<(String, Parsed)>> {
    let mut loaded = Loaded::default();
    let main = src.read(VantageRef::Host, &[MAIN.to_string()]);
    let mut queue: Vec<(FileRead, usize)> = match main.into_iter().next() {
        Some(FileRead::Missing { .. }) | None => src
            .read(VantageRef::Host, &[format!("{CONF_DIR}/*")])
            .into_iter()
            .map(|f| (f, 1))
            .collect(),
        Some(f) => vec![(f, 0)],
    };
    let mut seen: std::collections::HashSet<String> = Default::default();
    let mut files = Vec::new();
    while !queue.is_empty() {
        let (f, depth) = queue.remove(0);
        if !seen.insert(f.path().to_string()) {
            continue;
        }
        let Some(text) = loaded.take(f) else {
            continue;
        };
        let path = loaded.files.last().map(|x| x.0.clone()).unwrap_or_default();
        let parsed = parse(&path, &text);
        if depth < MAX_DEPTH {
            let mut inner = Vec::new();
            for c in &parsed.conf_files {
                inner.extend(src.read(VantageRef::Host, std::slice::from_ref(c)));
            }
            for (dir, inc, exc) in &parsed.conf_dirs {
                let dir = dir.trim_end_matches('/');
                for r in src.read(VantageRef::Host, &[format!("{dir}/*")]) {
                    let name = r.path().rsplit('/').next().unwrap_or_default().to_string();
                    let included = inc.is_empty() || inc.iter().any(|p| glob_match(p, &name));
                    let excluded =
                        name.ends_with('~') || exc.iter().any(|s| name.ends_with(s.as_str()));
                    if included && !excluded {
                        inner.push(r);
                    }
                }
            }
            // Included files are read where the include stands, before the rest of the queue.
            for (k, r) in inner.into_iter().enumerate() {
                queue.insert(k, (r, depth + 1));
            }
        }
        files.push((path, parsed));
    }
    loaded.value = files;
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_addresses_host_records_and_includes() {
        let text = "# Phoenix Hypervisor Internal DNS Records\naddress=/ca.internal.thinkheads.ai/10.0.0.10\n\n  address=/A.example/b.example/10.0.0.2 \nhost-record=x.example,y.example,10.0.0.3,fe80::1\nserver=8.8.8.8\nconf-dir=/etc/dnsmasq.d,*.conf\nconf-dir=/etc/other,.bak\nconf-file=/etc/extra.conf\naddress=/broken\nhost-record=noaddr\n";
        let p = parse("/etc/x.conf", text);
        assert_eq!(
            p.header.as_deref(),
            Some("# Phoenix Hypervisor Internal DNS Records")
        );
        let e: Vec<(&str, &str, u32)> = p
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.ip_text.as_str(), e.at.line))
            .collect();
        assert_eq!(
            e,
            [
                ("ca.internal.thinkheads.ai", "10.0.0.10", 2),
                ("a.example", "10.0.0.2", 4),
                ("b.example", "10.0.0.2", 4),
                ("x.example", "10.0.0.3", 5),
                ("y.example", "10.0.0.3", 5),
            ]
        );
        assert_eq!(p.servers[0].0, "8.8.8.8");
        assert_eq!(
            p.conf_dirs[0],
            ("/etc/dnsmasq.d".into(), vec!["*.conf".into()], vec![])
        );
        assert_eq!(
            p.conf_dirs[1],
            ("/etc/other".into(), vec![], vec![".bak".into()])
        );
        assert_eq!(p.conf_files, ["/etc/extra.conf"]);
    }

    #[test]
    fn load_follows_conf_dir_with_its_pattern() {
        let d = tempfile::tempdir().unwrap();
        let etc = d.path().join("host/etc");
        std::fs::create_dir_all(etc.join("dnsmasq.d")).unwrap();
        std::fs::write(
            etc.join("dnsmasq.conf"),
            "conf-dir=/etc/dnsmasq.d,*.conf\nconf-file=/etc/dnsmasq.conf\n",
        )
        .unwrap();
        std::fs::write(etc.join("dnsmasq.d/00-a.conf"), "address=/a/1.1.1.1\n").unwrap();
        std::fs::write(etc.join("dnsmasq.d/00-a.conf.bak"), "address=/a/9.9.9.9\n").unwrap();
        let src = super::super::source::DirSource {
            root: d.path().into(),
        };
        let l = load(&src);
        let names: Vec<&str> = l.value.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["/etc/dnsmasq.conf", "/etc/dnsmasq.d/00-a.conf"]);
        assert!(l.unreadable.is_empty());
    }
}
