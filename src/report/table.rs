//! The table format: the first divergence on top, then hops, steps and findings.

use super::{clip, Style};
use crate::diagnose::{Overall, Report, Verdict};
use crate::finding::{Finding, Origin, Reconciled, Severity};
use std::io::{self, Write};
use tabled::builder::Builder;
use tabled::settings::Style as TStyle;

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

fn paint(s: &str, color: &str, style: Style) -> String {
    if style.color {
        format!("{color}{s}{RESET}")
    } else {
        s.to_string()
    }
}

fn verdict_color(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => GREEN,
        Verdict::Diverged | Verdict::Unreachable => RED,
        Verdict::Warn | Verdict::CannotJudge => YELLOW,
        Verdict::Blocked => "",
    }
}

fn overall_color(v: Overall) -> &'static str {
    match v {
        Overall::Healthy => GREEN,
        Overall::Diverged => RED,
        Overall::CannotJudge => YELLOW,
    }
}

/// One trace report as text, fitted to `style.width` when set (tables through [`fit_table`], long
/// lines wrapped under their label).
pub(super) fn render(r: &Report, style: Style, w: &mut dyn Write) -> io::Result<()> {
    match style.width {
        None => render_natural(r, style, w),
        Some(width) => {
            let mut buf = Vec::new();
            render_natural(r, style, &mut buf)?;
            w.write_all(fit_lines(&String::from_utf8_lossy(&buf), width).as_bytes())
        }
    }
}

/// Wrap every line wider than `width` display columns at spaces, continuing under its text: a
/// `  label:   value` line continues under the value, any other under its own indentation plus
/// four. Table lines (box drawing) are left alone; their tables are fitted when built.
fn fit_lines(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthStr;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let is_table = body
            .trim_start()
            .starts_with(['┌', '│', '├', '└', '╭', '║']);
        if is_table || body.width() <= width {
            out.push_str(line);
            continue;
        }
        let lead = body.len() - body.trim_start().len();
        // `  expected:   A 10.0.0.153 ...`: the value starts after the label's padding.
        let indent = match body[lead..].find(":  ") {
            Some(i) if i < 16 && !body[lead..lead + i].contains(' ') => {
                let after = &body[lead + i + 1..];
                lead + i + 1 + (after.len() - after.trim_start().len())
            }
            _ => lead + 4,
        };
        let indent = indent.min(width / 2);
        let first = &body[..indent.min(body.len())];
        let rest = &body[indent.min(body.len())..];
        let wrapped = wrap_text(rest, width.saturating_sub(indent).max(20));
        for (i, l) in wrapped.lines().enumerate() {
            if i == 0 {
                out.push_str(first);
            } else {
                out.push_str(&" ".repeat(indent));
            }
            out.push_str(l);
            out.push('\n');
        }
        if !line.ends_with('\n') {
            out.pop();
        }
    }
    out
}

/// A finished table: fitted to `style.width` (keeping the columns in `keep` whole) or natural.
fn table_text(b: Builder, style: Style, keep: &[usize]) -> String {
    match style.width {
        Some(width) => fit_table(b, width, keep),
        None => b.build().with(TStyle::sharp()).to_string(),
    }
}

fn render_natural(r: &Report, style: Style, w: &mut dyn Write) -> io::Result<()> {
    headline(r, style, w)?;
    first_divergence(r, style, w)?;
    hop_table(r, style, w)?;
    failing_steps(r, style, w)?;
    let others: Vec<_> = r
        .findings
        .iter()
        .filter(|f| {
            r.first_divergence
                .as_ref()
                .is_none_or(|fd| !(fd.hop == f.hop && fd.code == f.code))
        })
        .collect();
    let (live, config): (Vec<_>, Vec<_>) =
        others.into_iter().partition(|f| f.origin != Origin::Static);
    live_findings(r, &live, style, w)?;
    static_findings(&config, style, w)
}

/// The verdict line, and how many checks could not be made from their vantage.
fn headline(r: &Report, style: Style, w: &mut dyn Write) -> io::Result<()> {
    let head = format!(
        "trace {}: {}{}",
        r.target,
        r.verdict.as_str().to_uppercase(),
        accepted_note(r)
    );
    writeln!(
        w,
        "{}  ({} steps, {:.0} ms{})",
        paint(&head, overall_color(r.verdict), style),
        r.steps.len(),
        r.duration_ms,
        if r.attempts > 1 {
            format!(", {} attempts", r.attempts)
        } else {
            String::new()
        }
    )?;
    let unjudged: Vec<&str> = r
        .steps
        .iter()
        .filter(|s| s.code == Some(crate::diagnose::SUBSTITUTED))
        .map(|s| s.from.as_str())
        .collect();
    if !unjudged.is_empty() {
        let mut guests = unjudged.clone();
        guests.sort();
        guests.dedup();
        writeln!(
            w,
            "{}",
            paint(
                &format!(
                    "{} check(s) could not be made: they start in {} but ran from this machine; --push --agent-path PATH or --via KIND=TEMPLATE runs them there.",
                    unjudged.len(),
                    guests.join(", ")
                ),
                YELLOW,
                style
            )
        )?;
    }
    Ok(())
}

/// The root cause in full: expected, actual, evidence, config lines, the fix.
fn first_divergence(r: &Report, style: Style, w: &mut dyn Write) -> io::Result<()> {
    if let Some(fd) = &r.first_divergence {
        if let Some(f) = r
            .findings
            .iter()
            .find(|f| f.hop == fd.hop && f.code == fd.code)
        {
            writeln!(w)?;
            writeln!(
                w,
                "{} {} {} — {}",
                paint("First divergence:", BOLD, style),
                paint(&f.code, RED, style),
                fd.step,
                f.title
            )?;
            writeln!(w, "  expected:   {}", f.expected)?;
            writeln!(w, "  actual:     {}", f.actual)?;
            for e in &f.evidence {
                writeln!(w, "  evidence:   {e}")?;
            }
            for p in &f.provenance {
                writeln!(w, "  config:     {p}")?;
            }
            if !f.hint.is_empty() {
                writeln!(w, "  fix:        {}", f.hint)?;
            }
            writeln!(w, "  more:       phoenix-doctor explain {}", f.code)?;
        }
    }

    Ok(())
}

/// One row per hop: its verdict and each step's mark.
fn hop_table(r: &Report, style: Style, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w)?;
    let mut b = Builder::default();
    b.push_record(["hop", "from", "to", "verdict", "steps"]);
    for h in &r.hops {
        let steps: Vec<String> = r
            .steps
            .iter()
            .filter(|s| s.hop == h.id)
            .map(|s| format!("{} {}", s.layer, mark(s.verdict)))
            .collect();
        let substituted = r
            .steps
            .iter()
            .any(|s| s.hop == h.id && s.vantage.substituted);
        b.push_record([
            h.id.clone(),
            if substituted {
                format!("{} (ran from here)", h.from)
            } else {
                h.from.clone()
            },
            h.to.clone(),
            paint(h.verdict.as_str(), verdict_color(h.verdict), style),
            steps.join("  "),
        ]);
    }
    writeln!(w, "{}", table_text(b, style, &[0, 1]))?;
    let substituted = r.steps.iter().filter(|s| s.vantage.substituted).count();
    if substituted > 0 {
        writeln!(
            w,
            "{}",
            paint(
                &format!(
                    "{substituted} step(s) ran from this machine instead of their vantage: what only that guest sees (its /etc/hosts, a firewall keyed on its address) cannot show here."
                ),
                YELLOW,
                style
            )
        )?;
    }

    Ok(())
}

/// Every step that was not ok: expected against actual, and whose symptom it is.
fn failing_steps(r: &Report, style: Style, w: &mut dyn Write) -> io::Result<()> {
    let failing: Vec<_> = r
        .steps
        .iter()
        .filter(|s| s.verdict != Verdict::Ok)
        .collect();
    if !failing.is_empty() {
        let mut b = Builder::default();
        b.push_record(["step", "from", "verdict", "expected", "actual"]);
        for s in failing {
            let verdict = match &s.symptom_of {
                Some(h) => format!("{} (symptom of {h})", s.verdict.as_str()),
                None => s.verdict.as_str().to_string(),
            };
            b.push_record([
                s.id.clone(),
                s.from.clone(),
                paint(&verdict, verdict_color(s.verdict), style),
                clip(&s.expected, 48),
                clip(&s.actual, 64),
            ]);
        }
        writeln!(w, "{}", table_text(b, style, &[0, 1]))?;
    }

    Ok(())
}

/// A finding's severity, coloured.
fn severity(f: &Finding, style: Style) -> String {
    match f.severity {
        Severity::Error => paint("error", RED, style),
        Severity::Warning => paint("warning", YELLOW, style),
        Severity::Info => "info".to_string(),
    }
}

/// The live findings besides the first divergence, with the symptoms they explain.
fn live_findings(r: &Report, live: &[&Finding], style: Style, w: &mut dyn Write) -> io::Result<()> {
    let sev = |f: &Finding| severity(f, style);
    // Findings off the target's own request say which path they are on.
    let marked = r.hops.iter().any(|h| h.path == crate::plan::TARGET_PATH);
    let path_note = |f: &Finding| -> String {
        let path = r
            .steps
            .iter()
            .find(|s| s.hop == f.hop && s.code.as_deref() == Some(f.code.as_str()))
            .map(|s| s.path.as_str())
            .unwrap_or("");
        match path {
            _ if !marked => String::new(),
            crate::plan::TARGET_PATH => String::new(),
            "" => " [off the target's path]".to_string(),
            p => format!(" [{p} path]"),
        }
    };
    if !live.is_empty() {
        writeln!(w, "\nOther findings:")?;
        for f in live {
            writeln!(w, "  {} {}{}: {}", f.code, sev(f), path_note(f), f.title)?;
            if let Some(a) = &f.accepted {
                writeln!(w, "      {}", accepted_line(a))?;
            }
            if !f.expected.is_empty() || !f.actual.is_empty() {
                writeln!(w, "      expected {} / actual {}", f.expected, f.actual)?;
            }
            for e in f.evidence.iter().filter(|e| e.symptom_step().is_some()) {
                writeln!(w, "      {e}")?;
            }
            if let Some(p) = f.provenance.first() {
                writeln!(w, "      config: {p}")?;
            }
        }
    }
    Ok(())
}

/// The static findings on these hops, one line each, as this run's live evidence holds them.
fn static_findings(config: &[&Finding], style: Style, w: &mut dyn Write) -> io::Result<()> {
    let sev = |f: &Finding| severity(f, style);
    if !config.is_empty() {
        // Static findings are context, not the verdict, and are held against this run's live
        // evidence: a refuted one is never called an error here. One line each, details in `lint`.
        let status = |f: &Finding| {
            f.reconciliation
                .as_ref()
                .map(|r| r.status)
                .unwrap_or(Reconciled::NotObservable)
        };
        let count = |s: Reconciled| config.iter().filter(|f| status(f) == s).count();
        let mut parts = Vec::new();
        for (s, words) in [
            (Reconciled::Confirmed, "confirmed by this run"),
            (Reconciled::Refuted, "refuted by this run"),
            (Reconciled::NotObservable, "not observable"),
        ] {
            if count(s) > 0 {
                parts.push(format!("{} {words}", count(s)));
            }
        }
        writeln!(
            w,
            "\nStatic findings on these hops, from the config files alone ({} static findings: {}; `phoenix-doctor lint` for details):",
            config.len(),
            parts.join(", ")
        )?;
        for f in config {
            let by = f
                .reconciliation
                .as_ref()
                .and_then(|r| r.evidence.first())
                .and_then(|e| e.step())
                .unwrap_or("");
            let label = match (status(f), f.severity) {
                (Reconciled::Refuted, _) => format!("static, refuted by {by}"),
                (Reconciled::Confirmed, _) => format!("static {}, confirmed by {by}", sev(f)),
                (Reconciled::NotObservable, Severity::Error) => {
                    format!("static {}, not observable", sev(f))
                }
                _ => continue,
            };
            writeln!(w, "  {:<14} {label}: {}", f.code, clip(&f.title, 110))?;
        }
    }
    Ok(())
}

/// ` (N accepted)` when a baseline accepted findings of this trace.
fn accepted_note(r: &Report) -> String {
    match crate::baseline::accepted_count(r) {
        0 => String::new(),
        n => format!(" ({n} accepted)"),
    }
}

fn accepted_line(a: &crate::finding::Accepted) -> String {
    format!(
        "accepted (baseline{}): {}",
        a.expires
            .as_ref()
            .map(|e| format!(", until {e}"))
            .unwrap_or_default(),
        a.reason
    )
}

fn mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "ok",
        Verdict::Diverged | Verdict::Unreachable => "FAIL",
        Verdict::Blocked => "-",
        Verdict::CannotJudge => "?",
        Verdict::Warn => "warn",
    }
}

pub(super) fn summary(reports: &[Report], style: Style, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w)?;
    let mut b = Builder::default();
    b.push_record(["target", "verdict", "first divergence", "steps", "ms"]);
    for r in reports {
        let fd = r
            .first_divergence
            .as_ref()
            .map(|d| format!("{} {} {}", d.hop, d.layer, d.code))
            .unwrap_or_else(|| "-".into());
        b.push_record([
            r.target.clone(),
            paint(
                &format!("{}{}", r.verdict.as_str(), accepted_note(r)),
                overall_color(r.verdict),
                style,
            ),
            fd,
            r.steps.len().to_string(),
            format!("{:.0}", r.duration_ms),
        ]);
    }
    writeln!(w, "{}", table_text(b, style, &[0]))?;
    let overall = super::overall(reports);
    writeln!(
        w,
        "{}",
        paint(
            &format!("check: {}", overall.as_str().to_uppercase()),
            overall_color(overall),
            style
        )
    )
}

/// The width tables are fitted to: `COLUMNS` when it is set to a number, else the terminal's
/// width when stdout is one, else 100 (a pipe or a file).
pub fn output_width() -> usize {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|n| *n >= 40)
    {
        return n;
    }
    use std::io::IsTerminal;
    if io::stdout().is_terminal() {
        if let Some((terminal_size::Width(w), _)) = terminal_size::terminal_size() {
            return (w as usize).max(40);
        }
    }
    100
}

/// Render a table (sharp borders) in at most `width` display columns. The columns in `keep`
/// (a code, a subject, a config line) keep their widest line whole while the others can give
/// way; the others share what is left, the widest giving first, wrapped at word boundaries (a
/// word longer than its column is cut). Only when even that cannot fit are kept columns wrapped.
pub fn fit_table(b: Builder, width: usize, keep: &[usize]) -> String {
    use unicode_width::UnicodeWidthStr;
    const MIN: usize = 10;
    let records: Vec<Vec<String>> = b.clone().into();
    let n = records.iter().map(Vec::len).max().unwrap_or(0);
    let natural: Vec<usize> = (0..n)
        .map(|c| {
            records
                .iter()
                .filter_map(|r| r.get(c))
                .flat_map(|cell| cell.lines())
                .map(UnicodeWidthStr::width)
                .max()
                .unwrap_or(0)
        })
        .collect();
    // Each column costs its text, one space of padding each side and a border.
    let available = width.saturating_sub(3 * n + 1);
    let mut target = natural.clone();
    if natural.iter().sum::<usize>() > available {
        let flex: Vec<usize> = (0..n).filter(|c| !keep.contains(c)).collect();
        let kept: usize = (0..n)
            .filter(|c| keep.contains(c))
            .map(|c| natural[c])
            .sum();
        let (mut share_cols, mut budget) = if kept + MIN * flex.len() <= available {
            (flex, available - kept)
        } else {
            ((0..n).collect(), available)
        };
        // Water-filling: narrow columns keep their width, the rest split the remainder evenly.
        share_cols.sort_by_key(|&c| natural[c]);
        let mut left = share_cols.len();
        for c in share_cols {
            let share = (budget / left.max(1)).max(MIN.min(natural[c]).max(1));
            target[c] = natural[c].min(share);
            budget = budget.saturating_sub(target[c]);
            left -= 1;
        }
    }
    let mut out = Builder::default();
    for row in records {
        out.push_record(row.iter().enumerate().map(|(c, cell)| {
            if target[c] < natural[c] {
                wrap_text(cell, target[c])
            } else {
                cell.clone()
            }
        }));
    }
    out.build().with(TStyle::sharp()).to_string()
}

/// A config line for a table cell: `file:line` whole on the first line, then the JSON pointer
/// (or what a platform script hard-codes) broken at `/` or spaces into lines no wider than it.
pub fn provenance_cell(p: &crate::config::Provenance) -> String {
    let head = match p.line {
        Some(l) => format!("{}:{l}", p.file),
        None => p.file.to_string(),
    };
    let width = head.chars().count().max(36);
    let mut lines = vec![head];
    let mut cur = String::new();
    for seg in p.pointer.split_inclusive(['/', ' ']) {
        if !cur.is_empty() && cur.chars().count() + seg.chars().count() > width {
            lines.push(cur.trim_end().to_string());
            cur.clear();
        }
        cur.push_str(seg);
    }
    if !cur.trim().is_empty() {
        lines.push(cur.trim_end().to_string());
    }
    lines.join("\n")
}

/// Wrap each line of `text` at spaces into lines of at most `width` display columns; a word
/// wider than that is cut.
fn wrap_text(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    use unicode_width::UnicodeWidthStr;
    let width = width.max(1);
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let mut cur = String::new();
        for word in line.split(' ').filter(|w| !w.is_empty()) {
            let (cw, ww) = (cur.width(), word.width());
            if !cur.is_empty() && cw + 1 + ww <= width {
                cur.push(' ');
                cur.push_str(word);
                continue;
            }
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            for ch in word.chars() {
                if cur.width() + ch.width().unwrap_or(0) > width {
                    out.push(std::mem::take(&mut cur));
                }
                cur.push(ch);
            }
        }
        out.push(cur);
    }
    out.join("\n")
}

#[cfg(test)]
mod width_tests {
    use super::*;
    use unicode_width::UnicodeWidthStr;

    fn table() -> Builder {
        let mut b = Builder::default();
        b.push_record(["code", "finding", "config"]);
        b.push_record([
            "PD-FW-005",
            "container firewall rules are not enforced because lxc-manager never sets the container's [OPTIONS] enable, whose Proxmox default is 0",
            "etc/phoenix_lxc_configs.json:265",
        ]);
        b
    }

    #[test]
    fn fitted_tables_stay_inside_the_width_and_keep_kept_columns_whole() {
        let out = fit_table(table(), 80, &[0, 2]);
        for line in out.lines() {
            assert!(line.width() <= 80, "{} > 80: {line}", line.width());
        }
        assert!(out.contains("PD-FW-005"));
        assert!(out.contains("etc/phoenix_lxc_configs.json:265"));
        assert!(out.lines().count() > 5, "the long cell wraps:\n{out}");
    }

    #[test]
    fn wrapping_keeps_words_and_cuts_only_overlong_ones() {
        assert_eq!(wrap_text("aa bb cc", 5), "aa bb\ncc");
        assert_eq!(wrap_text("abcdefgh x", 3), "abc\ndef\ngh\nx");
        assert_eq!(wrap_text("one\ntwo three", 9), "one\ntwo three");
    }

    #[test]
    fn a_table_that_fits_is_unchanged() {
        let out = fit_table(table(), 400, &[0, 2]);
        assert_eq!(out, table().build().with(TStyle::sharp()).to_string());
    }
}
