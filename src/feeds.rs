//! Feeds as a source of posts: RSS 2.0, Atom and JSON Feed (feed-rs), fetched over HTTP
//! (ureq) or read from a file. Every item seen is kept in `state_dir/feeds.sqlite`, so a
//! post stays in its week after it drops out of the feed's window; fetching sends the
//! last `ETag` / `Last-Modified` back, so an unchanged feed costs a 304.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use url::Url;

use crate::error::{Error, Result};
use crate::posts::{self, Post};
use crate::store::{self, Access, Schema, Store as Which};

/// The largest feed read, so a misbehaving server cannot fill the memory.
const MAX_FEED_BYTES: u64 = 32 * 1024 * 1024;

/// Where a feed comes from, as the config names it.
#[derive(Debug, Clone)]
pub enum Source {
    Url(Url),
    File(PathBuf),
}

impl Source {
    /// `https://…` / `http://…` is fetched; anything else is a file relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Source {
        match Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Source::Url(url),
            _ => Source::File(base.join(text)),
        }
    }

    /// The key items are kept under.
    pub fn key(&self) -> String {
        match self {
            Source::Url(url) => url.to_string(),
            Source::File(path) => path.display().to_string(),
        }
    }
}

/// How a run treats the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// Fetch every feed; one that cannot be fetched is an error (`send`).
    Strict,
    /// Fetch; a feed that cannot be fetched is a warning if items of it are kept
    /// (`preview`, `weeks`, `check`).
    Lenient,
    /// `--offline`: the kept items only.
    Offline,
}

/// One feed item as it is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    pub title: String,
    pub date: DateTime<Utc>,
    pub link: Option<String>,
    pub categories: Vec<String>,
    /// HTML or text, as the feed gave it.
    pub summary: String,
}

/// The items kept for every feed, and what happened while fetching.
#[derive(Debug, Default)]
pub struct Gathered {
    pub posts: Vec<Post>,
    pub warnings: Vec<String>,
}

/// Fetch (as `mode` says) and read every feed into posts.
pub fn gather(
    sources: &[Source],
    state_dir: &Path,
    mode: Fetch,
    timeout: Duration,
    ctx: &posts::ParseContext,
) -> Result<Gathered> {
    let mut gathered = Gathered::default();
    if sources.is_empty() {
        return Ok(gathered);
    }
    let store = Store::open(state_dir)?;
    for source in sources {
        let key = source.key();
        if mode != Fetch::Offline {
            if let Err(why) = refresh(&store, source, timeout) {
                let kept = store.count(&key)?;
                if mode == Fetch::Strict || kept == 0 {
                    return Err(Error::Usage(format!(
                        "feed {key}: {why}{}",
                        if kept == 0 {
                            " (and no items of it are kept from an earlier run)".to_string()
                        } else {
                            format!(
                                "; nothing is sent from {kept} kept items while the feed may \
                                 hold newer ones (run again, or use --offline to send what is kept)"
                            )
                        }
                    )));
                }
                gathered.warnings.push(format!(
                    "feed {key}: {why}; using the {kept} items kept from earlier runs"
                ));
            }
        }
        let language = store.language(&key)?;
        for item in store.items(&key)? {
            gathered
                .posts
                .push(to_post(&key, item, language.as_deref(), ctx));
        }
    }
    Ok(gathered)
}

/// Fetch or read one feed and keep its items.
fn refresh(store: &Store, source: &Source, timeout: Duration) -> Result<(), String> {
    let key = source.key();
    let bytes = match source {
        Source::File(path) => {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
        Source::Url(url) => {
            let (etag, modified) = store.validators(&key).map_err(|e| e.to_string())?;
            match fetch(url, etag.as_deref(), modified.as_deref(), timeout)? {
                Fetched::NotModified => return Ok(()),
                Fetched::Body {
                    bytes,
                    etag,
                    modified,
                } => {
                    store
                        .set_validators(&key, etag.as_deref(), modified.as_deref())
                        .map_err(|e| e.to_string())?;
                    bytes
                }
            }
        }
    };
    let feed = feed_rs::parser::parse(bytes.as_slice())
        .map_err(|e| format!("not a feed digestif can read: {e}"))?;
    let items: Vec<Item> = feed.entries.into_iter().filter_map(item_of).collect();
    store
        .set_language(&key, feed.language.as_deref().map(str::trim))
        .map_err(|e| e.to_string())?;
    store.keep(&key, &items).map_err(|e| e.to_string())
}

enum Fetched {
    NotModified,
    Body {
        bytes: Vec<u8>,
        etag: Option<String>,
        modified: Option<String>,
    },
}

/// A conditional GET with a timeout over the whole exchange.
fn fetch(
    url: &Url,
    etag: Option<&str>,
    modified: Option<&str>,
    timeout: Duration,
) -> Result<Fetched, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .user_agent(concat!("digestif/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut request = agent.get(url.as_str());
    if let Some(etag) = etag {
        request = request.header("If-None-Match", etag);
    }
    if let Some(modified) = modified {
        request = request.header("If-Modified-Since", modified);
    }
    let mut response = request.call().map_err(|e| format!("cannot fetch: {e}"))?;
    let status = response.status().as_u16();
    if status == 304 {
        return Ok(Fetched::NotModified);
    }
    if !(200..300).contains(&status) {
        return Err(format!("the server answered HTTP {status}"));
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (etag, modified) = (header("etag"), header("last-modified"));
    let bytes = response
        .body_mut()
        .with_config()
        .limit(MAX_FEED_BYTES)
        .read_to_vec()
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    Ok(Fetched::Body {
        bytes,
        etag,
        modified,
    })
}

/// An entry worth keeping: it has a date and a title or a link.
fn item_of(entry: feed_rs::model::Entry) -> Option<Item> {
    let date = entry.published.or(entry.updated)?;
    let link = entry
        .links
        .iter()
        .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .or(entry.links.first())
        .map(|l| l.href.clone());
    let title = entry
        .title
        .map(|t| html_escape::decode_html_entities(&strip_tags(&t.content)).into_owned())
        .unwrap_or_default();
    let summary = entry
        .summary
        .map(|s| s.content)
        .filter(|s| !s.trim().is_empty())
        .or_else(|| entry.content.and_then(|c| c.body))
        .unwrap_or_default();
    let categories = entry
        .categories
        .into_iter()
        .map(|c| c.label.unwrap_or(c.term))
        .collect();
    let id = if entry.id.is_empty() {
        link.clone()?
    } else {
        entry.id
    };
    Some(Item {
        id,
        title,
        date,
        link,
        categories,
        summary,
    })
}

/// A kept item as a post: the item's link is the post's own page.
fn to_post(key: &str, item: Item, language: Option<&str>, ctx: &posts::ParseContext) -> Post {
    let category = ctx.category_of(&item.categories);
    let permalink = item
        .link
        .as_deref()
        .and_then(|l| posts::resolve_link(l, &ctx.base_url).ok());
    let summary = remove_boilerplate(&item.summary);
    Post {
        path: PathBuf::from(format!("{key}#{}", item.id)),
        title: crate::text::normalize_whitespace(&item.title),
        date: item.date.with_timezone(&ctx.timezone),
        category,
        tags: item.categories.iter().skip(1).cloned().collect(),
        source: None,
        link: None,
        permalink,
        excerpt: posts::excerpt(Some(&summary), ""),
        draft: false,
        language: language
            .filter(|l| posts::is_language_tag(l))
            .map(str::to_string),
    }
}

/// WordPress's feed furniture: "The post … appeared first on …", its French form, "Read
/// More…", "Continue reading", and the trailing "[…]".
pub fn remove_boilerplate(html: &str) -> String {
    let markdown = posts::excerpt(Some(html), "");
    let kept: Vec<&str> = markdown
        .split("\n\n")
        .filter(|paragraph| {
            let p = paragraph.trim();
            let lower = p.to_lowercase();
            !(lower.starts_with("the post ") && lower.contains("appeared first on"))
                && !((lower.starts_with("l'article ") || lower.starts_with("l’article "))
                    && lower.contains("est apparu en premier sur"))
                && !is_read_more(&lower)
        })
        .collect();
    let text = kept.join("\n\n");
    let trimmed = text.trim_end();
    let trimmed = [
        "[…]",
        "[...]",
        "[&hellip;]",
        "[&#8230;]",
        "\\[…\\]",
        "\\[...\\]",
        "…",
    ]
    .iter()
    .find_map(|tail| trimmed.strip_suffix(tail))
    .unwrap_or(trimmed);
    trimmed.trim_end().to_string()
}

/// A paragraph that is only a "read more" link.
fn is_read_more(lower: &str) -> bool {
    let words = strip_tags(lower);
    let words = words.trim_matches(|c: char| !c.is_alphanumeric());
    let words = words.split("](").next().unwrap_or(words);
    [
        "read more",
        "continue reading",
        "lire la suite",
        "lire plus",
        "continuer la lecture",
    ]
    .iter()
    .any(|phrase| {
        words.trim_start_matches('[').starts_with(phrase) && words.len() < phrase.len() + 40
    })
}

fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// "dgsf": marks a SQLite file as a digestif feed cache.
const SCHEMA: Schema = Schema {
    application_id: 0x6467_7366,
    migrations: &[create_tables, add_language],
};

/// Version 1: the tables as the first releases made them (so `IF NOT EXISTS`).
fn create_tables(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS feeds (
             feed TEXT PRIMARY KEY, etag TEXT, last_modified TEXT);
         CREATE TABLE IF NOT EXISTS items (
             feed TEXT NOT NULL, id TEXT NOT NULL, title TEXT NOT NULL,
             date TEXT NOT NULL, link TEXT, categories TEXT NOT NULL, summary TEXT NOT NULL,
             PRIMARY KEY (feed, id));",
    )
}

/// Version 2: the feed's language (its posts carry it when it is not the newsletter's).
/// A cache from before versions may have the column already.
fn add_language(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    if !store::has_column(tx, "feeds", "language")? {
        tx.execute_batch("ALTER TABLE feeds ADD COLUMN language TEXT")?;
    }
    Ok(())
}

/// The kept items: one SQLite file in the state folder.
struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    fn open(state_dir: &Path) -> Result<Store> {
        crate::fsutil::create_dir_all(state_dir)?;
        let path = state_dir.join("feeds.sqlite");
        let mut conn = store::open(Which::Feeds, &path, Access::Write)?;
        store::migrate(Which::Feeds, &path, &mut conn, &SCHEMA)?;
        Ok(Store { conn, path })
    }

    fn language(&self, feed: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT language FROM feeds WHERE feed = ?1", [feed], |r| {
                r.get(0)
            })
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    fn set_language(&self, feed: &str, language: Option<&str>) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO feeds (feed, language) VALUES (?1, ?2)
                 ON CONFLICT (feed) DO UPDATE SET language = ?2",
                params![feed, language],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        Error::store(Which::Feeds, &self.path, e)
    }

    fn validators(&self, feed: &str) -> Result<(Option<String>, Option<String>)> {
        self.conn
            .query_row(
                "SELECT etag, last_modified FROM feeds WHERE feed = ?1",
                [feed],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(|e| self.err(e))
    }

    fn set_validators(&self, feed: &str, etag: Option<&str>, modified: Option<&str>) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO feeds (feed, etag, last_modified) VALUES (?1, ?2, ?3)
                 ON CONFLICT (feed) DO UPDATE SET etag = ?2, last_modified = ?3",
                params![feed, etag, modified],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Keep `items` (new ones added, known ones updated) in one transaction.
    fn keep(&self, feed: &str, items: &[Item]) -> Result<()> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        for item in items {
            tx.execute(
                "INSERT INTO items (feed, id, title, date, link, categories, summary)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (feed, id) DO UPDATE SET title = ?3, date = ?4, link = ?5,
                     categories = ?6, summary = ?7",
                params![
                    feed,
                    item.id,
                    item.title,
                    item.date.to_rfc3339(),
                    item.link,
                    serde_json::to_string(&item.categories).unwrap_or_default(),
                    item.summary
                ],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn count(&self, feed: &str) -> Result<usize> {
        self.conn
            .query_row("SELECT count(*) FROM items WHERE feed = ?1", [feed], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))
    }

    fn items(&self, feed: &str) -> Result<Vec<Item>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, title, date, link, categories, summary FROM items WHERE feed = ?1 ORDER BY date, id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([feed], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut items = Vec::new();
        for row in rows {
            let (id, title, date, link, categories, summary) = row.map_err(|e| self.err(e))?;
            let Ok(date) = DateTime::parse_from_rfc3339(&date) else {
                continue;
            };
            items.push(Item {
                id,
                title,
                date: date.with_timezone(&Utc),
                link,
                categories: serde_json::from_str(&categories).unwrap_or_default(),
                summary,
            });
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wordpress_furniture_is_removed_in_english_and_french() {
        let html = "<p>Les réseaux sociaux changent la relation client.</p>\n\
                    <p><a href=\"https://blog.example/a\">Lire la suite</a></p>\n\
                    <p>L’article <a href=\"https://blog.example/a\">Titre</a> est apparu en premier sur <a href=\"https://blog.example\">Veille</a>.</p>";
        assert_eq!(
            remove_boilerplate(html),
            "Les réseaux sociaux changent la relation client."
        );
        let html = "<p>A first paragraph that goes on [&#8230;]</p>\n<p>The post <a href=\"x\">T</a> appeared first on <a href=\"y\">Blog</a>.</p>";
        assert_eq!(remove_boilerplate(html), "A first paragraph that goes on");
    }
}
