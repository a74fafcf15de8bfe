//! Traefik as deployed in its guest: the static file's file provider, and the routers,
//! services and serversTransports of every file that provider loads, read with a YAML crate
//! (`serde_norway`), each value located by file and line.

use super::source::FileSource;
use super::{At, Loaded};
use crate::observe::VantageRef;
use serde_norway::Value;
use std::collections::HashMap;

/// The static file Traefik reads by default.
pub const STATIC: &str = "/etc/traefik/traefik.yml";
/// The provider directory the platform's template names.
pub const DYNAMIC_DIR: &str = "/etc/traefik/dynamic";

/// One router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterD {
    pub name: String,
    pub rule: String,
    pub service: String,
    pub entrypoints: Vec<String>,
    pub tls: bool,
    pub at: At,
    pub rule_at: At,
}

/// One service: its server URLs (with lines) and serversTransport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceD {
    pub name: String,
    pub urls: Vec<(String, At)>,
    pub transport: Option<String>,
    pub at: At,
}

/// Everything the file provider loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dynamic {
    pub routers: Vec<RouterD>,
    pub services: Vec<ServiceD>,
    /// serversTransports: name → (insecureSkipVerify, rootCAs, where).
    pub transports: Vec<(String, bool, Vec<String>, At)>,
}

impl Dynamic {
    pub fn router(&self, name: &str) -> Option<&RouterD> {
        self.routers.iter().find(|r| r.name == name)
    }
    pub fn service(&self, name: &str) -> Option<&ServiceD> {
        self.services.iter().find(|s| s.name == name)
    }
    /// The router whose rule names ``Host(`host`)``.
    pub fn router_for_host(&self, host: &str) -> Option<&RouterD> {
        let want = format!("Host(`{}`)", host.to_ascii_lowercase());
        self.routers.iter().find(|r| {
            r.rule
                .to_ascii_lowercase()
                .contains(&want.to_ascii_lowercase())
        })
    }
}

/// The line of each key path (`http.routers.x.rule`) in a block-style YAML file: the first
/// occurrence wins. List items (`- url: ...`) are recorded under their list's path.
fn key_lines(text: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let t = raw.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let mut indent = raw.len() - t.len();
        let mut body = t;
        if let Some(rest) = body.strip_prefix("- ") {
            indent += 2;
            body = rest.trim_start();
        }
        let Some((k, _)) = body.split_once(':') else {
            continue;
        };
        let key = k.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
        while stack.last().is_some_and(|(ind, _)| *ind >= indent) {
            stack.pop();
        }
        stack.push((indent, key));
        let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
        out.entry(path.join(".")).or_insert(i + 1);
    }
    out
}

fn s(v: &Value) -> Option<String> {
    match v {
        Value::String(x) => Some(x.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_mapping()?.get(Value::String(key.to_string()))
}

fn entries(v: Option<&Value>) -> Vec<(String, &Value)> {
    v.and_then(Value::as_mapping)
        .map(|m| m.iter().filter_map(|(k, v)| Some((s(k)?, v))).collect())
        .unwrap_or_default()
}

/// Parse one dynamic file; an error is the YAML parser's, with its line.
pub fn parse(file: &str, text: &str) -> Result<Dynamic, String> {
    let doc: Value = serde_norway::from_str(text).map_err(|e| format!("{file}: {e}"))?;
    let lines = key_lines(text);
    // The file's lines, indexed once: a URL is looked for from its key's line on.
    let text_lines: Vec<&str> = text.lines().collect();
    let at =
        |path: &str, fallback: usize| At::new(file, lines.get(path).copied().unwrap_or(fallback));
    let mut d = Dynamic::default();
    let http = get(&doc, "http");
    for (name, r) in entries(http.and_then(|h| get(h, "routers"))) {
        let base = format!("http.routers.{name}");
        let line = lines.get(&base).copied().unwrap_or(1);
        d.routers.push(RouterD {
            rule: get(r, "rule").and_then(s).unwrap_or_default(),
            service: get(r, "service").and_then(s).unwrap_or_default(),
            entrypoints: get(r, "entryPoints")
                .and_then(Value::as_sequence)
                .map(|q| q.iter().filter_map(s).collect())
                .unwrap_or_default(),
            tls: get(r, "tls").is_some(),
            at: At::new(file, line),
            rule_at: at(&format!("{base}.rule"), line),
            name,
        });
    }
    for (name, sv) in entries(http.and_then(|h| get(h, "services"))) {
        let base = format!("http.services.{name}");
        let line = lines.get(&base).copied().unwrap_or(1);
        let lb = get(sv, "loadBalancer");
        let url_line = at(&format!("{base}.loadBalancer.servers.url"), line);
        let urls = lb
            .and_then(|l| get(l, "servers"))
            .and_then(Value::as_sequence)
            .map(|q| {
                q.iter()
                    .filter_map(|x| get(x, "url").and_then(s))
                    .enumerate()
                    .map(|(i, u)| {
                        let from = (url_line.line as usize).saturating_sub(1);
                        let l = text_lines
                            .get(from..)
                            .and_then(|rest| rest.iter().position(|t| t.contains(&u)))
                            .map(|n| from + n + 1)
                            .unwrap_or(url_line.line as usize + i);
                        (u, At::new(file, l))
                    })
                    .collect()
            })
            .unwrap_or_default();
        d.services.push(ServiceD {
            urls,
            transport: lb.and_then(|l| get(l, "serversTransport")).and_then(s),
            at: At::new(file, line),
            name,
        });
    }
    for (name, t) in entries(http.and_then(|h| get(h, "serversTransports"))) {
        let line = lines
            .get(&format!("http.serversTransports.{name}"))
            .copied()
            .unwrap_or(1);
        d.transports.push((
            name,
            get(t, "insecureSkipVerify")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            get(t, "rootCAs")
                .and_then(Value::as_sequence)
                .map(|q| q.iter().filter_map(s).collect())
                .unwrap_or_default(),
            At::new(file, line),
        ));
    }
    Ok(d)
}

/// The file provider's directory or file named by the static file (`providers.file`), or the
/// platform's directory when the static file says nothing.
fn provider_paths(text: &str) -> Vec<String> {
    let doc: Value = serde_norway::from_str(text).unwrap_or(Value::Null);
    let file = get(&doc, "providers").and_then(|p| get(p, "file"));
    if let Some(dir) = file.and_then(|f| get(f, "directory")).and_then(s) {
        let dir = dir.trim_end_matches('/').to_string();
        return vec![format!("{dir}/*.yml"), format!("{dir}/*.yaml")];
    }
    if let Some(f) = file.and_then(|f| get(f, "filename")).and_then(s) {
        return vec![f];
    }
    vec![
        format!("{DYNAMIC_DIR}/*.yml"),
        format!("{DYNAMIC_DIR}/*.yaml"),
    ]
}

/// Traefik's dynamic config as the router guest `v` loads it.
pub fn load(src: &dyn FileSource, v: VantageRef) -> Loaded<Dynamic> {
    let mut loaded = Loaded::<Dynamic>::default();
    let static_read = src.read(v, &[STATIC.to_string()]).into_iter().next();
    let paths = match static_read.and_then(|f| loaded.take(f)) {
        Some(t) => provider_paths(&t),
        None => provider_paths(""),
    };
    let mut d = Dynamic::default();
    for f in src.read(v, &paths) {
        let path = f.path().to_string();
        let Some(text) = loaded.take(f) else {
            continue;
        };
        match parse(&path, &text) {
            Ok(x) => {
                d.routers.extend(x.routers);
                d.services.extend(x.services);
                d.transports.extend(x.transports);
            }
            Err(why) => loaded
                .unreadable
                .push((path, format!("Traefik would refuse it: {why}"))),
        }
    }
    loaded.value = d;
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_generators_dynamic_file_with_lines() {
        let text = include_str!("../../fixtures/golden/dynamic_conf.yml");
        let d = parse("/etc/traefik/dynamic/dynamic_conf.yml", text).unwrap();
        assert_eq!(d.routers.len(), 9);
        let r = d.router("portainer-router").unwrap();
        assert_eq!(r.service, "portainer-service");
        assert_eq!(r.rule, "Host(`portainer.internal.thinkheads.ai`)");
        assert_eq!(r.entrypoints, ["web"]);
        assert_eq!(r.at.line, 3);
        assert_eq!(r.rule_at.line, 4);
        let s = d.service("portainer-service").unwrap();
        assert_eq!(s.urls[0].0, "https://10.0.0.111:9443");
        assert_eq!(
            text.lines()
                .nth(s.urls[0].1.line as usize - 1)
                .unwrap()
                .trim(),
            "- url: \"https://10.0.0.111:9443\""
        );
        assert_eq!(s.transport.as_deref(), Some("internal-ca@file"));
        assert_eq!(d.transports[0].0, "internal-ca");
        assert!(d.router_for_host("ollama.internal.thinkheads.ai").is_some());
    }

    #[test]
    fn provider_paths_follow_the_static_file() {
        assert_eq!(
            provider_paths("providers:\n  file:\n    directory: /x/dyn/\n    filename: y.yml\n"),
            ["/x/dyn/*.yml", "/x/dyn/*.yaml"]
        );
        assert_eq!(
            provider_paths("providers:\n  file:\n    filename: /y.yml\n"),
            ["/y.yml"]
        );
        assert_eq!(provider_paths(": : :")[0], "/etc/traefik/dynamic/*.yml");
        assert!(parse("f", "http: [").is_err());
    }
}
