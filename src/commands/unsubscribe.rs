//! `digestif unsubscribe --token T`: unsubscribe the reader a signed link was made for.

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::site;
use crate::subscribers::{Editor, Status};
use crate::token::Secret;

/// `digestif unsubscribe --token T`.
pub(crate) fn run(config: &Path, token: &str) -> Result<ExitCode> {
    let config = &Config::load(config)?;
    let secret = Secret::from_env(&config.sender.unsubscribe_secret_env)?;
    let Some(key) = secret.verify(token) else {
        return Err(Error::Usage(
            "invalid unsubscribe token: forged, altered or signed with another secret".into(),
        ));
    };
    let catalog = site::catalog(config);
    let _lock = Lock::acquire(&config.state_dir)?;
    let mut editor = catalog.with(|k| Editor::open(&config.subscribers, k))?;
    let found = editor.subscribers.iter().find(|s| s.key() == key).cloned();
    match found {
        Some(s) if s.status == Status::Unsubscribed => {
            say!("{} was already unsubscribed", s.email);
        }
        Some(s) => {
            editor.set_status(&s.email, Status::Unsubscribed);
            editor.save()?;
            say!("unsubscribed {}", s.email);
        }
        None => say!(
            "{key} is no longer in {}: nothing to do",
            config.subscribers.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}
