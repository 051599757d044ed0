//! What a [`Finding`] means for the list: the same rules whatever the source of the
//! message (a bounce, an abuse report, a mail to the unsubscribe address).

use super::{Clue, Finding, Reader};
use crate::audience::optout::{self, Optouts, Readers};
use crate::audience::subscribers::{self, Status};
use crate::config::Config;
use crate::error::Result;

/// Totals for the closing line.
#[derive(Default)]
pub(crate) struct Tally {
    pub bounced: usize,
    pub soft: usize,
    pub unsubscribed: usize,
    pub left_alone: usize,
    /// Refusals of the sender (spam, policy): addresses kept.
    pub blocked: usize,
    pub already: usize,
}

/// Record what `finding` means for its reader; the line that says so. A temporary failure
/// counts towards `sender.soft_bounce_limit`; a delivery report clears the count; a
/// complaint or an unsubscribe mail is a request to leave.
pub(crate) fn handle(
    config: &Config,
    store: &Optouts,
    readers: &Readers,
    finding: &Finding,
    tally: &mut Tally,
) -> Result<String> {
    note_event(store, readers, finding)?;
    let (reader, status, why) = match finding {
        Finding::HardBounce { reader, status } => (reader, Status::Bounced, status.clone()),
        Finding::Complaint {
            reader: Some(reader),
            ..
        } => (reader, Status::Unsubscribed, "abuse report".into()),
        Finding::Complaint { reader: None, .. } => {
            tally.left_alone += 1;
            return Ok(
                "left alone: an abuse report naming no reader (its message is not in the send ledger)"
                    .into(),
            );
        }
        Finding::UnsubscribeMail { reader } => {
            (reader, Status::Unsubscribed, "unsubscribe mail".into())
        }
        Finding::SoftBounce {
            reader,
            status,
            message,
        } => match soft_bounce(config, store, readers, (reader, status, message), tally)? {
            Ok(why) => (reader, Status::Bounced, why),
            Err(line) => return Ok(line),
        },
        Finding::Blocked { reader, status } => return Ok(blocked(readers, reader, status, tally)),

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
                crate::text::header_safe(subject)
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

/// Count a temporary failure: `Ok(why)` when it is one too many (the reader is bounced),
/// `Err(line)` when it is only counted (or names no listed reader).
fn soft_bounce(
    config: &Config,
    store: &Optouts,
    readers: &Readers,
    (reader, status, message): (&Reader, &str, &str),
    tally: &mut Tally,
) -> Result<std::result::Result<String, String>> {
    let Some((key, email)) = find(readers, reader) else {
        tally.left_alone += 1;
        return Ok(Err(format!(
            "temporary failure for someone not listed ({status})"
        )));
    };
    tally.soft += 1;
    let count = store.soft_bounce(&key, message, config.sender.soft_bounce_weeks)?;
    let limit = config.sender.soft_bounce_limit;
    if count < limit {
        return Ok(Err(format!(
            "temporary failure {count} of {limit} for {email} ({status})"
        )));
    }
    Ok(Ok(format!(
        "{count} temporary failures within {} weeks, last {status}",
        config.sender.soft_bounce_weeks
    )))
}

/// Keep what `status` counts per week: the class of a bounce, a refusal or a complaint,
/// with the receiving domain.
fn note_event(store: &Optouts, readers: &Readers, finding: &Finding) -> Result<()> {
    let (class, reader) = match finding {
        Finding::HardBounce { reader, .. } => ("hard", reader),
        Finding::SoftBounce { reader, .. } => ("soft", reader),
        Finding::Blocked { reader, .. } => ("block", reader),
        Finding::Complaint {
            reader: Some(reader),
            ..
        } => ("complaint", reader),
        Finding::Complaint { reader: None, .. } => return store.note_event("complaint", ""),
        _ => return Ok(()),
    };
    let address = find(readers, reader).map(|(_, email)| email).or_else(|| {
        reader.clues().into_iter().find_map(|clue| match clue {
            Clue::Address(a) => Some(a.to_string()),
            Clue::Token(_) => None,
        })
    });
    let domain = address
        .as_deref()
        .and_then(|a| a.rsplit_once('@'))
        .map(|(_, d)| d.to_lowercase())
        .unwrap_or_default();
    store.note_event(class, &domain)
}

/// A refusal of the sender: counted, and the reader left as they are.
fn blocked(readers: &Readers, reader: &Reader, status: &str, tally: &mut Tally) -> String {
    tally.blocked += 1;
    let who = find(readers, reader).map_or_else(|| "someone not listed".into(), |(_, e)| e);
    format!(
        "refused as spam or by policy, not the address's fault: {who} stays subscribed ({status})"
    )
}

/// The listed reader a message names: its token first, then its address.
pub(super) fn find(readers: &Readers, reader: &Reader) -> Option<(String, String)> {
    reader.clues().into_iter().find_map(|clue| {
        let key = match clue {
            Clue::Token(t) => readers.resolve(t)?,
            Clue::Address(a) => subscribers::key_of_text(a)?,
        };
        readers.get(&key).map(|(email, _)| (key, email.clone()))
    })
}

/// Readers a send found refused at RCPT (`(address, reply)`): those whose reply says the
/// address is wrong (a hard class) are bounced, the same rule as for a bounce mail; the
/// list is written when the send lets its lock go. Returns how many.
pub(crate) fn bounce_refused(
    config: &Config,
    clock: crate::clock::Clock,
    refused: &[(&str, &str)],
) -> Result<usize> {
    let hard: Vec<(String, &str)> = refused
        .iter()
        .filter(|(_, reply)| super::class_of_reply(reply) == super::Class::Hard)
        .filter_map(|(email, reply)| {
            let address: lettre::Address = email.parse().ok()?;
            Some((subscribers::address_key(&address), *reply))
        })
        .collect();
    if hard.is_empty() {
        return Ok(0);
    }
    let store = Optouts::open(&config.state_dir, clock)?;
    for (key, reply) in &hard {
        store.record(key, Status::Bounced, &format!("send: {reply}"))?;
    }
    Ok(hard.len())
}
