//! `digestif status`: what the send ledger knows, for people and scripts.

use std::path::Path;
use std::process::ExitCode;

use crate::audience::optout::Optouts;
use crate::audience::subscribers::{self, Status};
use crate::clock::Clock;
use crate::config::Config;
use crate::delivery::ledger::Ledger;
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
    let Some(ledger) = Ledger::open_read_only(&config.state_dir, clock)? else {
        emit!(
            "nothing sent yet ({} has no ledger)",
            config.state_dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let mut out = Vec::new();
    for send in ledger.sends()? {
        let (w, kind, started) = (&send.week, &send.kind, &send.started_at);
        let Ok(parsed) = w.parse::<Week>() else {
            continue;
        };
        if week.is_some_and(|only| only != parsed) {
            continue;
        }
        let counts = ledger.counts(parsed, kind)?;
        let duplicates = counts.possible_duplicates;
        let problems = ledger.problems(parsed, kind)?;
        if json {
            out.push(
                serde_json::json!({"week": w, "kind": kind, "started_at": started, "counts": counts,
                "possible_duplicates": duplicates, "problems": problems}),
            );
            continue;
        }
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
        if duplicates > 0 {
            emit!("  {duplicates} possible duplicates");
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
    if json {
        emit!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    Ok(ExitCode::SUCCESS)
}

/// The list by status, and the requests to leave not yet written into it.
fn list_summary(config: &Config, clock: Clock) -> Result<()> {
    let catalog = site::catalog(config);
    let mut counts = [0usize; 3];
    catalog.with(|known| {
        subscribers::stream_in_memory(&config.subscribers, known, &mut |s| {
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

/// `digestif status --repair [--force]`.
fn repair(config: &Path, force: bool, clock: Clock) -> Result<ExitCode> {
    let config = &Config::load(config)?;
    let _lock = Lock::acquire(&config.state_dir)?;
    let done = Ledger::repair(&config.state_dir, force, clock)?;
    if done.recorded.is_empty() && done.forgotten.is_empty() && done.moved.is_empty() {
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
    Ok(ExitCode::SUCCESS)
}
