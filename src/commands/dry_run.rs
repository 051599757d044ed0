//! `digestif send --dry-run`: every message exactly as a send would build it, written as
//! files, through the same freeze (into a throwaway ledger) and the same composer.

use std::path::Path;
use std::process::ExitCode;

use super::previews::safe_file_name;
use crate::audience::subscribers::Catalog;
use crate::cli::SendArgs;
use crate::clock::Clock;
use crate::delivery::campaign::{self, To};
use crate::delivery::ledger::{Ledger, State};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::kind::Kind;
use crate::mail::{Composer, Unsubscribe};
use crate::site::Site;
use crate::week::Week;

/// `--dry-run`: every message exactly as it would be sent, written under `args.out`.
pub(crate) fn run(
    site: &Site,
    catalog: &Catalog,
    unsubscribe: &Unsubscribe,
    weeks: &[Week],
    args: &SendArgs,
    clock: Clock,
) -> Result<ExitCode> {
    if weeks.is_empty() {
        if args.json {
            emit!("{}", serde_json::json!({ "dry_run": true, "weeks": [] }));
        } else {
            say!("nothing new to send");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let out = args.out.as_deref().unwrap_or(Path::new("preview"));
    // The same freeze as a real send, into a throwaway ledger: the list is streamed, and
    // the messages are exactly those a send would build.
    let scratch = tempfile::tempdir()
        .map_err(|e| Error::io("create a temporary folder in", &std::env::temp_dir(), e))?;
    let mut ledger = Ledger::open(scratch.path(), clock)?;
    let mut summaries = Vec::new();
    for &week in weeks {
        let now = clock.start();
        match campaign::freeze_week(
            site,
            catalog,
            &mut ledger,
            week,
            &Kind::Real,
            To::named(&args.to),
            now,
        ) {
            Ok(_) => {}
            // A look, not a mail-out: say what a send would do, and show the week anyway.
            Err(e @ Error::NoReaders { .. }) => warn!("{e} (a send would stop here, exit 2)"),
            Err(e) => return Err(e),
        }
        super::previews::write_parts(site, week, clock, out, !args.json)?;
        let dir = out.join(week.to_string());
        let written = write_messages(site, &ledger, unsubscribe, week, &dir, !args.json, clock)?;
        let counts = ledger.counts(week, &Kind::Real)?;
        let (recipients, skipped) = (counts.total(), counts.of(State::Skipped));
        let Written { messages, bytes } = written;
        if !args.json {
            say!(
                "dry run {week}: {recipients} recipients, {skipped} skipped (no post in their categories), {messages} messages, {}; nothing sent",
                crate::text::human_bytes(bytes)
            );
        }
        summaries.push(serde_json::json!({
            "week": week.to_string(), "recipients": recipients, "skipped": skipped,
            "messages": messages, "bytes": bytes, "out": dir.display().to_string(),
        }));
    }
    if args.json {
        let all = serde_json::json!({ "dry_run": true, "weeks": summaries });
        emit!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
    }
    Ok(ExitCode::SUCCESS)
}

/// How much a dry run wrote for one week.
struct Written {
    messages: usize,
    bytes: u64,
}

/// Every reader's message of `week`, one `.eml` each under `dir`, in list order.
fn write_messages(
    site: &Site,
    ledger: &Ledger,
    unsubscribe: &Unsubscribe,
    week: Week,
    dir: &Path,
    announce: bool,
    clock: Clock,
) -> Result<Written> {
    fsutil::create_dir_all(dir)?;
    let variants = ledger.variants(week, &Kind::Real)?;
    let composer = Composer::new(
        week,
        &Kind::Real,
        &site.config.sender,
        unsubscribe,
        variants,
        clock,
    );
    let mut written = Written {
        messages: 0,
        bytes: 0,
    };
    let mut after = -1;
    loop {
        let batch = ledger.next_batch(week, &Kind::Real, after, 512, false)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for r in &batch {
            let (_, eml) = composer.compose(r)?;
            let name = format!("{:05}-{}.eml", r.seq + 1, safe_file_name(&r.email));
            let path = dir.join(name);
            fsutil::write_atomic(&path, &eml)?;
            if announce {
                say!("{}", path.display());
            }
            written.messages += 1;
            written.bytes += eml.len() as u64;
        }
    }
    Ok(written)
}
