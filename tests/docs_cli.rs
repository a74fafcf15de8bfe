//! The documentation against the command line it describes: every command, flag and finding code
//! that `README.md` or `docs/*.md` names exists in the binary (its `--help` tree and `explain`),
//! and every command and flag of the binary is described in `docs/cli.md`.

use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

fn bin(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_phoenix-doctor"))
        .args(args)
        .env("COLUMNS", "200")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The names listed under `heading:` in a clap help text (the first word of each entry).
fn section<'a>(help: &'a str, heading: &str, entry: &Regex) -> Vec<&'a str> {
    help.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .filter_map(|l| entry.captures(l).map(|c| c.get(1).unwrap().as_str()))
        .collect()
}

/// Every command path (`""` is the top level, `"probe dns"`) and the flags it accepts.
fn command_tree() -> BTreeMap<String, BTreeSet<String>> {
    let sub = Regex::new(r"^  ([a-z][a-z-]*)  ").unwrap();
    let flag = Regex::new(r"^\s+(?:-[a-zA-Z], )?(--[a-z][a-z0-9-]*)").unwrap();
    let mut tree = BTreeMap::new();
    let mut todo = vec![String::new()];
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.split_whitespace().collect();
        args.push("--help");
        let help = bin(&args);
        for s in section(&help, "Commands:", &sub) {
            if s != "help" {
                todo.push(format!("{path} {s}").trim().to_string());
            }
        }
        let flags = section(&help, "Options:", &flag);
        tree.insert(path, flags.into_iter().map(String::from).collect());
    }
    tree
}

/// README.md and every docs/*.md, by name.
fn docs() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.strip_prefix(root).unwrap().display().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// The code in a Markdown text: each line of a fenced block, and each inline `span`.
fn code(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    let span = Regex::new(r"`([^`\n]+)`").unwrap();
    let mut continued = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            // a shell line continued with `\` is one command
            if let Some(head) = line.strip_suffix('\\') {
                continued.push_str(head);
                continue;
            }
            let whole = std::mem::take(&mut continued) + line;
            // the tool's own messages (`phoenix-doctor: note: ...`) are output, not commands
            if !whole.contains("phoenix-doctor: ") {
                out.push(whole);
            }
        } else {
            out.extend(span.captures_iter(line).map(|c| c[1].to_string()));
        }
    }
    out
}

/// Flags of other programs that the docs quote beside ours, and where.
const FOREIGN: &[&str] = &[
    "--pass-stdin",          // qm guest exec (docs/cli.md, Transports)
    "--perms",               // pct push
    "--type",                // pvesh get /cluster/resources
    "--output-format",       // pvesh
    "--target",              // cargo build
    "--release",             // cargo build
    "--no-default-features", // cargo build
    "--test",                // cargo test
    "--lib",                 // cargo test
    "--bins",                // cargo test
    "--skip",                // cargo test
    "--resolve",             // curl (also ours: probe http)
    "--no-run",              // cargo test
    "--features",            // cargo
    "--all-targets",         // cargo clippy
    "--check",               // cargo fmt, promtool
    "--web.listen-address",  // prometheus
    "--config.file",         // prometheus
    "--tlscert",             // the platform's step-ca and Portainer flags (docs/platform.md)
    "--sslcert",             // Portainer
    "--san",                 // step ca certificate
    "--clone-chain",         // benches/gen_platform.py
];

/// A command line quoted in the docs: the words after `phoenix-doctor` up to a pipe or a
/// redirection.
fn invocations(line: &str) -> Vec<Vec<&str>> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("phoenix-doctor ") {
        let before = &rest[..i];
        rest = &rest[i + "phoenix-doctor ".len()..];
        // a path (`/usr/local/bin/phoenix-doctor`) is the same binary, but the value of an option
        // (`--agent-path /abs/path/phoenix-doctor`) is not an invocation
        let path_start = before.trim_end_matches(|c: char| !c.is_whitespace());
        let word_before = path_start.split_whitespace().last().unwrap_or("");
        if before.ends_with(|c: char| c.is_alphanumeric() || c == '-' || c == '_')
            || word_before.starts_with("--")
        {
            continue;
        }
        let end = rest
            .find(['|', '>', '<', '#', ';', '&', ')'])
            .unwrap_or(rest.len());
        out.push(rest[..end].split_whitespace().collect());
    }
    out
}

#[test]
fn every_documented_command_and_flag_exists() {
    let tree = command_tree();
    let all_flags: BTreeSet<&str> = tree.values().flatten().map(String::as_str).collect();
    let flag = Regex::new(r"^--[a-z][a-z0-9.-]*").unwrap();
    let mut wrong = Vec::new();
    for (file, text) in docs() {
        for c in code(&text) {
            for words in invocations(&c) {
                // the longest command path the words start with
                let mut path = String::new();
                for w in words.iter().filter(|w| !w.starts_with('-')) {
                    let next = format!("{path} {w}").trim().to_string();
                    if tree.contains_key(&next) {
                        path = next;
                    } else {
                        break;
                    }
                }
                let first = words.iter().find(|w| !w.starts_with('-'));
                if path.is_empty()
                    && first.is_some_and(|w| w.chars().all(|c| c.is_ascii_lowercase()))
                {
                    wrong.push(format!(
                        "{file}: `phoenix-doctor {}`: no such command",
                        words.join(" ")
                    ));
                }
                for w in &words {
                    let Some(f) = flag.find(w) else { continue };
                    if !tree[&path].contains(f.as_str()) {
                        wrong.push(format!(
                            "{file}: `phoenix-doctor {}`: {} is not an option of `{path}`",
                            words.join(" "),
                            f.as_str()
                        ));
                    }
                }
            }
            // an option quoted on its own (`--timeout 2s`) is one of some command
            if let Some(f) = flag.find(&c) {
                let f = f.as_str();
                if !all_flags.contains(f) && !FOREIGN.contains(&f) {
                    wrong.push(format!("{file}: `{c}`: no command has {f}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_command_and_flag_is_described_in_cli_md() {
    let cli =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md")).unwrap();
    let spans = code(&cli).join("\n");
    let mut missing = Vec::new();
    for (path, flags) in command_tree() {
        if !path.is_empty() && !spans.contains(&path) {
            missing.push(format!("command `{path}`"));
        }
        for f in flags {
            if !["--help", "--version"].contains(&f.as_str()) && !spans.contains(&f) {
                missing.push(format!("`{path}` option {f}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not in docs/cli.md: {}",
        missing.join(", ")
    );
}

#[test]
fn every_documented_finding_code_exists() {
    let listed = bin(&["explain"]);
    let code = Regex::new(r"PD-[A-Z]+-[0-9]{3}").unwrap();
    let known: BTreeSet<&str> = code.find_iter(&listed).map(|m| m.as_str()).collect();
    assert!(known.len() > 20, "explain lists the codes: {listed}");
    let mut unknown = Vec::new();
    for (file, text) in docs() {
        for m in code.find_iter(&text) {
            if !known.contains(m.as_str()) {
                unknown.push(format!("{file}: {}", m.as_str()));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "codes `explain` does not know: {}",
        unknown.join(", ")
    );
}
