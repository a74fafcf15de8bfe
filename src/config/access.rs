//! Typed access to a parsed JSON document: every read knows its JSON pointer and line, and a
//! wrong type becomes one clear [`Error::Input`] naming file, line, pointer, expected and found.
//!
//! Values are never quoted in messages when the key looks like secret material.

use super::json::{Node, Value};
use super::{Provenance, Val};
use crate::error::Error;

/// One parsed file.
#[derive(Debug, Clone)]
pub struct Doc {
    /// The name used in messages and provenance (e.g. `etc/phoenix_vm_configs.json`), shared
    /// by every value's provenance.
    pub file: super::Text,
    pub root: Node,
}

impl Doc {
    pub fn at(&self) -> At<'_> {
        At {
            doc: self,
            node: &self.root,
            ptr: String::new(),
        }
    }
}

/// A position in a document: the node and its JSON pointer.
#[derive(Debug, Clone)]
pub struct At<'a> {
    pub doc: &'a Doc,
    pub node: &'a Node,
    pub ptr: String,
}

/// Escape one JSON pointer segment (RFC 6901).
pub fn escape(seg: &str) -> String {
    seg.replace('~', "~0").replace('/', "~1")
}

/// True for keys whose values must never be printed (passwords, secrets, tokens, key material).
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password")
        || k.contains("passwd")
        || k.contains("passphrase")
        || k.contains("secret")
        || k.contains("token")
        || k.contains("credential")
        || k.contains("private")
        || (k.contains("key")
            && !k.contains("path")
            && !k.contains("file")
            && !k.contains("public"))
}

/// Keys whose values may be quoted in messages (addresses, ports, keywords, ids).
fn quotable(key: &str) -> bool {
    const KEYS: &[&str] = &[
        "ip",
        "gw",
        "address",
        "gateway",
        "nameserver",
        "nameservers",
        "dns_nameservers",
        "port",
        "type",
        "action",
        "proto",
        "source",
        "dest",
        "vmid",
        "enabled",
        "domain_name",
        "default_subnet",
        "portainer_server_ip",
        "portainer_server_port",
        "portainer_agent_port",
        "upstream_servers",
        "clone_from_ctid",
        "clone_from_vmid",
    ];
    KEYS.contains(&key) || key.parse::<usize>().is_ok()
}

impl<'a> At<'a> {
    pub fn prov(&self) -> Provenance {
        Provenance::new(self.doc.file.clone(), self.pointer(), Some(self.node.line))
    }

    fn pointer(&self) -> &str {
        if self.ptr.is_empty() {
            "/"
        } else {
            &self.ptr
        }
    }

    /// The last pointer segment (the key or index).
    pub fn key(&self) -> &str {
        self.ptr.rsplit('/').next().unwrap_or("")
    }

    /// An input error at this position.
    pub fn error(&self, msg: impl std::fmt::Display) -> Error {
        crate::error::ConfigError::new(self.doc.file.to_string(), msg.to_string())
            .at_line(Some(self.node.line as usize))
            .at_pointer(self.pointer())
            .into()
    }

    /// A wrong-type (or wrong-value) error: expected X, found Y. The value is quoted only for
    /// non-secret strings.
    pub fn expected(&self, what: &str) -> Error {
        // Values are quoted only for keys whose values are addresses, ports or keywords, so a
        // secret typed into the wrong place is never echoed.
        let quote = !self.ptr.split('/').any(is_secret_key) && quotable(self.key());
        let found = match &self.node.value {
            Value::Str(s) if quote && s.len() <= 80 => format!("the string \"{s}\""),
            Value::Num(n) if quote => format!("the number {n}"),
            v => v.type_name().to_string(),
        };
        self.error(format_args!("expected {what}, found {found}"))
    }

    /// The member `key`; absent and `null` both count as absent (as jq's `// empty`).
    pub fn get(&self, key: &str) -> Option<At<'a>> {
        let n = self.node.get(key)?;
        if n.value == Value::Null {
            return None;
        }
        Some(At {
            doc: self.doc,
            node: n,
            ptr: format!("{}/{}", self.ptr, escape(key)),
        })
    }

    /// The member `key`, which must exist.
    pub fn field(&self, key: &str, what: &str) -> Result<At<'a>, Error> {
        match &self.node.value {
            Value::Obj(_) => self
                .get(key)
                .ok_or_else(|| self.error(format_args!("missing key `{key}` ({what})"))),
            _ => Err(self.expected("an object")),
        }
    }

    pub fn is_obj(&self) -> bool {
        matches!(self.node.value, Value::Obj(_))
    }

    /// Require an object (for optional sections that exist).
    pub fn obj(&self) -> Result<(), Error> {
        if self.is_obj() {
            Ok(())
        } else {
            Err(self.expected("an object"))
        }
    }

    pub fn members(&self) -> Result<Vec<(String, At<'a>)>, Error> {
        match &self.node.value {
            Value::Obj(m) => Ok(m
                .iter()
                .map(|(k, n)| {
                    (
                        k.clone(),
                        At {
                            doc: self.doc,
                            node: n,
                            ptr: format!("{}/{}", self.ptr, escape(k)),
                        },
                    )
                })
                .collect()),
            _ => Err(self.expected("an object")),
        }
    }

    pub fn items(&self) -> Result<Vec<At<'a>>, Error> {
        match &self.node.value {
            Value::Arr(a) => Ok(a
                .iter()
                .enumerate()
                .map(|(i, n)| At {
                    doc: self.doc,
                    node: n,
                    ptr: format!("{}/{}", self.ptr, i),
                })
                .collect()),
            _ => Err(self.expected("an array")),
        }
    }

    /// An optional array member (absent = empty).
    pub fn opt_items(&self, key: &str) -> Result<Vec<At<'a>>, Error> {
        match self.get(key) {
            Some(a) => a.items(),
            None => Ok(Vec::new()),
        }
    }

    pub fn string(&self) -> Result<Val<String>, Error> {
        match &self.node.value {
            Value::Str(s) => Ok(Val::new(s.clone(), self.prov())),
            _ => Err(self.expected("a string")),
        }
    }

    /// A string, or a number rendered as its source text (ports were sometimes numbers).
    pub fn string_or_number(&self) -> Result<Val<String>, Error> {
        match &self.node.value {
            Value::Str(s) => Ok(Val::new(s.clone(), self.prov())),
            Value::Num(n) => Ok(Val::new(n.clone(), self.prov())),
            _ => Err(self.expected("a string or a number")),
        }
    }

    pub fn opt_string(&self, key: &str) -> Result<Option<Val<String>>, Error> {
        self.get(key).map(|a| a.string()).transpose()
    }

    pub fn bool(&self) -> Result<Val<bool>, Error> {
        match &self.node.value {
            Value::Bool(b) => Ok(Val::new(*b, self.prov())),
            _ => Err(self.expected("true or false")),
        }
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<Val<bool>>, Error> {
        self.get(key).map(|a| a.bool()).transpose()
    }

    /// An unsigned integer given as a number or a numeric string.
    pub fn uint(&self, max: u64, what: &str) -> Result<Val<u64>, Error> {
        let text = match &self.node.value {
            Value::Num(n) => n.as_str(),
            Value::Str(s) => s.trim(),
            _ => return Err(self.expected(what)),
        };
        match text.parse::<u64>() {
            Ok(v) if v <= max => Ok(Val::new(v, self.prov())),
            _ => Err(self.expected(what)),
        }
    }

    pub fn port(&self) -> Result<Val<u16>, Error> {
        let v = self.uint(65535, "a port number (0-65535)")?;
        Ok(Val::new(v.value as u16, v.prov))
    }

    /// A string or a list of strings (`nameserver: "a"` vs `nameservers: ["a","b"]`). A single
    /// string may hold several values separated by spaces or commas, as `pct --nameserver` takes them.
    pub fn string_list(&self) -> Result<Vec<Val<String>>, Error> {
        match &self.node.value {
            Value::Str(s) => Ok(s
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|p| !p.is_empty())
                .map(|p| Val::new(p.to_string(), self.prov()))
                .collect()),
            Value::Arr(_) => {
                let mut out = Vec::new();
                for it in self.items()? {
                    out.push(it.string()?);
                }
                Ok(out)
            }
            _ => Err(self.expected("a string or a list of strings")),
        }
    }
}
