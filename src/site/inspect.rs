//! What `check` finds in a newsletter's own files (posts, notes, wording, subscribers)
//! without stopping at the first problem: the same loading as a send, every problem kept.

use std::path::{Path, PathBuf};

use super::{load_notes, load_posts, load_templates};
use crate::audience::subscribers::{self, Catalog};
use crate::config::{Config, TransportKind};
use crate::error::{Diagnostic, Error, Result};
use crate::sources::feeds::Fetch;
use crate::sources::{self, Post};

/// Everything found, for `check` to report.
#[derive(Debug, Default)]
pub(crate) struct Inspection {
    pub posts: Vec<Post>,
    /// Files under `posts_dir` that are not posts (a section index, a page), and why.
    pub skipped: Vec<(PathBuf, String)>,
    /// What stops a send.
    pub problems: Vec<Diagnostic>,
    /// Legal but probably not meant; a warning about the whole newsletter has an empty path.
    pub warnings: Vec<Diagnostic>,
    /// Readers in the list, when it could be read, and how many of them are active.
    pub subscribers: usize,
    pub active: usize,
}

/// Load and validate `config`'s posts, notes, wording and subscribers. Only an error that
/// stops the inspection itself (an unreadable folder) is returned as `Err`.
pub(crate) fn inspect(config: &Config, fetch: Fetch) -> Result<Inspection> {
    let mut found = Inspection::default();
    let loaded = if let Some(missing) = missing_folder(config, &config.posts_dir, "posts_dir") {
        found.problems.push(missing);
        sources::Loaded::default()
    } else {
        match load_posts(config, fetch) {
            Ok(loaded) => loaded,
            // A feed that cannot be read, with nothing kept: reported with the rest.
            Err(e @ Error::Usage(_)) => {
                found
                    .problems
                    .push(Diagnostic::new(&config.path, e.to_string()));
                sources::Loaded::default()
            }
            Err(e) => return Err(e),
        }
    };
    found.problems.extend(loaded.diagnostics());
    let site = loaded.site;
    // "No posts" is no news when the posts could not be read.
    let posts_read = found.problems.is_empty();
    found.warnings = loaded.warnings;
    found.skipped = loaded.skipped;
    found.posts = loaded.posts;
    warn_of_unlinked(&found.posts, &mut found.warnings);
    load_notes(&config.notes_dir, &mut found.problems);
    match load_templates(config) {
        Ok(_) => {}
        Err(Error::Invalid(mut problems)) => found.problems.append(&mut problems),
        Err(other) => return Err(other),
    }
    let catalog = Catalog::from_posts(config, &found.posts);
    if let Some(missing) = missing_file(config, &config.subscribers, "subscribers") {
        found.problems.push(missing);
        return Ok(with_warnings(found, config, posts_read, site));
    }
    // Streamed, duplicates found from 8-byte hashes: a list of any size in little memory.
    let (mut total, mut active) = (0, 0);
    let problems = catalog.with(|k| {
        subscribers::stream_hashed(&config.subscribers, k, &mut |s| {
            total += 1;
            active += usize::from(s.is_active());
        })
    })?;
    if problems.is_empty() {
        found.subscribers = total;
        found.active = active;
    }
    found.problems.extend(problems);
    Ok(with_warnings(found, config, posts_read, site))
}

/// A folder the config names that is not there, with the nearest folder beside it as a
/// hint (`posts_dir = "post"` when there is `posts/`).
fn missing_folder(config: &Config, folder: &Path, key: &str) -> Option<Diagnostic> {
    if folder.is_dir() {
        return None;
    }
    let problem = Diagnostic::new(
        &config.path,
        format!("newsletter.{key}: {} is not a folder", folder.display()),
    );
    Some(match nearest_sibling(folder, |t| t.is_dir())? {
        Some(close) => problem.with_help(format!("did you mean \"{close}\"?")),
        None => problem.with_help(format!(
            "create it, or set {key} to the folder of your posts"
        )),
    })
}

/// `found` with the warnings about the whole newsletter added.
fn with_warnings(
    mut found: Inspection,
    config: &Config,
    posts_read: bool,
    site: Option<sources::Dialect>,
) -> Inspection {
    let newsletter_wide =
        newsletter_warnings(config, posts_read.then_some(found.posts.len()), site);
    found.warnings.extend(
        newsletter_wide
            .into_iter()
            .map(|w| Diagnostic::new(Path::new(""), w)),
    );
    found
}

/// The name beside `path` (of the kind `keep` accepts) closest to its own, for a
/// did-you-mean; `Some(None)` when nothing is close, `None` when `path` has no name.
fn nearest_sibling(path: &Path, keep: fn(std::fs::FileType) -> bool) -> Option<Option<String>> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let siblings: Vec<String> = std::fs::read_dir(parent.unwrap_or(Path::new(".")))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(keep))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    Some(
        crate::toml_input::did_you_mean(&name, siblings.iter().map(String::as_str))
            .map(str::to_string),
    )
}

/// A file the config names that is not there, with the nearest file beside it as a hint
/// (`subscribers = "subscriber.toml"` when there is `subscribers.toml`).
fn missing_file(config: &Config, file: &Path, key: &str) -> Option<Diagnostic> {
    if file.exists() {
        return None;
    }
    let problem = Diagnostic::new(
        &config.path,
        format!("newsletter.{key}: there is no file {}", file.display()),
    );
    Some(match nearest_sibling(file, |t| t.is_file())? {
        Some(close) => problem.with_help(format!("did you mean \"{close}\"?")),
        None => problem.with_help(format!(
            "create it (it may be empty), or set {key} to your list of readers"
        )),
    })
}

/// Our own format's posts have no page unless they link out or a pattern gives one.
fn warn_of_unlinked(posts: &[Post], warnings: &mut Vec<Diagnostic>) {
    let unlinked: Vec<&Post> = posts
        .iter()
        .filter(|p| p.url().is_none() && !warnings.iter().any(|w| w.path == p.path))
        .collect();
    for post in unlinked {
        warnings.push(Diagnostic::new(
            &post.path,
            "the post's own URL cannot be known, so the email cannot link to it: give it a \
             `link`, or set `permalink` in [newsletter] (e.g. \"{year}/{month}/{slug}/\")",
        ));
    }
}

/// What is legal but probably not what the user wants, about the whole newsletter;
/// `post_count` is `None` when the posts could not all be read.
fn newsletter_warnings(
    config: &Config,
    post_count: Option<usize>,
    site: Option<sources::Dialect>,
) -> Vec<String> {
    let extensions = sources::POST_EXTENSIONS
        .iter()
        .map(|e| format!(".{e}"))
        .collect::<Vec<_>>()
        .join(" and ");
    let mut warnings: Vec<String> = sources::unread_documents(&config.posts_dir, site)
        .iter()
        .map(|p| {
            format!(
                "{}: not read as a post (posts are {extensions} files)",
                p.display()
            )
        })
        .collect();
    if post_count == Some(0) {
        warnings.push(format!(
            "{}: no posts found, so there is nothing to send",
            config.posts_dir.display()
        ));
    }
    if config.smtp.transport == TransportKind::Smtp && config.smtp.host_is_default {
        warnings.push(
            "smtp.host is not set: send would use localhost (see `digestif check --smtp`)".into(),
        );
    }
    warnings
}
