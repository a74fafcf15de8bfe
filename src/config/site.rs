//! The optional site file `<config-dir>/phoenix-doctor.toml`: facts the platform JSON lacks
//! (fixed ports, trust-anchor and identity paths, simulated vantage files).
//!
//! ```toml
//! [ports]              # dns, gateway, router, ca (and portainer, agent) override platform ports
//! gateway = 443
//! [paths]              # variables for probes/*.toml, used as {name}
//! root_ca = "/path/phoenix_root_ca.crt"
//! [vantage."lxc:102"]  # read these files as the guest's system files
//! hosts_file = "/tmp/lab/vantages/lxc-102/hosts"
//! resolv_conf = "/tmp/lab/vantages/lxc-102/resolv.conf"
//! root = "/tmp/lab/vantages/lxc-102/root"  # stands for the guest's `/` when files are read
//! ```

use super::{Provenance, Val};
use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The parsed site file (all empty when there is none).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SiteFile {
    /// Display name of the file, if one was read.
    pub file: Option<String>,
    pub ports: SitePorts,
    pub paths: BTreeMap<String, Val<String>>,
    /// Keyed by vantage (`host`, `lxc:102`, `vm:1001`).
    pub vantages: BTreeMap<String, SiteVantage>,
}

/// `[ports]`: every entry is optional.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SitePorts {
    pub ports: BTreeMap<String, Val<u16>>,
}

impl SitePorts {
    pub fn get(&self, name: &str) -> Option<&Val<u16>> {
        self.ports.get(name)
    }
}

/// `[vantage."<ref>"]`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SiteVantage {
    pub hosts_file: Option<Val<String>>,
    pub resolv_conf: Option<Val<String>>,
    /// A directory that stands for the guest's `/` when its files are read (the lab's deployed
    /// files).
    pub root: Option<Val<String>>,
}

#[derive(Deserialize)]
struct RawSite {
    #[serde(default)]
    ports: BTreeMap<String, toml::Spanned<u16>>,
    #[serde(default)]
    paths: BTreeMap<String, toml::Spanned<String>>,
    #[serde(default)]
    vantage: BTreeMap<String, RawVantage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVantage {
    hosts_file: Option<toml::Spanned<String>>,
    resolv_conf: Option<toml::Spanned<String>>,
    root: Option<toml::Spanned<String>>,
}

/// True when the line holding `offset` assigns a key named like a secret (`token = ...`,
/// `db.password = ...`, `{ api_key = ... }`), or lies in a table named like one.
fn secret_line(text: &str, offset: usize) -> bool {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = &text[start..end];
    let words = line
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| !w.is_empty());
    let table = text[..start]
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('['))
        .unwrap_or("");
    words
        .chain(table.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')))
        .any(super::access::is_secret_key)
}

/// A TOML message with every quoted value replaced by `<redacted>`.
fn redact(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(['"', '`', '\'']) {
        let q = rest[i..].chars().next().unwrap_or('"');
        out.push_str(&rest[..i]);
        match rest[i + 1..].find(q) {
            Some(j) => {
                out.push_str("<redacted>");
                rest = &rest[i + 1 + j + 1..];
            }
            None => {
                out.push_str("<redacted>");
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn line_of(text: &str, offset: usize) -> u32 {
    text[..offset.min(text.len())].matches('\n').count() as u32 + 1
}

/// Parse the site file text; `file` is the name used in messages.
pub fn read(file: &str, text: &str) -> Result<SiteFile, Error> {
    let raw: RawSite = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start) as usize);
        let msg = match e.span() {
            Some(span) if secret_line(text, span.start) => redact(e.message()),
            _ => e.message().to_string(),
        };
        crate::error::ConfigError::new(file, msg).at_line(line)
    })?;
    let val = |section: &str, key: &str, s: &toml::Spanned<String>| {
        Val::new(
            s.get_ref().clone(),
            Provenance::new(
                file,
                format!("/{section}/{key}"),
                Some(line_of(text, s.span().start)),
            ),
        )
    };
    let mut site = SiteFile {
        file: Some(file.to_string()),
        ..Default::default()
    };
    for (k, v) in &raw.ports {
        site.ports.ports.insert(
            k.clone(),
            Val::new(
                *v.get_ref(),
                Provenance::new(
                    file,
                    format!("/ports/{k}"),
                    Some(line_of(text, v.span().start)),
                ),
            ),
        );
    }
    for (k, v) in &raw.paths {
        site.paths.insert(k.clone(), val("paths", k, v));
    }
    for (k, v) in &raw.vantage {
        if k != "host" && k.parse::<crate::observe::VantageRef>().is_err() {
            return Err(crate::error::ConfigError::new(
                file,
                "expected `host`, `lxc:<id>` or `vm:<id>`",
            )
            .at_pointer(format!("[vantage.\"{k}\"]"))
            .into());
        }
        let section = format!("vantage/{k}");
        site.vantages.insert(
            k.clone(),
            SiteVantage {
                hosts_file: v
                    .hosts_file
                    .as_ref()
                    .map(|s| val(&section, "hosts_file", s)),
                resolv_conf: v
                    .resolv_conf
                    .as_ref()
                    .map(|s| val(&section, "resolv_conf", s)),
                root: v.root.as_ref().map(|s| val(&section, "root", s)),
            },
        );
    }
    Ok(site)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_file_reads_with_lines() {
        let t = "[ports]\ngateway = 8443\n\n[paths]\nroot_ca = \"/x/root.crt\"\n[vantage.\"lxc:102\"]\nhosts_file = \"/h\"\n";
        let s = read("etc/phoenix-doctor.toml", t).unwrap();
        let g = s.ports.get("gateway").unwrap();
        assert_eq!(g.value, 8443);
        assert_eq!(g.prov.line, Some(2));
        assert_eq!(s.paths["root_ca"].prov.line, Some(5));
        assert_eq!(
            s.vantages["lxc:102"].hosts_file.as_ref().unwrap().value,
            "/h"
        );
    }

    #[test]
    fn type_errors_never_echo_secret_values() {
        for t in [
            "[ports]\ntoken = \"S3CRET\"\n",
            "[ports]\napi_key = \"S3CRET\"\n",
            "[paths]\npassword = 4711\n",
            "[ports]\nx = 1\n[vantage.\"lxc:1\"]\nhosts_file = { passphrase = \"S3CRET\" }\n",
            "[ports.credentials]\nuser = \"S3CRET\"\n",
            "[ports]\ndb_password = 'S3CRET'\n",
        ] {
            let e = read("s.toml", t).unwrap_err().to_string();
            assert!(!e.contains("S3CRET") && !e.contains("4711"), "{t}: {e}");
            assert!(e.starts_with("s.toml:"), "{e}");
        }
        // Other values are still quoted, to help.
        let e = read("s.toml", "[ports]\ngateway = \"https\"\n").unwrap_err();
        assert!(e.to_string().contains("https"), "{e}");
    }

    #[test]
    fn bad_site_files_are_input_errors() {
        let e = read("s.toml", "[ports]\ngateway = \"x\"\n").unwrap_err();
        assert!(e.to_string().starts_with("s.toml:2:"), "{e}");
        let e = read("s.toml", "[vantage.\"box\"]\nhosts_file = \"/h\"\n").unwrap_err();
        assert!(e.to_string().contains("lxc:<id>"), "{e}");
        assert!(read("s.toml", "[vantage.\"vm:1\"]\nhosts = \"/h\"\n").is_err());
    }
}
