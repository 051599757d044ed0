//! `digestif preview`: one week's digest as files a person opens (HTML, text, .eml).

use std::path::Path;
use std::process::ExitCode;

use crate::audience::subscribers::Catalog;
use crate::audience::token::{self, Purpose};
use crate::clock::Clock;
use crate::delivery::campaign;
use crate::delivery::ledger::Ledger;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::kind::Kind;
use crate::mail::{Composer, Unsubscribe};
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
        Some(email) => write_as(site, week, &email, clock, out)?,
        None => super::previews::write_parts(site, week, clock, out, true)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `--as EMAIL`: that subscriber's own message, through the same freeze and composer as
/// a send (into a throwaway ledger), written as `<week>-as-<address>.html|.txt|.eml`.
/// Private files (0600): they hold the reader's address and unsubscribe token.
fn write_as(site: &Site, week: Week, email: &str, clock: Clock, out: &Path) -> Result<()> {
    let catalog = Catalog::from_posts(&site.config, &site.posts);
    let scratch = tempfile::tempdir()
        .map_err(|e| Error::io("create a temporary folder in", &std::env::temp_dir(), e))?;
    let mut ledger = Ledger::open(scratch.path(), clock)?;
    let to = [email.to_string()];
    let kind = &Kind::Preview;
    let to = campaign::To::Subscribers(&to);
    campaign::freeze_week(site, &catalog, &mut ledger, week, kind, to, clock.start())?;
    // The freeze checked that they are an active subscriber: no row to send is a skip.
    let Some(reader) = ledger.next_batch(week, kind, -1, 1, false)?.pop() else {
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
    let unsubscribe = Unsubscribe::new(&site.config.sender, secret)
        .with_preferences(site.config.web.url.as_ref());
    // Composed as the real send would: the same Message-ID and links.
    let variants = ledger.variants(week, kind)?;
    let composer = Composer::new(
        week,
        &Kind::Real,
        &site.config.sender,
        &unsubscribe,
        variants,
        clock,
    );
    let composed = composer.compose_with_parts(&reader)?;
    fsutil::create_dir_all(out)?;
    let stem = format!(
        "{week}-as-{}",
        super::previews::safe_file_name(&reader.email)
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
