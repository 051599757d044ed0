//! `cargo bench`: the stages on their own (issue 5). Each measured stage has a baseline in
//! the same run, so the ratio means something on a noisy shared machine:
//! - loading and grouping 10,000 posts  vs  only reading the 10,000 files;
//! - rendering one digest (Maud + css-inline + text);
//! - one subscriber's message from a prepared variant  vs  building it with lettre's builder.

use std::path::Path;

use chrono::{DateTime, Utc};
use digestif::config::Config;
use digestif::digest::{self, Week};
use digestif::mail::{self, Prepared};
use digestif::posts::{self, ParseContext};
use digestif::render::Renderer;
use digestif::templates::Templates;
use divan::Bencher;

const CONFIG: &str = r#"
[newsletter]
name = "Veille Réseaux"
base_url = "https://veille.example.org/"
language = "fr"
timezone = "Europe/Paris"
categories = ["Relation client", "Marketing"]
[sender]
from = "Veille Réseaux <veille@example.org>"
unsubscribe_mailto = "desabonnement@example.org"
"#;

const CATEGORIES: [&str; 5] = [
    "Relation client",
    "Marketing",
    "Outils",
    "Réseaux sociaux",
    "Études",
];

fn main() {
    divan::main();
}

fn config() -> Config {
    Config::parse(Path::new("bench.toml"), CONFIG).unwrap()
}

fn now() -> DateTime<Utc> {
    "2012-01-09T12:00:00Z".parse().unwrap()
}

/// 10,000 posts spread over about four years, written once per process.
fn posts_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..10_000u32 {
            let day = chrono::NaiveDate::from_ymd_opt(2008, 1, 1).unwrap() + chrono::Days::new(u64::from(i / 7));
            let text = format!(
                "+++\ntitle = \"Billet numéro {i} sur les réseaux sociaux\"\ndate = {day}T{:02}:30:00+01:00\n\
                 category = \"{}\"\nsource = \"Source {i}\"\nlink = \"https://news.example.com/{i}\"\n+++\n\
                 Premier paragraphe du billet {i}, avec un [lien](/a/{i}) et du *texte* en plus.\n\n\
                 Second paragraphe, qui n'entre pas dans l'extrait.\n",
                i % 24,
                CATEGORIES[i as usize % CATEGORIES.len()]
            );
            std::fs::write(dir.path().join(format!("{i:05}.md")), text).unwrap();
        }
        dir
    })
    .path()
}

fn context(config: &Config) -> ParseContext {
    ParseContext {
        timezone: config.timezone,
        default_category: config.default_category.clone(),
        base_url: config.base_url.clone(),
    }
}

#[divan::bench(sample_count = 10)]
fn baseline_read_10k_post_files() -> usize {
    std::fs::read_dir(posts_dir())
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap().len())
        .sum()
}

#[divan::bench(sample_count = 10)]
fn load_and_group_10k_posts() -> usize {
    let config = config();
    let (posts, problems) = posts::load(posts_dir(), &context(&config)).unwrap();
    assert!(problems.is_empty());
    let weeks = digest::weeks(&posts, config.timezone, now());
    let latest = weeks.first().unwrap().0;
    digest::group(&posts, latest, config.timezone, now(), &config.categories).post_count()
}

fn sample_week() -> (Config, Vec<posts::Post>, Week) {
    let config = config();
    let (posts, _) = posts::load(posts_dir(), &context(&config)).unwrap();
    let week = digest::weeks(&posts, config.timezone, now())
        .first()
        .unwrap()
        .0;
    (config, posts, week)
}

#[divan::bench]
fn render_one_digest(bencher: Bencher) {
    let (config, posts, week) = sample_week();
    let renderer = Renderer::new(&config, Templates::embedded("fr").unwrap());
    let digest = digest::group(&posts, week, config.timezone, now(), &config.categories);
    bencher.bench_local(|| renderer.render(&digest).unwrap().html.len());
}

fn rendered() -> (Config, digestif::render::Rendered) {
    let (config, posts, week) = sample_week();
    let renderer = Renderer::new(&config, Templates::embedded("fr").unwrap());
    let digest = digest::group(&posts, week, config.timezone, now(), &config.categories);
    let rendered = renderer.render(&digest).unwrap();
    (config, rendered)
}

#[divan::bench]
fn baseline_message_with_lettre_builder(bencher: Bencher) {
    let (config, rendered) = rendered();
    let to: lettre::message::Mailbox = "Camille Durand <camille@example.org>".parse().unwrap();
    bencher.bench_local(|| {
        let (html, text) = digestif::render::fill_markers(
            Some(&rendered.html),
            &rendered.text,
            "Bonjour Camille,",
            "https://e.org/u?t=1",
        );
        mail::build(mail::Envelope {
            sender: &config.sender,
            to: &to,
            subject: &rendered.subject,
            text,
            html,
            message_id: "<a@example.org>".into(),
            unsubscribe_url: None,
        })
        .unwrap()
        .formatted()
        .len()
    });
}

#[divan::bench]
fn message_from_prepared_variant(bencher: Bencher) {
    let (config, rendered) = rendered();
    let prepared = Prepared::new(
        &config.sender,
        &rendered.subject,
        &rendered.text,
        Some(&rendered.html),
    );
    let to: lettre::message::Mailbox = "Camille Durand <camille@example.org>".parse().unwrap();
    bencher.bench_local(|| {
        prepared
            .message(&mail::Personal {
                to: &to,
                message_id: "<a@example.org>",
                greeting: "Bonjour Camille,",
                unsubscribe_link: "https://e.org/u?t=1",
                unsubscribe_https: None,
            })
            .len()
    });
}
