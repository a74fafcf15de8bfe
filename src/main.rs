//! The `phoenix-doctor` binary: parse the command line, run it, map errors to exit codes.

use clap::Parser;
use phoenix_doctor::{app, cli::Cli, error::exit};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match app::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Messages quote config strings and file names: never raw controls to a terminal.
            eprintln!(
                "phoenix-doctor: {}",
                phoenix_doctor::fsutil::escape_terminal(&e.to_string())
            );
            ExitCode::from(e.exit_code())
        }
    }
}
