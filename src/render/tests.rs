use chrono::DateTime;
use std::path::Path;

use super::*;
use crate::digest::{self, Week};
use crate::posts::Post;

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
        excerpt: excerpt.into(),
        draft: false,
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
    };
    let (html, text) = rendered.personalize(&templates, &who);
    (rendered.subject, html, text)
}

#[test]
fn snapshot_of_a_small_english_digest() {
    let (subject, html, text) = personalized("en", &sample_posts());
    assert_eq!(
        subject,
        "Weekly Watch — Week of December 26, 2011 – January 1, 2012"
    );
    insta::assert_snapshot!("digest_en_text", text);
    insta::assert_snapshot!("digest_en_html", html);
}

#[test]
fn snapshot_of_a_small_french_digest_text() {
    let (subject, _, text) = personalized("fr", &sample_posts());
    assert_eq!(
        subject,
        "Weekly Watch — Semaine du 26 décembre 2011 au 1er janvier 2012"
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
    let digest = digest::Digest {
        week: "2011-W52".parse().unwrap(),
        sections: vec![],
        note: None,
    };
    assert!(matches!(renderer.render(&digest), Err(Error::EmptyWeek(_))));
}
