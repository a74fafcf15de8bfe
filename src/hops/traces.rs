//! Trace definitions: `probes/*.toml`, embedded in the binary and overridable with
//! `--probes DIR`. The schema is documented in `docs/probes.md`; [`super::traces`] holds the
//! built-in ones, parsed once.
//!
//! A definition names hops (vantage → component) and the layers to check on each; addresses,
//! ports, nameservers and DNS answers come from the model, not from the TOML.

use crate::config::Provenance;
use crate::error::Error;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The built-in definitions, embedded at build time.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "probes/qdrant.toml",
        include_str!("../../probes/qdrant.toml"),
    ),
    (
        "probes/portainer.toml",
        include_str!("../../probes/portainer.toml"),
    ),
    ("probes/agent.toml", include_str!("../../probes/agent.toml")),
    (
        "probes/step-ca.toml",
        include_str!("../../probes/step-ca.toml"),
    ),
    (
        "probes/service.toml",
        include_str!("../../probes/service.toml"),
    ),
];

/// A value with the file and line it was written on.
#[derive(Debug, Clone, PartialEq)]
pub struct Var {
    pub value: String,
    pub prov: Provenance,
}

/// One trace definition.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceDef {
    pub name: String,
    pub description: String,
    /// Other names that select this trace (`qdrant_service`).
    pub aliases: Vec<String>,
    /// A template applied to every routed service and stack without a named trace.
    pub generic: bool,
    /// Default values of `{name}` variables (the site file's `[paths]` override them).
    pub vars: BTreeMap<String, Var>,
    /// For generic traces: the HTTP path to request per service (`{health}`), default `/`.
    pub health: BTreeMap<String, String>,
    /// For generic traces: expected statuses per service (default: any 2xx).
    pub status: BTreeMap<String, Vec<u16>>,
    pub hops: Vec<HopDef>,
    /// The file it was read from (`probes/qdrant.toml`).
    pub file: String,
}

/// One hop of a definition.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HopDef {
    /// Hop id (may use `{service}` in generic traces).
    pub id: String,
    /// Words for people; may use `{ip}`, `{port}` and the other variables.
    #[serde(default)]
    pub title: String,
    /// Vantage: `host`, `lxc:<id>`, `vm:<id>`, or a component (`gateway`, `router`, `ca`,
    /// `portainer`, `agent`) resolved through the model.
    pub from: String,
    /// Component reached: `dnsmasq`, `gateway`, `router`, `ca`, `portainer`, `agent`,
    /// `stack:<name>`, `route:<name>`, `backend:<service>`.
    pub to: String,
    /// Hops behind this one that a proxied request passes through (nearest first).
    #[serde(default)]
    pub through: Vec<String>,
    /// Which request path of the trace the hop serves: `target` for the target's own request
    /// (the hops in its `through` inherit it), any other label (`deploy`, `ca`) for the
    /// platform's other paths. See `docs/probes.md`.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub dns: Option<DnsDef>,
    #[serde(default)]
    pub tcp: bool,
    #[serde(default)]
    pub tls: Option<TlsDef>,
    #[serde(default)]
    pub mtls: Option<MtlsDef>,
    #[serde(default)]
    pub http: Option<HttpDef>,
}

impl HopDef {
    /// True when the hop checks this layer.
    pub fn checks(&self, layer: crate::observe::Layer) -> bool {
        use crate::observe::Layer;
        match layer {
            Layer::Dns => self.dns.is_some(),
            Layer::Tcp => self.tcp,
            Layer::Tls => self.tls.is_some(),
            Layer::Mtls => self.mtls.is_some(),
            Layer::Http => self.http.is_some(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsDef {
    /// Names to resolve: a label (`qdrant` → `qdrant.<domain>`) or a full name with a dot at the end.
    pub names: Vec<String>,
    /// `dnsmasq` (the host's DNS server) or `own` (the vantage's first configured nameserver).
    #[serde(default = "dnsmasq")]
    pub server: String,
    /// Also read the vantage's hosts file and resolv.conf.
    #[serde(default)]
    pub system: bool,
}

fn dnsmasq() -> String {
    "dnsmasq".to_string()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsDef {
    pub sni: String,
    /// A PEM trust-anchor path (usually a `{variable}`), or `none`.
    #[serde(default)]
    pub trust: Option<String>,
    /// A documented self-signed server: the leaf must name one of these.
    #[serde(default)]
    pub self_signed: Option<Vec<String>>,
    /// Only when the target's scheme is this (`https`).
    #[serde(default)]
    pub when: Option<crate::observe::Scheme>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtlsDef {
    pub sni: String,
    #[serde(default)]
    pub trust: Option<String>,
    #[serde(default)]
    pub cert: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    /// The server must require a client certificate.
    #[serde(default)]
    pub require: bool,
    /// Include this layer only when every variable it uses is defined.
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub when: Option<crate::observe::Scheme>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpDef {
    /// The URL; its host names the virtual host, the connection goes to the hop's target.
    pub url: String,
    /// Acceptable statuses (empty = any 2xx; generic traces take them from `[status]`).
    #[serde(default)]
    pub status: Vec<u16>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub trust: Option<String>,
    #[serde(default)]
    pub self_signed: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    generic: bool,
    #[serde(default)]
    vars: BTreeMap<String, toml::Spanned<String>>,
    #[serde(default)]
    health: BTreeMap<String, String>,
    #[serde(default)]
    status: BTreeMap<String, Vec<u16>>,
    #[serde(default)]
    hop: Vec<HopDef>,
}

fn line_of(text: &str, offset: usize) -> u32 {
    text[..offset.min(text.len())].matches('\n').count() as u32 + 1
}

/// Parse one definition file.
pub fn parse(file: &str, text: &str) -> Result<TraceDef, Error> {
    let f: FileDef = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start) as usize);
        crate::error::ConfigError::new(file, e.message().trim_end()).at_line(line)
    })?;
    if f.hop.is_empty() {
        return Err(Error::input(format!(
            "{file}: a trace needs at least one [[hop]]"
        )));
    }
    let mut ids = Vec::new();
    for h in &f.hop {
        if ids.contains(&h.id) {
            return Err(Error::input(format!(
                "{file}: hop id `{}` is used twice",
                h.id
            )));
        }
        ids.push(h.id.clone());
        if h.dns.is_none() && !h.tcp && h.tls.is_none() && h.mtls.is_none() && h.http.is_none() {
            return Err(Error::input(format!(
                "{file}: hop `{}` checks no layer (dns, tcp, tls, mtls, http)",
                h.id
            )));
        }
        if let Some(p) = &h.path {
            if p.is_empty() || !p.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                return Err(Error::input(format!(
                    "{file}: hop `{}`: path must be a label of lowercase letters and `-` (`target`, `deploy`, ...), found \"{p}\"",
                    h.id
                )));
            }
        }
        if let Some(d) = &h.dns {
            if d.server != "dnsmasq" && d.server != "own" {
                return Err(Error::input(format!(
                    "{file}: hop `{}`: dns.server must be \"dnsmasq\" or \"own\", found \"{}\"",
                    h.id, d.server
                )));
            }
        }
    }
    let vars = f
        .vars
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                Var {
                    value: v.get_ref().clone(),
                    prov: Provenance::new(
                        file,
                        format!("/vars/{k}"),
                        Some(line_of(text, v.span().start)),
                    ),
                },
            )
        })
        .collect();
    Ok(TraceDef {
        name: f.name,
        description: f.description,
        aliases: f.aliases,
        generic: f.generic,
        vars,
        health: f.health,
        status: f.status,
        hops: f.hop,
        file: file.to_string(),
    })
}

/// Parse every `(file, text)` and check that no trace name or alias is defined twice.
pub fn parse_all<F: AsRef<str>, T: AsRef<str>>(files: &[(F, T)]) -> Result<Vec<TraceDef>, Error> {
    let defs = files
        .iter()
        .map(|(f, t)| parse(f.as_ref(), t.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut names: Vec<&str> = Vec::new();
    for d in &defs {
        for n in std::iter::once(d.name.as_str()).chain(d.aliases.iter().map(String::as_str)) {
            if names.contains(&n) {
                return Err(Error::input(format!(
                    "{}: trace name `{n}` is defined twice",
                    d.file
                )));
            }
            names.push(n);
        }
    }
    Ok(defs)
}

/// The built-in definitions, or every `*.toml` in `probes_dir` (sorted by file name).
pub fn load_defs(probes_dir: Option<&Path>) -> Result<Vec<TraceDef>, Error> {
    let Some(dir) = probes_dir else {
        return super::traces().map(<[TraceDef]>::to_vec);
    };
    let rd = std::fs::read_dir(dir).map_err(|e| {
        Error::input(format!(
            "--probes {}: cannot read the directory: {e}",
            dir.display()
        ))
    })?;
    let mut files: Vec<_> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut texts = Vec::new();
    for p in files {
        let text = crate::fsutil::read_bounded_string(&p, crate::fsutil::FileKind::SiteFile)
            .map_err(|e| Error::input(format!("cannot read {e}")))?;
        texts.push((p.display().to_string(), text));
    }
    if texts.is_empty() {
        return Err(Error::input(format!(
            "--probes {}: no *.toml trace definitions there",
            dir.display()
        )));
    }
    parse_all(&texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOP: &str =
        "name = \"t\"\n[[hop]]\nid = \"a\"\nfrom = \"host\"\nto = \"gateway\"\ntcp = true\n";

    #[test]
    fn a_path_label_is_read_and_checked() {
        let d = parse("t.toml", &format!("{HOP}path = \"target\"\n")).unwrap();
        assert_eq!(d.hops[0].path.as_deref(), Some("target"));
        let e = parse("t.toml", &format!("{HOP}path = \"Deploy Path\"\n")).unwrap_err();
        assert!(
            e.to_string().contains("t.toml: hop `a`: path must be"),
            "{e}"
        );
    }
}
