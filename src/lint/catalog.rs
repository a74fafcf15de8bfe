//! The catalogue of static (lint) finding codes, and the markdown of `docs/findings.md`.

use crate::diagnose::catalog::{code, CodeInfo, LIVE};
use crate::finding::Severity;
use crate::observe::Layer;

/// Every static code, in documentation order. The severity is the usual one; a finding may
/// be raised to `error` where its meaning says so.
pub const STATIC: &[CodeInfo] = &[
    code!("PD-FW-001", Some(Layer::Tcp), Error, "documented hop dropped by an enforced firewall",
        "The destination's rule set is enforced (a VM's <vmid>.fw with `enable: 1`, or cluster.fw for the host), its policy_in is DROP and no IN rule accepts this documented hop (PLATFORM_FACTS §2): the connection times out.",
        "cat /etc/pve/firewall/<vmid>.fw (or cluster.fw); pve-firewall compile; nc -vz -w 3 <ip> <port> from the source",
        "Add an IN ACCEPT rule for the source, port and protocol to the destination's firewall rules (the VM's `firewall.rules` or the stack's `firewall_rules`) and re-converge the VM."),
    code!("PD-FW-002", Some(Layer::Tcp), Warning, "documented hop would be dropped once the container firewall is enabled",
        "The destination is an LXC whose rule set has no IN rule for this documented hop. lxc-manager never sets the container's firewall `enable` (F7), so nothing is filtered today; the moment it is enabled policy_in DROP drops the hop (F5: the gateway accepts :443 only from 10.0.0.111 and 10.0.0.13; F9: nothing allows Traefik to reach NGINX).",
        "pvesh get /nodes/$(hostname)/lxc/<id>/firewall/options --output-format json; pvesh get /nodes/$(hostname)/lxc/<id>/firewall/rules",
        "Add the IN rule to the LXC's `firewall.rules` (for the gateway: 443 from the whole subnet) before enabling its firewall."),
    code!("PD-FW-003", Some(Layer::Tcp), Error, "documented hop dropped by the source's outbound policy",
        "The source's rule set is enforced with a policy_out other than ACCEPT, and no OUT rule accepts this documented hop.",
        "cat /etc/pve/firewall/cluster.fw (or <vmid>.fw) [OPTIONS] policy_out; nc -vz -w 3 <ip> <port> from the source",
        "Add the OUT rule on the source, or set policy_out ACCEPT."),
    code!("PD-FW-004", Some(Layer::Tcp), Info, "firewall rule present on one side only",
        "An IN rule names a source guest whose rule set has OUT rules but none for this destination and port, or an OUT rule names a destination whose IN rules do not accept it (F4). Harmless while policy_out is ACCEPT and the LXC firewalls are not enabled; it becomes a silent drop when either changes.",
        "Compare `phoenix-doctor show firewall` for both guests; pvesh get /nodes/$(hostname)/lxc/<id>/firewall/rules",
        "Add the matching rule on the other side, or delete the rule if the traffic is not wanted."),
    code!("PD-FW-005", Some(Layer::Tcp), Warning, "container firewall rules are not enforced",
        "lxc-manager creates the LXC's rules through pvesh but never sets its [OPTIONS] `enable`, whose Proxmox default is 0 (F7): the rules are shown in the GUI but filter nothing.",
        "pvesh get /nodes/$(hostname)/lxc/<id>/firewall/options --output-format json (look for \"enable\": 1); iptables-save | grep veth<id>i0",
        "Decide whether the container should be filtered: enable it (pvesh set .../firewall/options --enable 1) after fixing PD-FW-002, or remove the rules."),
    code!("PD-FW-006", Some(Layer::Tcp), Warning, "hop allowed only by a stack rule that `sync all` never writes",
        "The only rule that accepts this documented hop comes from a stack manifest's `firewall_rules`. Stack rules reach /etc/pve/firewall/<vmid>.fw only when vm-manager creates or converges the VM, never on `phoenix sync all`, and cluster.fw ignores them (F20): after the rule moved into the stack the hop stays blocked until the VM is re-converged.",
        "diff <(phoenix-doctor show firewall --file <vmid>.fw) /etc/pve/firewall/<vmid>.fw",
        "Re-converge the VM (phoenix create <vmid>), or keep the rule in the VM's own `firewall.rules` too."),
    code!("PD-FW-007", Some(Layer::Tcp), Warning, "duplicate firewall rule",
        "Two rules of the same rule set are identical once normalised (direction, action, protocol, source, destination, expanded ports) (F21). The second never matches anything; duplicates usually mean a rule was copied instead of moved.",
        "phoenix-doctor show firewall; grep the rule in the config file named by the finding",
        "Delete the later copy from the config."),
    code!("PD-FW-008", Some(Layer::Tcp), Info, "firewall rule covered by another rule",
        "A rule's traffic is a subset of another rule of the same rule set with the same action (same direction, protocol and addresses, fewer ports; or a host inside a network) (F21). It is redundant, and editing one without the other leaves the traffic allowed.",
        "phoenix-doctor show firewall",
        "Delete the narrower rule, or narrow the broader one if it allows too much."),
    code!("PD-FW-009", Some(Layer::Tcp), Info, "guest rules copied into cluster.fw open the host",
        "The firewall setup writes global rules, then every LXC's and VM's rules into cluster.fw, where they filter the Proxmox host's own traffic (F8). A guest IN rule without -dest (`IN ACCEPT -p tcp -dport 6333`) therefore also opens that port on the host, and operators who read cluster.fw as the guests' firewall are misled.",
        "cat /etc/pve/firewall/cluster.fw; pve-firewall compile | grep -A3 PVEFW-HOST-IN",
        "Treat cluster.fw as the host's rule set; give guest IN rules a -dest, or stop copying guest rules into it."),
    code!("PD-DNSCFG-001", Some(Layer::Dns), Error, "no gateway LXC: the DNS generator writes no records",
        "The DNS generator finds the gateway IP by the LXC name `Nginx-Phoenix`. Without it jq emits nothing, 00-phoenix-internal.conf holds only its header, and with `local=/<domain>/` every internal name is NXDOMAIN (F27).",
        "cat /etc/dnsmasq.d/00-phoenix-internal.conf; jq '.lxc_configs[] | select(.name==\"Nginx-Phoenix\")' phoenix_lxc_configs.json",
        "Name the gateway LXC exactly `Nginx-Phoenix` and re-run the DNS setup (phoenix sync all)."),
    code!("PD-DNSCFG-002", Some(Layer::Dns), Warning, "service name bypasses the gateway",
        "A name that has a Traefik route resolves to the backend's own IP instead of the gateway (F13: LXC traefik_service records use the LXC's IP). Clients reach the raw backend over plain HTTP, where the firewall allows only Traefik, and the Traefik route for the name is unreachable.",
        "dig @<dns ip> <name> +short; phoenix-doctor show dns; phoenix-doctor show routes",
        "Point the name at the gateway (or drop the Traefik route and document the name as direct)."),
    code!("PD-DNSCFG-003", Some(Layer::Dns), Error, "name resolves elsewhere than the guest its hop dials",
        "A documented hop dials this name and expects the guest itself (Portainer → agent `portainer-agent` :9001, step clients → the CA's name :9000), but the generator writes another address: the gateway (F1: an earlier rule wins `unique_by`) or the hard-coded 10.0.0.10 for `ca` when the CA LXC has another IP.",
        "dig @<dns ip> <name> +short, compared with the guest's network_config.ip",
        "Remove the record that wins over the guest's (stack label, VM traefik_service), or give the CA LXC 10.0.0.10."),
    code!("PD-DNSCFG-004", Some(Layer::Dns), Warning, "DNS record shadows another with a different address",
        "Two generator rules write the same hostname with different addresses; `unique_by(.hostname)` keeps the first in rule order and drops the other silently (the `portainer` stack label and static record → gateway shadow the VM name record `Portainer` → 10.0.0.111).",
        "phoenix-doctor show dns; dig @<dns ip> <name> +short",
        "Rename the guest or the service so that each name has one meaning."),
    code!("PD-DNSCFG-005", Some(Layer::Dns), Error, "resolver points at a host that runs no DNS server",
        "A nameserver in the configs is a platform address that serves no DNS: the host's `dns_nameservers` lists 10.0.0.153 (NGINX, a leftover from the dnsmasq-in-LXC-101 era) and the host setup writes it to 50-vmbr0.cfg (F24). Lookups through it time out before the next resolver is tried.",
        "cat /etc/network/interfaces.d/50-vmbr0.cfg; dig @<ip> <name> +time=2 +tries=1",
        "List the host's dnsmasq address (and upstreams) only."),
    code!("PD-DNSCFG-006", Some(Layer::Dns), Warning, "guest resolves without the internal DNS server",
        "The guest's nameservers (its own, or inherited through its clone chain, F22) do not include the platform's dnsmasq, so every internal name is NXDOMAIN inside it.",
        "pct config <id> | grep nameserver; pct exec <id> -- cat /etc/resolv.conf",
        "Set `network_config.nameservers` to the host's dnsmasq address for the guest (and its template)."),
    code!("PD-ROUTE-001", Some(Layer::Http), Error, "Traefik sends plain HTTP to a TLS port",
        "The Traefik generator uses http:// for every LXC backend, but the port speaks TLS (F9: `ca` → http://10.0.0.10:9000 answers 400 `Client sent an HTTP request to an HTTPS server`; `nginx` → http://10.0.0.153:443 answers 400 and loops back to the gateway).",
        "pct exec <traefik id> -- curl -sS -o /dev/null -w '%{http_code}' <url>",
        "Use https:// with the internal-ca serversTransport for TLS backends (or remove the route)."),
    code!("PD-ROUTE-002", Some(Layer::Http), Warning, "stack Traefik labels with no provider to read them",
        "A stack declares Traefik router labels, but the static config has no docker provider: Traefik reads only the file provider, so the labels are dead config (F12).",
        "pct exec <traefik id> -- cat /etc/traefik/traefik.yml; curl http://<traefik ip>:8080/api/http/routers",
        "Route the service through dynamic_conf.yml (a traefik_service), or enable the docker provider."),
    code!("PD-ROUTE-003", Some(Layer::Http), Warning, "stack label references an undefined entrypoint or resolver",
        "A stack label names an entrypoint or certificate resolver that the static config lacks (F12: `websecure` and `internal-resolver` were removed from traefik.yml.template), so the router would never be attached.",
        "grep -n entrypoints\\|certresolver stacks/*/phoenix.json; cat etc/traefik/traefik.yml.template",
        "Use the `web` entrypoint and drop the resolver (TLS ends at NGINX), or restore them in the static config."),
    code!("PD-ROUTE-004", Some(Layer::Http), Error, "name sent to the gateway has no Traefik router",
        "DNS sends the name to the gateway, NGINX proxies every request to Traefik, and no router matches the Host, so clients get `404 page not found` (F12: `qdrant` exists only as a stack label).",
        "curl -s -H 'Host: <name>' http://<traefik ip>:80/",
        "Add a route for the name (a traefik_service on the guest), or stop sending the name to the gateway."),
    code!("PD-ROUTE-005", Some(Layer::Http), Error, "two guests declare the same Traefik service name",
        "The Traefik generator writes one router and service per traefik_service name with no check: duplicate names produce duplicate YAML keys and only one backend survives, and the DNS record goes to the first guest.",
        "phoenix-doctor show routes; grep -n '\"name\"' phoenix_lxc_configs.json phoenix_vm_configs.json",
        "Give each traefik_service a unique name."),
    code!("PD-ROUTE-006", Some(Layer::Http), Error, "gateway upstream is not a Traefik entrypoint",
        "NGINX proxies to the Traefik LXC on a port that no entrypoint of the static config listens on (F10: :8443 and :443 were removed; only web :80 and traefik :8080 remain), so every request through the gateway fails with 502.",
        "pct exec <traefik id> -- ss -tlnp; grep proxy_pass /etc/nginx/sites-available/gateway",
        "Point the upstream (site file [ports].router) at the `web` entrypoint, or add the entrypoint."),
    code!("PD-ROUTE-007", Some(Layer::Http), Warning, "gateway generator hard-codes another Traefik address",
        "generate_nginx_gateway_config.sh writes `proxy_pass http://10.0.0.12:80` whatever the configs say; the Traefik LXC in the configs has another address or entrypoint port, so the real gateway proxies elsewhere.",
        "grep proxy_pass /etc/nginx/sites-available/gateway",
        "Give the Traefik LXC 10.0.0.12 with web :80, or change the generator."),
    code!("PD-CERT-001", Some(Layer::Tcp), Warning, "certificate client cannot reach the CA's port",
        "A guest or the host that requests certificates from step-ca (renewal cron and ensure_portainer_certificates on the host, the docker feature in the VMs, Traefik's bootstrap) has no IN rule on the CA's LXC for its :9000 (F6: 103 allows only 10.0.0.12 and 10.0.0.153). Unenforced today (F7); an error when the CA's firewall is enforced, and then renewals time out and the 24-hour leaves expire.",
        "curl -s --cacert <root> https://<ca ip>:9000/health from the client; pvesh get /nodes/$(hostname)/lxc/<ca id>/firewall/rules",
        "Add IN tcp 9000 rules on the CA LXC for the host and the VMs (or the subnet)."),
    code!("PD-CERT-002", Some(Layer::Tls), Error, "gateway certificate lacks names DNS sends to the gateway",
        "DNS resolves these service names to the gateway, which presents its single certificate for every SNI, but the manifest entry that issues it does not list them (F11): clients fail with `no alternative certificate subject name matches`.",
        "openssl s_client -connect <gateway ip>:443 -servername <name> -verify_hostname <name> -CAfile <root>",
        "Add the names to the gateway entry's `sans` in certificate-manifest.json (and to server_name) and re-issue."),
    code!("PD-CERT-003", Some(Layer::Tls), Error, "no manifest entry issues the gateway certificate",
        "The NGINX generator requires /etc/nginx/ssl/nginx.<domain>.crt, but no certificate-manifest.json entry has that common name, so nothing issues or renews it (at 02612da the generator wanted a wildcard certificate nobody issued: nginx -t fails and :443 never listens).",
        "ls -l /mnt/pve/quickOS/lxc-persistent-data/<gateway id>/ssl/; jq '.[].common_name' certificate-manifest.json",
        "Add the gateway entry to the manifest."),
    code!("PD-CERT-004", Some(Layer::Tls), Error, "backend certificate lacks the IP SAN Traefik verifies",
        "Traefik dials HTTPS backends by IP with no serverName, so it verifies the certificate against the IP; the manifest entry for the backend issues SANs without that IP (F15: the portainer entry has no `sans`, so the renewal re-issues it with the CN only and the hop fails verification).",
        "openssl x509 -in <cert_path> -noout -ext subjectAltName",
        "Add the backend IP (and name) to the entry's `sans`."),
    code!("PD-CERT-005", Some(Layer::Tls), Warning, "HTTPS backend with no certificate from the manifest",
        "Traefik verifies this HTTPS backend against the internal root, but no manifest entry issues its certificate, so it serves a self-signed one and the route fails verification (A5b: the Portainer agent's certificate is always self-signed).",
        "pct exec <traefik id> -- curl -sv --cacert /etc/step-ca/ssl/phoenix_root_ca.crt <url>",
        "Issue the backend a certificate from the CA, or route it over HTTP, or drop the route."),
    code!("PD-CERT-006", Some(Layer::Tls), Warning, "manifest entry without `sans` renews on every run",
        "The renewal manager compares the certificate's SANs with `.sans[]? // \"\"`; an entry without `sans` never matches, so the hourly cron re-issues it and runs its post-renewal command every time (F15, F18: hourly Portainer restarts).",
        "openssl x509 -in <cert_path> -noout -startdate (renewed within the hour)",
        "Declare `sans` explicitly (the CN and every name or IP the hops need)."),
    code!("PD-LINT-001", None, Warning, "address in the configs belongs to no guest",
        "An address inside the platform's subnet appears in a firewall rule, a DNS record, a route or a resolver list but no guest or the host has it (F3: rules and docs kept 10.0.0.101 after Portainer moved to 10.0.0.111).",
        "grep -rn <ip> /usr/local/phoenix_hypervisor/etc/",
        "Replace the stale address with the guest's current one, or delete the entry."),
    code!("PD-LINT-002", Some(Layer::Dns), Warning, "hostname outside the platform's domain",
        "A name in the configs (a stack label's Host, portainer_hostname, the agent or CA name, a manifest name) is not under `domain_name`. dnsmasq answers only names under the domain and forwards the rest upstream, where public DNS answers or NXDOMAIN (F38: `*.phoenix.thinkheads.ai` leftovers from the split-horizon era).",
        "dig @<dns ip> <name>; grep -rn phoenix.thinkheads.ai /usr/local/phoenix_hypervisor/etc/",
        "Rename the name into the platform's domain."),
    code!("PD-LINT-003", None, Warning, "stack deployed in an environment the generators do not read",
        "A VM deploys a stack as an environment other than `production`, or the manifest has no `production`. The DNS generator and the VM firewall read only `environments.production`, so the stack's Traefik labels and firewall rules silently vanish (F35: thinkheads_ai_app as `development`).",
        "jq '.environments | keys' stacks/<name>/phoenix.json; jq '.vms[].docker_stacks' phoenix_vm_configs.json",
        "Deploy `production`, or move the environment's labels and rules under `production`."),
    code!("PD-LINT-004", None, Error, "VM deploys a stack that has no manifest",
        "A VM's docker_stacks names a stack with no stacks/<name>/phoenix.json: sync cannot deploy it and its labels and firewall rules do not exist.",
        "ls /usr/local/phoenix_hypervisor/stacks/",
        "Fix the stack name in docker_stacks, or add the manifest."),
];

/// Every static code.
pub fn catalog() -> &'static [CodeInfo] {
    STATIC
}

/// Look up a static code.
pub fn lookup(code: &str) -> Option<&'static CodeInfo> {
    STATIC.iter().find(|c| c.code.eq_ignore_ascii_case(code))
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn section(out: &mut String, codes: &[CodeInfo]) {
    out.push_str("| code | layer | severity | title |\n|---|---|---|---|\n");
    for c in codes {
        out.push_str(&format!(
            "| [{0}](#{1}) | {2} | {3} | {4} |\n",
            c.code,
            c.code.to_ascii_lowercase(),
            c.layer.map(|l| l.as_str()).unwrap_or("-"),
            c.severity,
            cell(c.title)
        ));
    }
    for c in codes {
        out.push_str(&format!(
            "\n### {}\n\n**{}** ({}",
            c.code, c.title, c.severity
        ));
        if let Some(l) = c.layer {
            out.push_str(&format!(", layer {}", l.as_str()));
        }
        out.push_str(")\n\n");
        out.push_str(&format!("- What it means: {}\n", c.meaning));
        out.push_str(&format!(
            "- Confirm by hand: `{}`\n",
            c.confirm.replace('`', "'")
        ));
        out.push_str(&format!("- Fix: {}\n", c.fix));
    }
}

/// `docs/findings.md`: every live code, then every static code.
pub fn findings_markdown() -> String {
    let mut out = String::new();
    out.push_str("# Finding codes\n\n");
    out.push_str(
        "Generated from the code catalogue (`diagnose::catalog::LIVE` and `lint::catalog()`); \
         `phoenix-doctor explain CODE` prints the same text. Regenerate with \
         `UPDATE_DOCS=1 cargo test --test lint docs_findings_md_is_current`.\n\n",
    );
    out.push_str(
        "Codes are stable: a code keeps its meaning once published. Every finding carries \
         `expected`, `actual`, the config `provenance` (file, JSON pointer, line) and a `hint`.\n\n",
    );
    out.push_str("## Live findings (trace, check)\n\n");
    out.push_str("Seen by a probe from the vantage where the hop's traffic starts.\n\n");
    section(&mut out, LIVE);
    out.push_str("\n## Static findings (lint)\n\n");
    out.push_str(
        "Derived from the configs alone by `phoenix-doctor lint` (origin `static`); each names \
         the addresses, names and guests it concerns (`subjects`), and `trace` lists it beside \
         the live hops it bears on. Families: `PD-FW` firewall, `PD-DNSCFG` DNS records and \
         resolvers, `PD-ROUTE` Traefik and the gateway, `PD-CERT` the certificate manifest, \
         `PD-LINT` general. `lint` exits 1 when any finding has severity `error`.\n\n",
    );
    section(&mut out, STATIC);
    out
}
