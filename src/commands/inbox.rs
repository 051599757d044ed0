//! `digestif inbox PATH`: read bounces, abuse reports and unsubscribe mails from a Maildir
//! or an mbox, and clean the list. Each message is handled once (its SHA-256 is kept in
//! the opt-out store), so running it from cron over the same mailbox is harmless.

use std::path::Path;
use std::process::ExitCode;

use sha2::{Digest as _, Sha256};

use crate::config::Config;
use crate::error::Result;
use crate::inbox::{self, Addresses, Clue, Finding, Reader};
use crate::optout::{self, Optouts, Readers};
use crate::site;
use crate::subscribers::{self, Status};
use crate::token::Secret;

/// Totals for the closing line.
#[derive(Default)]
struct Tally {
    bounced: usize,
    soft: usize,
    unsubscribed: usize,
    left_alone: usize,
    already: usize,
}

/// `digestif inbox PATH`.
pub(crate) fn run(config: &Path, mailbox: &Path) -> Result<ExitCode> {
    let config = &Config::load(config)?;
    let catalog = site::catalog(config);
    // Tokens need the secret; without it, readers are still found by address.
    let secret = match Secret::from_env(&config.sender.unsubscribe_secret_env) {
        Ok(s) => Some(s),
        Err(e) => {
            if config.sender.bounce_address.is_some() || config.sender.unsubscribe_url.is_some() {
                warn!("{e}: readers are found by address only, not by token");
            }
            None
        }
    };
    let readers = Readers::load(config, &catalog, secret)?;
    let store = Optouts::open(&config.state_dir)?;
    let to = Addresses {
        bounce: config.sender.bounce_address.as_ref(),
        unsubscribe: config.sender.unsubscribe_mailto.as_deref(),
    };
    let messages = inbox::read_mailbox(mailbox)?;
    let mut tally = Tally::default();
    for message in &messages {
        let digest = crate::text::hex(&Sha256::digest(&message.raw));
        if store.seen(&digest)?.is_some() {
            tally.already += 1;
            continue;
        }
        let finding = inbox::classify(&message.raw, &to);
        let verdict = act(config, &store, &readers, &finding, &mut tally)?;
        say!("{}: {verdict}", message.place);
        store.mark_seen(&digest, &verdict)?;
    }
    let written = optout::apply_if_free(config, &catalog)?;
    say!(
        "{} messages: {} bounced, {} temporary failures counted, {} unsubscribed, {} left alone, {} handled before",
        messages.len(),
        tally.bounced,
        tally.soft,
        tally.unsubscribed,
        tally.left_alone,
        tally.already
    );
    if written.is_none() {
        say!(
            "a send is running: it skips these readers now, and {} is updated when it ends",
            config.subscribers.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Record what `finding` means for its reader; the line that says so.
fn act(
    config: &Config,
    store: &Optouts,
    readers: &Readers,
    finding: &Finding,
    tally: &mut Tally,
) -> Result<String> {
    let (reader, status, why) = match finding {
        Finding::HardBounce { reader, status } => (reader, Status::Bounced, status.clone()),
        Finding::Complaint { reader } => (reader, Status::Unsubscribed, "abuse report".into()),
        Finding::UnsubscribeMail { reader } => {
            (reader, Status::Unsubscribed, "unsubscribe mail".into())
        }
        Finding::SoftBounce {
            reader,
            status,
            message,
        } => {
            let Some((key, email)) = find(readers, reader) else {
                tally.left_alone += 1;
                return Ok(format!(
                    "temporary failure for someone not listed ({status})"
                ));
            };
            tally.soft += 1;
            let count = store.soft_bounce(&key, message)?;
            let limit = config.sender.soft_bounce_limit;
            if count < limit {
                return Ok(format!(
                    "temporary failure {count} of {limit} for {email} ({status})"
                ));
            }
            (
                reader,
                Status::Bounced,
                format!("{count} temporary failures in a row, last {status}"),
            )
        }
        Finding::Delivered { reader } => {
            if let Some((key, _)) = find(readers, reader) {
                store.clear_soft_bounces(&key)?;
            }
            tally.left_alone += 1;
            return Ok("delivery report: delivered".into());
        }
        Finding::Unmatched { what, detail } => {
            tally.left_alone += 1;
            return Ok(format!("left alone: {what} naming no reader ({detail})"));
        }
        Finding::Other { subject } => {
            tally.left_alone += 1;
            return Ok(format!(
                "left alone: not a bounce, abuse report or unsubscribe mail (Subject: {})",
                crate::mail::header_safe(subject)
            ));
        }
    };
    let Some((key, email)) = find(readers, reader) else {
        tally.left_alone += 1;
        return Ok(format!("left alone: names no listed reader ({why})"));
    };
    match readers.get(&key) {
        Some((_, current)) if optout::already_left(*current, status) => {
            tally.already += 1;
            return Ok(format!("{email} is already {}", current.as_str()));
        }
        _ => {}
    }
    store.record(&key, status, &format!("inbox: {why}"))?;
    match status {
        Status::Bounced => tally.bounced += 1,
        _ => tally.unsubscribed += 1,
    }
    Ok(format!("{email} {} ({why})", status.as_str()))
}

/// The listed reader a message names: its token first, then its address.
fn find(readers: &Readers, reader: &Reader) -> Option<(String, String)> {
    reader.clues().into_iter().find_map(|clue| {
        let key = match clue {
            Clue::Token(t) => readers.resolve(t)?,
            Clue::Address(a) => subscribers::address_key(&a.parse().ok()?),
        };
        readers.get(&key).map(|(email, _)| (key, email.clone()))
    })
}
