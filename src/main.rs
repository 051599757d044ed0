use std::process::ExitCode;

use clap::Parser;
use digestif::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Send(_)) {
        // `digestif weeks | head` should end quietly, not panic on a closed pipe. `send` keeps
        // SIGPIPE ignored: it must finish and record the messages in flight.
        // SAFETY: setting a signal disposition before any other thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let json = cli.command.wants_json();
    match digestif::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // Every error's message already carries its cause (path, line, server reply).
            // anstream drops the colours unless stderr is a terminal and NO_COLOR is unset.
            anstream::eprintln!("{}", err.report());
            if json {
                // `--json` is answered in every outcome: a script reads stdout alone.
                let failure = serde_json::json!({
                    "ok": false, "error": err.to_string(), "exit_code": err.exit_code()
                });
                println!("{failure}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}
