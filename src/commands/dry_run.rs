//! `digestif send --dry-run`: every message exactly as a send would build it, written as
//! files, through the same freeze (into a throwaway ledger) and the same composer.

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::audience::subscribers::Catalog;
use crate::campaign;
use crate::cli::SendArgs;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::ledger::Ledger;
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
    now: DateTime<Utc>,
) -> Result<ExitCode> {
    if weeks.is_empty() {
        say!("nothing new to send");
        return Ok(ExitCode::SUCCESS);
    }
    let out = args.out.as_deref().unwrap_or(Path::new("preview"));
    // The same freeze as a real send, into a throwaway ledger: the list is streamed, and
    // the messages are exactly those a send would build.
    let scratch = tempfile::tempdir()
        .map_err(|e| Error::io("create a temporary folder in", &std::env::temp_dir(), e))?;
    let mut ledger = Ledger::open(scratch.path())?;
    let mut summaries = Vec::new();
    for &week in weeks {
        campaign::freeze_week(site, catalog, &mut ledger, week, "real", &args.to, now)?;
        let dir = out.join(week.to_string());
        fsutil::create_dir_all(&dir)?;
        super::preview::write_parts(site, week, now, out, !args.json)?;
        let composer = Composer::new(
            week,
            "real",
            &site.config.sender,
            unsubscribe,
            ledger.variants(week, "real")?,
        );
        let (mut messages, mut bytes, mut after) = (0usize, 0u64, -1);
        loop {
            let batch = ledger.next_batch(week, "real", after, 512, false)?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for r in &batch {
                let (_, eml) = composer.compose(r)?;
                let path = dir.join(format!("{:05}-{}.eml", r.seq + 1, safe_file_name(&r.email)));
                fsutil::write_atomic(&path, &eml)?;
                if !args.json {
                    say!("{}", path.display());
                }
                messages += 1;
                bytes += eml.len() as u64;
            }
        }
        let (counts, _) = ledger.counts(week, "real")?;
        let (recipients, skipped) = (counts.values().sum::<usize>(), counts["skipped"]);
        if !args.json {
            say!(
                "dry run {week}: {recipients} recipients, {skipped} skipped (no post in their categories), {messages} messages, {bytes} bytes; nothing sent"
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

/// An address as a file name: no path separators or control characters.
pub(super) fn safe_file_name(email: &str) -> String {
    email
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "@._+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
