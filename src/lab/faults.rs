//! The lab's named faults: each one a real failure of the platform, with the hop, layer and
//! finding code where a trace should see the first divergence (what every target's trace should
//! say, and the probe's reason there, is written by hand in `tests/oracle/expected.toml`).

use crate::error::{Error, Result};
use crate::hops::ids;
use crate::observe::Layer;
use serde::Serialize;
use std::fmt;

/// A failure the lab can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    HostsOverride,
    AgentDnsGateway,
    Nxdomain,
    DnsDown,
    QdrantDown,
    ExpiredLeaf,
    WrongSan,
    UntrustedCa,
    IntermediateMissing,
    MtlsNotEnforced,
    ClientCertRejected,
    NoRoute,
    BackendTls,
    CaDown,
    SlowBackend,
    ResolvNowhere,
    AgentMoved,
    CertNotReloaded,
    GatewayUpstreamDrifted,
    DnsmasqStale,
    TraefikRouterHandEdited,
}

/// Where the first divergence of a fault should be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Expected {
    /// Hop id as the plan names it (`host-gateway`, `router-portainer`, ...).
    pub hop: &'static str,
    pub layer: Layer,
    /// The finding code the diagnosis gives there (see `phoenix-doctor explain CODE`).
    pub code: &'static str,
}

/// One entry of `phoenix-doctor lab --list-faults`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FaultInfo {
    pub fault: Fault,
    pub name: &'static str,
    pub summary: &'static str,
    pub expected: Expected,
    /// Where the same failure is documented for the real platform.
    pub platform_ref: &'static str,
}

const fn info(
    fault: Fault,
    name: &'static str,
    summary: &'static str,
    expected: Expected,
    platform_ref: &'static str,
) -> FaultInfo {
    FaultInfo {
        fault,
        name,
        summary,
        expected,
        platform_ref,
    }
}

const fn at(hop: &'static str, layer: Layer, code: &'static str) -> Expected {
    Expected { hop, layer, code }
}

static FAULTS: [FaultInfo; 21] = [
    info(
        Fault::HostsOverride,
        "hosts-override",
        "the router's (lxc:102) hosts file pins portainer.<domain> to the old Portainer IP .101",
        at(ids::ROUTER_DNS, Layer::Dns, "PD-DNS-003"),
        "seeds: Traefik resolves portainer to 10.0.0.101, the address Portainer had before it moved to 10.0.0.111 (docs/platform.md, Known defects)",
    ),
    info(
        Fault::AgentDnsGateway,
        "agent-dns-gateway",
        "the DNS record for portainer-agent.<domain> points at the gateway instead of VM 1002",
        at(ids::PORTAINER_DNS, Layer::Dns, "PD-DNS-002"),
        "hypervisor_feature_setup_dns_server.sh: a static portainer-agent → gateway record won unique_by (4ad43bc..02612da)",
    ),
    info(
        Fault::Nxdomain,
        "nxdomain",
        "qdrant.<domain> is missing from DNS (NXDOMAIN under local=)",
        at(ids::HOST_DNS, Layer::Dns, "PD-DNS-001"),
        "hypervisor_feature_setup_dns_server.sh: records exist only if the generator writes them (docs/platform.md, Derivation rules)",
    ),
    info(
        Fault::DnsDown,
        "dns-down",
        "the DNS server on the host is not running",
        at(ids::HOST_DNS, Layer::Dns, "PD-DNS-004"),
        "hypervisor_feature_setup_dns_server.sh: dnsmasq not listening where clients ask",
    ),
    info(
        Fault::QdrantDown,
        "qdrant-down",
        "qdrant on VM 1002 refuses connections",
        at(ids::ROUTER_QDRANT, Layer::Tcp, "PD-TCP-001"),
        "check_qdrant.sh (qdrant container not running)",
    ),
    info(
        Fault::ExpiredLeaf,
        "expired-leaf",
        "the gateway's certificate expired (renewal failed)",
        at(ids::HOST_GATEWAY, Layer::Tls, "PD-TLS-001"),
        "certificate-renewal-manager.sh: 24-hour certificates and a failed renewal",
    ),
    info(
        Fault::WrongSan,
        "wrong-san",
        "the gateway's certificate lacks qdrant.<domain> (only nginx. and portainer.)",
        at(ids::HOST_GATEWAY, Layer::Tls, "PD-TLS-002"),
        "certificate-manifest.json: the gateway entry names only nginx. and portainer.",
    ),
    info(
        Fault::UntrustedCa,
        "untrusted-ca",
        "the gateway's certificate comes from another root",
        at(ids::HOST_GATEWAY, Layer::Tls, "PD-TLS-003"),
        "certificate-renewal-manager.sh / portainer-manager.sh: CA path duality, root re-initialised",
    ),
    info(
        Fault::IntermediateMissing,
        "intermediate-missing",
        "the gateway serves its leaf without the intermediate",
        at(ids::HOST_GATEWAY, Layer::Tls, "PD-TLS-004"),
        "certificate-renewal-manager.sh: step writes the leaf alone; the bundle is needed",
    ),
    info(
        Fault::MtlsNotEnforced,
        "mtls-not-enforced",
        "Portainer does not request a client certificate",
        at(ids::ROUTER_PORTAINER, Layer::Mtls, "PD-MTLS-001"),
        "feature_install_docker.sh: \"mTLS\" that is server-TLS only (daemon.json has tls without tlsverify)",
    ),
    info(
        Fault::ClientCertRejected,
        "client-cert-rejected",
        "Portainer trusts another CA for client certificates and rejects the router's",
        at(ids::ROUTER_PORTAINER, Layer::Mtls, "PD-MTLS-002"),
        "seed 001 (mTLS proxy request from Traefik)",
    ),
    info(
        Fault::NoRoute,
        "no-route",
        "the router has no route for qdrant's Host (no docker provider, as at platform HEAD)",
        at(ids::GATEWAY_ROUTER, Layer::Http, "PD-HTTP-001"),
        "traefik.yml.template: stack labels without a docker provider",
    ),
    info(
        Fault::BackendTls,
        "backend-tls",
        "Portainer serves its own self-signed certificate; the router cannot verify it (gateway sees 500)",
        at(ids::ROUTER_PORTAINER, Layer::Tls, "PD-TLS-005"),
        "portainer-manager.sh: --tlscert/--tlskey instead of --sslcert/--sslkey",
    ),
    info(
        Fault::CaDown,
        "ca-down",
        "step-ca refuses connections",
        at(ids::HOST_CA, Layer::Tcp, "PD-TCP-001"),
        "phoenix_hypervisor_lxc_102.sh: step-ca readiness / check_step_ca.sh",
    ),
    info(
        Fault::SlowBackend,
        "slow-backend",
        "qdrant accepts but answers only after 10 s (router and gateway answer 504)",
        at(ids::ROUTER_QDRANT, Layer::Http, "PD-HTTP-004"),
        "check_qdrant.sh (slow start, 12 x 10 s)",
    ),
    info(
        Fault::ResolvNowhere,
        "resolv-nowhere",
        "the router's (lxc:102) /etc/resolv.conf names a nameserver where nothing listens",
        at(ids::ROUTER_DNS, Layer::Dns, "PD-DNS-006"),
        "etc/phoenix_lxc_configs.json network_config.nameservers: pct writes it into the guest's /etc/resolv.conf; a hand edit or a stale nameserver leaves programs there waiting for a timeout",
    ),
    info(
        Fault::AgentMoved,
        "agent-moved",
        "the Portainer agent on VM 1002 listens on the port after the configured one (9002 for 9001)",
        at(ids::PORTAINER_AGENT, Layer::Tcp, "PD-TCP-001"),
        "etc/phoenix_hypervisor_config.json network.portainer_agent_port (9001): an agent container started by hand with another port mapping",
    ),
    info(
        Fault::CertNotReloaded,
        "cert-not-reloaded",
        "the gateway's certificate was renewed on disk (cert_path), but NGINX still serves the old one",
        at(ids::HOST_GATEWAY, Layer::Tls, "PD-TLS-010"),
        "certificate-manifest.json post_renewal_command (pct exec 101 -- systemctl reload nginx) not run after certificate-renewal-manager.sh renewed the file",
    ),
    info(
        Fault::GatewayUpstreamDrifted,
        "gateway-upstream-drifted",
        "the gateway's deployed site (lxc:101 sites-enabled/gateway) proxies to the router's port + 1, a port the generator never wrote (the gateway answers 502)",
        at(ids::HOST_GATEWAY, Layer::Http, "PD-HTTP-005"),
        "generate_nginx_gateway_config.sh: a hand-edited or stale sites-enabled/gateway survives until the next phoenix sync all (stage 4)",
    ),
    info(
        Fault::DnsmasqStale,
        "dnsmasq-stale",
        "the host's deployed records file still maps qdrant.<domain> to .101, an address the config no longer gives it",
        at(ids::HOST_DNS, Layer::Dns, "PD-DNS-002"),
        "hypervisor_feature_setup_dns_server.sh: 00-phoenix-internal.conf is only rewritten when the generator runs (phoenix sync all)",
    ),
    info(
        Fault::TraefikRouterHandEdited,
        "traefik-router-hand-edited",
        "the router's deployed dynamic file narrows portainer-router's rule to PathPrefix(`/admin`): Traefik has no route for portainer.<domain>/ (404)",
        at(ids::GATEWAY_ROUTER_PORTAINER, Layer::Http, "PD-HTTP-001"),
        "generate_traefik_config.sh: /etc/traefik/dynamic/dynamic_conf.yml is pushed by phoenix sync all (stage 3); a hand edit lasts until then",
    ),
];

/// Every fault the lab knows, in a stable order.
pub fn faults() -> &'static [FaultInfo] {
    &FAULTS
}

impl Fault {
    pub fn info(self) -> &'static FaultInfo {
        FAULTS
            .iter()
            .find(|f| f.fault == self)
            .expect("every fault has an entry")
    }
    pub fn name(self) -> &'static str {
        self.info().name
    }
    /// Parse a fault name; the error lists the known names.
    pub fn parse(name: &str) -> Result<Fault> {
        FAULTS
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.fault)
            .ok_or_else(|| {
                let known: Vec<&str> = FAULTS.iter().map(|f| f.name).collect();
                Error::input(format!(
                    "unknown fault `{name}`: expected one of {}",
                    known.join(", ")
                ))
            })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Fault {
    type Err = Error;
    fn from_str(s: &str) -> Result<Fault> {
        Fault::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_is_expected_at_a_hop_and_layer_of_the_catalogues_qdrant_trace() {
        let traces = crate::hops::traces().expect("the catalogue parses");
        let qdrant = traces.iter().find(|t| t.name == "qdrant").expect("qdrant");
        for f in faults() {
            let e = f.expected;
            let hop = qdrant.hops.iter().find(|h| h.id == e.hop);
            let hop = hop.unwrap_or_else(|| panic!("{}: no hop `{}` in qdrant", f.name, e.hop));
            assert!(
                hop.checks(e.layer),
                "{}: `{}` checks no {}",
                f.name,
                e.hop,
                e.layer
            );
        }
    }
}
