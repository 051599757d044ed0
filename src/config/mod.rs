//! Stage 1: the configuration file (`digestif.toml`).
//!
//! [`Config::parse`] is pure (text in, validated config or every problem out);
//! [`Config::load`] reads the file and resolves relative paths against its folder.
//! Secrets are never read here: the config only names where they live
//! (`password_env`, `password_file`, `unsubscribe_secret_env`).

mod dkim;
mod newsletter;
mod sender;
mod smtp;
mod web;

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use lettre::message::Mailbox;
use serde::Deserialize;
use url::Url;

use crate::error::{Diagnostic, Error, Result};
use crate::toml_input;
pub use dkim::DkimConfig;
use newsletter::RawNewsletter;
use sender::RawSender;
pub use sender::Sender;
pub use smtp::{LedgerSync, SmtpConfig, TlsMode, TransportKind};
pub use web::WebConfig;

/// Placeholders the `subject` template may use.
pub const SUBJECT_PLACEHOLDERS: &[&str] =
    &["name", "week", "week_id", "count", "lead", "lead_and_more"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    newsletter: RawNewsletter,
    sender: RawSender,
    #[serde(default)]
    smtp: SmtpConfig,
    dkim: Option<dkim::RawDkim>,
    #[serde(default)]
    web: web::RawWeb,
    /// A generator's category name → the digest's section.
    #[serde(default)]
    category_names: std::collections::HashMap<String, String>,
}

/// The values `newsletter.posts_format` takes.
pub const POSTS_FORMATS: &[&str] = &["auto", "digestif", "zola", "hugo", "jekyll"];

/// The validated configuration; every path is absolute or relative to the working folder.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub name: String,
    pub base_url: Url,
    pub language: String,
    pub timezone: Tz,
    pub posts_dir: PathBuf,
    pub templates_dir: PathBuf,
    pub subscribers: PathBuf,
    pub state_dir: PathBuf,
    pub notes_dir: PathBuf,
    pub categories: Vec<String>,
    pub default_category: String,
    pub subject: String,
    pub archive_url: Option<Url>,
    /// `newsletter.posts_format`: one of [`POSTS_FORMATS`] but "auto" (`None`).
    pub posts_format: Option<String>,
    /// `newsletter.permalink`: a post's page relative to `base_url`.
    pub permalink: Option<String>,
    /// `newsletter.exclude`: globs under `posts_dir` that are not posts.
    pub exclude: globset::GlobSet,
    /// `[category_names]`.
    pub category_names: std::collections::HashMap<String, String>,
    /// `newsletter.feeds`: URLs, or files relative to the config.
    pub feeds: Vec<String>,
    pub feed_timeout_s: u64,
    pub sender: Sender,
    pub smtp: SmtpConfig,
    /// `[dkim]`: sign every message, when present.
    pub dkim: Option<DkimConfig>,
    /// `[web]`: the public address of `digestif serve` and its forms' limits.
    pub web: WebConfig,
    /// The settings that matter and were left to their defaults, each as
    /// `key = value (what it means)`, for `check` to say.
    pub defaults: Vec<String>,
}

impl Config {
    /// Read and validate the config file at `path`.
    pub fn load(path: &Path) -> Result<Config> {
        match Config::load_partial(path)? {
            (Some(config), problems) if problems.is_empty() => Ok(config),
            (_, problems) => Err(Error::Invalid(problems)),
        }
    }

    /// [`Config::parse_partial`] of the file at `path`, its paths resolved against its
    /// folder.
    pub fn load_partial(path: &Path) -> Result<(Option<Config>, Vec<Diagnostic>)> {
        crate::fsutil::ensure_regular(path, "the config")?;
        let source =
            std::fs::read_to_string(path).map_err(|e| Error::io("read config", path, e))?;
        let (mut config, problems) = Config::parse_partial(path, &source);
        if let Some(config) = &mut config {
            config.resolve_paths(path.parent().unwrap_or(Path::new("")));
        }
        Ok((config, problems))
    }

    /// Paths as written are relative to the config's folder `base`.
    fn resolve_paths(&mut self, base: &Path) {
        for dir in [
            &mut self.posts_dir,
            &mut self.templates_dir,
            &mut self.subscribers,
            &mut self.state_dir,
            &mut self.notes_dir,
            &mut self.smtp.file_dir,
        ] {
            *dir = base.join(&*dir);
        }
        let dkim_key = self.dkim.as_mut().map(|d| &mut d.key_file);
        for file in [&mut self.smtp.password_file, &mut self.smtp.ca_file]
            .into_iter()
            .flatten()
            .chain(dkim_key)
        {
            *file = base.join(&*file);
        }
    }

    /// Validate `source`; `path` only labels diagnostics. Paths stay as written. Each
    /// table checks its own values; every problem of every table is reported at once.
    pub fn parse(path: &Path, source: &str) -> Result<Config, Vec<Diagnostic>> {
        match Config::parse_partial(path, source) {
            (Some(config), problems) if problems.is_empty() => Ok(config),
            (_, problems) => Err(problems),
        }
    }

    /// [`Config::parse`], and a config even when some values are wrong (a stand-in takes
    /// their place: `UTC`, `https://example.invalid/`…), so that `check` can go on to the
    /// posts and the subscribers and report their problems in the same run. `None` only
    /// when the file is not TOML at all.
    pub fn parse_partial(path: &Path, source: &str) -> (Option<Config>, Vec<Diagnostic>) {
        let partial = toml_input::deserialize_rest::<RawConfig>(path, source, 0, source);
        let mut at = Located {
            path,
            source,
            problems: partial.problems,
        };
        let Some(raw) = partial.value else {
            return (None, at.problems);
        };
        let newsletter = raw.newsletter.check(&mut at);
        let sender = raw.sender.check(&mut at);
        raw.smtp.check(&mut at);
        let dkim = raw.dkim.clone().and_then(|d| d.check(&mut at));
        let web = raw.web.clone().check(&mut at);
        at.problems.sort_by_key(|d| d.line);
        let stand_in = |text: &str| Url::parse(text).expect("a valid stand-in URL");
        let from = sender.from.clone().unwrap_or_else(|| {
            Mailbox::new(
                None,
                "invalid@example.invalid".parse().expect("a valid address"),
            )
        });
        // What the file itself sets, to tell defaults from choices: parsed once.
        let written: toml::Table = source.parse().unwrap_or_default();
        let n = raw.newsletter;
        let config = Config {
            path: path.to_path_buf(),
            name: n.name.as_deref().unwrap_or("").trim().to_string(),
            base_url: newsletter
                .base_url
                .unwrap_or_else(|| stand_in("https://example.invalid/")),
            language: newsletter.language,
            timezone: newsletter.timezone.unwrap_or(Tz::UTC),
            posts_dir: n.posts_dir,
            templates_dir: n.templates_dir,
            subscribers: n.subscribers,
            state_dir: n.state_dir,
            notes_dir: n.notes_dir,
            categories: n.categories,
            default_category: n.default_category,
            subject: n.subject.into_inner(),
            archive_url: newsletter.archive_url,
            posts_format: newsletter.posts_format,
            permalink: n.permalink,
            exclude: newsletter.exclude,
            category_names: raw.category_names,
            feeds: n.feeds,
            feed_timeout_s: n.feed_timeout_s.max(1),
            sender: raw.sender.into_sender(sender, from, web.url.as_ref()),
            smtp: SmtpConfig {
                host_is_default: !has_key(&written, "smtp", "host"),
                ..raw.smtp
            },
            dkim,
            web,
            defaults: defaulted_settings(&written),
        };
        (Some(config), at.problems)
    }
}

/// The file being validated, and the problems found in it so far.
struct Located<'a> {
    path: &'a Path,
    source: &'a str,
    problems: Vec<Diagnostic>,
}

impl Located<'_> {
    /// A problem about the value at `span`, underlined in the report.
    fn diagnostic(&self, span: std::ops::Range<usize>, message: String) -> Diagnostic {
        Diagnostic::at_span(self.path, self.source, span, message)
    }

    fn span(&mut self, span: std::ops::Range<usize>, message: String) {
        let d = self.diagnostic(span, message);
        self.problems.push(d);
    }

    fn push(&mut self, diagnostic: Diagnostic) {
        self.problems.push(diagnostic);
    }

    /// A required key that is not there, at its table's header.
    fn missing(&mut self, table: &str, key: &str, what: &str) {
        let header = format!("[{table}]");
        let line = self
            .source
            .lines()
            .position(|l| l.trim() == header)
            .map(|i| i + 1);
        let message = format!("missing field `{key}` in [{table}]: {what}");
        self.problems.push(match line {
            Some(line) => Diagnostic::at(self.path, line, message),
            None => Diagnostic::new(self.path, message),
        });
    }

    /// A problem with no place (a value left to its default, a pair of keys).
    fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(Diagnostic::new(self.path, message));
    }
}

/// Is `table.key` written in the file?
fn has_key(file: &toml::Table, table: &str, key: &str) -> bool {
    file.get(table)
        .and_then(|t| t.as_table())
        .is_some_and(|t| t.contains_key(key))
}

/// The settings whose defaults change what readers get or where mail goes, when the file
/// does not set them.
fn defaulted_settings(file: &toml::Table) -> Vec<String> {
    const NOTABLE: &[(&str, &str, &str)] = &[
        (
            "newsletter",
            "timezone",
            "\"UTC\" (decides which week a post is in)",
        ),
        ("newsletter", "language", "\"en\""),
        ("newsletter", "posts_dir", "\"posts\""),
        ("newsletter", "subscribers", "\"subscribers.toml\""),
        ("newsletter", "state_dir", "\"state\""),
        ("smtp", "transport", "\"smtp\""),
        ("smtp", "host", "\"localhost\""),
        ("smtp", "tls", "\"starttls\""),
    ];
    NOTABLE
        .iter()
        .filter(|(table, key, _)| !has_key(file, table, key))
        .map(|(table, key, value)| format!("{table}.{key} = {value}"))
        .collect()
}

/// A site or archive URL names a folder: `https://example.org/lettre` means
/// `https://example.org/lettre/`, or every link joined onto it would lose `lettre`.
fn as_folder(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

#[cfg(test)]
mod tests;
