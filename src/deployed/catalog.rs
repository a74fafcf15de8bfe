//! The drift finding codes (`PD-DRIFT-*`): one table, shown by `explain` and in
//! `docs/findings.md`.

use crate::finding::{catalogue, Code};
use crate::observe::Layer;

/// A deployed DNS record differs from the generator's (other address, or missing).
pub const DNS_RECORD: Code = PD_DRIFT_001;
/// dnsmasq loads a record the generator does not write.
pub const DNS_EXTRA: Code = PD_DRIFT_002;
/// The gateway site's server or proxy_pass differs from generate_nginx_gateway_config.sh's.
pub const GATEWAY: Code = PD_DRIFT_003;
/// A Traefik router, service or serversTransport differs from generate_traefik_config.sh's.
pub const TRAEFIK: Code = PD_DRIFT_004;
/// A Proxmox firewall file differs from what the platform's scripts write.
pub const FIREWALL: Code = PD_DRIFT_005;
/// A deployed file could not be read: nothing is known about it.
pub const UNREADABLE: Code = PD_DRIFT_006;
/// dnsmasq's `server=` upstreams differ from `.dns_server.upstream_servers`.
pub const DNS_UPSTREAM: Code = PD_DRIFT_007;
/// The gateway site's certificate or key path is not the file the manifest's renewal writes.
pub const GATEWAY_CERT_PATH: Code = PD_DRIFT_008;
/// A certificate file the manifest names is close to expiry, or expired, on disk.
pub const CERT_FILE_LIFE: Code = PD_DRIFT_009;

catalogue! {
    /// Every drift code, in documentation order.
    DRIFT;
    PD_DRIFT_001 = ("PD-DRIFT-001", Some(Layer::Dns), Error, "deployed DNS record differs from the generator's",
        "A name the DNS generator (hypervisor_feature_setup_dns_server.sh) derives from the configs is missing from the files dnsmasq loads, or is written there with another address: dnsmasq answers what the files say, not what the configs say. The finding says whether it looks like a hand edit, a stale file (an address some other config would give) or a generator not re-run after the config changed (the file is older than the config).",
        "grep -rn <name> /etc/dnsmasq.d/; phoenix-doctor show dns | diff - /etc/dnsmasq.d/00-phoenix-internal.conf",
        "Re-run hypervisor_feature_setup_dns_server.sh (phoenix sync all) and remove hand-written address= lines."),
    PD_DRIFT_002 = ("PD-DRIFT-002", Some(Layer::Dns), Error, "dnsmasq serves a record the generator does not write",
        "A file dnsmasq loads (00-phoenix-internal.conf or another file in /etc/dnsmasq.d) has an address= or host-record= line for a name the configs no longer derive: a guest that was removed or renamed, or a hand-written record. The generator deletes /etc/dnsmasq.d/* before it writes, so a survivor means it has not run since.",
        "grep -rn <name> /etc/dnsmasq.conf /etc/dnsmasq.d/; phoenix-doctor show dns | grep <name>",
        "Re-run hypervisor_feature_setup_dns_server.sh (phoenix sync all); delete hand-written files from /etc/dnsmasq.d."),
    PD_DRIFT_003 = ("PD-DRIFT-003", Some(Layer::Http), Error, "gateway site differs from the generator's",
        "The NGINX site LXC 101 loads (sites-enabled/* and its includes) proxies a host name to another upstream than generate_nginx_gateway_config.sh writes (http://<Traefik IP>:<web port>), or lacks the TLS server or its certificate path: requests reach whatever that upstream is, and a 502/504 there is the drift, not the backend.",
        "pct exec 101 -- grep -rn proxy_pass /etc/nginx/sites-enabled/; phoenix-doctor show gateway",
        "Re-run generate_nginx_gateway_config.sh and push the site (phoenix sync all, stage 4), then nginx -t && systemctl reload nginx."),
    PD_DRIFT_004 = ("PD-DRIFT-004", Some(Layer::Http), Error, "Traefik router or service differs from the generator's",
        "A router (rule, service, entryPoints), a service's server URL or serversTransport in Traefik's file-provider directory differs from what generate_traefik_config.sh writes from the configs, is missing, or is not written by it at all.",
        "pct exec 102 -- cat -n /etc/traefik/dynamic/dynamic_conf.yml; phoenix-doctor show routes | diff - <(pct exec 102 -- cat /etc/traefik/dynamic/dynamic_conf.yml)",
        "Re-run generate_traefik_config.sh and push the file (phoenix sync all, stage 3); Traefik reloads the directory by itself (watch: true)."),
    PD_DRIFT_005 = ("PD-DRIFT-005", None, Error, "firewall file differs from what the platform writes",
        "/etc/pve/firewall/cluster.fw (hypervisor_feature_setup_firewall.sh) or a VM's <vmid>.fw (vm-manager.sh, only when the VM is created or converged, never by sync all) has rules or options other than the configs give: Proxmox enforces the file, not the JSON.",
        "diff <(phoenix-doctor show firewall --file <cluster|vmid>) /etc/pve/firewall/<cluster|vmid>.fw",
        "Re-run hypervisor_feature_setup_firewall.sh (phoenix sync all) for cluster.fw, or phoenix create <vmid> (vm-manager.sh apply_vm_firewall_rules) for a VM's file."),
    PD_DRIFT_006 = ("PD-DRIFT-006", None, Warning, "deployed file could not be read",
        "A file the comparison needs could not be read from its guest (permission, size, not text, the transport failed, or the server would refuse its syntax): nothing is known about it, so it is cannot-judge, never a drift.",
        "pct exec <id> -- ls -l <file>; pct exec <id> -- cat <file>",
        "Make the file readable to the user running phoenix-doctor, or give an operator's copy with --deployed DIR."),
    PD_DRIFT_007 = ("PD-DRIFT-007", Some(Layer::Dns), Error, "dnsmasq's upstream servers differ from the config's",
        "The `server=` lines dnsmasq loads (/etc/dnsmasq.conf and what it includes) are not one line per `.dns_server.upstream_servers[]` entry in the config's order, as hypervisor_feature_setup_dns_server.sh writes them (with strict-order): a missing upstream, an extra or domain-specific one, or another order. Names outside the platform's zone go to whatever the file says.",
        "grep -rn '^server=' /etc/dnsmasq.conf /etc/dnsmasq.d/; jq .dns_server.upstream_servers etc/phoenix_hypervisor_config.json",
        "Re-run hypervisor_feature_setup_dns_server.sh (phoenix sync all), or fix upstream_servers in the config if the file is right."),
    PD_DRIFT_008 = ("PD-DRIFT-008", Some(Layer::Tls), Error, "gateway certificate path is not the file the renewal writes",
        "The gateway site's `ssl_certificate` or `ssl_certificate_key` (LXC 101) names another file than the certificate-manifest.json entry's `cert_path`/`key_path` as the LXC sees it through its mount points (`/mnt/pve/quickOS/lxc-persistent-data/101/ssl` is `/etc/nginx/ssl`): NGINX serves a file certificate-renewal-manager.sh never renews, which expires within a day for 24-hour leaves. Paths only: a key's contents are never read.",
        "pct exec 101 -- grep -rn ssl_certificate /etc/nginx/sites-enabled/; jq '.[] | {common_name, cert_path, key_path}' etc/certificate-manifest.json",
        "Re-run generate_nginx_gateway_config.sh and push the site (phoenix sync all, stage 4), or point the manifest entry at the file the site uses; then nginx -t && systemctl reload nginx."),
    PD_DRIFT_009 = ("PD-DRIFT-009", Some(Layer::Tls), Warning, "certificate file on disk close to expiry",
        "The certificate at a certificate-manifest.json `cert_path` on the host has less life left than --warn-days (default 14), or, for a short-lived leaf such as step-ca's 24-hour ones, than 40% of its life: certificate-renewal-manager.sh renews a file under 12 hours, so it has not run or failed (step-ca unreachable, cron missing). An expired file is an error. Whatever a server serves, the next reload loads this file.",
        "openssl x509 -noout -dates -in <cert_path>; journalctl for the renewal's cron",
        "Run certificate-renewal-manager.sh --force, fix what stops it (the CA's :9000 from the host), then the entry's post_renewal_command."),
}
