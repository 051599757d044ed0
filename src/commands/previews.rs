//! Preview files shared by `preview` and `send --dry-run`: the week's digest as a reader
//! who chose every category gets it, and addresses made safe as file names.

use std::path::Path;

use crate::audience::subscribers::{self, Format};
use crate::clock::Clock;
use crate::delivery::campaign;
use crate::error::Result;
use crate::fsutil;
use crate::kind::Kind;
use crate::mail::{Composer, Recipient, Unsubscribe};
use crate::render::Renderer;
use crate::site::Site;
use crate::week::Week;

/// Write `out/<week>.html`, `.txt` and `.eml`: the whole digest as a reader who chose every
/// category would get it, with an anonymous greeting, addressed to the sender. Built by the
/// same composer as `send`, so the .eml is what readers get but for its recipient.
pub(crate) fn write_parts(
    site: &Site,
    week: Week,
    clock: Clock,
    out: &Path,
    announce: bool,
) -> Result<()> {
    let digest = site.digest(week, clock.start());
    let renderer = Renderer::new(&site.config, site.templates.clone());
    let variant = campaign::frozen_variant(
        0,
        renderer.render(&digest)?,
        Format::Html,
        &site.templates.strings,
    );
    let unsubscribe =
        Unsubscribe::new(&site.config.sender, None).with_preferences(site.config.web.url.as_ref());
    let sender = &site.config.sender;
    let composer = Composer::new(
        week,
        &Kind::Preview,
        sender,
        &unsubscribe,
        vec![variant],
        clock,
    );
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
