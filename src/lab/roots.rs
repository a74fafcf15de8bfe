//! The simulated guests' root directories: what the tool reads from each guest through its
//! vantage (`root = ...` in the site file) — its socket tables, with the sockets the lab really
//! listens on for that guest and the processes that own them, and on the host the certificate
//! files the manifest names.

use super::config::{write_new, PkiPaths};
use super::{Addrs, Fault, Ports};
use crate::error::{Error, Result};
use std::net::SocketAddr;
use std::path::Path;

/// The sockets the lab listens on for the guest `id` (as the site file names it), faults
/// applied: a service that is down has none, a moved agent listens one port up.
pub fn listening(id: &str, addrs: &Addrs, ports: &Ports, faults: &[Fault]) -> Vec<SocketAddr> {
    let has = |f: Fault| faults.contains(&f);
    let at = |ip, port| SocketAddr::from((ip, port));
    match id {
        "host" if !has(Fault::DnsDown) => vec![at(addrs.host, ports.dns)],
        "lxc:101" => vec![at(addrs.gateway, ports.gateway)],
        "lxc:102" => vec![at(addrs.router, ports.router)],
        "lxc:103" if !has(Fault::CaDown) => vec![at(addrs.ca, ports.ca)],
        "vm:1001" => vec![at(addrs.portainer, ports.portainer)],
        "vm:1002" => {
            let mut l = vec![at(addrs.agent, agent_port(ports, has(Fault::AgentMoved)))];
            if !has(Fault::QdrantDown) {
                l.push(at(addrs.agent, ports.qdrant));
            }
            l
        }
        _ => Vec::new(),
    }
}

/// The processes behind [`listening`]'s sockets, in the same order (the names the platform's
/// services run as).
fn process_names(id: &str) -> Vec<&'static str> {
    match id {
        "host" => vec!["dnsmasq"],
        "lxc:101" => vec!["nginx"],
        "lxc:102" => vec!["traefik"],
        "lxc:103" => vec!["step-ca"],
        "vm:1001" => vec!["portainer"],
        "vm:1002" => vec!["portainer-agent", "qdrant"],
        _ => Vec::new(),
    }
}

/// The port the agent really listens on (`agent-moved`: the next one).
pub fn agent_port(ports: &Ports, moved: bool) -> u16 {
    if moved {
        ports.agent + 1
    } else {
        ports.agent
    }
}

/// Write `<vdir>/root` for the guest `id`: `proc/net/tcp` and `tcp6` with its listening
/// sockets; on the host, a copy of every certificate the manifest names at its `cert_path`
/// (the file on disk, which the servers may or may not have loaded).
pub fn write_root(
    vroot: &Path,
    id: &str,
    addrs: &Addrs,
    ports: &Ports,
    faults: &[Fault],
    pki: &PkiPaths,
) -> Result<()> {
    use crate::vantage::listeners;
    let net = vroot.join("proc/net");
    let socks = listening(id, addrs, ports, faults);
    write_new(
        &net.join("tcp"),
        &listeners::format_proc_net_tcp(&socks),
        0o644,
    )?;
    let owners = listeners::format_owners(&socks, &process_names(id));
    write_new(
        &vroot.join(listeners::OWNERS.trim_start_matches('/')),
        &owners,
        0o644,
    )?;
    let header = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
    write_new(&net.join("tcp6"), header, 0o644)?;
    if id == "host" {
        for cert in [&pki.gateway_cert, &pki.portainer_cert] {
            // A config written without its PKI (the config's own tests) has none to copy.
            let text = match std::fs::read_to_string(cert) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::tool(format!("lab: reading {}: {e}", cert.display()))),
            };
            let rel = cert.strip_prefix("/").unwrap_or(cert);
            write_new(&vroot.join(rel), &text, 0o644)?;
        }
    }
    Ok(())
}
