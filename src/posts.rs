//! Stage 2: posts. A post is a Markdown file with TOML front matter between `+++` lines.
//!
//! [`Post::parse`] turns one file's text into a [`Post`] or every problem found in it;
//! [`load`] walks `posts_dir` and gathers posts and problems from all files. Nothing here
//! renders HTML: the excerpt stays Markdown until the render stage.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;
use pulldown_cmark::{Event, Parser, Tag};
use serde::Deserialize;
use url::Url;

use crate::error::{Diagnostic, Error, Result};
use crate::toml_input;

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
}

/// What parsing needs to know about the newsletter.
#[derive(Debug, Clone)]
pub struct ParseContext {
    pub timezone: Tz,
    pub default_category: String,
    pub base_url: Url,
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
    pub link: Option<Url>,
    /// Markdown shown in the digest: the summary, or the body before `<!-- more -->`, or the
    /// body's first paragraph.
    pub excerpt: String,
    pub draft: bool,
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
                link,
                excerpt: excerpt(fm.summary.as_deref(), split.body),
                draft: fm.draft,
            }),
            _ => Err(problems),
        }
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
}

/// Split `+++`-delimited front matter from the body.
pub fn split_front_matter<'a>(path: &Path, source: &'a str) -> Result<Split<'a>, Diagnostic> {
    let bom = if source.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    let text = &source[bom..];
    let mut lines = LineOffsets::new(text);
    let Some((first, after_first)) = lines.next() else {
        return Err(Diagnostic::at(
            path,
            1,
            "empty file: expected TOML front matter between +++ lines",
        ));
    };
    match first.trim_end() {
        "+++" => {}
        "---" => {
            return Err(Diagnostic::at(
                path,
                1,
                "YAML front matter (---) is not supported: digestif expects TOML front matter between two +++ lines",
            ))
        }
        _ => {
            return Err(Diagnostic::at(
                path,
                1,
                "expected TOML front matter: the file must start with a line +++",
            ))
        }
    }
    for (line, end) in lines.by_ref() {
        if line.trim_end() == "+++" {
            let start_of_line = end - line.len() - newline_len(text, end);
            return Ok(Split {
                front_matter: &text[after_first..start_of_line],
                offset: bom + after_first,
                body: &text[end..],
            });
        }
    }
    Err(Diagnostic::at(
        path,
        1,
        "front matter opened with +++ on line 1 is never closed (expected a closing +++ line)",
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

fn local_in_zone(naive: NaiveDateTime, tz: Tz) -> Result<DateTime<Tz>, String> {
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
    if let Some(summary) = summary.map(str::trim).filter(|s| !s.is_empty()) {
        return summary.to_string();
    }
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        if line.trim().eq_ignore_ascii_case("<!-- more -->") {
            return body[..offset].trim().to_string();
        }
        offset += line.len();
    }
    first_paragraph(body).trim().to_string()
}

fn first_paragraph(body: &str) -> &str {
    Parser::new(body)
        .into_offset_iter()
        .find_map(|(event, range)| match event {
            Event::Start(Tag::Paragraph) => Some(&body[range]),
            _ => None,
        })
        .unwrap_or("")
}

/// Collapse runs of whitespace (including newlines and control characters) into one space.
pub fn normalize_whitespace(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Read and parse every `*.md` file under `dir` (sorted by path for stable output).
/// Returns the posts that parsed and the problems of those that did not.
pub fn load(dir: &Path, ctx: &ParseContext) -> Result<(Vec<Post>, Vec<Diagnostic>)> {
    if !dir.is_dir() {
        return Err(Error::io(
            "read posts folder",
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder"),
        ));
    }
    let mut posts = Vec::new();
    let mut problems = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let path = e.path().unwrap_or(dir).to_path_buf();
                problems.push(Diagnostic::new(&path, format!("cannot read: {e}")));
                continue;
            }
        };
        let path = entry.path();
        if !entry.file_type().is_file() || !is_post_file(path) {
            continue;
        }
        match read_post(path, ctx) {
            Ok(post) => posts.push(post),
            Err(mut found) => problems.append(&mut found),
        }
    }
    Ok((posts, problems))
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

fn read_post(path: &Path, ctx: &ParseContext) -> Result<Post, Vec<Diagnostic>> {
    let bytes = std::fs::read(path)
        .map_err(|e| vec![Diagnostic::new(path, format!("cannot read: {e}"))])?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let valid = std::str::from_utf8(valid).unwrap_or_default();
        vec![Diagnostic::at_offset(
            path,
            valid,
            valid.len(),
            format!(
                "invalid UTF-8 at byte {}: posts must be UTF-8 text",
                valid.len()
            ),
        )]
    })?;
    Post::parse(path, &text, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ParseContext {
        ParseContext {
            timezone: chrono_tz::Europe::Paris,
            default_category: "Divers".into(),
            base_url: Url::parse("https://veille.example.org/blog/").unwrap(),
        }
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
    fn errors_on_yaml_front_matter() {
        let err = parse("---\ntitle: t\n---\n").unwrap_err();
        assert!(err[0]
            .to_string()
            .contains("YAML front matter (---) is not supported"));
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
