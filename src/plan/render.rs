//! `plan` output: the resolved steps as a table (fitted to the terminal) or as JSON.

use super::{Plan, ProbeSpec};
use crate::report::{fit_table, provenance_cell};
use tabled::builder::Builder;

fn target(p: &ProbeSpec) -> String {
    match p {
        ProbeSpec::Dns { name, server, .. } => format!("{name} @ {server}"),
        ProbeSpec::Tcp { addr } => addr.to_string(),
        ProbeSpec::Tls { addr, sni, .. } | ProbeSpec::Mtls { addr, sni, .. } => {
            format!("{addr} sni={sni}")
        }
        ProbeSpec::Http { url, connect, .. } => format!("{url} @ {connect}"),
    }
}

/// The plan as a table in at most `width` columns: one row per step, grouped by hop. The step
/// (id, vantage, layer) and its config lines stay whole; what it checks wraps.
pub fn table(plan: &Plan, width: usize) -> String {
    let mut out = format!(
        "plan {}: {} hops, {} steps\n",
        plan.target,
        plan.hops.len(),
        plan.steps.len()
    );
    for h in &plan.hops {
        out.push_str(&format!("\n{} ({})\n", h.title, h.id));
        let mut b = Builder::default();
        b.push_record(["step", "checks", "config"]);
        for s in plan.steps.iter().filter(|s| s.hop == h.id) {
            let prov: Vec<String> = s.provenance.iter().map(provenance_cell).collect();
            let mut checks = format!("target: {}\nexpect: {}", target(&s.probe), s.expect);
            if !s.depends_on.is_empty() {
                checks.push_str(&format!("\ndepends on: {}", s.depends_on.join(", ")));
            }
            if !s.through.is_empty() {
                checks.push_str(&format!("\nthrough: {}", s.through.join(" → ")));
            }
            b.push_record([
                format!("{}\nfrom {} ({})", s.id, s.from, s.layer),
                checks,
                prov.join("\n"),
            ]);
        }
        out.push_str(&fit_table(b, width, &[0, 2]));
        out.push('\n');
    }
    out
}

/// The plan as pretty JSON.
pub fn json(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(plan).unwrap_or_default();
    s.push('\n');
    s
}
