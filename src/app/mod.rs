//! Subcommand handlers: glue between the CLI types and the library modules.

use crate::cli::{Cli, Command, Format};
use crate::error::{Error, Result};
use std::time::Duration;

mod agent;
mod demo;
pub mod inspect;
mod lab;
pub mod lint_cmd;
mod live;
mod probe;
mod trace;

/// Run the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<u8> {
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

/// Write a command's output to stdout. The human formats (table, mermaid, and `show`'s platform
/// files, which use the table format) are escaped for the terminal, keeping only the tool's own
/// colour codes (docs/security.md); JSON, JUnit and Prometheus keep their own encodings. A
/// reader that stopped early (`| head`) is not an error.
pub(crate) fn print_stdout(text: &str, format: Format, colour: bool) -> Result<()> {
    use std::io::Write;
    let text = match format {
        Format::Table | Format::Mermaid => crate::fsutil::escape_terminal_output(text, colour),
        Format::Json | Format::Junit | Format::Prometheus => std::borrow::Cow::Borrowed(text),
    };
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::tool(format!("writing to stdout: {e}")))
        }
        _ => Ok(()),
    }
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
