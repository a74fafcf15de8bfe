//! `serve` under a real Prometheus: two labs on loopback (healthy, and with an expired gateway
//! leaf), one `phoenix-doctor serve` per lab, and `/usr/bin/prometheus` scraping `/probe` the way
//! docs/prometheus.md configures it; the series are read back through Prometheus' HTTP API.
//! Also: the alerting rules of docs/prometheus/rules.yml pass `promtool test rules`.
//!
//! Run it under the network lock: `flock /tmp/pd-net.lock cargo test --test serve`.

use phoenix_doctor::lab::{Fault, Lab, LabHandle, LabSpec};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Kills and reaps a child process when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_lab(rt: &tokio::runtime::Runtime, net: u8, faults: &[Fault], dir: &Path) -> LabHandle {
    rt.block_on(Lab::start(&LabSpec {
        dir: Some(dir.to_path_buf()),
        faults: faults.to_vec(),
        net,
    }))
    .unwrap_or_else(|e| panic!("lab on 127.{net}.0.0/24 did not start: {e}"))
}

/// Start `phoenix-doctor serve` on a free loopback port against the lab; returns the process,
/// its address and its stderr (collected as it comes).
fn start_serve(h: &LabHandle) -> (Reaped, String, Arc<Mutex<String>>) {
    let scope = h.scope().allowed[0].to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"))
        .args(["serve", "--listen", "127.0.0.1:0", "--timeout", "700ms"])
        .args(["--scope", &scope])
        .arg("--config-dir")
        .arg(h.config_dir())
        .arg("--stacks-dir")
        .arg(h.stacks_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs phoenix-doctor serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    let child = Reaped(child);
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("serve did not say where it listens: {first:?}"))
        .to_string();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for l in lines.map_while(|l| l.ok()) {
            sink.lock().unwrap().push_str(&l);
            sink.lock().unwrap().push('\n');
        }
    });
    (child, addr, log)
}

/// A free loopback port (bound, then released for the child to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET over HTTP/1.0 from a loopback address; the body, or None when nothing answers.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// The samples of an instant query: (labels, value).
fn query(prom: &str, metric: &str) -> Vec<(Value, f64)> {
    let Some(body) = http_get(prom, &format!("/api/v1/query?query={metric}")) else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    v["data"]["result"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| {
                    let val = r["value"][1].as_str()?.parse().ok()?;
                    Some((r["metric"].clone(), val))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The value of the one sample of `metric` whose labels include every pair of `want`.
fn one(prom: &str, metric: &str, want: &[(&str, &str)]) -> Option<f64> {
    let hits: Vec<f64> = query(prom, metric)
        .into_iter()
        .filter(|(l, _)| want.iter().all(|(k, v)| l[*k] == *v))
        .map(|(_, v)| v)
        .collect();
    (hits.len() == 1).then(|| hits[0])
}

/// What Prometheus must show of the two labs (through `p`), each named: expected from the faults'
/// definitions.
fn checks(p: &str, now: f64) -> Vec<(&'static str, bool)> {
    let probe = |lab: &'static str| {
        [
            ("job", "phoenix-doctor"),
            ("lab", lab),
            ("target", "qdrant"),
        ]
    };
    let verdict = |lab: &'static str, v: &'static str| {
        one(
            p,
            "phoenix_doctor_trace_verdict",
            &[("lab", lab), ("target", "qdrant"), ("verdict", v)],
        )
    };
    let expiry = |lab: &'static str| {
        one(
            p,
            "phoenix_doctor_cert_expiry_timestamp_seconds",
            &[("lab", lab), ("hop", "host-gateway")],
        )
    };
    let runs = |lab: &'static str, v: &'static str| {
        one(
            p,
            "phoenix_doctor_exporter_runs_total",
            &[
                ("job", "phoenix-doctor-exporter"),
                ("lab", lab),
                ("verdict", v),
            ],
        )
    };
    // Expected from the faults' definitions: the healthy lab is healthy, its leaf valid; the
    // expired leaf makes qdrant's trace diverge first at the gateway's TLS, and the served leaf's
    // notAfter lies in the past.
    vec![
        (
            "up of both /probe scrapes",
            one(p, "up", &probe("good")) == Some(1.0) && one(p, "up", &probe("bad")) == Some(1.0),
        ),
        (
            "good lab healthy",
            one(p, "phoenix_doctor_trace_healthy", &probe("good")) == Some(1.0)
                && verdict("good", "healthy") == Some(1.0)
                && verdict("good", "diverged") == Some(0.0),
        ),
        (
            "bad lab diverged",
            one(p, "phoenix_doctor_trace_healthy", &probe("bad")) == Some(0.0)
                && verdict("bad", "diverged") == Some(1.0)
                && verdict("bad", "cannot-judge") == Some(0.0),
        ),
        (
            "bad lab first divergence at the gateway's TLS",
            one(
                p,
                "phoenix_doctor_step_first_divergence",
                &[("lab", "bad"), ("step", "host-gateway.tls")],
            ) == Some(1.0),
        ),
        (
            "good leaf valid, bad leaf expired",
            expiry("good").is_some_and(|t| t > now) && expiry("bad").is_some_and(|t| t < now),
        ),
        (
            "per-phase durations and the result's age",
            one(
                p,
                "phoenix_doctor_probe_duration_seconds",
                &[
                    ("lab", "good"),
                    ("step", "host-gateway.tls"),
                    ("phase", "tls"),
                ],
            )
            .is_some()
                && one(p, "phoenix_doctor_result_age_seconds", &probe("good")).is_some(),
        ),
        (
            "exporter counts its runs",
            runs("good", "healthy").is_some_and(|n| n >= 1.0)
                && runs("bad", "diverged").is_some_and(|n| n >= 1.0),
        ),
    ]
}

/// Prometheus with the scrape config of docs/prometheus.md, scraping both exporters; its
/// TSDB and log under `dir`. Returns it, its address and its log file.
fn start_prometheus(dir: &Path, good_addr: &str, bad_addr: &str) -> (Reaped, String, PathBuf) {
    // The scrape config of docs/prometheus.md: targets are phoenix-doctor target names,
    // relabelled into `?target=`; here the exporter's address comes per lab.
    let prom_addr = format!("127.0.0.1:{}", free_port());
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: phoenix-doctor
    metrics_path: /probe
    static_configs:
      - targets: [qdrant]
        labels: {{__exporter: "{good_addr}", lab: good}}
      - targets: [qdrant]
        labels: {{__exporter: "{bad_addr}", lab: bad}}
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: target
      - source_labels: [__exporter]
        target_label: __address__
  - job_name: phoenix-doctor-exporter
    static_configs:
      - targets: ["{good_addr}"]
        labels: {{lab: good}}
      - targets: ["{bad_addr}"]
        labels: {{lab: bad}}
"#
        ),
    )
    .unwrap();
    let prom_log = dir.join("prometheus.log");
    let prom = Reaped(
        Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&prom_log).unwrap())
            .spawn()
            .expect("starts prometheus"),
    );

    (prom, prom_addr, prom_log)
}

#[test]
fn prometheus_scrapes_the_verdicts_of_a_healthy_and_a_broken_lab() {
    assert!(
        Path::new("/usr/bin/prometheus").exists(),
        "/usr/bin/prometheus is missing: .ci/run installs the `prometheus` package"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (good_dir, bad_dir) = (tmp.path().join("good"), tmp.path().join("bad"));
    let good = start_lab(&rt, 72, &[], &good_dir);
    let bad = start_lab(&rt, 73, &[Fault::ExpiredLeaf], &bad_dir);
    let (_good_serve, good_addr, good_log) = start_serve(&good);
    let (_bad_serve, bad_addr, bad_log) = start_serve(&bad);

    let (_prom, prom_addr, prom_log) = start_prometheus(tmp.path(), &good_addr, &bad_addr);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let checks = || checks(&prom_addr, now);
    let started = Instant::now();
    let mut last = checks();
    while last.iter().any(|(_, ok)| !ok) && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(500));
        last = checks();
    }
    let failed: Vec<&str> = last.iter().filter(|(_, ok)| !ok).map(|(n, _)| *n).collect();
    assert!(
        failed.is_empty(),
        "not seen through Prometheus within 60 s: {failed:?}\n\
         good /probe:\n{}\nbad /probe:\n{}\nserve logs:\n{}\n{}\nprometheus log:\n{}",
        http_get(&good_addr, "/probe?target=qdrant").unwrap_or_default(),
        http_get(&bad_addr, "/probe?target=qdrant").unwrap_or_default(),
        good_log.lock().unwrap(),
        bad_log.lock().unwrap(),
        std::fs::read_to_string(&prom_log).unwrap_or_default()
    );
    good.shutdown();
    bad.shutdown();
}

#[test]
fn alerting_rules_pass_promtool() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/prometheus");
    for args in [
        &["check", "rules", "rules.yml"][..],
        &["test", "rules", "rules_test.yml"],
    ] {
        let out = match Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
        {
            Ok(o) => o,
            Err(e) => {
                eprintln!("skipping `promtool {}`: promtool is not runnable ({e}); .ci/run installs the `prometheus` package", args.join(" "));
                return;
            }
        };
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_systemd_unit_passes_systemd_analyze() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/prometheus/phoenix-doctor.service"),
    )
    .unwrap();
    // Verified with this build in place of the installed binary.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("phoenix-doctor.service");
    std::fs::write(
        &copy,
        unit.replace(
            "/usr/local/bin/phoenix-doctor",
            env!("CARGO_BIN_EXE_phoenix-doctor"),
        ),
    )
    .unwrap();
    let out = match Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("skipping: systemd-analyze is not runnable ({e})");
            return;
        }
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}

#[test]
fn serve_refuses_unreadable_configs_and_options_that_do_not_apply() {
    for (args, want) in [
        (
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--config-dir",
                "/nonexistent/etc",
            ][..],
            "/nonexistent/etc",
        ),
        (
            &["serve", "--listen", "127.0.0.1:0", "--replay", "run.json"],
            "--replay",
        ),
        (
            &["serve", "--listen", "127.0.0.1:0", "--max-concurrent", "0"],
            "--max-concurrent",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
