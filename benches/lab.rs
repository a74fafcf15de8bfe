//! Lab start-up: `Lab::start` (bind, PKI, config dir, components) and the first TCP connect to
//! the gateway, then `stop`. Prints min / median / max over 20 runs.
//!
//! Run: `cargo bench --bench lab`

use phoenix_doctor::lab::{Lab, LabSpec};
use std::time::{Duration, Instant};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut start = Vec::new();
    let mut ready = Vec::new();
    for i in 0..20u8 {
        let spec = LabSpec {
            dir: Some(dir.path().join(format!("lab{i}"))),
            faults: vec![],
            net: 200,
        };
        rt.block_on(async {
            let t0 = Instant::now();
            let lab = Lab::start(&spec).await.expect("lab starts");
            start.push(lab.startup_time());
            tokio::net::TcpStream::connect(lab.gateway_addr())
                .await
                .expect("gateway accepts");
            ready.push(t0.elapsed());
            lab.stop().await;
        });
    }
    let show = |name: &str, v: &mut Vec<Duration>| {
        v.sort();
        println!(
            "{name:<28} min {:>7.2} ms  median {:>7.2} ms  max {:>7.2} ms  ({} runs)",
            v[0].as_secs_f64() * 1e3,
            v[v.len() / 2].as_secs_f64() * 1e3,
            v[v.len() - 1].as_secs_f64() * 1e3,
            v.len()
        );
    };
    show("Lab::start", &mut start);
    show("start + first connect", &mut ready);
}
