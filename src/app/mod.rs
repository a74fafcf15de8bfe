//! Subcommand handlers: glue between the CLI types and the library modules.

use crate::cli::{Cli, Command};
use crate::error::{Error, Result};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod agent;
mod demo;
pub mod inspect;
mod lab;
pub mod lint_cmd;
mod live;
pub mod man;
mod probe;
mod trace;

/// Set once a write to stdout found the reader gone (`| head -1`).
static READER_CLOSED: AtomicBool = AtomicBool::new(false);

/// Standard output that treats a reader who stopped early as the end of the output, not as a
/// failure: once a write meets a closed pipe, every later write is dropped quietly and the
/// command ends with exit 0 (see [`run`]). Every command writes its output through this.
pub struct Stdout(std::io::StdoutLock<'static>);

/// The process's standard output, safe against a closed pipe.
pub fn stdout() -> Stdout {
    Stdout(std::io::stdout().lock())
}

/// True once a reader closed standard output early.
pub fn reader_closed() -> bool {
    READER_CLOSED.load(Ordering::Relaxed)
}

fn closed_is_done(r: std::io::Result<usize>, len: usize) -> std::io::Result<usize> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            READER_CLOSED.store(true, Ordering::Relaxed);
            Ok(len)
        }
        r => r,
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if reader_closed() {
            return Ok(buf.len());
        }
        let r = self.0.write(buf);
        closed_is_done(r, buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if reader_closed() {
            return Ok(());
        }
        closed_is_done(self.0.flush().map(|_| 0), 0).map(|_| ())
    }
}

/// Write `text` to standard output (a closed pipe ends the output quietly).
pub fn print(text: &str) -> Result<()> {
    let mut o = stdout();
    o.write_all(text.as_bytes())
        .and_then(|_| o.flush())
        .map_err(|e| Error::tool(format!("writing to stdout: {e}")))
}

/// Run the parsed command line; returns the process exit code. A reader that closed standard
/// output early (`| head -1`) ends every command quietly with exit 0: what was wanted was read.
pub fn run(cli: Cli) -> Result<u8> {
    let r = dispatch(cli);
    if reader_closed() {
        return Ok(0);
    }
    r
}

fn dispatch(cli: Cli) -> Result<u8> {
    let g = &cli.global;
    match cli.command {
        Command::Demo(a) => demo::demo(g, &a),
        Command::Lab(a) => lab::lab(g, &a),
        Command::Trace(a) => trace::trace(g, &a),
        Command::Check(a) => trace::check(g, &a),
        Command::Plan(a) => inspect::plan(g, &a),
        Command::Lint(a) => inspect::lint(g, &a),
        Command::Show(a) => inspect::show(g, &a),
        Command::Probe(p) => probe::probe(g, &p),
        Command::Explain(a) => trace::explain(g, &a),
        Command::Agent => agent::agent(g),
        Command::Completions(a) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_complete::generate(a.shell, &mut cmd, "phoenix-doctor", &mut buf);
            print(&String::from_utf8_lossy(&buf))?;
            Ok(0)
        }
        Command::Man(a) => man::man(&a),
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
