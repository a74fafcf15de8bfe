//! Findings: a divergence between intended and actual (or a static defect), with a stable code.
//!
//! Both `lint` (static) and `diagnose` (live) produce findings; the catalogue of codes behind
//! `explain CODE` and `docs/findings.md` lives in `diagnose::catalog` (live codes) and
//! `lint::catalog()` (static codes).

pub mod evidence;

pub use evidence::{BackendFailure, EvidenceItem, Meaning, ProxyPart};

use crate::config::Provenance;
use crate::observe::Layer;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable code, e.g. `PD-DNS-001`.
    pub code: Code,
    pub severity: Severity,
    /// The hop it is attributed to (empty for findings that are not about one hop).
    #[serde(default)]
    pub hop: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<Layer>,
    /// One line for people.
    pub title: String,
    pub expected: String,
    pub actual: String,
    /// Supporting facts: probe output, symptoms seen through proxies, config lines (typed;
    /// each renders to one line, and the JSON lists those lines).
    #[serde(default)]
    pub evidence: Vec<EvidenceItem>,
    #[serde(default)]
    pub provenance: Vec<Provenance>,
    pub hint: String,
    /// `live` (seen by a probe) or `static` (from the configs alone, by `lint`).
    #[serde(default)]
    pub origin: Origin,
    /// Addresses, names and guest ids the finding is about (`10.0.0.10`, `qdrant.internal.thinkheads.ai`,
    /// `lxc:103`); used to show static findings beside the live hops they bear on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    /// Set when a baseline entry accepts this finding (`--baseline`, docs/baseline.md): it is
    /// shown but no longer counts toward the verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<Accepted>,
    /// On a static finding in a trace report: what the live evidence of the same run says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciliation: Option<Reconciliation>,
}

/// A static finding held against the live evidence of the same run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reconciliation {
    pub status: Reconciled,
    /// The live steps that bear on it: `<step> (from <vantage>): <what it saw>`.
    #[serde(default)]
    pub evidence: Vec<EvidenceItem>,
}

/// What the live evidence says about a static finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reconciled {
    /// A live failure on the same subject agrees.
    Confirmed,
    /// The live probe of the same subject shows it working.
    Refuted,
    /// The run did not look at this subject.
    NotObservable,
}

impl Reconciled {
    pub fn as_str(self) -> &'static str {
        match self {
            Reconciled::Confirmed => "confirmed",
            Reconciled::Refuted => "refuted",
            Reconciled::NotObservable => "not-observable",
        }
    }
}

/// Where a finding comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Seen by a probe.
    #[default]
    Live,
    /// From the configs alone (`lint`).
    Static,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Live => "live",
            Origin::Static => "static",
        }
    }
}

impl Finding {
    /// A finding with the given code, severity and title; fill the rest with the builder methods
    /// or field assignment.
    pub fn new(code: Code, severity: Severity, title: impl Into<String>) -> Self {
        Finding {
            code,
            severity,
            hop: String::new(),
            layer: None,
            title: title.into(),
            expected: String::new(),
            actual: String::new(),
            evidence: Vec::new(),
            provenance: Vec::new(),
            hint: String::new(),
            origin: Origin::Live,
            subjects: Vec::new(),
            accepted: None,
            reconciliation: None,
        }
    }

    /// Mark as a static finding (from `lint`).
    pub fn static_origin(mut self) -> Self {
        self.origin = Origin::Static;
        self
    }

    pub fn expected(mut self, s: impl Into<String>) -> Self {
        self.expected = s.into();
        self
    }

    pub fn actual(mut self, s: impl Into<String>) -> Self {
        self.actual = s.into();
        self
    }

    pub fn hint(mut self, s: impl Into<String>) -> Self {
        self.hint = s.into();
        self
    }

    pub fn provenance(mut self, p: impl IntoIterator<Item = Provenance>) -> Self {
        self.provenance.extend(p);
        self
    }

    pub fn evidence(mut self, e: impl Into<EvidenceItem>) -> Self {
        self.evidence.push(e.into());
        self
    }

    pub fn subject(mut self, s: impl Into<String>) -> Self {
        self.subjects.push(s.into());
        self
    }
}

// ---- baselines (plain types; the format and the matching live in `baseline`) ----

/// What a finding carries when a baseline entry accepts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub reason: String,
    /// `YYYY-MM-DD`, the last day of the acceptance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// One entry as the summary reports it (stale or expired).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRef {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hop: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Line of the entry in the baseline file.
    pub line: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

impl std::fmt::Display for EntryRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.code)?;
        if let Some(h) = &self.hop {
            write!(f, " hop {h}")?;
        }
        if let Some(s) = &self.subject {
            write!(f, " subject {s}")?;
        }
        Ok(())
    }
}

/// The run-wide result of applying a baseline (the `baseline` object of the JSON output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineSummary {
    pub file: String,
    /// Findings accepted (a static finding shown in several traces counts once).
    pub accepted: usize,
    /// Entries that matched a finding but whose expiry date has passed: the finding counts.
    #[serde(default)]
    pub expired: Vec<EntryRef>,
    /// Entries that matched nothing this run could have seen: the defect is gone.
    #[serde(default)]
    pub stale: Vec<EntryRef>,
}

/// One finding code's catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    pub code: &'static str,
    pub layer: Option<Layer>,
    pub severity: Severity,
    pub title: &'static str,
    /// What it means, and which platform failure it usually is.
    pub meaning: &'static str,
    /// How to confirm it by hand.
    pub confirm: &'static str,
    /// How to fix it.
    pub fix: &'static str,
}

/// A finding code: a handle on its catalogue entry. Codes exist only as the constants that
/// [`catalogue!`] generates together with their entry (`diagnose::catalog`, `lint::catalog`),
/// so a code without a title, meaning and fix does not compile, and its title never falls back
/// to a default. Serialized as its text (`PD-DNS-001`); read back only when a catalogue has it.
#[derive(Clone, Copy)]
pub struct Code(&'static CodeInfo);

impl Code {
    /// Only [`catalogue!`] calls this, with the entry it defines.
    #[doc(hidden)]
    pub(crate) const fn from_catalogue(info: &'static CodeInfo) -> Code {
        Code(info)
    }

    /// The stable text, `PD-DNS-001`.
    pub const fn as_str(self) -> &'static str {
        self.0.code
    }

    /// The catalogue entry.
    pub const fn info(self) -> &'static CodeInfo {
        self.0
    }

    pub fn title(self) -> &'static str {
        self.0.title
    }

    pub fn severity(self) -> Severity {
        self.0.severity
    }

    pub fn layer(self) -> Option<Layer> {
        self.0.layer
    }

    /// The code with this text (any case), live or static.
    pub fn lookup(text: &str) -> Option<Code> {
        crate::diagnose::catalog::LIVE
            .iter()
            .chain(crate::lint::STATIC)
            .chain(crate::deployed::catalog::DRIFT)
            .find(|c| c.code.eq_ignore_ascii_case(text))
            .map(Code)
    }
}

impl std::ops::Deref for Code {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Code {
    fn eq(&self, other: &Code) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Code {}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Code {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<Code> for &str {
    fn eq(&self, other: &Code) -> bool {
        *self == other.as_str()
    }
}

impl PartialOrd for Code {
    fn partial_cmp(&self, other: &Code) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Code {
    fn cmp(&self, other: &Code) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for Code {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Code, D::Error> {
        let text = String::deserialize(d)?;
        Code::lookup(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown finding code `{text}` (`phoenix-doctor explain` lists them)"
            ))
        })
    }
}

/// True when a constant's name is its code with `_` for `-` (checked at compile time).
#[doc(hidden)]
pub const fn code_matches_name(name: &str, code: &str) -> bool {
    let (n, c) = (name.as_bytes(), code.as_bytes());
    if n.len() != c.len() {
        return false;
    }
    let mut i = 0;
    while i < n.len() {
        let x = if n[i] == b'_' { b'-' } else { n[i] };
        if x != c[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// One catalogue: `catalogue!(LIST; NAME = (CODE, layer, Severity, title, meaning, confirm,
/// fix), ...)` defines a [`Code`] constant per entry (named after its code, checked at compile
/// time) and `LIST`, every entry in documentation order. Adding a code is adding one entry here.
macro_rules! catalogue {
    ($(#[$m:meta])* $list:ident; $( $name:ident = ($code:literal, $layer:expr, $sev:ident, $title:literal, $meaning:literal, $confirm:literal, $fix:literal) ),* $(,)?) => {
        $(
            #[doc = $title]
            pub const $name: $crate::finding::Code = $crate::finding::Code::from_catalogue(
                &$crate::finding::CodeInfo {
                    code: $code,
                    layer: $layer,
                    severity: $crate::finding::Severity::$sev,
                    title: $title,
                    meaning: $meaning,
                    confirm: $confirm,
                    fix: $fix,
                },
            );
            const _: () = assert!(
                $crate::finding::code_matches_name(stringify!($name), $code),
                "a code constant is named after its code"
            );
        )*
        $(#[$m])*
        pub const $list: &[$crate::finding::CodeInfo] = &[$(*$name.info()),*];
    };
}

pub(crate) use catalogue;
