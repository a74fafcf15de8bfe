//! The catalogue's fixed hop ids, named: code that means a particular hop (the lab's faults,
//! lint's tests) names it as `ids::GATEWAY_ROUTER`, never as text, so a misspelt name does not
//! compile; and [`ALL`] is held to the catalogue both ways by one test, so a misspelt value
//! or a hop the catalogue gains or loses without this list fails that test. Generic hops
//! (`router-{service}`) are ids per service and are not listed.

/// The host asks dnsmasq (the target's name).
pub const HOST_DNS: &str = "host-dns";
/// The host (or any client) dials the NGINX gateway.
pub const HOST_GATEWAY: &str = "host-gateway";
/// The gateway proxies to Traefik.
pub const GATEWAY_ROUTER: &str = "gateway-router";
/// Traefik resolves a backend's name.
pub const ROUTER_DNS: &str = "router-dns";
/// Traefik's route to the qdrant backend.
pub const ROUTER_QDRANT: &str = "router-qdrant";
/// The host reaches Portainer through the gateway.
pub const HOST_GATEWAY_PORTAINER: &str = "host-gateway-portainer";
/// The gateway proxies Portainer's name to Traefik.
pub const GATEWAY_ROUTER_PORTAINER: &str = "gateway-router-portainer";
/// Traefik's route to Portainer.
pub const ROUTER_PORTAINER: &str = "router-portainer";
/// The Portainer VM resolves the agent's name.
pub const PORTAINER_DNS: &str = "portainer-dns";
/// Portainer dials its agent.
pub const PORTAINER_AGENT: &str = "portainer-agent";
/// The host dials the agent.
pub const HOST_AGENT: &str = "host-agent";
/// The host dials step-ca.
pub const HOST_CA: &str = "host-ca";
/// Traefik dials step-ca (ACME).
pub const ROUTER_CA: &str = "router-ca";
/// The CA resolves names.
pub const CA_DNS: &str = "ca-dns";
/// The agent VM resolves the CA's name.
pub const AGENT_DNS: &str = "agent-dns";
/// The agent VM dials step-ca.
pub const AGENT_CA: &str = "agent-ca";
/// The Portainer VM dials the gateway.
pub const PORTAINER_GATEWAY: &str = "portainer-gateway";
/// Any LAN client dials the gateway.
pub const LAN_GATEWAY: &str = "lan-gateway";
/// Traefik dials each route's backend.
pub const ROUTER_BACKEND: &str = "router-backend";
/// The host dials Portainer's API.
pub const HOST_PORTAINER: &str = "host-portainer";
/// A docker VM dials step-ca.
pub const VM_CA: &str = "vm-ca";
/// Each guest asks the host's dnsmasq (`probes/platform/hops.toml` names it `F`).
pub const GUEST_DNSMASQ: &str = "F";

/// Every fixed id of the catalogue (the traces' and the documented hops').
pub const ALL: &[&str] = &[
    HOST_DNS,
    HOST_GATEWAY,
    GATEWAY_ROUTER,
    ROUTER_DNS,
    ROUTER_QDRANT,
    HOST_GATEWAY_PORTAINER,
    GATEWAY_ROUTER_PORTAINER,
    ROUTER_PORTAINER,
    PORTAINER_DNS,
    PORTAINER_AGENT,
    HOST_AGENT,
    HOST_CA,
    ROUTER_CA,
    CA_DNS,
    AGENT_DNS,
    AGENT_CA,
    PORTAINER_GATEWAY,
    LAN_GATEWAY,
    ROUTER_BACKEND,
    HOST_PORTAINER,
    VM_CA,
    GUEST_DNSMASQ,
];

/// True for a fixed hop id of the catalogue.
pub fn is_known(id: &str) -> bool {
    ALL.contains(&id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_named_ids_are_exactly_the_catalogues_fixed_ones() {
        let mut catalogue: BTreeSet<&str> = super::super::documented()
            .iter()
            .map(|d| d.id.as_str())
            .collect();
        for t in super::super::traces().unwrap() {
            catalogue.extend(
                t.hops
                    .iter()
                    .map(|h| h.id.as_str())
                    .filter(|id| !id.contains('{')),
            );
        }
        let named: BTreeSet<&str> = ALL.iter().copied().collect();
        assert_eq!(named.len(), ALL.len(), "an id is named twice");
        assert_eq!(named, catalogue);
        assert!(is_known(GATEWAY_ROUTER) && !is_known("gateway-routr"));
    }
}
