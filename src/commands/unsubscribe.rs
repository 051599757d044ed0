//! `digestif unsubscribe --token T`: unsubscribe the reader a link was made for. Never
//! waits for a running send: the request is recorded at once (see [`crate::audience::optout`]).

use std::path::Path;
use std::process::ExitCode;

use crate::audience::optout::{self, Left, Readers};
use crate::audience::subscribers::Status;
use crate::audience::token::{self, Purpose};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::site;

/// `digestif unsubscribe --token T`.
pub(crate) fn run(config: &Path, token: &str, clock: Clock) -> Result<ExitCode> {
    let config = &Config::load(config)?;
    let secret = token::secret_for(&config.sender, Purpose::Verify)?;
    let catalog = site::catalog(config);
    let readers = Readers::named(config, &catalog, secret, &[token], &[])?;
    let Some(key) = readers.resolve(token) else {
        return Err(Error::Usage(
            "invalid unsubscribe token: forged, altered, made with another secret, or for an address no longer listed".into(),
        ));
    };
    let left = optout::leave(
        config,
        &catalog,
        &readers,
        &key,
        Status::Unsubscribed,
        "token",
        clock,
    )?;
    report(config, &left, &key);
    Ok(ExitCode::SUCCESS)
}

/// One line on what a request to leave did; shared with `subscribers unsubscribe`.
pub(crate) fn report(config: &Config, left: &Left, key: &str) {
    match left {
        Left::Done { email } => say!("unsubscribed {email}"),
        Left::Waiting { email } => say!(
            "unsubscribed {email}: recorded now; a send is running and skips them, and {} is updated when it ends",
            config.subscribers.display()
        ),
        Left::Already { email, status } => say!("{email} was already {}", status.as_str()),
        Left::NotListed => say!(
            "{key} is no longer in {}: nothing to do",
            config.subscribers.display()
        ),
    }
}
