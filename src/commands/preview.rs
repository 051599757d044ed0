//! `digestif preview`: one week's digest as files a person opens (HTML, text, .eml).

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::campaign;
use crate::digest::Week;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::ledger::Recipient;
use crate::mail::{Composer, Unsubscribe};
use crate::render::Renderer;
use crate::site::Site;
use crate::subscribers::{self, Format};

/// `digestif preview`.
pub(crate) fn run(
    config: &Path,
    week: Option<Week>,
    out: &Path,
    now: DateTime<Utc>,
) -> Result<ExitCode> {
    let site = &Site::load(config, super::feed_mode(false))?;
    let Some(week) = week.or_else(|| site.latest_week(now)) else {
        return Err(Error::Usage("no published post: nothing to preview".into()));
    };
    super::ensure_weeks(site, &[week])?;
    write_parts(site, week, now, out, true)?;
    Ok(ExitCode::SUCCESS)
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
    let unsubscribe = Unsubscribe::from_config(&site.config, false)?;
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
