//! Subcommand handlers: glue between the CLI types and the library modules.

use crate::cli::{Cli, Command, Format};
use crate::error::{exit, Error, Result};
use std::time::Duration;

mod agent;
mod demo;
pub mod inspect;
mod lab;
pub mod lint_cmd;
mod live;
mod probe;
mod serve;
mod trace;

/// The formats of a trace report (trace, check, demo).
const REPORT_FORMATS: &[Format] = &[
    Format::Table,
    Format::Json,
    Format::Junit,
    Format::Mermaid,
    Format::Prometheus,
    Format::Github,
    Format::Nagios,
];

/// The name of a command and the `--format` values it prints (`docs/cli.md` has the same table).
pub fn formats(c: &Command) -> (&'static str, &'static [Format]) {
    use Format::*;
    match c {
        Command::Demo(_) => ("demo", REPORT_FORMATS),
        Command::Trace(_) => ("trace", REPORT_FORMATS),
        Command::Check(_) => ("check", REPORT_FORMATS),
        Command::Lab(_) => ("lab", &[Table, Json]),
        Command::Plan(_) => ("plan", &[Table, Json]),
        Command::Lint => ("lint", &[Table, Json, Junit, Github]),
        Command::Show(_) => ("show", &[Table, Json]),
        Command::Probe(_) => ("probe", &[Table, Json]),
        Command::Explain(_) => ("explain", &[Table]),
        Command::Agent => ("agent", &[Table, Json]),
        Command::Serve(_) => ("serve", &[Table]),
        Command::Completions(_) => ("completions", &[Table]),
        Command::Man => ("man", &[Table]),
    }
}

/// Run the parsed command line; returns the process exit code.
///
/// A `--format` the command does not print is a usage error (exit 2). With `--format nagios`,
/// the tool's own failures (bad input, could not judge) are UNKNOWN: a status line on stdout and
/// exit 3, as the monitoring-plugins convention wants.
pub fn run(cli: Cli) -> Result<u8> {
    let (name, supported) = formats(&cli.command);
    let format = cli.global.format;
    if !supported.contains(&format) {
        let names: Vec<&str> = supported.iter().map(|f| f.name()).collect();
        let list = match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.join(""),
        };
        return Err(Error::input(format!(
            "{name}: --format {} is not available; use {list}",
            format.name()
        )));
    }
    let result = dispatch(cli);
    match result {
        Err(e) if format == Format::Nagios => {
            eprintln!("phoenix-doctor: {e}");
            let line = crate::report::nagios::unknown_line(&e.to_string());
            let mut o = std::io::stdout().lock();
            let _ = std::io::Write::write_all(&mut o, line.as_bytes());
            Ok(exit::CANNOT_JUDGE)
        }
        other => other,
    }
}

fn dispatch(cli: Cli) -> Result<u8> {
    let g = &cli.global;
    match cli.command {
        Command::Demo(a) => demo::demo(g, &a),
        Command::Lab(a) => lab::lab(g, &a),
        Command::Trace(a) => trace::trace(g, &a),
        Command::Check(a) => trace::check(g, &a),
        Command::Plan(a) => inspect::plan(g, &a),
        Command::Lint => inspect::lint(g),
        Command::Show(a) => inspect::show(g, &a),
        Command::Probe(p) => probe::probe(g, &p),
        Command::Explain(a) => trace::explain(g, &a),
        Command::Agent => agent::agent(g),
        Command::Serve(a) => serve::serve(g, &a),
        Command::Completions(a) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(a.shell, &mut cmd, "phoenix-doctor", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .map_err(|e| Error::tool(format!("writing the man page: {e}")))?;
            Ok(0)
        }
    }
}

/// The JSON documents of `plan`, `show` and `probe`: the object itself with `schema_version`
/// first (`docs/output-json.md`).
#[derive(serde::Serialize)]
struct Versioned<'a, T: serde::Serialize> {
    schema_version: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// Current `schema_version` of the plan, show and probe JSON documents.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// Pretty JSON of `body` (an object) with `schema_version`, ending in a newline.
pub(crate) fn versioned_json<T: serde::Serialize>(body: &T) -> Result<String> {
    let mut s = serde_json::to_string_pretty(&Versioned {
        schema_version: JSON_SCHEMA_VERSION,
        body,
    })
    .map_err(|e| Error::tool(format!("encoding JSON: {e}")))?;
    s.push('\n');
    Ok(s)
}

/// Parse `2s`, `500ms`, `1m`, `1.5s` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let bad = || {
        Error::input(format!(
            "invalid duration `{s}`: expected e.g. 500ms, 2s, 1m"
        ))
    };
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A tokio runtime for the async commands.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::tool(format!("starting the async runtime: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("2x").is_err());
    }
}
