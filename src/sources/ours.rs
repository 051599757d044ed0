//! digestif's own format: TOML front matter between `+++` lines, strict (an unknown key is
//! an error), every problem of a file reported at once.

use std::path::Path;

use chrono::DateTime;
use chrono_tz::Tz;
use serde::Deserialize;
use url::Url;

use super::{
    dialect, excerpt, is_language_tag, resolve_date, resolve_link, split_front_matter,
    ParseContext, Post,
};
use crate::error::Diagnostic;
use crate::text::normalize_whitespace;
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
    /// BCP 47 tag such as "en" or "fr-CA", when it is not the newsletter's language.
    language: Option<String>,
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
        let file = File {
            path,
            source,
            offset: split.offset,
            left_out: &partial.left_out,
        };
        let title = file.title(fm.title.as_deref(), &mut problems);
        let date = file.date(fm.date.as_ref(), ctx, &mut problems);
        let link = fm.link.as_ref().and_then(|spanned| {
            match resolve_link(spanned.get_ref(), &ctx.base_url) {
                Ok(url) => Some(url),
                Err(message) => {
                    problems
                        .push(file.at(spanned.span().start, format!("field `link`: {message}")));
                    None
                }
            }
        });
        let category = file.category(fm.category.as_deref(), ctx, &mut problems);
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
                expires: None,
                language: fm.language.filter(|l| is_language_tag(l)),
            }),
            _ => Err(problems),
        }
    }
}

/// The file being parsed, to locate its problems.
struct File<'a> {
    path: &'a Path,
    source: &'a str,
    /// Where the front matter starts in `source`.
    offset: usize,
    /// Keys whose statement had a problem already reported (not "missing" again).
    left_out: &'a [String],
}

impl File<'_> {
    /// A problem at byte `offset` of the front matter.
    fn at(&self, offset: usize, message: String) -> Diagnostic {
        Diagnostic::at_offset(self.path, self.source, self.offset + offset, message)
    }

    fn left_out(&self, key: &str) -> bool {
        self.left_out.iter().any(|k| k == key)
    }

    fn title(&self, title: Option<&str>, problems: &mut Vec<Diagnostic>) -> String {
        let clean = normalize_whitespace(title.unwrap_or(""));
        if title.is_none() && !self.left_out("title") {
            problems.push(Diagnostic::at(
                self.path,
                1,
                "missing field `title` in front matter",
            ));
        } else if clean.is_empty() {
            problems.push(Diagnostic::at(
                self.path,
                1,
                "field `title` must not be empty",
            ));
        }
        clean
    }

    fn date(
        &self,
        date: Option<&toml::Spanned<toml::value::Datetime>>,
        ctx: &ParseContext,
        problems: &mut Vec<Diagnostic>,
    ) -> Option<DateTime<Tz>> {
        let Some(spanned) = date else {
            if !self.left_out("date") {
                problems.push(Diagnostic::at(
                    self.path,
                    1,
                    "missing field `date` in front matter (expected e.g. 2011-12-20T09:30:00+01:00)",
                ));
            }
            return None;
        };
        resolve_date(spanned.get_ref(), ctx.timezone)
            .map_err(|message| {
                problems.push(self.at(spanned.span().start, format!("field `date`: {message}")));
            })
            .ok()
    }

    fn category(
        &self,
        category: Option<&str>,
        ctx: &ParseContext,
        problems: &mut Vec<Diagnostic>,
    ) -> String {
        match category.map(normalize_whitespace) {
            Some(c) if c.is_empty() => {
                problems.push(Diagnostic::at(
                    self.path,
                    1,
                    "field `category` must not be empty",
                ));
                String::new()
            }
            Some(c) => c,
            None => ctx.default_category.clone(),
        }
    }
}

/// Our own format's page, from the config's `permalink` pattern.
fn own_permalink(path: &Path, date: DateTime<Tz>, ctx: &ParseContext) -> Option<Url> {
    let pattern = ctx.permalink.as_ref()?;
    let stem = path.file_stem()?.to_string_lossy();
    let slug = slug::slugify(
        stem.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '_'),
    );
    let section = super::generator::sections(path, &ctx.content_root);
    let relative = dialect::fill_permalink(pattern, &slug, &section, &[], date.fixed_offset());
    ctx.base_url.join(relative.trim_start_matches('/')).ok()
}
