//! Bounded property tests over the file readers: the platform config reader (arbitrary bytes and
//! mutated reference JSON, through the model, lint, `show dns` and the plan), the site file, and
//! the hosts and resolv.conf parsers. Nothing may panic, and every failure must be an input
//! error (`Error::Input`, exit 2) that names the file.
//!
//! `PROPTEST_CASES` (default 256 here) sets the number of cases per property.

use phoenix_doctor::config;
use phoenix_doctor::error::{Error, Kind};
use phoenix_doctor::{model, plan};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn reference(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/configs/reference/etc")
            .join(name),
    )
    .unwrap()
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A copy of the reference config dir (etc + stacks) to mutate one file of.
struct Tree {
    _t: tempfile::TempDir,
    etc: PathBuf,
}

thread_local! {
    /// One tree per test thread (a property's cases run one after another on its thread).
    static TREE: Tree = new_tree();
}

/// Write `bytes` as `etc/<name>` of this thread's tree, run `f`, then restore the original.
fn with_file<T>(name: &str, bytes: &[u8], f: impl FnOnce(&Path) -> T) -> T {
    TREE.with(|t| {
        let p = t.etc.join(name);
        let original = std::fs::read(&p).ok();
        std::fs::write(&p, bytes).unwrap();
        let out = f(&t.etc);
        match original {
            Some(o) => std::fs::write(&p, o).unwrap(),
            None => std::fs::remove_file(&p).unwrap(),
        }
        out
    })
}

fn new_tree() -> Tree {
    let t = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/configs/reference");
    for sub in ["etc", "stacks"] {
        let st = std::process::Command::new("cp")
            .arg("-r")
            .arg(src.join(sub))
            .arg(t.path())
            .status()
            .unwrap();
        assert!(st.success());
    }
    let etc = t.path().join("etc");
    Tree { _t: t, etc }
}

/// Load, lint, render DNS and plan qdrant; an error must be an input error naming `file`.
fn check_pipeline(etc: &Path, file: &str) -> Result<(), TestCaseError> {
    match model::load(etc, None) {
        Ok(m) => {
            let findings = phoenix_doctor::lint::run(&m);
            // (the lint table and JSON renderers are the binary's: src/app/lint_cmd.rs tests them)
            serde_json::to_string(&findings).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let _ = model::render::dnsmasq(&m);
            let defs = plan::load_defs(None).unwrap();
            // An unknown target is a clean input error too; any other outcome is fine.
            if let Err(e) = plan::build(&m, &defs, "qdrant") {
                prop_assert!(matches!(e, Error::Plan(_)), "plan: {e:?}");
            }
            Ok(())
        }
        Err(e) if e.kind() == Kind::Input => {
            let msg = e.to_string();
            prop_assert!(msg.contains(file), "error does not name {file}: {msg}");
            prop_assert!(!msg.contains('\n') || msg.lines().count() < 4, "{msg}");
            Ok(())
        }
        Err(e) => Err(TestCaseError::fail(format!("not an input error: {e:?}"))),
    }
}

/// One edit of a text: truncate, replace a range, duplicate a range, or insert a token.
#[derive(Debug, Clone)]
enum Edit {
    Truncate(usize),
    Replace(usize, usize, Vec<u8>),
    Duplicate(usize, usize),
    Insert(usize, &'static str),
}

const TOKENS: &[&str] = &[
    "null",
    "true",
    "[]",
    "{}",
    "\"\"",
    "-1",
    "1e400",
    "99999999999999999999",
    "\"dhcp\"",
    "\"10.0.0.0/0\"",
    "\"\\u0000\"",
    "\"\\u001b[2J\"",
    ",",
    ":",
    "\"a\": 1,",
    "{\"x\":",
    "]",
    "}",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Truncate),
        (
            any::<usize>(),
            0usize..16,
            proptest::collection::vec(any::<u8>(), 0..8)
        )
            .prop_map(|(a, n, b)| Edit::Replace(a, n, b)),
        (any::<usize>(), 1usize..200).prop_map(|(a, n)| Edit::Duplicate(a, n)),
        (any::<usize>(), proptest::sample::select(TOKENS)).prop_map(|(a, t)| Edit::Insert(a, t)),
    ]
}

fn apply(text: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = text.to_vec();
    for e in edits {
        let len = v.len().max(1);
        match e {
            Edit::Truncate(a) => v.truncate(a % len),
            Edit::Replace(a, n, b) => {
                let a = a % len;
                let end = (a + n).min(v.len());
                let a = a.min(end);
                v.splice(a..end, b.iter().copied());
            }
            Edit::Duplicate(a, n) => {
                let a = (a % len).min(v.len());
                let end = (a + n).min(v.len());
                let chunk = v[a..end].to_vec();
                v.splice(end..end, chunk);
            }
            Edit::Insert(a, t) => {
                let a = (a % len).min(v.len());
                v.splice(a..a, t.bytes());
            }
        }
    }
    v
}

const FILES: &[&str] = &[
    "phoenix_hypervisor_config.json",
    "phoenix_lxc_configs.json",
    "phoenix_vm_configs.json",
    "certificate-manifest.json",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_reference_configs_never_panic(
        which in 0usize..FILES.len(),
        edits in proptest::collection::vec(edit(), 1..4),
    ) {
        let name = FILES[which];
        let text = reference(name);
        with_file(name, &apply(text.as_bytes(), &edits), |etc| check_pipeline(etc, name))?;
    }

    #[test]
    fn arbitrary_bytes_as_a_config_never_panic(
        which in 0usize..FILES.len(),
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let name = FILES[which];
        with_file(name, &bytes, |etc| check_pipeline(etc, name))?;
    }

    #[test]
    fn arbitrary_json_text_never_panics(s in "[\\[\\]{}\",:0-9a-z\\\\ .eE+-]{0,300}") {
        let _ = config::json::parse(&s);
    }

    #[test]
    fn arbitrary_site_files_are_input_errors_naming_the_file(
        s in "(\\[(ports|paths|vantage\\.\"(lxc:1|vm:2|host|x)\")\\]\n|[a-z_]{1,12} = (\"[^\"\n]{0,12}\"|-?[0-9]{1,7}|true|\\{ a = 1 \\}|\\[1\\])\n|token = \"S3CRET\"\n){0,12}",
    ) {
        match config::site::read("etc/phoenix-doctor.toml", &s) {
            Ok(_) => {}
            Err(Error::Config(c)) => {
                prop_assert_eq!(&c.file, "etc/phoenix-doctor.toml");
                let m = c.to_string();
                prop_assert!(!m.contains("S3CRET"), "{m}");
            }
            Err(e) => return Err(TestCaseError::fail(format!("{e:?}"))),
        }
    }

    #[test]
    fn arbitrary_site_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        with_file("phoenix-doctor.toml", &bytes, |etc| {
            check_pipeline(etc, "phoenix-doctor.toml")?;
            if let Err(e) = phoenix_doctor::vantage::site::site_vantages(etc) {
                prop_assert!(
                    e.kind() == Kind::Input && e.to_string().contains("phoenix-doctor.toml"),
                    "{e:?}"
                );
            }
            Ok(())
        })?;
    }

    #[test]
    fn hosts_and_resolv_conf_parsing_never_panics(
        s in "([ \t]*(#|[0-9a-f:.%]{0,40}|nameserver|search|domain|options)[ \t]+[^\n]{0,40}\n){0,20}",
        name in "[a-z.]{0,20}",
    ) {
        let p = Path::new("/v/hosts");
        for e in phoenix_doctor::probe::dns::hosts_entries(p, &s, &name) {
            prop_assert!(e.line >= 1 && (e.line as usize) <= s.lines().count());
        }
        let rc = phoenix_doctor::probe::dns::parse_resolv_conf(p, &s);
        prop_assert!(rc.nameservers.len() <= s.lines().count());
    }
}
