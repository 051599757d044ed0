//! The web archive: one page per week (the digest without subscriber-specific parts), an
//! index of every week (newest first, by year) and an Atom feed of the digests.
//!
//! Output is deterministic: the same posts give the same bytes (dates come from the posts,
//! never from the clock), so the archive can be committed or diffed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atom_syndication::{Entry, Feed, Link, Person, Text};
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

use crate::digest;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::render::{clean_text, Renderer};
use crate::site::Site;
use crate::week::Week;

/// One week of the archive.
struct Issue {
    week: Week,
    words: String,
    subject: String,
    summary: String,
    page: String,
    /// The latest post of the week: the entry's `updated`.
    updated: DateTime<chrono::FixedOffset>,
    posts: usize,
}

/// Write the archive of every complete week into `out`; returns the files written.
pub(crate) fn write(site: &Site, out: &Path, now: DateTime<Utc>) -> Result<Vec<PathBuf>> {
    let tz = site.config.timezone;
    let renderer = Renderer::new(&site.config, site.templates.clone());
    let strings = &site.templates.strings;
    fsutil::create_dir_all(out)?;
    let mut written = Vec::new();
    let mut issues = Vec::new();
    for (week, _) in digest::weeks(&site.posts, tz, now) {
        if !week.is_complete(now, tz) {
            continue;
        }
        let digest = site.digest(week, now);
        let page = renderer.render_page(&digest)?;
        let path = out.join(format!("{week}.html"));
        fsutil::write_public(&path, page.as_bytes())?;
        written.push(path);
        // A week listed by `digest::weeks` has a published post.
        let Some(latest) = digest
            .sections
            .iter()
            .flat_map(|s| &s.posts)
            .map(|p| p.date)
            .max()
        else {
            continue;
        };
        issues.push(Issue {
            week,
            words: strings.week_range(week.monday(), week.sunday()),
            subject: renderer.render(&digest)?.subject,
            summary: renderer.summary(&digest),
            page: renderer.week_page(week).to_string(),
            updated: latest.fixed_offset(),
            posts: digest.post_count(),
        });
    }
    if issues.is_empty() {
        return Err(Error::Usage(
            "no complete week with published posts: nothing to archive".into(),
        ));
    }
    let index = out.join("index.html");
    fsutil::write_public(&index, index_page(site, &issues).into_string().as_bytes())?;
    written.push(index);
    let feed = out.join("feed.xml");
    fsutil::write_public(&feed, &atom_feed(site, &issues)?)?;
    written.push(feed);
    Ok(written)
}

fn index_page(site: &Site, issues: &[Issue]) -> Markup {
    let strings = &site.templates.strings;
    let name = clean_text(&site.config.name);
    let title = crate::text::fill_placeholders(&strings.archive_title, &[("name", &name)]);
    let mut by_year: BTreeMap<i32, Vec<&Issue>> = BTreeMap::new();
    for issue in issues {
        by_year.entry(issue.week.year()).or_default().push(issue);
    }
    html! {
        (DOCTYPE)
        html lang=(site.templates.language) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) }
                link rel="alternate" type="application/atom+xml" href="feed.xml" title=(name);
                style { (maud::PreEscaped(INDEX_CSS)) }
            }
            body {
                main {
                    h1 { (title) }
                    p { a href="feed.xml" { (strings.archive_feed) } }
                    @for (year, issues) in by_year.iter().rev() {
                        section {
                            h2 { (year) }
                            ul {
                                @for issue in issues {
                                    li {
                                        a href=(format!("{}.html", issue.week)) { (issue.words) }
                                        " — " (strings.post_count(issue.posts))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

const INDEX_CSS: &str = "body{margin:0;font-family:Georgia,serif;line-height:1.5;background:#f3f1ec;color:#222}\
main{max-width:600px;margin:0 auto;padding:24px;background:#fff}h1,h2{font-family:Helvetica,Arial,sans-serif;color:#b8432f}\
a{color:#1a5fa8}@media (prefers-color-scheme: dark){body{background:#111;color:#e8e6e3}main{background:#1c1c1c}a{color:#8cbcf0}h1,h2{color:#f08a6c}}";

fn atom_feed(site: &Site, issues: &[Issue]) -> Result<Vec<u8>> {
    let base = site
        .config
        .archive_url
        .clone()
        .unwrap_or_else(|| site.config.base_url.clone());
    let link = |href: String, rel: &str| {
        let mut l = Link::default();
        l.set_href(href);
        l.set_rel(rel);
        l
    };
    let mut author = Person::default();
    author.set_name(clean_text(&site.config.name));
    let mut feed = Feed::default();
    feed.set_title(Text::plain(clean_text(&site.config.name)));
    feed.set_id(
        base.join("feed.xml")
            .map_or_else(|_| base.to_string(), |u| u.to_string()),
    );
    if let Some(updated) = issues.iter().map(|i| i.updated).max() {
        feed.set_updated(updated);
    }
    feed.set_authors(vec![author]);
    feed.set_lang(Some(site.templates.language.clone()));
    feed.set_links(vec![
        link(
            base.join("feed.xml")
                .map(|u| u.to_string())
                .unwrap_or_default(),
            "self",
        ),
        link(base.to_string(), "alternate"),
    ]);
    let entries = issues
        .iter()
        .map(|issue| {
            let mut entry = Entry::default();
            entry.set_id(issue.page.clone());
            entry.set_title(Text::plain(issue.subject.clone()));
            entry.set_updated(issue.updated);
            entry.set_published(Some(issue.updated));
            entry.set_summary(Some(Text::plain(issue.summary.clone())));
            entry.set_links(vec![link(issue.page.clone(), "alternate")]);
            entry
        })
        .collect::<Vec<_>>();
    feed.set_entries(entries);
    feed.write_to(Vec::new())
        .map_err(|e| Error::Feed(e.to_string()))
}
