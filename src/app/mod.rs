//! Subcommand handlers: glue between the CLI types and the library modules.

use crate::cli::{Cli, Command, Format};
use phoenix_doctor::error::{exit, Error, Result};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

mod agent;
#[cfg(feature = "lab")]
mod demo;
mod drift;
pub mod inspect;
#[cfg(feature = "lab")]
mod lab;
pub mod lint_cmd;
pub(crate) mod live;
pub mod man;
mod probe;
mod serve;
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
        #[cfg(feature = "lab")]
        Command::Demo(_) => ("demo", REPORT_FORMATS),
        Command::Trace(_) => ("trace", REPORT_FORMATS),
        Command::Check(_) => ("check", REPORT_FORMATS),
        #[cfg(feature = "lab")]
        Command::Lab(_) => ("lab", &[Table, Json]),
        Command::Plan(_) => ("plan", &[Table, Json]),
        Command::Lint(_) => ("lint", &[Table, Json, Junit, Github]),
        Command::Show(_) => ("show", &[Table, Json]),
        Command::Drift(_) => ("drift", REPORT_FORMATS),
        Command::Probe(_) => ("probe", &[Table, Json]),
        Command::Explain(_) => ("explain", &[Table]),
        Command::Agent => ("agent", &[Table, Json]),
        Command::Serve(_) => ("serve", &[Table]),
        Command::Completions(_) => ("completions", &[Table]),
        Command::Man(_) => ("man", &[Table]),
        Command::Baseline(_) => ("baseline write", &[Table]),
    }
}

/// The exit code of a failure: bad input (a config, a trace that cannot be planned, an argument)
/// is a usage error, 2; the tool's own failure is "could not judge", 3.
pub fn exit_code(e: &Error) -> u8 {
    match e.kind() {
        phoenix_doctor::error::Kind::Input => exit::USAGE,
        phoenix_doctor::error::Kind::Tool => exit::CANNOT_JUDGE,
    }
}

/// Run the parsed command line; returns the process exit code.
///
/// A `--format` the command does not print is a usage error (exit 2). With `--format nagios`,
/// the tool's own failures (bad input, could not judge) are UNKNOWN: a status line on stdout and
/// exit 3, as the monitoring-plugins convention wants. A reader that closed standard output early
/// (`| head -1`) ends every command quietly with exit 0: what was wanted was read.
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
    if reader_closed() {
        return Ok(0);
    }
    match result {
        Err(e) if format == Format::Nagios => {
            eprintln!("phoenix-doctor: {e}");
            let line = phoenix_doctor::report::nagios::unknown_line(&e.to_string());
            let _ = print(&line);
            Ok(exit::CANNOT_JUDGE)
        }
        other => other,
    }
}

fn dispatch(cli: Cli) -> Result<u8> {
    let g = &cli.global;
    match cli.command {
        #[cfg(feature = "lab")]
        Command::Demo(a) => demo::demo(g, &a),
        #[cfg(feature = "lab")]
        Command::Lab(a) => lab::lab(g, &a),
        Command::Trace(a) => trace::trace(g, &a),
        Command::Check(a) => trace::check(g, &a),
        Command::Plan(a) => inspect::plan(g, &a),
        Command::Lint(a) => inspect::lint(g, &a),
        Command::Baseline(crate::cli::BaselineCommand::Write(a)) => trace::baseline_write(g, &a),
        Command::Show(a) => inspect::show(g, &a),
        Command::Drift(a) => drift::drift(g, &a),
        Command::Probe(p) => probe::probe(g, &p),
        Command::Explain(a) => trace::explain(g, &a),
        Command::Agent => agent::agent(g),
        Command::Serve(a) => serve::serve(g, &a),
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

/// Read a `--baseline` file; its entries may name any code the tool reports.
pub(crate) fn load_baseline(path: &std::path::Path) -> Result<phoenix_doctor::baseline::Baseline> {
    let codes = trace::all_codes();
    let names: Vec<&str> = codes.iter().map(|c| c.code).collect();
    phoenix_doctor::baseline::Baseline::load(path, &names)
}

/// Write a command's output to stdout. The human formats (table, mermaid, and `show`'s platform
/// files, which use the table format) are escaped for the terminal, keeping only the tool's own
/// colour codes (docs/security.md); JSON, JUnit, Prometheus, GitHub and Nagios keep their own
/// encodings. A reader that stopped early (`| head`) is not an error.
pub(crate) fn print_stdout(text: &str, format: Format, colour: bool) -> Result<()> {
    let text = match format {
        Format::Table | Format::Mermaid => {
            phoenix_doctor::fsutil::escape_terminal_output(text, colour)
        }
        _ => std::borrow::Cow::Borrowed(text),
    };
    print(&text)
}

/// A tokio runtime for the async commands.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    // tokio panics when it cannot create its signal pipe (EMFILE): check for the few descriptors
    // it needs first, so running out of them is a clear tool failure (exit 3), not a crash.
    let spare: std::io::Result<Vec<_>> = (0..3)
        .map(|_| std::os::unix::net::UnixStream::pair())
        .collect();
    if let Err(e) = spare {
        return Err(Error::tool(format!("starting the async runtime: {e}")));
    }
    drop(spare);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::tool(format!("starting the async runtime: {e}")))
}
