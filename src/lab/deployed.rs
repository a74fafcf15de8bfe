//! The lab's deployed files: what the platform's generators write into its guests (dnsmasq
//! records on the host, the gateway site in LXC 101, Traefik's static and dynamic files in LXC
//! 102, the Proxmox firewall files, the guests' configs and pve-firewall's pid), rendered from the lab's own config by the same derivations
//! `show` prints, in the layout `drift --deployed` reads; and the drift faults' edits of them.

use super::{config, Addrs, Fault};
use crate::error::Result;
use crate::model::{render, Intended};
use std::path::{Path, PathBuf};

/// The port the `gateway-upstream-drifted` site proxies to: the router's port plus one, where
/// nothing listens and which no generator ever wrote.
pub fn drifted_router_port(router: u16) -> u16 {
    router.wrapping_add(1).max(1)
}

/// The pid of the simulated host's pve-firewall.
pub const FIREWALL_PID: u32 = 1812;

/// The rule `traefik-router-hand-edited` gives the portainer router.
pub fn hand_edited_rule(host: &str) -> String {
    format!("Host(`{host}`) && PathPrefix(`/admin`)")
}

/// Write the deployed tree under `dir` (`host/`, `lxc-<id>/`); returns `dir`.
pub fn write(dir: &Path, m: &Intended, addrs: &Addrs, faults: &[Fault]) -> Result<PathBuf> {
    let has = |f: Fault| faults.contains(&f);
    let put = |v: &str, path: &str, text: &str| {
        config::write_new(&dir.join(v).join(path.trim_start_matches('/')), text, 0o644)
    };
    let domain = &m.domain.value;
    let mut records = render::dnsmasq(m);
    if has(Fault::DnsmasqStale) {
        // The records file from before the config moved qdrant's name: the old address.
        let qdrant = format!("qdrant.{domain}");
        if let Some(r) = m.dns.record(&qdrant) {
            records = records.replace(
                &format!("address=/{qdrant}/{}\n", r.ip_text),
                &format!("address=/{qdrant}/{}\n", addrs.old_portainer),
            );
        }
    }
    let mut main = format!(
        "port={}\ndomain-needed\nbogus-priv\nstrict-order\nno-resolv\nlocal=/{domain}/\nlisten-address={}\nconf-dir=/etc/dnsmasq.d,*.conf\n",
        m.dns.server.value.port(),
        m.dns.server.value.ip()
    );
    for u in &m.dns.upstreams {
        main.push_str(&format!("server={}\n", u.value));
    }
    put("host", "/etc/dnsmasq.conf", &main)?;
    put("host", crate::deployed::compare::RECORDS_FILE, &records)?;
    // The rule sets (an LXC's as lxc-manager's pvesh calls leave it: no `enable`), each guest's
    // config with the NIC the managers give `firewall=1`, and pve-firewall running when the
    // setup starts it.
    for f in m.firewall.files().chain(&m.firewall.lxcs) {
        put(
            "host",
            &format!("/etc/pve/firewall/{}.fw", f.name),
            &render::fw_file(f),
        )?;
    }
    for (i, n) in m.guests.iter().enumerate() {
        let ip =
            n.ip.as_ref()
                .map(|ip| ip.value.to_string())
                .unwrap_or_default();
        let (path, net0) = match n.vantage {
            crate::observe::VantageRef::Lxc(id) => (
                format!("/etc/pve/lxc/{id}.conf"),
                format!("name=eth0,bridge=vmbr0,firewall=1,ip={ip}/24"),
            ),
            crate::observe::VantageRef::Vm(id) => (
                format!("/etc/pve/qemu-server/{id}.conf"),
                format!("virtio=BC:24:11:00:00:{i:02X},bridge=vmbr0,firewall=1"),
            ),
            crate::observe::VantageRef::Host => continue,
        };
        put(
            "host",
            &path,
            &format!("cores: 2\nmemory: 2048\nnet0: {net0}\n"),
        )?;
    }
    if m.firewall.cluster.as_ref().is_some_and(|c| c.enforced) {
        put(
            "host",
            crate::deployed::pvefw::PID_FILE,
            &format!("{FIREWALL_PID}\n"),
        )?;
        put(
            "host",
            &format!("/proc/{FIREWALL_PID}/comm"),
            "pve-firewall\n",
        )?;
    }
    if let (Some(g), Some(site)) = (&m.gateway, render::nginx_gateway(m)) {
        let site = match (&m.router, has(Fault::GatewayUpstreamDrifted)) {
            (Some(r), true) => site.replace(
                &format!("proxy_pass {};", g.proxy_pass),
                &format!(
                    "proxy_pass http://{}:{};",
                    r.ip.value,
                    drifted_router_port(r.port.value)
                ),
            ),
            _ => site,
        };
        let v = format!("lxc-{}", g.lxc);
        put(&v, "/etc/nginx/sites-available/gateway", &site)?;
        put(&v, "/etc/nginx/sites-enabled/gateway", &site)?;
    }
    if let Some(r) = &m.router {
        let v = format!("lxc-{}", r.lxc);
        let mut dynamic = render::traefik_dynamic(m);
        if has(Fault::TraefikRouterHandEdited) {
            let host = format!("portainer.{domain}");
            dynamic = dynamic.replace(
                &format!("rule: \"Host(`{host}`)\""),
                &format!("rule: \"{}\"", hand_edited_rule(&host)),
            );
        }
        put(
            &v,
            "/etc/traefik/traefik.yml",
            "providers:\n  file:\n    directory: /etc/traefik/dynamic\n    watch: true\n",
        )?;
        put(&v, "/etc/traefik/dynamic/dynamic_conf.yml", &dynamic)?;
    }
    Ok(dir.to_path_buf())
}
