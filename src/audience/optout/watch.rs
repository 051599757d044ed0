//! A running send's view of the requests to leave made since it froze its list.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::Optouts;
use crate::error::{Error, Result};
use crate::store::{self, Access, Store};

/// A running send's view of the requests made since it froze its list.
pub(crate) struct Watch {
    path: PathBuf,
    conn: Connection,
    /// SQLite's `data_version`: changes when another connection commits.
    version: i64,
    left: HashSet<String>,
    /// The last request read.
    last_id: i64,
    /// When `data_version` was last read.
    looked: Option<std::time::Instant>,
}

/// How often a running send looks for new requests to leave. A click lands at most this
/// late; looking before every message cost a tenth of the send's CPU.
pub(crate) const LOOK_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

impl Watch {
    pub(crate) fn open(state_dir: &Path) -> Result<Watch> {
        // Creates the database and its schema if this state folder has none yet.
        Optouts::ensure(state_dir)?;
        let path = state_dir.join("optouts.sqlite");
        let conn = store::open(Store::Optouts, &path, Access::Read)?;
        let mut watch = Watch {
            path,
            conn,
            version: -1,
            left: HashSet::new(),
            last_id: 0,
            looked: None,
        };
        watch.refresh()?;
        Ok(watch)
    }

    /// Reload the pending requests when someone committed since the last look, looking at
    /// most every [`LOOK_EVERY`]: one cheap pragma then.
    fn refresh(&mut self) -> Result<()> {
        let now = std::time::Instant::now();
        if self
            .looked
            .is_some_and(|t| now.duration_since(t) < LOOK_EVERY)
        {
            return Ok(());
        }
        self.looked = Some(now);
        let db = |source| Error::store(Store::Optouts, &self.path, source);
        let version: i64 = self
            .conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
            .map_err(db)?;
        if version == self.version {
            return Ok(());
        }
        // Only the requests made since the last look: thousands may wait while a send
        // holds the list, and `serve` commits many times a second.
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, key FROM optouts WHERE applied_at IS NULL AND id > ?1 ORDER BY id",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([self.last_id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(db)?;
        for row in rows {
            let (id, key) = row.map_err(db)?;
            self.last_id = id;
            self.left.insert(key);
        }
        self.version = version;
        Ok(())
    }

    /// Did `key` ask to leave (or bounce) since the list was frozen?
    pub(crate) fn has_left(&mut self, key: &str) -> Result<bool> {
        self.refresh()?;
        Ok(self.left.contains(key))
    }
}
