//! Baselines on the platform's reference configuration: the lab serves the platform built from
//! fixtures/configs/reference (with the defects that configuration has), and
//! fixtures/baselines/known.toml, written by hand from those defects, turns `check --all` from
//! always red into a gate that fails on a new fault only.

use phoenix_doctor::lab::{Fault, Lab, LabHandle, LabSpec, Reference};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn known() -> PathBuf {
    fixture("fixtures/baselines/known.toml")
}

struct RefLab {
    _rt: tokio::runtime::Runtime,
    h: LabHandle,
    dir: tempfile::TempDir,
}

fn start(net: u8, faults: &[Fault]) -> RefLab {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let reference = Reference::load(&fixture("fixtures/configs/reference/etc"), None).unwrap();
    let spec = LabSpec {
        dir: Some(dir.path().join("lab")),
        faults: faults.to_vec(),
        net,
    };
    let h = rt
        .block_on(Lab::start_reference(&spec, &reference))
        .expect("the reference lab starts");
    RefLab { _rt: rt, h, dir }
}

/// Run the binary against the lab: (exit code, stdout).
fn run(lab: &RefLab, args: &[&str]) -> (i32, String) {
    let scope = lab.h.scope().allowed[0].to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"))
        .arg("--config-dir")
        .arg(lab.h.config_dir())
        .args(args)
        .args(["--scope", &scope, "--timeout", "700ms"])
        .env("NO_COLOR", "1")
        .output()
        .expect("runs phoenix-doctor");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
    (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

/// `check --all --format junit`, with or without a baseline.
fn junit(lab: &RefLab, baseline: Option<&Path>) -> (i32, String) {
    let mut args = vec!["check", "--all", "--format", "junit"];
    if let Some(b) = baseline {
        args.extend(["--baseline", b.to_str().unwrap()]);
    }
    run(lab, &args)
}

/// The report of `target` in a `check` JSON document.
fn report<'a>(v: &'a Value, target: &str) -> &'a Value {
    v["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["target"] == target)
        .unwrap_or_else(|| panic!("no report for {target}"))
}

fn check_json(lab: &RefLab, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["check", "--all", "--format", "json"];
    args.extend_from_slice(extra);
    let (code, out) = run(lab, &args);
    let json = out.split("\nphoenix-doctor:").next().unwrap_or(&out);
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"));
    (code, v)
}

/// (target, code, hop, accepted) of every live error finding.
fn live_errors(v: &Value) -> Vec<(String, String, String, bool)> {
    let mut out = Vec::new();
    for r in v["reports"].as_array().unwrap() {
        for f in r["findings"].as_array().unwrap() {
            if f["origin"] == "live" && f["severity"] == "error" {
                out.push((
                    r["target"].as_str().unwrap().to_string(),
                    f["code"].as_str().unwrap().to_string(),
                    f["hop"].as_str().unwrap().to_string(),
                    !f["accepted"].is_null(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn s(x: &str) -> String {
    x.to_string()
}

/// The known live defects of the reference configuration, from its files (not from a run):
/// the gateway certificate (certificate-manifest.json) names nginx and portainer only, so every
/// other name served through the gateway fails verification; qdrant's router is on `websecure`
/// only, so the gateway's `web` hop has no route for it; nginx-router sends plain HTTP to :443.
fn known_defects() -> Vec<(String, String, String)> {
    let mut v = vec![
        (s("nginx"), s("PD-HTTP-002"), s("router-nginx")),
        (s("qdrant"), s("PD-HTTP-001"), s("gateway-router")),
    ];
    for t in [
        "qdrant",
        "granite-embedding",
        "granite-3b",
        "ollama",
        "llamacpp",
    ] {
        v.push((s(t), s("PD-TLS-002"), s("host-gateway")));
    }
    v.sort();
    v
}

/// (b) With known.toml: exit 0, each known finding shown and marked accepted, in every format.
fn known_entries_are_accepted(lab: &RefLab, file: &Path) {
    // (b) With known.toml: exit 0, each known finding shown and marked accepted with its reason.
    let (code, v) = check_json(lab, &["--baseline", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["verdict"], "healthy");
    let errors = live_errors(&v);
    assert_eq!(errors.len(), known_defects().len());
    assert!(errors.iter().all(|e| e.3), "all accepted: {errors:?}");
    let nginx = report(&v, "nginx");
    assert_eq!(nginx["verdict"], "healthy");
    assert!(nginx["first_divergence"].is_null());
    let f = nginx["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "PD-HTTP-002")
        .unwrap();
    assert!(f["accepted"]["reason"]
        .as_str()
        .unwrap()
        .contains("plain HTTP to NGINX's TLS port 443"));
    assert_eq!(f["accepted"]["expires"], "2027-06-30");
    assert_eq!(v["baseline"]["file"], file.to_str().unwrap());
    assert_eq!(v["baseline"]["stale"], serde_json::json!([]));
    assert!(v["baseline"]["accepted"].as_u64().unwrap() >= known_defects().len() as u64);
    // Each report, with its `accepted` findings and `baseline` summary, is a documented trace report.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("docs/schema/trace-report.v1.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    for r in v["reports"].as_array().unwrap() {
        let errors: Vec<String> = validator.iter_errors(r).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", r["target"]);
        assert_eq!(r["baseline"], v["baseline"]);
    }

    // `trace` one target: the entries for other targets are not stale (they were not looked at).
    let (code, out) = run(
        lab,
        &[
            "trace",
            "nginx",
            "--format",
            "json",
            "--baseline",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let t: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(t["verdict"], "healthy");
    assert_eq!(t["baseline"]["stale"], serde_json::json!([]));
    assert_eq!(t["baseline"]["file"], file.to_str().unwrap());

    // --wait stops at the first attempt when only accepted findings remain.
    let (code, v) = check_json(
        lab,
        &["--baseline", file.to_str().unwrap(), "--wait", "20s"],
    );
    assert_eq!(code, 0, "{v:#}");
    assert!(
        v["reports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["attempts"] == 1),
        "{v:#}"
    );

    // The table says healthy with the count of accepted divergences.
    let (code, out) = run(
        lab,
        &["check", "--all", "--baseline", file.to_str().unwrap()],
    );
    assert_eq!(code, 0);
    assert!(out.contains("trace nginx: HEALTHY (1 accepted)"), "{out}");
    assert!(out.contains("trace qdrant: HEALTHY (2 accepted)"), "{out}");
}

/// JUnit: accepted failures are passed test cases with a note.
fn junit_passes_accepted_failures(lab: &RefLab, file: &Path) {
    // JUnit: accepted failures are passed test cases with a note; nothing fails.
    let (code, xml) = junit(lab, Some(file));
    assert_eq!(code, 0);
    assert!(xml.contains(r#"failures="0""#), "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
    let case = xml
        .split("<testcase ")
        .find(|c| c.starts_with(r#"classname="nginx.router-nginx""#) && c.contains("(http from"))
        .expect("the nginx route's http step");
    assert!(
        case.contains("<system-out>PD-HTTP-002 accepted by the baseline until 2027-06-30"),
        "{case}"
    );
    assert!(
        case.contains(r#"<property name="accepted" value="Traefik&apos;s nginx-router"#),
        "{case}"
    );
    assert!(xml.contains(r#"<property name="baseline.file""#));

    // Without the baseline the same step is a failure.
    let (_, xml) = junit(lab, None);
    let case = xml
        .split("<testcase ")
        .find(|c| c.starts_with(r#"classname="nginx.router-nginx""#) && c.contains("(http from"))
        .unwrap();
    assert!(case.contains("<failure"), "{case}");
}

/// (d) An expired entry counts again; (e) one that matches nothing is stale.
fn expired_and_stale_entries(lab: &RefLab, file: &Path) {
    // (d) An expired entry counts again.
    let expired = lab.dir.path().join("expired.toml");
    let text = std::fs::read_to_string(file).unwrap().replacen(
        "expires = \"2027-06-30\"",
        "expires = \"2020-01-31\"",
        1,
    );
    std::fs::write(&expired, &text).unwrap();
    let (code, v) = check_json(lab, &["--baseline", expired.to_str().unwrap()]);
    assert_eq!(code, 1, "{v:#}");
    let open: Vec<_> = live_errors(&v).into_iter().filter(|e| !e.3).collect();
    assert_eq!(
        open,
        vec![(s("nginx"), s("PD-HTTP-002"), s("router-nginx"), false)]
    );
    let exp = v["baseline"]["expired"].as_array().unwrap();
    assert_eq!(exp.len(), 1, "{exp:?}");
    assert_eq!(exp[0]["code"], "PD-HTTP-002");
    assert_eq!(exp[0]["expires"], "2020-01-31");

    // (e) An entry that matches nothing is reported stale, and changes nothing.
    let stale = lab.dir.path().join("stale.toml");
    std::fs::write(
        &stale,
        format!(
            "{}\n[[accept]]\ncode = \"PD-TCP-001\"\nhop = \"router-ollama\"\nsubject = \"ollama\"\nreason = \"ollama was down (fixed since)\"\n",
            std::fs::read_to_string(file).unwrap()
        ),
    )
    .unwrap();
    let (code, v) = check_json(lab, &["--baseline", stale.to_str().unwrap()]);
    assert_eq!(code, 0, "a stale entry never changes the exit code: {v:#}");
    let st = v["baseline"]["stale"].as_array().unwrap();
    assert_eq!(st.len(), 1, "{st:?}");
    assert_eq!(st[0]["code"], "PD-TCP-001");
    assert_eq!(st[0]["hop"], "router-ollama");
    // known.toml, an empty line, then the [[accept]] header.
    let header = text.lines().count() + 2;
    assert_eq!(st[0]["line"], header as u64, "the line of its [[accept]]");
    let (_, out) = run(
        lab,
        &["check", "--all", "--baseline", stale.to_str().unwrap()],
    );
    assert!(out.contains("stale baseline entry"), "{out}");
}

/// (f) `baseline write` then `--baseline` on the same run.
fn a_written_baseline_accepts_its_run(lab: &RefLab) {
    // (f) `baseline write` then `--baseline` on the same run: exit 0.
    let saved = lab.dir.path().join("run.json");
    let (code, _) = run(
        lab,
        &["check", "--all", "--save-run", saved.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    let written = lab.dir.path().join("written.toml");
    let w = written.to_str().unwrap();
    let (code, out) = run(
        lab,
        &[
            "baseline",
            "write",
            w,
            "--all",
            "--replay",
            saved.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, v) = check_json(lab, &["--replay", saved.to_str().unwrap(), "--baseline", w]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["baseline"]["stale"], serde_json::json!([]));
    // A live run against the same lab is accepted too (nothing volatile was recorded).
    let (code, v) = check_json(lab, &["--baseline", w]);
    assert_eq!(code, 0, "{v:#}");
    // Written again from a live run, it is byte for byte the same file.
    let again = lab.dir.path().join("again.toml");
    let (code, out) = run(
        lab,
        &["baseline", "write", again.to_str().unwrap(), "--all"],
    );
    assert_eq!(code, 0, "{out}");
    let live_text = std::fs::read_to_string(&again).unwrap();
    let replay_text = std::fs::read_to_string(&written).unwrap();
    // The live write also records every static error of the configs.
    for l in replay_text.lines() {
        assert!(live_text.contains(l), "{l} missing from\n{live_text}");
    }
    // It refuses to overwrite without --force, and replaces with it.
    let (code, out) = run(lab, &["baseline", "write", w, "--all"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--force"), "{out}");
    let (code, _) = run(lab, &["baseline", "write", w, "--all", "--force"]);
    assert_eq!(code, 0);
    assert_eq!(std::fs::read_to_string(&written).unwrap(), live_text);
}

#[test]
fn reference_lab_is_red_without_a_baseline_and_green_with_the_known_one() {
    let lab = start(150, &[]);

    // (a) No baseline: the known defects make every run red.
    let (code, v) = check_json(&lab, &[]);
    assert_eq!(code, 1, "{v:#}");
    let found: Vec<(String, String, String)> = live_errors(&v)
        .into_iter()
        .map(|(t, c, h, accepted)| {
            assert!(!accepted);
            (t, c, h)
        })
        .collect();
    assert_eq!(
        found,
        known_defects(),
        "the lab reproduces the reference's defects"
    );
    assert!(v.get("baseline").is_none(), "no baseline, no summary");

    let file = known();
    known_entries_are_accepted(&lab, &file);
    junit_passes_accepted_failures(&lab, &file);
    expired_and_stale_entries(&lab, &file);
    a_written_baseline_accepts_its_run(&lab);
    lab.h.shutdown();
}

#[test]
fn one_new_fault_on_the_reference_lab_is_not_accepted() {
    // (c) qdrant down on top of the known defects.
    let lab = start(151, &[Fault::QdrantDown]);
    let file = known();
    let (code, v) = check_json(&lab, &["--baseline", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["verdict"], "diverged");
    let open: Vec<_> = live_errors(&v).into_iter().filter(|e| !e.3).collect();
    assert_eq!(
        open,
        vec![(s("qdrant"), s("PD-TCP-001"), s("router-qdrant"), false)],
        "only the new fault counts"
    );
    let qdrant = report(&v, "qdrant");
    assert_eq!(qdrant["verdict"], "diverged");
    assert_eq!(qdrant["first_divergence"]["hop"], "router-qdrant");
    assert_eq!(qdrant["first_divergence"]["code"], "PD-TCP-001");

    let (code, xml) = junit(&lab, Some(&file));
    assert_eq!(code, 1);
    let failures: Vec<&str> = xml
        .split("<testcase ")
        .filter(|c| c.contains("<failure"))
        .collect();
    assert!(!failures.is_empty());
    assert!(
        failures
            .iter()
            .all(|c| c.starts_with(r#"classname="qdrant."#)),
        "{failures:?}"
    );
    assert!(failures.iter().any(|c| c.contains("router-qdrant.tcp")));
    lab.h.shutdown();
}

#[test]
fn lint_accepts_the_reference_configs_known_defects() {
    let cfg = fixture("fixtures/configs/reference/etc");
    let lint = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"))
            .arg("--config-dir")
            .arg(&cfg)
            .args(["lint", "--format", "json"])
            .args(extra)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (
            out.status.code().unwrap(),
            v,
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, v, _) = lint(&[]);
    assert_eq!(code, 1);
    assert!(v.get("baseline").is_none());
    let (code, v, err) = lint(&["--baseline", known().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let errors: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .collect();
    assert_eq!(errors.len(), 6);
    assert!(errors.iter().all(|f| f["accepted"]["reason"].is_string()));
    assert_eq!(v["baseline"]["accepted"], 6);
    // The live entries are not lint's to judge: nothing is stale.
    assert_eq!(v["baseline"]["stale"], serde_json::json!([]));
}

#[test]
fn bad_baseline_files_exit_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = fixture("fixtures/configs/reference/etc");
    for (text, line, what) in [
        ("[[accept]]\ncode = \"PD-HTTP-002\"\nreason = \"x\"\nexpires = \"31/01/2027\"\n", 4, "YYYY-MM-DD"),
        ("[[accept]]\ncode = \"PD-HTTP-002\"\n\n[[accept]]\ncode = \"PD-NOSUCH-001\"\nreason = \"x\"\n", 1, "`reason`"),
        ("[[accept]]\ncode = \"PD-HTTP-002\"\nreason = \"x\"\n\n[[accept]]\ncode = \"PD-NOSUCH-001\"\nreason = \"x\"\n", 6, "PD-NOSUCH-001"),
        ("[[accept]\ncode = 1\n", 1, "baseline"),
    ] {
        let f = dir.path().join("bad.toml");
        std::fs::write(&f, text).unwrap();
        for cmd in [&["lint"][..], &["check", "--all", "--replay", "/nonexistent"][..]] {
            let out = Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"))
                .arg("--config-dir")
                .arg(&cfg)
                .args(cmd)
                .arg("--baseline")
                .arg(&f)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd:?} {text}: {err}");
            assert!(
                err.contains(&format!("{}:{line}:", f.display())) && err.contains(what),
                "{cmd:?}: {err}"
            );
            assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
            assert!(!err.contains("panicked"));
        }
    }
    // A missing file, a directory: exit 2 naming it.
    for f in [dir.path().join("missing.toml"), dir.path().to_path_buf()] {
        let out = Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"))
            .arg("--config-dir")
            .arg(&cfg)
            .args(["lint", "--baseline"])
            .arg(&f)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&f.display().to_string()), "{err}");
    }
}
