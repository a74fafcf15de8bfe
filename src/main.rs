//! The `phoenix-doctor` binary: parse the command line, run it, map errors to exit codes.
//! The command line (`cli`) and the subcommand handlers (`app`) belong to the binary; the
//! library takes plain option structs and typed values.

// Functions stay under 120 lines (`clippy.toml`).
#![warn(clippy::too_many_lines)]

mod app;
mod cli;

use clap::Parser;
use cli::Cli;
use phoenix_doctor::error::exit;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { 0 };
            if e.kind() == clap::error::ErrorKind::ValueValidation {
                // One clear line: which option, which value, what is expected.
                let text = e.render().to_string();
                let line = text.lines().next().unwrap_or_default();
                eprintln!("phoenix-doctor: {}", line.trim_start_matches("error: "));
            } else {
                let _ = e.print();
            }
            return ExitCode::from(code);
        }
    };
    match app::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // A closed stderr must not turn a clean error into a panic; messages quote config
            // strings and file names: never raw controls to a terminal.
            let _ = writeln!(
                std::io::stderr(),
                "phoenix-doctor: {}",
                phoenix_doctor::fsutil::escape_terminal(&e.to_string())
            );
            ExitCode::from(app::exit_code(&e))
        }
    }
}
