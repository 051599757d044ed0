//! digestif: Markdown posts → weekly digest → HTML and text email → subscribers.
//!
//! The modules follow the data flow (see ARCHITECTURE.md): [`config`] → [`posts`] →
//! [`site`] → [`digest`] → [`render`] → [`mail`] → campaign → engine → transport, with
//! subscribers and the ledger feeding the campaign. [`run`] only dispatches to a command.

mod archive;
mod campaign;
pub mod cli;
pub mod clock;
mod commands;
pub mod config;
pub mod digest;
mod engine;
pub mod error;
mod fsutil;
mod inbox;
pub mod kind;
mod ledger;
mod lock;
pub mod mail;
mod optout;
pub mod render;
pub mod site;
pub mod sources;
mod store;
mod subscribers;
pub mod templates;
pub mod text;
pub mod token;
mod toml_input;
mod transport;
pub mod week;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use cli::{Cli, Command};
use error::{Error, Result};
pub use site::Site;

/// Run one command; the returned code is the process exit status.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let now = parse_now(cli.now.as_deref())?;
    commands::set_verbosity(cli.quiet, cli.verbose);
    commands::set_offline(cli.offline);
    // Commands that need no newsletter come first: they must work in an empty folder.
    match &cli.command {
        Command::Init(args) => return commands::init::run(args, now),
        Command::Completions { shell } => return commands::docs::completions(*shell),
        Command::Man => return commands::docs::man(),
        _ => {}
    }
    let config = find_config(cli.config.as_deref())?;
    commands::note_config(&config);
    // Output folders default to the newsletter's folder, wherever it is run from.
    let home = config.parent().unwrap_or(Path::new("")).to_path_buf();
    let out_or = |out: Option<PathBuf>, default: &str| out.unwrap_or_else(|| home.join(default));
    match cli.command {
        Command::Check { smtp, json } => commands::check::run(&config, smtp, json, now),
        Command::Weeks { json } => commands::weeks::run(&config, json, now),
        Command::Preview {
            week,
            out,
            as_email,
        } => commands::preview::run(&config, week, &out_or(out, "preview"), as_email, now),
        Command::Archive { out } => commands::archive::run(&config, &out_or(out, "archive"), now),
        Command::Send(mut args) => {
            args.out = Some(out_or(args.out.take(), "preview"));
            commands::send::run(&config, args, now)
        }
        Command::Status {
            repair: true,
            force,
            ..
        } => commands::status::repair(&config, force),
        Command::Status { week, json, .. } => commands::status::run(&config, week, json),
        Command::Subscribers(command) => commands::subscribers::run(&config, command, now),
        Command::Unsubscribe { token } => commands::unsubscribe::run(&config, &token),
        Command::Inbox { mailbox } => commands::inbox::run(&config, &mailbox),
        Command::Serve { listen } => commands::serve::run(&config, &listen),
        Command::Init(_) | Command::Completions { .. } | Command::Man => {
            unreachable!("handled above")
        }
    }
}

/// The config file: `--config` (a file, or a folder holding `digestif.toml`), else the
/// first `digestif.toml` in the current folder or a parent, as cargo and zola look for
/// theirs.
fn find_config(explicit: Option<&Path>) -> Result<PathBuf> {
    const NAME: &str = "digestif.toml";
    if let Some(path) = explicit {
        if !path.is_dir() {
            return Ok(path.to_path_buf());
        }
        let inside = path.join(NAME);
        if inside.is_file() {
            return Ok(inside);
        }
        return Err(Error::Usage(format!(
            "--config {}: is a folder, with no {NAME} in it\nhelp: pass the file itself, or \
             create a newsletter there with `digestif init {}`",
            path.display(),
            path.display()
        )));
    }
    let cwd = std::env::current_dir().map_err(|e| Error::io("read", Path::new("."), e))?;
    for (depth, dir) in cwd.ancestors().enumerate() {
        if dir.join(NAME).is_file() {
            // In the current folder, keep the short relative name in every message.
            return Ok(if depth == 0 {
                PathBuf::from(NAME)
            } else {
                dir.join(NAME)
            });
        }
    }
    Err(Error::Usage(format!(
        "no {NAME} in {} or any folder above it\nhelp: create a newsletter here with \
         `digestif init`, or name the config with --config PATH (or $DIGESTIF_CONFIG)",
        cwd.display()
    )))
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
