//! The excerpt a digest shows of a post: its summary, else the body before
//! `<!-- more -->`, else the first real paragraph; generators' template tags removed, HTML
//! turned into Markdown, reference links resolved.

use pulldown_cmark::{Event, Parser, Tag, TagEnd};

use crate::text::normalize_whitespace;

/// The excerpt rule: summary, else the body before `<!-- more -->`, else its first paragraph.
pub fn excerpt(summary: Option<&str>, body: &str) -> String {
    let body = as_markdown(&clean(body));
    let chosen = match summary.map(str::trim).filter(|s| !s.is_empty()) {
        Some(summary) => as_markdown(&clean(summary)),
        None => before_more(&body)
            .map(str::to_string)
            .unwrap_or_else(|| first_paragraph(&body))
            .trim()
            .to_string(),
    };
    with_reference_definitions(chosen, &body)
}

/// Template tags, attribute lists and tracking pixels removed; split reference
/// definitions joined.
fn clean(text: &str) -> String {
    use super::cleanup::{drop_tracking_images, join_split_definitions, strip_attribute_lists};
    join_split_definitions(&strip_attribute_lists(&drop_tracking_images(
        &strip_template_tags(text),
    )))
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
    super::html::to_markdown(trimmed)
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

/// The part of a raw body the excerpt is taken from: up to `<!-- more -->`, else up to the
/// end of the first paragraph with text of its own (a heading or a lone shortcode before
/// it is part of the opening too). For warnings about what the excerpt loses.
pub fn excerpt_source(body: &str) -> &str {
    if let Some(before) = before_more(body) {
        return before;
    }
    let mut end = 0;
    for paragraph in body.split_inclusive("\n\n") {
        end += paragraph.len();
        let text = strip_template_tags(paragraph);
        let text = text.trim();
        if !text.starts_with('#') && text.chars().any(char::is_alphanumeric) {
            break;
        }
    }
    &body[..end.min(body.len())]
}

/// Byte offset of the first template tag in `text`, if any.
pub fn first_template_tag(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(start) = text[from..].find('{') {
        let at = from + start;
        if tag_length(&text[at..]).is_some() {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The length of the template tag `text` starts with, if it starts with one.
fn tag_length(text: &str) -> Option<usize> {
    let close = match text.get(..2) {
        Some("{{") if text[2..].starts_with('<') => ">}}",
        Some("{{") if text[2..].starts_with('%') => "%}}",
        Some("{{") => "}}",
        Some("{%") => "%}",
        Some("{#") => "#}",
        _ => return None,
    };
    text.find(close).map(|end| end + close.len())
}

fn strip_and_count(text: &str) -> (String, usize) {
    let mut removed = 0;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(['{']) {
        let after = &rest[start..];
        match tag_length(after) {
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
    // A short line that announces what follows ("Three things:") is not debris.
    let announces =
        |i: usize| paragraphs[i].1.trim_end().ends_with(':') && i + 1 < paragraphs.len();
    let Some(start) = (0..paragraphs.len()).find(|&i| !is_debris(&paragraphs[i].1) || announces(i))
    else {
        return paragraphs
            .first()
            .map(|(md, _)| md.to_string())
            .unwrap_or_default();
    };
    let mut chosen = vec![paragraphs[start].0.as_ref()];
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

/// The most items of a list an excerpt keeps after a paragraph that announces it.
const LIST_ITEMS: usize = 5;

/// Each top-level paragraph or list of `body`: its Markdown and its plain text (image alt
/// text left out); a list keeps its first [`LIST_ITEMS`] items.
fn paragraphs(body: &str) -> Vec<(std::borrow::Cow<'_, str>, String)> {
    let mut out = Vec::new();
    let mut current: Option<(std::ops::Range<usize>, String)> = None;
    let mut in_image = 0;
    let mut lists = 0;
    let mut items: Vec<std::ops::Range<usize>> = Vec::new();
    for (event, range) in Parser::new(body).into_offset_iter() {
        match event {
            Event::Start(Tag::List(_)) => {
                if lists == 0 {
                    current = Some((range, String::new()));
                    items.clear();
                }
                lists += 1;
            }
            Event::Start(Tag::Item) if lists == 1 => items.push(range),
            Event::End(TagEnd::List(_)) => {
                lists -= 1;
                if lists == 0 {
                    if let Some((_, plain)) = current.take() {
                        let kept: Vec<&str> = items
                            .iter()
                            .take(LIST_ITEMS)
                            .map(|r| body[r.clone()].trim_end())
                            .collect();
                        out.push((kept.join("\n").into(), normalize_whitespace(&plain)));
                    }
                }
            }
            Event::Start(Tag::Paragraph) if lists == 0 => current = Some((range, String::new())),
            Event::End(TagEnd::Paragraph) if lists == 0 => {
                if let Some((range, plain)) = current.take() {
                    out.push((body[range].trim().into(), normalize_whitespace(&plain)));
                }
            }
            Event::Start(Tag::Image { .. }) => in_image += 1,
            Event::End(TagEnd::Image) => in_image -= 1,
            Event::Text(t) | Event::Code(t) if in_image == 0 => {
                if let Some((_, plain)) = current.as_mut() {
                    plain.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak | Event::End(TagEnd::Item) => {
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
pub(super) fn is_debris(plain: &str) -> bool {
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

#[cfg(test)]
mod source_tests {
    use super::*;

    #[test]
    fn the_excerpts_source_is_the_opening_up_to_the_first_real_paragraph() {
        let body = "## Intro\n\n{{< figure src=\"a.png\" >}}\n\nFirst words.\nStill first.\n\nSecond {{< x >}}.\n";
        let source = excerpt_source(body);
        assert!(source.ends_with("Still first.\n\n"), "{source:?}");
        assert_eq!(first_template_tag(source), Some(10));
        assert_eq!(
            excerpt_source("Lead.\n<!-- more -->\nRest {{ x }}"),
            "Lead.\n"
        );
    }
}
