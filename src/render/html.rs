//! The HTML part: table layout in Maud, then the stylesheet inlined with css-inline.

use std::borrow::Cow;

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::markdown::HtmlCleaner;
use super::{clean_text, typeset, Mode, View, GREETING_MARK, PREFERENCES_MARK, UNSUBSCRIBE_MARK};
use crate::error::{Error, Result};
use crate::sources::Post;
use crate::templates::Templates;

/// After the preheader: invisible characters, so the inbox snippet stops at the titles
/// instead of running on into the header and greeting.
const PREHEADER_PADDING: &str = "&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;";

pub(super) fn render(
    view: &View<'_>,
    templates: &Templates,
    cleaner: &HtmlCleaner,
) -> Result<String> {
    let markup = document(view, templates, cleaner);
    let inliner = css_inline::CSSInliner::options()
        .inline_style_tags(false)
        .keep_style_tags(true)
        .load_remote_stylesheets(false)
        .extra_css(Some(Cow::Borrowed(&templates.style_css)))
        .build();
    inliner
        .inline(&markup.into_string())
        .map_err(|e| Error::Template {
            file: templates.style_file.clone(),
            message: format!("cannot inline the stylesheet: {e}"),
        })
}

fn document(view: &View<'_>, templates: &Templates, cleaner: &HtmlCleaner) -> Markup {
    let strings = &templates.strings;
    let email = view.layout.mode == Mode::Email;
    let shown = shown_sections(view);
    let hidden =
        view.digest.post_count() - shown.iter().map(|(_, posts)| posts.len()).sum::<usize>();
    html! {
        (DOCTYPE)
        html lang=(templates.language) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                meta name="supported-color-schemes" content="light dark";
                title { (view.subject) }
                style { (PreEscaped(&templates.media_css)) }
            }
            body {
                div.preheader { (view.preheader) (PreEscaped(PREHEADER_PADDING)) }
                // A landmark for screen readers: the message itself, named after the newsletter.
                div role="article" aria-roledescription="email" aria-label=(view.name) lang=(templates.language) {
                    table.wrapper role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" {
                        tr { td align="center" {
                            // Word's engine (Outlook for Windows) ignores max-width: a fixed
                            // 600 px table only it sees holds the column.
                            (PreEscaped(MSO_OPEN))
                            table.container role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" {
                                tr { td.header {
                                    h1 { (view.name) }
                                    p.week { (view.week_words) }
                                } }
                                @if email {
                                    tr { td.greeting { p { (PreEscaped(GREETING_MARK)) } } }
                                }
                                @if let Some(note) = &view.digest.note {
                                    tr { td.note { (PreEscaped(cleaner.to_html(&clean_text(note)))) } }
                                }
                                tr { td.toc { (contents(view, templates)) } }
                                @for (i, posts) in &shown {
                                    tr { td.section {
                                        h2 dir="auto" {
                                            (typeset(&view.digest.sections[*i].category, &templates.language))
                                        }
                                        @for post in posts {
                                            (post_block(post, templates, cleaner, view.layout.excerpt_limit))
                                        }
                                    } }
                                }
                                @if hidden > 0 {
                                    tr { td.section {
                                        p.more-posts { a href=(view.week_page.as_str()) { (strings.more_posts(hidden)) "\u{a0}→" } }
                                    } }
                                }
                                tr { td.footer { (footer(view, strings, email)) } }
                            }
                            (PreEscaped(MSO_CLOSE))
                        } }
                    }
                }
            }
        }
    }
}

/// Why the reader gets this and their links (an email), or the archive's links (a page).
fn footer(view: &View<'_>, strings: &crate::templates::Strings, email: bool) -> Markup {
    html! {
        @if email {
            p { (fill(&strings.footer_why, view.name)) }
            p {
                a href=(PreEscaped(UNSUBSCRIBE_MARK)) { (strings.unsubscribe) }
                @if view.preferences {
                    " · "
                    a href=(PreEscaped(PREFERENCES_MARK)) { (strings.preferences) }
                }
                @if let Some(page) = &view.archive_page {
                    " · "
                    a href=(page.as_str()) { (strings.view_online) }
                }
            }
        } @else {
            p {
                a href="index.html" { (strings.archive_all) }
                " · "
                a href="feed.xml" { (strings.archive_feed) }
            }
        }
    }
}

const MSO_OPEN: &str = "<!--[if mso]><table role=\"presentation\" width=\"600\" align=\"center\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\"><tr><td><![endif]-->";
const MSO_CLOSE: &str = "<!--[if mso]></td></tr></table><![endif]-->";

/// The sections and posts the layout shows (index of the section, its shown posts).
fn shown_sections<'a>(view: &'a View<'a>) -> Vec<(usize, Vec<&'a Post>)> {
    let mut left = view.layout.shown;
    let mut out = Vec::new();
    for (i, section) in view.digest.sections.iter().enumerate() {
        let take = left.min(section.posts.len());
        left -= take;
        if take > 0 {
            out.push((i, section.posts[..take].to_vec()));
        }
    }
    out
}

fn fill(template: &str, name: &str) -> String {
    crate::text::fill_placeholders(template, &[("name", name)])
}

fn contents(view: &View<'_>, templates: &Templates) -> Markup {
    html! {
        p.toc-title { (templates.strings.contents) }
        ul {
            @for section in &view.digest.sections {
                // A plain list: in-message anchors do not work in Gmail's web client,
                // Outlook for Windows, Yahoo or the mobile apps.
                li { (typeset(&section.category, &templates.language)) " (" (section.posts.len()) ")" }
            }
        }
    }
}

fn post_block(
    post: &Post,
    templates: &Templates,
    cleaner: &HtmlCleaner,
    excerpt_limit: Option<usize>,
) -> Markup {
    let strings = &templates.strings;
    let language = &templates.language;
    let title = typeset(&post.title, language);
    let source = post.source.as_deref().map(|s| typeset(s, language));
    let excerpt = match excerpt_limit {
        None => cleaner.to_html(&clean_text(&post.excerpt)),
        Some(limit) => {
            let plain = typeset(
                &super::markdown::plain_text(&clean_text(&post.excerpt)),
                language,
            );
            let short = super::markdown::shorten(&plain, limit);
            if short.is_empty() {
                String::new()
            } else {
                html! { p { (short) } }.into_string()
            }
        }
    };
    // One link per post, on its title: to the article itself when the post links one.
    let target = post.link.as_ref().or(post.url());
    html! {
        div.post lang=[super::post_lang(post, language)] {
            h3 dir="auto" {
                @if let Some(url) = target { a href=(url.as_str()) { (title) } } @else { (title) }
            }
            p.meta {
                (strings.post_date(post.date.date_naive()))
                @if let Some(from) = super::source_line(&title, source.as_deref(), post.link.as_ref()) {
                    " · " (from)
                }
            }
            @if !excerpt.trim().is_empty() {
                div.excerpt dir="auto" { (PreEscaped(excerpt)) }
            }
        }
    }
}
