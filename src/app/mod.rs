//! Subcommand handlers: glue between the CLI types and the library modules.

use crate::cli::{Cli, Command};
use crate::error::{Error, Result};

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
