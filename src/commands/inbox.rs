//! `digestif inbox PATH`: read bounces, abuse reports and unsubscribe mails from a Maildir
//! or an mbox, and clean the list. Each message is handled once (its SHA-256 is kept in
//! the opt-out store), so running it from cron over the same mailbox is harmless.

use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;

use sha2::{Digest as _, Sha256};

use crate::audience::inbox::{self, Addresses, Clue, Finding, Stored, Tally};
use crate::audience::optout::{self, Optouts, Readers};
use crate::audience::subscribers;
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
    let store = Optouts::open(&config.state_dir, clock)?;
    let to = Addresses {
        bounce: config.sender.bounce_address.as_ref(),
        unsubscribe: config.sender.unsubscribe_mailto.as_deref(),
    };
    let messages = inbox::read_mailbox(mailbox)?;
    let mut tally = Tally::default();
    let mut fresh = unseen(&store, &messages, &to, &mut tally)?;
    // Only the readers these messages name are looked up, not the whole list.
    let (tokens, keys) = clues(&fresh);
    let mut readers = Readers::named(config, &catalog, secret, &tokens, &keys)?;
    let owners = complaint_owners(config, clock, &readers, &mut fresh)?;
    if !owners.is_empty() {
        readers.include(config, &catalog, &owners)?;
    }
    for (message, digest, finding) in &fresh {
        let verdict = inbox::handle(config, &store, &readers, finding, &mut tally)?;
        say!("{}: {verdict}", message.place);
        store.mark_seen(digest, &verdict)?;
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

/// A message not handled before (by an earlier run, or earlier in this mailbox), its
/// digest, and what it says.
type Fresh<'m> = (&'m Stored, String, Finding);

/// The messages not handled before, classified; the others are counted.
fn unseen<'m>(
    store: &Optouts,
    messages: &'m [Stored],
    to: &Addresses<'_>,
    tally: &mut Tally,
) -> Result<Vec<Fresh<'m>>> {
    let mut fresh = Vec::new();
    let mut digests = HashSet::new();
    for message in messages {
        let digest = crate::text::hex(&Sha256::digest(&message.raw));
        if store.seen(&digest)?.is_some() || !digests.insert(digest.clone()) {
            tally.already += 1;
            continue;
        }
        fresh.push((message, digest, inbox::classify(&message.raw, to)));
    }
    Ok(fresh)
}

/// The tokens and the address keys the findings name.
fn clues<'f>(fresh: &'f [Fresh<'_>]) -> (Vec<&'f str>, Vec<String>) {
    let (mut tokens, mut keys) = (Vec::new(), Vec::new());
    for clue in fresh
        .iter()
        .filter_map(|f| f.2.reader())
        .flat_map(inbox::Reader::clues)
    {
        match clue {
            Clue::Token(t) => tokens.push(t),
            Clue::Address(a) => keys.extend(subscribers::key_of_text(a)),
        }
    }
    (tokens, keys)
}

/// Complaints that hide every address: whose message it was, from the send ledger. Each
/// such finding is rewritten to name its reader; their address keys are returned.
fn complaint_owners(
    config: &Config,
    clock: Clock,
    readers: &Readers,
    fresh: &mut [Fresh<'_>],
) -> Result<Vec<String>> {
    let ledger = crate::delivery::ledger::Ledger::open_read_only(&config.state_dir, clock)?;
    let Some(ledger) = ledger else {
        return Ok(Vec::new());
    };
    let mut owners = Vec::new();
    for (_, _, finding) in fresh.iter_mut() {
        let Some(id) = finding.unresolved_message_id(readers) else {
            continue;
        };
        if let Some(email) = ledger.email_of_message_id(id)? {
            owners.extend(subscribers::key_of_text(&email));
            *finding = Finding::Complaint {
                reader: Some(inbox::Reader::Address(email)),
                message_id: Some(id.to_string()),
            };
        }
    }
    Ok(owners)
}
