//! `digestif serve`: bind the address, run the endpoint of [`crate::web`] until a signal,
//! and log what it answers.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tiny_http::Server;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::site;
use crate::web::{Endpoint, Event};

/// `digestif serve`.
pub(crate) fn run(config_path: &Path, listen: &str, clock: Clock) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let catalog = site::catalog(&config);
    let url = config.sender.unsubscribe_url.clone();
    let endpoint = Arc::new(Endpoint::new(config, catalog, clock)?);
    let server = Server::http(listen)
        .map_err(|e| Error::Usage(format!("--listen {listen}: cannot listen there ({e})")))?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let _ = signal_hook::flag::register(signal, Arc::clone(&stop));
    }
    say!(
        "serving {} on http://{listen} (one-click unsubscribe for {})",
        endpoint.path_or_root(),
        url.map(|u| u.to_string()).unwrap_or_default()
    );
    endpoint.serve(server, &stop, &log);
    say!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// One line per event: requests with `--verbose` only, never with their query (the token
/// is a credential).
fn log(event: Event<'_>) {
    match event {
        Event::Answered {
            method,
            path,
            status,
        } => detail!("{method} {path} -> {status}"),
        Event::Left { email } => say!("unsubscribed {email} (web)"),
        Event::Failed(e) => warn!("{e}"),
        Event::Http(e) => warn!("http: {e}"),
    }
}
