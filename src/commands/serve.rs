//! `digestif serve`: bind the address, run the endpoint of [`crate::web`] until a signal,
//! and log what it answers.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::site;
use crate::web::mailer::Sent;
use crate::web::{Endpoint, Event};

/// `digestif serve`.
pub(crate) fn run(config_path: &Path, listen: &str, clock: Clock) -> Result<ExitCode> {
    one_heap();
    let config = Config::load(config_path)?;
    let catalog = site::catalog(&config);
    let url = config.sender.unsubscribe_url.clone();
    let endpoint = Arc::new(Endpoint::new(config, catalog, clock, report, fold_failed)?);
    let cannot = |e: &dyn std::fmt::Display| {
        Error::Usage(format!("--listen {listen}: cannot listen there ({e})"))
    };
    let listener = std::net::TcpListener::bind(listen).map_err(|e| cannot(&e))?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let _ = signal_hook::flag::register(signal, Arc::clone(&stop));
    }
    say!(
        "serving {} on http://{listen} (one-click unsubscribe for {})",
        endpoint.path_or_root(),
        url.map(|u| u.to_string()).unwrap_or_default()
    );
    endpoint
        .serve(listener, &stop, log)
        .map_err(|e| cannot(&e))?;
    say!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// One heap for all threads, set before any starts. glibc gives each busy thread a heap
/// of its own and keeps what a fold freed in it for that thread's next use: with 16
/// workers, a writer and a folder, `serve`'s peak RSS at 1M readers was 56-65 MB during a
/// burst; with one heap 38-41 MB, and no fewer clicks answered (`bench/scale.sh`).
fn one_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: a plain integer setting, made before this process starts a thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
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
        Event::Joined { email } => say!("subscribed {email} (web, confirmed)"),
        Event::MailDropped => warn!("a confirmation mail was dropped: too many wait for the relay"),
        Event::Failed(e) => warn!("{e}"),
        Event::Http(e) => warn!("http: {e}"),
    }
}

/// Accepted requests could not be written into the list yet: they stay recorded, and the
/// next fold (or send, or edit) writes them in.
fn fold_failed(e: &Error) {
    warn!("accepted requests wait in the store: {e}");
}

/// What became of each confirmation mail.
fn report(sent: Sent) {
    match sent {
        Sent::Done { to } => detail!("confirmation mailed to {to}"),
        Sent::Failed { to, why } => warn!("the confirmation mail to {to} failed: {why}"),
    }
}

/// `digestif subscribe-form`: the form to paste into the blog's template.
pub(crate) fn print_form(config_path: &Path) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let Some(url) = &config.web.url else {
        return Err(Error::Setting(
            "web.url is not set: the form posts to <web.url>subscribe, where `digestif serve` answers; set it to the https address the proxy forwards to serve".into(),
        ));
    };
    let strings =
        crate::templates::Templates::load(&config.templates_dir, &config.language)?.strings;
    let action = url
        .join("subscribe")
        .map(|u| u.to_string())
        .unwrap_or_default();
    let form = crate::web::subscribe_form(&config, &strings, &action, None);
    emit!(
        "<!-- {}: subscribe form made by `digestif subscribe-form` (posts to {action}) -->\n{}",
        crate::text::header_safe(&config.name),
        form.into_string()
    );
    Ok(ExitCode::SUCCESS)
}
