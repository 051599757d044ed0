//! Forgetting one person (`subscribers forget`): their rows in this store are re-keyed to a
//! tombstone, a keyed hash of their address that only this installation can compute, so
//! that a later import or `add` of the same address is still recognised and refused, while
//! the address itself is nowhere. `show` reads what is held about them.

use hmac::{Hmac, Mac};
use rusqlite::{params, OptionalExtension};
use sha2::Sha256;

use super::Optouts;
use crate::error::{Error, Result};

/// Version 3 of the store: the tombstones, and this installation's key for them.
pub(super) fn create_tables(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS forgotten (tombstone TEXT PRIMARY KEY, at TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value BLOB NOT NULL);",
    )
}

/// What this store held about one person.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct Held {
    /// Requests to leave and bounces: (status, source, at).
    pub requests: Vec<(String, String, String)>,
    /// Temporary failures counted (distinct messages).
    pub soft_bounces: usize,
    /// When they were forgotten, if they were.
    pub forgotten_at: Option<String>,
    /// Their confirmed subscriptions through the form: the consent records.
    pub joins: Vec<super::Join>,
}

/// Every tombstone, read once: an import asks about each of its rows.
pub(crate) struct Forgotten {
    secret: Vec<u8>,
    at: std::collections::HashMap<String, String>,
}

impl Forgotten {
    /// When `key` was forgotten, if it was.
    pub(crate) fn at(&self, key: &str) -> Option<&str> {
        self.at
            .get(&tombstone_of(&self.secret, key))
            .map(String::as_str)
    }
}

fn tombstone_of(secret: &[u8], key: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(key.as_bytes());
    format!(
        "forgotten:{}",
        crate::text::hex(&mac.finalize().into_bytes())
    )
}

impl Optouts {
    /// Every tombstone with its date, and the key to recognise them.
    pub(crate) fn forgotten(&self) -> Result<Forgotten> {
        let db = |e| self.db(e);
        let mut stmt = self
            .conn
            .prepare("SELECT tombstone, at FROM forgotten")
            .map_err(db)?;
        let at = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db)?
            .collect::<rusqlite::Result<_>>()
            .map_err(db)?;
        Ok(Forgotten {
            secret: self.forget_key()?,
            at,
        })
    }

    /// The tombstone of `key`: `forgotten:` and an HMAC-SHA256 under this installation's
    /// key (made on first use, kept in the store).
    pub(crate) fn tombstone(&self, key: &str) -> Result<String> {
        Ok(tombstone_of(&self.forget_key()?, key))
    }

    fn forget_key(&self) -> Result<Vec<u8>> {
        let found: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT value FROM settings WHERE name = 'forget_key'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db(e))?;
        if let Some(key) = found {
            return Ok(key);
        }
        let mut key = vec![0u8; 32];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom")
                .map_err(|e| Error::io("open", std::path::Path::new("/dev/urandom"), e))?,
            &mut key,
        )
        .map_err(|e| Error::io("read", std::path::Path::new("/dev/urandom"), e))?;
        self.conn
            .execute(
                "INSERT OR IGNORE INTO settings (name, value) VALUES ('forget_key', ?1)",
                [&key],
            )
            .map_err(|e| self.db(e))?;
        self.forget_key()
    }

    /// Re-key `key`'s rows to its tombstone, drop its counted failures, remember the
    /// tombstone, and overwrite the freed space: how many rows held the address.
    pub(crate) fn forget(&self, key: &str) -> Result<usize> {
        let tombstone = self.tombstone(key)?;
        let now = self.clock.now().to_rfc3339();
        let db = |e| self.db(e);
        self.conn
            .pragma_update(None, "secure_delete", true)
            .map_err(db)?;
        let tx = self.conn.unchecked_transaction().map_err(db)?;
        let mut rows = tx
            .execute(
                "UPDATE optouts SET key = ?1 WHERE key = ?2",
                params![tombstone, key],
            )
            .map_err(db)?;
        rows += tx
            .execute("DELETE FROM soft_bounces WHERE key = ?1", [key])
            .map_err(db)?;
        // Consent records and requests to join hold the address itself.
        for table in ["joins", "pending_joins", "join_mails"] {
            rows += tx
                .execute(&format!("DELETE FROM {table} WHERE key = ?1"), [key])
                .map_err(db)?;
        }
        tx.execute(
            "INSERT OR IGNORE INTO forgotten (tombstone, at) VALUES (?1, ?2)",
            params![tombstone, now],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(db)?;
        Ok(rows)
    }

    /// When `key` was forgotten, if it was.
    pub(crate) fn forgotten_at(&self, key: &str) -> Result<Option<String>> {
        let tombstone = self.tombstone(key)?;
        self.conn
            .query_row(
                "SELECT at FROM forgotten WHERE tombstone = ?1",
                [tombstone],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db(e))
    }

    /// Everything this store holds about `key`.
    pub(crate) fn held(&self, key: &str) -> Result<Held> {
        let db = |e| self.db(e);
        let mut stmt = self
            .conn
            .prepare("SELECT status, source, at FROM optouts WHERE key = ?1 ORDER BY id")
            .map_err(db)?;
        let requests = stmt
            .query_map([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db)?;
        let soft_bounces: usize = self
            .conn
            .query_row(
                "SELECT count(*) FROM soft_bounces WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .map_err(db)?;
        Ok(Held {
            requests,
            soft_bounces,
            forgotten_at: self.forgotten_at(key)?,
            joins: self.joins_of(key)?,
        })
    }
}
