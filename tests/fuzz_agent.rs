//! Property tests (bounded, part of `cargo test`) for what crosses the guest boundary: the
//! agent's job parser, the host's parser of the agent's answer, and `qm guest exec`'s JSON.
//! Arbitrary bytes and mutated valid documents must give a clean result or a clean error,
//! never a panic, and a parsed answer always has exactly one observation per step.

use phoenix_doctor::plan::{ProbeSpec, Step, VantageRef};
use phoenix_doctor::vantage::job::{parse_job, parse_result};
use phoenix_doctor::vantage::transport::parse_qm_output;
use phoenix_doctor::vantage::{Job, JobResult, AGENT_PROTOCOL_VERSION};
use proptest::prelude::*;

fn step(id: &str) -> Step {
    Step {
        id: id.into(),
        hop: "h".into(),
        from: VantageRef::Lxc(102),
        to: "x".into(),
        layer: phoenix_doctor::observe::Layer::Tcp,
        probe: ProbeSpec::Tcp {
            addr: "127.0.0.1:9".parse().unwrap(),
        },
        expect: String::new(),
        provenance: Vec::new(),
        depends_on: vec!["a".into()],
        through: Vec::new(),
    }
}

fn valid_job() -> Vec<u8> {
    serde_json::to_vec(&Job {
        version: AGENT_PROTOCOL_VERSION,
        timeout_ms: 500,
        budget_ms: 5000,
        body_limit: 1024,
        scope: vec!["127.0.0.0/8".parse().unwrap()],
        prior: [("p".to_string(), phoenix_doctor::observe::Outcome::Ok)]
            .into_iter()
            .collect(),
        steps: vec![step("a"), step("b")],
        read: vec!["/etc/hosts".into()],
        warn_days: 14,
    })
    .unwrap()
}

fn valid_answer() -> Vec<u8> {
    let mut o = phoenix_doctor::observe::Observation::tool_error(
        "a",
        phoenix_doctor::observe::Phase::Probe,
        "x\u{1b}[2J\0",
    );
    o.outcome = phoenix_doctor::observe::Outcome::Ok;
    serde_json::to_vec(&JobResult {
        version: AGENT_PROTOCOL_VERSION,
        observations: vec![o, phoenix_doctor::observe::Observation::blocked("b", "a")],
        files: vec![phoenix_doctor::vantage::files::FileRead::Text {
            path: "/etc/hosts".into(),
            text: "127.0.0.1 localhost\n".into(),
        }],
    })
    .unwrap()
}

const QM: &[u8] = br#"{"exitcode":0,"exited":1,"out-data":"{\"version\":2}\n","err-data":""}"#;

/// Overwrite, insert or delete bytes of `doc` at the given positions.
fn mutate(doc: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut d = doc.to_vec();
    for &(at, kind, byte) in edits {
        if d.is_empty() {
            d.push(byte);
            continue;
        }
        let at = at % d.len();
        match kind % 3 {
            0 => d[at] = byte,
            1 => d.insert(at, byte),
            _ => {
                d.remove(at);
            }
        }
    }
    d
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_job_parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = parse_job(&bytes) {
            prop_assert_eq!(e.kind(), phoenix_doctor::error::Kind::Input);
            prop_assert!(e.to_string().starts_with("agent: "));
        }
    }

    #[test]
    fn the_job_parser_never_panics_on_mutated_jobs(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8)
    ) {
        let doc = mutate(&valid_job(), &edits);
        match parse_job(&doc) {
            Ok(job) => {
                prop_assert!(job.steps.len() <= phoenix_doctor::vantage::job::MAX_JOB_STEPS);
                prop_assert!(job.body_limit <= phoenix_doctor::vantage::job::MAX_BODY_LIMIT);
            }
            Err(e) => prop_assert_eq!(e.kind(), phoenix_doctor::error::Kind::Input),
        }
    }

    #[test]
    fn the_answer_parser_gives_one_observation_per_step(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8)
    ) {
        let steps = [step("a"), step("b"), step("c")];
        for doc in [bytes, mutate(&valid_answer(), &edits)] {
            if let Ok(obs) = parse_result(&doc, &steps) {
                prop_assert_eq!(obs.len(), steps.len());
                for (o, s) in obs.iter().zip(&steps) {
                    prop_assert_eq!(&o.step, &s.id);
                }
            }
        }
    }

    #[test]
    fn the_qm_parser_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8)
    ) {
        let _ = parse_qm_output(&bytes);
        let _ = parse_qm_output(&mutate(QM, &edits));
    }
}

#[test]
fn the_seeds_are_valid() {
    assert_eq!(parse_job(&valid_job()).unwrap().steps.len(), 2);
    let steps = [step("a"), step("b"), step("c")];
    let obs = parse_result(&valid_answer(), &steps).unwrap();
    assert_eq!(obs[0].outcome, phoenix_doctor::observe::Outcome::Ok);
    assert_eq!(obs[1].outcome, phoenix_doctor::observe::Outcome::Blocked);
    assert_eq!(
        obs[2].outcome,
        phoenix_doctor::observe::Outcome::ToolError,
        "a step the agent did not answer cannot be judged"
    );
    assert_eq!(parse_qm_output(QM).unwrap().code, Some(0));
}
