//! Markdown excerpts → sanitized HTML for the HTML part, and → wrapped plain text with
//! numbered link references for the text part.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use url::Url;

use crate::text::typography::typeset;

/// Renders post Markdown to HTML that is safe in an email: no scripts, event handlers,
/// `javascript:` URLs, iframes, forms or styles; relative URLs made absolute.
pub struct HtmlCleaner {
    builder: ammonia::Builder<'static>,
    /// Whose typography the text follows.
    language: String,
}

impl HtmlCleaner {
    pub fn new(base_url: &Url, language: &str) -> Self {
        let mut builder = ammonia::Builder::default();
        builder
            .url_relative(ammonia::UrlRelative::RewriteWithBase(base_url.clone()))
            .link_rel(Some("noopener noreferrer"))
            // Headings inside an excerpt would break the digest's outline (h1 > h2 > h3).
            .rm_tags(["h1", "h2", "h3", "h4", "h5", "h6"]);
        HtmlCleaner {
            builder,
            language: language.to_string(),
        }
    }

    pub fn to_html(&self, markdown: &str) -> String {
        let mut html = String::with_capacity(markdown.len() * 3 / 2);
        let mut in_code = false;
        let events = Parser::new_ext(markdown, options()).map(|event| match event {
            Event::Start(Tag::CodeBlock(_)) => {
                in_code = true;
                event
            }
            Event::End(TagEnd::CodeBlock) => {
                in_code = false;
                event
            }
            Event::Text(t) if !in_code => Event::Text(typeset(&t, &self.language).into()),
            other => other,
        });
        pulldown_cmark::html::push_html(&mut html, events);
        with_alt_on_images(&self.builder.clean(&html).to_string())
    }
}

/// Give every `<img>` an `alt` (empty when the author wrote none): screen readers and
/// mail clients that block images need one.
fn with_alt_on_images(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find("<img") {
        let end = rest[i..].find('>').map_or(rest.len(), |e| i + e);
        let tag = clamp_width(&rest[i..end]);
        out.push_str(&rest[..i]);
        out.push_str(&tag);
        if !tag.contains(" alt=") {
            out.push_str(" alt=\"\"");
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Width of the digest's text column (600 px less the cells' padding).
pub const CONTENT_WIDTH: u32 = 552;

/// An `<img>` tag whose `width` attribute is wider than the column, brought down to it
/// (and its `height` dropped, so the ratio holds): Outlook for Windows lays images out
/// by that attribute, whatever the CSS says, so with images off a 1,200 px wide image
/// stretched the whole message.
fn clamp_width(tag: &str) -> String {
    let Some((start, end, width)) = find_attribute(tag, "width") else {
        return tag.to_string();
    };
    let too_wide = width
        .trim_end_matches("px")
        .parse::<u32>()
        .is_ok_and(|w| w > CONTENT_WIDTH);
    if !too_wide {
        return tag.to_string();
    }
    let mut out = format!("{} width=\"{CONTENT_WIDTH}\"{}", &tag[..start], &tag[end..]);
    if let Some((start, end, _)) = find_attribute(&out, "height") {
        out.replace_range(start..end, "");
    }
    out
}

/// ` name="value"` in a tag as ammonia writes it: (start, end, value).
fn find_attribute(tag: &str, name: &str) -> Option<(usize, usize, String)> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)?;
    let value_start = start + key.len();
    let len = tag[value_start..].find('"')?;
    let value = tag[value_start..value_start + len].to_string();
    Some((start, value_start + len + 1, value))
}

fn options() -> Options {
    Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES
}

/// Collects link targets across a whole text digest so each gets one number.
#[derive(Debug, Default)]
pub struct References {
    urls: Vec<String>,
}

impl References {
    /// The number of `url`, adding it if new.
    pub fn number(&mut self, url: &str) -> usize {
        match self.urls.iter().position(|u| u == url) {
            Some(i) => i + 1,
            None => {
                self.urls.push(url.to_string());
                self.urls.len()
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, &str)> {
        self.urls
            .iter()
            .enumerate()
            .map(|(i, u)| (i + 1, u.as_str()))
    }
}

/// Markdown → paragraphs of plain text, each wrapped at `width` columns. Links become
/// `text [n]` with `n` from `refs`; only http(s) and mailto targets are kept.
pub fn to_text(
    markdown: &str,
    base_url: &Url,
    refs: &mut References,
    width: usize,
    language: &str,
) -> String {
    let mut text = PlainText {
        base_url,
        refs,
        language,
        blocks: Vec::new(),
        current: String::new(),
        lists: Vec::new(),
        links: Vec::new(),
        in_code_block: false,
        image_start: None,
    };
    for event in Parser::new_ext(markdown, options()) {
        text.event(event);
    }
    text.flush("");
    text.blocks
        .into_iter()
        .map(|(text, indent)| match indent {
            "verbatim" => text,
            indent => wrap(&text, width, indent),
        })
        .collect::<Vec<_>>()
        .join("\n\n")
        .replace("\n\n    ", "\n    ")
}

/// [`to_text`] as it reads the events: the blocks done, the one being written, and where
/// it stands in lists, links and code.
struct PlainText<'a> {
    base_url: &'a Url,
    refs: &'a mut References,
    language: &'a str,
    /// Each block's text and indent (`"verbatim"`: kept as it is, not wrapped).
    blocks: Vec<(String, &'static str)>,
    current: String,
    /// The lists being read: the next number of an ordered one.
    lists: Vec<Option<u64>>,
    /// The links and images being read, with their kept target.
    links: Vec<Option<String>>,
    in_code_block: bool,
    /// Where the image being read starts in `current`.
    image_start: Option<usize>,
}

impl PlainText<'_> {
    /// End the current block, if it has any text.
    fn flush(&mut self, indent: &'static str) {
        let text = self.current.trim().to_string();
        if !text.is_empty() {
            self.blocks.push((text, indent));
        }
        self.current.clear();
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Text(t) | Event::Code(t) if self.in_code_block => {
                for line in t.lines() {
                    let line = format!("    {}", strip_controls(line));
                    self.blocks.push((line, "verbatim"));
                }
            }
            Event::Text(t) => {
                let text = typeset(&strip_controls(&t), self.language);
                self.current.push_str(&text);
            }
            Event::Code(t) => self.current.push_str(&strip_controls(&t)),
            Event::SoftBreak => self.current.push(' '),
            Event::HardBreak => self.current.push('\n'),
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Rule => self.blocks.push(("---".into(), "verbatim")),
            // Raw HTML has no faithful plain-text form; its text content is dropped.
            _ => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::CodeBlock(_) => {
                self.flush("");
                self.in_code_block = true;
            }
            Tag::List(start) => {
                self.flush("");
                self.lists.push(start);
            }
            Tag::Item => {
                self.flush("");
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}. ", *n - 1)
                    }
                    _ => "- ".to_string(),
                };
                self.current.push_str(&marker);
            }
            Tag::Link { dest_url, .. } => self.links.push(absolute(&dest_url, self.base_url)),
            Tag::Image { dest_url, .. } => {
                self.image_start = Some(self.current.len());
                self.current.push_str("[image: ");
                self.links.push(absolute(&dest_url, self.base_url));
            }
            Tag::Heading {
                level: HeadingLevel::H1 | HeadingLevel::H2,
                ..
            } => self.flush(""),
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::CodeBlock => self.in_code_block = false,
            TagEnd::List(_) => {
                self.lists.pop();
            }
            TagEnd::Item => self.flush("  "),
            TagEnd::Link => self.link_number(),
            TagEnd::Image => {
                // No alt text: "[image]", not "[image: ]".
                match self.image_start.take() {
                    Some(start) if self.current[start..].trim_end() == "[image:" => {
                        self.current.truncate(start);
                        self.current.push_str("[image]");
                    }
                    _ => self.current.push(']'),
                }
                self.link_number();
            }
            TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::BlockQuote(_) | TagEnd::TableRow => {
                self.flush("");
            }
            TagEnd::TableCell => self.current.push_str(" | "),
            _ => {}
        }
    }

    /// The reference number of the link just read, kept with its text: a no-break space
    /// never lets the number orphan.
    fn link_number(&mut self) {
        if let Some(Some(url)) = self.links.pop() {
            let n = self.refs.number(&url);
            self.current.push_str(&format!("\u{a0}[{n}]"));
        }
    }
}

/// Markdown as one line of plain text: no markup, no link targets.
pub fn plain_text(markdown: &str) -> String {
    let mut out = String::new();
    for event in Parser::new_ext(markdown, options()) {
        match event {
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak | Event::HardBreak => out.push(' '),
            Event::End(TagEnd::Paragraph | TagEnd::Item | TagEnd::Heading(_)) => out.push(' '),
            _ => {}
        }
    }
    crate::text::normalize_whitespace(&out)
}

/// At most `limit` characters, cut at a word boundary, with an ellipsis when cut.
pub fn shorten(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut out = String::new();
    for word in text.split(' ') {
        if out.chars().count() + word.chars().count() + 1 > limit.saturating_sub(1) {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        // One word longer than the limit: cut it.
        out = text.chars().take(limit.saturating_sub(1)).collect();
    }
    out.push('…');
    out
}

/// [`wrap`] with every line indented by `indent`, the first one too.
pub fn wrap_indented(text: &str, width: usize, indent: &str) -> String {
    let options = textwrap::Options::new(width)
        .break_words(false)
        .initial_indent(indent)
        .subsequent_indent(indent);
    textwrap::fill(text, options)
}

/// Wrap at `width` columns without breaking words (URLs stay whole).
pub fn wrap(text: &str, width: usize, subsequent_indent: &str) -> String {
    let options = textwrap::Options::new(width)
        .break_words(false)
        .subsequent_indent(subsequent_indent);
    textwrap::fill(text, options)
}

fn absolute(url: &str, base_url: &Url) -> Option<String> {
    let url = base_url.join(url).ok()?;
    matches!(url.scheme(), "http" | "https" | "mailto").then(|| url.to_string())
}

/// Remove control characters (but newlines and tabs) from user text.
pub fn strip_controls(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://veille.example.org/blog/").unwrap()
    }

    #[test]
    fn html_is_sanitized_and_links_made_absolute() {
        let cleaner = HtmlCleaner::new(&base(), "en");
        let html = cleaner.to_html(
            "Voir [ceci](../a) et ![logo](img/l.png)\n\n<script>alert(1)</script>\
             <a href=\"javascript:alert(1)\" onclick=\"x()\">x</a><iframe src=\"https://e.org\"></iframe>",
        );
        assert!(
            html.contains("href=\"https://veille.example.org/a\""),
            "{html}"
        );
        assert!(
            html.contains("src=\"https://veille.example.org/blog/img/l.png\""),
            "{html}"
        );
        for bad in ["<script", "javascript:", "onclick", "<iframe"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
    }

    #[test]
    fn images_wider_than_the_column_are_clamped_by_attribute() {
        let cleaner = HtmlCleaner::new(&base(), "en");
        let html = cleaner.to_html(
            "<img src=\"a.png\" width=\"1200\" height=\"800\"> <img src=\"b.png\" width=\"300\" height=\"200\">",
        );
        assert!(
            html.contains("src=\"https://veille.example.org/blog/a.png\" width=\"552\""),
            "{html}"
        );
        assert!(!html.contains("800") && !html.contains("1200"), "{html}");
        assert!(html.contains("width=\"300\" height=\"200\""), "{html}");
    }

    #[test]
    fn images_always_have_alt() {
        let cleaner = HtmlCleaner::new(&base(), "en");
        let html =
            cleaner.to_html("<img src=\"a.png\"> ![logo](b.png) <img alt=\"x\" src=\"c.png\">");
        assert_eq!(html.matches(" alt=").count(), 3, "{html}");
        assert!(html.contains("alt=\"logo\"") && html.contains("alt=\"x\""));
    }

    #[test]
    fn shorten_cuts_on_word_boundaries() {
        assert_eq!(shorten("un deux trois quatre", 100), "un deux trois quatre");
        assert_eq!(shorten("un deux trois quatre", 12), "un deux…");
        assert_eq!(shorten("anticonstitutionnellement", 6), "antic…");
        assert_eq!(
            plain_text("Un *mot* et [un lien](/x).\n\n- item"),
            "Un mot et un lien. item"
        );
    }

    #[test]
    fn text_lists_links_as_numbered_references() {
        let mut refs = References::default();
        let text = to_text(
            "Un [lien](https://a.example/x) et un [autre](/y), puis [encore](https://a.example/x).",
            &base(),
            &mut refs,
            72,
            "en",
        );
        assert_eq!(
            text,
            "Un lien\u{a0}[1] et un autre\u{a0}[2], puis encore\u{a0}[1]."
        );
        let all: Vec<_> = refs.iter().collect();
        assert_eq!(
            all,
            [
                (1, "https://a.example/x"),
                (2, "https://veille.example.org/y")
            ]
        );
    }

    #[test]
    fn text_wraps_at_72_columns_and_keeps_lists() {
        let mut refs = References::default();
        let long = "mot ".repeat(40);
        let text = to_text(
            &format!("{long}\n\n- un\n- deux\n\n1. premier"),
            &base(),
            &mut refs,
            72,
            "en",
        );
        assert!(text.lines().all(|l| l.chars().count() <= 72), "{text}");
        assert!(text.ends_with("- un\n\n- deux\n\n1. premier"), "{text}");
    }

    #[test]
    fn javascript_links_are_dropped_from_text() {
        let mut refs = References::default();
        let text = to_text("[x](javascript:alert(1))", &base(), &mut refs, 72, "en");
        assert_eq!(text, "x");
        assert!(refs.is_empty());
    }
}
