//! `cargo bench`: the stages on their own (issue 5). Each measured stage has a baseline in
//! the same run, so the ratio means something on a noisy shared machine:
//! - loading and grouping 10,000 posts  vs  only reading the 10,000 files;
//! - rendering one digest (Maud + css-inline + text);
//! - one subscriber's message from a prepared variant  vs  building it with lettre's builder.
//! - a reader's token  vs  the same HMAC keyed anew each time.

use std::path::Path;

use chrono::{DateTime, Utc};
use digestif::config::Config;
use digestif::digest;
use digestif::mail::{self, Prepared};
use digestif::render::Renderer;
use digestif::sources::{self, ParseContext};
use digestif::templates::Templates;
use digestif::week::Week;
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

/// 10,000 posts of one dialect spread over about four years, written once per process,
/// each in its generator's site with that site's config (so its URL rules are read):
/// our own TOML, Zola (`content/blog`, TOML with taxonomies, date in the file name), Hugo
/// (`content/posts`, YAML, quoted dates, `[permalinks]`) and Jekyll
/// (`_posts/YYYY-MM-DD-slug.markdown`, `permalink: pretty`).
fn dialect_dir(dialect: &'static str) -> &'static Path {
    static DIRS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<&'static str, &'static tempfile::TempDir>>,
    > = std::sync::OnceLock::new();
    let dirs = DIRS.get_or_init(Default::default);
    let mut dirs = dirs.lock().unwrap();
    let dir = dirs.entry(dialect).or_insert_with(|| {
        let dir: &'static tempfile::TempDir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        let posts = dir.path().join(posts_folder(dialect));
        std::fs::create_dir_all(&posts).unwrap();
        let site_config = match dialect {
            "zola" => Some(("config.toml", "base_url = \"https://veille.example.org\"\ntitle = \"Veille\"\n[slugify]\npaths = \"safe\"\n")),
            "hugo" => Some(("hugo.toml", "baseURL = \"https://veille.example.org/\"\ntitle = \"Veille\"\n[permalinks]\nposts = \"/:year/:month/:day/:slug/\"\n")),
            "jekyll" => Some(("_config.yml", "title: Veille\nurl: https://veille.example.org\npermalink: pretty\ntimezone: Europe/Paris\n")),
            _ => None,
        };
        if let Some((name, text)) = site_config {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        for i in 0..10_000u32 {
            let day = chrono::NaiveDate::from_ymd_opt(2008, 1, 1).unwrap()
                + chrono::Days::new(u64::from(i / 7));
            let hour = i % 24;
            let category = CATEGORIES[i as usize % CATEGORIES.len()];
            let body = format!(
                "Premier paragraphe du billet {i}, avec un [lien](/a/{i}) et du *texte* en plus.\n\n\
                 Second paragraphe, qui n'entre pas dans l'extrait.\n"
            );
            let (name, text) = match dialect {
                "digestif" => (
                    format!("{i:05}.md"),
                    format!("+++\ntitle = \"Billet numéro {i} sur les réseaux sociaux\"\ndate = {day}T{hour:02}:30:00+01:00\ncategory = \"{category}\"\ntags = [\"a\", \"b\"]\nsource = \"Source\"\nlink = \"https://example.org/{i}\"\n+++\n{body}"),
                ),
                "zola" => (
                    format!("{day}-billet-{i:05}.md"),
                    format!("+++\ntitle = \"Billet numéro {i}\"\ndescription = \"Résumé {i}\"\n[taxonomies]\ncategories = [\"{category}\"]\ntags = [\"a\"]\n[extra]\nmath = true\n+++\n{body}"),
                ),
                "hugo" => (
                    format!("billet-{i:05}.md"),
                    format!("---\ntitle: \"Billet numéro {i}\"\ndate: \"{day}T{hour}:30:00+01:00\"\ncategories: [\"{category}\"]\ntags: [a, b]\ndraft: false\ntoc: true\n---\n{body}"),
                ),
                _ => (
                    format!("{day}-billet-{i:05}.markdown"),
                    format!("---\nlayout: post\ntitle: Billet numéro {i}\ndate: {day} {hour:02}:30:00 +0100\ncategories: {}\n---\n{body}", category.replace(' ', "-")),
                ),
            };
            std::fs::write(posts.join(name), text).unwrap();
        }
        dir
    });
    Box::leak(dir.path().join(posts_folder(dialect)).into_boxed_path())
}

/// Where each generator keeps its posts, under its site's root.
fn posts_folder(dialect: &str) -> &'static str {
    match dialect {
        "jekyll" => "_posts",
        "hugo" => "content/posts",
        "zola" => "content/blog",
        _ => "",
    }
}

fn posts_dir() -> &'static Path {
    dialect_dir("digestif")
}

fn context(config: &Config) -> ParseContext {
    ParseContext::new(
        config.timezone,
        &config.default_category,
        config.base_url.clone(),
    )
}

#[divan::bench(sample_count = 10)]
fn baseline_read_10k_post_files() -> usize {
    std::fs::read_dir(posts_dir())
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap().len())
        .sum()
}

/// Loading and grouping 10,000 posts of each dialect (the target: under 1 s each), the
/// site's config read as `send` reads it (its URL rules are applied to every post).
#[divan::bench(sample_count = 10, args = ["digestif", "zola", "hugo", "jekyll"])]
fn load_and_group_10k_posts(dialect: &'static str) -> usize {
    let posts_dir = dialect_dir(dialect);
    let text = CONFIG.replace(
        "[sender]",
        &format!(
            "posts_dir = {:?}\n[sender]",
            posts_dir.display().to_string()
        ),
    );
    let config = Config::parse(Path::new("bench.toml"), &text).unwrap();
    let ctx = digestif::site::parse_context(&config);
    assert_eq!(ctx.generator.is_some(), dialect != "digestif");
    let loaded = sources::load(posts_dir, &ctx).unwrap();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems.first());
    assert_eq!(loaded.posts.len(), 10_000);
    let weeks = digest::weeks(&loaded.posts, config.timezone, now());
    let latest = weeks.first().unwrap().0;
    digest::group(
        &loaded.posts,
        latest,
        config.timezone,
        now(),
        &config.categories,
    )
    .post_count()
}

fn sample_week() -> (Config, Vec<sources::Post>, Week) {
    let config = config();
    let posts = sources::load(posts_dir(), &context(&config)).unwrap().posts;
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
            ("https://e.org/u?t=1", ""),
        );
        mail::build(mail::Envelope {
            sender: &config.sender,
            to: &to,
            subject: &rendered.subject,
            text,
            html,
            message_id: "<a@example.org>".into(),
            list_unsubscribe: Some("<https://e.org/u?t=1>"),
            one_click: true,
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
                preferences_link: "",
                list_unsubscribe: Some("<https://e.org/u?t=1>"),
                one_click: true,
                date: Utc::now(),
            })
            .len()
    });
}

const SECRET: &[u8] = b"a-bench-secret-of-some-length";

/// A reader's token as it was made before the keyed state was kept: the HMAC keyed anew
/// for every token (two more SHA-256 blocks).
#[divan::bench]
fn baseline_token_hmac_keyed_each_time(bencher: Bencher) {
    use hmac::{Hmac, Mac};
    bencher.bench_local(|| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(b"digestif-reader-v2\0");
        mac.update(divan::black_box(b"camille.durand@example.org"));
        mac.finalize().into_bytes()[0]
    });
}

/// A reader's token (one per message sent, one per reader when the reader index is built).
#[divan::bench]
fn reader_token(bencher: Bencher) {
    let secret = digestif::audience::token::Secret::new(SECRET.to_vec()).unwrap();
    bencher.bench_local(|| secret.token(divan::black_box("camille.durand@example.org")));
}
