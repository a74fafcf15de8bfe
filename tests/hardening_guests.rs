//! Hostile guests and transports: stand-in `pct`, `qm`, `ssh` and agents (shell scripts in a
//! temp dir) that flood, hang, leave grandchildren or run a shell on the far side; the agent fed
//! jobs it must refuse; and a traced target counted in transport calls per guest.
//!
//! Every packet goes to 127.0.0.0/8 (the lab on loopback, closed loopback ports) or nowhere:
//! the out-of-scope agent test runs the agent in a new, empty network namespace as a belt.
//! Tests that start the lab or many sockets run under `flock /tmp/pd-net.lock`.

use phoenix_doctor::engine::{execute, Scope, Settings};
use phoenix_doctor::lab::{Lab, LabHandle, LabSpec};
use phoenix_doctor::observe::Outcome;
use phoenix_doctor::plan::{Plan, ProbeSpec, Step, VantageRef};
use phoenix_doctor::probe::ProbeCtx;
use phoenix_doctor::vantage::{parse_via, Runner, VantageOptions, Vantages};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::agent_bin;

/// The binary under test, run on the host side.
const TOOL: &str = env!("CARGO_BIN_EXE_phoenix-doctor");

/// Write an executable script.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn tcp_step(id: &str, from: VantageRef, addr: &str, deps: &[&str]) -> Step {
    Step {
        id: id.into(),
        hop: id.split('.').next().unwrap().into(),
        from,
        to: "x".into(),
        layer: phoenix_doctor::observe::Layer::Tcp,
        probe: ProbeSpec::Tcp {
            addr: addr.parse().unwrap(),
        },
        expect: String::new(),
        provenance: Vec::new(),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        through: Vec::new(),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn vantages(via: &[String], agent_path: &str) -> Vantages {
    Vantages::new(VantageOptions {
        via: parse_via(via).unwrap(),
        agent_path: agent_path.into(),
        ..VantageOptions::default()
    })
}

fn loopback_settings(runner: Arc<dyn Runner>, budget: Duration) -> Settings {
    Settings {
        timeout: Duration::from_millis(500),
        budget,
        scope: Scope {
            allowed: vec!["127.0.0.0/8".parse().unwrap()],
        },
        runner,
        ..Settings::default()
    }
}

/// Processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) && !cmd.contains("cargo") {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // a zombie is gone already (its parent has not reaped it yet)
            if !stat.contains(") Z ") {
                out.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    out
}

/// Issue 9, item 2: an agent (or `qm`) that answers forever is cut at the job's limit, the
/// transport is killed, and every step of the job is a tool error (cannot judge).
#[test]
fn a_guest_that_answers_forever_is_cut_and_its_steps_cannot_judge() {
    let dir = tempfile::tempdir().unwrap();
    let steps = vec![
        tcp_step("a.tcp", VantageRef::Lxc(7), "127.0.0.181:9", &[]),
        tcp_step("b.tcp", VantageRef::Lxc(7), "127.0.0.181:10", &["a.tcp"]),
    ];
    let vm_steps: Vec<Step> = steps
        .iter()
        .map(|s| Step {
            from: VantageRef::Vm(8),
            ..s.clone()
        })
        .collect();
    let stderr_flood = script(dir.path(), "shouts", "yes 'no agent here' >&2");
    let qm = script(
        dir.path(),
        "qm",
        "printf '{\"exited\":1,\"exitcode\":0,\"out-data\":\"'; yes x | tr -d '\\n'",
    );
    let ctx = ProbeCtx {
        timeout: Duration::from_millis(500),
        ..ProbeCtx::default()
    };
    let limit = phoenix_doctor::vantage::job::answer_limit(&steps, ctx.body_limit);
    let rt = rt();
    for (via, agent, steps) in [
        ("lxc=env".to_string(), "/usr/bin/yes", &steps),
        (
            "lxc=env".to_string(),
            stderr_flood.to_str().unwrap(),
            &steps,
        ),
        (
            format!("vm={} guest exec {{id}} --", qm.display()),
            agent_bin(),
            &vm_steps,
        ),
    ] {
        let v = vantages(std::slice::from_ref(&via), agent);
        let started = Instant::now();
        let obs = rt.block_on(v.run(steps, &ctx));
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "{via} {agent}: took {took:?}"
        );
        assert_eq!(obs.len(), 2);
        for o in &obs {
            assert_eq!(o.outcome, Outcome::ToolError, "{via} {agent}: {o:?}");
            assert!(
                o.message
                    .contains(&format!("the guest's answer exceeded {limit} bytes")),
                "{via} {agent}: {o:?}"
            );
        }
    }
}

/// Issue 9, item 4: a remote shell behind a wrapper still gets every word quoted: `;`, `$(...)`
/// and backticks in `--agent-path` run nothing on the far side.
#[test]
fn a_wrapped_ssh_runs_nothing_from_the_agent_path() {
    let dir = tempfile::tempdir().unwrap();
    // Like real ssh: the words after the host are joined with spaces and run by a shell.
    let ssh = script(dir.path(), "ssh", "shift\nexec sh -c \"$*\"");
    let m = |n: &str| dir.path().join(n);
    // The stand-in does run a shell: an unquoted `;` would execute.
    let st = Command::new(&ssh)
        .args(["lxc-1", &format!("true;touch {}", m("m0").display())])
        .status()
        .unwrap();
    assert!(
        st.success() && m("m0").exists(),
        "the stand-in ssh runs a shell"
    );
    let agent_paths = [
        format!("/nonexistent/pd;touch {}", m("m1").display()),
        format!("/nonexistent/pd$(touch {})", m("m2").display()),
        format!("/nonexistent/pd`touch {}`", m("m3").display()),
        format!("/nonexistent/pd && touch {}", m("m4").display()),
    ];
    let ssh = ssh.display();
    let templates = [
        format!("timeout 20 {ssh} lxc-{{id}}"),
        format!("env {ssh} lxc-{{id}}"),
        format!("env LC_ALL=C {ssh} lxc-{{id}}"),
        format!("nice -n 1 {ssh} lxc-{{id}}"),
        format!("stdbuf -o0 {ssh} lxc-{{id}}"),
        format!("{ssh} lxc-{{id}}"),
    ];
    let rt = rt();
    let steps = [tcp_step("s.tcp", VantageRef::Lxc(5), "127.0.0.182:9", &[])];
    let ctx = ProbeCtx {
        timeout: Duration::from_millis(300),
        ..ProbeCtx::default()
    };
    for t in &templates {
        for a in &agent_paths {
            let v = vantages(&[format!("lxc={t}")], a);
            let obs = rt.block_on(v.run(&steps, &ctx));
            assert_eq!(obs.len(), 1);
            for n in ["m1", "m2", "m3", "m4"] {
                assert!(
                    !m(n).exists(),
                    "`{t}` with --agent-path `{a}` ran a command on the far side"
                );
            }
        }
    }
}

/// The lab on loopback without its simulated vantages (the site file keeps its trust paths), so
/// guests go through `--via`.
fn lab_without_site(net: u8) -> (tokio::runtime::Runtime, LabHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let spec = LabSpec {
        dir: Some(dir.path().join("lab")),
        faults: Vec::new(),
        net,
    };
    let h = rt.block_on(Lab::start(&spec)).expect("lab starts");
    let mut site: toml::Table = std::fs::read_to_string(h.site_file())
        .unwrap()
        .parse()
        .unwrap();
    assert!(site.remove("vantage").is_some());
    std::fs::write(h.site_file(), toml::to_string(&site).unwrap()).unwrap();
    (rt, h, dir)
}

fn trace_cmd(h: &LabHandle, target: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(TOOL);
    c.args(["trace", target, "--format", "json", "--timeout", "700ms"])
        .args(["--scope", &h.scope().allowed[0].to_string()])
        .arg("--config-dir")
        .arg(h.config_dir())
        .arg("--stacks-dir")
        .arg(h.stacks_dir())
        .args(extra)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Issue 9, item 5: a transport that never answers is the tool's failure (cannot judge, exit
/// 3) reached within the run's budget, never a network verdict; its grandchildren die with it.
#[test]
fn a_hung_transport_is_cannot_judge_within_the_budget_and_leaves_no_process() {
    let (_rt, h, _dir) = lab_without_site(91);
    let marker = format!("1000.{}", std::process::id());
    let hang = format!("sh -c 'sleep {marker}' --");
    let started = Instant::now();
    let out = trace_cmd(
        &h,
        "qdrant",
        &[
            "--budget",
            "4s",
            "--via",
            &format!("lxc={hang}"),
            "--via",
            &format!("vm={hang}"),
            "--agent-path",
            agent_bin(),
        ],
    )
    .output()
    .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(3), "{v:#}");
    assert_eq!(v["verdict"], "cannot-judge", "{v:#}");
    assert!(took < Duration::from_secs(4 + 3), "took {took:?}");
    let guest_steps: Vec<&Value> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["from"] != "host")
        .collect();
    assert!(!guest_steps.is_empty());
    for s in guest_steps {
        assert_eq!(s["verdict"], "cannot-judge", "{s:#}");
        assert_eq!(s["code"], "PD-RUN-002", "{s:#}");
    }
    std::thread::sleep(Duration::from_millis(200));
    let left = processes_with(&format!("sleep {marker}"));
    assert!(left.is_empty(), "transport processes survived: {left:?}");
}

/// Issue 10, item 7: a trace of qdrant makes one transport call into each guest, counted by
/// stand-in `pct` and `qm` that log each call and then run the agent here.
#[test]
fn a_trace_of_qdrant_makes_one_transport_call_per_guest() {
    let (_rt, h, dir) = lab_without_site(92);
    let log = dir.path().join("calls.log");
    // pct exec ID -- CMD...
    let pct = script(
        dir.path(),
        "pct",
        &format!(
            "echo \"lxc $2 $*\" >> {}\nshift 3\nexec \"$@\"",
            log.display()
        ),
    );
    // qm guest exec ID [--timeout N] [--pass-stdin 1] -- CMD... ; answers guest-exec-status JSON
    let qm = script(
        dir.path(),
        "qm",
        &format!(
            r#"echo "vm $3 $*" >> {}
while [ "$1" != "--" ]; do shift; done; shift
exec python3 -c '
import json, subprocess, sys
p = subprocess.run(sys.argv[1:], stdin=sys.stdin, capture_output=True)
print(json.dumps({{"exited": 1, "exitcode": p.returncode, "out-data": p.stdout.decode(), "err-data": p.stderr.decode()}}))
' "$@""#,
            log.display()
        ),
    );
    let out = trace_cmd(
        &h,
        "qdrant",
        &[
            "--via",
            &format!("lxc={} exec {{id}} --", pct.display()),
            "--via",
            &format!("vm={} guest exec {{id}} --", qm.display()),
            "--agent-path",
            agent_bin(),
        ],
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    let mut per_guest: std::collections::BTreeMap<String, usize> = Default::default();
    for l in calls.lines() {
        let mut w = l.split_whitespace();
        let guest = format!("{}:{}", w.next().unwrap(), w.next().unwrap());
        *per_guest.entry(guest).or_default() += 1;
    }
    // The guests qdrant's trace starts from, each reached through its agent.
    let guests_in_plan: std::collections::BTreeSet<String> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["from"].as_str().unwrap().to_string())
        .filter(|f| f != "host")
        .collect();
    assert!(
        guests_in_plan.len() >= 2,
        "qdrant's trace starts in guests: {v:#}"
    );
    assert_eq!(
        per_guest
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        guests_in_plan,
        "{calls}"
    );
    for (g, n) in &per_guest {
        assert_eq!(*n, 1, "{g} got {n} transport calls:\n{calls}");
    }
    // and every guest step really ran in its agent, healthy on the lab
    for s in v["steps"].as_array().unwrap() {
        if s["from"] != "host" {
            assert!(
                s["vantage"]["via"].as_str().unwrap().contains(" exec "),
                "{s:#}"
            );
            assert_eq!(s["vantage"]["substituted"], false, "{s:#}");
        }
    }
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["verdict"], "healthy", "{v:#}");
}

/// Run the agent binary on `job`, optionally in a new, empty network namespace.
fn run_agent(job: &[u8], prefix: &[&str]) -> std::process::Output {
    common::run_agent(prefix, agent_bin(), job)
}

fn job_json(steps: &[Step], scope: &[&str], body_limit: usize) -> Vec<u8> {
    serde_json::to_vec(&phoenix_doctor::vantage::Job {
        version: phoenix_doctor::vantage::AGENT_PROTOCOL_VERSION,
        timeout_ms: 500,
        budget_ms: 20_000,
        body_limit,
        scope: scope.iter().map(|s| s.parse().unwrap()).collect(),
        prior: Default::default(),
        steps: steps.to_vec(),
        read: Vec::new(),
        warn_days: 14,
    })
    .unwrap()
}

/// Issue 9, item 11: the agent enforces the job's scope: a step to 8.8.8.8 (or its IPv4-mapped
/// form, or the metadata address) is answered out-of-scope and sends nothing. The agent runs in
/// a new network namespace with no route out, as a belt.
#[test]
fn the_agent_refuses_steps_outside_the_jobs_scope() {
    let steps = [
        tcp_step("public.tcp", VantageRef::Host, "8.8.8.8:53", &[]),
        tcp_step("mapped.tcp", VantageRef::Host, "[::ffff:8.8.8.8]:53", &[]),
        tcp_step("metadata.tcp", VantageRef::Host, "169.254.169.254:80", &[]),
        tcp_step("lo.tcp", VantageRef::Host, "127.0.0.1:9", &[]),
    ];
    let out = run_agent(
        &job_json(&steps, &["127.0.0.0/8", "::/0"], 1024),
        &["unshare", "-n"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res: phoenix_doctor::vantage::JobResult = serde_json::from_slice(&out.stdout).unwrap();
    let got: Vec<(&str, Outcome)> = res
        .observations
        .iter()
        .map(|o| (o.step.as_str(), o.outcome))
        .collect();
    assert_eq!(
        got,
        [
            ("public.tcp", Outcome::OutOfScope),
            ("mapped.tcp", Outcome::OutOfScope),
            ("metadata.tcp", Outcome::OutOfScope),
            // in scope: really tried (loopback is down in the new namespace)
            ("lo.tcp", Outcome::Failed),
        ]
    );
    for o in &res.observations[..3] {
        assert_eq!(
            o.reason.map(|x| x.to_string()).as_deref(),
            Some("out-of-scope"),
            "{o:?}"
        );
        assert!(o.message.starts_with("not sent"), "{o:?}");
    }
    // A job without a scope allows nothing.
    let out = run_agent(&job_json(&steps[3..], &[], 1024), &["unshare", "-n"]);
    let res: phoenix_doctor::vantage::JobResult = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(res.observations[0].outcome, Outcome::OutOfScope);
}

/// Issue 9, item 12: a job of 100k steps or with a huge body limit is refused (exit 2, one
/// clear line); 10,000 steps run with at most 64 in flight, so even with 256 file descriptors
/// every closed port is `refused`, never `filtered` or "Too many open files".
#[test]
fn the_agent_bounds_its_jobs_and_its_concurrency() {
    let step = |i: usize| {
        tcp_step(
            &format!("s{i}.tcp"),
            VantageRef::Host,
            &format!("127.0.{}.{}:9", 183 + i / 250 % 8, 1 + i % 250),
            &[],
        )
    };
    let huge: Vec<Step> = (0..100_000).map(step).collect();
    let out = run_agent(&job_json(&huge, &["127.0.0.0/8"], 1024), &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("100000 steps") && err.contains("at most 10000"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let out = run_agent(&job_json(&huge[..1], &["127.0.0.0/8"], 64 << 20), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("body_limit"));

    let many: Vec<Step> = (0..10_000).map(step).collect();
    let started = Instant::now();
    // The bound under test is concurrency, not speed: a loaded 2-core machine gets time.
    let mut job: serde_json::Value =
        serde_json::from_slice(&job_json(&many, &["127.0.0.0/8"], 1024)).unwrap();
    job["budget_ms"] = 300_000.into();
    let out = run_agent(
        &serde_json::to_vec(&job).unwrap(),
        &["prlimit", "--nofile=256", "--"],
    );
    eprintln!("agent: 10,000 refused TCP steps in {:?}", started.elapsed());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res: phoenix_doctor::vantage::JobResult = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(res.observations.len(), 10_000);
    let odd: Vec<_> = res
        .observations
        .iter()
        .filter(|o| {
            o.outcome != Outcome::Failed
                || o.reason != Some(phoenix_doctor::observe::Reason::Refused)
        })
        .take(3)
        .collect();
    assert!(odd.is_empty(), "{odd:?}");
}

/// The engine and a job's steps at a guest: a hung agent in one guest does not hold the other
/// guest's job, and each guest's transport is called once.
#[test]
fn a_hung_guest_does_not_hold_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let marker = format!("1001.{}", std::process::id());
    let fake = script(
        dir.path(),
        "guest",
        &format!(
            "echo \"$1\" >> {}\nif [ \"$1\" = 1 ]; then exec sleep {marker}; fi\nshift 2\nexec \"$@\"",
            log.display()
        ),
    );
    let v = vantages(&[format!("lxc={} {{id}} --", fake.display())], agent_bin());
    let plan = Plan {
        target: "t".into(),
        hops: Vec::new(),
        steps: vec![
            tcp_step("a1.tcp", VantageRef::Lxc(1), "127.0.0.184:9", &[]),
            tcp_step("a2.tcp", VantageRef::Lxc(1), "127.0.0.184:10", &["a1.tcp"]),
            tcp_step("b1.tcp", VantageRef::Lxc(2), "127.0.0.184:11", &[]),
            tcp_step("b2.tcp", VantageRef::Lxc(2), "127.0.0.184:12", &["b1.tcp"]),
        ],
    };
    let started = Instant::now();
    let run = rt().block_on(execute(
        &plan,
        &loopback_settings(Arc::new(v), Duration::from_secs(3)),
    ));
    assert!(started.elapsed() < Duration::from_secs(4));
    let got: Vec<(&str, Outcome)> = run
        .observations
        .iter()
        .map(|o| (o.step.as_str(), o.outcome))
        .collect();
    assert_eq!(
        got,
        [
            ("a1.tcp", Outcome::ToolError),
            ("a2.tcp", Outcome::ToolError),
            ("b1.tcp", Outcome::Failed),
            ("b2.tcp", Outcome::Blocked),
        ]
    );
    assert!(run.observations[0].message.contains("no answer within"));
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(calls.lines().filter(|l| *l == "1").count(), 1, "{calls}");
    assert_eq!(calls.lines().filter(|l| *l == "2").count(), 1, "{calls}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(processes_with(&format!("sleep {marker}")).is_empty());
}
