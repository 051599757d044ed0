use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = digestif::cli::Cli::parse();
    match digestif::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // Every error's message already carries its cause (path, line, server reply).
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
