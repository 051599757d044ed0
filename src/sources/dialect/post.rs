//! A generator's front matter mapped onto a [`Post`].

use std::path::Path;

use chrono::{DateTime, FixedOffset};
use chrono_tz::Tz;

use super::permalink::permalink;
use super::{typo_warnings, Dialect, Meta, Read, Value};
use crate::error::Diagnostic;
use crate::sources::generator::Page;
use crate::sources::{
    dates, excerpt, excerpt_source, first_template_tag, is_language_tag, resolve_link,
    ParseContext, Post,
};
use crate::text::normalize_whitespace;

/// Map a generator's front matter onto a [`Post`]. `warnings` gets the typo-like keys and
/// the post whose URL cannot be known.
pub(crate) fn to_post(
    dialect: Dialect,
    meta: &Meta,
    path: &Path,
    body: &str,
    ctx: &ParseContext,
    warnings: &mut Vec<Diagnostic>,
) -> Result<Read, Vec<Diagnostic>> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(index) = section_index(dialect, &file_name) {
        return Ok(Read::NotAPost(index.into()));
    }
    if let Some(language) = ctx.generator.as_ref().and_then(|g| g.other_language(path)) {
        return Ok(Read::NotAPost(format!(
            "in the site's {language} edition; the newsletter is its default language's"
        )));
    }
    for (line, why) in &meta.forgiven {
        warnings.push(Diagnostic::at(path, *line, why.clone()));
    }
    let file = File { path, body, ctx };
    if dialect == Dialect::Hugo && meta.has_other_spellings(dialect.known_keys()) {
        let respelled = meta.with_known_spelling(dialect.known_keys());
        return map_post(dialect, &respelled, &file, warnings);
    }
    map_post(dialect, meta, &file, warnings)
}

/// The file being read, and what parsing knows of the newsletter.
struct File<'a> {
    path: &'a Path,
    body: &'a str,
    ctx: &'a ParseContext,
}

/// [`to_post`] for a file that may be a post.
fn map_post(
    dialect: Dialect,
    meta: &Meta,
    file: &File<'_>,
    warnings: &mut Vec<Diagnostic>,
) -> Result<Read, Vec<Diagnostic>> {
    let File { path, body, ctx } = *file;
    typo_warnings(dialect, meta, path, warnings);
    let mut problems = Vec::new();
    let at = |key: &str, message: String| Diagnostic::at(path, meta.line(key), message);
    let name = crate::sources::generator::page_name(path);
    let (name_date, name_slug) = date_prefix(&name);
    let own_date = match post_date(dialect, meta, name_date, ctx) {
        Dated::Yes(date) => Some(date),
        Dated::Invalid(problem) => {
            problems.push(problem.at(path, meta));
            None
        }
        Dated::No => {
            return Ok(Read::NotAPost(format!(
                "no date: neither a `date` key nor a YYYY-MM-DD- prefix in its name ({} reads it as a page)",
                dialect.name()
            )))
        }
    };
    let title = normalize_whitespace(&meta.text("title").unwrap_or_default());
    if title.is_empty() {
        problems.push(at("title", NO_TITLE.into()));
    }
    let categories = categories(dialect, meta);
    let link = curated_link(meta, path, ctx, &mut problems);
    let slug = slug::slugify(meta.text("slug").unwrap_or_else(|| name_slug.to_string()));
    let Some(own_date) = own_date else {
        return Err(problems);
    };
    let date = own_date.with_timezone(&ctx.timezone);
    let page = Page {
        path,
        meta,
        title: &title,
        date: own_date,
        categories: &categories,
    };
    let permalink = permalink(dialect, &page, &slug, ctx);
    if link.is_none() && permalink.is_none() {
        warnings.push(Diagnostic::at(path, 1, "the post's own URL cannot be known: set `permalink` in digestif.toml's [newsletter] (e.g. \"{year}/{month}/{slug}/\"), or give the post a `link`"));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let summary = summary(dialect, meta);
    warn_of_template_tags(summary.as_deref(), body, path, meta, warnings);
    Ok(Read::Post(Box::new(Post {
        path: path.to_path_buf(),
        title,
        date,
        category: ctx.category_of(&categories),
        tags: tags(dialect, meta),
        source: extra_text(meta, "source")
            .map(|s| normalize_whitespace(&s))
            .filter(|s| !s.is_empty()),
        link,
        permalink,
        excerpt: excerpt(summary.as_deref(), body),
        draft: is_draft(dialect, meta),
        expires: expiry(dialect, meta, ctx),
        language: meta
            .text("lang")
            .or_else(|| meta.text("language"))
            .filter(|l| is_language_tag(l)),
    })))
}

/// Our `link` key (the curated article), resolved against the blog's address.
fn curated_link(
    meta: &Meta,
    path: &Path,
    ctx: &ParseContext,
    problems: &mut Vec<Diagnostic>,
) -> Option<url::Url> {
    let link = extra_text(meta, "link")?;
    resolve_link(&link, &ctx.base_url)
        .map_err(|why| {
            problems.push(Diagnostic::at(
                path,
                meta.line("link"),
                format!("field `link`: {why}"),
            ));
        })
        .ok()
}

const NO_TITLE: &str = "missing or empty `title`: a post in a digest needs one";

/// A generator's section or list page, which is never a post.
fn section_index(dialect: Dialect, file_name: &str) -> Option<&'static str> {
    match dialect {
        Dialect::Zola if file_name.starts_with("_index.") => {
            Some("a Zola section index (_index.md)")
        }
        Dialect::Hugo if file_name.starts_with("_index.") => Some("a Hugo list page (_index.md)"),
        _ => None,
    }
}

/// What a post's date turned out to be.
enum Dated {
    /// As written: its own offset kept for the URL's date tokens.
    Yes(DateTime<FixedOffset>),
    /// The date key holds something that is not a date.
    Invalid(BadDate),
    /// No date anywhere: the generator reads the file as a page.
    No,
}

/// A date key whose value cannot be read.
struct BadDate {
    key: &'static str,
    why: String,
}

impl BadDate {
    fn at(self, path: &Path, meta: &Meta) -> Diagnostic {
        let key = self.key;
        Diagnostic::at(path, meta.line(key), format!("field `{key}`: {}", self.why))
    }
}

/// The date key the generator reads (Hugo: `publishDate` first), else the date in the
/// file's name or in its URL key.
fn post_date(dialect: Dialect, meta: &Meta, name_date: Option<&str>, ctx: &ParseContext) -> Dated {
    let key = match dialect {
        Dialect::Hugo if meta.get("publishDate").is_some() => "publishDate",
        _ => "date",
    };
    if let Some(text) = meta.text(key) {
        return match dates::parse_own_offset(&text, ctx.timezone) {
            Ok(date) => Dated::Yes(date),
            Err(why) => Dated::Invalid(BadDate { key, why }),
        };
    }
    name_date
        .map(str::to_string)
        .or_else(|| date_in_url_path(meta))
        .and_then(|d| dates::parse_own_offset(&d, ctx.timezone).ok())
        .map_or(Dated::No, Dated::Yes)
}

/// Drafts, Jekyll's `published: false`, and Hugo's `build: {list: never, render: never}`
/// (no page is written).
fn is_draft(dialect: Dialect, meta: &Meta) -> bool {
    if meta.bool("draft").unwrap_or(false) {
        return true;
    }
    if dialect == Dialect::Jekyll && meta.bool("published") == Some(false) {
        return true;
    }
    // Zola writes no page for `render = false`.
    if dialect == Dialect::Zola && meta.bool("render") == Some(false) {
        return true;
    }
    let build = meta.get("build").or_else(|| meta.get("_build"));
    let never = |key: &str| {
        build.and_then(|b| b.get(key)).is_some_and(|v| {
            matches!(v, Value::Text(t) if t == "never") || matches!(v, Value::Bool(false))
        })
    };
    // A headless bundle has no page of its own.
    let headless = meta.bool("headless") == Some(true);
    dialect == Dialect::Hugo && (never("render") || never("list") || headless)
}

/// Hugo's `expiryDate`: the page is removed once it has passed.
fn expiry(dialect: Dialect, meta: &Meta, ctx: &ParseContext) -> Option<DateTime<Tz>> {
    meta.text("expiryDate")
        .filter(|_| dialect == Dialect::Hugo)
        .and_then(|expiry| dates::parse_flexible(&expiry, ctx.timezone).ok())
}

/// The post's categories, where its generator keeps them.
fn categories(dialect: Dialect, meta: &Meta) -> Vec<String> {
    match dialect {
        Dialect::Zola => meta
            .get("taxonomies")
            .and_then(|t| t.get("categories"))
            .map(|v| v.words(false))
            .unwrap_or_default(),
        Dialect::Hugo => meta
            .get("categories")
            .map(|v| v.words(false))
            .unwrap_or_default(),
        Dialect::Jekyll => {
            let mut all = meta
                .get("categories")
                .map(|v| v.words(true))
                .unwrap_or_default();
            all.extend(
                meta.get("category")
                    .map(|v| v.words(false))
                    .unwrap_or_default(),
            );
            all
        }
        Dialect::Digestif => Vec::new(),
    }
}

/// The post's tags, where its generator keeps them.
fn tags(dialect: Dialect, meta: &Meta) -> Vec<String> {
    match dialect {
        Dialect::Zola => meta
            .get("taxonomies")
            .and_then(|t| t.get("tags"))
            .map(|v| v.words(false))
            .unwrap_or_default(),
        Dialect::Jekyll => meta.get("tags").map(|v| v.words(true)).unwrap_or_default(),
        _ => meta.get("tags").map(|v| v.words(false)).unwrap_or_default(),
    }
}

/// The summary key the generator reads.
fn summary(dialect: Dialect, meta: &Meta) -> Option<String> {
    match dialect {
        Dialect::Zola => meta.text("description"),
        Dialect::Hugo => meta.text("summary").or_else(|| meta.text("description")),
        Dialect::Jekyll => meta.text("excerpt").or_else(|| meta.text("description")),
        Dialect::Digestif => None,
    }
}

/// A key of ours (`link`, `source`) at the top, or under Zola's `[extra]`.
fn extra_text(meta: &Meta, key: &str) -> Option<String> {
    meta.text(key).or_else(|| {
        meta.get("extra")
            .and_then(|e| e.get(key))
            .and_then(Value::text)
            .map(str::to_string)
    })
}

/// Say how many shortcodes or template tags the excerpt loses.
fn warn_of_template_tags(
    summary: Option<&str>,
    body: &str,
    path: &Path,
    meta: &Meta,
    warnings: &mut Vec<Diagnostic>,
) {
    let (raw, line) = match summary {
        Some(summary) => {
            let key = ["summary", "excerpt", "description"]
                .into_iter()
                .find(|k| meta.get(k).is_some());
            (summary, key.map_or(1, |k| meta.line(k)))
        }
        None => (excerpt_source(body), meta.body_line),
    };
    if let Some(at) = first_template_tag(raw) {
        let line = line + raw[..at].matches('\n').count();
        warnings.push(Diagnostic::at(path, line, SHORTCODES_REMOVED.to_string()));
    }
}

/// One wording, so that `check` can count the posts it applies to.
pub(crate) const SHORTCODES_REMOVED: &str =
    "shortcodes or template tags are removed from the excerpt (the email cannot run them)";

/// A date written in the post's URL, `path = "2025/12/19/slug"` (blogs that keep the date
/// only there): "2025-12-19".
fn date_in_url_path(meta: &Meta) -> Option<String> {
    let url = ["path", "url", "permalink"]
        .iter()
        .find_map(|key| meta.text(key))?;
    let parts: Vec<&str> = url.split('/').filter(|p| !p.is_empty()).collect();
    parts.windows(3).find_map(|w| {
        let digits = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_digit());
        (digits(w[0], 4) && digits(w[1], 2) && digits(w[2], 2))
            .then(|| format!("{}-{}-{}", w[0], w[1], w[2]))
    })
}

/// `2024-05-01-slug` or `2024-05-01_slug` → (Some("2024-05-01"), "slug"), as Zola and
/// Jekyll read names; anything else → (None, the name).
pub(crate) fn date_prefix(name: &str) -> (Option<&str>, &str) {
    let bytes = name.as_bytes();
    let is_date = bytes.len() >= 10
        && bytes[..10].iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !is_date {
        return (None, name);
    }
    match bytes.get(10) {
        None => (Some(&name[..10]), name),
        Some(b'-' | b'_') => (Some(&name[..10]), &name[11..]),
        Some(_) => (None, name),
    }
}
