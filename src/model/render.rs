//! The model rendered in the platform's own file formats, byte for byte as its generators
//! write them: `00-phoenix-internal.conf`, `dynamic_conf.yml`, `cluster.fw`, `<vmid>.fw`.

use super::firewall::{FwFile, FwRule, FwScope};
use super::{dns, Intended};
use crate::error::Error;
use std::fmt::Write;

/// `/etc/dnsmasq.d/00-phoenix-internal.conf`.
pub fn dnsmasq(m: &Intended) -> String {
    let mut s = String::new();
    s.push_str(dns::HEADER);
    s.push('\n');
    for r in &m.dns.records {
        let _ = writeln!(s, "address=/{}/{}", r.hostname, r.ip_text);
    }
    s
}

/// Traefik's `dynamic_conf.yml` as `generate_traefik_config.sh` writes it.
pub fn traefik_dynamic(m: &Intended) -> String {
    let mut s = String::from("http:\n  routers:\n");
    for r in &m.routes.routes {
        let _ = write!(
            s,
            "    {}:\n      rule: \"{}\"\n      service: \"{}\"\n      entryPoints:\n",
            r.router, r.rule, r.service
        );
        for e in &r.entrypoints {
            let _ = writeln!(s, "        - {e}");
        }
    }
    s.push_str("\n  services:\n");
    for r in m.routes.routes.iter().filter(|r| !r.is_api) {
        let _ = write!(
            s,
            "    {}:\n      loadBalancer:\n        servers:\n          - url: \"{}\"\n        passHostHeader: true\n",
            r.service, r.url
        );
        if let Some(t) = &r.servers_transport {
            let _ = writeln!(s, "        serversTransport: \"{t}\"");
        }
    }
    let _ = write!(
        s,
        "\n  serversTransports:\n    internal-ca:\n      insecureSkipVerify: {}\n      rootCAs:\n",
        m.routes.insecure_skip_verify
    );
    for root in &m.routes.internal_ca_roots {
        let _ = writeln!(s, "        - {root}");
    }
    s
}

fn opt(s: &mut String, flag: &str, v: &Option<String>) {
    if let Some(v) = v {
        if !v.is_empty() {
            let _ = write!(s, " {flag}{v}");
        }
    }
}

/// `generate_rule_string` (common_utils): the cluster.fw line.
fn cluster_rule(r: &FwRule) -> String {
    let mut s = format!("{} {}", r.direction.as_upper(), r.action);
    opt(&mut s, "iface ", &r.iface);
    opt(&mut s, "-p ", &r.proto);
    opt(&mut s, "-source ", &r.source_text);
    opt(&mut s, "-dest ", &r.dest_text);
    opt(&mut s, "-dport ", &r.dport_text);
    opt(&mut s, "# ", &r.comment);
    s
}

/// vm-manager's `<vmid>.fw` line (action upper-cased, a different field order).
fn vm_rule(r: &FwRule) -> String {
    let mut s = format!("{} {}", r.direction.as_upper(), r.action.upper());
    opt(&mut s, "-p ", &r.proto);
    opt(&mut s, "-dport ", &r.dport_text);
    opt(&mut s, "-source ", &r.source_text);
    opt(&mut s, "-dest ", &r.dest_text);
    opt(&mut s, "# ", &r.comment);
    s
}

/// The pvesh-created LXC rule file (Proxmox writes its own field order; rules reversed).
fn lxc_rule(r: &FwRule) -> String {
    let mut s = format!("{} {}", r.direction.as_upper(), r.action.upper());
    opt(&mut s, "-source ", &r.source_text);
    opt(&mut s, "-dest ", &r.dest_text);
    opt(&mut s, "-p ", &r.proto);
    opt(&mut s, "-dport ", &r.dport_text);
    opt(&mut s, "# ", &r.comment);
    s
}

/// One firewall file in Proxmox format.
pub fn fw_file(f: &FwFile) -> String {
    let mut s = String::from("[OPTIONS]\n");
    match f.scope {
        FwScope::Cluster => {
            let _ = write!(
                s,
                "enable: 1\npolicy_in: {}\npolicy_out: {}\n",
                f.options.policy_in.value, f.options.policy_out.value
            );
        }
        FwScope::Vm(_) => s.push_str("enable: 1\n"),
        FwScope::Lxc(_) => {}
    }
    s.push_str("\n[RULES]\n");
    let lines: Vec<String> = match f.scope {
        FwScope::Cluster => f.rules.iter().map(|r| cluster_rule(r)).collect(),
        FwScope::Vm(_) => f.rules.iter().map(|r| vm_rule(r)).collect(),
        FwScope::Lxc(_) => f.rules.iter().rev().map(|r| lxc_rule(r)).collect(),
    };
    for l in lines {
        s.push_str(&l);
        s.push('\n');
    }
    s
}

/// `show firewall`: every file with `# ==> name <==` separators, or one file
/// (`cluster`, a VM id, or an LXC id).
pub fn firewall(m: &Intended, file: Option<&str>) -> Result<String, Error> {
    if let Some(want) = file {
        let want = want.trim_end_matches(".fw");
        let f = m
            .firewall
            .files()
            .chain(m.firewall.lxcs.iter())
            .find(|f| f.name == want)
            .ok_or_else(|| {
                let known: Vec<String> = m
                    .firewall
                    .files()
                    .chain(m.firewall.lxcs.iter())
                    .map(|f| f.name.clone())
                    .collect();
                Error::input(format!(
                    "no firewall file `{want}`: known files are {}",
                    known.join(", ")
                ))
            })?;
        return Ok(fw_file(f));
    }
    let mut s = String::new();
    for (i, f) in m.firewall.files().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        let _ = writeln!(s, "# ==> {}.fw <==", f.name);
        s.push_str(&fw_file(f));
    }
    Ok(s)
}

/// The gateway site `generate_nginx_gateway_config.sh` (v3) writes to
/// `sites-available/gateway` (linked from `sites-enabled/`), with the proxy target derived from
/// the Traefik LXC's address and web port (the script hard-codes `http://10.0.0.12:80`, the
/// same on the platform). None when the configs have no gateway LXC.
pub fn nginx_gateway(m: &Intended) -> Option<String> {
    let g = m.gateway.as_ref()?;
    let domain = &m.domain.value;
    let mut s = String::new();
    let _ = write!(
        s,
        "server {{\n    listen {http};\n    server_name _;\n\n    location /.well-known/acme-challenge/ {{\n        root /var/www/html;\n        allow all;\n    }}\n\n    location / {{\n        return 301 https://$host$request_uri;\n    }}\n}}\n\n",
        http = g.http_port
    );
    let _ = write!(
        s,
        "server {{\n    listen {listen} ssl http2;\n    server_name {names};\n\n    ssl_certificate {cert};\n    ssl_certificate_key /etc/nginx/ssl/nginx.{domain}.key;\n\n    location / {{\n        proxy_pass {proxy};\n        proxy_set_header Host $host;\n        proxy_set_header X-Real-IP $remote_addr;\n        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n        proxy_set_header X-Forwarded-Proto $scheme;\n    }}\n}}\n",
        listen = g.listen.value,
        names = g.server_names.join(" "),
        cert = g.ssl_certificate,
        proxy = g.proxy_pass,
    );
    Some(s)
}
