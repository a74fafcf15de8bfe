//! End-to-end traces through real vantages: one network namespace per node of the platform
//! (host, LXC 101/102/103, VM 1001/1002) on a bridge in 198.18.0.0/24, real dnsmasq and nginx
//! inside them, a platform-format config dir with those addresses, and `phoenix-doctor trace`
//! itself running inside the host node's namespace with `ip netns exec` as the transport and
//! the built binary as the agent in every guest.
//!
//! Needs root (CI runs as root). Every namespace, `/etc/netns/<ns>` and child process is removed
//! on drop. Nothing here sends a packet from the root namespace: the tool runs inside the
//! host node's namespace, which has no route out of the lab.

mod common;
use common::sh;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_phoenix-doctor");
const DOMAIN: &str = "internal.thinkheads.ai";

/// The nodes: namespace suffix and address (the platform's last octets on 198.18.0.0/24).
const HOST: (&str, &str) = ("host", "198.18.0.13");
const CA: (&str, &str) = ("lxc103", "198.18.0.10");
const GATEWAY: (&str, &str) = ("lxc101", "198.18.0.153");
const ROUTER: (&str, &str) = ("lxc102", "198.18.0.12");
const PORTAINER: (&str, &str) = ("vm1001", "198.18.0.111");
const AGENT: (&str, &str) = ("vm1002", "198.18.0.102");
const NODES: [(&str, &str); 6] = [HOST, CA, GATEWAY, ROUTER, PORTAINER, AGENT];
/// The nameserver a broken resolv.conf inside the Traefik guest names (no host has it).
const DEAD_NAMESERVER: &str = "198.18.0.99";
/// Where the stale hosts-file line inside the Traefik guest points (nothing listens there).
const STALE_PORTAINER: &str = "198.18.0.101";

fn require_root() {
    common::require_root(
        "tests/trace_netns.rs",
        "ip netns add, nft, /etc/netns, nginx on :443",
        &["ip", "dnsmasq", "nginx", "nft", "ss", "openssl"],
    );
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// What a lab variant changes on top of the healthy platform.
#[derive(Default, Clone, Copy)]
struct Faults {
    /// `/etc/hosts` inside the Traefik guest pins portainer to a stale address.
    router_hosts_override: bool,
    /// nftables inside the agent VM drops tcp 9001 from the Portainer VM's address only.
    agent_drops_portainer: bool,
    /// `/etc/resolv.conf` inside the Traefik guest names a nameserver that does not exist.
    router_resolv_nowhere: bool,
    /// The agent in VM 1002 listens on 9002 instead of the configured 9001.
    agent_moved: bool,
    /// The gateway's site file (what nginx in LXC 101 includes) proxies to a port the generator
    /// never wrote, where nothing listens.
    gateway_upstream_drifted: bool,
}

impl Faults {
    /// The port the agent's nginx listens on.
    fn agent_port(self) -> u16 {
        if self.agent_moved {
            9002
        } else {
            9001
        }
    }
}

/// The port the drifted gateway site proxies to (the router listens on 80 only).
const DRIFTED_ROUTER_PORT: u16 = 8081;

/// The namespaces, the servers inside them, and the config dir that describes them.
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Lab {
    fn up(tag: &str, faults: Faults) -> Lab {
        require_root();
        let started = Instant::now();
        let prefix = format!("pdt{}{tag}", std::process::id());
        let mut lab = Lab {
            prefix: prefix.clone(),
            namespaces: Vec::new(),
            children: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        };
        lab.network(faults);
        lab.pki();
        lab.config_dir();
        lab.dns();
        lab.web(faults);
        if faults.agent_drops_portainer {
            let rules = lab.dir.path().join("agent.nft");
            write(
                &rules,
                &format!(
                    "table inet pdtest {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    ip saddr {} tcp dport 9001 drop\n  }}\n}}\n",
                    PORTAINER.1
                ),
            );
            sh(&[
                "ip",
                "netns",
                "exec",
                &lab.ns(AGENT.0),
                "nft",
                "-f",
                &rules.display().to_string(),
            ]);
        }
        lab.wait_listening(HOST.0, &format!("{}:53", HOST.1), "-lnu");
        for (node, port) in [
            (GATEWAY, 443),
            (ROUTER, 80),
            (CA, 9000),
            (PORTAINER, 9443),
            (AGENT, faults.agent_port()),
            (AGENT, 6333),
        ] {
            lab.wait_listening(node.0, &format!("{}:{port}", node.1), "-lnt");
        }
        eprintln!("lab {prefix} up in {:?}", started.elapsed());
        lab
    }

    fn ns(&self, node: &str) -> String {
        format!("{}-{node}", self.prefix)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A switch namespace holding a bridge; one namespace per node with a veth onto it.
    fn network(&mut self, faults: Faults) {
        let sw = self.ns("sw");
        self.namespaces.push(sw.clone());
        common::add_switch(&sw);
        for (node, ip) in NODES {
            let ns = self.ns(node);
            self.namespaces.push(ns.clone());
            let mut hosts = "127.0.0.1 localhost\n".to_string();
            if faults.router_hosts_override && node == ROUTER.0 {
                hosts.push_str(&format!("{STALE_PORTAINER} portainer.{DOMAIN}\n"));
            }
            let nameserver = if faults.router_resolv_nowhere && node == ROUTER.0 {
                DEAD_NAMESERVER
            } else {
                HOST.1
            };
            common::add_node(
                &sw,
                &ns,
                node,
                ip,
                &hosts,
                &format!("search {DOMAIN}\nnameserver {nameserver}\n"),
            );
        }
    }

    /// A step-ca-like PKI with openssl: root → intermediate → server leaves (chain files are
    /// leaf + intermediate), and the agent's self-signed certificate.
    fn pki(&self) {
        let script = r#"
set -eu
cd "$1"
cat > ext.cnf <<'X'
[req]
distinguished_name=dn
[dn]
[root]
basicConstraints=critical,CA:TRUE,pathlen:1
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
[int]
basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid:always
[server]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid:always
subjectAltName=${ENV::SAN}
X
export OPENSSL_CONF="$PWD/ext.cnf" SAN=DNS:unused
K="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc"
openssl req -x509 $K -keyout root.key -subj "/O=ThinkHeads Internal CA/CN=ThinkHeads Internal CA Root CA" -days 3650 -extensions root -out root.crt 2>/dev/null
openssl req -new $K -keyout int.key -subj "/O=ThinkHeads Internal CA/CN=ThinkHeads Internal CA Intermediate CA" -out int.csr 2>/dev/null
openssl x509 -req -in int.csr -CA root.crt -CAkey root.key -set_serial 0x1001 -days 3650 -sha256 -extfile ext.cnf -extensions int -out int.crt 2>/dev/null
cat int.crt root.crt > bundle.crt
issue() {
  openssl req -new $K -keyout "$1.key" -subj "/CN=$2" -out "$1.csr" 2>/dev/null
  SAN="$3" openssl x509 -req -in "$1.csr" -CA int.crt -CAkey int.key -set_serial "$4" -days 1 -sha256 -extfile ext.cnf -extensions server -out "$1.crt" 2>/dev/null
  cat "$1.crt" int.crt > "$1.chain.pem"
}
issue gateway "nginx.$D" "DNS:nginx.$D,DNS:portainer.$D,DNS:qdrant.$D" 0x2001 &
issue ca "ca.$D" "DNS:ca.$D,DNS:$D,DNS:*.$D,IP:$CA_IP" 0x2002 &
issue portainer "portainer.$D" "DNS:portainer.$D,IP:$PORTAINER_IP" 0x2003 &
SAN="DNS:localhost,IP:$AGENT_IP" openssl req -x509 $K -keyout agent.key -subj "/CN=localhost" -days 1 -extensions server -out agent.crt 2>/dev/null &
wait
rm -f *.csr ext.cnf
"#;
        let pki = self.path("pki");
        std::fs::create_dir_all(&pki).unwrap();
        let out = Command::new("sh")
            .args(["-c", script, "sh", &pki.display().to_string()])
            .env("D", DOMAIN)
            .env("CA_IP", CA.1)
            .env("PORTAINER_IP", PORTAINER.1)
            .env("AGENT_IP", AGENT.1)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl PKI: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for f in [
            "root.crt",
            "gateway.chain.pem",
            "ca.chain.pem",
            "portainer.chain.pem",
            "agent.crt",
        ] {
            assert!(pki.join(f).exists(), "openssl did not write {f}");
        }
    }

    /// The reference platform config moved onto 198.18.0.0/24 (the platform's last octets),
    /// with a site file naming the lab's trust anchors and no simulated vantages.
    fn config_dir(&self) {
        let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/configs/reference");
        copy_relocated(&reference.join("etc"), &self.path("etc"));
        copy_relocated(&reference.join("stacks"), &self.path("stacks"));
        let root = self.path("pki/root.crt");
        write(
            &self.path("etc/phoenix-doctor.toml"),
            &format!(
                "# Site facts of the namespace lab.\n[paths]\nroot_ca = \"{r}\"\nrouter_root_ca = \"{r}\"\nca_bundle = \"{b}\"\n",
                r = root.display(),
                b = self.path("pki/bundle.crt").display()
            ),
        );
    }

    /// dnsmasq on the host node with the records the platform's generator derives from the
    /// config (`phoenix-doctor show dns`).
    fn dns(&mut self) {
        let out = Command::new(BIN)
            .args(["show", "dns", "--config-dir"])
            .arg(self.path("etc"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "show dns: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The generator hard-codes the CA's platform address (10.0.0.10); in this lab the CA
        // guest is 198.18.0.10, so that record moves with it like every other address.
        let records = String::from_utf8(out.stdout)
            .unwrap()
            .replace("/10.0.0.10\n", &format!("/{}\n", CA.1));
        assert!(
            records.contains(&format!("address=/qdrant.{DOMAIN}/{}", GATEWAY.1)),
            "{records}"
        );
        assert!(
            records
                .lines()
                .filter(|l| l.starts_with("address="))
                .all(|l| l.contains("/198.18.0.")),
            "every record must stay in the lab: {records}"
        );
        // dnsmasq reads the records where the generator writes them on the host (the deployed
        // tree `drift --deployed` reads).
        let conf = self.path("deployed/host/etc/dnsmasq.d/00-phoenix-internal.conf");
        write(&conf, &records);
        let child = self.spawn_in(
            HOST.0,
            &[
                "dnsmasq",
                "-k",
                &format!("--conf-file={}", conf.display()),
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                &format!("--listen-address={}", HOST.1),
                "--port=53",
                "--user=",
                "--group=",
                &format!("--pid-file={}", self.path("dnsmasq.pid").display()),
                &format!("--local=/{DOMAIN}/"),
            ],
        );
        self.children.push(child);
    }

    /// nginx in every node that serves HTTP: the TLS gateway proxying to the router, the router
    /// routing by Host, step-ca's health endpoint, the Portainer API and the agent and qdrant.
    fn web(&mut self, faults: Faults) {
        let agent_port = faults.agent_port();
        let pki = self.path("pki").display().to_string();
        let (d, gw, rt, ca, pt, ag) = (DOMAIN, GATEWAY.1, ROUTER.1, CA.1, PORTAINER.1, AGENT.1);
        // The gateway's site is a file of its own in the deployed tree, as sites-enabled/gateway.
        let rt_port = if faults.gateway_upstream_drifted {
            DRIFTED_ROUTER_PORT
        } else {
            80
        };
        let site = self.path("deployed/lxc-101/etc/nginx/sites-enabled/gateway");
        write(
            &site,
            &format!(
                "server {{\n    listen {gw}:443 ssl;\n    server_name nginx.{d} portainer.{d} qdrant.{d};\n    ssl_certificate {pki}/gateway.chain.pem;\n    ssl_certificate_key {pki}/gateway.key;\n    location / {{\n        proxy_pass http://{rt}:{rt_port};\n        proxy_set_header Host $host;\n    }}\n}}\n"
            ),
        );
        let servers = [
            (GATEWAY.0, format!("include {};", site.display())),
            (
                ROUTER.0,
                format!(
                    "server {{ listen {rt}:80 default_server; return 404 '404 page not found\\n'; }}
                     server {{ listen {rt}:80; server_name qdrant.{d};
                       location / {{ proxy_pass http://{ag}:6333; }} }}
                     server {{ listen {rt}:80; server_name portainer.{d};
                       location / {{ proxy_pass https://{pt}:9443; proxy_ssl_verify on;
                         proxy_ssl_trusted_certificate {pki}/root.crt;
                         proxy_ssl_server_name on; proxy_ssl_name portainer.{d}; }} }}"
                ),
            ),
            (
                CA.0,
                format!(
                    "server {{ listen {ca}:9000 ssl; ssl_certificate {pki}/ca.chain.pem;
                       ssl_certificate_key {pki}/ca.key;
                       location = /health {{ default_type application/json; return 200 '{{\"status\":\"ok\"}}\\n'; }} }}"
                ),
            ),
            (
                PORTAINER.0,
                format!(
                    "server {{ listen {pt}:9443 ssl; ssl_certificate {pki}/portainer.chain.pem;
                       ssl_certificate_key {pki}/portainer.key;
                       location = /api/system/status {{ default_type application/json;
                         return 200 '{{\"Version\":\"2.19.4\",\"InstanceID\":\"netns-lab\"}}\\n'; }} }}"
                ),
            ),
            (
                AGENT.0,
                format!(
                    "server {{ listen {ag}:{agent_port} ssl; ssl_certificate {pki}/agent.crt;
                       ssl_certificate_key {pki}/agent.key; location = /ping {{ return 204; }} }}
                     server {{ listen {ag}:6333;
                       location = /healthz {{ return 200 'healthz check passed\\n'; }} }}"
                ),
            ),
        ];
        for (node, body) in servers {
            let dir = self.path(&format!("nginx/{node}"));
            std::fs::create_dir_all(dir.join("tmp")).unwrap();
            let d = dir.display();
            let conf = format!(
                "daemon off;\nmaster_process off;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{ access_log off; client_body_temp_path {d}/tmp/body; proxy_temp_path {d}/tmp/proxy;\n\
                 fastcgi_temp_path {d}/tmp/fastcgi; uwsgi_temp_path {d}/tmp/uwsgi; scgi_temp_path {d}/tmp/scgi;\n\
                 ssl_protocols TLSv1.2 TLSv1.3;\n{body}\n}}\n"
            );
            let file = dir.join("nginx.conf");
            write(&file, &conf);
            let child = self.spawn_in(
                node,
                &[
                    "nginx",
                    "-p",
                    &d.to_string(),
                    "-e",
                    &format!("{d}/error.log"),
                    "-c",
                    &file.display().to_string(),
                ],
            );
            self.children.push(child);
        }
    }

    fn spawn_in(&self, node: &str, argv: &[&str]) -> Child {
        let ns = self.ns(node);
        Command::new("ip")
            .args(["netns", "exec", &ns])
            .args(argv)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {argv:?} in {ns}: {e}"))
    }

    fn wait_listening(&mut self, node: &str, addr: &str, flags: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let out = Command::new("ip")
                .args(["netns", "exec", &self.ns(node), "ss", "-H", flags])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains(addr) {
                return;
            }
            if Instant::now() >= deadline {
                let logs: String = std::fs::read_dir(self.path("nginx"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| {
                        std::fs::read_to_string(e.path().join("error.log")).unwrap_or_default()
                    })
                    .collect();
                panic!(
                    "nothing listens on {addr} in {}; nginx logs:\n{logs}",
                    self.ns(node)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `phoenix-doctor trace TARGET` inside the host node's namespace, every guest reached with
    /// `ip netns exec`, the built binary as the agent. Returns the report and the exit code.
    fn trace(&self, target: &str, extra: &[&str]) -> (Value, i32, Duration) {
        let started = Instant::now();
        let out = self.run_trace(target, "json", extra);
        let took = started.elapsed();
        let code = out.status.code().unwrap_or(-1);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "trace {target} printed no JSON report ({e}); exit {code}; stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        eprintln!("trace {target} through namespaces: {took:?} (exit {code})");
        (report, code, took)
    }

    fn run_trace(&self, target: &str, format: &str, extra: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(HOST.0), BIN, "trace", target])
            .arg("--config-dir")
            .arg(self.path("etc"))
            .args([
                "--via",
                &format!("lxc=ip netns exec {}-lxc{{id}}", self.prefix),
                "--via",
                &format!("vm=ip netns exec {}-vm{{id}}", self.prefix),
                "--agent-path",
                BIN,
                "--scope",
                "198.18.0.0/24",
                "--timeout",
                "1s",
                "--format",
                format,
                "--no-color",
            ])
            .args(extra)
            .output()
            .unwrap()
    }
}

/// Copy a tree, moving the platform's 10.0.0.0/24 onto the lab's 198.18.0.0/24.
fn copy_relocated(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_relocated(&entry.path(), &dest);
        } else {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            write(&dest, &text.replace("10.0.0.", "198.18.0."));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        common::remove_namespaces(&self.namespaces);
    }
}

// ---- reading the report ----

fn step<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in the report:\n{report:#}"))
}

fn hop<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == id)
        .unwrap_or_else(|| panic!("no hop {id} in the report:\n{report:#}"))
}

fn steps_of<'a>(report: &'a Value, hop: &str) -> Vec<&'a Value> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["hop"] == hop)
        .collect()
}

/// One line per step that is not ok, for assertion messages.
fn not_ok(report: &Value) -> String {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] != "ok")
        .map(|s| {
            format!(
                "{} [{}] from {} via {}: {} (expected {}; actual {})\n",
                s["id"],
                s["verdict"],
                s["vantage"]["name"],
                s["vantage"]["via"],
                s["code"],
                s["expected"],
                s["actual"]
            )
        })
        .collect()
}

/// Every step ran at its own vantage (none substituted), through the namespace transport.
fn assert_real_vantages(lab: &Lab, report: &Value) {
    for s in report["steps"].as_array().unwrap() {
        let v = &s["vantage"];
        assert_eq!(v["substituted"], false, "substituted vantage: {s:#}");
        let name = v["name"].as_str().unwrap();
        // A step not run because its prerequisite failed has no transport to show.
        if name != "host" && s["verdict"] != "blocked" {
            let (kind, id) = name.split_once(':').unwrap();
            assert_eq!(
                v["via"],
                format!("ip netns exec {}-{kind}{id}", lab.prefix),
                "{s:#}"
            );
        }
    }
}

/// The platform's hardest seed: a stale /etc/hosts line inside the Traefik guest. The host's
/// DNS is healthy; only the trace from lxc:102 shows the override.
#[test]
fn a_hosts_override_inside_the_router_guest_is_the_first_divergence() {
    let lab = Lab::up(
        "a",
        Faults {
            router_hosts_override: true,
            ..Faults::default()
        },
    );
    let (report, code, _) = lab.trace("qdrant", &[]);
    assert_real_vantages(&lab, &report);
    let first = &report["first_divergence"];
    assert_eq!(first["hop"], "router-dns", "{}", not_ok(&report));
    assert_eq!(first["layer"], "dns", "{first:#}");
    assert_eq!(first["code"], "PD-DNS-003", "{first:#}");
    assert_eq!(first["step"], "router-dns.dns.portainer", "{first:#}");
    assert_eq!(first["from"], "lxc:102", "{first:#}");
    assert_eq!(report["verdict"], "diverged");
    assert_eq!(code, 1, "a diverged trace exits 1");

    let s = step(&report, "router-dns.dns.portainer");
    assert_eq!(s["vantage"]["name"], "lxc:102");
    assert_eq!(s["verdict"], "diverged");
    let evidence = s["evidence"].to_string() + s["actual"].as_str().unwrap();
    assert!(evidence.contains(STALE_PORTAINER), "{s:#}");
    // The nameserver itself is fine, and so is every other name from the same vantage.
    for other in ["qdrant", "portainer-agent", "ca"] {
        let s = step(&report, &format!("router-dns.dns.{other}"));
        assert_eq!(s["verdict"], "ok", "{s:#}");
    }
    // The host's own DNS steps see no override.
    let host_dns = steps_of(&report, "host-dns");
    assert_eq!(host_dns.len(), 4);
    for s in host_dns {
        assert_eq!(s["verdict"], "ok", "{s:#}");
        assert_eq!(s["vantage"]["name"], "host");
    }
    assert_eq!(hop(&report, "host-dns")["verdict"], "ok");
    assert_eq!(hop(&report, "router-dns")["verdict"], "diverged");

    // `--vantage host`: the steps run from the host, but the guest's /etc/hosts is still read
    // through the transport, so the override is still found, named as the guest's file and
    // marked as run from here.
    let (report, code, _) = lab.trace("qdrant", &["--vantage", "host"]);
    assert_eq!(code, 1);
    assert_eq!(
        report["first_divergence"]["hop"],
        "router-dns",
        "{}",
        not_ok(&report)
    );
    assert_eq!(report["first_divergence"]["code"], "PD-DNS-003");
    let s = step(&report, "router-dns.dns.portainer");
    assert_eq!(s["vantage"]["substituted"], true, "{s:#}");
    assert_eq!(
        s["vantage"]["via"],
        format!("local; system files via ip netns exec {}", lab.ns(ROUTER.0))
    );
    let actual = s["actual"].as_str().unwrap();
    assert!(
        actual.starts_with("lxc:102:/etc/hosts:2 maps portainer."),
        "the guest's file, not a local copy: {actual}"
    );
}

/// The Traefik guest's resolv.conf names 198.18.0.99, where no host exists, while the
/// platform's dnsmasq answers every name: a program in lxc:102 gets no answer, so the trace is
/// not healthy, and the finding names the guest's resolv.conf, its line 2 and the dead
/// nameserver. Written from the fault: the host's own DNS stays ok.
#[test]
fn a_resolv_conf_naming_a_dead_nameserver_inside_the_router_guest_is_a_divergence() {
    let lab = Lab::up(
        "r",
        Faults {
            router_resolv_nowhere: true,
            ..Faults::default()
        },
    );
    let (report, code, _) = lab.trace("qdrant", &[]);
    assert_real_vantages(&lab, &report);
    assert_eq!(code, 1, "{}", not_ok(&report));
    assert_eq!(report["verdict"], "diverged");
    let first = &report["first_divergence"];
    assert_eq!(first["hop"], "router-dns", "{}", not_ok(&report));
    assert_eq!(first["code"], "PD-DNS-006", "{first:#}");
    assert_eq!(first["from"], "lxc:102", "{first:#}");
    let s = step(&report, "router-dns.dns.qdrant");
    assert_eq!(s["verdict"], "diverged", "{s:#}");
    let actual = s["actual"].as_str().unwrap();
    assert!(
        actual.contains(&format!(
            "/etc/resolv.conf:2 names nameserver {DEAD_NAMESERVER}"
        )),
        "{actual}"
    );
    assert!(
        actual.contains(&format!("{DEAD_NAMESERVER}:53 does not answer")),
        "{actual}"
    );
    assert!(
        !s.to_string().contains("effective answer at the vantage"),
        "{s:#}"
    );
    assert_eq!(hop(&report, "host-dns")["verdict"], "ok");
}

/// A firewall inside the agent VM that drops the Portainer VM but not the host: the hop from
/// vm:1001 is unreachable, the same port from the host is open.
#[test]
fn a_firewall_that_drops_only_the_portainer_vm_is_attributed_to_its_hop() {
    let lab = Lab::up(
        "b",
        Faults {
            agent_drops_portainer: true,
            ..Faults::default()
        },
    );
    let (report, code, _) = lab.trace("agent", &[]);
    assert_real_vantages(&lab, &report);
    assert_eq!(code, 1, "{}", not_ok(&report));
    let first = &report["first_divergence"];
    assert_eq!(first["hop"], "portainer-agent", "{}", not_ok(&report));
    assert_eq!(first["code"], "PD-TCP-002", "{first:#}");
    assert_eq!(first["layer"], "tcp");
    assert_eq!(first["from"], "vm:1001", "{first:#}");
    assert_eq!(first["step"], "portainer-agent.tcp", "{first:#}");

    let from_vm = step(&report, "portainer-agent.tcp");
    assert_eq!(from_vm["vantage"]["name"], "vm:1001");
    assert_eq!(from_vm["verdict"], "unreachable", "{from_vm:#}");
    assert_eq!(from_vm["code"], "PD-TCP-002", "{from_vm:#}");
    assert_eq!(hop(&report, "portainer-agent")["verdict"], "unreachable");

    // The same agent port from the host: open, and the whole hop is ok.
    let from_host = step(&report, "host-agent.tcp");
    assert_eq!(from_host["vantage"]["name"], "host");
    assert_eq!(from_host["verdict"], "ok", "{from_host:#}");
    assert_eq!(
        hop(&report, "host-agent")["verdict"],
        "ok",
        "{}",
        not_ok(&report)
    );
    assert_eq!(
        hop(&report, "portainer-dns")["verdict"],
        "ok",
        "{}",
        not_ok(&report)
    );

    // From the host only, the firewall is invisible: the Portainer VM's hop connects, but that
    // says nothing about the VM, so the step is not judged ok and the trace never exits 0.
    let (report, code, _) = lab.trace("agent", &["--vantage", "host"]);
    assert_eq!(code, 3, "{}", not_ok(&report));
    assert_eq!(report["verdict"], "cannot-judge");
    let s = step(&report, "portainer-agent.tcp");
    assert_eq!(s["verdict"], "cannot-judge", "{s:#}");
    assert_eq!(s["code"], "PD-RUN-003", "{s:#}");
    assert_eq!(s["vantage"]["name"], "vm:1001");
    assert_eq!(s["vantage"]["substituted"], true, "{s:#}");
    assert!(
        s["evidence"]
            .to_string()
            .contains("ran from this machine instead of vm:1001"),
        "{s:#}"
    );
    // The table says so too: the hop is marked and the substituted steps are counted.
    let out = lab.run_trace("agent", "table", &["--vantage", "host"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("vm:1001 (ran from here)"), "{table}");
    assert!(
        table.contains("4 step(s) ran from this machine instead of their vantage"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("4 check(s) could not be made: they start in vm:1001")),
        "{table}"
    );
}

/// Every hop of the qdrant trace served by real peers: healthy, exit 0. Then the agent trace on
/// the same lab, also healthy.
#[test]
fn the_healthy_platform_traces_healthy_from_every_vantage() {
    let lab = Lab::up("c", Faults::default());
    let (report, code, took) = lab.trace("qdrant", &[]);
    assert_real_vantages(&lab, &report);
    assert_eq!(report["verdict"], "healthy", "{}", not_ok(&report));
    assert_eq!(code, 0);
    assert!(report["first_divergence"].is_null(), "{report:#}");
    let vantages: std::collections::BTreeSet<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["vantage"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        vantages.into_iter().collect::<Vec<_>>(),
        ["host", "lxc:101", "lxc:102", "vm:1001"],
        "qdrant's hops start at these vantages"
    );
    for h in report["hops"].as_array().unwrap() {
        assert!(
            h["verdict"] == "ok" || h["verdict"] == "warn",
            "hop {} is {}: {}",
            h["id"],
            h["verdict"],
            not_ok(&report)
        );
    }
    eprintln!(
        "healthy qdrant: {} steps in {took:?}",
        report["steps"].as_array().unwrap().len()
    );

    for target in ["agent", "portainer", "step-ca"] {
        let (report, code, _) = lab.trace(target, &[]);
        assert_real_vantages(&lab, &report);
        assert_eq!(
            report["verdict"],
            "healthy",
            "{target}: {}",
            not_ok(&report)
        );
        assert_eq!(code, 0, "{target}");
    }
}

/// The agent in VM 1002 listens on 9002 (nginx, a real socket in its namespace) while the
/// config says 9001: the hop from the Portainer VM is refused, and the trace reads VM 1002's own
/// socket table (one `sh -c` through its transport: the VM has no steps of its own) to name the
/// port a process listens on instead, and the process (`ss -Hltnp` in the VM: nginx). Expected
/// text written from the fault.
#[test]
fn a_moved_agent_is_refused_and_the_trace_names_the_port_it_listens_on() {
    let lab = Lab::up(
        "m",
        Faults {
            agent_moved: true,
            ..Faults::default()
        },
    );
    let (report, code, _) = lab.trace("agent", &[]);
    assert_real_vantages(&lab, &report);
    assert_eq!(code, 1, "{}", not_ok(&report));
    let first = &report["first_divergence"];
    assert_eq!(first["hop"], "portainer-agent", "{}", not_ok(&report));
    assert_eq!(first["code"], "PD-TCP-001", "{first:#}");
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["hop"] == "portainer-agent" && f["code"] == "PD-TCP-001")
        .unwrap_or_else(|| panic!("{}", not_ok(&report)));
    let actual = f["actual"].as_str().unwrap();
    assert!(
        actual.contains("in vm:1002: nothing listens on :9001; a process (nginx) listens on :9002"),
        "{f:#}"
    );
    let want = format!(
        "vm:1002:/proc/net/tcp{{,6}}: listening on {0}:6333 (nginx), {0}:9002 (nginx)",
        AGENT.1
    );
    assert!(
        f["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str() == Some(want.as_str())),
        "{f:#}"
    );
}

/// Write the rest of the deployed tree as the platform's generators write it (Traefik's dynamic
/// file, the firewall files), from `show`, so that `drift` compares every artefact.
fn deploy_generated(lab: &Lab) {
    let show = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("show")
            .args(args)
            .arg("--config-dir")
            .arg(lab.path("etc"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    write(
        &lab.path("deployed/lxc-102/etc/traefik/dynamic/dynamic_conf.yml"),
        &show(&["routes"]),
    );
    for f in ["cluster", "1001", "1002"] {
        write(
            &lab.path(&format!("deployed/host/etc/pve/firewall/{f}.fw")),
            &show(&["firewall", "--file", f]),
        );
    }
}

/// Real nginx in LXC 101 includes a site whose `proxy_pass` goes to a port the generator never
/// wrote (nothing listens there): the gateway answers 502. With the deployed files, the trace
/// names the drifted upstream with the site's file and line (line 7 of the site this test
/// writes) and the config line the intended one comes from; `drift` lists the same drift on
/// its own, beside the one other difference this lab makes by hand (the CA record moved off
/// the generator's hard-coded 10.0.0.10).
#[test]
fn a_drifted_gateway_upstream_is_named_with_both_file_lines() {
    let lab = Lab::up(
        "u",
        Faults {
            gateway_upstream_drifted: true,
            ..Faults::default()
        },
    );
    deploy_generated(&lab);
    let deployed = lab.path("deployed").display().to_string();
    let drifted = format!("http://{}:{DRIFTED_ROUTER_PORT}", ROUTER.1);
    let (report, code, _) = lab.trace("qdrant", &["--deployed", &deployed]);
    assert_real_vantages(&lab, &report);
    assert_eq!(code, 1, "{}", not_ok(&report));
    let first = &report["first_divergence"];
    assert_eq!(first["hop"], "host-gateway", "{}", not_ok(&report));
    assert_eq!(first["code"], "PD-HTTP-005", "{first:#}");
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["hop"] == "host-gateway" && f["code"] == "PD-HTTP-005")
        .unwrap();
    let actual = f["actual"].as_str().unwrap();
    assert!(
        actual.contains(&format!(
            "proxies qdrant.{DOMAIN} to {drifted} (lxc:101 /etc/nginx/sites-enabled/gateway:7), the generator writes http://{}:80",
            ROUTER.1
        )),
        "{actual}"
    );
    let evidence = f["evidence"].to_string();
    assert!(
        evidence.contains("etc/phoenix_lxc_configs.json:")
            && evidence.contains("/lxc_configs/102/network_config/ip"),
        "{evidence}"
    );

    let out = Command::new(BIN)
        .args(["drift", "--format", "json", "--deployed", &deployed])
        .arg("--config-dir")
        .arg(lab.path("etc"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let got: Vec<(String, String)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["subjects"][0].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("PD-DRIFT-001".to_string(), format!("ca.{DOMAIN}")),
            ("PD-DRIFT-003".to_string(), format!("nginx.{DOMAIN}")),
            // the namespaces' nginx serves this test's PKI files, not the manifest's cert_path
            // and key_path as LXC 101 mounts them (/etc/nginx/ssl/...): both paths drift
            ("PD-DRIFT-008".to_string(), format!("nginx.{DOMAIN}")),
            ("PD-DRIFT-008".to_string(), format!("nginx.{DOMAIN}")),
        ],
        "{v:#}"
    );
    let gw = v["findings"][1].to_string();
    assert!(
        gw.contains(&format!(
            "/etc/nginx/sites-enabled/gateway:7: proxy_pass {drifted};"
        )),
        "{gw}"
    );
    assert!(gw.contains("looks like a hand edit"), "{gw}");
}
