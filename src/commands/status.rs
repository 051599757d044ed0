//! `digestif status`: what the send ledger knows, for people and scripts.

use std::path::Path;
use std::process::ExitCode;

use std::collections::HashMap;

use crate::audience::inbox::rates::{self, Tally, WeekRates};
use crate::audience::optout::Optouts;
use crate::audience::subscribers::{self, Status};
use crate::clock::Clock;
use crate::config::Config;
use crate::config::LedgerSync;
use crate::delivery::ledger::journal::{Served, SYNC_EVERY_LINES};
use crate::delivery::ledger::{Counts, Ledger, Problem, Recovered, Send, State};
use crate::error::Result;
use crate::lock::Lock;
use crate::site;
use crate::week::Week;

/// `digestif status`; with `--repair` ([`repair`]), `(repair, force)`.
pub(crate) fn run(
    config: &Path,
    week: Option<Week>,
    json: bool,
    (repair, force): (bool, bool),
    clock: Clock,
) -> Result<ExitCode> {
    if repair {
        return self::repair(config, force, clock);
    }
    let config = &Config::load(config)?;
    if !json {
        list_summary(config, clock)?;
    }
    let ledger = Ledger::open_read_only(&config.state_dir, clock)?;
    let sends = match &ledger {
        Some(ledger) => counted_sends(ledger, config)?,
        None => Vec::new(),
    };
    // One pass over the store: the weeks' rates and the readers' activity.
    let tally = tally_events(config, clock, &sends)?;
    let Some(ledger) = ledger else {
        emit!(
            "nothing sent yet ({} has no ledger)",
            config.state_dir.display()
        );
        if !json {
            print_activity(&tally);
        }
        return Ok(ExitCode::SUCCESS);
    };
    let rates: HashMap<&str, &WeekRates> = tally.rates().map(|r| (r.week.as_str(), r)).collect();
    let mut out = Vec::new();
    for (send, parsed, counts) in &sends {
        let (w, kind, started) = (&send.week, &send.kind, &send.started_at);
        if week.is_some_and(|only| only != *parsed) {
            continue;
        }
        let (parsed, counts) = (*parsed, *counts);
        let duplicates = counts.possible_duplicates;
        let problems = ledger.problems(parsed, kind)?;
        let week_rates = rates.get(w.as_str()).filter(|_| kind.is_real());
        if json {
            out.push(
                serde_json::json!({"week": w, "kind": kind, "started_at": started, "counts": counts,
                "possible_duplicates": duplicates, "problems": problems, "rates": week_rates}),
            );
            continue;
        }
        print_send(send, counts, week_rates.copied(), problems);
    }
    if json {
        emit!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        print_activity(&tally);
    }
    Ok(ExitCode::SUCCESS)
}

/// Every finding and leave the opt-out store holds, counted (none when there is no store
/// yet) against `sends`, the real digests among them.
fn tally_events(config: &Config, clock: Clock, sends: &[(Send, Week, Counts)]) -> Result<Tally> {
    let digests: Vec<rates::Sent> = sends
        .iter()
        .filter(|(s, _, _)| s.kind.is_real())
        .map(|(s, _, counts)| rates::Sent {
            week: &s.week,
            started_at: &s.started_at,
            delivered: counts.of(State::Sent),
        })
        .collect();
    let mut tally = Tally::new(&digests, config.timezone);
    if config.state_dir.join("optouts.sqlite").exists() {
        Optouts::open(&config.state_dir, clock)?.each_event(|e| tally.add(e))?;
    }
    Ok(tally)
}

/// Each send with its counts, read once: its report, and the weeks' rates. What a killed
/// (or running) send has recorded only in its journal counts too.
fn counted_sends(ledger: &Ledger, config: &Config) -> Result<Vec<(Send, Week, Counts)>> {
    let unfolded = ledger.unfolded(&config.state_dir)?;
    let mut sends = Vec::new();
    for send in ledger.sends()? {
        if let Ok(parsed) = send.week.parse::<Week>() {
            let counts = ledger.counts_after(&unfolded, parsed, &send.kind)?;
            sends.push((send, parsed, counts));
        }
    }
    Ok(sends)
}

/// A send for people: its counts, then its rates and the readers it could not reach.
fn print_send(send: &Send, counts: Counts, rates: Option<&WeekRates>, problems: Vec<Problem>) {
    let (w, kind, started) = (&send.week, &send.kind, &send.started_at);
    let parts: Vec<String> = counts
        .by_name()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    let label = if kind.is_real() {
        String::new()
    } else {
        format!(" ({kind})")
    };
    emit!("{w}{label}  started {started}  {}", parts.join(", "));
    if counts.possible_duplicates > 0 {
        emit!("  {} possible duplicates", counts.possible_duplicates);
    }
    if let Some(r) = rates {
        print_rates(r);
    }
    for p in problems {
        emit!(
            "  {:<8} {} (attempts: {}): {}",
            p.state,
            p.email,
            p.attempts,
            p.last_error.unwrap_or_default()
        );
    }
}

/// One line of rates under a week, and what to act on.
fn print_rates(r: &WeekRates) {
    emit!(
        "  after it: {} delivered, {} hard bounces ({}), {} soft, {} refused as spam or by policy, {} complaints ({}), {} left",
        r.delivered,
        r.hard,
        r.percent(r.hard),
        r.soft,
        r.block,
        r.complaints,
        r.percent(r.complaints),
        r.leaves
    );
    for warning in r.warnings() {
        warn!("{warning}");
    }
}

/// What readers did, by week: joined through the form, confirmed, changed their
/// choices, left (the last eight weeks with any).
fn print_activity(tally: &Tally) {
    let weeks = tally.activity();
    for a in weeks.iter().rev().take(8).rev() {
        emit!(
            "readers in {}: {} asked to join, {} confirmed, {} changed their choices, {} left",
            a.week,
            a.asked,
            a.confirmed,
            a.changed,
            a.left
        );
    }
}

/// The list by status, and the requests to leave not yet written into it.
fn list_summary(config: &Config, clock: Clock) -> Result<()> {
    let catalog = site::catalog(config);
    let mut counts = [0usize; 3];
    catalog.with(|known| {
        // Counting needs no duplicate check (`check` does it): nothing kept per entry.
        subscribers::stream(&config.subscribers, known, &mut |_, _| None, &mut |s| {
            counts[match s.status {
                Status::Active => 0,
                Status::Unsubscribed => 1,
                Status::Bounced => 2,
            }] += 1;
        })
    })?;
    emit!(
        "subscribers: {} active, {} unsubscribed, {} bounced",
        counts[0],
        counts[1],
        counts[2]
    );
    if config.state_dir.join("optouts.sqlite").exists() {
        let pending = Optouts::open(&config.state_dir, clock)?.pending()?;
        if !pending.is_empty() {
            emit!(
                "  {} requests to leave recorded, written into {} when no send runs",
                pending.len(),
                config.subscribers.display()
            );
        }
    }
    Ok(())
}

/// What the journal proved of a week the ledger lost, and the bound on what it cannot
/// prove.
fn say_recovered(week: &Recovered, sync: LedgerSync) {
    let count = |served| week.counts.get(&served).copied().unwrap_or(0);
    say!(
        "{}: rebuilt from the journal: {} readers served and {} with no reply after their message (neither sent again), {} refused for good, {} cut off by the kill (sent again, possible duplicates); the other readers get it from the next `digestif send`",
        week.week,
        count(Served::Sent),
        count(Served::Unknown),
        count(Served::Failed),
        count(Served::Interrupted),
    );
    if week.rebooted && sync == LedgerSync::Normal {
        say!(
            "{}: the machine restarted since: with ledger_sync = \"normal\", the messages of up to {} journal lines not yet synced may have gone out unrecorded; those readers (at most {}) may get the week twice",
            week.week,
            SYNC_EVERY_LINES,
            SYNC_EVERY_LINES / 2
        );
    }
}

/// `digestif status --repair [--force]`.
fn repair(config: &Path, force: bool, clock: Clock) -> Result<ExitCode> {
    let config = &Config::load(config)?;
    let _lock = Lock::acquire(&config.state_dir)?;
    let done = Ledger::repair(&config.state_dir, force, clock)?;
    if done.recorded.is_empty()
        && done.forgotten.is_empty()
        && done.recovered.is_empty()
        && done.moved.is_empty()
    {
        say!(
            "the ledger in {} is whole: nothing to repair",
            config.state_dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    for path in &done.moved {
        say!("moved aside: {}", path.display());
    }
    for week in &done.recorded {
        say!("{week}: recorded as sent (it will not be sent again)");
    }
    for week in &done.forgotten {
        say!("{week}: forgotten (--force: it may be sent again)");
    }
    for week in &done.recovered {
        say_recovered(week, config.smtp.ledger_sync);
    }
    Ok(ExitCode::SUCCESS)
}
