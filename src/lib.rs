//! digestif: Markdown posts → weekly digest → HTML and text email → subscribers.
//!
//! The modules follow the data flow (see ARCHITECTURE.md): [`config`] → [`posts`] →
//! [`site`] → [`digest`] → [`render`] → [`mail`] → campaign → engine → transport, with
//! subscribers and the ledger feeding the campaign. [`run`] only dispatches to a command.

mod archive;
mod campaign;
pub mod cli;
mod commands;
pub mod config;
pub mod digest;
mod engine;
pub mod error;
mod fsutil;
mod ledger;
mod lock;
pub mod mail;
pub mod posts;
pub mod render;
pub mod site;
mod subscribers;
pub mod templates;
pub mod token;
mod toml_input;
mod transport;

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use cli::{Cli, Command};
use error::{Error, Result};
pub use site::Site;

/// Run one command; the returned code is the process exit status.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let now = parse_now(cli.now.as_deref())?;
    let config = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("digestif.toml"));
    match cli.command {
        Command::Check => commands::check::run(&config, now),
        Command::Weeks => commands::weeks::run(&config, now),
        Command::Preview { week, out } => commands::preview::run(&config, week, &out, now),
        Command::Archive { out } => commands::archive::run(&config, &out, now),
        Command::Send(args) => commands::send::run(&config, args, now),
        Command::Status {
            repair: true,
            force,
            ..
        } => commands::status::repair(&config, force),
        Command::Status { week, json, .. } => commands::status::run(&config, week, json),
        Command::Subscribers(command) => commands::subscribers::run(&config, command, now),
        Command::Unsubscribe { token } => commands::unsubscribe::run(&config, &token),
    }
}

/// The clock, or the instant `--now` / `DIGESTIF_NOW` pretends it is. Nothing below the
/// commands reads the clock: they get this value.
fn parse_now(now: Option<&str>) -> Result<DateTime<Utc>> {
    match now {
        None => Ok(Utc::now()),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| {
                Error::Usage(format!(
                    "--now / DIGESTIF_NOW: expected an RFC 3339 instant, found {s:?} ({e})"
                ))
            }),
    }
}
