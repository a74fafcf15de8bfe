//! The NGINX site as loaded (`sites-enabled/*`, `conf.d/*.conf` and what they include): servers
//! with `listen`, `server_name`, `ssl_certificate` and each location's `proxy_pass` (through
//! `upstream` blocks), every value with its file and line. A small tokenizer of NGINX's syntax
//! (words, quotes, `{ } ;`, comments), bounded in depth; it never panics on hostile text.

use super::source::{FileRead, FileSource};
use super::{At, Loaded};
use crate::observe::VantageRef;

/// The files NGINX loads besides `nginx.conf` on the platform (`include conf.d/*.conf,
/// sites-enabled/*`).
pub const SITE_GLOBS: [&str; 2] = ["/etc/nginx/conf.d/*.conf", "/etc/nginx/sites-enabled/*"];
const MAX_DEPTH: usize = 32;
const MAX_INCLUDE_DEPTH: usize = 4;

/// One directive: `name args... ;` or `name args... { block }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    pub at: At,
    pub block: Option<Vec<Directive>>,
}

/// A `server { }` block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Server {
    pub at: Option<At>,
    /// `listen` values as written (`443 ssl http2`).
    pub listen: Vec<(String, At)>,
    pub server_names: Vec<(String, At)>,
    pub ssl_certificate: Option<(String, At)>,
    /// The key's path (its contents are never read).
    pub ssl_certificate_key: Option<(String, At)>,
    /// (location path, proxy_pass target, where the proxy_pass is).
    pub proxies: Vec<(String, String, At)>,
}

impl Server {
    /// Does this server listen on `port` (`443`, `[::]:443`, `10.0.0.153:443 ssl`)?
    pub fn listens_on(&self, port: u16) -> bool {
        self.listen.iter().any(|(l, _)| {
            let addr = l.split_whitespace().next().unwrap_or_default();
            let p = addr.rsplit(':').next().unwrap_or(addr);
            p.parse::<u16>().ok() == Some(port)
        })
    }

    /// Does `server_name` match `host` (exact, `*.suffix`, `prefix.*`)?
    pub fn serves(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.server_names.iter().any(|(n, _)| {
            let n = n.to_ascii_lowercase();
            n == host
                || n.strip_prefix("*.")
                    .is_some_and(|s| host.ends_with(&format!(".{s}")))
                || n.strip_prefix('.')
                    .is_some_and(|s| host == s || host.ends_with(&format!(".{s}")))
                || n.strip_suffix(".*")
                    .is_some_and(|p| host.starts_with(&format!("{p}.")))
        })
    }

    /// Is it the default server of `port` (`listen ... default_server`)?
    pub fn default_for(&self, port: u16) -> bool {
        self.listen.iter().any(|(l, _)| {
            l.split_whitespace()
                .any(|w| w == "default_server" || w == "default")
        }) && self.listens_on(port)
    }

    /// The `proxy_pass` of `location /` (else of the shortest location).
    pub fn root_proxy(&self) -> Option<&(String, String, At)> {
        self.proxies
            .iter()
            .find(|(p, _, _)| p == "/")
            .or_else(|| self.proxies.iter().min_by_key(|(p, _, _)| p.len()))
    }
}

/// The loaded site: its servers and upstream blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Site {
    pub servers: Vec<Server>,
    /// `upstream name { server addr; }` → the servers.
    pub upstreams: Vec<(String, Vec<(String, At)>)>,
}

impl Site {
    /// The server NGINX picks for `host` on `port`: the first whose name matches, else the
    /// port's default server, else its first server.
    pub fn server_for(&self, host: &str, port: u16) -> Option<&Server> {
        let on: Vec<&Server> = self.servers.iter().filter(|s| s.listens_on(port)).collect();
        on.iter()
            .find(|s| s.serves(host))
            .or_else(|| on.iter().find(|s| s.default_for(port)))
            .or_else(|| on.first())
            .copied()
    }

    /// A `proxy_pass` target resolved through `upstream` blocks: `http://name/x` becomes one
    /// `http://addr` per upstream server; other targets stay as they are.
    pub fn resolve(&self, target: &str) -> Vec<(String, Option<At>)> {
        let (scheme, rest) = target.split_once("://").unwrap_or(("http", target));
        let host = rest.split('/').next().unwrap_or(rest);
        match self.upstreams.iter().find(|(n, _)| n == host) {
            Some((_, servers)) => servers
                .iter()
                .map(|(s, at)| (format!("{scheme}://{s}"), Some(at.clone())))
                .collect(),
            None => vec![(format!("{scheme}://{host}"), None)],
        }
    }
}

struct Token {
    text: String,
    line: usize,
    /// `{`, `}` or `;` outside quotes.
    punct: bool,
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    let mut word = String::new();
    let mut word_line = 1;
    let flush = |w: &mut String, l: usize, out: &mut Vec<Token>| {
        if !w.is_empty() {
            out.push(Token {
                text: std::mem::take(w),
                line: l,
                punct: false,
            });
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                flush(&mut word, word_line, &mut out);
                line += 1;
            }
            c if c.is_whitespace() => flush(&mut word, word_line, &mut out),
            '#' if word.is_empty() => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '{' | '}' | ';' => {
                flush(&mut word, word_line, &mut out);
                out.push(Token {
                    text: c.to_string(),
                    line,
                    punct: true,
                });
            }
            '"' | '\'' => {
                if word.is_empty() {
                    word_line = line;
                }
                while let Some(q) = chars.next() {
                    match q {
                        _ if q == c => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                word.push(n);
                            }
                        }
                        '\n' => {
                            line += 1;
                            word.push(q);
                        }
                        _ => word.push(q),
                    }
                }
                if word.is_empty() {
                    out.push(Token {
                        text: String::new(),
                        line,
                        punct: false,
                    });
                }
            }
            _ => {
                if word.is_empty() {
                    word_line = line;
                }
                word.push(c);
            }
        }
    }
    flush(&mut word, word_line, &mut out);
    out
}

/// Parse one file into directives; an error names the line (NGINX would refuse the file).
pub fn parse(file: &str, text: &str) -> Result<Vec<Directive>, String> {
    let tokens = tokenize(text);
    let mut pos = 0;
    let out = block(file, &tokens, &mut pos, 0)?;
    match tokens.get(pos) {
        None => Ok(out),
        Some(t) => Err(format!("{file}:{}: unexpected `{}`", t.line, t.text)),
    }
}

fn block(file: &str, t: &[Token], pos: &mut usize, depth: usize) -> Result<Vec<Directive>, String> {
    if depth > MAX_DEPTH {
        let line = t.get(*pos).map(|x| x.line).unwrap_or(0);
        return Err(format!(
            "{file}:{line}: blocks nested deeper than {MAX_DEPTH}"
        ));
    }
    let mut out = Vec::new();
    while let Some(tok) = t.get(*pos) {
        if tok.punct && tok.text == "}" {
            if depth == 0 {
                return Err(format!("{file}:{}: unexpected `}}`", tok.line));
            }
            return Ok(out);
        }
        if tok.punct {
            return Err(format!("{file}:{}: unexpected `{}`", tok.line, tok.text));
        }
        let at = At::new(file, tok.line);
        let name = tok.text.clone();
        *pos += 1;
        let mut args = Vec::new();
        loop {
            let Some(a) = t.get(*pos) else {
                return Err(format!(
                    "{file}:{}: `{name}` does not end with `;`",
                    at.line
                ));
            };
            *pos += 1;
            if !a.punct {
                args.push(a.text.clone());
            } else if a.text == ";" {
                out.push(Directive {
                    name,
                    args,
                    at,
                    block: None,
                });
                break;
            } else if a.text == "{" {
                let inner = block(file, t, pos, depth + 1)?;
                match t.get(*pos) {
                    Some(c) if c.punct && c.text == "}" => *pos += 1,
                    _ => return Err(format!("{file}:{}: `{name}` block is not closed", at.line)),
                }
                out.push(Directive {
                    name,
                    args,
                    at,
                    block: Some(inner),
                });
                break;
            } else {
                return Err(format!("{file}:{}: unexpected `}}`", a.line));
            }
        }
    }
    if depth > 0 {
        return Err(format!(
            "{file}: a block is not closed at the end of the file"
        ));
    }
    Ok(out)
}

/// The servers and upstreams of parsed directives (at any depth: `http { server { } }` too).
pub fn site(dirs: &[Directive]) -> Site {
    let mut s = Site::default();
    collect(dirs, &mut s);
    s
}

fn collect(dirs: &[Directive], s: &mut Site) {
    for d in dirs {
        match (d.name.as_str(), &d.block) {
            ("server", Some(b)) => s.servers.push(server(d, b)),
            ("upstream", Some(b)) => {
                let servers = b
                    .iter()
                    .filter(|x| x.name == "server")
                    .filter_map(|x| x.args.first().map(|a| (a.clone(), x.at.clone())))
                    .collect();
                s.upstreams
                    .push((d.args.first().cloned().unwrap_or_default(), servers));
            }
            (_, Some(b)) => collect(b, s),
            _ => {}
        }
    }
}

fn server(d: &Directive, b: &[Directive]) -> Server {
    let mut s = Server {
        at: Some(d.at.clone()),
        ..Server::default()
    };
    for x in b {
        match x.name.as_str() {
            "listen" => s.listen.push((x.args.join(" "), x.at.clone())),
            "server_name" => s
                .server_names
                .extend(x.args.iter().map(|n| (n.clone(), x.at.clone()))),
            "ssl_certificate" => {
                s.ssl_certificate = x.args.first().map(|c| (c.clone(), x.at.clone()))
            }
            "ssl_certificate_key" => {
                s.ssl_certificate_key = x.args.first().map(|c| (c.clone(), x.at.clone()))
            }
            "location" => locations(x, &mut s.proxies, 0),
            _ => {}
        }
    }
    s
}

fn locations(loc: &Directive, out: &mut Vec<(String, String, At)>, depth: usize) {
    let path = loc.args.last().cloned().unwrap_or_default();
    for x in loc.block.iter().flatten() {
        if x.name == "proxy_pass" {
            if let Some(t) = x.args.first() {
                out.push((path.clone(), t.clone(), x.at.clone()));
            }
        } else if x.name == "location" && depth < MAX_DEPTH {
            locations(x, out, depth + 1);
        }
    }
}

/// Replace `include` directives by the directives of the files they name (relative to
/// `/etc/nginx`), up to a few levels.
fn expand(
    dirs: Vec<Directive>,
    src: &dyn FileSource,
    v: VantageRef,
    loaded: &mut Loaded<Site>,
    depth: usize,
) -> Vec<Directive> {
    let mut out = Vec::with_capacity(dirs.len());
    for mut d in dirs {
        if d.name == "include" && d.block.is_none() && depth < MAX_INCLUDE_DEPTH {
            for a in &d.args {
                let path = if a.starts_with('/') {
                    a.clone()
                } else {
                    format!("/etc/nginx/{a}")
                };
                for f in src.read(v, &[path]) {
                    if let Some(inner) = read_directives(f, loaded) {
                        out.extend(expand(inner, src, v, loaded, depth + 1));
                    }
                }
            }
            continue;
        }
        if let Some(b) = d.block.take() {
            d.block = Some(expand(b, src, v, loaded, depth));
        }
        out.push(d);
    }
    out
}

fn read_directives(f: FileRead, loaded: &mut Loaded<Site>) -> Option<Vec<Directive>> {
    let path = f.path().to_string();
    let text = loaded.take(f)?;
    match parse(&path, &text) {
        Ok(d) => Some(d),
        Err(why) => {
            loaded
                .unreadable
                .push((path, format!("NGINX would refuse it: {why}")));
            None
        }
    }
}

/// The site as the gateway guest `v` loads it.
pub fn load(src: &dyn FileSource, v: VantageRef) -> Loaded<Site> {
    let mut loaded = Loaded::<Site>::default();
    let globs: Vec<String> = SITE_GLOBS.iter().map(|s| s.to_string()).collect();
    let mut all = Vec::new();
    for f in src.read(v, &globs) {
        if let Some(d) = read_directives(f, &mut loaded) {
            all.extend(expand(d, src, v, &mut loaded, 0));
        }
    }
    loaded.value = site(&all);
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;

    const GATEWAY: &str = "server { listen 80; server_name _;\n  location /.well-known/acme-challenge/ { root /var/www/html; allow all; }\n  location / { return 301 https://$host$request_uri; } }\nserver {\n    listen 443 ssl http2;\n    server_name nginx.internal.thinkheads.ai portainer.internal.thinkheads.ai;\n    ssl_certificate /etc/nginx/ssl/nginx.internal.thinkheads.ai.crt; # the cert\n    location / {\n        proxy_pass http://10.0.0.12:80;\n        proxy_set_header Host \"$host\";\n    }\n}\n";

    #[test]
    fn reads_the_generators_gateway_site() {
        let d = parse("/etc/nginx/sites-enabled/gateway", GATEWAY).unwrap();
        let s = site(&d);
        assert_eq!(s.servers.len(), 2);
        let tls = s
            .server_for("portainer.internal.thinkheads.ai", 443)
            .unwrap();
        assert_eq!(tls.listen[0].0, "443 ssl http2");
        let (path, target, at) = tls.root_proxy().unwrap();
        assert_eq!(
            (path.as_str(), target.as_str(), at.line),
            ("/", "http://10.0.0.12:80", 9)
        );
        assert_eq!(tls.ssl_certificate.as_ref().unwrap().1.line, 7);
        assert_eq!(tls.ssl_certificate_key, None);
        // Not named: the first server of the port answers.
        assert!(s.server_for("qdrant.internal.thinkheads.ai", 443).is_some());
        assert!(s.server_for("x", 8443).is_none());
    }

    #[test]
    fn upstream_blocks_resolve_and_bad_syntax_names_the_line() {
        let text = "upstream traefik {\n server 10.0.0.12:8080;\n}\nserver { listen 443 ssl; server_name *.example;\n location / { proxy_pass http://traefik; } }\n";
        let s = site(&parse("f", text).unwrap());
        let tls = s.server_for("a.example", 443).unwrap();
        let target = &tls.root_proxy().unwrap().1;
        let r = s.resolve(target);
        assert_eq!(r[0].0, "http://10.0.0.12:8080");
        assert_eq!(r[0].1.as_ref().unwrap().line, 2);
        assert!(parse("f", "server {\n listen 80;\n")
            .unwrap_err()
            .contains("not closed"));
        assert!(parse("f", "}\n").unwrap_err().contains("f:1"));
        assert!(parse("f", "listen 80").unwrap_err().contains("`;`"));
        let deep = "a {".repeat(100);
        assert!(parse("f", &deep).is_err());
    }
}
