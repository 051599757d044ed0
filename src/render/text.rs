//! The plain-text part: the same content as the HTML, in the same order, wrapped at 72
//! columns, links gathered as numbered references at the end.

use url::Url;

use super::markdown::{self, References};
use super::{
    clean_text, source_line, typeset, View, GREETING_MARK, PREFERENCES_MARK, UNSUBSCRIBE_MARK,
};
use crate::sources::Post;
use crate::templates::{Strings, Templates};
use crate::text::fill_placeholders;

pub(super) const WIDTH: usize = 72;

pub(super) fn render(view: &View<'_>, templates: &Templates, base_url: &Url) -> String {
    let strings = &templates.strings;
    let language = templates.language.as_str();
    let mut refs = References::default();
    let mut blocks = vec![
        underline(&format!("{}\n{}", view.name, view.week_words), '='),
        GREETING_MARK.to_string(),
    ];
    if let Some(note) = &view.digest.note {
        let note = clean_text(note);
        blocks.push(markdown::to_text(
            &note, base_url, &mut refs, WIDTH, language,
        ));
    }
    blocks.push(contents(view, strings, language));
    let mut left = view.layout.shown;
    for section in &view.digest.sections {
        let shown = left.min(section.posts.len());
        left -= shown;
        if shown == 0 {
            continue;
        }
        let heading = typeset(&section.category, language).to_uppercase();
        blocks.push(underline(&heading, '-'));
        for post in &section.posts[..shown] {
            let limit = view.layout.excerpt_limit;
            let entry = post_entry(post, strings, language, base_url, limit, &mut refs);
            blocks.push(entry);
        }
    }
    let hidden = view.digest.post_count() - view.layout.shown.min(view.digest.post_count());
    if hidden > 0 {
        let n = refs.number(view.week_page.as_str());
        let more = format!("{}\u{a0}[{n}]", strings.more_posts(hidden));
        blocks.push(markdown::wrap(&more, WIDTH, ""));
    }
    // The links before the footer: they belong to the posts, the footer to the list.
    if !refs.is_empty() {
        let mut list = format!("{}\n", strings.links);
        for (n, url) in refs.iter() {
            list.push_str(&format!("[{n}] {url}\n"));
        }
        blocks.push(list);
    }
    blocks.push(footer(view, strings));
    let mut out = String::new();
    for block in &blocks {
        out.push_str(block.trim_end());
        out.push_str("\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

/// The table of contents: each section with its number of posts.
fn contents(view: &View<'_>, strings: &Strings, language: &str) -> String {
    let mut toc = format!("{}\n", strings.contents);
    for section in &view.digest.sections {
        toc.push_str(&format!(
            "- {} ({})\n",
            typeset(&section.category, language),
            section.posts.len()
        ));
    }
    toc
}

/// Why the reader gets this, how to leave, and where to read it online.
fn footer(view: &View<'_>, strings: &Strings) -> String {
    let mut footer = format!("{}\n\n", "-".repeat(WIDTH));
    footer.push_str(&markdown::wrap(
        &fill_placeholders(&strings.footer_why, &[("name", view.name)]),
        WIDTH,
        "",
    ));
    footer.push('\n');
    footer.push_str(&fill_placeholders(
        &strings.text_unsubscribe,
        &[("url", UNSUBSCRIBE_MARK)],
    ));
    if view.preferences {
        footer.push('\n');
        footer.push_str(&fill_placeholders(
            &strings.text_preferences,
            &[("url", PREFERENCES_MARK)],
        ));
    }
    if let Some(page) = &view.archive_page {
        footer.push('\n');
        footer.push_str(&fill_placeholders(
            &strings.text_view_online,
            &[("url", page.as_str())],
        ));
    }
    footer
}

/// One post: its bullet line with the title and its link number, then the date and
/// source, then the excerpt, all indented under the bullet and within [`WIDTH`].
fn post_entry(
    post: &Post,
    strings: &Strings,
    language: &str,
    base_url: &Url,
    excerpt_limit: Option<usize>,
    refs: &mut References,
) -> String {
    let title = typeset(&post.title, language);
    let mut head = format!("* {title}");
    if let Some(url) = post.link.as_ref().or(post.url()) {
        // A no-break space keeps the number with the last word of the title.
        head.push_str(&format!("\u{a0}[{}]", refs.number(url.as_str())));
    }
    let source = post.source.as_deref().map(|s| typeset(s, language));
    let mut meta = strings.post_date(post.date.date_naive());
    if let Some(from) = source_line(&title, source.as_deref(), post.link.as_ref()) {
        meta.push_str(&format!(" · {from}"));
    }
    let mut entry = markdown::wrap(&head, WIDTH, INDENT);
    entry.push('\n');
    entry.push_str(&markdown::wrap_indented(&meta, WIDTH, INDENT));
    let excerpt = match excerpt_limit {
        None => markdown::to_text(
            &clean_text(&post.excerpt),
            base_url,
            refs,
            WIDTH - INDENT.len(),
            language,
        ),
        // Over the size budget: a shortened excerpt, its links dropped (the title's stays).
        Some(limit) => {
            let plain = typeset(&markdown::plain_text(&clean_text(&post.excerpt)), language);
            markdown::wrap(&markdown::shorten(&plain, limit), WIDTH - INDENT.len(), "")
        }
    };
    if !excerpt.is_empty() {
        entry.push_str("\n\n");
        entry.push_str(&indent(&excerpt));
    }
    entry
}

/// Under a bullet.
const INDENT: &str = "  ";

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{INDENT}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` followed by a line of `ch` as long as its longest line.
fn underline(text: &str, ch: char) -> String {
    let width = text
        .lines()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
        .min(WIDTH);
    format!("{}\n{}", text, ch.to_string().repeat(width))
}
