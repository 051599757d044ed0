//! Stage 2: posts. A post is a Markdown file with front matter: digestif's own strict TOML
//! (`+++`), or a Zola, Hugo or Jekyll file read as it is ([`dialect`]).
//!
//! [`Post::parse`] turns one file of our own format into a [`Post`] or every problem found
//! in it; [`read`] does it for any dialect; [`load`] walks `posts_dir` and gathers posts,
//! problems, warnings and the files that are not posts. Nothing here renders HTML: the
//! excerpt stays Markdown (or the HTML a generator's summary holds) until the render stage.

mod dates;
pub mod dialect;

use std::collections::HashMap;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;
use pulldown_cmark::{Event, Parser, Tag, TagEnd};
use serde::Deserialize;
use url::Url;

use crate::error::{line_col, Diagnostic, Error, Result};
use crate::text::normalize_whitespace;
use crate::toml_input;
pub use dialect::Dialect;
use dialect::Meta;

/// The front-matter keys, as the user writes them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    /// Required, non-empty.
    title: Option<String>,
    /// Required: offset date-time, local date-time or local date (in the newsletter's zone).
    date: Option<toml::Spanned<toml::value::Datetime>>,
    /// Else the config's `default_category`.
    category: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    /// Name of the original article's site.
    source: Option<String>,
    /// URL of the original article.
    link: Option<toml::Spanned<String>>,
    /// Replaces the excerpt taken from the body.
    summary: Option<String>,
    #[serde(default)]
    draft: bool,
    /// BCP 47 tag such as "en" or "fr-CA", when it is not the newsletter's language.
    language: Option<String>,
}

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
    /// The post's language when it says so (`language`, or a generator's `lang`): set on
    /// the post in the digest when it differs from the newsletter's.
    pub language: Option<String>,
}

impl Post {
    /// Parse the text of the file at `path` (used only to label problems).
    pub fn parse(path: &Path, source: &str, ctx: &ParseContext) -> Result<Post, Vec<Diagnostic>> {
        let split = split_front_matter(path, source).map_err(|d| vec![d])?;
        let partial = toml_input::deserialize_rest::<FrontMatter>(
            path,
            source,
            split.offset,
            split.front_matter,
        );
        let mut problems = partial.problems;
        let Some(fm) = partial.value else {
            return Err(problems);
        };
        let left_out = |key: &str| partial.left_out.iter().any(|k| k == key);
        let fm_line =
            |offset: usize| Diagnostic::at_offset(path, source, split.offset + offset, "");
        let at = |offset: usize, message: String| Diagnostic {
            message,
            ..fm_line(offset)
        };

        let title = normalize_whitespace(fm.title.as_deref().unwrap_or(""));
        if fm.title.is_none() && !left_out("title") {
            problems.push(Diagnostic::at(
                path,
                1,
                "missing field `title` in front matter",
            ));
        } else if title.is_empty() {
            problems.push(Diagnostic::at(path, 1, "field `title` must not be empty"));
        }
        let date = match &fm.date {
            None if left_out("date") => None,
            None => {
                problems.push(Diagnostic::at(
                    path,
                    1,
                    "missing field `date` in front matter (expected e.g. 2011-12-20T09:30:00+01:00)",
                ));
                None
            }
            Some(spanned) => match resolve_date(spanned.get_ref(), ctx.timezone) {
                Ok(date) => Some(date),
                Err(message) => {
                    problems.push(at(spanned.span().start, format!("field `date`: {message}")));
                    None
                }
            },
        };
        let link = fm.link.as_ref().and_then(|spanned| {
            match resolve_link(spanned.get_ref(), &ctx.base_url) {
                Ok(url) => Some(url),
                Err(message) => {
                    problems.push(at(spanned.span().start, format!("field `link`: {message}")));
                    None
                }
            }
        });
        let category = match fm.category.as_deref().map(normalize_whitespace) {
            Some(c) if c.is_empty() => {
                problems.push(Diagnostic::at(
                    path,
                    1,
                    "field `category` must not be empty",
                ));
                String::new()
            }
            Some(c) => c,
            None => ctx.default_category.clone(),
        };
        match (problems.is_empty(), date) {
            (true, Some(date)) => Ok(Post {
                path: path.to_path_buf(),
                title,
                date,
                category,
                tags: fm.tags,
                source: fm
                    .source
                    .map(|s| normalize_whitespace(&s))
                    .filter(|s| !s.is_empty()),
                permalink: own_permalink(path, date, ctx),
                link,
                excerpt: excerpt(fm.summary.as_deref(), split.body),
                draft: fm.draft,
                language: fm.language.filter(|l| is_language_tag(l)),
            }),
            _ => Err(problems),
        }
    }

    /// Where the post's title links: the curated article, else the post's own page.
    pub fn url(&self) -> Option<&Url> {
        self.link.as_ref().or(self.permalink.as_ref())
    }

    /// Published posts are neither drafts nor scheduled after `now`.
    pub fn is_published(&self, now: DateTime<chrono::Utc>) -> bool {
        !self.draft && self.date.with_timezone(&chrono::Utc) <= now
    }
}

/// The parts of a post file.
#[derive(Debug, PartialEq)]
pub struct Split<'a> {
    pub front_matter: &'a str,
    /// Byte offset of `front_matter` inside the file text.
    pub offset: usize,
    pub body: &'a str,
    /// `---` (YAML) rather than `+++` (TOML).
    pub yaml: bool,
}

/// Split `+++`-delimited front matter from the body (our own format only).
pub fn split_front_matter<'a>(path: &Path, source: &'a str) -> Result<Split<'a>, Diagnostic> {
    let split = split_any(path, source)?;
    if split.yaml {
        return Err(Diagnostic::at(
            path,
            1,
            "YAML front matter (---) is not digestif's own format, which expects TOML between two +++ lines",
        ));
    }
    Ok(split)
}

/// Split `+++` (TOML) or `---` (YAML) front matter from the body.
pub fn split_any<'a>(path: &Path, source: &'a str) -> Result<Split<'a>, Diagnostic> {
    let bom = if source.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    let text = &source[bom..];
    // Zola and Hugo accept blank lines before the opening fence.
    let blank = text.len() - text.trim_start_matches(['\n', '\r', ' ', '\t']).len();
    let blank = text[..blank].rfind('\n').map_or(0, |i| i + 1);
    let (bom, text) = (bom + blank, &text[blank..]);
    let mut lines = LineOffsets::new(text);
    let Some((first, after_first)) = lines.next() else {
        return Err(Diagnostic::at(
            path,
            1,
            "empty file: expected TOML front matter between +++ lines",
        ));
    };
    let fence @ ("+++" | "---") = first.trim_end() else {
        return Err(Diagnostic::at(
            path,
            1,
            "expected front matter: the file must start with a line +++ (TOML) or --- (YAML)",
        ));
    };
    for (line, end) in lines.by_ref() {
        if line.trim_end() == fence || (fence == "---" && line.trim_end() == "...") {
            let start_of_line = end - line.len() - newline_len(text, end);
            return Ok(Split {
                front_matter: &text[after_first..start_of_line],
                offset: bom + after_first,
                body: &text[end..],
                yaml: fence == "---",
            });
        }
    }
    Err(Diagnostic::at(
        path,
        1,
        format!("front matter opened with {fence} on line 1 is never closed (expected a closing {fence} line)"),
    ))
}

fn newline_len(text: &str, end: usize) -> usize {
    let before = &text.as_bytes()[..end];
    if before.ends_with(b"\r\n") {
        2
    } else if before.ends_with(b"\n") {
        1
    } else {
        0
    }
}

/// Lines without their terminator, with the byte offset just past the terminator.
struct LineOffsets<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> LineOffsets<'a> {
    fn new(text: &'a str) -> Self {
        LineOffsets { text, pos: 0 }
    }
}

impl<'a> Iterator for LineOffsets<'a> {
    type Item = (&'a str, usize);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.text.len() {
            return None;
        }
        let rest = &self.text[self.pos..];
        let (line, advance) = match rest.find('\n') {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += advance;
        Some((line.strip_suffix('\r').unwrap_or(line), self.pos))
    }
}

/// Resolve a TOML date or date-time to an instant in `tz`.
///
/// Local date-times and bare dates are wall-clock times in `tz`. A time that falls in a DST
/// gap is moved forward by the gap (as clocks do); an ambiguous one takes the earlier instant.
pub fn resolve_date(value: &toml::value::Datetime, tz: Tz) -> Result<DateTime<Tz>, String> {
    let Some(d) = value.date else {
        return Err(format!(
            "expected a date or date-time, found the bare time {value}"
        ));
    };
    let date = NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
        .ok_or_else(|| format!("{value} is not a valid date"))?;
    let time = match value.time {
        Some(t) => NaiveTime::from_hms_nano_opt(
            u32::from(t.hour),
            u32::from(t.minute),
            u32::from(t.second).min(59),
            t.nanosecond,
        )
        .ok_or_else(|| format!("{value} is not a valid time"))?,
        None => NaiveTime::MIN,
    };
    let naive = NaiveDateTime::new(date, time);
    match value.offset {
        Some(offset) => {
            let seconds = match offset {
                toml::value::Offset::Z => 0,
                toml::value::Offset::Custom { minutes } => i32::from(minutes) * 60,
            };
            let fixed = FixedOffset::east_opt(seconds)
                .ok_or_else(|| format!("{value} has an out-of-range offset"))?;
            let instant = fixed
                .from_local_datetime(&naive)
                .single()
                .ok_or_else(|| format!("{value} is not a valid date-time"))?;
            Ok(instant.with_timezone(&tz))
        }
        None => local_in_zone(naive, tz),
    }
}

pub(crate) fn local_in_zone(naive: NaiveDateTime, tz: Tz) -> Result<DateTime<Tz>, String> {
    if let Some(dt) = tz.from_local_datetime(&naive).earliest() {
        return Ok(dt);
    }
    // In a DST gap: read the wall-clock time with the offset in force before the gap, as
    // a clock that was not moved forward would, so 02:30 in a one-hour gap is 03:30.
    // Gaps last at most a few hours; the offset three hours earlier is the one before it.
    let before = tz
        .from_local_datetime(&(naive - Duration::hours(3)))
        .earliest()
        .ok_or_else(|| format!("{naive} does not exist in {tz}"))?;
    let offset = chrono::Offset::fix(before.offset());
    let utc = naive - Duration::seconds(i64::from(offset.local_minus_utc()));
    Ok(tz.from_utc_datetime(&utc))
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

/// The excerpt rule: summary, else the body before `<!-- more -->`, else its first paragraph.
pub fn excerpt(summary: Option<&str>, body: &str) -> String {
    let body = as_markdown(&strip_template_tags(body));
    let chosen = match summary.map(str::trim).filter(|s| !s.is_empty()) {
        Some(summary) => as_markdown(&strip_template_tags(summary)),
        None => before_more(&body)
            .map(str::to_string)
            .unwrap_or_else(|| first_paragraph(&body))
            .trim()
            .to_string(),
    };
    with_reference_definitions(chosen, &body)
}

/// The body before a `<!-- more -->` line (`<!--more-->` as Hugo writes it), if any.
fn before_more(body: &str) -> Option<&str> {
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        let compact: String = line.split_whitespace().collect();
        if compact.eq_ignore_ascii_case("<!--more-->") {
            return Some(&body[..offset]);
        }
        offset += line.len();
    }
    None
}

/// HTML as WordPress feeds and many generators' summaries hold it (`<p>…</p>`), turned
/// into Markdown so both parts of the email show it; Markdown (with a little inline HTML)
/// is left as it is.
fn as_markdown(text: &str) -> String {
    let trimmed = text.trim();
    let html = trimmed.starts_with('<')
        && [
            "</p>",
            "<br",
            "</div>",
            "</li>",
            "</a>",
            "</em>",
            "</strong>",
        ]
        .iter()
        .any(|tag| trimmed.contains(tag));
    if !html {
        return trimmed.to_string();
    }
    htmd::convert(trimmed).map_or_else(|_| trimmed.to_string(), |md| md.trim().to_string())
}

/// Hugo shortcodes (`{{< … >}}`, `{{% … %}}`), Zola shortcodes and Jekyll Liquid
/// (`{{ … }}`, `{% … %}`, `{# … #}`) removed; the text between a pair stays.
pub fn strip_template_tags(text: &str) -> String {
    strip_and_count(text).0
}

/// How many template tags [`strip_template_tags`] removes from `text`.
pub fn template_tag_count(text: &str) -> usize {
    strip_and_count(text).1
}

fn strip_and_count(text: &str) -> (String, usize) {
    let mut removed = 0;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(['{']) {
        let after = &rest[start..];
        let close = match after.get(..2) {
            Some("{{") if after[2..].starts_with('<') => Some(">}}"),
            Some("{{") if after[2..].starts_with('%') => Some("%}}"),
            Some("{{") => Some("}}"),
            Some("{%") => Some("%}"),
            Some("{#") => Some("#}"),
            _ => None,
        };
        match close.and_then(|c| after.find(c).map(|end| end + c.len())) {
            Some(end) => {
                out.push_str(&rest[..start]);
                rest = &after[end..];
                removed += 1;
            }
            None => {
                out.push_str(&rest[..=start]);
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    (out, removed)
}

/// Keep the body's reference definitions (`[ref]: https://…`) under the excerpt, so
/// `[text][ref]` links resolve instead of printing raw.
fn with_reference_definitions(excerpt: String, body: &str) -> String {
    if !excerpt.contains(']') {
        return excerpt;
    }
    let definitions: Vec<&str> = body
        .lines()
        .filter(|line| {
            let t = line.trim_start();
            line.len() - t.len() <= 3
                && t.starts_with('[')
                && !t.starts_with("[^")
                && t.find("]:").is_some_and(|i| !t[1..i].contains(']'))
        })
        .collect();
    if definitions.is_empty() {
        excerpt
    } else {
        format!("{excerpt}\n\n{}", definitions.join("\n"))
    }
}

/// The body's opening: its first paragraph that says something, skipping the debris
/// pasted from a page before it (a lone word, an image or its file name, a byline or a
/// date line). A paragraph ending with ":" announces the next one, which joins it.
fn first_paragraph(body: &str) -> String {
    let paragraphs = paragraphs(body);
    let Some(start) = paragraphs.iter().position(|(_, plain)| !is_debris(plain)) else {
        return paragraphs
            .first()
            .map(|(md, _)| md.to_string())
            .unwrap_or_default();
    };
    let mut chosen = vec![paragraphs[start].0];
    let mut last = &paragraphs[start].1;
    for (md, plain) in &paragraphs[start + 1..] {
        if !last.trim_end().ends_with(':') {
            break;
        }
        chosen.push(md);
        last = plain;
    }
    chosen.join("\n\n")
}

/// Each paragraph of `body`: its Markdown and its plain text (image alt text left out).
fn paragraphs(body: &str) -> Vec<(&str, String)> {
    let mut out = Vec::new();
    let mut current: Option<(std::ops::Range<usize>, String)> = None;
    let mut in_image = 0;
    for (event, range) in Parser::new(body).into_offset_iter() {
        match event {
            Event::Start(Tag::Paragraph) => current = Some((range, String::new())),
            Event::End(TagEnd::Paragraph) => {
                if let Some((range, plain)) = current.take() {
                    out.push((body[range].trim(), normalize_whitespace(&plain)));
                }
            }
            Event::Start(Tag::Image { .. }) => in_image += 1,
            Event::End(TagEnd::Image) => in_image -= 1,
            Event::Text(t) | Event::Code(t) if in_image == 0 => {
                if let Some((_, plain)) = current.as_mut() {
                    plain.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, plain)) = current.as_mut() {
                    plain.push(' ');
                }
            }
            _ => {}
        }
    }
    out
}

/// Not an excerpt: nothing but an image, a word or two, a file name, or a byline or
/// date line ("Par André G. – publié le 02.11.2011", "Posted on March 3, 2025").
fn is_debris(plain: &str) -> bool {
    let words: Vec<&str> = plain.split_whitespace().collect();
    if words.len() <= 2 {
        return true;
    }
    let lower = plain.to_lowercase();
    let file_name = words.len() <= 4
        && words.iter().any(|w| {
            let w = w.to_lowercase();
            [
                ".jpg", ".jpeg", ".png", ".gif", ".webp", ".svg", ".pdf", ".mp4",
            ]
            .iter()
            .any(|ext| w.ends_with(ext))
        });
    let byline_start = [
        "par ",
        "by ",
        "publié le",
        "posted on",
        "posted by",
        "mis à jour",
        "updated on",
        "written by",
        "écrit par",
    ]
    .iter()
    .any(|p| lower.starts_with(p));
    let short = words.len() <= 14;
    let dated =
        lower.contains("publié le") || lower.contains("posted on") || has_numeric_date(plain);
    file_name || (short && (byline_start || dated))
}

/// 02.11.2011, 2/11/2011, 2011-11-02 or 14:48 somewhere in `text`.
fn has_numeric_date(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || matches!(c, ',' | '(' | ')' | '[' | ']'))
        .any(|w| {
            let digits =
                |p: &&str| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit());
            let date: Vec<&str> = w.split(['.', '/', '-']).collect();
            let time: Vec<&str> = w.split(':').collect();
            (date.len() == 3 && date.iter().all(digits))
                || (time.len() == 2 && time.iter().all(|p| digits(p) && p.len() <= 2))
        })
}

/// What [`load`] found under `posts_dir`.
#[derive(Debug, Default)]
pub struct Loaded {
    pub posts: Vec<Post>,
    /// Files that are posts but cannot be read as they are, with the date when it was
    /// readable (a problem outside the week being sent does not block it).
    pub problems: Vec<Problem>,
    /// Legal but probably unintended: a typo a generator ignores, a post without a URL.
    pub warnings: Vec<Diagnostic>,
    /// Files that are not posts (a section index, a page without a date), and why.
    pub skipped: Vec<(PathBuf, String)>,
}

/// A post file that cannot be used.
#[derive(Debug, Clone)]
pub struct Problem {
    pub diagnostic: Diagnostic,
    /// The post's date, when that much could be read.
    pub date: Option<DateTime<Tz>>,
}

impl Loaded {
    /// The problems' diagnostics, for `check` and errors.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        self.problems.iter().map(|p| p.diagnostic.clone()).collect()
    }
}

/// Read and parse every post file under `dir` (sorted by path for stable output), leaving
/// out what `ctx.exclude` matches.
pub fn load(dir: &Path, ctx: &ParseContext) -> Result<Loaded> {
    if !dir.is_dir() {
        return Err(Error::io(
            "read posts folder",
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder"),
        ));
    }
    let mut loaded = Loaded::default();
    let walker = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0
                || !(e.file_name().to_string_lossy().starts_with('.')
                    || e.path()
                        .strip_prefix(dir)
                        .is_ok_and(|rel| ctx.exclude.is_match(rel)))
        });
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let path = e.path().unwrap_or(dir).to_path_buf();
                loaded.problems.push(Problem {
                    diagnostic: Diagnostic::new(&path, format!("cannot read: {e}")),
                    date: None,
                });
                continue;
            }
        };
        let path = entry.path();
        if !entry.file_type().is_file() || !is_post_file(path) {
            continue;
        }
        let text = match read_text(path) {
            Ok(text) => text,
            Err(diagnostic) => {
                loaded.problems.push(Problem {
                    diagnostic,
                    date: None,
                });
                continue;
            }
        };
        match read(path, &text, ctx, &mut loaded.warnings) {
            Ok(dialect::Read::Post(post)) => loaded.posts.push(*post),
            Ok(dialect::Read::NotAPost(why)) => loaded.skipped.push((path.to_path_buf(), why)),
            Err(found) => {
                let date = readable_date(&text, ctx);
                loaded.problems.extend(
                    found
                        .into_iter()
                        .map(|diagnostic| Problem { diagnostic, date }),
                );
            }
        }
    }
    Ok(loaded)
}

/// Read one file of any dialect.
pub fn read(
    path: &Path,
    source: &str,
    ctx: &ParseContext,
    warnings: &mut Vec<Diagnostic>,
) -> Result<dialect::Read, Vec<Diagnostic>> {
    let generator = ctx.format.or(ctx.site).filter(|d| *d != Dialect::Digestif);
    let split = match split_any(path, source) {
        Ok(split) => split,
        // Zola, Hugo and Jekyll render a Markdown file without front matter as a plain page.
        Err(_) if generator.is_some() && !source.trim_start().starts_with(['+', '-']) => {
            return Ok(dialect::Read::NotAPost(
                "no front matter: a page, not a post".into(),
            ));
        }
        Err(d) => return Err(vec![d]),
    };
    let first_line = line_col(source, split.offset).0;
    let meta = if split.yaml {
        Meta::from_yaml(split.front_matter, first_line)
    } else {
        Meta::from_toml(split.front_matter, first_line)
    }
    .map_err(|(line, why)| vec![Diagnostic::at(path, line, format!("front matter: {why}"))])?;
    let dialect = match (ctx.format, split.yaml) {
        (Some(forced), _) => forced,
        (None, true) => match ctx.site {
            Some(site @ (Dialect::Hugo | Dialect::Jekyll)) => site,
            _ if path.components().any(|c| c.as_os_str() == "_posts") => Dialect::Jekyll,
            _ => Dialect::Hugo,
        },
        (None, false) => match ctx.site {
            // Our own posts kept inside a generator's site stay ours.
            Some(site @ (Dialect::Zola | Dialect::Hugo))
                if !dialect::looks_like_ours(&meta.keys()) =>
            {
                site
            }
            _ => dialect::toml_dialect_of(&meta.keys()),
        },
    };
    if dialect == Dialect::Digestif {
        return Post::parse(path, source, ctx).map(|post| dialect::Read::Post(Box::new(post)));
    }
    dialect::to_post(dialect, &meta, path, split.body, ctx, warnings)
}

/// The date of a file that failed to parse, if its front matter has a readable one: a
/// problem outside the week being sent need not block that week.
fn readable_date(source: &str, ctx: &ParseContext) -> Option<DateTime<Tz>> {
    let split = split_any(Path::new(""), source).ok()?;
    let meta = if split.yaml {
        Meta::from_yaml(split.front_matter, 1).ok()?
    } else {
        Meta::from_toml(split.front_matter, 1).ok()?
    };
    let text = meta.entries.iter().find_map(|(k, v)| match v {
        dialect::Value::Text(t) if k == "date" || k == "publishDate" => Some(t.clone()),
        _ => None,
    })?;
    dates::parse_flexible(&text, ctx.timezone).ok()
}

/// Our own format's page, from the config's `permalink` pattern.
fn own_permalink(path: &Path, date: DateTime<Tz>, ctx: &ParseContext) -> Option<Url> {
    let pattern = ctx.permalink.as_ref()?;
    let stem = path.file_stem()?.to_string_lossy();
    let slug = slug::slugify(
        stem.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '_'),
    );
    let section: Vec<String> = path
        .parent()
        .and_then(|p| p.strip_prefix(&ctx.content_root).ok())
        .map(|rel| {
            rel.iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let relative = dialect::fill_permalink(pattern, &slug, &section, &[], date);
    ctx.base_url.join(relative.trim_start_matches('/')).ok()
}

/// Extensions of the files read as posts.
pub const POST_EXTENSIONS: &[&str] = &["md", "markdown"];

/// Text documents a blog folder may hold that are not read as posts (images and other
/// assets are expected there and not mentioned).
const OTHER_DOCUMENTS: &[&str] = &[
    "txt", "html", "htm", "rst", "adoc", "asciidoc", "org", "mdx", "mdown", "mkd", "mkdn",
    "textile",
];

fn is_post_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| POST_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Documents under `dir` that look like writing but are not read as posts (`.txt`,
/// `.html`, `.rst`…), so `check` can say so instead of silently finding fewer posts.
pub fn unread_documents(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| OTHER_DOCUMENTS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect()
}

fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let bytes =
        std::fs::read(path).map_err(|e| Diagnostic::new(path, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let valid = std::str::from_utf8(valid).unwrap_or_default();
        Diagnostic::at_offset(
            path,
            valid,
            valid.len(),
            format!(
                "invalid UTF-8 at byte {}: posts must be UTF-8 text",
                valid.len()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ParseContext {
        ParseContext::new(
            chrono_tz::Europe::Paris,
            "Divers",
            Url::parse("https://veille.example.org/blog/").unwrap(),
        )
    }

    fn parse(src: &str) -> Result<Post, Vec<Diagnostic>> {
        Post::parse(Path::new("p.md"), src, &ctx())
    }

    #[test]
    fn can_parse_a_complete_post() {
        let post = parse(
            "+++\ntitle = \"Un titre\"\ndate = 2011-12-20T09:30:00+01:00\ncategory = \"Marketing\"\n\
             source = \"L'Atelier\"\nlink = \"/a\"\n+++\nPremier paragraphe.\n\nSecond.\n",
        )
        .unwrap();
        assert_eq!(post.title, "Un titre");
        assert_eq!(post.category, "Marketing");
        assert_eq!(post.link.unwrap().as_str(), "https://veille.example.org/a");
        assert_eq!(post.excerpt, "Premier paragraphe.");
        assert_eq!(post.date.to_rfc3339(), "2011-12-20T09:30:00+01:00");
    }

    #[test]
    fn every_problem_of_a_post_is_reported_at_once_with_hints() {
        let err = parse(
            "+++\ntitle = \"t\"\ndate = \"2025-03-11\"\ncategroy = \"Marketing\"\ntags = \"x\"\n+++\n",
        )
        .unwrap_err();
        let lines: Vec<String> = err
            .iter()
            .map(|d| format!("{d} | {}", d.help.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(lines[0].starts_with("p.md:3:8: invalid type: string \"2025-03-11\""));
        assert!(lines[0].ends_with("remove the quotes: TOML dates are bare, `date = 2025-03-11`"));
        assert!(lines[1].starts_with("p.md:4:1: unknown field `categroy`"));
        assert!(lines[1].ends_with("did you mean `category`?"));
        assert!(lines[2].starts_with("p.md:5:8: invalid type: string \"x\", expected a sequence"));
    }

    #[test]
    fn html_summaries_become_markdown_and_reference_links_resolve() {
        assert_eq!(
            excerpt(Some("<p>Un <strong>résumé</strong> en HTML.</p>"), ""),
            "Un **résumé** en HTML."
        );
        assert_eq!(
            excerpt(None, "<p>Premier paragraphe.</p>\n<p>Second.</p>"),
            "Premier paragraphe."
        );
        let body =
            "Voir [le rapport][r] et [ceci].\n\nSuite.\n\n[r]: https://example.org/r\n[ceci]: /c\n";
        assert_eq!(
            excerpt(None, body),
            "Voir [le rapport][r] et [ceci].\n\n[r]: https://example.org/r\n[ceci]: /c"
        );
    }

    #[test]
    fn shortcodes_and_liquid_are_removed_but_their_text_kept() {
        let body = "Intro {{< figure src=\"a.png\" >}} {{% note %}}gardé{{% /note %}} \
                    {{ site.title }} {% include x.html %} {# commentaire #} {{ youtube(id=\"x\") }} fin {braces}.";
        let cleaned = strip_template_tags(body);
        assert!(
            !cleaned.contains("{{") && !cleaned.contains("{%") && !cleaned.contains("{#"),
            "{cleaned}"
        );
        assert!(
            cleaned.contains("gardé") && cleaned.contains("fin {braces}."),
            "{cleaned}"
        );
        assert_eq!(template_tag_count(body), 7);
    }

    #[test]
    fn local_dates_are_in_the_newsletter_zone() {
        let post = parse("+++\ntitle = \"t\"\ndate = 2011-12-20\n+++\n").unwrap();
        assert_eq!(post.date.to_rfc3339(), "2011-12-20T00:00:00+01:00");
        assert_eq!(post.category, "Divers");
    }

    #[test]
    fn local_time_in_dst_gap_moves_forward() {
        // Regression (#11): 02:30 in Paris's spring gap became 03:00, not 03:30.
        let post = parse("+++\ntitle = \"t\"\ndate = 2021-03-28T02:30:00\n+++\n").unwrap();
        assert_eq!(post.date.to_rfc3339(), "2021-03-28T03:30:00+02:00");
        let post = parse("+++\ntitle = \"t\"\ndate = 2021-03-28T02:00:00\n+++\n").unwrap();
        assert_eq!(post.date.to_rfc3339(), "2021-03-28T03:00:00+02:00");
    }

    #[test]
    fn excerpts_skip_the_debris_pasted_before_the_text() {
        let cases = [
            ("CRM\n\nLes équipes de relation client changent d'outil.", "Les équipes de relation client changent d'outil."),
            ("revolution_en_islande.jpg\n\nL'Islande réécrit sa constitution en ligne.", "L'Islande réécrit sa constitution en ligne."),
            ("![](/img/a.png)\n\nUn texte qui commence enfin ici.", "Un texte qui commence enfin ici."),
            ("Alain Garnier - publié le 02.11.2011\n\nLe réseau social d'entreprise progresse.", "Le réseau social d'entreprise progresse."),
            ("Par André Gunthert - 5 novembre 2011 - 14:48 ]\n\nLa photo de presse change de statut.", "La photo de presse change de statut."),
            ("Posted on March 3, 2025 by Sam\n\nA real first paragraph, at last.", "A real first paragraph, at last."),
        ];
        for (body, expected) in cases {
            assert_eq!(excerpt(None, body), expected, "{body}");
        }
    }

    #[test]
    fn a_paragraph_ending_with_a_colon_brings_the_next_one() {
        let body =
            "La méthode tient en trois points :\n\n- écouter, répondre, suivre.\n\nEt ensuite ?\n";
        // A list is not a paragraph: the colon line stands alone, but a following
        // paragraph joins it.
        let body2 = "Voici la question du jour :\n\nfaut-il encore un site ?\n\nSuite.";
        assert_eq!(
            excerpt(None, body2),
            "Voici la question du jour :\n\nfaut-il encore un site ?"
        );
        assert!(excerpt(None, body).starts_with("La méthode tient en trois points :"));
    }

    #[test]
    fn real_short_paragraphs_and_numbers_are_not_debris() {
        assert!(!is_debris(
            "Le score final est de 2-1 pour Lyon, une surprise."
        ));
        assert!(!is_debris("Three seconds decide."));
        assert!(is_debris("CRM"));
        assert!(is_debris("Mis à jour le 3 mars"));
    }

    #[test]
    fn excerpt_prefers_summary_then_more_marker_then_first_paragraph() {
        assert_eq!(excerpt(Some(" Résumé "), "Corps"), "Résumé");
        assert_eq!(
            excerpt(None, "Un.\n\nDeux.\n<!-- more -->\nTrois."),
            "Un.\n\nDeux."
        );
        assert_eq!(
            excerpt(None, "# Titre\n\nUn\nsuite.\n\nDeux."),
            "Un\nsuite."
        );
        assert_eq!(excerpt(Some("  "), ""), "");
    }

    #[test]
    fn errors_on_unknown_key_with_line_and_known_keys() {
        let err =
            parse("+++\ntitle = \"t\"\ndate = 2011-12-20\ncategroy = \"x\"\n+++\n").unwrap_err();
        let msg = err[0].to_string();
        assert!(
            msg.starts_with("p.md:4:1: unknown field `categroy`, expected one of `title`"),
            "{msg}"
        );
    }

    #[test]
    fn our_own_format_refuses_yaml_front_matter() {
        let err = parse("---\ntitle: t\n---\n").unwrap_err();
        assert!(err[0]
            .to_string()
            .contains("YAML front matter (---) is not digestif's own format"));
    }

    #[test]
    fn errors_on_unclosed_front_matter() {
        let err = parse("+++\ntitle = \"t\"\n").unwrap_err();
        assert!(err[0]
            .to_string()
            .starts_with("p.md:1: front matter opened with +++"));
    }

    #[test]
    fn reports_missing_title_and_bad_link_together() {
        let err =
            parse("+++\ndate = 2011-12-20\nlink = \"javascript:alert(1)\"\n+++\n").unwrap_err();
        assert_eq!(err.len(), 2, "{err:?}");
        assert!(err[0].message.contains("missing field `title`"));
        assert_eq!(err[1].line, Some(3));
    }

    #[test]
    fn crlf_and_bom_are_accepted() {
        let post =
            parse("\u{feff}+++\r\ntitle = \"t\"\r\ndate = 2011-12-20\r\n+++\r\nCorps\r\n").unwrap();
        assert_eq!(post.excerpt, "Corps");
    }

    #[test]
    fn titles_lose_newlines_and_control_characters() {
        assert_eq!(normalize_whitespace(" a\r\n b\u{7}c "), "a b c");
    }
}
