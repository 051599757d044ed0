//! `digestif check`: validate the config, every post, the notes, the templates and the
//! subscribers, and list every problem at once.

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::posts;
use crate::site;
use crate::subscribers::{self, Catalog};

/// `digestif check`.
pub(crate) fn run(config_path: &Path, now: DateTime<Utc>) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let (posts, mut problems) = posts::load(&config.posts_dir, &site::parse_context(&config))?;
    site::load_notes(&config.notes_dir, &mut problems);
    if let Err(e) = site::load_templates(&config) {
        match e {
            Error::Invalid(mut found) => problems.append(&mut found),
            other => return Err(other),
        }
    }
    let catalog = Catalog::from_posts(&config, &posts);
    let subscriber_count = match catalog.with(|k| subscribers::load(&config.subscribers, k)) {
        Ok(list) => list.len(),
        Err(Error::Invalid(mut found)) => {
            problems.append(&mut found);
            0
        }
        Err(other) => return Err(other),
    };
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    let published = posts.iter().filter(|p| p.is_published(now)).count();
    println!(
        "ok: {} ({subscriber_count} subscribers)",
        config.subscribers.display()
    );
    println!(
        "ok: {} ({} posts, published: {published}, drafts: {}, scheduled: {})",
        config.path.display(),
        posts.len(),
        posts.iter().filter(|p| p.draft).count(),
        posts
            .iter()
            .filter(|p| !p.draft && !p.is_published(now))
            .count(),
    );
    Ok(ExitCode::SUCCESS)
}
