//! `plan` output: the resolved steps as a table or as JSON.

use super::{Plan, ProbeSpec};
use tabled::builder::Builder;
use tabled::settings::Style;

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

/// The plan as a table: one row per step, grouped by hop.
pub fn table(plan: &Plan) -> String {
    let mut out = format!(
        "plan {}: {} hops, {} steps\n",
        plan.target,
        plan.hops.len(),
        plan.steps.len()
    );
    for h in &plan.hops {
        out.push_str(&format!("\n{} ({})\n", h.title, h.id));
        let mut b = Builder::default();
        b.push_record([
            "step",
            "from",
            "layer",
            "target",
            "expect",
            "provenance",
            "depends on",
        ]);
        for s in plan.steps.iter().filter(|s| s.hop == h.id) {
            let prov: Vec<String> = s.provenance.iter().map(|p| p.to_string()).collect();
            let mut deps = s.depends_on.join(", ");
            if !s.through.is_empty() {
                if !deps.is_empty() {
                    deps.push('\n');
                }
                deps.push_str(&format!("through {}", s.through.join(" → ")));
            }
            b.push_record([
                s.id.clone(),
                s.from.to_string(),
                s.layer.to_string(),
                target(&s.probe),
                s.expect.clone(),
                prov.join("\n"),
                deps,
            ]);
        }
        out.push_str(&b.build().with(Style::sharp()).to_string());
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
