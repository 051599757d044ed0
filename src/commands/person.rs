//! `subscribers show` and `subscribers forget`: all that is held about one person, and
//! erasing it (the right of access and the right to erasure).

use std::process::ExitCode;

use lettre::Address;

use crate::audience::optout::Optouts;
use crate::audience::subscribers::{self, Catalog, Editor, Subscriber};
use crate::clock::Clock;
use crate::config::Config;
use crate::delivery::ledger::{HeldRow, Ledger};
use crate::error::{Error, Result};

/// `subscribers show EMAIL [--json]`: read-only, so it never waits for a send.
pub(crate) fn show(
    config: &Config,
    catalog: &Catalog,
    address: &Address,
    json: bool,
    clock: Clock,
) -> Result<ExitCode> {
    let key = subscribers::address_key(address);
    // Streamed, keeping only this one entry: the list may hold a million.
    let entry = crate::audience::optout::entry_of(config, catalog, &key)?;
    // Only read: a newsletter that never recorded anything gets no store made for it.
    let held = if config.state_dir.join("optouts.sqlite").exists() {
        Optouts::open(&config.state_dir, clock)?.held(&key)?
    } else {
        crate::audience::optout::Held::default()
    };
    let weeks = match Ledger::open_read_only(&config.state_dir, clock)? {
        Some(ledger) => ledger.rows_of(&key)?,
        None => Vec::new(),
    };
    if json {
        let all = serde_json::json!({
            "email": address.to_string(), "entry": entry, "requests": held.requests,
            "soft_bounces": held.soft_bounces, "forgotten_at": held.forgotten_at, "weeks": weeks,
            "consent": held.joins,
        });
        emit!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    print_held(config, address, entry.as_ref(), &held, &weeks);
    Ok(ExitCode::SUCCESS)
}

fn print_held(
    config: &Config,
    address: &Address,
    entry: Option<&Subscriber>,
    held: &crate::audience::optout::Held,
    weeks: &[HeldRow],
) {
    emit!("{address}");
    match entry {
        Some(s) => emit!(
            "  list: {} line {}: status {}, name {}, categories {}, format {}, language {}, since {}",
            config.subscribers.display(),
            s.line,
            s.status.as_str(),
            s.name.as_deref().unwrap_or("-"),
            s.categories.as_ref().map_or("all".into(), |c| c.join(", ")),
            match s.format {
                subscribers::Format::Html => "html",
                subscribers::Format::Text => "text",
            },
            s.language.as_deref().unwrap_or("-"),
            s.since.map_or("-".into(), |d| d.to_string()),
        ),
        None => emit!("  list: not in {}", config.subscribers.display()),
    }
    if let Some(at) = &held.forgotten_at {
        emit!("  forgotten at their request at {at}: only a keyed hash of the address is kept");
    }
    for join in &held.joins {
        emit!(
            "  consent: asked through {} at {}, confirmed at {}{}",
            join.form,
            join.asked_at,
            join.confirmed_at,
            join.ip
                .as_ref()
                .map_or(String::new(), |ip| format!(", from {ip}")),
        );
    }
    for (status, source, at) in &held.requests {
        emit!("  {status} at {at} ({source})");
    }
    if held.soft_bounces > 0 {
        emit!(
            "  temporary delivery failures counted: {}",
            held.soft_bounces
        );
    }
    for w in weeks {
        emit!(
            "  {} ({}): {} after {} attempt(s), {}; as {}{}",
            w.week,
            w.kind,
            w.state,
            w.attempts,
            w.updated_at,
            w.email,
            w.name.as_ref().map_or(String::new(), |n| format!(" ({n})")),
        );
    }
    if weeks.is_empty() && held.requests.is_empty() && held.joins.is_empty() {
        emit!("  send ledger and requests: nothing");
    }
}

/// `subscribers forget EMAIL`: takes the lock (a running send writes the list and the
/// ledger; the lock's error says so), removes the entry, and erases the address from the
/// opt-out store and the ledger, keeping a keyed hash.
pub(crate) fn forget(
    config: &Config,
    catalog: &Catalog,
    address: &Address,
    clock: Clock,
) -> Result<ExitCode> {
    let key = subscribers::address_key(address);
    let _guard = super::guard(config, catalog, clock)?;
    let mut editor = catalog.with(|k| Editor::open(&config.subscribers, k))?;
    let line = editor.find(address).map(|e| e.line);
    if line.is_some() {
        editor.remove(address);
        editor.save()?;
        // The previous version, kept beside the list, still names them: it becomes this one.
        let now = std::fs::read(&config.subscribers)
            .map_err(|e| Error::io("read", &config.subscribers, e))?;
        crate::fsutil::write_atomic(&subscribers::backup_path(&config.subscribers), &now)?;
    }
    let store = Optouts::open(&config.state_dir, clock)?;
    let requests = store.forget(&key)?;
    let tombstone = store.tombstone(&key)?;
    let ledger_rows = if Ledger::path_in(&config.state_dir).exists() {
        Ledger::open(&config.state_dir, clock)?.forget(&key, &tombstone)?
    } else {
        0
    };
    if line.is_none() && requests == 0 && ledger_rows == 0 {
        return Err(Error::Usage(format!(
            "{address} is not known: not in {}, and nothing about it in {}",
            config.subscribers.display(),
            config.state_dir.display()
        )));
    }
    let entry = line.map_or_else(
        || "no entry in the list".to_string(),
        |l| format!("their entry ({} line {l})", config.subscribers.display()),
    );
    say!(
        "forgot {address}: {entry}, {requests} request(s) to leave or bounce rows, {ledger_rows} \
         ledger row(s) (kept without the address, so those weeks are never sent again); an \
         import or add of this address is refused from now on"
    );
    say!(
        "note: copies outside digestif's state are yours to delete: previews, the outbox, \
         backups, your mail server's logs"
    );
    Ok(ExitCode::SUCCESS)
}
