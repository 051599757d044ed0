//! `digestif send --dry-run`: every message exactly as a send would build it, written as
//! files, through the same freeze (into a throwaway ledger) and the same composer.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use super::previews::safe_file_name;
use crate::audience::subscribers::{self, Catalog};
use crate::cli::SendArgs;
use crate::clock::Clock;
use crate::delivery::campaign::{self, To};
use crate::delivery::ledger::{Ledger, State};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::kind::Kind;
use crate::mail::{Composer, Recipient, Unsubscribe};
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
    // Checked before anything is written.
    let named = named_readers(&args.as_readers)?;
    // The list a send would read: with what readers asked for through `serve`.
    super::fold_waiting(&site.config, catalog, clock);
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
        let to_write = ToWrite {
            all: args.all_messages,
            named: named.clone(),
            announce: !args.json,
        };
        let written = write_messages(site, &ledger, unsubscribe, (week, &dir), to_write, clock)?;
        let counts = ledger.counts(week, &Kind::Real)?;
        let (recipients, skipped) = (counts.total(), counts.of(State::Skipped));
        let messages = recipients - skipped;
        let Written {
            messages: files,
            bytes,
        } = written;
        if !args.json {
            say!(
                "dry run {week}: {recipients} recipients, {skipped} skipped (no post in their categories), {messages} messages ({files} written, {}){}; nothing sent",
                crate::text::human_bytes(bytes),
                if files < messages { "; --all-messages writes every one" } else { "" }
            );
        }
        summaries.push(serde_json::json!({
            "week": week.to_string(), "recipients": recipients, "skipped": skipped,
            "messages": messages, "written": files, "bytes": bytes,
            "out": dir.display().to_string(),
        }));
    }
    if args.json {
        let all = serde_json::json!({ "dry_run": true, "weeks": summaries });
        emit!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
    }
    Ok(ExitCode::SUCCESS)
}

/// Readers whose own message a dry run writes, unless `--all-messages`: enough to look
/// at, and a million readers are not a million files.
const FIRST_READERS: usize = 100;

/// Which readers' messages a dry run writes.
struct ToWrite {
    /// `--all-messages`.
    all: bool,
    /// `--as`, by address key, as typed.
    named: HashMap<String, String>,
    /// Print each path.
    announce: bool,
}

/// How much a dry run wrote for one week.
struct Written {
    /// Readers' messages written as `.eml`.
    messages: usize,
    bytes: u64,
}

/// The readers whose message is written under `dir`, one `.eml` each, in list order: the
/// first [`FIRST_READERS`] and those named with `--as`, or with `--all-messages` everyone.
/// Each variant of the digest is also written once, under `dir/variants/`. No file is
/// synced on its own (previews are made again by a rerun): the folder is, at the end.
fn write_messages(
    site: &Site,
    ledger: &Ledger,
    unsubscribe: &Unsubscribe,
    (week, dir): (Week, &Path),
    to_write: ToWrite,
    clock: Clock,
) -> Result<Written> {
    let ToWrite {
        all,
        mut named,
        announce,
    } = to_write;
    fsutil::create_dir_all(dir)?;
    let variants = ledger.variants(week, &Kind::Real)?;
    write_variants(
        site,
        &variants,
        (week, &dir.join("variants")),
        announce,
        clock,
    )?;
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
        let first_done = !all && written.messages >= FIRST_READERS;
        if first_done && named.is_empty() {
            break;
        }
        let batch = ledger.next_batch(week, &Kind::Real, after, 512, false)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for r in &batch {
            let asked = named.remove(&r.key).is_some();
            let wanted = all || written.messages < FIRST_READERS || asked;
            if !wanted {
                continue;
            }
            let (_, eml) = composer.compose(r)?;
            let name = format!("{:05}-{}.eml", r.seq + 1, safe_file_name(&r.email));
            let path = dir.join(name);
            fsutil::write_preview(&path, &eml)?;
            if announce {
                say!("{}", path.display());
            }
            written.messages += 1;
            written.bytes += eml.len() as u64;
        }
    }
    fsutil::sync_dir(dir)?;
    for email in named.values() {
        warn!("--as {email}: not in {week}'s audience, so no message of theirs was written");
    }
    Ok(written)
}

/// The readers named with `--as`, by address key, as typed.
fn named_readers(typed: &[String]) -> Result<HashMap<String, String>> {
    let mut named = HashMap::new();
    for email in typed {
        let address: lettre::Address = email
            .trim()
            .parse()
            .map_err(|e| Error::Usage(format!("--as {email:?}: not a valid address ({e})")))?;
        named.insert(subscribers::address_key(&address), email.clone());
    }
    Ok(named)
}

/// `dir/<id>.html` and `.txt` for each variant (a set of categories, a format, a
/// language): the digest as those readers get it, with an anonymous greeting and links
/// without a token.
fn write_variants(
    site: &Site,
    variants: &[crate::mail::Variant],
    (week, dir): (Week, &Path),
    announce: bool,
    clock: Clock,
) -> Result<()> {
    fsutil::create_dir_all(dir)?;
    let sender = &site.config.sender;
    let bare = Unsubscribe::new(sender, None).with_preferences(site.config.web.url.as_ref());
    let ids: Vec<i64> = variants.iter().map(|v| v.id).collect();
    let composer = Composer::new(
        week,
        &Kind::Preview,
        sender,
        &bare,
        variants.to_vec(),
        clock,
    );
    for id in ids {
        let reader = Recipient {
            seq: 0,
            key: subscribers::address_key(&sender.from.email),
            email: sender.from.email.to_string(),
            name: None,
            variant: id,
        };
        let composed = composer.compose_with_parts(&reader)?;
        let parts = [("html", composed.html), ("txt", Some(composed.text))];
        for (ext, part) in parts {
            let Some(part) = part else { continue };
            let path = dir.join(format!("{id}.{ext}"));
            fsutil::write_preview(&path, part.as_bytes())?;
            if announce {
                say!("{}", path.display());
            }
        }
    }
    fsutil::sync_dir(dir)
}
