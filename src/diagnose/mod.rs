//! Intended versus observed: a verdict per step, findings with stable codes, and the first
//! divergence (the root cause) with the symptoms it explains attached.
//!
//! The rules:
//! - A hop is broken by its *own* layers (dns, tcp, tls, mtls, http, in that order).
//! - A failure seen through proxies (an HTTP step with `through` hops that answers 502, 504, 500
//!   or 404) is a symptom when one of the hops behind it is broken by its own layers; it is then
//!   listed as evidence under that hop's finding, not as a finding of its own.
//! - Steps that a failed prerequisite prevented are `blocked`, not failures.
//! - The first divergence is the root cause that breaks the target's own request: the first
//!   finding on the target's path (hops marked `path = "target"` in the trace definition, the
//!   hops their request passes `through`, and the DNS answers those hops' vantages use), in
//!   chain order. Findings on the trace's other paths (deploy, CA) follow it and still make the
//!   verdict `diverged`; the headline falls back to them only when the target's path is sound.

pub mod catalog;
pub mod facts;
pub mod upstream;

use crate::config::Provenance;
use crate::engine::Run;
use crate::finding::{
    BackendFailure, Code, EvidenceItem, Finding, Reconciled, Reconciliation, Severity,
};
use crate::observe::{Evidence, Layer, Observation};
use crate::plan::{Plan, ProbeSpec, Step, VantageRef, TARGET_PATH};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// Version of the report JSON contract (`docs/output-json.md`).
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// The code of a guest-only step that ran from this machine and so cannot be judged ok.
pub const SUBSTITUTED: Code = catalog::PD_RUN_003;

/// Remaining-lifetime fraction under which a healthy short-lived certificate is a warning.
pub const EXPIRY_WARN_FRACTION: f64 = crate::probe::tls::LIFE_WARN_FRACTION;

/// A step's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Ok,
    Diverged,
    Unreachable,
    Blocked,
    CannotJudge,
    Warn,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Diverged => "diverged",
            Verdict::Unreachable => "unreachable",
            Verdict::Blocked => "blocked",
            Verdict::CannotJudge => "cannot-judge",
            Verdict::Warn => "warn",
        }
    }

    /// A failure of the target (not of the tool, not a consequence).
    pub fn is_failure(self) -> bool {
        matches!(self, Verdict::Diverged | Verdict::Unreachable)
    }
}

/// The verdict of a whole trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overall {
    Healthy,
    Diverged,
    CannotJudge,
}

impl Overall {
    pub fn as_str(self) -> &'static str {
        match self {
            Overall::Healthy => "healthy",
            Overall::Diverged => "diverged",
            Overall::CannotJudge => "cannot-judge",
        }
    }

    /// The process exit code for this verdict.
    pub fn exit_code(self) -> u8 {
        use crate::error::exit;
        match self {
            Overall::Healthy => exit::HEALTHY,
            Overall::Diverged => exit::DIVERGED,
            Overall::CannotJudge => exit::CANNOT_JUDGE,
        }
    }
}

/// The overall verdict of several reports: diverged wins over cannot-judge over healthy.
pub fn overall(reports: &[Report]) -> Overall {
    if reports.iter().any(|r| r.verdict == Overall::Diverged) {
        Overall::Diverged
    } else if reports.iter().any(|r| r.verdict == Overall::CannotJudge) {
        Overall::CannotJudge
    } else {
        Overall::Healthy
    }
}

/// One step, judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub id: String,
    pub hop: String,
    pub from: String,
    pub to: String,
    pub layer: Layer,
    pub verdict: Verdict,
    pub expected: String,
    pub actual: String,
    pub evidence: Vec<EvidenceItem>,
    pub provenance: Vec<Provenance>,
    pub duration_ms: f64,
    /// The finding code this step's failure maps to, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Code>,
    /// When this failure is a symptom: the hop whose own failure explains it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symptom_of: Option<String>,
    /// Where it ran from, and whether that was substituted.
    #[serde(default)]
    pub vantage: crate::observe::VantageNote,
    /// The request path it serves (`target`, `deploy`, ...; see `docs/probes.md`), empty when
    /// the trace marks none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
}

/// A hop, judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HopResult {
    pub id: String,
    pub from: String,
    pub to: String,
    /// A name for the source in diagrams (empty = `from`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from_label: String,
    pub title: String,
    /// `ok`, `diverged`/`unreachable` (broken by its own layers), `warn`, `cannot-judge`,
    /// or `blocked` when its only failures are symptoms of a hop behind it.
    pub verdict: Verdict,
    /// The request path it serves (`target`, `deploy`, ...), empty when the trace marks none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
}

/// The root cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    pub hop: String,
    pub from: String,
    pub to: String,
    pub layer: Layer,
    pub code: Code,
    pub step: String,
    pub title: String,
}

/// A diagnosed trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub target: String,
    pub verdict: Overall,
    pub first_divergence: Option<Divergence>,
    pub hops: Vec<HopResult>,
    pub steps: Vec<StepResult>,
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub started_at: String,
    pub duration_ms: f64,
    /// Attempts made (more than one with `--wait`).
    #[serde(default = "one")]
    pub attempts: u32,
    /// Set by `--baseline` (after diagnosis): what the baseline accepted, expired and left stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<crate::finding::BaselineSummary>,
}

fn one() -> u32 {
    1
}

/// The failure behind a proxy, when the tool probed the hop behind it itself: the first hop of
/// `step.through` broken by its own layers, and its first own failing step (id and code).
fn behind_cause(
    step: &Step,
    judged: &[JudgedStep<'_>],
    memo: &mut HashMap<String, bool>,
) -> Option<(String, Code)> {
    let hop = step
        .through
        .iter()
        .find(|h| own_broken(h, judged, memo, &mut BTreeSet::new()))?;
    judged
        .iter()
        .filter(|(s, j, _)| &s.hop == hop && j.verdict.is_failure())
        .filter(|(s, j, _)| {
            !(j.proxy_answer
                && s.through
                    .iter()
                    .any(|h| own_broken(h, judged, memo, &mut BTreeSet::new())))
        })
        .min_by_key(|(s, _, _)| s.layer)
        .and_then(|(s, j, _)| Some((s.id.clone(), j.code?)))
}

/// One step with its judgement and the observation behind it (none when it was not observed).
type JudgedStep<'a> = (&'a Step, Judged, Option<&'a Observation>);

/// Diagnose a run of `plan`. `static_findings` (from `lint`) that bear on the traced hops are
/// listed beside the live findings; they do not change the verdict.
pub fn diagnose(plan: &Plan, run: &Run, static_findings: &[Finding]) -> Report {
    let mut judged = judge_all(plan, run);
    // A hop is broken by its own layers when it has a failing step that is not a proxy answer
    // explained by a broken hop behind it. Resolve recursively (the `through` hops are downstream).
    let mut memo: HashMap<String, bool> = HashMap::new();
    let hop_ids: Vec<String> = plan.hops.iter().map(|h| h.id.clone()).collect();
    for h in &hop_ids {
        own_broken(h, &judged, &mut memo, &mut BTreeSet::new());
    }
    name_backend_failures(&mut judged, &mut memo);

    let paths = step_paths(plan);
    let marked = plan.hops.iter().any(|h| h.path == TARGET_PATH);
    let on_target = |id: &str| !marked || paths.get(id).is_some_and(|p| p == TARGET_PATH);
    let mut steps = Vec::with_capacity(judged.len());
    let mut live = LiveFindings::default();
    let mut symptoms: Vec<(String, EvidenceItem)> = Vec::new(); // (explaining hop, symptom)
    for (step, j, obs) in &judged {
        let symptom_of = symptom_of(step, j, &memo);
        if let Some(h) = &symptom_of {
            symptoms.push((h.clone(), symptom(step, j)));
        } else if let Some(code) = j.code {
            live.add(step, j, code, on_target(&step.id), &judged);
        }
        let path = paths.get(step.id.as_str()).cloned().unwrap_or_default();
        steps.push(step_result(step, j, *obs, symptom_of, path));
    }
    let mut findings = live.attach(symptoms).ranked(&hop_ids);
    let first_divergence = first_divergence(&findings, &steps);
    let hops = hop_results(plan, &steps, &memo);
    let verdict = if findings.iter().any(|f| f.severity == Severity::Error) {
        Overall::Diverged
    } else if steps.iter().any(|s| s.verdict == Verdict::CannotJudge) {
        Overall::CannotJudge
    } else {
        Overall::Healthy
    };
    findings.extend(bearing_static(plan, &steps, static_findings, &hop_ids));
    Report {
        schema_version: REPORT_SCHEMA_VERSION,
        target: plan.target.clone(),
        verdict,
        first_divergence,
        hops,
        steps,
        findings,
        started_at: run.started_at.clone(),
        duration_ms: run.duration_ms,
        attempts: 1,
        baseline: None,
    }
}

/// Every step of `plan` judged against its observation in `run`; a step without one cannot be
/// judged (`PD-RUN-002`).
fn judge_all<'a>(plan: &'a Plan, run: &'a Run) -> Vec<JudgedStep<'a>> {
    let by_id: HashMap<&str, &Observation> = run
        .observations
        .iter()
        .map(|o| (o.step.as_str(), o))
        .collect();
    plan.steps
        .iter()
        .map(|s| match by_id.get(s.id.as_str()) {
            Some(o) => (s, judge(s, o), Some(*o)),
            None => (
                s,
                Judged {
                    verdict: Verdict::CannotJudge,
                    code: Some(catalog::PD_RUN_002),
                    actual: "no observation recorded for this step".into(),
                    evidence: vec![],
                    proxy_answer: false,
                },
                None,
            ),
        })
        .collect()
}

/// A proxy's answer says only that a backend failed; which failure is named only from the
/// tool's own probe of the hop behind it.
fn name_backend_failures(judged: &mut [JudgedStep<'_>], memo: &mut HashMap<String, bool>) {
    let causes: Vec<Option<BackendFailure>> = judged
        .iter()
        .map(|(step, j, obs)| {
            let status = match obs.map(|o| &o.evidence) {
                Some(Evidence::Http(h)) if j.proxy_answer && j.verdict.is_failure() => h.status?,
                _ => return None,
            };
            if !matches!(status, 500 | 502 | 504) {
                return None;
            }
            // A proxy behind that reports a backend failure too knows no more than this one.
            let cause = behind_cause(step, judged, memo).filter(|c| c.1 != catalog::PD_HTTP_005);
            Some(match cause {
                Some((step, code)) => BackendFailure::SeenAt { code, step },
                None if status == 504 => BackendFailure::ProxyTimeout,
                None => BackendFailure::Unknown,
            })
        })
        .collect();
    for ((_, j, obs), cause) in judged.iter_mut().zip(causes) {
        if let (Some(cause), Some(Evidence::Http(h))) = (cause, obs.map(|o| &o.evidence)) {
            j.say_proxy_meaning(h, cause);
        }
    }
}

/// The hop whose own failure explains this failing proxy answer: the first of the hops its
/// request passes `through` that is broken by its own layers.
fn symptom_of(step: &Step, j: &Judged, memo: &HashMap<String, bool>) -> Option<String> {
    if !(j.verdict.is_failure() && j.proxy_answer) {
        return None;
    }
    step.through
        .iter()
        .find(|h| memo.get(*h).copied().unwrap_or(false))
        .cloned()
}

/// A symptom, as the evidence of the finding that explains it.
fn symptom(step: &Step, j: &Judged) -> EvidenceItem {
    EvidenceItem::SymptomAt {
        step: step.id.clone(),
        layer: step.layer,
        from: step.from.to_string(),
        actual: j.actual.clone(),
    }
}

fn step_result(
    step: &Step,
    j: &Judged,
    obs: Option<&Observation>,
    symptom_of: Option<String>,
    path: String,
) -> StepResult {
    StepResult {
        id: step.id.clone(),
        hop: step.hop.clone(),
        from: step.from.to_string(),
        to: step.to.clone(),
        layer: step.layer,
        verdict: j.verdict,
        expected: step.expect.clone(),
        actual: j.actual.clone(),
        evidence: j.evidence.clone(),
        provenance: step.provenance.clone(),
        duration_ms: obs.map(|o| o.timings.total_ms).unwrap_or(0.0),
        code: if j.verdict == Verdict::Ok {
            None
        } else {
            j.code
        },
        symptom_of,
        vantage: obs.map(|o| o.vantage.clone()).unwrap_or_default(),
        path,
    }
}

/// The live findings as they are gathered: one per defect, with whether one of its steps lies
/// on the target's own path.
#[derive(Default)]
struct LiveFindings {
    findings: Vec<Finding>,
    targeted: Vec<bool>,
    /// Group key (see [`group_key`]) -> index in `findings`, to group e.g. several names
    /// failing the same way.
    grouped: HashMap<String, usize>,
}

impl LiveFindings {
    /// Add a step's failure (or warning, or a guest step it could not judge): into the finding
    /// of the same defect when there is one, else as a new finding when it is its hop's first
    /// failure.
    fn add(
        &mut self,
        step: &Step,
        j: &Judged,
        code: Code,
        on_target: bool,
        judged: &[JudgedStep<'_>],
    ) {
        let unjudged = j.verdict == Verdict::CannotJudge && code == SUBSTITUTED;
        if !(j.verdict.is_failure() || j.verdict == Verdict::Warn || unjudged) {
            return;
        }
        let key = group_key(step, code);
        if let Some(&i) = self.grouped.get(&key) {
            self.targeted[i] |= on_target;
            let f = &mut self.findings[i];
            f.evidence.push(EvidenceItem::AlsoSeen {
                step: step.id.clone(),
                from: step.from.to_string(),
                actual: j.actual.clone(),
            });
            for e in &j.evidence {
                if !f.evidence.contains(e) {
                    f.evidence.push(e.clone());
                }
            }
            for p in &step.provenance {
                if !f.provenance.contains(p) {
                    f.provenance.push(p.clone());
                }
            }
        } else if first_failure_of_hop(step, judged) || j.verdict == Verdict::Warn || unjudged {
            self.grouped.insert(key, self.findings.len());
            self.findings.push(finding_for(step, j, code));
            self.targeted.push(on_target);
        }
    }

    /// Each symptom as evidence of its explaining hop's error finding.
    fn attach(mut self, symptoms: Vec<(String, EvidenceItem)>) -> Self {
        for (hop, item) in symptoms {
            if let Some(f) = self
                .findings
                .iter_mut()
                .find(|f| f.hop == hop && f.severity == Severity::Error)
            {
                f.evidence.push(item);
            }
        }
        self
    }

    /// The findings in order: the target's own path first, then by the chain: hop order, then
    /// layer, errors before warnings.
    fn ranked(self, hop_ids: &[String]) -> Vec<Finding> {
        let hop_rank = |h: &str| hop_ids.iter().position(|x| x == h).unwrap_or(usize::MAX);
        let mut ranked: Vec<(bool, Finding)> =
            self.targeted.into_iter().zip(self.findings).collect();
        ranked.sort_by_key(|(t, f)| (!t, hop_rank(&f.hop), f.layer, std::cmp::Reverse(f.severity)));
        ranked.into_iter().map(|(_, f)| f).collect()
    }
}

/// The root cause: the first error finding, at its own (not symptom) step.
fn first_divergence(findings: &[Finding], steps: &[StepResult]) -> Option<Divergence> {
    let f = findings.iter().find(|f| f.severity == Severity::Error)?;
    let step = steps
        .iter()
        .find(|s| s.hop == f.hop && s.code.as_deref() == Some(&f.code) && s.symptom_of.is_none())?;
    Some(Divergence {
        hop: f.hop.clone(),
        from: step.from.clone(),
        to: step.to.clone(),
        layer: step.layer,
        code: f.code,
        step: step.id.clone(),
        title: f.title.clone(),
    })
}

/// Each hop's verdict: broken by its own layers (its first own failure's verdict), `blocked`
/// when its only failures are symptoms, else the worst of cannot-judge, warn, ok.
fn hop_results(plan: &Plan, steps: &[StepResult], memo: &HashMap<String, bool>) -> Vec<HopResult> {
    plan.hops
        .iter()
        .map(|h| {
            let own: Vec<&StepResult> = steps.iter().filter(|s| s.hop == h.id).collect();
            let verdict = if memo.get(&h.id).copied().unwrap_or(false) {
                own.iter()
                    .find(|s| s.verdict.is_failure() && s.symptom_of.is_none())
                    .map(|s| s.verdict)
                    .unwrap_or(Verdict::Diverged)
            } else if own.iter().any(|s| s.symptom_of.is_some()) {
                Verdict::Blocked
            } else if own.iter().any(|s| s.verdict == Verdict::CannotJudge) {
                Verdict::CannotJudge
            } else if own.iter().any(|s| s.verdict == Verdict::Warn) {
                Verdict::Warn
            } else {
                Verdict::Ok
            };
            HopResult {
                id: h.id.clone(),
                from: h.from.to_string(),
                to: h.to.clone(),
                from_label: h.from_label.clone(),
                title: h.title.clone(),
                verdict,
                path: h.path.clone(),
            }
        })
        .collect()
}

/// Static findings that bear on what this plan touches, held against the live evidence.
fn bearing_static(
    plan: &Plan,
    steps: &[StepResult],
    static_findings: &[Finding],
    hop_ids: &[String],
) -> Vec<Finding> {
    let subjects = plan_subjects(plan);
    static_findings
        .iter()
        .filter(|f| {
            f.subjects.iter().any(|s| subjects.contains(s.as_str())) || hop_ids.contains(&f.hop)
        })
        .map(|f| {
            let mut f = f.clone();
            f.reconciliation = Some(reconcile(&f, plan, steps));
            f
        })
        .collect()
}

/// Failures that are one defect share a finding: the same nameserver failing the same way (seen
/// from any vantage) is one DNS defect; the same server presenting the same bad certificate to
/// one vantage is one TLS defect; a hosts-file override belongs to its vantage; other failures
/// belong to their hop.
fn group_key(step: &Step, code: Code) -> String {
    if code == SUBSTITUTED {
        // One vantage that could not be entered is one limit of the run, whatever the hop.
        return format!("substituted@{}", step.from);
    }
    match &step.probe {
        ProbeSpec::Dns { server, .. } if code != catalog::PD_DNS_003 => {
            format!("dns@{server}/{code}")
        }
        // One server presenting one bad certificate, whatever the name asked for.
        ProbeSpec::Tls { addr, .. } if code.layer() == Some(Layer::Tls) => {
            format!("tls@{addr}/{code}/{}", step.from)
        }
        _ => format!("{}/{code}", step.hop),
    }
}

/// True when `step` is the first failing step of its hop in layer order (later failures of the
/// same hop are consequences, except independent DNS names, which are grouped by code).
fn first_failure_of_hop(step: &Step, judged: &[JudgedStep<'_>]) -> bool {
    if step.layer == Layer::Dns {
        return true;
    }
    let first = judged
        .iter()
        .filter(|(s, j, _)| s.hop == step.hop && s.layer != Layer::Dns && j.verdict.is_failure())
        .min_by_key(|(s, _, _)| s.layer);
    first.map(|(s, _, _)| s.id == step.id).unwrap_or(false)
}

fn own_broken(
    hop: &str,
    judged: &[JudgedStep<'_>],
    memo: &mut HashMap<String, bool>,
    visiting: &mut BTreeSet<String>,
) -> bool {
    if let Some(&b) = memo.get(hop) {
        return b;
    }
    if !visiting.insert(hop.to_string()) {
        return false; // a cycle in `through`: do not explain by it
    }
    let mut broken = false;
    for (s, j, _) in judged.iter().filter(|(s, _, _)| s.hop == hop) {
        if !j.verdict.is_failure() {
            continue;
        }
        let explained = j.proxy_answer
            && s.through
                .iter()
                .any(|h| own_broken(h, judged, memo, visiting));
        if !explained {
            broken = true;
        }
    }
    visiting.remove(hop);
    memo.insert(hop.to_string(), broken);
    broken
}

/// The host names a step uses: the DNS name it resolves, the SNI it sends, its URL's host.
fn names_of(step: &Step) -> Option<String> {
    let name = match &step.probe {
        ProbeSpec::Dns { name, .. } => name.as_str(),
        ProbeSpec::Tls { sni, .. } | ProbeSpec::Mtls { sni, .. } => sni.as_str(),
        ProbeSpec::Http { url, .. } => url
            .split("://")
            .nth(1)
            .and_then(|r| r.split(['/', ':']).next())?,
        ProbeSpec::Tcp { .. } => return None,
    };
    Some(name.trim_end_matches('.').to_ascii_lowercase())
}

/// The request path of every step: its hop's `path`; for a DNS step on a hop that marks none,
/// `target` when a step of the target's path from the same vantage uses the name it resolves
/// (the answer that request depends on), else the path of a hop that uses the name, else none.
fn step_paths(plan: &Plan) -> HashMap<&str, String> {
    let hop_path: HashMap<&str, &str> = plan
        .hops
        .iter()
        .map(|h| (h.id.as_str(), h.path.as_str()))
        .collect();
    let path_of = |s: &Step| hop_path.get(s.hop.as_str()).copied().unwrap_or("");
    let users = |s: &Step, name: &str, same_vantage: bool| -> Vec<&str> {
        plan.steps
            .iter()
            .filter(|u| u.layer != Layer::Dns && (!same_vantage || u.from == s.from))
            .filter(|u| names_of(u).as_deref() == Some(name))
            .map(&path_of)
            .filter(|p| !p.is_empty())
            .collect()
    };
    plan.steps
        .iter()
        .map(|s| {
            let own = path_of(s);
            let path = match (own.is_empty(), s.layer, names_of(s)) {
                (true, Layer::Dns, Some(name)) => {
                    if users(s, &name, true).contains(&TARGET_PATH) {
                        TARGET_PATH.to_string()
                    } else {
                        users(s, &name, false)
                            .into_iter()
                            .find(|p| *p != TARGET_PATH)
                            .unwrap_or("")
                            .to_string()
                    }
                }
                _ => own.to_string(),
            };
            (s.id.as_str(), path)
        })
        .collect()
}

/// The static codes that predict what a probe sees, and the layer that sees it: a documented
/// hop dropped by a firewall or out of the CA's reach (tcp), a certificate without the name
/// its client verifies (tls), a request through the gateway that Traefik cannot route (http).
/// The others are about the configs themselves (duplicate or one-sided rules, records, labels,
/// the manifest): no probe sees them, so the run never confirms or refutes them.
pub const PREDICTIVE: &[(Code, Layer)] = &[
    (crate::lint::catalog::PD_FW_001, Layer::Tcp),
    (crate::lint::catalog::PD_FW_003, Layer::Tcp),
    (crate::lint::catalog::PD_CERT_001, Layer::Tcp),
    (crate::lint::catalog::PD_CERT_002, Layer::Tls),
    (crate::lint::catalog::PD_CERT_004, Layer::Tls),
    (crate::lint::catalog::PD_ROUTE_001, Layer::Http),
    (crate::lint::catalog::PD_ROUTE_004, Layer::Http),
    (crate::lint::catalog::PD_ROUTE_006, Layer::Http),
];

/// Whether the live step `s` checks what the static finding `f` predicts: for tcp, a connection
/// from one of the finding's guests to its `address:port` (a firewall decides by source); for
/// tls, a handshake with its address that verifies one of its names (or its IP); for http, a
/// request through the proxies for one of its names.
fn bears_on(f: &Finding, s: &Step) -> bool {
    use std::net::{IpAddr, SocketAddr};
    let Some(&(_, layer)) = PREDICTIVE.iter().find(|(c, _)| *c == f.code) else {
        return false;
    };
    if s.layer != layer {
        return false;
    }
    let addrs: Vec<SocketAddr> = f.subjects.iter().filter_map(|x| x.parse().ok()).collect();
    let ips: Vec<IpAddr> = f.subjects.iter().filter_map(|x| x.parse().ok()).collect();
    let vantages: Vec<VantageRef> = f.subjects.iter().filter_map(|x| x.parse().ok()).collect();
    let names: Vec<String> = f
        .subjects
        .iter()
        .map(|x| x.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    let to = s.probe.target_addr();
    let named = names_of(s).is_some_and(|n| names.contains(&n));
    match layer {
        Layer::Tcp => addrs.contains(&to) && vantages.contains(&s.from),
        Layer::Tls => {
            (addrs.contains(&to) || (addrs.is_empty() && ips.contains(&to.ip()))) && named
        }
        _ => !s.through.is_empty() && named,
    }
}

/// Hold a static finding against the live steps of the same run: `confirmed` when one that bears
/// on it failed by its own layers, `refuted` when those observed from their own vantage worked,
/// else `not-observable`.
fn reconcile(f: &Finding, plan: &Plan, results: &[StepResult]) -> Reconciliation {
    let seen: Vec<(&Step, &StepResult)> = plan
        .steps
        .iter()
        .zip(results)
        .filter(|(s, _)| bears_on(f, s))
        .collect();
    let failed: Vec<EvidenceItem> = seen
        .iter()
        .filter(|(_, r)| r.verdict.is_failure() && r.symptom_of.is_none())
        .map(|(_, r)| EvidenceItem::StepFailed {
            step: r.id.clone(),
            from: r.from.clone(),
            actual: r.actual.clone(),
        })
        .collect();
    if !failed.is_empty() {
        return Reconciliation {
            status: Reconciled::Confirmed,
            evidence: failed,
        };
    }
    let worked: Vec<EvidenceItem> = seen
        .iter()
        .filter(|(_, r)| matches!(r.verdict, Verdict::Ok | Verdict::Warn))
        .map(|(_, r)| EvidenceItem::StepWorked {
            step: r.id.clone(),
            from: r.from.clone(),
            expected: r.expected.clone(),
        })
        .collect();
    Reconciliation {
        status: if worked.is_empty() {
            Reconciled::NotObservable
        } else {
            Reconciled::Refuted
        },
        evidence: worked,
    }
}

fn plan_subjects(plan: &Plan) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in &plan.steps {
        out.insert(s.from.to_string());
        let addr = s.probe.target_addr();
        out.insert(addr.ip().to_string());
        out.insert(addr.to_string());
        out.extend(names_of(s));
    }
    out
}

fn finding_for(step: &Step, j: &Judged, code: Code) -> Finding {
    let severity = if j.verdict == Verdict::Warn {
        Severity::Warning
    } else {
        code.severity()
    };
    let title = code.title();
    let title = if code == SUBSTITUTED {
        format!("{title}: {}'s steps ran from this machine", step.from)
    } else {
        format!("{title} ({} → {}, from {})", step.hop, step.to, step.from)
    };
    let mut f = Finding::new(code, severity, title)
        .expected(step.expect.clone())
        .actual(j.actual.clone())
        .provenance(step.provenance.iter().cloned())
        .hint(code.info().fix);
    f.hop = step.hop.clone();
    f.layer = Some(step.layer);
    f.evidence = j.evidence.clone();
    f.subjects.push(step.from.to_string());
    f.subjects.push(step.probe.target_addr().ip().to_string());
    f
}

mod items;
mod judge;

pub use items::observation_items;
use judge::{judge, Judged};

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod reason_table;
