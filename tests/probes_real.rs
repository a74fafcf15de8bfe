//! The probes and the engine against real peers on loopback: dnsmasq, nginx, haproxy,
//! nftables inside a private network namespace, and hostile in-process peers.
//! Every peer is a foreground child started here and killed on drop; each test uses its own
//! 127.0.x.y addresses so tests run in parallel.

use phoenix_doctor::observe::{Evidence, Observation, Outcome};
use phoenix_doctor::plan::{Identity, ProbeSpec, Step, Trust, VantageRef};
use phoenix_doctor::probe::{self, ProbeCtx, SystemFiles};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// harness

struct Peer {
    name: String,
    child: Child,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    fn assert_alive(&mut self) {
        if let Ok(Some(st)) = self.child.try_wait() {
            panic!("{} exited early: {st}", self.name);
        }
    }
}

fn need(bin: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{bin}` is not installed: the real-peer tests need it (.ci/run installs it)"
    );
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The PKI (openssl-made, step-ca-like), generated once per test binary.
fn pki() -> &'static Path {
    static PKI: OnceLock<PathBuf> = OnceLock::new();
    PKI.get_or_init(|| {
        need("openssl");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("probes_real_pki");
        let _ = std::fs::remove_dir_all(&dir);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pki/gen_certs.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gen_certs.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // a client certificate used as a server certificate: wrong key usage
        let chain = [dir.join("client.crt"), dir.join("int.crt")]
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect::<String>();
        std::fs::write(dir.join("client.chain.pem"), chain).unwrap();
        dir
    })
}

fn p(name: &str) -> PathBuf {
    pki().join(name)
}

fn wait_tcp(addrs: &[SocketAddr], peer: &mut Peer) {
    let t = Instant::now();
    for a in addrs {
        loop {
            if std::net::TcpStream::connect_timeout(a, Duration::from_millis(50)).is_ok() {
                break;
            }
            peer.assert_alive();
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{} not listening on {a}",
                peer.name
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Start nginx with these `server { }` blocks; wait until `ready` accept connections.
fn nginx(servers: &str, ready: &[SocketAddr]) -> Peer {
    need("nginx");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("tmp")).unwrap();
    let conf = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\nevents {{ worker_connections 256; }}\n\
         http {{\n access_log {d}/access.log;\n client_body_temp_path {d}/tmp/body;\n proxy_temp_path {d}/tmp/proxy;\n\
         fastcgi_temp_path {d}/tmp/fastcgi;\n uwsgi_temp_path {d}/tmp/uwsgi;\n scgi_temp_path {d}/tmp/scgi;\n\
         default_type text/plain;\n ssl_session_cache off;\n ssl_protocols TLSv1.2 TLSv1.3;\n{servers}\n}}\n",
        d = d.display()
    )
    .replace("@PKI@", &pki().display().to_string());
    std::fs::write(d.join("nginx.conf"), conf).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(d)
        .arg("-c")
        .arg(d.join("nginx.conf"))
        .arg("-e")
        .arg(d.join("error.log"))
        .args(["-g", "daemon off; master_process off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning nginx");
    let mut peer = Peer {
        name: "nginx".into(),
        child,
        _dir: Some(dir),
    };
    wait_tcp(ready, &mut peer);
    peer
}

/// Start dnsmasq on `listen:port` with these config lines (`@DIR@` = its own dir, where
/// `files` are written first); wait until it answers.
fn dnsmasq(listen: &str, port: u16, lines: &str, files: &[(&str, String)]) -> Peer {
    need("dnsmasq");
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let conf = dir.path().join("dnsmasq.conf");
    std::fs::write(
        &conf,
        lines.replace("@DIR@", &dir.path().display().to_string()),
    )
    .unwrap();
    let child = Command::new("dnsmasq")
        .arg("-k")
        .arg(format!("--conf-file={}", conf.display()))
        .args([
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--user=",
            "--group=",
            "--pid-file=",
        ])
        .arg(format!("--listen-address={listen}"))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning dnsmasq");
    let mut peer = Peer {
        name: "dnsmasq".into(),
        child,
        _dir: Some(dir),
    };
    // ready when it answers any query
    let q = b"\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01x\x00\x00\x01\x00\x01";
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    let t = Instant::now();
    loop {
        let _ = s.send_to(q, (listen, port));
        let mut b = [0u8; 512];
        if s.recv(&mut b).is_ok() {
            break;
        }
        peer.assert_alive();
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "dnsmasq did not answer"
        );
    }
    peer
}

fn step(id: &str, spec: ProbeSpec) -> Step {
    Step {
        id: id.into(),
        hop: "h".into(),
        from: VantageRef::Host,
        to: "peer".into(),
        layer: spec.layer(),
        probe: spec,
        expect: String::new(),
        provenance: vec![],
        depends_on: vec![],
        through: vec![],
    }
}

fn ctx(ms: u64) -> ProbeCtx {
    ProbeCtx {
        timeout: Duration::from_millis(ms),
        ..ProbeCtx::default()
    }
}

async fn run(c: &ProbeCtx, spec: ProbeSpec) -> Observation {
    probe::run(c, &step("s", spec)).await
}

/// The reason's text (leaked: a few bytes per assertion in a test process).
fn reason(o: &Observation) -> &'static str {
    Box::leak(
        o.reason
            .map(|r| r.to_string())
            .unwrap_or_default()
            .into_boxed_str(),
    )
}

// ---------------------------------------------------------------------------------------------
// DNS

fn dns_spec(name: &str, server: &str, expect: &[&str]) -> ProbeSpec {
    ProbeSpec::Dns {
        name: name.into(),
        server: sa(server),
        expect: expect.iter().map(|e| ip(e)).collect(),
        system: true,
    }
}

fn dns_ev(o: &Observation) -> &phoenix_doctor::observe::DnsEvidence {
    match &o.evidence {
        Evidence::Dns(d) => d,
        e => panic!("expected DNS evidence, got {e:?}"),
    }
}

const ZONE: &str = "local=/internal.example.test/\nlocal-ttl=300\n\
host-record=gw.internal.example.test,127.0.0.10\n\
host-record=v6only.internal.example.test,::1\n\
address=/wrongip.internal.example.test/127.0.0.99\n\
addn-hosts=@DIR@/many.hosts\n";

fn dns_peer(listen: &str, port: u16) -> Peer {
    let many: String = (1..=60)
        .map(|i| format!("127.0.31.{i} many.internal.example.test\n"))
        .collect();
    dnsmasq(listen, port, ZONE, &[("many.hosts", many)])
}

#[tokio::test]
async fn dns_answers_and_failures_from_dnsmasq() {
    let _d = dns_peer("127.0.30.1", 5301);
    let c = ctx(800);
    let srv = "127.0.30.1:5301";

    let o = run(
        &c,
        dns_spec("gw.internal.example.test", srv, &["127.0.0.10"]),
    )
    .await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    let d = dns_ev(&o);
    assert_eq!(d.rcode.map(|r| r.to_string()).as_deref(), Some("NOERROR"));
    assert_eq!(d.answers, vec![ip("127.0.0.10")]);
    assert_eq!(d.ttl, Some(300));
    assert_eq!(d.protocol.map(|p| p.as_str()), Some("udp"));

    let o = run(&c, dns_spec("nosuch.internal.example.test", srv, &[])).await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "nxdomain"),
        "{o:?}"
    );
    assert_eq!(
        dns_ev(&o).rcode.map(|r| r.to_string()).as_deref(),
        Some("NXDOMAIN")
    );

    let o = run(&c, dns_spec("example.com", srv, &[])).await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "refused"),
        "{o:?}"
    );
    assert_eq!(
        dns_ev(&o).rcode.map(|r| r.to_string()).as_deref(),
        Some("REFUSED")
    );

    let o = run(&c, dns_spec("v6only.internal.example.test", srv, &[])).await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "nodata"),
        "{o:?}"
    );

    let o = run(
        &c,
        dns_spec("wrongip.internal.example.test", srv, &["127.0.0.10"]),
    )
    .await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "wrong-answer"),
        "{o:?}"
    );
    assert!(o.message.contains("127.0.0.99"), "{}", o.message);

    // 60 A records do not fit a 512-byte UDP answer: truncated, retried over TCP
    let o = run(&c, dns_spec("many.internal.example.test", srv, &[])).await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    let d = dns_ev(&o);
    assert_eq!(d.protocol.map(|p| p.as_str()), Some("tcp"));
    assert_eq!(d.answers.len(), 60);
}

#[tokio::test]
async fn dns_silent_server_times_out_and_closed_port_is_refused() {
    // a UDP socket that never answers: the query times out
    let silent = UdpSocket::bind("127.0.30.2:5302").unwrap();
    let c = ctx(400);
    let t = Instant::now();
    let o = run(
        &c,
        dns_spec("gw.internal.example.test", "127.0.30.2:5302", &[]),
    )
    .await;
    let took = t.elapsed();
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::TimedOut, "timeout"),
        "{o:?}"
    );
    assert!(took < Duration::from_millis(4400), "hung: took {took:?}");
    drop(silent);
    // nothing bound: ICMP port-unreachable comes back as a refusal
    let o = run(
        &c,
        dns_spec("gw.internal.example.test", "127.0.30.2:5303", &[]),
    )
    .await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "port-unreachable"),
        "{o:?}"
    );
}

#[tokio::test]
async fn dns_hosts_file_override_is_evidence() {
    let _d = dns_peer("127.0.30.3", 5304);
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost\n# stale pin\n127.0.0.77 gw.internal.example.test gw\n",
    )
    .unwrap();
    std::fs::write(
        &resolv,
        "nameserver 127.0.30.3\nsearch internal.example.test\n",
    )
    .unwrap();
    let c = ProbeCtx {
        timeout: Duration::from_millis(800),
        system: SystemFiles {
            hosts_file: hosts.clone(),
            resolv_conf: resolv.clone(),
        },
        ..ProbeCtx::default()
    };
    let o = run(
        &c,
        dns_spec(
            "gw.internal.example.test",
            "127.0.30.3:5304",
            &["127.0.0.10"],
        ),
    )
    .await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "hosts-override"),
        "{o:?}"
    );
    let d = dns_ev(&o);
    assert_eq!(d.answers, vec![ip("127.0.0.10")]);
    assert_eq!(d.hosts_entries.len(), 1);
    assert_eq!(d.hosts_entries[0].line, 3);
    assert_eq!(d.hosts_entries[0].file, hosts.display().to_string());
    assert_eq!(d.effective, vec![ip("127.0.0.77")]);
    assert_eq!(d.effective_source, "hosts");
    let rc = d.resolv_conf.as_ref().unwrap();
    assert_eq!(rc.nameservers, vec![ip("127.0.30.3")]);
    assert_eq!(rc.search, vec!["internal.example.test"]);
    // without an expectation the override is still shown, but nothing failed
    let o = run(
        &c,
        dns_spec("gw.internal.example.test", "127.0.30.3:5304", &[]),
    )
    .await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert!(o.message.contains("hosts file wins"), "{}", o.message);
    // a name not in the hosts file: the effective answer comes from DNS
    let o = run(
        &c,
        dns_spec("wrongip.internal.example.test", "127.0.30.3:5304", &[]),
    )
    .await;
    assert_eq!(dns_ev(&o).effective_source, "dns");
}

/// The vantage's resolv.conf names a silent nameserver first (a socket on 127.0.41.8:53 that
/// never answers), then a second dnsmasq on 127.0.41.10:53 that is not the platform's (it maps
/// the name to 127.0.0.11; the intended dnsmasq on 127.0.41.9 says 127.0.0.10), with
/// `options timeout:1 attempts:1`. Written from that definition: a program there waits one
/// second, then gets the second dnsmasq's 127.0.0.11, which is the effective answer; the
/// step's 4 s would not be enough with the default 5 s timeout; the resolv.conf naming other
/// nameservers than the intended one is its own finding (resolver-differs, line 2).
#[tokio::test]
async fn dns_effective_answer_follows_resolv_conf_order_and_timeout() {
    let zone = |ip: &str| {
        format!("local=/internal.example.test/\nhost-record=gw.internal.example.test,{ip}\n")
    };
    let _intended = dnsmasq("127.0.41.9", 53, &zone("127.0.0.10"), &[]);
    let _other = dnsmasq("127.0.41.10", 53, &zone("127.0.0.11"), &[]);
    let _silent = UdpSocket::bind("127.0.41.8:53").expect("binding the silent nameserver");
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    std::fs::write(
        &resolv,
        "options timeout:1 attempts:1\nnameserver 127.0.41.8\nnameserver 127.0.41.10\n",
    )
    .unwrap();
    let c = ProbeCtx {
        timeout: Duration::from_millis(4000),
        system: SystemFiles {
            hosts_file: hosts,
            resolv_conf: resolv.clone(),
        },
        scope: Some(phoenix_doctor::engine::Scope {
            allowed: vec!["127.0.0.0/8".parse().unwrap()],
        }),
        ..ProbeCtx::default()
    };
    let t = Instant::now();
    let o = run(
        &c,
        dns_spec("gw.internal.example.test", "127.0.41.9:53", &["127.0.0.10"]),
    )
    .await;
    let took = t.elapsed();
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "resolver-differs"),
        "{o:?}"
    );
    let d = dns_ev(&o);
    assert_eq!(
        d.answers,
        vec![ip("127.0.0.10")],
        "the intended nameserver's"
    );
    assert_eq!(d.effective, vec![ip("127.0.0.11")], "the second dnsmasq's");
    assert_eq!(d.effective_source, "dns via 127.0.41.10:53");
    assert!(
        o.message.contains(&format!(
            "{}:2 names nameserver 127.0.41.8",
            resolv.display()
        )),
        "{}",
        o.message
    );
    assert!(
        o.message.contains("gets 127.0.0.11 from 127.0.41.10:53"),
        "{}",
        o.message
    );
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(2500),
        "the answer comes after the first nameserver's 1 s timeout: {took:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// TLS chain

fn tls_spec(addr: &str, sni: &str, trust: Trust) -> ProbeSpec {
    ProbeSpec::Tls {
        addr: sa(addr),
        sni: sni.into(),
        trust,
    }
}

fn ca(name: &str) -> Trust {
    Trust::Ca { file: p(name) }
}

fn tls_ev(o: &Observation) -> &phoenix_doctor::observe::TlsEvidence {
    match &o.evidence {
        Evidence::Tls(t) => t,
        Evidence::Mtls(m) => &m.tls,
        Evidence::Http(h) => h.tls.as_ref().expect("tls evidence in http"),
        e => panic!("expected TLS evidence, got {e:?}"),
    }
}

fn tls_server(addr: &str, chain: &str, key: &str, extra: &str) -> String {
    format!(
        "server {{ listen {addr} ssl; ssl_certificate @PKI@/{chain}; ssl_certificate_key @PKI@/{key}; {extra} return 200 \"ok\\n\"; }}\n"
    )
}

fn openssl_fingerprint(pem: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(pem)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    s.trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "")
        .to_lowercase()
}

const PORTAINER: &str = "portainer.internal.example.test";

#[tokio::test]
async fn tls_chain_reasons_against_nginx() {
    let servers = [
        tls_server("127.0.40.1:8443", "gw.chain.pem", "gw.key", ""),
        tls_server(
            "127.0.40.2:8443",
            "portainer.leafonly.pem",
            "portainer.key",
            "",
        ),
        tls_server("127.0.40.3:8443", "expired.chain.pem", "expired.key", ""),
        tls_server("127.0.40.4:8443", "wrongsan.chain.pem", "wrongsan.key", ""),
        tls_server("127.0.40.5:8443", "selfsigned.crt", "selfsigned.key", ""),
        tls_server(
            "127.0.40.6:8443",
            "otherleaf.chain.pem",
            "otherleaf.key",
            "",
        ),
        tls_server("127.0.40.7:8443", "notyet.chain.pem", "notyet.key", ""),
        tls_server("127.0.40.8:8443", "client.chain.pem", "client.key", ""),
        tls_server(
            "127.0.40.9:8443",
            "gw.chain.pem",
            "gw.key",
            "ssl_protocols TLSv1.2;",
        ),
    ]
    .concat();
    let ready: Vec<SocketAddr> = (1..=9).map(|i| sa(&format!("127.0.40.{i}:8443"))).collect();
    let _n = nginx(&servers, &ready);
    let c = ctx(800);
    let gw = "gw.internal.example.test";

    // good chain: root -> intermediate -> ECDSA leaf, served with the intermediate
    let o = run(&c, tls_spec("127.0.40.1:8443", gw, ca("root.crt"))).await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    let t = tls_ev(&o);
    assert!(t.verified);
    assert_eq!(t.protocol, "TLSv1.3");
    assert!(t.cipher.starts_with("TLS13_"), "{}", t.cipher);
    assert_eq!(
        t.alpn.as_deref(),
        Some("http/1.1"),
        "nginx without http2 picks http/1.1"
    );
    assert_eq!(t.chain.len(), 2);
    assert_eq!(t.chain[0].key_type, "ECDSA P-256");
    assert!(!t.chain[0].is_ca);
    assert!(t.chain[1].is_ca);
    assert!(t.chain[0].subject.contains(gw));
    assert!(t.chain[0].issuer.contains("Lab Intermediate CA"));
    assert!(t.chain[0].dns_sans.contains(&gw.to_string()));
    assert!(t.chain[0].ip_sans.contains(&ip("127.0.0.10")));
    assert_eq!(t.chain[0].sha256, openssl_fingerprint(&p("gw.crt")));
    assert_eq!(t.chain[1].sha256, openssl_fingerprint(&p("int.crt")));
    let frac = t.remaining_fraction.unwrap();
    assert!(frac > 0.95 && frac <= 1.0, "{frac}");
    assert!(t.remaining_secs.unwrap() > 360 * 86400);
    assert!(o.timings.connect_ms.is_some() && o.timings.tls_ms.is_some());

    // an IP literal as the name: no SNI, checked against the IP SAN
    let o = run(
        &c,
        tls_spec("127.0.40.1:8443", "127.0.0.10", ca("root.crt")),
    )
    .await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    let o = run(
        &c,
        tls_spec("127.0.40.1:8443", "127.0.0.11", ca("root.crt")),
    )
    .await;
    assert_eq!(reason(&o), "name-mismatch", "{o:?}");

    // TLS 1.2 only
    let o = run(&c, tls_spec("127.0.40.9:8443", gw, ca("root.crt"))).await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert_eq!(tls_ev(&o).protocol, "TLSv1.2");

    // leaf without its intermediate: the bundle's intermediate completes it
    let o = run(
        &c,
        tls_spec("127.0.40.2:8443", PORTAINER, ca("ca-bundle.pem")),
    )
    .await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "intermediate-not-served"),
        "{o:?}"
    );
    assert_eq!(tls_ev(&o).chain.len(), 1);
    // with the root alone it is an unknown issuer, with a hint
    let o = run(&c, tls_spec("127.0.40.2:8443", PORTAINER, ca("root.crt"))).await;
    assert_eq!(reason(&o), "unknown-issuer", "{o:?}");
    assert!(
        tls_ev(&o).verify_detail.contains("only the leaf"),
        "{}",
        tls_ev(&o).verify_detail
    );

    let o = run(&c, tls_spec("127.0.40.3:8443", PORTAINER, ca("root.crt"))).await;
    assert_eq!(reason(&o), "expired", "{o:?}");
    assert!(
        tls_ev(&o).verify_detail.contains("2020-02-01"),
        "{}",
        tls_ev(&o).verify_detail
    );
    assert!(tls_ev(&o).remaining_secs.unwrap() < 0);
    assert_eq!(tls_ev(&o).remaining_fraction, Some(0.0));

    let o = run(&c, tls_spec("127.0.40.4:8443", PORTAINER, ca("root.crt"))).await;
    assert_eq!(reason(&o), "name-mismatch", "{o:?}");
    assert!(tls_ev(&o)
        .verify_detail
        .contains("wrong.internal.example.test"));
    assert_eq!(o.phase.map(|x| x.as_str()), Some("verify"));

    let o = run(&c, tls_spec("127.0.40.5:8443", PORTAINER, ca("root.crt"))).await;
    assert_eq!(reason(&o), "self-signed", "{o:?}");

    let o = run(&c, tls_spec("127.0.40.6:8443", PORTAINER, ca("root.crt"))).await;
    assert_eq!(reason(&o), "unknown-issuer", "{o:?}");
    assert!(
        tls_ev(&o).verify_detail.contains("Other Root CA"),
        "{}",
        tls_ev(&o).verify_detail
    );

    let o = run(&c, tls_spec("127.0.40.7:8443", PORTAINER, ca("root.crt"))).await;
    assert_eq!(reason(&o), "not-yet-valid", "{o:?}");
    assert!(tls_ev(&o).verify_detail.contains("2099-01-01"));

    let o = run(
        &c,
        tls_spec("127.0.40.8:8443", "lab-client", ca("root.crt")),
    )
    .await;
    assert_eq!(reason(&o), "wrong-key-usage", "{o:?}");

    // a documented self-signed server: the handshake must work and the leaf must name us
    let pinned = |names: &[&str]| Trust::SelfSigned {
        names: names.iter().map(|n| n.to_string()).collect(),
    };
    let o = run(
        &c,
        tls_spec("127.0.40.5:8443", PORTAINER, pinned(&[PORTAINER])),
    )
    .await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    let o = run(
        &c,
        tls_spec("127.0.40.5:8443", PORTAINER, pinned(&["127.0.0.12"])),
    )
    .await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    let o = run(
        &c,
        tls_spec(
            "127.0.40.5:8443",
            PORTAINER,
            pinned(&["agent.internal.example.test"]),
        ),
    )
    .await;
    assert_eq!(reason(&o), "pin-mismatch", "{o:?}");

    // no trust given: the chain is recorded but not judged
    let o = run(&c, tls_spec("127.0.40.3:8443", PORTAINER, Trust::None)).await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert!(!tls_ev(&o).verified);
}

#[test]
fn tls_verify_is_pure_over_der_chain_roots_name_and_time() {
    use rustls::pki_types::UnixTime;
    let certs = |f: &str| probe::tls::read_certs(&p(f)).unwrap();
    let chain = certs("gw.chain.pem");
    let roots = certs("root.crt");
    let at = |secs: u64| UnixTime::since_unix_epoch(Duration::from_secs(secs));
    let now = UnixTime::now();
    assert!(probe::tls_verify(&chain, &roots, "gw.internal.example.test", now).is_ok());
    // the same chain, ten years on: expired
    let later = at(now.as_secs() + 3 * 365 * 86400);
    assert_eq!(
        probe::tls_verify(&chain, &roots, "gw.internal.example.test", later)
            .unwrap_err()
            .reason,
        "expired"
    );
    // and long before: not yet valid
    assert_eq!(
        probe::tls_verify(
            &chain,
            &roots,
            "gw.internal.example.test",
            at(1_000_000_000)
        )
        .unwrap_err()
        .reason,
        "not-yet-valid"
    );
    let e = probe::tls_verify(&chain, &roots, "x.internal.example.test", now).unwrap_err();
    assert_eq!(e.reason, "name-mismatch");
    assert!(
        e.detail.contains("gw.internal.example.test") && e.detail.contains("127.0.0.10"),
        "{}",
        e.detail
    );
    assert_eq!(
        probe::tls_verify(
            &chain,
            &certs("otherroot.crt"),
            "gw.internal.example.test",
            now
        )
        .unwrap_err()
        .reason,
        "unknown-issuer"
    );
    assert_eq!(
        probe::tls_verify(&[], &roots, "gw", now)
            .unwrap_err()
            .reason,
        "no-certificate"
    );
}

// ---------------------------------------------------------------------------------------------
// mTLS

fn mtls_spec(addr: &str, sni: &str, id: Option<(&str, &str)>, require: bool) -> ProbeSpec {
    ProbeSpec::Mtls {
        addr: sa(addr),
        sni: sni.into(),
        trust: ca("root.crt"),
        identity: id.map(|(c, k)| Identity {
            cert: p(c),
            key: p(k),
        }),
        require,
    }
}

fn mtls_ev(o: &Observation) -> &phoenix_doctor::observe::MtlsEvidence {
    match &o.evidence {
        Evidence::Mtls(m) => m,
        e => panic!("expected mTLS evidence, got {e:?}"),
    }
}

const CLIENT: Option<(&str, &str)> = Some(("client.crt", "client.key"));
const OTHER_CLIENT: Option<(&str, &str)> = Some(("client-other.crt", "client-other.key"));

#[tokio::test]
async fn mtls_nginx_answers_http_400_after_the_handshake() {
    let mtls = "ssl_client_certificate @PKI@/ca-bundle.pem; ssl_verify_depth 2;";
    let servers = [
        tls_server(
            "127.0.41.1:8443",
            "portainer.chain.pem",
            "portainer.key",
            &format!("{mtls} ssl_verify_client on;"),
        ),
        tls_server(
            "127.0.41.2:8443",
            "portainer.chain.pem",
            "portainer.key",
            &format!("{mtls} ssl_verify_client optional;"),
        ),
        tls_server(
            "127.0.41.3:8443",
            "portainer.chain.pem",
            "portainer.key",
            "",
        ),
    ]
    .concat();
    let _n = nginx(
        &servers,
        &[
            sa("127.0.41.1:8443"),
            sa("127.0.41.2:8443"),
            sa("127.0.41.3:8443"),
        ],
    );
    let c = ctx(800);

    let o = run(&c, mtls_spec("127.0.41.1:8443", PORTAINER, CLIENT, true)).await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    let m = mtls_ev(&o);
    assert!(m.requested);
    assert!(
        m.ca_hints.iter().any(|h| h.contains("Lab Root CA")),
        "{:?}",
        m.ca_hints
    );
    assert_eq!(
        m.without_cert.as_ref().map(|w| w.to_string()).as_deref(),
        Some("http-400")
    );
    assert_eq!(
        m.with_cert.as_ref().map(|x| x.to_string()).as_deref(),
        Some("accepted")
    );
    assert_eq!(m.verdict, "required-accepting");
    assert!(m.tls.verified);

    let o = run(
        &c,
        mtls_spec("127.0.41.1:8443", PORTAINER, OTHER_CLIENT, true),
    )
    .await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "client-cert-rejected"),
        "{o:?}"
    );
    assert_eq!(mtls_ev(&o).verdict, "required-rejecting");
    assert_eq!(
        mtls_ev(&o)
            .with_cert
            .as_ref()
            .map(|x| x.to_string())
            .as_deref(),
        Some("http-400")
    );

    let o = run(&c, mtls_spec("127.0.41.1:8443", PORTAINER, None, true)).await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert_eq!(mtls_ev(&o).verdict, "required");

    let o = run(&c, mtls_spec("127.0.41.2:8443", PORTAINER, CLIENT, true)).await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "client-cert-optional"),
        "{o:?}"
    );
    assert_eq!(mtls_ev(&o).verdict, "optional");

    let o = run(&c, mtls_spec("127.0.41.3:8443", PORTAINER, None, true)).await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "client-cert-not-requested"),
        "{o:?}"
    );
    assert_eq!(mtls_ev(&o).verdict, "not-requested");
    assert!(!mtls_ev(&o).requested);
    let o = run(&c, mtls_spec("127.0.41.3:8443", PORTAINER, None, false)).await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
}

fn haproxy(binds: &[(&str, &str)]) -> Peer {
    need("haproxy");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pem: String = ["portainer.chain.pem", "portainer.key"]
        .iter()
        .map(|f| std::fs::read_to_string(p(f)).unwrap())
        .collect();
    std::fs::write(d.join("portainer.pem"), pem).unwrap();
    let mut cfg = String::from(
        "global\n    log stderr format short local0 err\ndefaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n    timeout server 5s\n",
    );
    for (i, (addr, opts)) in binds.iter().enumerate() {
        cfg.push_str(&format!(
            "frontend f{i}\n    bind {addr} ssl crt {pem} ca-file {ca} verify required {opts}\n    http-request return status 200 content-type text/plain string ok\n",
            pem = d.join("portainer.pem").display(),
            ca = p("ca-bundle.pem").display()
        ));
    }
    std::fs::write(d.join("haproxy.cfg"), cfg).unwrap();
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(d.join("haproxy.cfg"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning haproxy");
    let mut peer = Peer {
        name: "haproxy".into(),
        child,
        _dir: Some(dir),
    };
    let ready: Vec<SocketAddr> = binds.iter().map(|(a, _)| sa(a)).collect();
    wait_tcp(&ready, &mut peer);
    peer
}

#[tokio::test]
async fn mtls_alerts_from_haproxy_under_tls13_and_tls12() {
    let _h = haproxy(&[
        ("127.0.42.1:8443", "ssl-min-ver TLSv1.3"),
        ("127.0.42.2:8443", "ssl-max-ver TLSv1.2"),
    ]);
    let c = ctx(800);
    // TLS 1.3: the handshake completes; the rejection is an alert on the first read
    let o = run(&c, mtls_spec("127.0.42.1:8443", PORTAINER, CLIENT, true)).await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    let m = mtls_ev(&o);
    assert_eq!(m.tls.protocol, "TLSv1.3");
    assert_eq!(
        m.without_cert.as_ref().map(|w| w.to_string()).as_deref(),
        Some("alert:certificate-required")
    );
    assert_eq!(m.verdict, "required-accepting");
    let o = run(
        &c,
        mtls_spec("127.0.42.1:8443", PORTAINER, OTHER_CLIENT, true),
    )
    .await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "client-cert-rejected"),
        "{o:?}"
    );
    assert_eq!(
        mtls_ev(&o)
            .with_cert
            .as_ref()
            .map(|x| x.to_string())
            .as_deref(),
        Some("alert:unknown-ca")
    );
    assert_eq!(mtls_ev(&o).verdict, "required-rejecting");

    // TLS 1.2: the handshake itself fails
    let o = run(&c, mtls_spec("127.0.42.2:8443", PORTAINER, CLIENT, true)).await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    let m = mtls_ev(&o);
    assert_eq!(
        m.without_cert.as_ref().map(|w| w.to_string()).as_deref(),
        Some("alert:handshake-failure")
    );
    assert_eq!(m.tls.protocol, "TLSv1.2");
    assert_eq!(m.verdict, "required-accepting");
    assert!(
        !m.tls.chain.is_empty(),
        "the served chain is recorded even though the handshake failed"
    );
    let o = run(
        &c,
        mtls_spec("127.0.42.2:8443", PORTAINER, OTHER_CLIENT, true),
    )
    .await;
    assert_eq!(
        mtls_ev(&o)
            .with_cert
            .as_ref()
            .map(|x| x.to_string())
            .as_deref(),
        Some("alert:unknown-ca"),
        "{o:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// hostile peers: each ends within its timeout with a classified outcome

async fn hostile(addr: &str, behaviour: &'static str) -> tokio::task::JoinHandle<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            match behaviour {
                "silent" => held.push(s),
                "garbage" => {
                    let mut b = [0u8; 1024];
                    let _ = s.read(&mut b).await;
                    let _ = s
                        .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    held.push(s);
                }
                "reset" => {
                    let mut b = [0u8; 1024];
                    let _ = s.read(&mut b).await;
                    let _ = s.set_zero_linger();
                    drop(s);
                }
                "close" => {
                    // Read the ClientHello, then send FIN and keep the socket: closing with
                    // unread data would make the kernel send RST instead (a different case).
                    let mut b = [0u8; 4096];
                    let _ = s.read(&mut b).await;
                    let _ = s.shutdown().await;
                    held.push(s);
                }
                // Traefik's answers carry no Server header
                "traefik-500" | "traefik-404" => {
                    let mut b = [0u8; 1024];
                    let _ = s.read(&mut b).await;
                    let body = if behaviour == "traefik-500" {
                        "Internal Server Error"
                    } else {
                        "404 page not found\n"
                    };
                    let status = if behaviour == "traefik-500" {
                        "500 Internal Server Error"
                    } else {
                        "404 Not Found"
                    };
                    let r = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(r.as_bytes()).await;
                }
                _ => unreachable!(),
            }
        }
    })
}

async fn huge_chain_server(addr: &str) -> tokio::task::JoinHandle<()> {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck = rcgen::generate_simple_self_signed(vec!["huge.example.test".to_string()]).unwrap();
    let leaf = ck.cert.der().clone();
    let chain: Vec<_> = std::iter::repeat_n(leaf, 200).collect();
    let total: usize = chain.iter().map(|c| c.len()).sum();
    assert!(
        total > 64 * 1024,
        "the chain must exceed 64 KiB, is {total}"
    );
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let cfg = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let a = acceptor.clone();
            tokio::spawn(async move {
                let _ = a.accept(s).await;
            });
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_end_classified_within_the_timeout() {
    let servers = [
        hostile("127.0.43.1:9443", "silent").await,
        hostile("127.0.43.2:9443", "garbage").await,
        hostile("127.0.43.3:9443", "reset").await,
        hostile("127.0.43.4:9443", "close").await,
        huge_chain_server("127.0.43.5:9443").await,
    ];
    let timeout = 400;
    let c = ctx(timeout);
    // generous: proves "no hang" on a loaded machine, not a latency target
    let limit = Duration::from_millis(timeout + 4000);
    let cases = [
        ("127.0.43.1:9443", Outcome::TimedOut, "handshake-timeout"),
        ("127.0.43.2:9443", Outcome::Failed, "not-tls"),
        ("127.0.43.3:9443", Outcome::Failed, "reset"),
        ("127.0.43.4:9443", Outcome::Failed, "peer-closed"),
        ("127.0.43.5:9443", Outcome::Failed, "message-too-large"),
    ];
    for (addr, outcome, why) in cases {
        let t = Instant::now();
        let o = run(&c, tls_spec(addr, "huge.example.test", Trust::None)).await;
        assert!(t.elapsed() < limit, "{addr}: took {:?}", t.elapsed());
        assert_eq!((o.outcome, reason(&o)), (outcome, why), "{addr}: {o:?}");
        assert_eq!(o.phase.map(|x| x.as_str()), Some("handshake"));
        // the mTLS probe meets the same peers the same way
        let t = Instant::now();
        let o = run(&c, mtls_spec(addr, "huge.example.test", None, true)).await;
        assert!(t.elapsed() < limit, "{addr} mtls: took {:?}", t.elapsed());
        assert_eq!(o.outcome, outcome, "{addr} mtls: {o:?}");
    }
    // plain HTTP to a silent peer: no first byte before the timeout
    let t = Instant::now();
    let o = run(
        &c,
        ProbeSpec::Http {
            url: "http://127.0.43.1:9443/".into(),
            connect: sa("127.0.43.1:9443"),
            trust: None,
            identity: None,
            expect_status: vec![],
            expect_body: None,
        },
    )
    .await;
    assert!(t.elapsed() < limit, "http: took {:?}", t.elapsed());
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::TimedOut, "timeout"),
        "{o:?}"
    );
    // garbage instead of an HTTP answer
    let o = run(
        &c,
        ProbeSpec::Http {
            url: "https://127.0.43.2:9443/".into(),
            connect: sa("127.0.43.2:9443"),
            trust: None,
            identity: None,
            expect_status: vec![],
            expect_body: None,
        },
    )
    .await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "not-tls"),
        "{o:?}"
    );
    for s in servers {
        s.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP through nginx

fn http_spec(
    url: &str,
    connect: &str,
    expect_status: &[u16],
    expect_body: Option<&str>,
) -> ProbeSpec {
    ProbeSpec::Http {
        url: url.into(),
        connect: sa(connect),
        trust: Some(ca("root.crt")),
        identity: None,
        expect_status: expect_status.to_vec(),
        expect_body: expect_body.map(str::to_string),
    }
}

fn http_ev(o: &Observation) -> &phoenix_doctor::observe::HttpEvidence {
    match &o.evidence {
        Evidence::Http(h) => h,
        e => panic!("expected HTTP evidence, got {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_status_body_and_proxy_meanings_through_nginx() {
    // a slow upstream: accepts, never answers
    let slow = hostile("127.0.44.2:9000", "silent").await;
    let servers = r#"
server {
    listen 127.0.44.1:8080;
    location = /ok { return 200 "hello phoenix\n"; }
    location = /dead { proxy_pass http://127.0.44.9:9; proxy_connect_timeout 300ms; }
    location = /slow { proxy_pass http://127.0.44.2:9000; proxy_read_timeout 300ms; }
    location = /no-route { return 404 "404 page not found\n"; }
    location / { return 404; }
}
server {
    listen 127.0.44.1:8443 ssl;
    ssl_certificate @PKI@/gw.chain.pem; ssl_certificate_key @PKI@/gw.key;
    location / { return 200 "secure\n"; }
}
"#;
    let _n = nginx(servers, &[sa("127.0.44.1:8080"), sa("127.0.44.1:8443")]);
    let c = ctx(2000);
    let base = "http://gw.internal.example.test:8080";
    let at = "127.0.44.1:8080";

    let o = run(&c, http_spec(&format!("{base}/ok"), at, &[], Some("hello"))).await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    let h = http_ev(&o);
    assert_eq!(h.status, Some(200));
    assert_eq!(h.body, "hello phoenix\n");
    assert!(h.server.as_deref().unwrap().starts_with("nginx"));
    assert_eq!(h.proxy_meaning, None);
    assert!(o.timings.connect_ms.is_some() && o.timings.first_byte_ms.is_some());
    assert!(o.timings.total_ms >= o.timings.first_byte_ms.unwrap());

    let o = run(&c, http_spec(&format!("{base}/dead"), at, &[], None)).await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "status-mismatch"),
        "{o:?}"
    );
    assert_eq!(http_ev(&o).status, Some(502));
    assert_eq!(
        http_ev(&o).proxy_meaning.map(|x| x.as_str()),
        Some("backend-refused")
    );

    let o = run(&c, http_spec(&format!("{base}/slow"), at, &[], None)).await;
    assert_eq!(http_ev(&o).status, Some(504), "{o:?}");
    assert_eq!(
        http_ev(&o).proxy_meaning.map(|x| x.as_str()),
        Some("backend-timeout")
    );

    let o = run(&c, http_spec(&format!("{base}/no-route"), at, &[], None)).await;
    assert_eq!(http_ev(&o).status, Some(404), "{o:?}");
    assert_eq!(
        http_ev(&o).proxy_meaning.map(|x| x.as_str()),
        Some("no-router")
    );
    // a plain nginx 404 is not Traefik's "no router"
    let o = run(
        &c,
        http_spec(&format!("{base}/elsewhere"), at, &[404], None),
    )
    .await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert_eq!(http_ev(&o).proxy_meaning, None);

    let o = run(
        &c,
        http_spec(&format!("{base}/ok"), at, &[], Some("goodbye")),
    )
    .await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "body-mismatch"),
        "{o:?}"
    );
    let o = run(&c, http_spec(&format!("{base}/ok"), at, &[204], None)).await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "status-mismatch"),
        "{o:?}"
    );

    // bodies are read up to the limit
    let small = ProbeCtx {
        body_limit: 5,
        ..ctx(2000)
    };
    let o = run(&small, http_spec(&format!("{base}/ok"), at, &[], None)).await;
    assert_eq!(http_ev(&o).body, "hello");

    // https: SNI and Host from the URL, the address from `connect`
    let o = run(
        &c,
        http_spec(
            "https://gw.internal.example.test:8443/",
            "127.0.44.1:8443",
            &[],
            Some("secure"),
        ),
    )
    .await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert!(tls_ev(&o).verified);
    assert!(o.timings.tls_ms.is_some());
    let o = run(
        &c,
        http_spec(
            "https://other.internal.example.test:8443/",
            "127.0.44.1:8443",
            &[],
            None,
        ),
    )
    .await;
    assert_eq!(
        (o.outcome, reason(&o), o.phase.map(|x| x.as_str())),
        (Outcome::Failed, "name-mismatch", Some("verify")),
        "{o:?}"
    );

    // nothing listening: the connect phase fails
    let o = run(
        &c,
        http_spec(&format!("{base}/ok"), "127.0.44.3:8080", &[], None),
    )
    .await;
    assert_eq!(
        (o.outcome, reason(&o), o.phase.map(|x| x.as_str())),
        (Outcome::Failed, "refused", Some("connect")),
        "{o:?}"
    );
    slow.abort();
}

// ---------------------------------------------------------------------------------------------
// TCP states under nftables, inside a private network namespace (only `lo` exists there)

#[test]
fn tcp_states_under_nftables_in_a_private_netns() {
    for b in ["unshare", "nft", "ip", "socat", "ss"] {
        need(b);
    }
    let bin = env!("CARGO_BIN_EXE_phoenix-doctor");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.nft");
    std::fs::write(
        &rules,
        "table inet probe_test {\n  chain input {\n    type filter hook input priority 0; policy accept;\n\
         ip daddr 127.0.50.1 tcp dport 7000 drop\n\
         ip daddr 127.0.50.2 tcp dport 7000 reject with tcp reset\n\
         ip daddr 127.0.50.3 tcp dport 7000 reject with icmp type host-unreachable\n\
         ip daddr 127.0.50.4 tcp dport 7000 reject with icmp type admin-prohibited\n\
         ip daddr 127.0.50.5 tcp dport 7000 reject with icmp type net-unreachable\n  }\n}\n",
    )
    .unwrap();
    let script = format!(
        "set -e; ip link set lo up; nft -f {rules}\n\
         socat TCP-LISTEN:7000,bind=127.0.50.6,reuseaddr,fork /dev/null & S=$!\n\
         for i in $(seq 100); do ss -ltn | grep -q '127.0.50.6:7000' && break; sleep 0.02; done\n\
         set +e\n\
         for a in 1 2 3 4 5 6; do {bin} probe tcp 127.0.50.$a:7000 --timeout 500ms --format json; echo \"@@rc=$?\"; done\n\
         kill $S; wait $S 2>/dev/null; true\n",
        rules = rules.display()
    );
    let out = Command::new("unshare")
        .args(["-rn", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "unshare failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parts: Vec<&str> = stdout.split("@@rc=").collect();
    assert_eq!(parts.len(), 7, "{stdout}");
    let mut seen = Vec::new();
    for (i, chunk) in parts[..6].iter().enumerate() {
        // each chunk: "<rc of the previous>\n{json}" (the first has no rc)
        let json = if i == 0 {
            *chunk
        } else {
            chunk.split_once('\n').unwrap().1
        };
        let rc: u8 = parts[i + 1].lines().next().unwrap().trim().parse().unwrap();
        let o: Observation = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
        let Evidence::Tcp(t) = &o.evidence else {
            panic!("{o:?}")
        };
        seen.push((
            t.addr.clone(),
            o.outcome,
            t.state.to_string(),
            o.reason.map(|r| r.to_string()),
            rc,
        ));
    }
    let want = [
        (
            "127.0.50.1:7000",
            Outcome::TimedOut,
            "filtered",
            Some("filtered"),
            1,
        ),
        (
            "127.0.50.2:7000",
            Outcome::Failed,
            "refused",
            Some("refused"),
            1,
        ),
        (
            "127.0.50.3:7000",
            Outcome::Failed,
            "unreachable",
            Some("unreachable"),
            1,
        ),
        (
            "127.0.50.4:7000",
            Outcome::Failed,
            "unreachable",
            Some("unreachable"),
            1,
        ),
        (
            "127.0.50.5:7000",
            Outcome::Failed,
            "unreachable",
            Some("net-unreachable"),
            1,
        ),
        ("127.0.50.6:7000", Outcome::Ok, "open", None, 0),
    ];
    for (got, w) in seen.iter().zip(want) {
        assert_eq!(
            (
                got.0.as_str(),
                got.1,
                got.2.as_str(),
                got.3.as_deref(),
                got.4
            ),
            w,
            "{stdout}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// the engine against real sockets

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_runs_real_steps_concurrently_with_dependencies() {
    use phoenix_doctor::engine::{execute, Scope, Settings};
    use phoenix_doctor::plan::Plan;
    let _open = tokio::net::TcpListener::bind("127.0.45.1:7100")
        .await
        .unwrap();
    let silent = hostile("127.0.45.2:7100", "silent").await;
    let mut steps = vec![
        step(
            "open.tcp",
            ProbeSpec::Tcp {
                addr: sa("127.0.45.1:7100"),
            },
        ),
        step(
            "closed.tcp",
            ProbeSpec::Tcp {
                addr: sa("127.0.45.3:7100"),
            },
        ),
        step(
            "after-open.tcp",
            ProbeSpec::Tcp {
                addr: sa("127.0.45.1:7100"),
            },
        ),
        step(
            "after-closed.tls",
            tls_spec("127.0.45.3:7100", "x", Trust::None),
        ),
        step(
            "outside.tcp",
            ProbeSpec::Tcp {
                addr: sa("127.0.46.1:7100"),
            },
        ),
    ];
    steps[2].depends_on = vec!["open.tcp".into()];
    steps[3].depends_on = vec!["closed.tcp".into()];
    let n_silent = 20;
    for i in 0..n_silent {
        steps.push(step(
            &format!("silent{i}.tls"),
            tls_spec("127.0.45.2:7100", "x", Trust::None),
        ));
    }
    let plan = Plan {
        target: "engine".into(),
        hops: vec![],
        steps,
    };
    // the floor for tls steps (docs/cli.md): a silent handshake at it is the peer's failure
    let settings = Settings {
        timeout: Duration::from_millis(500),
        scope: Scope {
            allowed: vec!["127.0.45.0/24".parse().unwrap()],
        },
        ..Settings::default()
    };
    let run = execute(&plan, &settings).await;
    let o: Vec<(&str, Outcome, &str)> = run
        .observations
        .iter()
        .map(|o| (o.step.as_str(), o.outcome, reason(o)))
        .collect();
    assert_eq!(o[0], ("open.tcp", Outcome::Ok, ""));
    assert_eq!(o[1], ("closed.tcp", Outcome::Failed, "refused"));
    assert_eq!(o[2], ("after-open.tcp", Outcome::Ok, ""));
    assert_eq!(o[3], ("after-closed.tls", Outcome::Blocked, "blocked"));
    assert_eq!(o[4], ("outside.tcp", Outcome::OutOfScope, "out-of-scope"));
    for x in &o[5..] {
        assert_eq!(
            (x.1, x.2),
            (Outcome::TimedOut, "handshake-timeout"),
            "{x:?}"
        );
    }
    assert_eq!(run.observations[0].vantage.name, "host");
    // 20 handshakes of 500 ms each would take 10 s one after another
    assert!(
        run.duration_ms < 3000.0,
        "not concurrent: {} ms",
        run.duration_ms
    );
    silent.abort();
}

#[tokio::test]
async fn dns_servfail_from_an_in_process_server() {
    use hickory_proto::op::{Message, ResponseCode};
    let sock = tokio::net::UdpSocket::bind("127.0.30.4:5305")
        .await
        .unwrap();
    let server = tokio::spawn(async move {
        let mut b = vec![0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut b).await {
            let q = Message::from_vec(&b[..n]).unwrap();
            let mut r =
                Message::error_msg(q.metadata.id, q.metadata.op_code, ResponseCode::ServFail);
            r.add_queries(q.queries.clone());
            let _ = sock.send_to(&r.to_vec().unwrap(), from).await;
        }
    });
    let o = run(
        &ctx(800),
        dns_spec("gw.internal.example.test", "127.0.30.4:5305", &[]),
    )
    .await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "servfail"),
        "{o:?}"
    );
    assert_eq!(
        dns_ev(&o).rcode.map(|r| r.to_string()).as_deref(),
        Some("SERVFAIL")
    );
    server.abort();
}

// ---------------------------------------------------------------------------------------------
// the `probe` subcommand: JSON, text, exit codes

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn probe_subcommand_output_and_exit_codes() {
    let _l = std::net::TcpListener::bind("127.0.47.1:7200").unwrap();
    let (rc, out, _) = cli(&["probe", "tcp", "127.0.47.1:7200", "--format", "json"]);
    assert_eq!(rc, 0, "{out}");
    let o: Observation = serde_json::from_str(&out).unwrap();
    assert_eq!(o.outcome, Outcome::Ok);
    assert!(matches!(&o.evidence, Evidence::Tcp(t) if t.state == "open"));

    let (rc, out, _) = cli(&["probe", "tcp", "127.0.47.2:7200"]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.starts_with("FAILED"), "{out}");
    assert!(out.contains("state          refused"), "{out}");
    assert!(out.contains("[refused]"), "{out}");

    // bad arguments: exit 2 with a message naming the argument
    let (rc, _, err) = cli(&["probe", "tcp", "nowhere"]);
    assert_eq!(rc, 2);
    assert!(err.contains("expected IP:PORT"), "{err}");
    let (rc, _, err) = cli(&["probe", "http", "https://qdrant.internal.example.test/"]);
    assert_eq!(rc, 2);
    assert!(err.contains("--resolve"), "{err}");
    let (rc, _, err) = cli(&["probe", "tcp", "127.0.47.1:7200", "--timeout", "soon"]);
    assert_eq!(rc, 2, "{err}");

    // outside --scope: not sent
    let (rc, out, _) = cli(&[
        "probe",
        "tcp",
        "127.0.47.1:7200",
        "--scope",
        "127.0.48.0/24",
        "--format",
        "json",
    ]);
    assert_eq!(rc, 2, "{out}");
    let o: Observation = serde_json::from_str(&out).unwrap();
    assert_eq!(o.outcome, Outcome::OutOfScope);
    assert!(
        o.message.contains("127.0.47.1:7200") && o.message.contains("127.0.48.0/24"),
        "{}",
        o.message
    );

    // a trust file that does not exist is the tool's failure: exit 3
    let _n = nginx(
        &tls_server("127.0.47.4:8443", "gw.chain.pem", "gw.key", ""),
        &[sa("127.0.47.4:8443")],
    );
    let (rc, out, _) = cli(&[
        "probe",
        "tls",
        "127.0.47.4:8443",
        "--sni",
        "gw.internal.example.test",
        "--ca",
        "/nonexistent/root.crt",
    ]);
    assert_eq!(rc, 3, "{out}");
    let root = p("root.crt");
    let (rc, out, _) = cli(&[
        "probe",
        "tls",
        "127.0.47.4:8443",
        "--sni",
        "gw.internal.example.test",
        "--ca",
        root.to_str().unwrap(),
    ]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("verified       yes"), "{out}");
    assert!(out.contains("ECDSA P-256"), "{out}");
    let (rc, out, _) = cli(&[
        "probe",
        "http",
        "https://gw.internal.example.test:8443/",
        "--resolve",
        "gw.internal.example.test:127.0.47.4",
        "--ca",
        root.to_str().unwrap(),
        "--expect-status",
        "200",
        "--format",
        "json",
    ]);
    assert_eq!(rc, 0, "{out}");
    let o: Observation = serde_json::from_str(&out).unwrap();
    assert_eq!(http_ev(&o).connect, "127.0.47.4:8443");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_shaped_answers_have_meanings() {
    let a = hostile("127.0.44.5:8080", "traefik-500").await;
    let b = hostile("127.0.44.6:8080", "traefik-404").await;
    let c = ctx(1000);
    let o = run(
        &c,
        http_spec(
            "http://qdrant.internal.example.test:8080/",
            "127.0.44.5:8080",
            &[],
            None,
        ),
    )
    .await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "status-mismatch"),
        "{o:?}"
    );
    assert_eq!(http_ev(&o).status, Some(500));
    assert_eq!(http_ev(&o).server, None);
    assert_eq!(
        http_ev(&o).proxy_meaning.map(|x| x.as_str()),
        Some("backend-tls")
    );
    assert!(o.message.contains("backend-tls"), "{}", o.message);
    let o = run(
        &c,
        http_spec(
            "http://qdrant.internal.example.test:8080/",
            "127.0.44.6:8080",
            &[],
            None,
        ),
    )
    .await;
    assert_eq!(
        http_ev(&o).proxy_meaning.map(|x| x.as_str()),
        Some("no-router"),
        "{o:?}"
    );
    a.abort();
    b.abort();
}

// ---------------------------------------------------------------------------------------------
// hostile nameservers: what is not an answer to the question is never counted as one

/// A UDP nameserver on `addr` that answers every datagram with `answer(query bytes)`.
async fn hostile_dns(
    addr: &str,
    answer: fn(&[u8]) -> Vec<u8>,
) -> (
    tokio::task::JoinHandle<()>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let sock = tokio::net::UdpSocket::bind(addr).await.unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = seen.clone();
    let h = tokio::spawn(async move {
        let mut b = vec![0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut b).await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = sock.send_to(&answer(&b[..n]), from).await;
        }
    });
    (h, seen)
}

/// A response to `query` carrying `records` (owner, data) in its answer section.
fn dns_response(query: &[u8], records: &[(&str, hickory_proto::rr::RData)]) -> Vec<u8> {
    use hickory_proto::op::Message;
    use hickory_proto::rr::{Name, Record};
    let q = Message::from_vec(query).unwrap();
    let mut r = Message::response(q.metadata.id, q.metadata.op_code);
    r.add_queries(q.queries.clone());
    for (owner, data) in records {
        r.add_answer(Record::from_rdata(
            Name::from_ascii(owner).unwrap(),
            60,
            data.clone(),
        ));
    }
    r.to_vec().unwrap()
}

fn a(s: &str) -> hickory_proto::rr::RData {
    hickory_proto::rr::RData::A(hickory_proto::rr::rdata::A(s.parse().unwrap()))
}

#[tokio::test]
async fn an_echoed_query_is_not_an_answer() {
    // QR=0: the server sends our own query back
    let (srv, seen) = hostile_dns("127.0.60.1:5360", |q| q.to_vec()).await;
    let o = run(
        &ctx(600),
        dns_spec("echo.example.test", "127.0.60.1:5360", &[]),
    )
    .await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::TimedOut, "timeout"),
        "{o:?}"
    );
    assert!(o.message.contains("QR=0"), "{}", o.message);
    assert!(dns_ev(&o).rcode.is_none(), "no rcode was received");
    assert!(seen.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    srv.abort();
}

#[tokio::test]
async fn an_answer_to_another_question_is_not_an_answer() {
    let (srv, _) = hostile_dns("127.0.60.2:5360", |q| {
        use hickory_proto::op::{Message, Query};
        use hickory_proto::rr::{Name, RecordType};
        let mut m = Message::from_vec(&dns_response(q, &[("other.example.test.", a("127.0.0.9"))]))
            .unwrap();
        m.queries = vec![Query::query(
            Name::from_ascii("other.example.test.").unwrap(),
            RecordType::A,
        )];
        m.to_vec().unwrap()
    })
    .await;
    let o = run(
        &ctx(600),
        dns_spec("mine.example.test", "127.0.60.2:5360", &["127.0.0.9"]),
    )
    .await;
    assert_eq!(o.outcome, Outcome::TimedOut, "{o:?}");
    assert!(o.message.contains("another question"), "{}", o.message);
    srv.abort();
}

#[tokio::test]
async fn a_records_for_another_owner_are_not_counted() {
    // the expected address, but for another owner name: not an answer for the question
    let (srv, _) = hostile_dns("127.0.60.3:5360", |q| {
        dns_response(q, &[("evil.example.test.", a("127.0.0.9"))])
    })
    .await;
    let o = run(
        &ctx(600),
        dns_spec("qdrant.example.test", "127.0.60.3:5360", &["127.0.0.9"]),
    )
    .await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::Failed, "nodata"),
        "{o:?}"
    );
    assert!(dns_ev(&o).answers.is_empty());
    assert!(o.message.contains("evil.example.test"), "{}", o.message);
    srv.abort();

    // a CNAME chain from the question is followed; a stray owner beside it is still ignored
    let (srv, _) = hostile_dns("127.0.60.4:5360", |q| {
        use hickory_proto::rr::{rdata::CNAME, Name, RData};
        let alias = Name::from_ascii("alias.example.test.").unwrap();
        let last = Name::from_ascii("last.example.test.").unwrap();
        dns_response(
            q,
            &[
                ("www.example.test.", RData::CNAME(CNAME(alias))),
                ("alias.example.test.", RData::CNAME(CNAME(last))),
                ("last.example.test.", a("127.0.0.10")),
                ("evil.example.test.", a("127.0.0.11")),
            ],
        )
    })
    .await;
    let o = run(
        &ctx(600),
        dns_spec("WWW.example.test", "127.0.60.4:5360", &["127.0.0.10"]),
    )
    .await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert_eq!(dns_ev(&o).answers, vec![ip("127.0.0.10")]);
    assert!(o.message.contains("ignored 1 record"), "{}", o.message);
    srv.abort();
}

#[tokio::test]
async fn a_udp_answer_over_4096_bytes_is_decoded() {
    // 400 A records: about 6,400 bytes in one datagram (no truncation bit)
    let (srv, _) = hostile_dns("127.0.60.5:5360", |q| {
        let records: Vec<(&str, hickory_proto::rr::RData)> = (0..400u32)
            .map(|i| {
                (
                    "big.example.test.",
                    a(&format!("198.18.{}.{}", i / 250, i % 250 + 1)),
                )
            })
            .collect();
        let bytes = dns_response(q, &records);
        assert!(bytes.len() > 6000, "{}", bytes.len());
        bytes
    })
    .await;
    let o = run(
        &ctx(800),
        dns_spec("big.example.test", "127.0.60.5:5360", &[]),
    )
    .await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert_eq!(dns_ev(&o).answers.len(), 400);
    assert_eq!(dns_ev(&o).protocol.map(|p| p.as_str()), Some("udp"));
    srv.abort();
}

#[tokio::test]
async fn an_invalid_name_is_the_inputs_fault_and_nothing_is_sent() {
    let (srv, seen) = hostile_dns("127.0.60.6:5360", |q| dns_response(q, &[])).await;
    let long_label = format!("{}.example.test", "x".repeat(64));
    for bad in [
        "a..example.test",
        long_label.as_str(),
        "sp ace.example.test",
        ".",
        "",
    ] {
        let o = run(&ctx(600), dns_spec(bad, "127.0.60.6:5360", &[])).await;
        assert_eq!(
            (o.outcome, reason(&o)),
            (Outcome::ToolError, "invalid-name"),
            "{bad:?}: {o:?}"
        );
        assert!(o.message.contains("invalid domain name"), "{}", o.message);
    }
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 0);
    // the same for a TLS server name
    let o = run(
        &ctx(600),
        tls_spec("127.0.60.6:5360", "bad..name", Trust::None),
    )
    .await;
    assert_eq!(
        (o.outcome, reason(&o)),
        (Outcome::ToolError, "invalid-name"),
        "{o:?}"
    );
    // by hand it is a usage error
    let (code, _, err) = cli(&[
        "probe",
        "dns",
        "a..example.test",
        "--server",
        "127.0.60.6:5360",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid domain name"), "{err}");
    srv.abort();
}

// ---------------------------------------------------------------------------------------------
// HTTP peers that stall or trickle: one deadline bounds the whole exchange

const SLOW_HTTP_PY: &str = r#"
import socket, ssl, sys, threading, time
addr, port, mode, pki = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
tls = None
if mode == "slow-tls":
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(pki + "/portainer.chain.pem", pki + "/portainer.key")
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(16)
def handle(c):
    try:
        if tls:
            time.sleep(0.8)            # most of the timeout in the handshake
            c = tls.wrap_socket(c, server_side=True)
        c.recv(4096)
        if tls:
            time.sleep(0.8)            # most of it again before the head
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n\r\n")
        if mode == "stall":
            time.sleep(30)
        for _ in range(100):           # one byte per second
            c.sendall(b"x")
            time.sleep(1)
    except Exception:
        pass
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"#;

fn slow_http(addr: &str, mode: &str) -> Peer {
    need("python3");
    let a = sa(addr);
    let child = Command::new("python3")
        .args([
            "-c",
            SLOW_HTTP_PY,
            &a.ip().to_string(),
            &a.port().to_string(),
            mode,
        ])
        .arg(pki())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut peer = Peer {
        name: format!("python3 slow http ({mode})"),
        child,
        _dir: None,
    };
    wait_tcp(&[a], &mut peer);
    peer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_or_trickling_body_is_never_ok() {
    let _trickle = slow_http("127.0.61.1:8080", "trickle");
    let _stall = slow_http("127.0.61.2:8080", "stall");
    for (addr, what) in [("127.0.61.1:8080", "trickle"), ("127.0.61.2:8080", "stall")] {
        let t = Instant::now();
        let url = format!("http://{addr}/healthz");
        let o = run(&ctx(1000), http_spec(&url, addr, &[], None)).await;
        let took = t.elapsed();
        assert_eq!(
            (o.outcome, o.phase.map(|x| x.as_str()), reason(&o)),
            (Outcome::TimedOut, Some("body"), "timeout"),
            "{what}: {o:?}"
        );
        assert_eq!(http_ev(&o).status, Some(200), "{what}: the head came");
        assert!(
            o.message.contains("did not end within 1000 ms"),
            "{}",
            o.message
        );
        assert!(took < Duration::from_millis(1500), "{what}: {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phases_of_one_https_step_never_add_up_past_its_timeout() {
    // 0.8 s in the handshake, 0.8 s before the head, then a trickle: each phase alone is
    // under the 1 s timeout, together they are not
    let _peer = slow_http("127.0.61.3:8443", "slow-tls");
    let url = "https://portainer.internal.example.test:8443/";
    let t = Instant::now();
    let o = run(&ctx(1000), http_spec(url, "127.0.61.3:8443", &[], None)).await;
    let took = t.elapsed();
    assert_eq!(o.outcome, Outcome::TimedOut, "{o:?}");
    assert_eq!(o.phase.map(|x| x.as_str()), Some("first-byte"), "{o:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    let tm = &o.timings;
    let phases = tm.connect_ms.unwrap_or(0.0) + tm.tls_ms.unwrap_or(0.0);
    assert!(phases < 1000.0 && tm.total_ms < 1500.0, "{tm:?}");
}

// ---------------------------------------------------------------------------------------------
// the tool's own resource exhaustion (EMFILE) is a tool failure, never the network's

#[test]
fn running_out_of_file_descriptors_is_cannot_judge_never_a_divergence() {
    need("prlimit");
    let tcp = std::net::TcpListener::bind("127.0.62.1:7000").unwrap();
    let _accept = std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in tcp.incoming().take(64).flatten() {
            held.push(c);
        }
    });
    let udp = UdpSocket::bind("127.0.62.2:5360").unwrap();
    let _answer = std::thread::spawn(move || {
        let mut b = [0u8; 512];
        while let Ok((n, from)) = udp.recv_from(&mut b) {
            let _ = udp.send_to(
                &dns_response(&b[..n], &[("ok.example.test.", a("127.0.0.9"))]),
                from,
            );
        }
    });
    let probes: [&[&str]; 2] = [
        &["probe", "tcp", "127.0.62.1:7000"],
        &[
            "probe",
            "dns",
            "ok.example.test",
            "--server",
            "127.0.62.2:5360",
            "--hosts-file",
            "/dev/null",
            "--resolv-conf",
            "/dev/null",
        ],
    ];
    for args in probes {
        let mut exhausted = 0;
        let mut healthy = 0;
        for n in 4..=16 {
            let out = Command::new("prlimit")
                .arg(format!("--nofile={n}:{n}"))
                .arg(env!("CARGO_BIN_EXE_phoenix-doctor"))
                .args(args)
                .args(["--format", "json"])
                .output()
                .unwrap();
            let code = out.status.code().unwrap_or(-1);
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if code == 127 && stderr.contains("error while loading shared libraries") {
                continue; // too few for the dynamic loader: the tool never started
            }
            assert!(
                code == 0 || code == 3,
                "{args:?} with {n} descriptors: exit {code}\n{stdout}\n{stderr}"
            );
            if code == 0 {
                healthy += 1;
            } else if stdout.contains("\"out-of-resources\"") {
                assert!(stdout.contains("\"tool-error\""), "{stdout}");
                exhausted += 1;
            } else {
                assert!(stderr.contains("Too many open files"), "{stderr}");
                assert_eq!(stderr.lines().count(), 1, "{stderr}");
            }
        }
        assert!(
            exhausted >= 1,
            "{args:?}: no run got as far as the probe's socket"
        );
        assert!(healthy >= 1, "{args:?}: no run had enough descriptors");
    }
}
