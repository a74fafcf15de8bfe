//! The catalogue of live finding codes: what each means, how to confirm it by hand, how to fix it.
//! `explain CODE` and `docs/findings.md` are generated from it.

use crate::observe::Layer;

use crate::finding::catalogue;
pub use crate::finding::{Code, CodeInfo};

catalogue! {
    /// Every live code, in documentation order.
    LIVE;
    PD_DNS_001 = ("PD-DNS-001", Some(Layer::Dns), Error, "name does not resolve",
        "The nameserver answered NXDOMAIN (or NOERROR with no A record) for a name the intended state defines. With dnsmasq's `local=/<domain>/` every unlisted name is NXDOMAIN, so a record missing from 00-phoenix-internal.conf is fatal (no LXC named Nginx-Phoenix empties the whole file).",
        "dig @<dns ip> <name> +norecurse; cat /etc/dnsmasq.d/00-phoenix-internal.conf; phoenix-doctor show dns | diff - /etc/dnsmasq.d/00-phoenix-internal.conf",
        "Re-run the DNS generator (phoenix sync all) after fixing the config; check that an LXC named exactly `Nginx-Phoenix` exists."),
    PD_DNS_002 = ("PD-DNS-002", Some(Layer::Dns), Error, "DNS answer differs from the intended record",
        "The nameserver answers with another address than the record derived from the configs (first rule wins). The classic case is portainer-agent resolving to the gateway, so Portainer dials NGINX instead of the agent.",
        "dig @<dns ip> <name> +short, compared with `phoenix-doctor show dns`",
        "Regenerate /etc/dnsmasq.d/00-phoenix-internal.conf from the current configs and restart dnsmasq; remove hand-written address= lines."),
    PD_DNS_003 = ("PD-DNS-003", Some(Layer::Dns), Error, "hosts-file override at the vantage",
        "The vantage's /etc/hosts pins the name to an address other than the nameserver's answer, so programs there never ask DNS (append-only `grep -q || echo >>` entries survive config changes; the seed's LXC 102 had `10.0.0.101 portainer.internal.thinkheads.ai`).",
        "pct exec <id> -- grep -n <name> /etc/hosts; pct exec <id> -- getent hosts <name>; dig @<dns ip> <name> +short",
        "Delete the stale line from the guest's /etc/hosts (and the script that appends it)."),
    PD_DNS_004 = ("PD-DNS-004", Some(Layer::Dns), Error, "nameserver does not answer",
        "No answer from the nameserver before the timeout, or the port is closed (ICMP refused): dnsmasq is down, bound to another address (it listens only on the host IP, not 127.0.0.1) or a firewall drops port 53.",
        "dig @<dns ip> <name> +time=2 +tries=1; ss -ulpn 'sport = :53' on the host; systemctl status dnsmasq",
        "Start dnsmasq (systemctl restart dnsmasq) and check listen-address; allow udp/tcp 53 from the guests in cluster.fw."),
    PD_DNS_005 = ("PD-DNS-005", Some(Layer::Dns), Error, "nameserver refuses or fails the query",
        "The nameserver answered REFUSED or SERVFAIL: the name is outside the zones it serves and it has no upstream, or the upstream failed.",
        "dig @<dns ip> <name>",
        "Check `local=/<domain>/` and `server=` lines in /etc/dnsmasq.conf; query the right nameserver (the guest's resolv.conf)."),
    PD_DNS_006 = ("PD-DNS-006", Some(Layer::Dns), Error, "a program at the vantage gets no answer",
        "The nameservers the vantage's /etc/resolv.conf names do not answer (in order, with its `timeout:` and `attempts:` options), although the intended nameserver does: programs there wait for the timeout and fail, whatever the platform's DNS says.",
        "pct exec <id> -- cat -n /etc/resolv.conf; pct exec <id> -- getent hosts <name>; dig @<nameserver from resolv.conf> <name> +time=2 +tries=1",
        "Point the guest's resolv.conf at the nameserver of its network_config (etc/phoenix_lxc_configs.json `network_config.nameservers`; `pct set <id> --nameserver <ip>`), or start the nameserver it names."),
    PD_DNS_007 = ("PD-DNS-007", Some(Layer::Dns), Error, "the vantage's resolv.conf names another nameserver",
        "The vantage's /etc/resolv.conf names a nameserver other than the one its config derives (its `network_config.nameservers`, or the platform DNS): programs there ask a server the platform does not manage, which may answer differently or not at all.",
        "pct exec <id> -- cat -n /etc/resolv.conf; phoenix-doctor plan <target> (the DNS step's server); dig @<nameserver from resolv.conf> <name>",
        "Set the guest's nameserver from its config (`pct set <id> --nameserver <ip>` or the VM's cloud-init), and remove hand edits of /etc/resolv.conf."),
    PD_TCP_001 = ("PD-TCP-001", Some(Layer::Tcp), Error, "connection refused",
        "The target answered with a reset or an ICMP port-unreachable: nothing listens there (service down, wrong port, crashed container) or a firewall rejects.",
        "nc -vz -w 3 <ip> <port> from the vantage; on the target: ss -tlnp | grep <port>",
        "Start the service or fix the port in the config; if a firewall rejects, add the rule for this source."),
    PD_TCP_002 = ("PD-TCP-002", Some(Layer::Tcp), Error, "connection filtered (no answer)",
        "No answer to the SYN before the timeout: a firewall drops it (Proxmox policy_in DROP with no matching IN rule) or the host is down.",
        "nc -vz -w 3 <ip> <port> from the vantage and from another source; pve-firewall compile; cat /etc/pve/firewall/<vmid>.fw",
        "Add the missing IN rule on the destination (and OUT rule on the source if its policy_out is not ACCEPT), then pve-firewall restart."),
    PD_TCP_003 = ("PD-TCP-003", Some(Layer::Tcp), Error, "host or network unreachable",
        "The kernel reported no route, or an ICMP host/admin-prohibited answer came back.",
        "ip route get <ip> at the vantage; ping -c1 <ip>",
        "Fix the guest's network_config (IP, bridge, gateway) or the firewall rule that rejects with icmp."),
    PD_TLS_001 = ("PD-TLS-001", Some(Layer::Tls), Error, "certificate expired or not yet valid",
        "The served leaf is outside its validity window. The platform's leaves live 24 hours and renew hourly when less than 12 hours remain: an expired leaf means renewal has been failing (step-ca unreachable from the host, cron missing).",
        "openssl s_client -connect <ip>:<port> -servername <sni> </dev/null | openssl x509 -noout -dates",
        "Run certificate-renewal-manager.sh --force and check it can reach the CA's :9000; then reload the service."),
    PD_TLS_002 = ("PD-TLS-002", Some(Layer::Tls), Error, "certificate does not name the host",
        "The leaf's SANs do not include the name (or IP) the client verifies. The gateway certificate covers only the names in certificate-manifest.json; Traefik verifies backends by the URL's IP, so a Portainer leaf without its IP SAN fails.",
        "openssl s_client -connect <ip>:<port> -servername <sni> -verify_hostname <sni> -CAfile <root>",
        "Add the name (or IP) to the manifest entry's `sans` and re-issue the certificate."),
    PD_TLS_003 = ("PD-TLS-003", Some(Layer::Tls), Error, "certificate not issued by the trusted CA",
        "The chain does not lead to the trust anchor this hop uses (another CA, a stale root after a CA re-init).",
        "openssl s_client -connect <ip>:<port> -servername <sni> -CAfile <root> -showcerts",
        "Re-issue the leaf from the platform's step-ca, or distribute the current root (phoenix_root_ca.crt) to the client."),
    PD_TLS_004 = ("PD-TLS-004", Some(Layer::Tls), Error, "intermediate certificate not served",
        "The server sends only its leaf; clients that do not have the intermediate cannot build the chain (curl: unable to get local issuer certificate). The chain verifies once the CA's intermediate is added, which is how this was detected.",
        "openssl s_client -connect <ip>:<port> -servername <sni> -showcerts (one certificate only)",
        "Serve the full chain (leaf + intermediate): use the bundle step writes, e.g. ssl_certificate with the .crt that contains both."),
    PD_TLS_005 = ("PD-TLS-005", Some(Layer::Tls), Error, "self-signed certificate where a CA-issued one is expected",
        "The server presents a self-signed leaf. For Portainer :9443 the compose flags `--tlscert/--tlskey` are Docker-endpoint flags, so Portainer keeps its own self-signed certificate and Traefik's verification fails (HTTP 500 at the gateway).",
        "openssl s_client -connect <ip>:<port> -showcerts | openssl x509 -noout -issuer -subject",
        "Serve the step-ca issued certificate (Portainer: --sslcert/--sslkey)."),
    PD_TLS_006 = ("PD-TLS-006", Some(Layer::Tls), Error, "TLS handshake failed",
        "The peer did not complete a TLS handshake: it speaks another protocol (plain HTTP on a TLS port), sent garbage, reset the connection or stayed silent.",
        "openssl s_client -connect <ip>:<port> -servername <sni> -brief",
        "Point the client at the TLS port, or fix the scheme (http:// vs https://) of the route."),
    PD_TLS_007 = ("PD-TLS-007", Some(Layer::Tls), Warning, "certificate close to expiry",
        "The served leaf has less life left than --warn-days (default 14), or, for a short-lived leaf, than 40% of its notBefore..notAfter life when that is shorter. With the platform's 24-hour leaves, renewed hourly when under 12 hours remain, under 9.6 hours means the last renewals did not happen.",
        "openssl x509 -checkend 43200 on the served certificate; journal of the renewal cron",
        "Run certificate-renewal-manager.sh and fix what stops the hourly renewal."),
    PD_TLS_008 = ("PD-TLS-008", Some(Layer::Tls), Error, "certificate not valid for this use",
        "The leaf's key usage or extended key usage does not allow server authentication.",
        "openssl x509 -noout -ext keyUsage,extendedKeyUsage",
        "Re-issue with the serverAuth EKU (step's default leaf template)."),
    PD_TLS_009 = ("PD-TLS-009", Some(Layer::Tls), Error, "self-signed certificate does not name the expected host",
        "A documented self-signed server (the Portainer agent names only localhost and its IP) presented a certificate for other names: another service answers on that address.",
        "openssl s_client -connect <ip>:<port> | openssl x509 -noout -ext subjectAltName",
        "Check what listens on the port (docker ps on the VM); restart the agent container."),
    PD_TLS_010 = ("PD-TLS-010", Some(Layer::Tls), Error, "certificate renewed on disk, not reloaded",
        "The server presents an older certificate than the file the manifest's cert_path holds on the host: the renewal wrote the new one, but its post_renewal_command (reload or restart) did not run or failed, so the server keeps the old one until it expires (24-hour leaves: within a day).",
        "openssl x509 -noout -fingerprint -sha256 -dates -in <cert_path> on the host; openssl s_client -connect <ip>:<port> -servername <name> | openssl x509 -noout -fingerprint -sha256 -dates",
        "Run the entry's post_renewal_command from certificate-manifest.json (e.g. pct exec 101 -- systemctl reload nginx) and find why certificate-renewal-manager.sh did not."),
    PD_TLS_011 = ("PD-TLS-011", Some(Layer::Tls), Error, "served certificate lacks a name the manifest lists",
        "The certificate the server presents does not carry every name its certificate-manifest.json entry lists (and the file on disk is not newer): it was issued from another manifest, by hand, or the renewal failed since the names were added.",
        "openssl s_client -connect <ip>:<port> -servername <name> | openssl x509 -noout -ext subjectAltName; jq '.[] | select(.common_name==\"<cn>\")' certificate-manifest.json",
        "Re-run certificate-renewal-manager.sh --force for the entry, then its post_renewal_command."),
    PD_MTLS_001 = ("PD-MTLS-001", Some(Layer::Mtls), Error, "client certificate not required",
        "The hop is documented as mutually authenticated, but the server completes the handshake and serves a client without a certificate.",
        "openssl s_client -connect <ip>:<port> (no -cert) then send a request: it is answered",
        "Require client certificates on the server (Go: tls.RequireAndVerifyClientCert; nginx: ssl_verify_client on)."),
    PD_MTLS_002 = ("PD-MTLS-002", Some(Layer::Mtls), Error, "our client identity is rejected",
        "The server demands a client certificate and rejects the identity this hop presents (TLS alert unknown_ca, bad_certificate, certificate_required, or nginx HTTP 400): the client certificate is from another CA, expired, or lacks the clientAuth EKU.",
        "openssl s_client -connect <ip>:<port> -cert <client.crt> -key <client.key> -CAfile <root>; read the alert",
        "Issue the client certificate from the CA the server trusts, with the clientAuth EKU."),
    PD_HTTP_001 = ("PD-HTTP-001", Some(Layer::Http), Error, "no route for the Host",
        "Traefik answered `404 page not found`: no router matches the Host. Stack labels are dead config when Traefik has no docker provider.",
        "curl -s -H 'Host: <name>' http://<traefik ip>:80/; curl http://<traefik ip>:8080/api/http/routers",
        "Add a router for the Host (file provider: dynamic_conf.yml, or enable the docker provider)."),
    PD_HTTP_002 = ("PD-HTTP-002", Some(Layer::Http), Error, "unexpected HTTP status",
        "The service answered with a status other than the expected one.",
        "curl -sv <url> from the vantage",
        "Check the service's logs and the path the hop expects."),
    PD_HTTP_003 = ("PD-HTTP-003", Some(Layer::Http), Error, "unexpected response body",
        "The status was right but the body lacks the expected text (another service answers on the address).",
        "curl -s <url>",
        "Check which service listens on the port."),
    PD_HTTP_004 = ("PD-HTTP-004", Some(Layer::Http), Error, "no response before the timeout",
        "The connection was accepted but no response came back in time: the service hangs or is overloaded; through a proxy this shows as 504.",
        "curl -sv --max-time 5 <url> from the vantage",
        "Check the service's health and resources."),
    PD_HTTP_005 = ("PD-HTTP-005", Some(Layer::Http), Error, "proxy reports a backend failure",
        "A proxy (NGINX or Traefik) answered 502, 504 or 500 and no direct probe of the hops behind it explains why.",
        "curl -sv through the proxy and directly to each backend from the proxy's vantage; the proxy's error log",
        "Probe the backends from the proxy's guest (pct exec <id> -- curl ...) and fix the one that fails."),
    PD_RUN_001 = ("PD-RUN-001", None, Warning, "target outside the allowed scope",
        "The step's address lies outside --scope, so it was not probed: the verdict cannot cover it.",
        "phoenix-doctor plan <target>",
        "Widen --scope if the address is right, or fix the config that produced it."),
    PD_RUN_002 = ("PD-RUN-002", None, Warning, "could not judge from this vantage",
        "The tool or the transport to the vantage failed (pct exec/qm guest exec error, agent missing, file unreadable); nothing is known about the target.",
        "Run the printed command by hand.",
        "Install the agent (--push), start the guest agent, or run from the host with --vantage host."),
    PD_RUN_003 = ("PD-RUN-003", None, Warning, "guest-only check made from another vantage",
        "The step's traffic starts in a guest, but it ran from this machine (`--vantage host`, or no agent could run in the guest). What only the guest sees (its /etc/hosts and resolv.conf, a firewall rule keyed on its source address) was not observed, so a success here says nothing about the guest: the step cannot be judged ok.",
        "phoenix-doctor trace <target> --format json | jq '.steps[] | select(.vantage.substituted)'",
        "Run the step in the guest: copy the agent in (--push --agent-path /usr/local/bin/phoenix-doctor), name where it is installed (--agent-path PATH), or say how to enter the guest (--via lxc='pct exec {id} --', --via vm='qm guest exec {id} --'); drop --vantage host."),
    PD_RUN_004 = ("PD-RUN-004", None, Warning, "cut by the tool's own time limit",
        "The step did not finish within the run's --budget, or timed out under a --timeout below its layer's floor (docs/cli.md): the tool stopped waiting, so nothing is known about the target.",
        "Rerun with the default --timeout 2s and --budget 30s (or larger), or phoenix-doctor probe <layer> ... --timeout 2s for the one step.",
        "Give the run a larger --budget, or a --timeout at or above the floor for the step's layer."),
}

/// Look up a live code.
pub fn lookup(code: &str) -> Option<&'static CodeInfo> {
    LIVE.iter().find(|c| c.code.eq_ignore_ascii_case(code))
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
        "Generated from the code catalogue (`diagnose::catalog::LIVE`, `lint::catalog()` and `deployed::catalog::DRIFT`); \
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
    section(&mut out, crate::lint::catalog());
    out.push_str("\n## Drift findings (drift)\n\n");
    out.push_str(
        "Deployed files against what the platform's generators would write from the configs now \
         (`phoenix-doctor drift`, docs/cli.md). Each names the deployed file and line and the \
         config file, JSON pointer and line, says whether it looks like a hand edit, a stale \
         file or a generator not re-run, and which script regenerates the file.\n\n",
    );
    section(&mut out, crate::deployed::catalog::DRIFT);
    out
}
