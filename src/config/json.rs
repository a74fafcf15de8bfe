//! A strict JSON parser that keeps the line and column of every value and the order of object
//! members (the platform's generators iterate objects in file order, so order is meaning).
//!
//! Error messages never quote the input text, so a malformed file cannot leak a secret.

use std::fmt;

/// A parsed JSON value with the 1-based position of its first character.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub line: u32,
    pub col: u32,
}

/// JSON values; numbers keep their source text, objects keep member order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Node>),
    Obj(Vec<(String, Node)>),
}

impl Value {
    /// The JSON type name, for messages (`a string`, `an object`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Num(_) => "a number",
            Value::Str(_) => "a string",
            Value::Arr(_) => "an array",
            Value::Obj(_) => "an object",
        }
    }
}

impl Node {
    /// The member `key` of an object (a repeated key was already merged by [`parse`]).
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Obj(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// A syntax error at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: u32,
    pub col: u32,
    pub msg: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.msg)
    }
}

/// Parse a whole document (one value, surrounded by optional whitespace).
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        line: 1,
        col: 1,
        depth: 0,
    };
    // A UTF-8 byte order mark is tolerated.
    if p.s.starts_with(&[0xEF, 0xBB, 0xBF]) {
        p.i = 3;
    }
    p.ws();
    if p.i >= p.s.len() {
        return Err(p.err("empty file: expected a JSON value"));
    }
    let v = p.value()?;
    p.ws();
    if p.i < p.s.len() {
        return Err(p.err("unexpected text after the end of the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    line: u32,
    col: u32,
    depth: u32,
}

const MAX_DEPTH: u32 = 256;

impl Parser<'_> {
    fn err(&self, msg: impl Into<String>) -> SyntaxError {
        SyntaxError {
            line: self.line,
            col: self.col,
            msg: msg.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn bump(&mut self) {
        if let Some(&c) = self.s.get(self.i) {
            self.i += 1;
            if c == b'\n' {
                self.line += 1;
                self.col = 1;
            } else if c & 0xC0 != 0x80 {
                // count characters, not UTF-8 continuation bytes
                self.col += 1;
            }
        }
    }

    fn ws(&mut self) {
        while let Some(c) = self.peek() {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.bump();
            } else {
                break;
            }
        }
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the file".to_string(),
            Some(c) if c.is_ascii_punctuation() => format!("`{}`", c as char),
            Some(c) if c.is_ascii_alphanumeric() => "a letter or digit".to_string(),
            Some(_) => "an unexpected character".to_string(),
        }
    }

    fn value(&mut self) -> Result<Node, SyntaxError> {
        let (line, col) = (self.line, self.col);
        let value = match self.peek() {
            Some(b'{') => self.object()?,
            Some(b'[') => self.array()?,
            Some(b'"') => Value::Str(self.string()?),
            Some(b't') => self.word("true", Value::Bool(true))?,
            Some(b'f') => self.word("false", Value::Bool(false))?,
            Some(b'n') => self.word("null", Value::Null)?,
            Some(c) if c == b'-' || c.is_ascii_digit() => Value::Num(self.number()?),
            _ => return Err(self.err(format!("expected a JSON value, found {}", self.found()))),
        };
        Ok(Node { value, line, col })
    }

    fn word(&mut self, w: &str, v: Value) -> Result<Value, SyntaxError> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            for _ in 0..w.len() {
                self.bump();
            }
            Ok(v)
        } else {
            Err(self.err("expected a JSON value (true, false, null, a number, a string, an array or an object)"))
        }
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        Ok(())
    }

    fn object(&mut self) -> Result<Value, SyntaxError> {
        self.enter()?;
        self.bump(); // {
        let mut members = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.bump();
            self.depth -= 1;
            return Ok(Value::Obj(members));
        }
        let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                let what = if self.peek() == Some(b'}') {
                    "a member name after `,` (trailing commas are not JSON)".to_string()
                } else {
                    format!("a member name in double quotes, found {}", self.found())
                };
                return Err(self.err(format!("expected {what}")));
            }
            let key = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err(format!(
                    "expected `:` after a member name, found {}",
                    self.found()
                )));
            }
            self.bump();
            self.ws();
            let v = self.value()?;
            // A repeated key keeps the first one's place in the member order and the last
            // one's value and position, as jq (which the platform's scripts use) does.
            match index.get(&key) {
                Some(&i) => members[i].1 = v,
                None => {
                    index.insert(key.clone(), members.len());
                    members.push((key, v));
                }
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.bump(),
                Some(b'}') => {
                    self.bump();
                    break;
                }
                _ => {
                    return Err(self.err(format!(
                        "expected `,` or `}}` after an object member, found {}",
                        self.found()
                    )))
                }
            }
        }
        self.depth -= 1;
        Ok(Value::Obj(members))
    }

    fn array(&mut self) -> Result<Value, SyntaxError> {
        self.enter()?;
        self.bump(); // [
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.bump();
            self.depth -= 1;
            return Ok(Value::Arr(items));
        }
        loop {
            self.ws();
            if self.peek() == Some(b']') {
                return Err(self.err("expected a value after `,` (trailing commas are not JSON)"));
            }
            items.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.bump(),
                Some(b']') => {
                    self.bump();
                    break;
                }
                _ => {
                    return Err(self.err(format!(
                        "expected `,` or `]` after an array element, found {}",
                        self.found()
                    )))
                }
            }
        }
        self.depth -= 1;
        Ok(Value::Arr(items))
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        self.bump(); // opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.bump();
                    break;
                }
                Some(b'\\') => {
                    self.bump();
                    let c = self.peek().ok_or_else(|| self.err("unterminated string"))?;
                    let simple = match c {
                        b'"' => Some(b'"'),
                        b'\\' => Some(b'\\'),
                        b'/' => Some(b'/'),
                        b'b' => Some(8),
                        b'f' => Some(12),
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        b'u' => None,
                        _ => return Err(self.err("invalid escape sequence in a string")),
                    };
                    self.bump();
                    match simple {
                        Some(b) => out.push(b),
                        None => {
                            let cp = self.hex4()?;
                            let ch = if (0xD800..0xDC00).contains(&cp) {
                                if self.peek() == Some(b'\\')
                                    && self.s.get(self.i + 1) == Some(&b'u')
                                {
                                    self.bump();
                                    self.bump();
                                    let lo = self.hex4()?;
                                    if !(0xDC00..0xE000).contains(&lo) {
                                        return Err(
                                            self.err("invalid UTF-16 surrogate pair in a string")
                                        );
                                    }
                                    char::from_u32(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00))
                                } else {
                                    return Err(self.err("lone UTF-16 surrogate in a string"));
                                }
                            } else {
                                char::from_u32(cp)
                            };
                            let ch =
                                ch.ok_or_else(|| self.err("invalid \\u escape in a string"))?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                    }
                }
                Some(c) if c < 0x20 => {
                    return Err(
                        self.err("control character (such as a raw newline) inside a string")
                    )
                }
                Some(c) => {
                    out.push(c);
                    self.bump();
                }
            }
        }
        String::from_utf8(out).map_err(|_| self.err("invalid UTF-8 in a string"))
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let c = self
                .peek()
                .ok_or_else(|| self.err("unterminated \\u escape"))?;
            let d = (c as char)
                .to_digit(16)
                .ok_or_else(|| self.err("invalid \\u escape in a string"))?;
            v = v * 16 + d;
            self.bump();
        }
        Ok(v)
    }

    fn number(&mut self) -> Result<String, SyntaxError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.bump();
        }
        match self.peek() {
            Some(b'0') => self.bump(),
            Some(c) if c.is_ascii_digit() => {
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.bump();
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.err("invalid number: expected a digit after `.`"));
            }
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.bump();
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.bump();
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.err("invalid number: expected a digit in the exponent"));
            }
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_order_are_kept() {
        let n = parse("{\n  \"b\": 1,\n  \"a\": [true, null, \"x\\u00e9\"]\n}").unwrap();
        let Value::Obj(m) = &n.value else { panic!() };
        assert_eq!(m[0].0, "b");
        assert_eq!(m[1].0, "a");
        assert_eq!((m[1].1.line, m[1].1.col), (3, 8));
        let Value::Arr(a) = &m[1].1.value else {
            panic!()
        };
        assert_eq!(a[2].value, Value::Str("xé".into()));
        assert_eq!(m[0].1.value, Value::Num("1".into()));
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = parse("{\n  \"a\": 1,\n}").unwrap_err();
        assert_eq!((e.line, e.col), (3, 1));
        assert!(e.msg.contains("trailing commas"), "{}", e.msg);
        let e = parse("{\"a\": 1 \"b\": 2}").unwrap_err();
        assert_eq!((e.line, e.col), (1, 9));
        assert!(parse("").is_err());
        assert!(parse("[1,]").is_err());
        assert!(parse("{\"a\": 01}").is_err());
        assert!(parse("\"abc").is_err());
        assert!(parse("[1] x").is_err());
    }

    #[test]
    fn repeated_keys_keep_the_first_place_and_the_last_value() {
        // jq -c . <<< '{"a":1,"b":2,"a":3}' prints {"a":3,"b":2}
        let n = parse("{\"a\": 1, \"b\": 2,\n \"a\": 3}").unwrap();
        let Value::Obj(m) = &n.value else { panic!() };
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].0, "a");
        assert_eq!(m[0].1.value, Value::Num("3".into()));
        assert_eq!((m[0].1.line, m[0].1.col), (2, 7));
        assert_eq!(m[1].0, "b");
    }

    #[test]
    fn error_messages_never_quote_strings() {
        let e = parse("{\"password\": \"s3cr3t-canary\" \"x\": 1}").unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"));
    }
}
