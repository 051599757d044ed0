//! The feed cache: every item of every feed kept in `state_dir/feeds.sqlite`, so a feed
//! that drops old items, or cannot be fetched today, still gives its week's posts.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::Item;
use crate::error::{Error, Result};
use crate::store::{self, Access, Schema, Store as Which};

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
pub(super) struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    pub(super) fn open(state_dir: &Path) -> Result<Store> {
        crate::fsutil::create_private_dir(state_dir)?;
        let path = state_dir.join("feeds.sqlite");
        let mut conn = store::open(Which::Feeds, &path, Access::Write)?;
        store::migrate(Which::Feeds, &path, &mut conn, &SCHEMA)?;
        Ok(Store { conn, path })
    }

    pub(super) fn language(&self, feed: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT language FROM feeds WHERE feed = ?1", [feed], |r| {
                r.get(0)
            })
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    pub(super) fn set_language(&self, feed: &str, language: Option<&str>) -> Result<()> {
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

    pub(super) fn validators(&self, feed: &str) -> Result<(Option<String>, Option<String>)> {
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

    pub(super) fn set_validators(
        &self,
        feed: &str,
        etag: Option<&str>,
        modified: Option<&str>,
    ) -> Result<()> {
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
    pub(super) fn keep(&self, feed: &str, items: &[Item]) -> Result<()> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        self.insert(&tx, feed, items)?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Keep exactly `items` for `feed`, forgetting the others, in one transaction: for a
    /// source that is the whole blog (a WordPress export), where a post that is gone was
    /// unpublished.
    pub(super) fn replace(&self, feed: &str, items: &[Item]) -> Result<()> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM items WHERE feed = ?1", [feed])
            .map_err(|e| self.err(e))?;
        self.insert(&tx, feed, items)?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn insert(&self, tx: &rusqlite::Transaction<'_>, feed: &str, items: &[Item]) -> Result<()> {
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
        Ok(())
    }

    pub(super) fn count(&self, feed: &str) -> Result<usize> {
        self.conn
            .query_row("SELECT count(*) FROM items WHERE feed = ?1", [feed], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))
    }

    pub(super) fn items(&self, feed: &str) -> Result<Vec<Item>> {
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
