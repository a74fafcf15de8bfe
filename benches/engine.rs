//! Engine throughput: 1,000 TCP steps (and 1,000 steps of which every tenth depends on a failed
//! one) against a loopback listener, on the default concurrency. Prints the figures.
//!
//! Run: `cargo bench --bench engine`

use phoenix_doctor::engine::{self, Scope, Settings};
use phoenix_doctor::observe::{Layer, Outcome};
use phoenix_doctor::plan::{Hop, Plan, ProbeSpec, Step, VantageRef};
use std::time::{Duration, Instant};

fn plan(n: usize, addr: std::net::SocketAddr, dead: std::net::SocketAddr) -> Plan {
    let mut steps = Vec::with_capacity(n);
    for i in 0..n {
        // Every tenth step targets a closed port; the step after it depends on it.
        let target = if i % 10 == 0 { dead } else { addr };
        let depends_on = if i % 10 == 1 {
            vec![format!("s{}.tcp", i - 1)]
        } else {
            vec![]
        };
        steps.push(Step {
            id: format!("s{i}.tcp"),
            hop: format!("s{i}"),
            from: VantageRef::Host,
            to: "listener".into(),
            layer: Layer::Tcp,
            probe: ProbeSpec::Tcp { addr: target },
            expect: "open".into(),
            provenance: vec![],
            depends_on,
            through: vec![],
        });
    }
    let hops = (0..n)
        .map(|i| Hop {
            id: format!("s{i}"),
            from: VantageRef::Host,
            to: "listener".into(),
            from_label: String::new(),
            title: String::new(),
            path: String::new(),
        })
        .collect();
    Plan {
        target: "bench".into(),
        hops,
        steps,
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                if let Ok((s, _)) = listener.accept().await {
                    drop(s);
                }
            }
        });
        // A port that was just free: connects are refused at once.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let settings = Settings {
            timeout: Duration::from_secs(2),
            budget: Duration::from_secs(60),
            scope: Scope { allowed: vec!["127.0.0.0/8".parse().unwrap()] },
            ..Settings::default()
        };
        for n in [100usize, 1000, 5000] {
            let p = plan(n, addr, dead);
            let t = Instant::now();
            let run = engine::execute(&p, &settings).await;
            let dt = t.elapsed();
            let ok = run.observations.iter().filter(|o| o.outcome == Outcome::Ok).count();
            let blocked = run.observations.iter().filter(|o| o.outcome == Outcome::Blocked).count();
            println!(
                "engine: {n:>5} tcp steps in {:>8.1} ms ({:.0} steps/s; {ok} ok, {blocked} blocked)",
                dt.as_secs_f64() * 1000.0,
                n as f64 / dt.as_secs_f64()
            );
        }
    });
}
