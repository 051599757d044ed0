//! Feeds as a source of posts: RSS 2.0, Atom and JSON Feed (feed-rs), fetched over HTTP
//! (ureq) or read from a file. Every item seen is kept in `state_dir/feeds.sqlite`, so a
//! post stays in its week after it drops out of the feed's window; fetching sends the
//! last `ETag` / `Last-Modified` back, so an unchanged feed costs a 304.

mod clean;
mod store;
mod wxr;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use url::Url;

use crate::error::{Error, Result};
use crate::sources::{self, Post};
pub use clean::remove_boilerplate;
use clean::strip_tags;
use store::Store;

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
    ctx: &sources::ParseContext,
) -> Result<Gathered> {
    let mut gathered = Gathered::default();
    if sources.is_empty() {
        return Ok(gathered);
    }
    let store = Store::open(state_dir)?;
    for source in sources {
        let key = source.key();
        // `--offline` is about the network: a feed that is a local file is always read.
        let local = matches!(source, Source::File(_));
        if mode != Fetch::Offline || local {
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
        if mode == Fetch::Offline && !local && store.count(&key)? == 0 {
            gathered.warnings.push(format!(
                "feed {key}: --offline, and no items of it are kept from an earlier run: it \
                 gives no posts (run once without --offline to fetch it)"
            ));
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
    if wxr::is_wxr(&bytes) {
        let export = wxr::read(&bytes).map_err(|e| format!("a WordPress export, but {e}"))?;
        store
            .set_language(&key, export.language.as_deref())
            .map_err(|e| e.to_string())?;
        // The export is the whole blog: what is no longer published in it is forgotten.
        return store
            .replace(&key, &export.items)
            .map_err(|e| e.to_string());
    }
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
fn to_post(key: &str, item: Item, language: Option<&str>, ctx: &sources::ParseContext) -> Post {
    let category = ctx.category_of(&item.categories);
    let permalink = item
        .link
        .as_deref()
        .and_then(|l| sources::resolve_link(l, &ctx.base_url).ok());
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
        excerpt: sources::excerpt(Some(&summary), ""),
        draft: false,
        expires: None,
        language: language
            .filter(|l| sources::is_language_tag(l))
            .map(str::to_string),
    }
}
