//! Baselines: the TOML file of accepted findings (`--baseline FILE`, `baseline write FILE`), the
//! matching of findings against it, and the verdict after acceptance.
//!
//! A baseline post-processes what `diagnose` and `lint` produced; it never changes how a finding
//! is derived. An accepted finding is still shown (with `accepted`: the reason and the expiry);
//! it no longer counts toward the verdict or the exit code. An entry whose expiry date has passed
//! accepts nothing. An entry that matched nothing in a run that could have seen it is *stale*
//! and reported, so the file shrinks as defects are fixed. Format: `docs/baseline.md`.

use crate::diagnose::{Divergence, Overall, Report, Verdict};
use crate::error::{Error, Result};
pub use crate::finding::{Accepted, BaselineSummary as Summary, EntryRef};
use crate::finding::{EvidenceItem, Finding, Origin, Severity};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A calendar date `YYYY-MM-DD` (the last day an entry accepts its finding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl Day {
    /// Parse `YYYY-MM-DD` (a real calendar date).
    pub fn parse(s: &str) -> Option<Day> {
        let mut it = s.split('-');
        let (y, m, d) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        let year: i32 = y.parse().ok()?;
        let month: u8 = m.parse().ok()?;
        let day: u8 = d.parse().ok()?;
        let month_t = time::Month::try_from(month).ok()?;
        time::Date::from_calendar_date(year, month_t, day).ok()?;
        Some(Day { year, month, day })
    }

    /// Today, in UTC.
    pub fn today() -> Day {
        let d = time::OffsetDateTime::now_utc().date();
        Day {
            year: d.year(),
            month: u8::from(d.month()),
            day: d.day(),
        }
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// One `[[accept]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The finding code (`PD-HTTP-002`).
    pub code: String,
    /// The hop of a live finding; absent for a static (config) finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hop: Option<String>,
    /// What the finding is about: the traced target for a live finding, the config location
    /// (`file#pointer`) for a static one. Absent: any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Why the finding is accepted.
    pub reason: String,
    /// The last day the entry accepts its finding.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_day")]
    pub expires: Option<Day>,
    /// Line of the `[[accept]]` header in the file (0 when not read from a file).
    #[serde(skip)]
    pub line: usize,
}

fn ser_day<S: serde::Serializer>(d: &Option<Day>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&d.to_string()),
        None => s.serialize_none(),
    }
}

impl Entry {
    /// A static entry (no hop) is judged stale only by `lint`, which sees every static finding.
    pub fn is_static(&self) -> bool {
        self.hop.is_none()
    }

    fn matches(&self, key: &Key) -> bool {
        self.code == key.code
            && self.hop.as_deref().unwrap_or("") == key.hop
            && self.subject.as_ref().is_none_or(|s| *s == key.subject)
    }

    fn expired(&self, today: Day) -> bool {
        self.expires.is_some_and(|e| e < today)
    }
}

/// A parsed baseline file.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    pub file: PathBuf,
    pub entries: Vec<Entry>,
}

impl From<&Entry> for EntryRef {
    fn from(e: &Entry) -> Self {
        EntryRef {
            code: e.code.clone(),
            hop: e.hop.clone(),
            subject: e.subject.clone(),
            line: e.line,
            expires: e.expires.map(|d| d.to_string()),
        }
    }
}

/// The identity of a finding in a baseline: code, hop, subject.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub code: String,
    pub hop: String,
    pub subject: String,
}

/// The key of `f` seen in the trace of `target` (live findings) or alone (static findings).
pub fn key(f: &Finding, target: &str) -> Key {
    let subject = if f.origin == Origin::Static {
        static_subject(f)
    } else {
        target.to_string()
    };
    Key {
        code: f.code.to_string(),
        hop: if f.origin == Origin::Static {
            String::new()
        } else {
            f.hop.clone()
        },
        subject,
    }
}

/// A static finding is about the config location it came from (`file#pointer`, which does not
/// move with addresses); without one, about its subjects.
fn static_subject(f: &Finding) -> String {
    match f.provenance.first() {
        Some(p) => format!("{}#{}", p.file, p.pointer),
        None => f.subjects.join(" "),
    }
}

const KNOWN_KEYS: &[&str] = &["code", "hop", "subject", "reason", "expires"];

/// A parser message on one line.
fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

/// 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

impl Baseline {
    /// Read and parse a baseline file (bounded read). `known_codes` are the codes the tool
    /// reports; an entry naming another is refused.
    pub fn load(path: &Path, known_codes: &[&str]) -> Result<Baseline> {
        let text = crate::fsutil::read_bounded_string(path, crate::fsutil::FileKind::SiteFile)
            .map_err(|e| Error::input(format!("baseline {e}")))?;
        Baseline::parse(&text, path, known_codes)
    }

    /// Parse baseline text; errors name the file and the line.
    pub fn parse(text: &str, path: &Path, known_codes: &[&str]) -> Result<Baseline> {
        let file = path.display().to_string();
        let doc: toml::Spanned<toml::Table> = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            Error::input(format!(
                "{file}:{line}: not a baseline file: {}; expected `[[accept]]` tables (docs/baseline.md)",
                one_line(e.message())
            ))
        })?;
        // Re-read with spans to report lines of the entries.
        let spanned: SpannedDoc = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            Error::input(format!(
                "{file}:{line}: {}; expected `[[accept]]` tables with code, hop, subject, reason, expires (docs/baseline.md)",
                one_line(e.message())
            ))
        })?;
        if let Some(k) = doc.get_ref().keys().find(|k| *k != "accept") {
            let line = text
                .lines()
                .position(|l| {
                    let l = l.trim_start();
                    l.starts_with(k.as_str())
                        || l.starts_with(&format!("[{k}"))
                        || l.starts_with(&format!("[[{k}"))
                })
                .map(|i| i + 1)
                .unwrap_or(1);
            return Err(Error::input(format!(
                "{file}:{line}: unknown key `{k}`; a baseline holds only `[[accept]]` tables (docs/baseline.md)"
            )));
        }
        let mut entries = Vec::new();
        for raw in spanned.accept {
            let line = line_of(text, raw.span_start());
            let at = |l: usize| format!("{file}:{l}");
            let fields = raw.0.get_ref();
            if let Some((k, v)) = fields
                .iter()
                .find(|(k, _)| !KNOWN_KEYS.contains(&k.as_str()))
            {
                return Err(Error::input(format!(
                    "{}: unknown key `{k}` in [[accept]]; expected one of {}",
                    at(line_of(text, v.span().start)),
                    KNOWN_KEYS.join(", ")
                )));
            }
            let string = |name: &str, required: bool| -> Result<Option<String>> {
                match fields.get(name) {
                    None if required => Err(Error::input(format!(
                        "{}: [[accept]] has no `{name}`; every entry needs code and reason",
                        at(line)
                    ))),
                    None => Ok(None),
                    Some(v) => match v.get_ref() {
                        toml::Value::String(s) if !s.trim().is_empty() => Ok(Some(s.clone())),
                        _ => Err(Error::input(format!(
                            "{}: `{name}` must be a non-empty string",
                            at(line_of(text, v.span().start))
                        ))),
                    },
                }
            };
            let code = string("code", true)?.unwrap_or_default();
            if !known_codes.is_empty() && !known_codes.contains(&code.as_str()) {
                let l = fields
                    .get("code")
                    .map(|v| line_of(text, v.span().start))
                    .unwrap_or(line);
                return Err(Error::input(format!(
                    "{}: unknown finding code `{code}` (`phoenix-doctor explain` lists them)",
                    at(l)
                )));
            }
            let reason = string("reason", true)?.unwrap_or_default();
            let expires = match fields.get("expires") {
                None => None,
                Some(v) => {
                    let l = at(line_of(text, v.span().start));
                    let s = match v.get_ref() {
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Datetime(d) if d.time.is_none() && d.offset.is_none() => {
                            d.to_string()
                        }
                        other => {
                            return Err(Error::input(format!(
                            "{l}: `expires` must be a date such as \"2027-01-31\", not `{other}`"
                        )))
                        }
                    };
                    Some(Day::parse(&s).ok_or_else(|| {
                        Error::input(format!(
                            "{l}: `expires = \"{s}\"` is not a date; expected YYYY-MM-DD such as \"2027-01-31\""
                        ))
                    })?)
                }
            };
            entries.push(Entry {
                code,
                hop: string("hop", false)?,
                subject: string("subject", false)?,
                reason,
                expires,
                line,
            });
        }
        Ok(Baseline {
            file: path.to_path_buf(),
            entries,
        })
    }

    /// The index of the first entry that accepts `key` today, and those of the expired entries
    /// that would have.
    fn lookup(&self, key: &Key, today: Day) -> (Option<usize>, Vec<usize>) {
        let mut expired = Vec::new();
        for (i, e) in self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.matches(key))
        {
            if e.expired(today) {
                expired.push(i);
            } else {
                return (Some(i), expired);
            }
        }
        (None, expired)
    }
}

#[derive(Deserialize)]
struct SpannedDoc {
    #[serde(default)]
    accept: Vec<SpannedEntry>,
}

#[derive(Deserialize)]
#[serde(transparent)]
struct SpannedEntry(toml::Spanned<std::collections::BTreeMap<String, toml::Spanned<toml::Value>>>);

impl SpannedEntry {
    fn span_start(&self) -> usize {
        self.0.span().start
    }
}

/// Tracks which entries matched during one application.
struct Tally<'a> {
    baseline: &'a Baseline,
    today: Day,
    used: Vec<bool>,
    expired: Vec<bool>,
    accepted: usize,
    /// Static findings repeat in every trace they bear on: counted once.
    counted_static: std::collections::BTreeSet<Key>,
}

impl<'a> Tally<'a> {
    fn new(baseline: &'a Baseline, today: Day) -> Self {
        Tally {
            baseline,
            today,
            used: vec![false; baseline.entries.len()],
            expired: vec![false; baseline.entries.len()],
            accepted: 0,
            counted_static: Default::default(),
        }
    }

    /// Mark `f` accepted when an entry matches it.
    fn apply(&mut self, f: &mut Finding, target: &str) {
        let k = key(f, target);
        let (hit, expired) = self.baseline.lookup(&k, self.today);
        for i in expired {
            self.used[i] = true;
            self.expired[i] = true;
        }
        let first_time = f.origin != Origin::Static || self.counted_static.insert(k.clone());
        f.accepted = hit.map(|i| {
            let e = &self.baseline.entries[i];
            self.used[i] = true;
            if first_time {
                self.accepted += 1;
            }
            Accepted {
                reason: e.reason.clone(),
                expires: e.expires.map(|d| d.to_string()),
            }
        });
    }

    /// The summary; `judged(entry)` says whether this run could have seen the entry's finding.
    fn summary(&self, judged: impl Fn(&Entry) -> bool) -> Summary {
        let pick = |flags: &[bool], want: bool, also: &dyn Fn(&Entry) -> bool| {
            self.baseline
                .entries
                .iter()
                .zip(flags)
                .filter(|(e, f)| **f == want && also(e))
                .map(|(e, _)| EntryRef::from(e))
                .collect::<Vec<_>>()
        };
        Summary {
            file: self.baseline.file.display().to_string(),
            accepted: self.accepted,
            expired: pick(&self.expired, true, &|_| true),
            stale: pick(&self.used, false, &judged),
        }
    }
}

/// Apply a baseline to diagnosed trace reports: mark accepted findings, recompute each verdict
/// and first divergence without them, and attach the run-wide summary to every report.
pub fn apply_reports(reports: &mut [Report], baseline: &Baseline, today: Day) -> Summary {
    let mut tally = Tally::new(baseline, today);
    for r in reports.iter_mut() {
        let target = r.target.clone();
        for f in r.findings.iter_mut() {
            tally.apply(f, &target);
        }
        reverdict(r);
    }
    let targets: Vec<String> = reports.iter().map(|r| r.target.clone()).collect();
    // A live entry is judged when its target was traced (or it names none); static entries are
    // judged by `lint`, which sees every static finding.
    let summary =
        tally.summary(|e| !e.is_static() && e.subject.as_ref().is_none_or(|s| targets.contains(s)));
    for r in reports.iter_mut() {
        r.baseline = Some(summary.clone());
    }
    summary
}

/// Apply a baseline to `lint`'s findings (every static finding: any unmatched static entry is
/// stale).
pub fn apply_findings(findings: &mut [Finding], baseline: &Baseline, today: Day) -> Summary {
    let mut tally = Tally::new(baseline, today);
    for f in findings.iter_mut() {
        tally.apply(f, "");
    }
    tally.summary(Entry::is_static)
}

/// True when `f` counts toward a verdict: an error nobody accepted.
pub fn counts(f: &Finding) -> bool {
    f.severity == Severity::Error && f.accepted.is_none()
}

/// The verdict without accepted findings: diverged while an unaccepted live error remains;
/// otherwise cannot-judge when a step could not be judged, else healthy.
fn reverdict(r: &mut Report) {
    if r.verdict != Overall::Diverged {
        return;
    }
    let live = |f: &&Finding| f.origin != Origin::Static;
    if r.findings.iter().filter(live).any(counts) {
        // The first divergence moves to the first unaccepted error in chain order.
        let accepted_first = r.first_divergence.as_ref().is_some_and(|d| {
            r.findings
                .iter()
                .filter(live)
                .any(|f| f.hop == d.hop && f.code == d.code && f.accepted.is_some())
        });
        if accepted_first {
            r.first_divergence = r
                .findings
                .iter()
                .filter(live)
                .filter(|f| counts(f))
                .find_map(|f| divergence_of(r, f));
        }
        return;
    }
    r.first_divergence = None;
    r.verdict = if r.steps.iter().any(|s| s.verdict == Verdict::CannotJudge) {
        Overall::CannotJudge
    } else {
        Overall::Healthy
    };
}

fn divergence_of(r: &Report, f: &Finding) -> Option<Divergence> {
    let s = r.steps.iter().find(|s| {
        s.hop == f.hop && s.code.as_deref() == Some(f.code.as_str()) && s.symptom_of.is_none()
    })?;
    Some(Divergence {
        hop: f.hop.clone(),
        from: s.from.clone(),
        to: s.to.clone(),
        layer: s.layer,
        code: f.code,
        step: s.id.clone(),
        title: f.title.clone(),
    })
}

/// The lines a table shows under a run with a baseline: what it accepted, the entries that
/// expired (their findings count again) and the stale ones (nothing matched: remove them).
pub fn summary_lines(s: &Summary) -> String {
    use crate::fsutil::escape_terminal_line as esc;
    let mut out = format!(
        "baseline {}: {} finding{} accepted\n",
        esc(&s.file),
        s.accepted,
        if s.accepted == 1 { "" } else { "s" }
    );
    for e in &s.expired {
        out.push_str(&format!(
            "  expired baseline entry ({}, expired {}): its finding counts again\n",
            esc(&e.to_string()),
            e.expires.as_deref().unwrap_or("?")
        ));
    }
    for e in &s.stale {
        out.push_str(&format!(
            "  info: stale baseline entry ({}): nothing matches it any more; remove it\n",
            esc(&e.to_string())
        ));
    }
    out
}

/// Live findings of `r` accepted by a baseline: the divergences the verdict no longer counts
/// (`healthy (N accepted)`).
pub fn accepted_count(r: &Report) -> usize {
    r.findings
        .iter()
        .filter(|f| f.origin != Origin::Static && f.accepted.is_some())
        .count()
}

/// The acceptance that covers step `s` of `r`, for renderers that show steps (JUnit): the
/// step's own finding when it has one (by code, on its hop or grouped into it), else, for a
/// symptom or a later failure of a hop, the hop's findings when every error among them is
/// accepted.
pub fn step_acceptance<'a>(r: &'a Report, s: &crate::diagnose::StepResult) -> Option<&'a Accepted> {
    let code = s.code.as_deref()?;
    let live = || r.findings.iter().filter(|f| f.origin != Origin::Static);
    if s.symptom_of.is_none() {
        let grouped =
            |e: &EvidenceItem| matches!(e, EvidenceItem::AlsoSeen { step, .. } if *step == s.id);
        if let Some(f) =
            live().find(|f| f.code == code && (f.hop == s.hop || f.evidence.iter().any(grouped)))
        {
            return f.accepted.as_ref();
        }
    }
    let hop = s.symptom_of.as_deref().unwrap_or(&s.hop);
    let errors: Vec<&Finding> = live()
        .filter(|f| f.hop == hop && f.severity == Severity::Error)
        .collect();
    if errors.is_empty() || errors.iter().any(|f| f.accepted.is_none()) {
        return None;
    }
    errors[0].accepted.as_ref()
}

/// The catalogue title of a code (live or static), for the reason `write` proposes.
fn code_title(code: &str) -> &'static str {
    crate::diagnose::catalog::lookup(code)
        .or_else(|| crate::lint::lookup(code))
        .map(|c| c.title)
        .unwrap_or("finding")
}

/// Render a baseline file from `(finding, traced target)` pairs: one `[[accept]]` per distinct
/// (code, hop, subject), sorted, with the code's catalogue title as a reason to review (no
/// addresses, no timings: the same findings always give the same bytes). Only errors are
/// recorded (warnings and info never change a verdict).
pub fn render(findings: &[(Finding, String)]) -> String {
    let mut keyed: Vec<(Key, String)> = findings
        .iter()
        .filter(|(f, _)| f.severity == Severity::Error)
        .map(|(f, target)| (key(f, target), format!("known: {}", code_title(&f.code))))
        .collect();
    keyed.sort();
    keyed.dedup_by(|a, b| a.0 == b.0);
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut out = String::from(
        "# phoenix-doctor baseline: findings accepted as known (docs/baseline.md).\n\
         # Review each reason before committing; add `expires = \"YYYY-MM-DD\"` to make an\n\
         # acceptance temporary. Remove an entry once its defect is fixed.\n",
    );
    for (k, title) in keyed {
        out.push_str("\n[[accept]]\n");
        out.push_str(&format!("code = {}\n", q(&k.code)));
        if !k.hop.is_empty() {
            out.push_str(&format!("hop = {}\n", q(&k.hop)));
        }
        if !k.subject.is_empty() {
            out.push_str(&format!("subject = {}\n", q(&k.subject)));
        }
        out.push_str(&format!("reason = {}\n", q(&title)));
    }
    out
}

#[cfg(test)]
mod tests;
