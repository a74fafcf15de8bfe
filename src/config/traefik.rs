//! Traefik's static config template (`etc/traefik/traefik.yml.template`): entrypoints,
//! providers and certificate resolvers, read with a small YAML subset reader (block mappings,
//! scalars, comments), which is all the platform's template uses.

use super::{Provenance, Val};
use crate::error::Error;
use serde::Serialize;

/// What the static config declares.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TraefikStatic {
    pub file: String,
    /// `entryPoints.<name>.address`, in file order, with the port parsed from `:80` / `0.0.0.0:80`.
    pub entrypoints: Vec<EntryPoint>,
    /// `providers.<name>` (file, docker, ...).
    pub providers: Vec<Val<String>>,
    /// `certificatesResolvers.<name>`.
    pub cert_resolvers: Vec<Val<String>>,
    /// `ping.entryPoint`.
    pub ping_entrypoint: Option<Val<String>>,
    /// `providers.file.directory` / `.filename`.
    pub file_provider: Vec<Val<String>>,
    /// `http.routers.<name>` written in the static file (dynamic config that Traefik does not
    /// read from there).
    pub static_routers: Vec<Val<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryPoint {
    pub name: String,
    pub address: Val<String>,
    pub port: Option<u16>,
}

impl TraefikStatic {
    pub fn entrypoint(&self, name: &str) -> Option<&EntryPoint> {
        self.entrypoints.iter().find(|e| e.name == name)
    }
}

/// One `key: value` line with its full key path.
struct Line {
    path: Vec<String>,
    value: Option<String>,
    line: u32,
}

fn strip_comment(s: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && (prev == ' ' || prev == '\t' || i == 0) => return &s[..i],
            None => {}
        }
        prev = c;
    }
    s
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\'')))
    {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

fn lines(file: &str, text: &str) -> Result<Vec<Line>, Error> {
    let mut out = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let lineno = n as u32 + 1;
        let body = strip_comment(raw).trim_end();
        if body.trim().is_empty() || body.trim() == "---" {
            continue;
        }
        if body.contains('\t') && body.trim_start().len() != body.len() && body.starts_with('\t') {
            return Err(Error::input(format!(
                "{file}:{lineno}: tabs are not allowed for YAML indentation"
            )));
        }
        let indent = body.len() - body.trim_start().len();
        let content = body.trim_start();
        if content.starts_with("- ") || content == "-" {
            // list items are not needed for the facts read here
            continue;
        }
        let Some((key, rest)) = content.split_once(':') else {
            return Err(Error::input(format!(
                "{file}:{lineno}: expected `key: value` (only a YAML subset is read)"
            )));
        };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        stack.push((indent, unquote(key)));
        let value = rest.trim();
        out.push(Line {
            path: stack.iter().map(|(_, k)| k.clone()).collect(),
            value: (!value.is_empty()).then(|| unquote(value)),
            line: lineno,
        });
    }
    Ok(out)
}

/// Parse the template text; `file` is the name used in messages and provenance.
pub fn read(file: &str, text: &str) -> Result<TraefikStatic, Error> {
    let mut t = TraefikStatic {
        file: file.to_string(),
        ..Default::default()
    };
    let prov = |l: &Line| Provenance::new(file, format!("/{}", l.path.join("/")), Some(l.line));
    for l in lines(file, text)? {
        let p: Vec<&str> = l.path.iter().map(String::as_str).collect();
        match p.as_slice() {
            ["entryPoints", name, "address"] => {
                let addr = l.value.clone().unwrap_or_default();
                let port = addr
                    .rsplit(':')
                    .next()
                    .and_then(|x| x.split('/').next())
                    .and_then(|x| x.parse().ok());
                t.entrypoints.push(EntryPoint {
                    name: name.to_string(),
                    address: Val::new(addr, prov(&l)),
                    port,
                });
            }
            ["providers", name] => t.providers.push(Val::new(name.to_string(), prov(&l))),
            ["providers", "file", key] if *key == "directory" || *key == "filename" => t
                .file_provider
                .push(Val::new(l.value.clone().unwrap_or_default(), prov(&l))),
            ["certificatesResolvers", name] => {
                t.cert_resolvers.push(Val::new(name.to_string(), prov(&l)))
            }
            ["http", "routers", name] => {
                t.static_routers.push(Val::new(name.to_string(), prov(&l)))
            }
            ["ping", "entryPoint"] => {
                t.ping_entrypoint = l.value.clone().map(|v| Val::new(v, prov(&l)))
            }
            _ => {}
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_platform_template() {
        let text =
            include_str!("../../fixtures/configs/reference/etc/traefik/traefik.yml.template");
        let t = read("etc/traefik/traefik.yml.template", text).unwrap();
        let web = t.entrypoint("web").unwrap();
        assert_eq!(web.port, Some(80));
        assert_eq!(web.address.prov.line, Some(23));
        assert_eq!(t.entrypoint("traefik").unwrap().port, Some(8080));
        assert_eq!(
            t.providers
                .iter()
                .map(|p| p.value.as_str())
                .collect::<Vec<_>>(),
            vec!["file"]
        );
        assert!(t.cert_resolvers.is_empty());
        assert_eq!(t.ping_entrypoint.unwrap().value, "traefik");
        assert_eq!(t.static_routers[0].value, "dashboard");
    }

    #[test]
    fn historical_template_with_websecure_and_resolvers() {
        let text = "entryPoints:\n  web:\n    address: \":80\"\n  websecure:\n    address: \":8443\" # tls\ncertificatesResolvers:\n  internal-resolver:\n    acme:\n      caServer: \"__CA_URL__/acme/acme/directory\"\n";
        let t = read("t.yml", text).unwrap();
        assert_eq!(t.entrypoint("websecure").unwrap().port, Some(8443));
        assert_eq!(t.cert_resolvers[0].value, "internal-resolver");
    }
}
