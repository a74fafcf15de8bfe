//! Prometheus text exposition format, for node_exporter's textfile collector.

use crate::diagnose::{Overall, Report, Verdict};
use crate::finding::Severity;
use std::io::{self, Write};

fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(super) fn render(reports: &[Report], w: &mut dyn Write) -> io::Result<()> {
    writeln!(
        w,
        "# HELP phoenix_doctor_trace_healthy 1 when every hop of the trace behaved as intended."
    )?;
    writeln!(w, "# TYPE phoenix_doctor_trace_healthy gauge")?;
    for r in reports {
        writeln!(
            w,
            "phoenix_doctor_trace_healthy{{target=\"{}\",verdict=\"{}\"}} {}",
            label(&r.target),
            r.verdict.as_str(),
            u8::from(r.verdict == Overall::Healthy)
        )?;
    }
    writeln!(
        w,
        "# HELP phoenix_doctor_trace_duration_seconds Wall time of the trace."
    )?;
    writeln!(w, "# TYPE phoenix_doctor_trace_duration_seconds gauge")?;
    for r in reports {
        writeln!(
            w,
            "phoenix_doctor_trace_duration_seconds{{target=\"{}\"}} {:.6}",
            label(&r.target),
            r.duration_ms / 1000.0
        )?;
    }
    writeln!(
        w,
        "# HELP phoenix_doctor_first_divergence_info The root cause of a diverged trace."
    )?;
    writeln!(w, "# TYPE phoenix_doctor_first_divergence_info gauge")?;
    for r in reports {
        if let Some(d) = &r.first_divergence {
            writeln!(
                w,
                "phoenix_doctor_first_divergence_info{{target=\"{}\",hop=\"{}\",from=\"{}\",layer=\"{}\",code=\"{}\"}} 1",
                label(&r.target),
                label(&d.hop),
                label(&d.from),
                d.layer,
                label(&d.code)
            )?;
        }
    }
    writeln!(
        w,
        "# HELP phoenix_doctor_step_ok 1 when the step behaved as intended (ok or warn)."
    )?;
    writeln!(w, "# TYPE phoenix_doctor_step_ok gauge")?;
    for r in reports {
        for s in &r.steps {
            writeln!(
                w,
                "phoenix_doctor_step_ok{{target=\"{}\",step=\"{}\",hop=\"{}\",from=\"{}\",layer=\"{}\",verdict=\"{}\"}} {}",
                label(&r.target),
                label(&s.id),
                label(&s.hop),
                label(&s.from),
                s.layer,
                s.verdict.as_str(),
                u8::from(matches!(s.verdict, Verdict::Ok | Verdict::Warn))
            )?;
        }
    }
    writeln!(
        w,
        "# HELP phoenix_doctor_step_duration_seconds Time the step took."
    )?;
    writeln!(w, "# TYPE phoenix_doctor_step_duration_seconds gauge")?;
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
    writeln!(
        w,
        "# HELP phoenix_doctor_findings Findings by origin (live: seen by this run; static: from the configs alone) and severity."
    )?;
    writeln!(w, "# TYPE phoenix_doctor_findings gauge")?;
    for r in reports {
        for origin in ["live", "static"] {
            for sev in [Severity::Error, Severity::Warning, Severity::Info] {
                let n = r
                    .findings
                    .iter()
                    .filter(|f| f.severity == sev && f.origin == origin)
                    .count();
                writeln!(
                    w,
                    "phoenix_doctor_findings{{target=\"{}\",origin=\"{origin}\",severity=\"{sev}\"}} {n}",
                    label(&r.target)
                )?;
            }
        }
    }
    Ok(())
}
