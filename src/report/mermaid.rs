//! Mermaid sequence diagrams of the documented hops, like those in the platform's own analyses:
//! each hop marked ok or broken, the first divergence highlighted. One target gives one diagram;
//! several give a Markdown document with one fenced `mermaid` block per target (a Mermaid
//! document holds one diagram).

use crate::diagnose::{Report, Verdict};
use std::io::{self, Write};

fn ident(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn text(s: &str) -> String {
    // Mermaid message text ends at a newline and treats `;` and `#` specially; control characters
    // from untrusted text are shown, never passed on.
    crate::fsutil::escape_terminal(&s.replace(['\n', ';'], " ")).replace('#', "nr ")
}

/// One target: the bare diagram (paste it into mermaid.live or a `.mmd` file). Several: Markdown,
/// a heading and a fenced block per target, which GitHub and GitLab render as diagrams.
pub(super) fn render_many(reports: &[Report], w: &mut dyn Write) -> io::Result<()> {
    if let [r] = reports {
        return render(r, w);
    }
    writeln!(
        w,
        "# phoenix-doctor check: {}",
        super::overall(reports).as_str()
    )?;
    for r in reports {
        writeln!(
            w,
            "\n## trace {}: {}\n",
            text(&r.target),
            r.verdict.as_str()
        )?;
        writeln!(w, "```mermaid")?;
        render(r, w)?;
        writeln!(w, "```")?;
    }
    Ok(())
}

pub(super) fn render(r: &Report, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "sequenceDiagram")?;
    writeln!(
        w,
        "    title trace {} — {}",
        text(&r.target),
        r.verdict.as_str()
    )?;
    // Participants in order of first appearance.
    let mut parts: Vec<(String, String)> = Vec::new();
    let mut add = |label: &str| {
        let id = ident(label);
        if !parts.iter().any(|(i, _)| *i == id) {
            parts.push((id, label.to_string()));
        }
    };
    for h in &r.hops {
        add(&h.source_label());
        add(&h.to);
    }
    for (id, label) in &parts {
        writeln!(w, "    participant {id} as {}", text(label))?;
    }
    for h in &r.hops {
        let from = ident(&h.source_label());
        let to = ident(&h.to);
        let layers: Vec<String> = r
            .steps
            .iter()
            .filter(|s| s.hop == h.id)
            .map(|s| {
                let m = match s.verdict {
                    Verdict::Ok => "ok",
                    Verdict::Diverged | Verdict::Unreachable if s.symptom_of.is_none() => "BROKEN",
                    Verdict::Diverged | Verdict::Unreachable => "symptom",
                    Verdict::Blocked => "blocked",
                    Verdict::CannotJudge => "?",
                    Verdict::Warn => "warn",
                };
                format!("{} {m}", s.layer)
            })
            .collect();
        let first = r.first_divergence.as_ref().is_some_and(|d| d.hop == h.id);
        let broken = matches!(h.verdict, Verdict::Diverged | Verdict::Unreachable);
        let arrow = if broken { "-x" } else { "->>" };
        if first {
            writeln!(w, "    rect rgb(255, 205, 205)")?;
        } else if broken {
            writeln!(w, "    rect rgb(255, 235, 205)")?;
        }
        writeln!(
            w,
            "    {from}{arrow}{to}: {} [{}]",
            text(&h.id),
            text(&layers.join(", "))
        )?;
        if first {
            let d = r.first_divergence.as_ref().expect("checked above");
            let note = if from == to {
                format!("Note over {from}: ")
            } else {
                format!("Note over {from},{to}: ")
            };
            writeln!(
                w,
                "    {note}first divergence: {} {} ({})",
                text(&d.code),
                text(&d.title),
                d.layer
            )?;
        }
        if first || broken {
            writeln!(w, "    end")?;
        }
    }
    Ok(())
}

trait FromLabel {
    fn source_label(&self) -> String;
}

impl FromLabel for crate::diagnose::HopResult {
    fn source_label(&self) -> String {
        if self.from_label.is_empty() {
            self.from.clone()
        } else {
            self.from_label.clone()
        }
    }
}
