//! Everything a digest needs, loaded and validated: the config, the posts, the editor's
//! notes and the templates. Loading reports every problem of every file at once; the
//! stages above it get only valid input.

mod inspect;
pub mod links;

pub(crate) use inspect::{inspect, Inspection};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::audience::subscribers::Catalog;
use crate::config::Config;
use crate::digest;
use crate::error::{Diagnostic, Error, Result};
use crate::sources::feeds::{self, Fetch};
use crate::sources::{self, Dialect, Post};
use crate::templates::{self, Templates};
use crate::week::Week;

/// The config with its posts and templates, all valid.
pub struct Site {
    pub config: Config,
    pub posts: Vec<Post>,
    pub templates: Templates,
    /// Editor's notes by week, from `notes_dir/<week>.md`.
    pub notes: HashMap<Week, String>,
    /// Posts that cannot be read but whose date could: they block only their own week
    /// ([`Site::ensure_weeks`]).
    pub dated_problems: Vec<sources::Problem>,
    /// What the user should hear about without anything stopping.
    pub warnings: Vec<Diagnostic>,
}

impl Site {
    /// Load everything a digest needs. A post whose date cannot be read aborts, with every
    /// problem listed; a bad post with a readable date is kept for [`Site::ensure_weeks`].
    pub fn load(config_path: &Path, fetch: Fetch) -> Result<Site> {
        let config = Config::load(config_path)?;
        let loaded = load_posts(&config, fetch)?;
        let (dated_problems, undated): (Vec<_>, Vec<_>) =
            loaded.problems.into_iter().partition(|p| p.date.is_some());
        let mut problems: Vec<Diagnostic> = undated.into_iter().map(|p| p.diagnostic).collect();
        let notes = load_notes(&config.notes_dir, &mut problems);
        if !problems.is_empty() {
            problems.extend(dated_problems.into_iter().map(|p| p.diagnostic));
            return Err(Error::Invalid(problems));
        }
        let templates = load_templates(&config)?;
        Ok(Site {
            config,
            posts: loaded.posts,
            templates,
            notes,
            dated_problems,
            warnings: loaded.warnings,
        })
    }

    /// Stop if a post that cannot be read belongs to one of `weeks`; the others are
    /// returned as warnings, so one bad post does not stop the newsletter forever.
    pub fn ensure_weeks(&self, weeks: &[Week]) -> Result<Vec<Diagnostic>> {
        let tz = self.config.timezone;
        let (blocking, elsewhere): (Vec<_>, Vec<_>) = self.dated_problems.iter().partition(|p| {
            p.date
                .is_some_and(|d| weeks.contains(&Week::of_instant(d, tz)))
        });
        if !blocking.is_empty() {
            return Err(Error::Invalid(
                blocking.into_iter().map(|p| p.diagnostic.clone()).collect(),
            ));
        }
        Ok(elsewhere
            .into_iter()
            .map(|p| {
                let mut d = p.diagnostic.clone();
                d.message = format!(
                    "{} (outside the week being written: not blocking)",
                    d.message
                );
                d
            })
            .collect())
    }

    /// The most recent week with a published post.
    pub fn latest_week(&self, now: DateTime<Utc>) -> Option<Week> {
        digest::weeks(&self.posts, self.config.timezone, now)
            .first()
            .map(|(w, _)| *w)
    }

    pub fn digest(&self, week: Week, now: DateTime<Utc>) -> digest::Digest<'_> {
        let mut digest = digest::group(
            &self.posts,
            week,
            self.config.timezone,
            now,
            &self.config.categories,
        );
        if !digest.is_empty() {
            digest.note = self.notes.get(&week).cloned();
        }
        digest
    }
}

/// Read `dir/<YYYY-Www>.md` notes; a missing folder means no notes. Only regular files
/// inside the folder are read: a FIFO would hang every command, and a symlink leading out
/// of the folder would put any file of the machine into every reader's message.
pub fn load_notes(dir: &Path, problems: &mut Vec<Diagnostic>) -> HashMap<Week, String> {
    let mut notes = HashMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return notes,
        Err(e) => {
            problems.push(Diagnostic::new(
                dir,
                format!("cannot read the notes folder: {e}"),
            ));
            return notes;
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => paths.push(entry.path()),
            Err(e) => problems.push(Diagnostic::new(
                dir,
                format!("cannot read the notes folder: {e}"),
            )),
        }
    }
    // Sorted, so problems come in the same order on every machine.
    paths.sort();
    for path in paths {
        let name = path.file_name().unwrap_or_default();
        if path.extension().is_none_or(|e| e != "md") || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if let Err(why) = regular_file_inside(dir, &path) {
            problems.push(Diagnostic::new(&path, why));
            continue;
        }
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let Ok(week) = stem.parse::<Week>() else {
            problems.push(Diagnostic::new(
                &path,
                "an editor's note must be named after its ISO week, such as 2011-W52.md",
            ));
            continue;
        };
        match std::fs::read(&path).map(String::from_utf8) {
            Ok(Ok(text)) => {
                if !text.trim().is_empty() {
                    notes.insert(week, text);
                }
            }
            Ok(Err(_)) => problems.push(Diagnostic::new(
                &path,
                "invalid UTF-8: notes must be UTF-8 text",
            )),
            Err(e) => problems.push(Diagnostic::new(&path, format!("cannot read: {e}"))),
        }
    }
    notes
}

/// Is `path` a regular file, or a symlink to a regular file inside `dir`?
fn regular_file_inside(dir: &Path, path: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if meta.file_type().is_symlink() {
        let target =
            std::fs::canonicalize(path).map_err(|e| format!("cannot follow the link: {e}"))?;
        let inside = std::fs::canonicalize(dir).is_ok_and(|d| target.starts_with(d));
        if !inside {
            return Err(format!(
                "a link to {}, outside the notes folder: notes are read only from inside it",
                target.display()
            ));
        }
        let meta = std::fs::metadata(&target).map_err(|e| format!("cannot read: {e}"))?;
        return match meta.is_file() {
            true => Ok(()),
            false => Err("a link to something that is not a regular file".into()),
        };
    }
    if meta.is_file() {
        Ok(())
    } else {
        Err("not a regular file (a FIFO, socket, device or folder): notes must be files".into())
    }
}

/// Every post: the files of `posts_dir` (unless feeds replace it and it does not exist)
/// and the items of the feeds, fetched as `fetch` says.
pub fn load_posts(config: &Config, fetch: Fetch) -> Result<sources::Loaded> {
    let ctx = parse_context(config);
    let mut loaded = if config.feeds.is_empty() || config.posts_dir.is_dir() {
        sources::load(&config.posts_dir, &ctx)?
    } else {
        sources::Loaded::default()
    };
    let gathered = feeds::gather(
        &feed_sources(config),
        &config.state_dir,
        fetch,
        std::time::Duration::from_secs(config.feed_timeout_s),
        &ctx,
    )?;
    loaded.posts.extend(gathered.posts);
    loaded.warnings.extend(
        gathered
            .warnings
            .into_iter()
            .map(|w| Diagnostic::new(&config.path, w)),
    );
    Ok(loaded)
}

/// The config's feeds; files are relative to the config's folder.
pub fn feed_sources(config: &Config) -> Vec<feeds::Source> {
    let base = config.path.parent().unwrap_or(Path::new(""));
    config
        .feeds
        .iter()
        .map(|f| feeds::Source::parse(f, base))
        .collect()
}

pub fn parse_context(config: &Config) -> sources::ParseContext {
    let format = config.posts_format.as_deref().map(|f| match f {
        "zola" => Dialect::Zola,
        "hugo" => Dialect::Hugo,
        "jekyll" => Dialect::Jekyll,
        _ => Dialect::Digestif,
    });
    // A site config that cannot be read leaves the generator's defaults, and says why.
    let (generator, unreadable) = match sources::generator::SiteConfig::find(&config.posts_dir) {
        Ok(found) => (found, None),
        Err(unreadable) => (None, Some(unreadable)),
    };
    let content_root = generator
        .as_ref()
        .map(sources::generator::SiteConfig::content_root)
        .filter(|root| std::path::absolute(&config.posts_dir).is_ok_and(|p| p.starts_with(root)))
        .unwrap_or_else(|| content_root(&config.posts_dir));
    sources::ParseContext {
        timezone: config.timezone,
        default_category: config.default_category.clone(),
        base_url: config.base_url.clone(),
        format,
        site: generator
            .as_ref()
            .map(|g| g.dialect)
            .or(unreadable.as_ref().map(|u| u.dialect)),
        site_problem: unreadable.map(|u| {
            let message = format!(
                "{}; {} cannot read it either, and posts link to its default pages",
                u.why,
                u.dialect.name()
            );
            match u.line {
                Some(line) => Diagnostic::at(&u.file, line, message),
                None => Diagnostic::new(&u.file, message),
            }
        }),
        generator: generator.map(std::sync::Arc::new),
        permalink: config.permalink.clone(),
        category_map: config.category_names.clone(),
        content_root,
        exclude: config.exclude.clone(),
    }
}

/// Where sections start: the nearest folder named `content` at or above the posts (Zola,
/// Hugo), else the posts folder's parent, so `posts/2024/a.md` is in section `posts/2024`.
fn content_root(posts_dir: &Path) -> PathBuf {
    posts_dir
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|n| n == "content"))
        .map(Path::to_path_buf)
        .unwrap_or_else(|| posts_dir.parent().unwrap_or(Path::new("")).to_path_buf())
}

pub fn load_templates(config: &Config) -> Result<Templates> {
    if !templates::has_language(&config.templates_dir, &config.language) {
        return Err(Error::Invalid(vec![Diagnostic::new(
            &config.path,
            format!(
                "newsletter.language: no wording for {:?}; expected \"fr\", \"en\" or a file {}",
                config.language,
                config
                    .templates_dir
                    .join("strings")
                    .join(format!("{}.toml", config.language))
                    .display()
            ),
        )]));
    }
    Templates::load(&config.templates_dir, &config.language)
}

/// What subscriber validation needs to know, from the config and the posts as they load.
/// Posts that do not load only lose their categories here: `check` reports them.
pub fn catalog(config: &Config) -> Catalog {
    match sources::load(&config.posts_dir, &parse_context(config)) {
        Ok(loaded) => Catalog::from_posts(config, &loaded.posts),
        Err(_) => Catalog::from_posts(config, &[]),
    }
}
