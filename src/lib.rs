//! digestif: Markdown posts → weekly digest → HTML and text email → subscribers.
//!
//! Stages, in data-flow order: [`config`] → [`posts`] → [`digest`] → [`render`] →
//! [`mail`]. [`run`] wires them and owns every side effect's order.

pub mod archive;
pub mod cli;
mod commands;
pub mod config;
pub mod digest;
pub mod error;
pub mod fsutil;
pub mod lock;
pub mod mail;
pub mod posts;
pub mod render;
pub mod send;
pub mod smtp;
pub mod state;
pub mod subscribers;
pub mod templates;
pub mod token;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use cli::{Cli, Command};
use config::Config;
use digest::Week;
use error::{Diagnostic, Error, Result};
use posts::Post;
use render::{Personal, Renderer};
use templates::Templates;

/// Run one command; the returned code is the process exit status.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let now = parse_now(cli.now.as_deref())?;
    let config_path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("digestif.toml"));
    match cli.command {
        Command::Check => check(&config_path, now),
        Command::Weeks => {
            let site = Site::load(&config_path)?;
            print_weeks(&site, now);
            Ok(ExitCode::SUCCESS)
        }
        Command::Preview { week, out } => {
            let site = Site::load(&config_path)?;
            preview(&site, week, &out, now)
        }
        Command::Archive { out } => {
            let site = Site::load(&config_path)?;
            for path in archive::write(&site, &out, now)? {
                println!("{}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Send(args) => commands::send::run(&config_path, args, now),
        Command::Status { week, json } => {
            commands::status::status(&Config::load(&config_path)?, week, json)
        }
        Command::Subscribers(command) => {
            commands::subscribers::run(&Config::load(&config_path)?, command)
        }
        Command::Unsubscribe { token } => {
            commands::subscribers::unsubscribe_token(&Config::load(&config_path)?, &token)
        }
    }
}

fn parse_now(now: Option<&str>) -> Result<DateTime<Utc>> {
    match now {
        None => Ok(Utc::now()),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| {
                Error::Usage(format!(
                    "--now / DIGESTIF_NOW: expected an RFC 3339 instant, found {s:?} ({e})"
                ))
            }),
    }
}

/// The config with its posts and templates, all valid.
pub struct Site {
    pub config: Config,
    pub posts: Vec<Post>,
    pub templates: Templates,
    /// Editor's notes by week, from `notes_dir/<week>.md`.
    pub notes: std::collections::HashMap<Week, String>,
}

impl Site {
    /// Load everything a digest needs; any invalid post aborts with every problem listed.
    pub fn load(config_path: &Path) -> Result<Site> {
        let config = Config::load(config_path)?;
        let (posts, mut problems) = posts::load(&config.posts_dir, &parse_context(&config))?;
        let notes = load_notes(&config.notes_dir, &mut problems);
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        let templates = load_templates(&config)?;
        Ok(Site {
            config,
            posts,
            templates,
            notes,
        })
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

/// Read `dir/<YYYY-Www>.md` notes; a missing folder means no notes.
fn load_notes(
    dir: &Path,
    problems: &mut Vec<Diagnostic>,
) -> std::collections::HashMap<Week, String> {
    let mut notes = std::collections::HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return notes;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "md") {
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

pub(crate) fn parse_context(config: &Config) -> posts::ParseContext {
    posts::ParseContext {
        timezone: config.timezone,
        default_category: config.default_category.clone(),
        base_url: config.base_url.clone(),
    }
}

fn load_templates(config: &Config) -> Result<Templates> {
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

fn check(config_path: &Path, now: DateTime<Utc>) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let (posts, mut problems) = posts::load(&config.posts_dir, &parse_context(&config))?;
    load_notes(&config.notes_dir, &mut problems);
    if let Err(e) = load_templates(&config) {
        match e {
            Error::Invalid(mut found) => problems.append(&mut found),
            other => return Err(other),
        }
    }
    let catalog = commands::subscribers::Catalog::from_posts(&config, &posts);
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

fn print_weeks(site: &Site, now: DateTime<Utc>) {
    let strings = &site.templates.strings;
    for (week, counts) in digest::weeks(&site.posts, site.config.timezone, now) {
        let total: usize = counts.values().sum();
        let complete = if week.is_complete(now, site.config.timezone) {
            ""
        } else {
            "  (in progress)"
        };
        println!(
            "{week}  {}  {}{complete}",
            strings.week_range(week.monday(), week.sunday()),
            strings.post_count(total)
        );
        let mut ordered: Vec<_> = counts.into_iter().collect();
        ordered.sort_by_key(|(c, _)| {
            (
                site.config
                    .categories
                    .iter()
                    .position(|k| k == c)
                    .unwrap_or(usize::MAX),
                c.to_lowercase(),
            )
        });
        for (category, count) in ordered {
            println!("    {count:>3}  {category}");
        }
    }
}

fn preview(site: &Site, week: Option<Week>, out: &Path, now: DateTime<Utc>) -> Result<ExitCode> {
    let week = match week.or_else(|| site.latest_week(now)) {
        Some(week) => week,
        None => return Err(Error::Usage("no published post: nothing to preview".into())),
    };
    write_preview_parts(site, week, now, out, true)?;
    Ok(ExitCode::SUCCESS)
}

/// Write `out/<week>.html`, `.txt` and `.eml`: the whole digest as a reader who chose every
/// category would get it, with an anonymous greeting.
pub(crate) fn write_preview_parts(
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
