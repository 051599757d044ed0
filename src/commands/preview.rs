//! `digestif preview`: one week's digest as files a person opens (HTML, text, .eml).

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::digest::Week;
use crate::error::{Error, Result};
use crate::render::{Personal, Renderer};
use crate::site::Site;
use crate::{fsutil, mail};

/// `digestif preview`.
pub fn run(config: &Path, week: Option<Week>, out: &Path, now: DateTime<Utc>) -> Result<ExitCode> {
    let site = &Site::load(config)?;
    let week = match week.or_else(|| site.latest_week(now)) {
        Some(week) => week,
        None => return Err(Error::Usage("no published post: nothing to preview".into())),
    };
    write_parts(site, week, now, out, true)?;
    Ok(ExitCode::SUCCESS)
}

/// Write `out/<week>.html`, `.txt` and `.eml`: the whole digest as a reader who chose every
/// category would get it, with an anonymous greeting.
pub fn write_parts(
    site: &Site,
    week: Week,
    now: DateTime<Utc>,
    out: &Path,
    announce: bool,
) -> Result<()> {
    let digest = site.digest(week, now);
    let renderer = Renderer::new(&site.config, site.templates.clone());
    let rendered = renderer.render(&digest)?;
    let sender = &site.config.sender;
    let unsubscribe = preview_unsubscribe_url(&site.config);
    let (html, text) = rendered.personalize(
        &site.templates,
        &Personal {
            name: None,
            unsubscribe_url: &unsubscribe,
        },
    );
    // The same encoder as `send`, so the preview .eml is byte for byte what readers get
    // (but for the recipient, which is the sender here).
    let greeting = site.templates.strings.greeting(None);
    let message = mail::Prepared::new(
        sender,
        &rendered.subject,
        &rendered.text,
        Some(&rendered.html),
    )
    .message(&mail::Personal {
        to: &sender.from,
        message_id: &mail::message_id(week, "preview", sender),
        greeting: &greeting,
        unsubscribe_link: &unsubscribe,
        unsubscribe_https: None,
    });
    fsutil::create_dir_all(out)?;
    for (ext, bytes) in [
        ("html", html.as_bytes()),
        ("txt", text.as_bytes()),
        ("eml", &message),
    ] {
        let path = out.join(format!("{week}.{ext}"));
        fsutil::write_atomic(&path, bytes)?;
        if announce {
            // Ignored write errors: a dry run must not panic on a closed stdout.
            use std::io::Write as _;
            let _ = writeln!(std::io::stdout(), "{}", path.display());
        }
    }
    Ok(())
}

/// Where a preview's unsubscribe link points: the real mechanism when configured.
fn preview_unsubscribe_url(config: &Config) -> String {
    match (
        &config.sender.unsubscribe_url,
        &config.sender.unsubscribe_mailto,
    ) {
        (Some(url), _) => url.to_string(),
        (None, Some(mailto)) => format!("mailto:{mailto}?subject=unsubscribe"),
        (None, None) => config.base_url.to_string(),
    }
}
