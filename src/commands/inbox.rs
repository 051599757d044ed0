//! `digestif inbox PATH`: read bounces, abuse reports and unsubscribe mails from a Maildir
//! or an mbox, and clean the list. Each message is handled once (its SHA-256 is kept in
//! the opt-out store), so running it from cron over the same mailbox is harmless.

use std::path::Path;
use std::process::ExitCode;

use sha2::{Digest as _, Sha256};

use crate::audience::inbox::{self, Addresses, Tally};
use crate::audience::optout::{self, Optouts, Readers};
use crate::audience::token::{self, Purpose};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::Result;
use crate::site;

/// `digestif inbox PATH`.
pub(crate) fn run(config: &Path, mailbox: &Path, clock: Clock) -> Result<ExitCode> {
    let config = &Config::load(config)?;
    let catalog = site::catalog(config);
    // Tokens need the secret; without it, readers are still found by address.
    let secret = match token::secret_for(&config.sender, Purpose::Find) {
        Ok(secret) => secret,
        Err(e) => {
            warn!("{e}: readers are found by address only, not by token");
            None
        }
    };
    let readers = Readers::load(config, &catalog, secret)?;
    let store = Optouts::open(&config.state_dir, clock)?;
    let to = Addresses {
        bounce: config.sender.bounce_address.as_ref(),
        unsubscribe: config.sender.unsubscribe_mailto.as_deref(),
    };
    let messages = inbox::read_mailbox(mailbox)?;
    let ledger = crate::delivery::ledger::Ledger::open_read_only(&config.state_dir, clock)?;
    let mut tally = Tally::default();
    for message in &messages {
        let digest = crate::text::hex(&Sha256::digest(&message.raw));
        if store.seen(&digest)?.is_some() {
            tally.already += 1;
            continue;
        }
        let mut finding = inbox::classify(&message.raw, &to);
        if let Some(id) = finding.unresolved_message_id(&readers) {
            // A report that hides every address: whose message it was, from the ledger.
            let owner = match &ledger {
                Some(ledger) => ledger.email_of_message_id(id)?,
                None => None,
            };
            if let Some(email) = owner {
                finding = inbox::Finding::Complaint {
                    reader: Some(inbox::Reader::Address(email)),
                    message_id: Some(id.to_string()),
                };
            }
        }
        let verdict = inbox::handle(config, &store, &readers, &finding, &mut tally)?;
        say!("{}: {verdict}", message.place);
        store.mark_seen(&digest, &verdict)?;
    }
    let written = optout::apply_if_free(config, &catalog, clock)?;
    say!(
        "{} messages: {} bounced, {} temporary failures counted, {} refused as spam or by policy (addresses kept), {} unsubscribed, {} left alone, {} handled before",
        messages.len(),
        tally.bounced,
        tally.soft,
        tally.blocked,
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
