//! The `[newsletter]` table: what the newsletter is, where its files are, and when its
//! weeks start.

use std::path::PathBuf;

use chrono_tz::Tz;
use serde::Deserialize;
use toml::Spanned;
use url::Url;

use super::{as_folder, Located, POSTS_FORMATS, SUBJECT_PLACEHOLDERS};
use crate::toml_input;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNewsletter {
    pub(super) name: Option<String>,
    pub(super) base_url: Option<Spanned<String>>,
    #[serde(default = "default_language")]
    pub(super) language: Spanned<String>,
    #[serde(default = "default_timezone")]
    pub(super) timezone: Spanned<String>,
    #[serde(default = "default_posts_dir")]
    pub(super) posts_dir: PathBuf,
    #[serde(default = "default_templates_dir")]
    pub(super) templates_dir: PathBuf,
    #[serde(default = "default_subscribers")]
    pub(super) subscribers: PathBuf,
    #[serde(default = "default_state_dir")]
    pub(super) state_dir: PathBuf,
    #[serde(default = "default_notes_dir")]
    pub(super) notes_dir: PathBuf,
    #[serde(default)]
    pub(super) categories: Vec<String>,
    #[serde(default = "default_category")]
    pub(super) default_category: String,
    #[serde(default = "default_subject")]
    pub(super) subject: Spanned<String>,
    pub(super) archive_url: Option<Spanned<String>>,
    pub(super) posts_format: Option<Spanned<String>>,
    pub(super) permalink: Option<String>,
    #[serde(default)]
    pub(super) feeds: Vec<String>,
    #[serde(default = "default_feed_timeout")]
    pub(super) feed_timeout_s: u64,
    #[serde(default)]
    pub(super) exclude: Vec<Spanned<String>>,
}

fn default_language() -> Spanned<String> {
    Spanned::new(0..0, "en".into())
}
fn default_timezone() -> Spanned<String> {
    Spanned::new(0..0, "UTC".into())
}
fn default_posts_dir() -> PathBuf {
    "posts".into()
}
fn default_templates_dir() -> PathBuf {
    "templates".into()
}
fn default_subscribers() -> PathBuf {
    "subscribers.toml".into()
}
fn default_state_dir() -> PathBuf {
    "state".into()
}
fn default_notes_dir() -> PathBuf {
    "notes".into()
}
fn default_category() -> String {
    "General".into()
}
fn default_subject() -> Spanned<String> {
    Spanned::new(0..0, "{name} — {lead_and_more}".into())
}
fn default_feed_timeout() -> u64 {
    20
}

/// The values of `[newsletter]` that needed checking; `None` where a problem was reported.
pub(super) struct Checked {
    pub base_url: Option<Url>,
    pub timezone: Option<Tz>,
    pub language: String,
    pub archive_url: Option<Url>,
    pub posts_format: Option<String>,
    pub exclude: globset::GlobSet,
}

impl RawNewsletter {
    /// Check every value, reporting each problem at its place.
    pub(super) fn check(&self, at: &mut Located<'_>) -> Checked {
        match &self.name {
            None => at.missing(
                "newsletter",
                "name",
                "the newsletter's name, such as \"Veille\"",
            ),
            Some(name) if name.trim().is_empty() => {
                at.problem("newsletter.name: must not be empty");
            }
            Some(_) => {}
        }
        self.check_subject(at);
        Checked {
            base_url: self.base_url(at),
            timezone: self.timezone(at),
            language: self.language(at),
            archive_url: self.archive_url(at),
            posts_format: self.posts_format(at),
            exclude: self.exclude(at),
        }
    }

    fn timezone(&self, at: &mut Located<'_>) -> Option<Tz> {
        let written = self.timezone.get_ref();
        if let Ok(tz) = written.parse::<Tz>() {
            return Some(tz);
        }
        let close =
            toml_input::did_you_mean(written, chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()));
        let unknown = at.diagnostic(
            self.timezone.span(),
            format!(
                "newsletter.timezone: unknown time zone {written:?}; expected an IANA name such as \"Europe/Paris\""
            ),
        );
        at.push(match close {
            Some(name) => unknown.with_help(format!("did you mean \"{name}\"?")),
            None => unknown,
        });
        None
    }

    fn base_url(&self, at: &mut Located<'_>) -> Option<Url> {
        let Some(base_url) = &self.base_url else {
            at.missing(
                "newsletter",
                "base_url",
                "the blog's address, such as \"https://blog.example.org/\"",
            );
            return None;
        };
        match Url::parse(base_url.get_ref()) {
            Ok(url) if url.scheme() == "https" || url.scheme() == "http" => Some(as_folder(url)),
            Ok(_) | Err(_) => {
                at.span(
                    base_url.span(),
                    format!(
                        "newsletter.base_url: expected an absolute http(s) URL, found {:?}",
                        base_url.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn language(&self, at: &mut Located<'_>) -> String {
        let language = self.language.get_ref().trim().to_string();
        let code = |c: char| c.is_ascii_alphanumeric() || c == '-';
        if language.is_empty() || !language.chars().all(code) {
            at.span(
                self.language.span(),
                format!(
                    "newsletter.language: expected a language code such as \"fr\" or \"en\", found {:?}",
                    self.language.get_ref()
                ),
            );
        }
        language
    }

    fn check_subject(&self, at: &mut Located<'_>) {
        let expected = SUBJECT_PLACEHOLDERS
            .iter()
            .map(|p| format!("{{{p}}}"))
            .collect::<Vec<_>>()
            .join(", ");
        for unknown in unknown_placeholders(self.subject.get_ref()) {
            at.span(
                self.subject.span(),
                format!(
                    "newsletter.subject: unknown placeholder {{{unknown}}}; expected one of {expected}"
                ),
            );
        }
    }

    fn archive_url(&self, at: &mut Located<'_>) -> Option<Url> {
        let written = self.archive_url.as_ref()?;
        let parsed = Url::parse(written.get_ref()).ok().map(as_folder);
        if parsed.is_none() {
            at.span(
                written.span(),
                format!(
                    "newsletter.archive_url: expected an absolute URL, found {:?}",
                    written.get_ref()
                ),
            );
        }
        parsed
    }

    fn posts_format(&self, at: &mut Located<'_>) -> Option<String> {
        let written = self.posts_format.as_ref()?;
        let value = written.get_ref().trim().to_lowercase();
        if !POSTS_FORMATS.contains(&value.as_str()) {
            at.span(
                written.span(),
                format!(
                    "newsletter.posts_format: expected one of {}, found {:?}",
                    POSTS_FORMATS.join(", "),
                    written.get_ref()
                ),
            );
        }
        (value != "auto").then_some(value)
    }

    fn exclude(&self, at: &mut Located<'_>) -> globset::GlobSet {
        let mut globs = globset::GlobSetBuilder::new();
        for pattern in &self.exclude {
            match globset::Glob::new(pattern.get_ref()) {
                Ok(glob) => {
                    globs.add(glob);
                }
                Err(e) => at.span(
                    pattern.span(),
                    format!(
                        "newsletter.exclude: {:?} is not a glob pattern ({e})",
                        pattern.get_ref()
                    ),
                ),
            }
        }
        globs.build().unwrap_or_else(|_| globset::GlobSet::empty())
    }
}

/// Placeholders in `template` (`{like_this}`) that are not in [`SUBJECT_PLACEHOLDERS`].
fn unknown_placeholders(template: &str) -> Vec<&str> {
    crate::text::placeholders(template)
        .into_iter()
        .filter(|name| !SUBJECT_PLACEHOLDERS.contains(name))
        .collect()
}
