//! digestif: Markdown posts → weekly digest → HTML and text email → subscribers.
//! The modules follow the data flow (ARCHITECTURE.md): [`sources`] → [`site`] → [`digest`] →
//! [`render`] → [`mail`] → delivery, fed by the [`audience`]. [`run`] only dispatches.

mod archive;
pub mod audience;
pub mod cli;
pub mod clock;
mod commands;
pub mod config;
mod delivery;
pub mod digest;
pub mod error;
mod fsutil;
pub mod kind;
mod lock;
pub mod mail;
pub mod render;
pub mod schedule;
pub mod site;
pub mod sources;
mod store;
pub mod templates;
pub mod text;
mod toml_input;
mod web;
pub mod week;

use std::process::ExitCode;

use cli::{Cli, Command};
use commands::setup;
use error::Result;
pub use site::Site;

/// Run one command; the returned code is the process exit status.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let clock = setup::clock()?;
    commands::set_verbosity(cli.quiet, cli.verbose);
    commands::set_offline(cli.offline);
    // Commands that need no newsletter come first: they must work in an empty folder.
    match &cli.command {
        Command::Init(args) => return commands::init::run(args, clock),
        Command::Completions { shell, install } => {
            return commands::docs::completions(*shell, *install)
        }
        Command::Man { install } => return commands::docs::man(*install),
        _ => {}
    }
    let config = setup::find_config(cli.config.as_deref())?;
    commands::note_config(&config);
    let out_or = |out, default| setup::out_dir(&config, out, default);
    match cli.command {
        Command::Check { smtp, links, json } => {
            commands::check::run(&config, commands::check::Extra { smtp, links }, json, clock)
        }
        Command::Weeks { json } => commands::weeks::run(&config, json, clock),
        Command::Preview {
            week,
            out,
            as_email,
        } => commands::preview::run(&config, week, &out_or(out, "preview"), as_email, clock),
        Command::Archive { out } => commands::archive::run(&config, &out_or(out, "archive"), clock),
        Command::Send(mut args) => {
            args.out = Some(out_or(args.out.take(), "preview"));
            commands::send::run(&config, args, clock)
        }
        Command::Status {
            week,
            json,
            repair,
            force,
        } => commands::status::run(&config, week, json, (repair, force), clock),
        Command::Subscribers(command) => commands::subscribers::run(&config, command, clock),
        Command::Unsubscribe { token } => commands::unsubscribe::run(&config, &token, clock),
        Command::Inbox { mailbox } => commands::inbox::run(&config, &mailbox, clock),
        Command::Serve { listen } => commands::serve::run(&config, &listen, clock),
        Command::SubscribeForm => commands::serve::print_form(&config),
        Command::Schedule(args) => commands::schedule::run(&config, &args),
        Command::Init(_) | Command::Completions { .. } | Command::Man { .. } => {
            unreachable!("handled above")
        }
    }
}
