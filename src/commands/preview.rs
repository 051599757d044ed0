//! `digestif preview`: one week's digest as files a person opens (HTML, text, .eml).

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::audience::subscribers::{self, Catalog, Format};
use crate::audience::token::{self, Purpose};
use crate::campaign;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::ledger::{Ledger, Recipient};
use crate::mail::{Composer, Unsubscribe};
use crate::render::Renderer;
use crate::site::Site;
use crate::week::Week;

/// `digestif preview`.
pub(crate) fn run(
    config: &Path,
    week: Option<Week>,
    out: &Path,
    as_email: Option<String>,
    clock: Clock,
) -> Result<ExitCode> {
    let now = clock.start();
    let site = &Site::load(config, super::feed_mode(false))?;
    let Some(week) = week.or_else(|| site.latest_week(now)) else {
        return Err(Error::Usage("no published post: nothing to preview".into()));
    };
    super::ensure_weeks(site, &[week])?;
    match as_email {
        Some(email) => write_as(site, week, &email, now, out)?,
        None => write_parts(site, week, now, out, true)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `--as EMAIL`: that subscriber's own message, through the same freeze and composer as
/// a send (into a throwaway ledger), written as `<week>-as-<address>.html|.txt|.eml`.
/// Private files (0600): they hold the reader's address and unsubscribe token.
fn write_as(site: &Site, week: Week, email: &str, now: DateTime<Utc>, out: &Path) -> Result<()> {
    let catalog = Catalog::from_posts(&site.config, &site.posts);
    let scratch = tempfile::tempdir()
        .map_err(|e| Error::io("create a temporary folder in", &std::env::temp_dir(), e))?;
    let mut ledger = Ledger::open(scratch.path())?;
    let to = [email.to_string()];
    campaign::freeze_week(site, &catalog, &mut ledger, week, "preview", &to, now)?;
    // The freeze checked that they are an active subscriber: no row to send is a skip.
    let Some(reader) = ledger.next_batch(week, "preview", -1, 1, false)?.pop() else {
        say!("{email} gets no digest for {week}: none of their categories has a post that week");
        return Ok(());
    };
    // Their real links need the secret; without it the preview says so and links bare.
    let secret = match token::secret_for(&site.config.sender, Purpose::Sign) {
        Ok(secret) => secret,
        Err(e) => {
            warn!("{e}: the preview's unsubscribe link carries no token");
            None
        }
    };
    let unsubscribe = Unsubscribe::new(&site.config.sender, secret);
    let composer = Composer::new(
        week,
        "real",
        &site.config.sender,
        &unsubscribe,
        ledger.variants(week, "preview")?,
    );
    let composed = composer.compose_with_parts(&reader)?;
    fsutil::create_dir_all(out)?;
    let stem = format!(
        "{week}-as-{}",
        super::dry_run::safe_file_name(&reader.email)
    );
    for (ext, bytes) in [
        ("html", composed.html.unwrap_or_default().into_bytes()),
        ("txt", composed.text.into_bytes()),
        ("eml", composed.bytes),
    ] {
        if ext == "html" && bytes.is_empty() {
            continue; // a text-only subscriber
        }
        let path = out.join(format!("{stem}.{ext}"));
        fsutil::write_atomic(&path, &bytes)?;
        say!("{}", path.display());
    }
    Ok(())
}

/// Write `out/<week>.html`, `.txt` and `.eml`: the whole digest as a reader who chose every
/// category would get it, with an anonymous greeting, addressed to the sender. Built by the
/// same composer as `send`, so the .eml is what readers get but for its recipient.
pub(crate) fn write_parts(
    site: &Site,
    week: Week,
    now: DateTime<Utc>,
    out: &Path,
    announce: bool,
) -> Result<()> {
    let digest = site.digest(week, now);
    let renderer = Renderer::new(&site.config, site.templates.clone());
    let variant = campaign::frozen_variant(
        0,
        renderer.render(&digest)?,
        Format::Html,
        &site.templates.strings,
    );
    let unsubscribe = Unsubscribe::new(&site.config.sender, None);
    let sender = &site.config.sender;
    let composer = Composer::new(week, "preview", sender, &unsubscribe, vec![variant]);
    let reader = Recipient {
        seq: 0,
        key: subscribers::address_key(&sender.from.email),
        email: sender.from.email.to_string(),
        name: None,
        variant: 0,
    };
    let composed = composer.compose_with_parts(&reader)?;
    fsutil::create_dir_all(out)?;
    for (ext, bytes) in [
        ("html", composed.html.unwrap_or_default().into_bytes()),
        ("txt", composed.text.into_bytes()),
        ("eml", composed.bytes),
    ] {
        let path = out.join(format!("{week}.{ext}"));
        fsutil::write_public(&path, &bytes)?;
        if announce {
            say!("{}", path.display());
        }
    }
    Ok(())
}
