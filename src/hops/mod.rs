//! The hop catalogue: `probes/*.toml`, parsed once. The traces (`probes/*.toml`: the hops a
//! target's request and the platform's other paths take, layer by layer) and the documented
//! firewall hops (`probes/platform/hops.toml`) are the one description of the platform's hops
//! that `plan`, `lint` and the lab read; none of them keeps a list of its own.

pub mod documented;
pub mod ids;
pub mod traces;

pub use documented::{Documented, End, Proto};
pub use traces::{HopDef, TraceDef, BUILTIN};

use crate::error::Error;
use std::sync::OnceLock;

/// The documented firewall hops file, embedded at build time.
pub const DOCUMENTED: (&str, &str) = (
    "probes/platform/hops.toml",
    include_str!("../../probes/platform/hops.toml"),
);

/// The built-in traces, parsed once per process.
pub fn traces() -> Result<&'static [TraceDef], Error> {
    static TRACES: OnceLock<Result<Vec<TraceDef>, String>> = OnceLock::new();
    TRACES
        .get_or_init(|| traces::parse_all(BUILTIN).map_err(|e| e.to_string()))
        .as_deref()
        .map_err(|e| Error::input(e.clone()))
}

/// The documented firewall hops, parsed once per process, in report order.
pub fn documented() -> &'static [Documented] {
    static DOC: OnceLock<Vec<Documented>> = OnceLock::new();
    DOC.get_or_init(|| {
        documented::parse(DOCUMENTED.0, DOCUMENTED.1)
            .expect("the built-in documented hops parse (tested)")
    })
}

/// The trace hop with this id (the first trace that has it), with its trace.
pub fn trace_hop(id: &str) -> Option<(&'static TraceDef, &'static HopDef)> {
    let traces = traces().ok()?;
    traces
        .iter()
        .find_map(|t| t.hops.iter().find(|h| h.id == id).map(|h| (t, h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalogue_parses_and_ids_are_unique() {
        let doc = documented();
        assert_eq!(doc.len(), 12);
        assert!(traces().expect("traces parse").len() >= 5);
        let mut ids: Vec<&str> = doc.iter().map(|d| d.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), doc.len());
    }

    #[test]
    fn a_documented_hop_that_a_trace_probes_joins_the_same_components() {
        // Where a trace probes a documented hop (same id), both name the same two components.
        let name = |e: End| match e {
            End::Host => "host",
            End::Gateway => "gateway",
            End::Router => "router",
            End::Ca => "ca",
            End::Portainer => "portainer",
            End::Agent => "agent",
            End::Dnsmasq => "dnsmasq",
            _ => "",
        };
        let mut shared = 0;
        for d in documented() {
            for t in traces().unwrap() {
                for h in t.hops.iter().filter(|h| h.id == d.id) {
                    assert_eq!(
                        (h.from.as_str(), h.to.as_str()),
                        (name(d.from), name(d.to)),
                        "{}",
                        d.id
                    );
                    shared += 1;
                }
            }
        }
        assert!(shared >= 5, "the traces probe the documented hops");
    }

    #[test]
    fn an_unknown_component_is_an_error_naming_the_file() {
        let e = documented::parse(
            "x.toml",
            "[[hop]]\nid = \"a\"\nwhat = \"w\"\nfrom = \"moon\"\nto = \"ca\"\n",
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("x.toml: unknown variant `moon`"),
            "{e}"
        );
    }
}
