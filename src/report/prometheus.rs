//! Prometheus text exposition format, for node_exporter's textfile collector.
//!
//! Every label set is stable: labels name what was traced (target, hop, step, layer, vantage,
//! server name, phase) and never its state, so a change of state changes a value, not a series.
//! A verdict is a set of 0/1 series with every possible value present.

use crate::diagnose::{Overall, Report, Verdict};
use crate::engine::Run;
use crate::finding::{Origin, Severity};
use crate::observe::{Evidence, TlsEvidence};
use std::collections::BTreeMap;
use std::io::{self, Write};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A label value, escaped for the text format.
pub fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(w: &mut dyn Write, name: &str, help: &str) -> io::Result<()> {
    writeln!(w, "# HELP {name} {help}")?;
    writeln!(w, "# TYPE {name} gauge")
}

/// Seconds since the Unix epoch of an RFC 3339 time.
fn unix(rfc3339: &str) -> Option<f64> {
    OffsetDateTime::parse(rfc3339, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
}

/// The TLS part of an observation, if it has one.
fn tls_of(e: &Evidence) -> Option<&TlsEvidence> {
    match e {
        Evidence::Tls(t) => Some(t),
        Evidence::Mtls(m) => Some(&m.tls),
        Evidence::Http(h) => h.tls.as_ref(),
        _ => None,
    }
}

/// Earliest `not_after` of each served chain, per (target, hop, server name).
fn cert_expiry(reports: &[Report], runs: &[Run]) -> BTreeMap<(String, String, String), f64> {
    let mut out: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    for (r, run) in reports.iter().zip(runs) {
        for o in &run.observations {
            let Some(t) = tls_of(&o.evidence) else {
                continue;
            };
            let Some(earliest) = t
                .chain
                .iter()
                .filter_map(|c| unix(&c.not_after))
                .reduce(f64::min)
            else {
                continue;
            };
            let Some(hop) = r.steps.iter().find(|s| s.id == o.step).map(|s| &s.hop) else {
                continue;
            };
            let e = out
                .entry((r.target.clone(), hop.clone(), t.sni.clone()))
                .or_insert(earliest);
            *e = e.min(earliest);
        }
    }
    out
}

pub(super) fn render(reports: &[Report], runs: &[Run], w: &mut dyn Write) -> io::Result<()> {
    // The runs belong to the reports index by index; any other pairing is ignored.
    let runs: &[Run] = if runs.len() == reports.len()
        && runs.iter().zip(reports).all(|(a, r)| a.target == r.target)
    {
        runs
    } else {
        &[]
    };
    trace_series(reports, w)?;
    step_series(reports, w)?;
    if !runs.is_empty() {
        probe_series(reports, runs, w)?;
    }
    finding_series(reports, w)
}

/// Per trace: when the run ended, healthy, the verdict set, the wall time.
fn trace_series(reports: &[Report], w: &mut dyn Write) -> io::Result<()> {
    let last = reports
        .iter()
        .filter_map(|r| unix(&r.started_at).map(|t| t + r.duration_ms / 1000.0))
        .reduce(f64::max);
    if let Some(t) = last {
        header(
            w,
            "phoenix_doctor_last_run_timestamp_seconds",
            "When the last trace of this run ended (Unix time; the recorded time for a replay).",
        )?;
        writeln!(w, "phoenix_doctor_last_run_timestamp_seconds {t:.3}")?;
    }
    header(
        w,
        "phoenix_doctor_trace_healthy",
        "1 when every hop of the trace behaved as intended.",
    )?;
    for r in reports {
        writeln!(
            w,
            "phoenix_doctor_trace_healthy{{target=\"{}\"}} {}",
            label(&r.target),
            u8::from(r.verdict == Overall::Healthy)
        )?;
    }
    header(
        w,
        "phoenix_doctor_trace_verdict",
        "1 for the trace's verdict, 0 for the others (every verdict is always present).",
    )?;
    for r in reports {
        for v in [Overall::Healthy, Overall::Diverged, Overall::CannotJudge] {
            writeln!(
                w,
                "phoenix_doctor_trace_verdict{{target=\"{}\",verdict=\"{}\"}} {}",
                label(&r.target),
                v.as_str(),
                u8::from(r.verdict == v)
            )?;
        }
    }
    header(
        w,
        "phoenix_doctor_trace_duration_seconds",
        "Wall time of the trace.",
    )?;
    for r in reports {
        writeln!(
            w,
            "phoenix_doctor_trace_duration_seconds{{target=\"{}\"}} {:.6}",
            label(&r.target),
            r.duration_ms / 1000.0
        )?;
    }
    Ok(())
}

/// Per step: ok, the first divergence, the time it took.
fn step_series(reports: &[Report], w: &mut dyn Write) -> io::Result<()> {
    header(
        w,
        "phoenix_doctor_step_ok",
        "1 when the step behaved as intended (ok or warn).",
    )?;
    for r in reports {
        for s in &r.steps {
            writeln!(
                w,
                "phoenix_doctor_step_ok{{target=\"{}\",step=\"{}\",hop=\"{}\",from=\"{}\",layer=\"{}\"}} {}",
                label(&r.target),
                label(&s.id),
                label(&s.hop),
                label(&s.from),
                s.layer,
                u8::from(matches!(s.verdict, Verdict::Ok | Verdict::Warn))
            )?;
        }
    }
    header(
        w,
        "phoenix_doctor_step_first_divergence",
        "1 on the step where the trace first diverges (the root cause; its code: `trace --format json`).",
    )?;
    for r in reports {
        for s in &r.steps {
            let first = r.first_divergence.as_ref().is_some_and(|d| d.step == s.id);
            writeln!(
                w,
                "phoenix_doctor_step_first_divergence{{target=\"{}\",step=\"{}\"}} {}",
                label(&r.target),
                label(&s.id),
                u8::from(first)
            )?;
        }
    }
    header(
        w,
        "phoenix_doctor_step_duration_seconds",
        "Time the step took.",
    )?;
    for r in reports {
        for s in &r.steps {
            writeln!(
                w,
                "phoenix_doctor_step_duration_seconds{{target=\"{}\",step=\"{}\"}} {:.6}",
                label(&r.target),
                label(&s.id),
                s.duration_ms / 1000.0
            )?;
        }
    }
    Ok(())
}

/// Per probe (from the runs): each phase's duration, and the earliest expiry of each served chain.
fn probe_series(reports: &[Report], runs: &[Run], w: &mut dyn Write) -> io::Result<()> {
    header(
        w,
        "phoenix_doctor_probe_duration_seconds",
        "Duration of each phase a probe reached (resolve, connect, tls, first_byte).",
    )?;
    for (r, run) in reports.iter().zip(runs) {
        for o in &run.observations {
            let t = &o.timings;
            for (phase, ms) in [
                ("resolve", t.resolve_ms),
                ("connect", t.connect_ms),
                ("tls", t.tls_ms),
                ("first_byte", t.first_byte_ms),
            ] {
                if let Some(ms) = ms {
                    writeln!(
                        w,
                        "phoenix_doctor_probe_duration_seconds{{target=\"{}\",step=\"{}\",phase=\"{phase}\"}} {:.6}",
                        label(&r.target),
                        label(&o.step),
                        ms / 1000.0
                    )?;
                }
            }
        }
    }
    let expiry = cert_expiry(reports, runs);
    if !expiry.is_empty() {
        header(
            w,
            "phoenix_doctor_cert_expiry_timestamp_seconds",
            "Earliest notAfter of the chain served for this server name on this hop (Unix time).",
        )?;
        for ((target, hop, name), t) in &expiry {
            writeln!(
                w,
                "phoenix_doctor_cert_expiry_timestamp_seconds{{target=\"{}\",hop=\"{}\",server_name=\"{}\"}} {t:.0}",
                label(target),
                label(hop),
                label(name)
            )?;
        }
    }
    Ok(())
}

/// Per trace: the findings by severity and origin.
fn finding_series(reports: &[Report], w: &mut dyn Write) -> io::Result<()> {
    header(
        w,
        "phoenix_doctor_findings",
        "Findings by severity and origin (live: seen by a probe; static: from the configs).",
    )?;
    for r in reports {
        for origin in [Origin::Live, Origin::Static] {
            for sev in [Severity::Error, Severity::Warning, Severity::Info] {
                let n = r
                    .findings
                    .iter()
                    .filter(|f| f.severity == sev && f.origin == origin)
                    .count();
                writeln!(
                    w,
                    "phoenix_doctor_findings{{target=\"{}\",severity=\"{sev}\",origin=\"{}\"}} {n}",
                    label(&r.target),
                    origin.as_str()
                )?;
            }
        }
    }
    Ok(())
}
