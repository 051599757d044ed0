//! Stage 4: rendering. A [`Digest`] becomes a [`Rendered`] email: subject, HTML (Maud,
//! stylesheet inlined) and plain text that says the same things in the same order.
//!
//! Rendering is done once per distinct digest; what differs per subscriber (greeting,
//! unsubscribe link) is left as markers that [`Rendered::personalize`] fills in, escaped
//! for each part. Nothing here reads the disk or sends anything.

mod html;
pub mod markdown;
mod text;

use url::Url;

use crate::config::Config;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::sources::Post;
use crate::templates::Templates;
use crate::text::fill_placeholders;
use crate::text::normalize_whitespace;

/// Marks where the greeting goes. U+E000 is a private-use character that
/// [`clean_text`] removes from every input, so no post can forge a marker.
pub(crate) const GREETING_MARK: &str = "\u{E000}greeting\u{E000}";
/// Marks where the subscriber's unsubscribe URL goes.
pub(crate) const UNSUBSCRIBE_MARK: &str = "\u{E000}unsubscribe\u{E000}";
/// Marks where the subscriber's preferences page URL goes (with `[web] url`).
pub(crate) const PREFERENCES_MARK: &str = "\u{E000}preferences\u{E000}";

/// A digest rendered for one audience variant (category set, format, language).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    /// Complete HTML document, styles inlined, with personalization markers.
    pub html: String,
    /// Plain text, wrapped at 72 columns, with personalization markers.
    pub text: String,
}

/// What differs per subscriber.
#[derive(Debug, Clone, Default)]
pub struct Personal<'a> {
    pub name: Option<&'a str>,
    pub unsubscribe_url: &'a str,
    pub preferences_url: &'a str,
}

impl Rendered {
    /// The HTML and text parts for one subscriber, markers replaced and escaped.
    pub fn personalize(&self, templates: &Templates, who: &Personal<'_>) -> (String, String) {
        let strings = &templates.strings;
        let greeting = greeting(&strings.greeting, &strings.greeting_anonymous, who.name);
        let (html, text) = fill_markers(
            Some(&self.html),
            &self.text,
            &greeting,
            (who.unsubscribe_url, who.preferences_url),
        );
        (html.unwrap_or_default(), text)
    }
}

/// The greeting rule: `named` with the reader's name (cleaned of control characters and
/// markers, trimmed), or `anonymous` when there is no usable name.
pub fn greeting(named: &str, anonymous: &str, name: Option<&str>) -> String {
    match name.map(clean_text).filter(|n| !n.trim().is_empty()) {
        Some(name) => fill_placeholders(named, &[("name", name.trim())]),
        None => anonymous.to_string(),
    }
}

/// Replace the markers of a frozen variant: `greeting` is final text, `unsubscribe_url` a URL.
pub fn fill_markers(
    html: Option<&str>,
    text: &str,
    greeting: &str,
    (unsubscribe_url, preferences_url): (&str, &str),
) -> (Option<String>, String) {
    let html = html.map(|h| {
        h.replace(GREETING_MARK, &html_escape::encode_text(greeting))
            .replace(
                UNSUBSCRIBE_MARK,
                &html_escape::encode_double_quoted_attribute(unsubscribe_url),
            )
            .replace(
                PREFERENCES_MARK,
                &html_escape::encode_double_quoted_attribute(preferences_url),
            )
    });
    let text = text
        .replace(GREETING_MARK, greeting)
        .replace(UNSUBSCRIBE_MARK, unsubscribe_url)
        .replace(PREFERENCES_MARK, preferences_url);
    (html, text)
}

/// Characters of the preheader: about what the longest inbox snippets show.
const PREHEADER_CHARS: usize = 140;

/// The largest quoted-printable-encoded part (HTML, and text) we send. Gmail clips messages whose HTML
/// passes about 102 KB; the margin leaves room for headers and personal values.
pub const HTML_BUDGET: usize = 90 * 1024;

/// Excerpt lengths tried, longest first, when a week does not fit the budget.
const EXCERPT_LIMITS: [Option<usize>; 4] = [None, Some(600), Some(300), Some(150)];

/// Where the HTML is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In a mail client: greeting and unsubscribe link, size budget.
    Email,
    /// On the web archive: no subscriber-specific parts, a link to the index.
    Web,
}

/// How much of the digest the HTML shows.
#[derive(Debug, Clone, Copy)]
struct Layout {
    mode: Mode,
    /// Excerpts cut to this many characters (on a word boundary); `None`: whole.
    excerpt_limit: Option<usize>,
    /// Posts shown, in digest order; the rest are summed up with a link to the week page.
    shown: usize,
}

/// Renders digests of one newsletter.
pub struct Renderer {
    name: String,
    base_url: Url,
    archive_url: Option<Url>,
    subject_template: String,
    templates: Templates,
    cleaner: markdown::HtmlCleaner,
    /// The footer links to each reader's preferences page (`[web] url` is set).
    preferences: bool,
}

impl Renderer {
    pub fn new(config: &Config, templates: Templates) -> Renderer {
        Renderer {
            name: typeset(&config.name, &templates.language),
            base_url: config.base_url.clone(),
            archive_url: config.archive_url.clone(),
            subject_template: config.subject.clone(),
            cleaner: markdown::HtmlCleaner::new(&config.base_url, &templates.language),
            templates,
            preferences: config.web.url.is_some(),
        }
    }

    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// Render `digest` as an email; an empty digest is an error, never an empty email.
    ///
    /// The text part always has every post. The HTML part must stay under [`HTML_BUDGET`]
    /// once encoded: if a week is too long, excerpts are shortened, then the posts that
    /// still do not fit are summed up with a link to the week's web page.
    pub fn render(&self, digest: &Digest<'_>) -> Result<Rendered> {
        if digest.is_empty() {
            return Err(Error::EmptyWeek(digest.week.to_string()));
        }
        let total = digest.post_count();
        let full = Layout {
            mode: Mode::Email,
            excerpt_limit: None,
            shown: total,
        };
        let subject = self.view(digest, full).subject;
        let html = fit(total, |layout| self.html(digest, layout))?;
        // The same budget for the text part: a 160-post week made an 845 KB message.
        let text = fit(total, |layout| {
            Ok(text::render(
                &self.view(digest, layout),
                &self.templates,
                &self.base_url,
            ))
        })?;
        Ok(Rendered {
            subject,
            html,
            text,
        })
    }
    fn html(&self, digest: &Digest<'_>, layout: Layout) -> Result<String> {
        html::render(&self.view(digest, layout), &self.templates, &self.cleaner)
    }

    /// The week's page for the web archive: the whole digest, no subscriber-specific parts.
    pub fn render_page(&self, digest: &Digest<'_>) -> Result<String> {
        if digest.is_empty() {
            return Err(Error::EmptyWeek(digest.week.to_string()));
        }
        self.html(
            digest,
            Layout {
                mode: Mode::Web,
                excerpt_limit: None,
                shown: digest.post_count(),
            },
        )
    }

    /// The one-line summary of a week ("6 articles : Relation client, Marketing").
    pub fn summary(&self, digest: &Digest<'_>) -> String {
        self.view(
            digest,
            Layout {
                mode: Mode::Web,
                excerpt_limit: None,
                shown: 0,
            },
        )
        .summary
    }

    /// Where a week's page is published: the archive, else the site itself.
    pub fn week_page(&self, week: crate::week::Week) -> Url {
        let base = self.archive_url.as_ref().unwrap_or(&self.base_url);
        base.join(&format!("{week}.html"))
            .unwrap_or_else(|_| base.clone())
    }

    fn view<'d>(&'d self, digest: &'d Digest<'d>, layout: Layout) -> View<'d> {
        let strings = &self.templates.strings;
        let week_words = strings.week_range(digest.week.monday(), digest.week.sunday());
        let count = strings.post_count(digest.post_count());
        let titles: Vec<String> = digest
            .sections
            .iter()
            .flat_map(|s| &s.posts)
            .map(|p| typeset(&p.title, &self.templates.language))
            .collect();
        let lead = titles.first().cloned().unwrap_or_default();
        let others = titles.len().saturating_sub(1);
        let subject = normalize_whitespace(&fill_placeholders(
            &self.subject_template,
            &[
                ("name", &self.name),
                ("week", &week_words),
                ("week_id", &digest.week.to_string()),
                ("count", &count),
                ("lead", &lead),
                ("lead_and_more", &strings.lead_and_more(&lead, others)),
            ],
        ));
        let categories: Vec<String> = digest
            .sections
            .iter()
            .map(|s| typeset(&s.category, &self.templates.language))
            .collect();
        let summary = fill_placeholders(
            &strings.preheader,
            &[("posts", &count), ("categories", &categories.join(", "))],
        );
        // The inbox snippet: the week's titles, as many as a snippet shows.
        let preheader = markdown::shorten(&titles.join(" · "), PREHEADER_CHARS);
        View {
            digest,
            name: &self.name,
            subject,
            week_words,
            preheader,
            summary,
            archive_page: self
                .archive_url
                .as_ref()
                .map(|_| self.week_page(digest.week)),
            week_page: self.week_page(digest.week),
            layout,
            preferences: self.preferences,
        }
    }
}

/// The fullest rendering that stays under [`HTML_BUDGET`] once encoded: whole excerpts,
/// then shorter ones, then as many posts as fit (the rest summed up with a link to the
/// week's page).
fn fit(total: usize, render: impl Fn(Layout) -> Result<String>) -> Result<String> {
    for excerpt_limit in EXCERPT_LIMITS {
        let part = render(Layout {
            mode: Mode::Email,
            excerpt_limit,
            shown: total,
        })?;
        if encoded_len(&part) <= HTML_BUDGET {
            return Ok(part);
        }
    }
    // Binary search for the most posts that fit with the shortest excerpts.
    let layout = |shown| Layout {
        mode: Mode::Email,
        excerpt_limit: EXCERPT_LIMITS[3],
        shown,
    };
    let mut best = render(layout(0))?;
    let (mut fits, mut too_many) = (0, total);
    while too_many - fits > 1 {
        let mid = (fits + too_many) / 2;
        let part = render(layout(mid))?;
        if encoded_len(&part) <= HTML_BUDGET {
            fits = mid;
            best = part;
        } else {
            too_many = mid;
        }
    }
    Ok(best)
}

/// Size of a part as sent: quoted-printable with CRLF line ends.
fn encoded_len(html: &str) -> usize {
    quoted_printable::encode_to_str(html.replace('\n', "\r\n")).len()
}

/// Everything both parts show, computed once.
struct View<'d> {
    digest: &'d Digest<'d>,
    name: &'d str,
    subject: String,
    week_words: String,
    /// The hidden text mail clients show after the subject: the week's titles.
    preheader: String,
    /// "6 articles : Relation client, Marketing" (the archive's feed).
    summary: String,
    /// The "view in your browser" target, when an archive is configured.
    archive_page: Option<Url>,
    /// Where posts that do not fit the email are read.
    week_page: Url,
    layout: Layout,
    /// Link to the reader's preferences page ([`PREFERENCES_MARK`]).
    preferences: bool,
}

/// A post's own language when it differs from the digest's, for screen readers and
/// hyphenation.
pub(crate) fn post_lang<'p>(post: &'p Post, digest_language: &str) -> Option<&'p str> {
    // "fr-FR" in a French digest is French: only the primary subtag counts.
    let primary = |l: &str| {
        l.split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    post.language
        .as_deref()
        .filter(|l| primary(l) != primary(digest_language))
}

/// Where a post comes from, when that adds to its title: its source, unless the title
/// already says it (curated links often take the article's title as source), else the
/// linked site's domain.
pub(crate) fn source_line(title: &str, source: Option<&str>, link: Option<&Url>) -> Option<String> {
    let fold = |s: &str| {
        s.to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let title = fold(title);
    if let Some(source) = source.filter(|s| !s.trim().is_empty()) {
        let folded = fold(source);
        if !title.contains(&folded) && !folded.contains(&title) {
            return Some(source.to_string());
        }
    }
    let host = link?.host_str()?;
    Some(host.strip_prefix("www.").unwrap_or(host).to_string())
}

/// User text made safe to place anywhere and set in the typography of `language`.
pub(crate) fn typeset(text: &str, language: &str) -> String {
    crate::text::typography::typeset(&clean_text(text), language)
}

/// User text made safe to place anywhere: no control characters, no marker character.
pub fn clean_text(text: &str) -> String {
    markdown::strip_controls(text).replace('\u{E000}', "")
}

#[cfg(test)]
mod tests;
