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

use crate::config::{fill_placeholders, Config};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::posts::normalize_whitespace;
use crate::templates::Templates;

/// Marks where the greeting goes. U+E000 is a private-use character that
/// [`clean_text`] removes from every input, so no post can forge a marker.
pub(crate) const GREETING_MARK: &str = "\u{E000}greeting\u{E000}";
/// Marks where the subscriber's unsubscribe URL goes.
pub(crate) const UNSUBSCRIBE_MARK: &str = "\u{E000}unsubscribe\u{E000}";

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
}

impl Rendered {
    /// The HTML and text parts for one subscriber, markers replaced and escaped.
    pub fn personalize(&self, templates: &Templates, who: &Personal<'_>) -> (String, String) {
        let greeting = templates
            .strings
            .greeting(who.name.map(clean_text).as_deref());
        let html = self
            .html
            .replace(GREETING_MARK, &html_escape::encode_text(&greeting))
            .replace(
                UNSUBSCRIBE_MARK,
                &html_escape::encode_double_quoted_attribute(who.unsubscribe_url),
            );
        let text = self
            .text
            .replace(GREETING_MARK, &greeting)
            .replace(UNSUBSCRIBE_MARK, who.unsubscribe_url);
        (html, text)
    }
}

/// Replace the markers of a frozen variant: `greeting` is final text, `unsubscribe_url` a URL.
pub fn fill_markers(
    html: Option<&str>,
    text: &str,
    greeting: &str,
    unsubscribe_url: &str,
) -> (Option<String>, String) {
    let html = html.map(|h| {
        h.replace(GREETING_MARK, &html_escape::encode_text(greeting))
            .replace(
                UNSUBSCRIBE_MARK,
                &html_escape::encode_double_quoted_attribute(unsubscribe_url),
            )
    });
    let text = text
        .replace(GREETING_MARK, greeting)
        .replace(UNSUBSCRIBE_MARK, unsubscribe_url);
    (html, text)
}

/// Renders digests of one newsletter.
pub struct Renderer {
    name: String,
    base_url: Url,
    archive_url: Option<Url>,
    subject_template: String,
    templates: Templates,
    cleaner: markdown::HtmlCleaner,
}

impl Renderer {
    pub fn new(config: &Config, templates: Templates) -> Renderer {
        Renderer {
            name: clean_text(&config.name),
            base_url: config.base_url.clone(),
            archive_url: config.archive_url.clone(),
            subject_template: config.subject.clone(),
            cleaner: markdown::HtmlCleaner::new(&config.base_url),
            templates,
        }
    }

    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// Render `digest`; an empty digest is an error, never an empty email.
    pub fn render(&self, digest: &Digest<'_>) -> Result<Rendered> {
        if digest.is_empty() {
            return Err(Error::EmptyWeek(digest.week.to_string()));
        }
        let view = self.view(digest);
        let html = html::render(&view, &self.templates, &self.cleaner)?;
        let text = text::render(&view, &self.templates, &self.base_url);
        Ok(Rendered {
            subject: view.subject.clone(),
            html,
            text,
        })
    }

    fn view<'d>(&'d self, digest: &'d Digest<'d>) -> View<'d> {
        let strings = &self.templates.strings;
        let week_words = strings.week_range(digest.week.monday(), digest.week.sunday());
        let count = strings.post_count(digest.post_count());
        let subject = normalize_whitespace(&fill_placeholders(
            &self.subject_template,
            &[
                ("name", &self.name),
                ("week", &week_words),
                ("week_id", &digest.week.to_string()),
                ("count", &count),
            ],
        ));
        let categories: Vec<String> = digest
            .sections
            .iter()
            .map(|s| clean_text(&s.category))
            .collect();
        let preheader = fill_placeholders(
            &strings.preheader,
            &[("posts", &count), ("categories", &categories.join(", "))],
        );
        View {
            digest,
            name: &self.name,
            subject,
            week_words,
            preheader,
            archive_page: self
                .archive_url
                .as_ref()
                .and_then(|u| u.join(&format!("{}.html", digest.week)).ok()),
        }
    }
}

/// Everything both parts show, computed once.
struct View<'d> {
    digest: &'d Digest<'d>,
    name: &'d str,
    subject: String,
    week_words: String,
    preheader: String,
    archive_page: Option<Url>,
}

/// User text made safe to place anywhere: no control characters, no marker character.
pub fn clean_text(text: &str) -> String {
    markdown::strip_controls(text).replace('\u{E000}', "")
}

#[cfg(test)]
mod tests;
