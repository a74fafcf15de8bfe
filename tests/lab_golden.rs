//! The lab's DNS records and Traefik routes against the platform generators' own outputs
//! (`fixtures/golden/00-phoenix-internal.conf` and `dynamic_conf.yml`, copied from the platform's
//! generated files), never against `model`: the lab serves the reference configuration, and every
//! record is asked of its DNS server with `dig` and every route of its router with `curl`, the
//! golden's `10.0.0.x` translated to the lab's `127.<net>.0.x`. A wrong derivation in `model`
//! (which both the lab and the plan use) cancels out in the trace tests; here it fails.

mod common;

use phoenix_doctor::lab::{Backend, LabHandle};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The /24s of loopback these tests use (no other test file does): one lab per test.
const DNS_NET: u8 = 141;
const ROUTES_NET: u8 = 142;

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// `10.0.0.x` → `127.<net>.0.x`, as the lab relocates the platform.
fn translate(net: u8, ip: &str) -> String {
    let last = ip
        .strip_prefix("10.0.0.")
        .unwrap_or_else(|| panic!("golden address outside 10.0.0.0/24: {ip}"));
    format!("127.{net}.0.{last}")
}

/// The generator's `address=/<name>/<ip>` lines: name → translated address.
fn golden_records(net: u8) -> BTreeMap<String, String> {
    let text =
        std::fs::read_to_string(fixture("fixtures/golden/00-phoenix-internal.conf")).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("address=/") else {
            continue;
        };
        let (name, ip) = rest.split_once('/').expect("address=/name/ip");
        assert!(
            out.insert(name.to_string(), translate(net, ip)).is_none(),
            "{name} twice"
        );
    }
    assert!(out.len() > 10, "the golden file has the platform's records");
    out
}

/// The generator's file-provider routes: host → backend URL (translated), or `api@internal`.
fn golden_routes(net: u8) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(fixture("fixtures/golden/dynamic_conf.yml")).unwrap();
    let value = |l: &str, key: &str| -> Option<String> {
        let v = l.trim().strip_prefix(key)?.trim();
        Some(v.trim_matches('"').to_string())
    };
    // routers: name → (host, service); services: name → url.
    let (mut routers, mut services) = (vec![], BTreeMap::new());
    let (mut host, mut current) = (None::<String>, None::<String>);
    for l in text.lines() {
        let indent = l.len() - l.trim_start().len();
        if indent == 4 && l.trim_end().ends_with(':') {
            current = Some(l.trim().trim_end_matches(':').to_string());
        }
        if let Some(rule) = value(l, "rule:") {
            let h = rule
                .strip_prefix("Host(`")
                .and_then(|r| r.strip_suffix("`)"))
                .expect("Host(`...`) rule");
            host = Some(h.to_string());
        }
        if let Some(svc) = value(l, "service:") {
            routers.push((host.take().expect("rule before service"), svc));
        }
        if let Some(url) = value(l, "- url:") {
            services.insert(current.clone().unwrap(), url);
        }
    }
    let mut out = BTreeMap::new();
    for (host, svc) in routers {
        let backend = if svc == "api@internal" {
            svc
        } else {
            let url = &services[&svc];
            let (scheme, rest) = url.split_once("://").unwrap();
            let (ip, port) = rest.split_once(':').unwrap();
            format!("{scheme}://{}:{port}", translate(net, ip))
        };
        out.insert(host, backend);
    }
    assert!(out.len() > 5, "the golden file has the platform's routes");
    out
}

struct RefLab {
    _rt: tokio::runtime::Runtime,
    h: LabHandle,
    _dir: tempfile::TempDir,
}

fn start(net: u8) -> RefLab {
    let (_rt, h, _dir) = common::start_reference_lab(net, &[]);
    RefLab { _rt, h, _dir }
}

/// `dig @server -p port name A`: (status, addresses).
fn dig(lab: &LabHandle, name: &str) -> (String, Vec<String>) {
    let server = lab.dns_addr();
    let out = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args([
            name,
            "A",
            "+norecurse",
            "+time=2",
            "+tries=1",
            "+noall",
            "+comments",
            "+answer",
        ])
        .output()
        .expect("dig is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no answer from the lab's DNS for {name}:\n{text}"))
        .to_string();
    let answers = text
        .lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [_, _, "IN", "A", ip] => Some(ip.to_string()),
            _ => None,
        })
        .collect();
    (status, answers)
}

/// `curl http://router/ -H 'Host: host'`: (status, body).
fn via_router(lab: &LabHandle, host: &str) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--noproxy", "*", "--max-time", "5", "-H"])
        .arg(format!("Host: {host}"))
        .args(["-w", "\n%{http_code}"])
        .arg(format!("http://{}/", lab.router_addr()))
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.to_string(), body.to_string())
}

#[test]
fn the_labs_dns_answers_every_generated_record_and_nothing_else() {
    let lab = start(DNS_NET);
    let golden = golden_records(DNS_NET);
    let mut wrong = vec![];
    for (name, ip) in &golden {
        let (status, answers) = dig(&lab.h, name);
        if status != "NOERROR" || answers != [ip.clone()] {
            wrong.push(format!("{name}: {status} {answers:?}, generator: {ip}"));
        }
    }
    // The lab's own record list has exactly the generator's names.
    let served: BTreeSet<String> = lab.h.dns_records().iter().map(|(n, _)| n.clone()).collect();
    let expected: BTreeSet<String> = golden.keys().cloned().collect();
    for extra in served.difference(&expected) {
        let (status, answers) = dig(&lab.h, extra);
        wrong.push(format!(
            "{extra}: not generated, lab answers {status} {answers:?}"
        ));
    }
    // A name the generator does not write is NXDOMAIN (dnsmasq's local=/<domain>/).
    let (status, _) = dig(&lab.h, "not-a-guest.internal.thinkheads.ai");
    if status != "NXDOMAIN" {
        wrong.push(format!("not-a-guest: {status}, expected NXDOMAIN"));
    }
    lab.h.shutdown();
    assert!(
        wrong.is_empty(),
        "the lab's DNS differs from the generator:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_labs_router_serves_every_generated_route_to_its_backend() {
    let lab = start(ROUTES_NET);
    let golden = golden_routes(ROUTES_NET);
    let mut wrong = vec![];
    let file_routes: BTreeMap<String, String> = lab
        .h
        .routes()
        .iter()
        .filter(|r| r.provider == "file")
        .map(|r| {
            let backend = match &r.backend {
                Backend::Http(a) => format!("http://{a}"),
                Backend::Https(a) => format!("https://{a}"),
                Backend::Api => "api@internal".to_string(),
            };
            (r.host.clone(), backend)
        })
        .collect();
    if file_routes != golden {
        wrong.push(format!(
            "file-provider routes differ:\n lab:       {file_routes:?}\n generator: {golden:?}"
        ));
    }
    // Each generated Host is routed (anything but Traefik's own 404), an unknown one is not.
    for host in golden.keys() {
        let (status, body) = via_router(&lab.h, host);
        if status == "404" && body.trim() == "404 page not found" || status == "000" {
            wrong.push(format!("{host}: router answered {status} {body:?}"));
        }
    }
    let (status, body) = via_router(&lab.h, "not-routed.internal.thinkheads.ai");
    if status != "404" || body.trim() != "404 page not found" {
        wrong.push(format!(
            "unknown Host: {status} {body:?}, expected Traefik's 404"
        ));
    }
    lab.h.shutdown();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
