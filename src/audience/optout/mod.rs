//! Opt-outs: readers who asked to leave (a click, a token, a mail) or whose mail bounces.
//!
//! A request is recorded at once in `<state_dir>/optouts.sqlite` (one committed row,
//! fsynced), never waiting for the lock that a send holds for an hour. It reaches
//! `subscribers.toml` as soon as that lock is free: right away when nothing runs, else
//! when the send ends. A running send asks [`Watch::has_left`] before each message (it
//! looks every 20 ms), so a reader who leaves during a send is not mailed later in the
//! same run.
//!
//! The same database remembers which inbox messages were handled and the temporary
//! failures counted per reader, so `digestif inbox` is idempotent.

mod apply;
mod events;
mod folder;
mod forget;
mod index;
mod joins;
mod readers;
mod recorder;
mod watch;

pub(crate) use apply::{apply_if_free, leave, Guard, Left};
pub(crate) use events::Event;
pub(crate) use folder::{FoldJob, Folder};
pub(crate) use forget::Held;
pub(crate) use index::{Indexed, TokenIndex};
pub(crate) use joins::{Asked, Join, JoinRequest, Prefs, CONFIRM_DAYS};
pub(crate) use readers::{entry_of, Readers};
pub(crate) use recorder::Recorder;
pub(crate) use watch::Watch;
#[cfg(test)]
pub(crate) use watch::LOOK_EVERY;

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use crate::audience::subscribers::Status;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::store::{self, Access, Schema, Store};

/// "dgso": marks a SQLite file as a digestif opt-out store.
const SCHEMA: Schema = Schema {
    application_id: 0x6467_736f,
    migrations: &[
        create_tables,
        events::create_table,
        forget::create_tables,
        joins::create_tables,
        index_keys,
        drop_key_index,
    ],
};

/// Version 6: version 5's index held every request ever made, a row per click for years,
/// and each click wrote one of its pages at random, then again at the checkpoint: with
/// the table's and the pending index's pages, about 10 KB written per click (1.2 GB in a
/// 10 s burst of 120,000 clicks), the kind of heavy writing under which a virtual disk
/// was seen to stop completing writes for 300 ms. `serve`'s writer knows the requests it recorded itself (see
/// `Recorder`), so a click only checks one row by id; a join asks whether an address
/// complained, which the small index of complaints answers.
fn drop_key_index(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(&format!(
        "DROP INDEX IF EXISTS optouts_key;
         CREATE INDEX IF NOT EXISTS optouts_complaints ON optouts (key)
             WHERE source = '{}';",
        joins::COMPLAINT_SOURCE
    ))
}

/// Version 5: requests found by reader, so that `serve` could tell a second click from a
/// first among the thousands that wait while a send holds the list (dropped by version 6).
fn index_keys(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE INDEX IF NOT EXISTS optouts_key ON optouts (key, applied_at);")
}

/// Version 1: the tables as the first releases made them (so `IF NOT EXISTS`).
fn create_tables(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(TABLES)
}

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS optouts (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('unsubscribed', 'bounced')),
    source TEXT NOT NULL,
    at TEXT NOT NULL,
    applied_at TEXT
);
CREATE INDEX IF NOT EXISTS optouts_pending ON optouts (applied_at) WHERE applied_at IS NULL;
CREATE TABLE IF NOT EXISTS inbox_seen (
    digest TEXT PRIMARY KEY,
    verdict TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS soft_bounces (
    key TEXT NOT NULL,
    message TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (key, message)
);";

/// Writers of this process take turns here, before SQLite's write lock: one that found
/// the store held would sleep in SQLite's busy handler, by steps growing to 100 ms however
/// soon the store is free again, while `serve`'s readers wait for their answer. A mutex
/// wakes the next writer at once. (Other processes still meet the busy handler.)
static WRITERS: parking_lot::Mutex<()> = parking_lot::const_mutex(());

/// This process's turn to write to an opt-out store.
fn write_turn() -> parking_lot::MutexGuard<'static, ()> {
    WRITERS.lock()
}

/// Is a recorded request still to be written into the list? By row (the store keeps no
/// index of requests by reader, see `drop_key_index`), and the reader's key, checked.
const WAITS: &str = "SELECT 1 FROM optouts WHERE id = ?1 AND key = ?2 AND applied_at IS NULL";

/// Requests marked written in per transaction (see [`Optouts::mark_applied`]).
const MARK_CHUNK: i64 = 1024;

/// One recorded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Optout {
    pub id: i64,
    pub key: String,
    pub status: Status,
    pub source: String,
}

/// The opt-out store of one state folder.
pub(crate) struct Optouts {
    conn: Connection,
    path: PathBuf,
    /// Dates each record.
    clock: Clock,
}

impl Optouts {
    pub(crate) fn open(state_dir: &Path, clock: Clock) -> Result<Optouts> {
        let (conn, path) = Optouts::connect(state_dir)?;
        Ok(Optouts { conn, path, clock })
    }

    /// Open (creating, or bringing up to date) the store of `state_dir`.
    fn connect(state_dir: &Path) -> Result<(Connection, PathBuf)> {
        crate::fsutil::create_private_dir(state_dir)?;
        let path = state_dir.join("optouts.sqlite");
        // Every commit synced: a request acknowledged to a reader must survive a power
        // loss (`serve` shares one sync among the requests that arrive together).
        let mut conn = store::open(Store::Optouts, &path, Access::Write)?;
        store::migrate(Store::Optouts, &path, &mut conn, &SCHEMA)?;
        // Zero what a deletion frees in a page that is written anyway: an address must not
        // stay readable in free space once `subscribers forget` re-keyed its rows.
        conn.pragma_update(None, "secure_delete", "FAST")
            .map_err(|e| Error::store(Store::Optouts, &path, e))?;
        Ok((conn, path))
    }

    /// Leave the write-ahead log to [`Optouts::checkpoint`]: `serve`'s writer answers
    /// readers when its commit is on disk, and SQLite's automatic checkpoint would run
    /// inside some of those commits (copying and syncing the pages of thousands).
    pub(crate) fn checkpoint_by_hand(&self) -> Result<()> {
        self.conn
            .execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .map_err(|e| self.db(e))
    }

    /// Copy the write-ahead log into the store, beside writers (they go on meanwhile):
    /// `true` when all of it was copied, so that the next commit starts the log over.
    pub(crate) fn checkpoint(&self) -> Result<bool> {
        // (blocked by another checkpoint, frames in the log, frames copied).
        let (blocked, log, copied): (i64, i64, i64) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(|e| self.db(e))?;
        Ok(blocked == 0 && log == copied)
    }

    /// Make sure the store of `state_dir` exists, so that it can be read.
    pub(crate) fn ensure(state_dir: &Path) -> Result<()> {
        Optouts::connect(state_dir).map(drop)
    }

    fn db(&self, e: rusqlite::Error) -> Error {
        Error::store(Store::Optouts, &self.path, e)
    }

    /// Record that `key` leaves with `status`; committed when this returns.
    pub(crate) fn record(&self, key: &str, status: Status, source: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO optouts (key, status, source, at) VALUES (?1, ?2, ?3, ?4)",
                params![key, status.as_str(), source, self.clock.now().to_rfc3339()],
            )
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Record many requests in one transaction (one sync for all). `known[i]` is the row of
    /// a request the caller saw recorded for the same reader and status as `requests[i]`
    /// (the reader is checked), which is not recorded again while that row waits. For
    /// each: the new row's id, or `None` when the same request already waits.
    pub(crate) fn record_many(
        &mut self,
        requests: &[(String, Status, String)],
        known: &[Option<i64>],
    ) -> Result<Vec<Option<i64>>> {
        let now = self.clock.now().to_rfc3339();
        let path = self.path.clone();
        let db = |source| Error::store(Store::Optouts, &path, source);
        // The write lock from the start: a read that turns into a write fails at once
        // (SQLITE_BUSY, no waiting) when another connection committed in between.
        let _turn = write_turn();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let mut recorded = Vec::with_capacity(requests.len());
        {
            let mut waits = tx.prepare_cached(WAITS).map_err(db)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO optouts (key, status, source, at) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(db)?;
            for (i, (key, status, source)) in requests.iter().enumerate() {
                if let Some(id) = known.get(i).copied().flatten() {
                    if waits.exists(params![id, key]).map_err(db)? {
                        recorded.push(None);
                        continue;
                    }
                }
                insert
                    .execute(params![key, status.as_str(), source, now])
                    .map_err(db)?;
                recorded.push(Some(tx.last_insert_rowid()));
            }
        }
        tx.commit().map_err(db)?;
        Ok(recorded)
    }

    /// Does the request recorded as row `id`, for `key`, still wait to be written in?
    pub(crate) fn waits(&self, id: i64, key: &str) -> Result<bool> {
        self.conn
            .prepare_cached(WAITS)
            .and_then(|mut stmt| stmt.exists(params![id, key]))
            .map_err(|e| self.db(e))
    }

    /// The lowest row that waits to be written into the list: every row below it is in.
    pub(crate) fn first_waiting(&self) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT min(id) FROM optouts WHERE applied_at IS NULL",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.db(e))
    }

    /// Requests not yet written into the subscribers file, oldest first.
    pub(crate) fn pending(&self) -> Result<Vec<Optout>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, key, status, source FROM optouts WHERE applied_at IS NULL ORDER BY id",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| self.db(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, key, status, source) = row.map_err(|e| self.db(e))?;
            let status = Status::parse(&status).unwrap_or(Status::Unsubscribed);
            out.push(Optout {
                id,
                key,
                status,
                source,
            });
        }
        Ok(out)
    }

    /// Mark the requests from `first` to `last` (ids read by [`Optouts::pending`]) written
    /// in. `serve` commits new requests meanwhile and waits while this holds the store, so
    /// the marking goes in short transactions of [`MARK_CHUNK`] ids, not one of tens of
    /// thousands of rows. Requests committed after `pending` read have larger ids; a crash
    /// between two chunks leaves the rest to be written in again, harmlessly.
    fn mark_applied(&self, first: i64, last: i64) -> Result<()> {
        let now = self.clock.now().to_rfc3339();
        let mut mark = self
            .conn
            .prepare_cached(
                "UPDATE optouts SET applied_at = ?1 \
                 WHERE applied_at IS NULL AND id >= ?2 AND id <= ?3",
            )
            .map_err(|e| self.db(e))?;
        // Not synced (a mark lost to a power cut writes the same requests in again, which
        // changes nothing): the sync would hold the store while `serve` waits to commit.
        self.conn
            .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;")
            .map_err(|e| self.db(e))?;
        let mut from = first;
        while from <= last {
            let to = last.min(from.saturating_add(MARK_CHUNK - 1));
            let turn = write_turn();
            mark.execute(params![now, from, to])
                .map_err(|e| self.db(e))?;
            // Handed to `serve`'s writer if it waits, not taken again at once for the next
            // chunk (an ordinary unlock lets this loop keep it for the whole marking).
            parking_lot::MutexGuard::unlock_fair(turn);
            from = to.saturating_add(1);
        }
        self.conn
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 1000;")
            .map_err(|e| self.db(e))
    }

    /// Has this inbox message been handled already? Its verdict if so.
    pub(crate) fn seen(&self, digest: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT verdict FROM inbox_seen WHERE digest = ?1",
                [digest],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db(e))
    }

    pub(crate) fn mark_seen(&self, digest: &str, verdict: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO inbox_seen (digest, verdict, at) VALUES (?1, ?2, ?3)",
                params![digest, verdict, self.clock.now().to_rfc3339()],
            )
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Count a temporary failure of the message `message` to `key`; the number of
    /// different messages that failed so for `key` in the last `weeks` weeks.
    pub(crate) fn soft_bounce(&self, key: &str, message: &str, weeks: u32) -> Result<u32> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO soft_bounces (key, message, at) VALUES (?1, ?2, ?3)",
                params![key, message, self.clock.now().to_rfc3339()],
            )
            .map_err(|e| self.db(e))?;
        self.conn
            .query_row(
                "SELECT count(*) FROM soft_bounces WHERE key = ?1 AND julianday(at) >= julianday(?2)",
                params![
                    key,
                    (self.clock.now() - chrono::Duration::weeks(i64::from(weeks))).to_rfc3339()
                ],
                |r| r.get(0),
            )
            .map_err(|e| self.db(e))
    }

    /// A delivery succeeded after all: the count of failures in a row starts again.
    pub(crate) fn clear_soft_bounces(&self, key: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM soft_bounces WHERE key = ?1", [key])
            .map_err(|e| self.db(e))?;
        Ok(())
    }
}

/// Would a request to leave with `requested` change a reader who is `current`? Not when
/// they are already there, and never once bounced: that is the stronger fact, and an
/// unsubscribe request does not hide it.
pub(crate) fn already_left(current: Status, requested: Status) -> bool {
    current == requested || current == Status::Bounced
}

/// For tests of this folder: a newsletter in `dir` whose list is `list`.
#[cfg(test)]
pub(crate) fn newsletter_in(
    dir: &Path,
    list: &str,
) -> (crate::config::Config, crate::audience::subscribers::Catalog) {
    std::fs::write(dir.join("subscribers.toml"), list).unwrap();
    let src = format!(
        "[newsletter]\nname = \"W\"\nbase_url = \"https://w.example.org/\"\n\
         subscribers = \"{0}/subscribers.toml\"\nstate_dir = \"{0}/state\"\n\
         [sender]\nfrom = \"W <w@example.org>\"\n",
        dir.display()
    );
    let config = crate::config::Config::parse(&dir.join("digestif.toml"), &src).unwrap();
    let catalog = crate::audience::subscribers::Catalog::from_posts(&config, &[]);
    (config, catalog)
}

#[cfg(test)]
mod tests;
