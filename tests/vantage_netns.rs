//! Vantages against real peers: network namespaces as guests (`ip netns exec` as the transport,
//! the built binary as the agent), dnsmasq, socat listeners and nftables inside them.
//!
//! Needs root (CI runs as root). Every namespace and `/etc/netns/<ns>` is removed on drop.
//! Nothing here probes 198.18.0.0/24 from the root namespace: those steps run through agents
//! inside the namespaces; steps that run from here target 127.0.0.0/8 only.

mod common;
use common::{agent_bin, sh};
use phoenix_doctor::observe::{Evidence, Observation, Outcome};
use phoenix_doctor::plan::{ProbeSpec, Step, VantageRef};
use phoenix_doctor::probe::{ProbeCtx, SystemFiles};
use phoenix_doctor::vantage::{parse_via, site_vantages, Runner, VantageOptions, Vantages};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NAME: &str = "portainer.internal.thinkheads.ai";
const HOST_IP: &str = "198.18.0.13";
const LXC_IP: &str = "198.18.0.32";
const VM_A_IP: &str = "198.18.0.41";
const VM_B_IP: &str = "198.18.0.42";
/// What lxc:102's own /etc/hosts says (the wrong hosts file inside the guest).
const OVERRIDE_IP: &str = "198.18.0.66";

fn require_root() {
    common::require_root(
        "tests/vantage_netns.rs",
        "ip netns add, nft, /etc/netns",
        &["ip", "dnsmasq", "socat", "nft", "ss"],
    );
}

/// A switch namespace with a bridge, and one namespace per node: host, lxc:102, vm:1001, vm:1002.
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Lab {
    fn up(tag: &str) -> Lab {
        require_root();
        let prefix = format!("pdv{}{tag}", std::process::id());
        let mut lab = Lab {
            prefix: prefix.clone(),
            namespaces: Vec::new(),
            children: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        };
        let sw = format!("{prefix}-sw");
        lab.namespaces.push(sw.clone());
        common::add_switch(&sw);
        for (node, ip) in [
            ("host", HOST_IP),
            ("102", LXC_IP),
            ("1001", VM_A_IP),
            ("1002", VM_B_IP),
        ] {
            let ns = lab.ns(node);
            lab.namespaces.push(ns.clone());
            let mut hosts = "127.0.0.1 localhost\n".to_string();
            if node == "102" {
                hosts.push_str(&format!("{OVERRIDE_IP} {NAME}\n"));
            }
            common::add_node(
                &sw,
                &ns,
                node,
                ip,
                &hosts,
                &format!("nameserver {HOST_IP}\n"),
            );
        }
        // dnsmasq on the host node answers the platform's intended address.
        let dns = lab.spawn_in(
            "host",
            &[
                "dnsmasq",
                "-k",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                &format!("--listen-address={HOST_IP}"),
                "--port=53",
                "--user=",
                "--group=",
                &format!(
                    "--pid-file={}",
                    lab.dir.path().join("dnsmasq.pid").display()
                ),
                "--local=/internal.thinkheads.ai/",
                &format!("--host-record={NAME},{LXC_IP}"),
            ],
        );
        lab.children.push(dns);
        // A listener on lxc:102, and a firewall there that drops vm:1001 only.
        let listener = lab.spawn_in(
            "102",
            &[
                "socat",
                &format!("TCP-LISTEN:9443,bind={LXC_IP},reuseaddr,fork"),
                "SYSTEM:echo ok",
            ],
        );
        lab.children.push(listener);
        let rules = lab.dir.path().join("rules.nft");
        std::fs::write(
            &rules,
            format!(
                "table inet pdtest {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    ip saddr {VM_A_IP} tcp dport 9443 drop\n  }}\n}}\n"
            ),
        )
        .unwrap();
        sh(&[
            "ip",
            "netns",
            "exec",
            &lab.ns("102"),
            "nft",
            "-f",
            &rules.display().to_string(),
        ]);
        lab.wait_listening("host", &format!("{HOST_IP}:53"), "-lnu");
        lab.wait_listening("102", &format!("{LXC_IP}:9443"), "-lnt");
        lab
    }

    fn ns(&self, node: &str) -> String {
        format!("{}-{node}", self.prefix)
    }

    /// The transport template for every kind: `ip netns exec <prefix>-{id}`.
    fn template(&self) -> String {
        format!("ip netns exec {}-{{id}}", self.prefix)
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

    fn wait_listening(&self, node: &str, addr: &str, flags: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let out = Command::new("ip")
                .args(["netns", "exec", &self.ns(node), "ss", "-H", flags])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains(addr) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nothing listens on {addr} in {}",
                self.ns(node)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The runner with every kind going through `ip netns exec` and the built binary as agent.
    fn vantages(&self, agent_path: &str) -> Vantages {
        let t = self.template();
        Vantages::new(VantageOptions {
            via: parse_via(&[format!("host={t}"), format!("lxc={t}"), format!("vm={t}")]).unwrap(),
            agent_path: agent_path.to_string(),
            ..VantageOptions::default()
        })
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

fn step(id: &str, from: VantageRef, probe: ProbeSpec) -> Step {
    Step {
        id: id.to_string(),
        hop: id.split('.').next().unwrap().to_string(),
        from,
        to: "portainer".into(),
        layer: probe.layer(),
        probe,
        expect: String::new(),
        provenance: Vec::new(),
        depends_on: Vec::new(),
        through: Vec::new(),
    }
}

fn dns_step(id: &str, from: VantageRef, server: SocketAddr, expect: IpAddr) -> Step {
    step(
        id,
        from,
        ProbeSpec::Dns {
            name: NAME.into(),
            server,
            expect: vec![expect],
            system: true,
        },
    )
}

fn ctx() -> ProbeCtx {
    ProbeCtx {
        timeout: Duration::from_millis(1500),
        ..ProbeCtx::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn dns(o: &Observation) -> &phoenix_doctor::observe::DnsEvidence {
    match &o.evidence {
        Evidence::Dns(d) => d,
        other => panic!("expected DNS evidence, got {other:?} in {o:?}"),
    }
}

fn tcp(o: &Observation) -> &phoenix_doctor::observe::TcpEvidence {
    match &o.evidence {
        Evidence::Tcp(t) => t,
        other => panic!("expected TCP evidence, got {other:?} in {o:?}"),
    }
}

#[test]
fn dns_at_the_lxc_sees_its_own_hosts_override_and_the_host_does_not() {
    let lab = Lab::up("a");
    let v = lab.vantages(agent_bin());
    let server: SocketAddr = format!("{HOST_IP}:53").parse().unwrap();
    let rt = rt();
    let ctx = ctx();

    let started = Instant::now();
    let at_lxc = rt.block_on(v.run(
        &[dns_step(
            "dns.lxc",
            VantageRef::Lxc(102),
            server,
            ip(LXC_IP),
        )],
        &ctx,
    ));
    eprintln!(
        "agent round trip through ip netns exec (1 DNS step): {:?}",
        started.elapsed()
    );
    let at_host = rt.block_on(v.run(
        &[dns_step("dns.host", VantageRef::Host, server, ip(LXC_IP))],
        &ctx,
    ));

    let o = &at_lxc[0];
    assert_eq!(o.vantage.name, "lxc:102");
    assert!(!o.vantage.substituted, "{o:?}");
    assert_eq!(o.vantage.via, format!("ip netns exec {}", lab.ns("102")));
    let d = dns(o);
    assert_eq!(
        d.answers,
        vec![ip(LXC_IP)],
        "the nameserver still answers the intended address: {o:?}"
    );
    assert!(
        d.hosts_entries
            .iter()
            .any(|e| e.ip == ip(OVERRIDE_IP) && e.names.iter().any(|n| n == NAME)),
        "lxc:102's own /etc/hosts override must be seen: {o:?}"
    );
    assert_eq!(d.effective, vec![ip(OVERRIDE_IP)], "{o:?}");
    assert_eq!(d.effective_source, "hosts");

    let o = &at_host[0];
    assert_eq!(o.vantage.name, "host");
    assert_eq!(o.vantage.via, format!("ip netns exec {}", lab.ns("host")));
    let d = dns(o);
    assert!(
        d.hosts_entries.is_empty(),
        "the host has no override: {o:?}"
    );
    assert_eq!(d.effective, vec![ip(LXC_IP)], "{o:?}");
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
}

#[test]
fn tcp_from_the_vm_the_firewall_drops_is_filtered_and_open_from_the_other_vm() {
    let lab = Lab::up("b");
    let v = lab.vantages(agent_bin());
    let target: SocketAddr = format!("{LXC_IP}:9443").parse().unwrap();
    let rt = rt();
    let ctx = ctx();
    let from_a = rt.block_on(v.run(
        &[step(
            "a.tcp",
            VantageRef::Vm(1001),
            ProbeSpec::Tcp { addr: target },
        )],
        &ctx,
    ));
    let started = Instant::now();
    let from_b = rt.block_on(v.run(
        &[step(
            "b.tcp",
            VantageRef::Vm(1002),
            ProbeSpec::Tcp { addr: target },
        )],
        &ctx,
    ));
    eprintln!(
        "agent round trip through ip netns exec (1 TCP step, open): {:?}",
        started.elapsed()
    );

    let a = &from_a[0];
    assert_eq!(a.vantage.name, "vm:1001");
    assert!(!a.vantage.substituted);
    assert_eq!(a.outcome, Outcome::TimedOut, "{a:?}");
    assert_eq!(tcp(a).state, "filtered", "{a:?}");
    let b = &from_b[0];
    assert_eq!(b.vantage.name, "vm:1002");
    assert_eq!(b.outcome, Outcome::Ok, "{b:?}");
    assert_eq!(tcp(b).state, "open", "{b:?}");
    assert_eq!(b.step, "b.tcp");
}

/// Shell metacharacters in a template or an agent path never run anything.
#[test]
fn metacharacters_in_templates_and_agent_paths_run_nothing() {
    let lab = Lab::up("c");
    let pwned = lab.dir.path().join("pwned");
    let evil = format!(
        "{} ; touch {} && touch {}",
        lab.template(),
        pwned.display(),
        pwned.display()
    );
    let v = Vantages::new(VantageOptions {
        via: parse_via(&[format!("lxc={evil}")]).unwrap(),
        agent_path: agent_bin().into(),
        ..VantageOptions::default()
    });
    let rt = rt();
    let target: SocketAddr = format!("{LXC_IP}:9443").parse().unwrap();
    let obs = rt.block_on(v.run(
        &[step(
            "x.tcp",
            VantageRef::Lxc(102),
            ProbeSpec::Tcp { addr: target },
        )],
        &ctx(),
    ));
    assert_eq!(obs[0].outcome, Outcome::ToolError, "{:?}", obs[0]);
    assert!(
        obs[0].message.contains("ip netns exec"),
        "the command line is shown: {:?}",
        obs[0]
    );
    assert!(
        !pwned.exists(),
        "a metacharacter in the template ran a shell command"
    );
    // An agent path with metacharacters is one word: no such file, so the step falls back to
    // running from here (hence a loopback target, nothing listening) and nothing else runs.
    let evil_agent = format!("/nonexistent/pd; touch {}", pwned.display());
    let v = lab.vantages(&evil_agent);
    let local: SocketAddr = "127.0.0.171:9".parse().unwrap();
    let obs = rt.block_on(v.run(
        &[step(
            "y.tcp",
            VantageRef::Lxc(102),
            ProbeSpec::Tcp { addr: local },
        )],
        &ctx(),
    ));
    assert!(
        !pwned.exists(),
        "a metacharacter in the agent path ran a shell command"
    );
    assert!(obs[0].vantage.substituted, "{:?}", obs[0]);
}

/// A guest that does not exist is a tool error (cannot judge), with the transport's stderr.
#[test]
fn a_missing_guest_is_a_tool_error_with_the_command_and_its_stderr() {
    let lab = Lab::up("d");
    let v = lab.vantages(agent_bin());
    let target: SocketAddr = "127.0.0.171:9".parse().unwrap();
    let obs = rt().block_on(v.run(
        &[step(
            "m.tcp",
            VantageRef::Vm(4242),
            ProbeSpec::Tcp { addr: target },
        )],
        &ctx(),
    ));
    let o = &obs[0];
    assert_eq!(o.outcome, Outcome::ToolError, "{o:?}");
    assert_eq!(o.vantage.name, "vm:4242");
    assert!(
        o.message
            .contains(&format!("ip netns exec {}-4242", lab.prefix)),
        "{o:?}"
    );
    assert!(o.message.contains("Cannot open network namespace"), "{o:?}");
}

/// Where no agent runs, with `--vantage host`, and at a simulated vantage, the network layers run
/// from here (so these steps target a loopback dnsmasq) and the vantage's files decide the view.
#[test]
fn without_an_agent_the_guest_files_are_read_through_the_transport() {
    let mut lab = Lab::up("e");
    let dns_ip = "127.0.0.171";
    let intended = "127.0.0.172";
    let dnsmasq = Command::new("dnsmasq")
        .args([
            "-k",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            &format!("--listen-address={dns_ip}"),
            "--port=5391",
            "--user=",
            "--group=",
            &format!(
                "--pid-file={}",
                lab.dir.path().join("lo-dnsmasq.pid").display()
            ),
            "--local=/internal.thinkheads.ai/",
            &format!("--host-record={NAME},{intended}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq");
    lab.children.push(dnsmasq);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(
        &Command::new("ss")
            .args(["-H", "-lnu"])
            .output()
            .unwrap()
            .stdout,
    )
    .contains(&format!("{dns_ip}:5391"))
    {
        assert!(Instant::now() < deadline, "loopback dnsmasq did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let server: SocketAddr = format!("{dns_ip}:5391").parse().unwrap();
    let s = dns_step("dns.lxc", VantageRef::Lxc(102), server, ip(intended));
    let rt = rt();
    let ctx = ctx();
    let guest_via = format!("local; system files via ip netns exec {}", lab.ns("102"));

    // 1. The agent is missing in the guest.
    let v = lab.vantages("/nonexistent/phoenix-doctor");
    let o = rt.block_on(v.run(std::slice::from_ref(&s), &ctx)).remove(0);
    assert!(o.vantage.substituted, "{o:?}");
    assert_eq!(o.vantage.via, guest_via);
    let d = dns(&o);
    assert_eq!(d.answers, vec![ip(intended)], "{o:?}");
    let e = d
        .hosts_entries
        .iter()
        .find(|e| e.ip == ip(OVERRIDE_IP))
        .unwrap_or_else(|| panic!("{o:?}"));
    assert_eq!(e.file, "lxc:102:/etc/hosts");
    assert_eq!(d.effective, vec![ip(OVERRIDE_IP)]);

    // 2. --vantage host with a transport for LXCs: same view, from here.
    let t = lab.template();
    let v = Vantages::new(VantageOptions {
        via: parse_via(&[format!("lxc={t}")]).unwrap(),
        force_host: true,
        agent_path: agent_bin().into(),
        ..VantageOptions::default()
    });
    let o = rt.block_on(v.run(std::slice::from_ref(&s), &ctx)).remove(0);
    assert!(o.vantage.substituted, "{o:?}");
    assert_eq!(o.vantage.via, guest_via);
    assert_eq!(dns(&o).effective, vec![ip(OVERRIDE_IP)], "{o:?}");

    // 3. --vantage host without a transport: this machine's files, marked substituted.
    let v = Vantages::new(VantageOptions {
        force_host: true,
        agent_path: agent_bin().into(),
        ..VantageOptions::default()
    });
    let o = rt.block_on(v.run(std::slice::from_ref(&s), &ctx)).remove(0);
    assert!(o.vantage.substituted, "{o:?}");
    assert_eq!(o.vantage.via, "local");
    assert!(
        dns(&o)
            .hosts_entries
            .iter()
            .all(|e| e.ip != ip(OVERRIDE_IP)),
        "{o:?}"
    );

    // 4. A simulated vantage from the site file: here, with its files, not substituted.
    let cfg = lab.dir.path().join("etc");
    std::fs::create_dir_all(cfg.join("vantages")).unwrap();
    std::fs::write(cfg.join("vantages/hosts"), format!("127.0.0.173 {NAME}\n")).unwrap();
    std::fs::write(
        cfg.join("vantages/resolv.conf"),
        format!("nameserver {dns_ip}\n"),
    )
    .unwrap();
    std::fs::write(
        cfg.join("phoenix-doctor.toml"),
        "[vantage.\"lxc:102\"]\nhosts_file = \"vantages/hosts\"\nresolv_conf = \"vantages/resolv.conf\"\n",
    )
    .unwrap();
    let site: BTreeMap<VantageRef, SystemFiles> = site_vantages(&cfg).unwrap();
    let v = Vantages::new(VantageOptions {
        via: parse_via(&[format!("lxc={t}")]).unwrap(),
        agent_path: agent_bin().into(),
        site,
        ..VantageOptions::default()
    });
    let o = rt.block_on(v.run(std::slice::from_ref(&s), &ctx)).remove(0);
    assert!(!o.vantage.substituted, "{o:?}");
    assert_eq!(o.vantage.via, "simulated");
    assert_eq!(dns(&o).effective, vec![ip("127.0.0.173")], "{o:?}");
}

/// `--push` copies the binary into the guest first, then runs it there.
#[test]
fn push_copies_the_agent_into_the_guest_and_runs_it() {
    let lab = Lab::up("f");
    let dest = lab.dir.path().join("pushed").join("phoenix-doctor");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let t = lab.template();
    let v = Vantages::new(VantageOptions {
        via: parse_via(&[format!("vm={t}")]).unwrap(),
        agent_path: dest.display().to_string(),
        push: true,
        self_exe: Some(PathBuf::from(agent_bin())),
        ..VantageOptions::default()
    });
    let target: SocketAddr = format!("{LXC_IP}:9443").parse().unwrap();
    let started = Instant::now();
    let obs = rt().block_on(v.run(
        &[step(
            "p.tcp",
            VantageRef::Vm(1002),
            ProbeSpec::Tcp { addr: target },
        )],
        &ctx(),
    ));
    eprintln!(
        "push ({} bytes) + agent round trip: {:?}",
        std::fs::metadata(agent_bin()).unwrap().len(),
        started.elapsed()
    );
    assert_eq!(
        std::fs::read(&dest).unwrap().len() as u64,
        std::fs::metadata(agent_bin()).unwrap().len()
    );
    let o = &obs[0];
    assert!(!o.vantage.substituted, "{o:?}");
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert_eq!(tcp(o).state, "open");
}

/// Run `prefix... AGENT agent` with `input` on stdin.
fn run_agent(prefix: &[&str], agent: &str, input: &str) -> std::process::Output {
    common::run_agent(prefix, agent, input.as_bytes())
}

/// A job of one TCP step to a loopback port, as JSON.
fn tcp_job() -> String {
    let target: SocketAddr = "127.0.0.175:9".parse().unwrap();
    let job = phoenix_doctor::vantage::Job::new(
        &[step(
            "t.tcp",
            VantageRef::Host,
            ProbeSpec::Tcp { addr: target },
        )],
        &ctx(),
        &phoenix_doctor::vantage::JobSpec {
            prior: Default::default(),
            scope: phoenix_doctor::engine::Scope {
                allowed: vec!["127.0.0.0/8".parse().unwrap()],
            },
            deadline: tokio::time::Instant::now() + Duration::from_secs(5),
        },
        Duration::from_secs(5),
    );
    serde_json::to_string(&job).unwrap()
}

/// The agent's answer to [`tcp_job`]: one observation of its step, in the current protocol.
fn assert_answers_the_tcp_job(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res: phoenix_doctor::vantage::JobResult = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(res.version, phoenix_doctor::vantage::AGENT_PROTOCOL_VERSION);
    assert_eq!(res.observations.len(), 1);
    assert_eq!(res.observations[0].step, "t.tcp");
}

/// The `agent` subcommand itself: a job on stdin, observations on stdout, exit 2 on a bad job.
#[test]
fn the_agent_subcommand_speaks_json_on_stdin_and_stdout() {
    assert_answers_the_tcp_job(&run_agent(&[], agent_bin(), &tcp_job()));
    let out = run_agent(&[], agent_bin(), "not json");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdin is not a job"));
    assert!(out.stdout.is_empty());
}

/// A guest's libc is not the host's: the static agent (`PD_AGENT_BIN`, built by
/// scripts/build-agent.sh) answers a job from an empty root (no libc, no /etc, no NSS, no /proc)
/// in a network namespace of its own, where the dynamically linked build cannot even start.
/// Traced, it opens no NSS file and no resolver configuration: it never calls getaddrinfo.
#[test]
fn the_static_agent_runs_in_a_root_without_libc_and_never_uses_nss() {
    let Ok(agent) = std::env::var("PD_AGENT_BIN") else {
        eprintln!(
            "skipped: PD_AGENT_BIN is not set (`sudo ./test` builds the static agent and sets it)"
        );
        return;
    };
    require_root();
    let root = tempfile::tempdir().unwrap();
    std::fs::copy(&agent, root.path().join("phoenix-doctor")).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_phoenix-doctor"),
        root.path().join("dynamic"),
    )
    .unwrap();
    let r = root.path().to_str().unwrap();
    let empty_root = ["unshare", "--net", "--root", r];
    assert_answers_the_tcp_job(&run_agent(&empty_root, "/phoenix-doctor", &tcp_job()));
    // the same place refuses a binary that needs the host's libc: the root really is empty
    let out = run_agent(&empty_root, "/dynamic", &tcp_job());
    assert!(!out.status.success(), "a dynamic binary ran without libc");

    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("skipped the NSS trace: strace is not installed");
        return;
    }
    let log = root.path().join("strace.log");
    let l = log.to_str().unwrap();
    let traced = [
        "strace",
        "-f",
        "-qq",
        "-e",
        "trace=openat,open,connect",
        "-o",
        l,
    ];
    assert_answers_the_tcp_job(&run_agent(&traced, &agent, &tcp_job()));
    let calls = std::fs::read_to_string(&log).unwrap();
    for nss in [
        "nsswitch.conf",
        "libnss_",
        "/etc/hosts",
        "resolv.conf",
        "/run/systemd/resolve",
        "nscd",
    ] {
        assert!(!calls.contains(nss), "the agent opened {nss}:\n{calls}");
    }
}

/// The engine with `Vantages` as its runner: each batch runs at its own vantage, prerequisites
/// are honoured across vantages, and the vantage notes survive.
#[test]
fn the_engine_runs_a_plan_from_each_steps_vantage() {
    use phoenix_doctor::engine::{execute, Scope, Settings};
    use phoenix_doctor::plan::Plan;
    use std::sync::Arc;
    let lab = Lab::up("g");
    let server: SocketAddr = format!("{HOST_IP}:53").parse().unwrap();
    let target: SocketAddr = format!("{LXC_IP}:9443").parse().unwrap();
    let mut from_a = step(
        "a.tcp",
        VantageRef::Vm(1001),
        ProbeSpec::Tcp { addr: target },
    );
    from_a.depends_on = vec!["host.dns".into()];
    let mut from_b = step(
        "b.tcp",
        VantageRef::Vm(1002),
        ProbeSpec::Tcp { addr: target },
    );
    from_b.depends_on = vec!["host.dns".into()];
    let mut after_a = step(
        "a2.tcp",
        VantageRef::Vm(1001),
        ProbeSpec::Tcp { addr: target },
    );
    after_a.depends_on = vec!["a.tcp".into()];
    let plan = Plan {
        target: "portainer".into(),
        hops: Vec::new(),
        steps: vec![
            dns_step("host.dns", VantageRef::Host, server, ip(LXC_IP)),
            dns_step("lxc.dns", VantageRef::Lxc(102), server, ip(LXC_IP)),
            from_a,
            from_b,
            after_a,
        ],
    };
    let settings = Settings {
        timeout: Duration::from_millis(1000),
        scope: Scope {
            allowed: vec!["198.18.0.0/24".parse().unwrap()],
        },
        runner: Arc::new(lab.vantages(agent_bin())),
        ..Settings::default()
    };
    let started = Instant::now();
    let run = rt().block_on(execute(&plan, &settings));
    eprintln!(
        "engine over 4 vantages through ip netns exec: {:?}",
        started.elapsed()
    );
    let by_id = |id: &str| run.observations.iter().find(|o| o.step == id).unwrap();
    assert_eq!(
        by_id("host.dns").outcome,
        Outcome::Ok,
        "{:?}",
        by_id("host.dns")
    );
    assert_eq!(
        by_id("host.dns").vantage.via,
        format!("ip netns exec {}", lab.ns("host"))
    );
    assert_eq!(dns(by_id("lxc.dns")).effective, vec![ip(OVERRIDE_IP)]);
    assert_eq!(
        by_id("lxc.dns").vantage.via,
        format!("ip netns exec {}", lab.ns("102"))
    );
    assert_eq!(
        by_id("a.tcp").outcome,
        Outcome::TimedOut,
        "{:?}",
        by_id("a.tcp")
    );
    assert_eq!(by_id("a.tcp").vantage.name, "vm:1001");
    assert_eq!(by_id("b.tcp").outcome, Outcome::Ok, "{:?}", by_id("b.tcp"));
    assert_eq!(
        by_id("a2.tcp").outcome,
        Outcome::Blocked,
        "{:?}",
        by_id("a2.tcp")
    );
    assert!(run.observations.iter().all(|o| !o.vantage.substituted));
}

/// Issue 12, item 1: files are read in the guest with the same call as its steps (one call per
/// guest per run): an agent's job carries them, a guest without steps gets one `sh -c`, and
/// what was read is not read again. The answers are the guest's own: its `/etc/hosts` (with the
/// override only lxc:102 has), its socket table (socat on 198.18.0.32:9443), a glob expanded in
/// the guest.
#[test]
fn files_are_read_in_the_guest_with_its_steps_in_one_call() {
    use phoenix_doctor::engine::{execute, Scope, Settings};
    use phoenix_doctor::plan::Plan;
    use phoenix_doctor::vantage::{files::FileRead, listeners, read_files};
    use std::sync::Arc;
    let lab = Lab::up("h");
    // Deployed files in a directory both namespaces see (a guest's own files would be at the
    // same path inside it).
    let deployed = lab.dir.path().join("dnsmasq.d");
    std::fs::create_dir_all(&deployed).unwrap();
    std::fs::write(deployed.join("10-b.conf"), "address=/b/198.18.0.2\n").unwrap();
    std::fs::write(deployed.join("00-a.conf"), "address=/a/198.18.0.1\n").unwrap();
    std::fs::write(deployed.join("README"), "not a conf\n").unwrap();
    let calls = lab.dir.path().join("calls");
    let wrapper = lab.dir.path().join("into-guest");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$1\" >> {}\nexec ip netns exec \"$@\"\n",
            calls.display()
        ),
    )
    .unwrap();
    sh(&["chmod", "0755", &wrapper.display().to_string()]);
    let t = format!("{} {}-{{id}}", wrapper.display(), lab.prefix);
    let vantages = Arc::new(Vantages::new(VantageOptions {
        via: parse_via(&[format!("lxc={t}"), format!("vm={t}")]).unwrap(),
        agent_path: agent_bin().into(),
        ..VantageOptions::default()
    }));
    let glob = format!("{}/*.conf", deployed.display());
    let wanted: Vec<String> = vec![
        "/etc/hosts".into(),
        "/proc/net/tcp".into(),
        "/proc/net/tcp6".into(),
        glob.clone(),
        "/etc/no-such-file".into(),
    ];
    vantages.attach_reads(VantageRef::Lxc(102), &wanted);
    let target: SocketAddr = format!("{LXC_IP}:9443").parse().unwrap();
    let plan = Plan {
        target: "portainer".into(),
        hops: Vec::new(),
        steps: vec![
            step(
                "a.tcp",
                VantageRef::Lxc(102),
                ProbeSpec::Tcp { addr: target },
            ),
            step(
                "b.tcp",
                VantageRef::Lxc(102),
                ProbeSpec::Tcp { addr: target },
            ),
        ],
    };
    let settings = Settings {
        timeout: Duration::from_millis(1000),
        scope: Scope {
            allowed: vec!["198.18.0.0/24".parse().unwrap()],
        },
        runner: vantages.clone(),
        ..Settings::default()
    };
    let rt = rt();
    let run = rt.block_on(execute(&plan, &settings));
    assert!(
        run.observations.iter().all(|o| o.outcome == Outcome::Ok),
        "{:?}",
        run.observations
    );
    let got = rt.block_on(read_files(&vantages, VantageRef::Lxc(102), &wanted));
    let lines = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    assert_eq!(
        lines(&calls).lines().count(),
        1,
        "one call into lxc:102 for its steps and its files: {}",
        lines(&calls)
    );
    let text = |p: &str| {
        got.iter()
            .find(|r| r.path() == p)
            .and_then(FileRead::text)
            .unwrap_or_else(|| panic!("{p} not read: {got:?}"))
            .to_string()
    };
    assert!(text("/etc/hosts").contains(OVERRIDE_IP), "{got:?}");
    let mut socks = listeners::parse_proc_net_tcp(&text("/proc/net/tcp"));
    socks.extend(listeners::parse_proc_net_tcp(&text("/proc/net/tcp6")));
    assert!(
        socks.iter().any(|l| l.addr == target),
        "socat's socket is in the guest's table: {socks:?}"
    );
    let confs: Vec<&str> = got
        .iter()
        .filter(|r| r.path().starts_with(&deployed.display().to_string()))
        .map(FileRead::path)
        .collect();
    assert_eq!(
        confs,
        [
            format!("{}/00-a.conf", deployed.display()),
            format!("{}/10-b.conf", deployed.display())
        ]
    );
    assert!(got.iter().any(|r| matches!(r, FileRead::Unreadable { path, why } if path == "/etc/no-such-file" && why == "no such file")), "{got:?}");

    // A guest without steps: one `sh -c`, no agent needed; asked again, no new call.
    let one = vec!["/etc/hosts".to_string(), "/proc/net/tcp".to_string()];
    let vm = rt.block_on(read_files(&vantages, VantageRef::Vm(1001), &one));
    let again = rt.block_on(read_files(&vantages, VantageRef::Vm(1001), &one));
    assert_eq!(vm, again);
    assert!(
        vm[0].text().is_some_and(|h| !h.contains(OVERRIDE_IP)),
        "{vm:?}"
    );
    assert_eq!(lines(&calls).lines().count(), 2, "{}", lines(&calls));

    // An agent of an older protocol refuses the job; the message says what to do.
    let old = lab.dir.path().join("old-agent");
    std::fs::write(
        &old,
        "#!/bin/sh\necho 'phoenix-doctor: agent: job version 3 is not supported (this agent speaks version 2)' >&2\nexit 2\n",
    )
    .unwrap();
    sh(&["chmod", "0755", &old.display().to_string()]);
    let v = Vantages::new(VantageOptions {
        via: parse_via(&[format!("lxc={t}")]).unwrap(),
        agent_path: old.display().to_string(),
        ..VantageOptions::default()
    });
    let s = step(
        "c.tcp",
        VantageRef::Lxc(102),
        ProbeSpec::Tcp { addr: target },
    );
    let o = rt
        .block_on(v.run(std::slice::from_ref(&s), &ctx()))
        .remove(0);
    assert_eq!(o.outcome, Outcome::ToolError, "{o:?}");
    assert!(o.message.contains("speaks version 2"), "{o:?}");
    assert!(o.message.contains("run with --push"), "{o:?}");
}
