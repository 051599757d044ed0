use chrono::DateTime;
use std::path::Path;

use super::*;
use crate::digest;
use crate::sources::Post;
use crate::week::Week;

fn config(language: &str) -> Config {
    let src = format!(
        r#"
[newsletter]
name = "Weekly Watch"
base_url = "https://watch.example.org/"
language = "{language}"
timezone = "Europe/Paris"
categories = ["Customers", "Marketing"]
[sender]
from = "Weekly Watch <watch@example.org>"
"#
    );
    Config::parse(Path::new("digestif.toml"), &src).unwrap()
}

fn post(title: &str, date: &str, category: &str, excerpt: &str) -> Post {
    Post {
        path: "p.md".into(),
        title: title.into(),
        date: DateTime::parse_from_rfc3339(date)
            .unwrap()
            .with_timezone(&chrono_tz::Europe::Paris),
        category: category.into(),
        tags: vec![],
        source: Some("Example Source".into()),
        link: Some(Url::parse("https://news.example.com/a?x=1&y=2").unwrap()),
        permalink: None,
        excerpt: excerpt.into(),
        draft: false,
        expires: None,
        language: None,
    }
}

fn sample_posts() -> Vec<Post> {
    vec![
        post(
            "Brands ignore half of public complaints",
            "2011-12-27T09:30:00+01:00",
            "Customers",
            "A study finds that *half* of public complaints get [no answer](/study).",
        ),
        post(
            "Short videos win",
            "2011-12-28T18:00:00+01:00",
            "Marketing",
            "Three seconds decide.",
        ),
        post(
            "New year, new tools",
            "2012-01-01T10:00:00+01:00",
            "Tools",
            "",
        ),
    ]
}

fn render(language: &str, posts: &[Post]) -> (Rendered, Templates) {
    let config = config(language);
    let templates = Templates::embedded(language).unwrap();
    let now = "2012-01-09T00:00:00Z".parse().unwrap();
    let week: Week = "2011-W52".parse().unwrap();
    let digest = digest::group(posts, week, config.timezone, now, &config.categories);
    let renderer = Renderer::new(&config, templates.clone());
    (renderer.render(&digest).unwrap(), templates)
}

fn personalized(language: &str, posts: &[Post]) -> (String, String, String) {
    let (rendered, templates) = render(language, posts);
    let who = Personal {
        name: Some("Ada"),
        unsubscribe_url: "https://watch.example.org/u?t=abc&x=1",
        preferences_url: "",
    };
    let (html, text) = rendered.personalize(&templates, &who);
    (rendered.subject, html, text)
}

#[test]
fn snapshot_of_a_small_english_digest() {
    let (subject, html, text) = personalized("en", &sample_posts());
    assert_eq!(
        subject,
        "Weekly Watch — Brands ignore half of public complaints and 2 more posts"
    );
    insta::assert_snapshot!("digest_en_text", text);
    insta::assert_snapshot!("digest_en_html", one_tag_per_line(&html));
}

/// The HTML with a line break before each tag, so a snapshot diff points at the element
/// that changed instead of at a 3,000-character line.
fn one_tag_per_line(html: &str) -> String {
    html.replace('<', "\n<").trim_start().to_string()
}

#[test]
fn snapshot_of_a_small_french_digest_text() {
    let (subject, _, text) = personalized("fr", &sample_posts());
    assert_eq!(
        subject,
        "Weekly Watch — Brands ignore half of public complaints et 2 autres articles"
    );
    insta::assert_snapshot!("digest_fr_text", text);
}

#[test]
fn hostile_title_is_escaped_in_html_and_intact_in_text() {
    let title = r#"<script>alert(1)</script> & "quotes""#;
    let (_, html, text) = personalized(
        "en",
        &[post(title, "2011-12-27T09:30:00+01:00", "Customers", "x")],
    );
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; \"quotes\""),
        "{html}"
    );
    assert!(text.contains(title), "{text}");
}

#[test]
fn markers_cannot_be_forged_by_post_content() {
    let evil = format!("before{UNSUBSCRIBE_MARK}after{GREETING_MARK}");
    let (_, html, text) = personalized(
        "en",
        &[post(&evil, "2011-12-27T09:30:00+01:00", "Customers", &evil)],
    );
    assert!(html.contains("beforeunsubscribeaftergreeting"));
    assert!(text.contains("beforeunsubscribeaftergreeting"));
    assert!(!html.contains('\u{E000}') && !text.contains('\u{E000}'));
}

#[test]
fn styles_are_inlined_and_media_queries_kept() {
    let (_, html, _) = personalized("en", &sample_posts());
    assert!(html.contains("<h1 style="), "{html}");
    assert!(html.contains("prefers-color-scheme: dark"));
    assert!(html.contains("role=\"presentation\""));
    assert!(html.contains("<html lang=\"en\">"));
}

#[test]
fn sections_follow_configured_order_and_text_matches_html_order() {
    let (_, html, text) = personalized("en", &sample_posts());
    let pos = |hay: &str, needle: &str| {
        hay.find(needle)
            .unwrap_or_else(|| panic!("{needle} missing"))
    };
    assert!(pos(&html, ">Customers</h2>") < pos(&html, ">Marketing</h2>"));
    assert!(pos(&html, ">Marketing</h2>") < pos(&html, ">Tools</h2>"));
    assert!(
        pos(&text, "CUSTOMERS") < pos(&text, "MARKETING")
            && pos(&text, "MARKETING") < pos(&text, "TOOLS")
    );
    assert!(
        text.lines()
            .all(|l| l.chars().count() <= 72 || l.starts_with('[')),
        "{text}"
    );
}

#[test]
fn empty_digest_is_an_error() {
    let config = config("en");
    let renderer = Renderer::new(&config, Templates::embedded("en").unwrap());
    let digest = Digest {
        week: "2011-W52".parse().unwrap(),
        sections: vec![],
        note: None,
    };
    assert!(matches!(renderer.render(&digest), Err(Error::EmptyWeek(_))));
}

/// The HTML of the small English digest, personalised.
fn email_html() -> String {
    personalized("en", &sample_posts()).1
}

#[test]
fn mail_client_rules_hold() {
    let html = email_html();
    // The only <style> block holds media queries, and is small.
    let style = &html[html.find("<style>").unwrap() + 7..html.find("</style>").unwrap()];
    assert!(style.len() < 16 * 1024);
    let mut rest = strip_css_comments(style);
    while let Some(at) = rest.find(|c: char| !c.is_whitespace()) {
        rest = &rest[at..];
        assert!(
            rest.starts_with("@media"),
            "only media queries in <style>: {rest}"
        );
        rest = &rest[matching_brace(rest) + 1..];
    }
    for banned in [
        "<script",
        "<form",
        "<svg",
        "<link",
        "@font-face",
        "@import",
        "<iframe",
    ] {
        assert!(
            !html.to_lowercase().contains(banned),
            "{banned} in the email"
        );
    }
    // Layout tables are presentational; images carry alt; language and directions set.
    let tags = |name: &str| -> Vec<String> {
        html.match_indices(&format!("<{name}"))
            .map(|(i, _)| html[i..i + html[i..].find('>').unwrap()].to_string())
            .collect()
    };
    // Two tables, and the fixed-width one only Outlook for Windows sees.
    assert_eq!(tags("table").len(), 3);
    assert!(html.contains("<!--[if mso]><table role=\"presentation\" width=\"600\""));
    // Contents are a plain list: in-message anchors fail in most mail clients.
    assert!(!html.contains("href=\"#"));
    assert!(tags("table")
        .iter()
        .all(|t| t.contains("role=\"presentation\"")));
    assert!(tags("img").iter().all(|t| t.contains(" alt=")));
    assert!(html.starts_with("<!DOCTYPE html><html lang=\"en\">"));
    assert_eq!(html.matches("<h3 dir=\"auto\"").count(), 3);
    // Headings in order: one h1, then h2 sections with h3 posts.
    let headings: Vec<&str> = html
        .match_indices("<h")
        .filter_map(|(i, _)| html.get(i + 2..i + 3))
        .filter(|c| "123456".contains(*c))
        .collect();
    assert_eq!(headings, ["1", "2", "3", "2", "3", "2", "3"]);
    // Styles are inline on elements.
    assert!(html.contains("<h1 style=") && html.contains("<p class=\"meta\" style="));
    // A hidden preheader gives the week's titles, then padding so the inbox snippet
    // stops there; hidden by display, not by a low-contrast colour (SpamAssassin's
    // HTML_FONT_LOW_CONTRAST).
    let pre = html.find("class=\"preheader\"").unwrap();
    let style_end = pre + html[pre..].find('>').unwrap();
    let style = &html[pre..style_end];
    assert!(style.contains("display: none"), "{style}");
    assert!(
        !style.contains("color") && !style.contains("opacity"),
        "{style}"
    );
    let end = pre + html[pre..].find("</div>").unwrap();
    let preheader = &html[style_end + 1..end];
    assert!(
        preheader.starts_with("Brands ignore half of public complaints · "),
        "{preheader}"
    );
    assert!(preheader.ends_with("\u{34f}\u{200c}&nbsp;"), "{preheader}");
}

fn strip_css_comments(css: &str) -> &str {
    // Our media.css starts with one comment; enough for this check.
    match css.find("*/") {
        Some(end) if css.trim_start().starts_with("/*") => &css[end + 2..],
        _ => css,
    }
}

fn matching_brace(css: &str) -> usize {
    let mut depth = 0;
    for (i, c) in css.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced CSS");
}

#[test]
fn a_very_long_text_part_is_cut_with_a_link_to_the_week() {
    // 400 posts with long titles: even with short excerpts they do not fit.
    let title = "Un titre vraiment très long, ".repeat(8);
    let posts: Vec<Post> = (0..400)
        .map(|i| {
            let mut p = post(
                &format!("{i} {title}"),
                "2011-12-27T09:30:00+01:00",
                ["Customers", "Marketing", "Tools"][i % 3],
                "Court.",
            );
            p.link = Some(Url::parse(&format!("https://news.example.com/post/{i}")).unwrap());
            p
        })
        .collect();
    let (rendered, _) = render("fr", &posts);
    let text = &rendered.text;
    let encoded = quoted_printable::encode_to_str(text.replace('\n', "\r\n"));
    assert!(encoded.len() <= HTML_BUDGET, "{} bytes", encoded.len());
    assert!(
        text.contains("autres articles sur le site\u{a0}["),
        "{}",
        &text[text.len() - 600..]
    );
    assert!(text.contains("https://watch.example.org/2011-W52.html\n"));
    // Cut whole: the footer and the unsubscribe line are still there.
    assert!(text.contains("Pour vous désabonner"));
    assert!(text
        .lines()
        .all(|l| l.chars().count() <= 72 || l.contains("https://")));
}

#[test]
fn a_huge_week_stays_under_the_clip_budget() {
    let long = "Un paragraphe très long sur les réseaux sociaux et la relation client, répété. "
        .repeat(40);
    let posts: Vec<Post> = (0..200)
        .map(|i| {
            let mut p = post(
                &format!(
                    "Billet {i} : un titre plutôt long pour voir ce que donne la mise en page"
                ),
                "2011-12-27T09:30:00+01:00",
                ["Customers", "Marketing", "Tools"][i % 3],
                &format!("{long} [lien](https://example.com/{i})"),
            );
            p.link = Some(Url::parse(&format!("https://news.example.com/post/{i}")).unwrap());
            p
        })
        .collect();
    let (rendered, templates) = render("fr", &posts);
    let who = Personal {
        name: Some("Ada"),
        unsubscribe_url: "https://watch.example.org/u?t=abc",
        preferences_url: "",
    };
    let (html, text) = rendered.personalize(&templates, &who);
    let encoded = quoted_printable::encode_to_str(html.replace('\n', "\r\n"));
    assert!(
        encoded.len() <= HTML_BUDGET,
        "{} bytes encoded",
        encoded.len()
    );
    assert!(
        html.contains("Se désabonner") && html.contains("https://watch.example.org/u?t=abc"),
        "footer kept"
    );
    assert!(
        html.contains("autres articles sur le site"),
        "the rest is summed up"
    );
    assert!(
        html.contains("https://watch.example.org/2011-W52.html"),
        "linked to the week page"
    );
    // The text part keeps to the same budget: here by shortening excerpts, so every
    // post and its link still fit.
    let text_encoded = quoted_printable::encode_to_str(text.replace('\n', "\r\n"));
    assert!(
        text_encoded.len() <= HTML_BUDGET,
        "text: {} bytes encoded",
        text_encoded.len()
    );
    assert!(
        text.contains("répété. Un paragraphe"),
        "excerpts shortened, not dropped"
    );
    assert!(text.contains('…'));
    for i in 0..200 {
        assert!(
            text.contains(&format!("https://news.example.com/post/{i}\n")),
            "text lists post {i}"
        );
    }
    // A normal week is left whole.
    let (_, small, _) = personalized("fr", &sample_posts());
    assert!(!small.contains("autres articles sur le site") && small.contains("half"));
}

#[test]
fn the_editors_note_opens_both_parts() {
    let config = config("en");
    let templates = Templates::embedded("en").unwrap();
    let posts = sample_posts();
    let now = "2012-01-09T00:00:00Z".parse().unwrap();
    let mut digest = digest::group(
        &posts,
        "2011-W52".parse().unwrap(),
        config.timezone,
        now,
        &config.categories,
    );
    digest.note = Some("A word from the **editor**, see [our site](/about).".into());
    let rendered = Renderer::new(&config, templates).render(&digest).unwrap();
    let note = rendered.html.find("<strong").unwrap();
    assert!(note < rendered.html.find("In this issue").unwrap());
    assert!(rendered
        .html
        .contains("href=\"https://watch.example.org/about\""));
    let text_note = rendered
        .text
        .find("A word from the editor, see our site\u{a0}[")
        .unwrap();
    assert!(text_note < rendered.text.find("In this issue").unwrap());
}

#[test]
fn web_pages_have_no_subscriber_parts() {
    let config = config("en");
    let posts = sample_posts();
    let now = "2012-01-09T00:00:00Z".parse().unwrap();
    let digest = digest::group(
        &posts,
        "2011-W52".parse().unwrap(),
        config.timezone,
        now,
        &config.categories,
    );
    let page = Renderer::new(&config, Templates::embedded("en").unwrap())
        .render_page(&digest)
        .unwrap();
    assert!(
        !page.contains(GREETING_MARK)
            && !page.contains(UNSUBSCRIBE_MARK)
            && !page.contains("Unsubscribe")
    );
    assert!(page.contains("href=\"index.html\"") && page.contains("href=\"feed.xml\""));
}

#[test]
fn greeting_uses_a_clean_name_or_the_anonymous_wording() {
    let g = |name| greeting("Hello {name},", "Hello,", name);
    assert_eq!(g(Some(" Ada ")), "Hello Ada,");
    assert_eq!(g(Some("Ada\u{E000}\r\n")), "Hello Ada,");
    assert_eq!(g(Some("  ")), "Hello,");
    assert_eq!(g(Some("\u{E000}")), "Hello,");
    assert_eq!(g(None), "Hello,");
}
