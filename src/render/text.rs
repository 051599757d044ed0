//! The plain-text part: the same content as the HTML, in the same order, wrapped at 72
//! columns, links gathered as numbered references at the end.

use url::Url;

use super::markdown::{self, References};
use super::{clean_text, View, GREETING_MARK, UNSUBSCRIBE_MARK};
use crate::config::fill_placeholders;
use crate::templates::Templates;

pub(super) const WIDTH: usize = 72;

pub(super) fn render(view: &View<'_>, templates: &Templates, base_url: &Url) -> String {
    let strings = &templates.strings;
    let mut refs = References::default();
    let mut out = String::new();
    let mut push = |block: &str| {
        out.push_str(block.trim_end());
        out.push_str("\n\n");
    };

    push(&underline(
        &format!("{}\n{}", view.name, view.week_words),
        '=',
    ));
    push(GREETING_MARK);
    if let Some(note) = &view.digest.note {
        push(&markdown::to_text(
            &clean_text(note),
            base_url,
            &mut refs,
            WIDTH,
        ));
    }
    let mut toc = format!("{}\n", strings.contents);
    for section in &view.digest.sections {
        toc.push_str(&format!(
            "- {} ({})\n",
            clean_text(&section.category),
            section.posts.len()
        ));
    }
    push(&toc);

    for section in &view.digest.sections {
        push(&underline(
            &clean_text(&section.category).to_uppercase(),
            '-',
        ));
        for post in &section.posts {
            let mut title = clean_text(&post.title);
            if let Some(url) = post.url() {
                title.push_str(&format!(" [{}]", refs.number(url.as_str())));
            }
            let source = post.source.as_deref().map(clean_text);
            let mut meta = strings.post_date(post.date.date_naive());
            if let Some(source) = &source {
                meta.push_str(&format!(" · {source}"));
            }
            push(&format!(
                "* {}\n  {}",
                markdown::wrap(&title, WIDTH, "  "),
                markdown::wrap(&meta, WIDTH, "  ")
            ));
            let excerpt = markdown::to_text(&clean_text(&post.excerpt), base_url, &mut refs, WIDTH);
            if !excerpt.is_empty() {
                push(&excerpt);
            }
            if let Some(link) = &post.link {
                let n = refs.number(link.as_str());
                push(&markdown::wrap(
                    &format!("{} [{n}]", strings.read_more(source.as_deref())),
                    WIDTH,
                    "",
                ));
            }
        }
    }

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
    if let Some(page) = &view.archive_page {
        footer.push('\n');
        footer.push_str(&fill_placeholders(
            &strings.text_view_online,
            &[("url", page.as_str())],
        ));
    }
    push(&footer);

    if !refs.is_empty() {
        let mut list = format!("{}\n", strings.links);
        for (n, url) in refs.iter() {
            list.push_str(&format!("[{n}] {url}\n"));
        }
        push(&list);
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
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
