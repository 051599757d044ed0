//! Stage 2: posts. A post is a Markdown file with front matter: digestif's own strict TOML
//! (`+++`), or a Zola, Hugo or Jekyll file read as it is ([`dialect`]).
//!
//! [`Post::parse`] turns one file of our own format into a [`Post`] or every problem found
//! in it; [`read`] does it for any dialect; [`load`] walks `posts_dir` and gathers posts,
//! problems, warnings and the files that are not posts. Nothing here renders HTML: the
//! excerpt stays Markdown (or the HTML a generator's summary holds) until the render stage.

mod cleanup;
mod dates;
pub mod dialect;
mod excerpt;
pub mod feeds;
mod folder;
mod front_matter;
pub mod generator;
mod html;
mod ours;

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::DateTime;
use chrono_tz::Tz;
use url::Url;

pub use dates::resolve_date;
pub use dialect::Dialect;
pub use excerpt::{
    excerpt, excerpt_source, first_template_tag, strip_template_tags, template_tag_count,
};
pub use folder::{load, read, unread_documents, Loaded, Problem, POST_EXTENSIONS};
pub use front_matter::{split_any, split_front_matter, Split};

/// What parsing needs to know about the newsletter.
#[derive(Debug, Clone)]
pub struct ParseContext {
    pub timezone: Tz,
    pub default_category: String,
    pub base_url: Url,
    /// `newsletter.posts_format`, when the config names one; else detected per site/file.
    pub format: Option<Dialect>,
    /// The generator whose config files sit beside or above `posts_dir`.
    pub site: Option<Dialect>,
    /// That generator's settings, when they could be read: its URL rules.
    pub generator: Option<std::sync::Arc<generator::SiteConfig>>,
    /// Why the generator's settings could not be read, said as a warning by [`load`].
    pub site_problem: Option<crate::error::Diagnostic>,
    /// `newsletter.permalink`: `{year}/{month}/{day}/{slug}/` relative to `base_url`.
    pub permalink: Option<String>,
    /// `[category_names]`: a generator's category → the digest's.
    pub category_map: HashMap<String, String>,
    /// Where sections start: the nearest `content` folder above the posts, else their
    /// folder's parent.
    pub content_root: PathBuf,
    /// `newsletter.exclude`: globs relative to `posts_dir`.
    pub exclude: globset::GlobSet,
}

impl ParseContext {
    /// The digest's section for a post with these categories (a generator's or a feed's):
    /// the first one, renamed by `[category_names]`, else the default category.
    pub fn category_of(&self, categories: &[String]) -> String {
        categories
            .first()
            .map(|c| self.category_map.get(c).unwrap_or(c).clone())
            .unwrap_or_else(|| self.default_category.clone())
    }

    /// A context with the defaults, for tests and tools.
    pub fn new(timezone: Tz, default_category: &str, base_url: Url) -> ParseContext {
        ParseContext {
            timezone,
            default_category: default_category.to_string(),
            base_url,
            format: None,
            site: None,
            generator: None,
            site_problem: None,
            permalink: None,
            category_map: HashMap::new(),
            content_root: PathBuf::new(),
            exclude: globset::GlobSet::empty(),
        }
    }
}

/// A plausible BCP 47 tag ("en", "fr-CA", "zh-Hant"): it goes into a `lang` attribute.
pub(crate) fn is_language_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 35
        && tag.split('-').all(|part| {
            !part.is_empty() && part.len() <= 8 && part.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// One post, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Post {
    pub path: PathBuf,
    pub title: String,
    /// The publication instant, in the newsletter's time zone.
    pub date: DateTime<Tz>,
    pub category: String,
    pub tags: Vec<String>,
    pub source: Option<String>,
    /// The curated article this post is about ("read more on <source>").
    pub link: Option<Url>,
    /// The post's own page on the blog, when it can be known.
    pub permalink: Option<Url>,
    /// Markdown shown in the digest: the summary, or the body before `<!-- more -->`, or the
    /// body's first paragraph.
    pub excerpt: String,
    pub draft: bool,
    /// When the generator stops publishing it (Hugo's `expiryDate`): an expired post's
    /// page is gone, so it is not mailed.
    pub expires: Option<DateTime<Tz>>,
    /// The post's language when it says so (`language`, or a generator's `lang`): set on
    /// the post in the digest when it differs from the newsletter's.
    pub language: Option<String>,
}

impl Post {
    /// Where the post's title links: the curated article, else the post's own page.
    pub fn url(&self) -> Option<&Url> {
        self.link.as_ref().or(self.permalink.as_ref())
    }

    /// Published posts are neither drafts nor scheduled after `now`, nor expired.
    pub fn is_published(&self, now: DateTime<chrono::Utc>) -> bool {
        !self.draft && self.date.with_timezone(&chrono::Utc) <= now && !self.is_expired(now)
    }

    /// Past its expiry date at `now`: the generator no longer publishes it.
    pub fn is_expired(&self, now: DateTime<chrono::Utc>) -> bool {
        self.expires
            .is_some_and(|e| e.with_timezone(&chrono::Utc) <= now)
    }
}

/// Absolute http(s) URL for `link`; relative links are resolved against `base`.
pub fn resolve_link(link: &str, base: &Url) -> Result<Url, String> {
    let url = base
        .join(link.trim())
        .map_err(|e| format!("{link:?} is not a valid URL ({e})"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!("expected an http(s) URL, found a {other}: URL")),
    }
}

#[cfg(test)]
mod tests;
