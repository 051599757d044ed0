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
        index_waiting_keys,
    ],
};

/// Version 6: version 5's index held every request ever made, a row per click for years,
/// so each click dirtied a page of it at random (about 4 KiB written to the log, and again
/// at the checkpoint, per click: 1.4 GB in a 10 s burst of 130,000 clicks). A click only
/// asks whether the same request already waits, and a join whether the address
/// complained: two small indexes answer that, the first emptied by every fold.
fn index_waiting_keys(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(&format!(
        "DROP INDEX IF EXISTS optouts_key;
         CREATE INDEX IF NOT EXISTS optouts_waiting ON optouts (key, status, applied_at)
             WHERE applied_at IS NULL;
         CREATE INDEX IF NOT EXISTS optouts_complaints ON optouts (key)
             WHERE source = '{}';",
        joins::COMPLAINT_SOURCE
    ))
}

/// Version 5: requests found by reader, so that `serve` can tell a second click from a
/// first among the thousands that wait while a send holds the list.
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
        // An address leaves `optouts_waiting` when its request is written into the list:
        // zero the freed bytes in the page then (which is written anyway), or a reader
        // forgotten later would still be readable there.
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

    /// Record many requests in one transaction (one sync for all): for each, `true` when
    /// it was recorded, `false` when the same request already waits to be written in.
    pub(crate) fn record_many(
        &mut self,
        requests: &[(String, Status, String)],
    ) -> Result<Vec<bool>> {
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
            let mut waiting = tx
                .prepare_cached(
                    "SELECT 1 FROM optouts WHERE key = ?1 AND applied_at IS NULL AND status = ?2",
                )
                .map_err(db)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO optouts (key, status, source, at) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(db)?;
            for (key, status, source) in requests {
                let status = status.as_str();
                if waiting.exists(params![key, status]).map_err(db)? {
                    recorded.push(false);
                    continue;
                }
                insert
                    .execute(params![key, status, source, now])
                    .map_err(db)?;
                recorded.push(true);
            }
        }
        tx.commit().map_err(db)?;
        Ok(recorded)
    }

    /// Does a request for `key` to leave wait to be written into the list?
    pub(crate) fn waits_to_leave(&self, key: &str) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM optouts WHERE key = ?1 AND applied_at IS NULL")
            .and_then(|mut stmt| stmt.exists([key]))
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
mod plan_tests;
#[cfg(test)]
mod tests {
    use super::watch::LOOK_EVERY;
    use super::*;

    #[test]
    fn a_request_is_seen_by_a_running_watch_within_a_look() {
        let dir = tempfile::tempdir().unwrap();
        let mut watch = Watch::open(dir.path()).unwrap();
        assert!(!watch.has_left("jo@example.org").unwrap());
        let store = Optouts::open(dir.path(), Clock::system()).unwrap();
        store
            .record("jo@example.org", Status::Unsubscribed, "web")
            .unwrap();
        std::thread::sleep(LOOK_EVERY);
        assert!(watch.has_left("jo@example.org").unwrap());
        assert!(!watch.has_left("ana@example.org").unwrap());
        let pending = store.pending().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].source, "web");
    }

    #[test]
    fn marking_in_chunks_marks_every_request_read_and_none_after() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Optouts::open(dir.path(), Clock::system()).unwrap();
        let requests: Vec<_> = (0..2 * MARK_CHUNK + 7)
            .map(|i| {
                (
                    format!("r{i}@example.org"),
                    Status::Unsubscribed,
                    "web".into(),
                )
            })
            .collect();
        store.record_many(&requests).unwrap();
        let pending = store.pending().unwrap();
        // A click committed after the fold read what waits: not written in, not marked.
        store
            .record("late@example.org", Status::Unsubscribed, "web")
            .unwrap();
        let (first, last) = (pending[0].id, pending[pending.len() - 1].id);
        store.mark_applied(first, last).unwrap();
        let left: Vec<String> = store
            .pending()
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(left, ["late@example.org"]);
    }

    #[test]
    fn soft_bounces_count_distinct_messages_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let store = Optouts::open(dir.path(), Clock::system()).unwrap();
        assert_eq!(store.soft_bounce("jo@example.org", "<a@x>", 8).unwrap(), 1);
        assert_eq!(store.soft_bounce("jo@example.org", "<a@x>", 8).unwrap(), 1);
        assert_eq!(store.soft_bounce("jo@example.org", "<b@x>", 8).unwrap(), 2);
        store.clear_soft_bounces("jo@example.org").unwrap();
        assert_eq!(store.soft_bounce("jo@example.org", "<c@x>", 8).unwrap(), 1);
    }

    #[test]
    fn soft_bounces_older_than_the_window_no_longer_count() {
        let dir = tempfile::tempdir().unwrap();
        let at = |day: &str| {
            let origin = format!("2026-{day}T10:00:00Z").parse().unwrap();
            Optouts::open(dir.path(), Clock::starting_at(origin)).unwrap()
        };
        assert_eq!(at("01-05").soft_bounce("jo@x.org", "<w1@x>", 8).unwrap(), 1);
        assert_eq!(at("02-02").soft_bounce("jo@x.org", "<w5@x>", 8).unwrap(), 2);
        // Nine weeks after the first: it has decayed, the second still counts.
        assert_eq!(
            at("03-09").soft_bounce("jo@x.org", "<w10@x>", 8).unwrap(),
            2
        );
    }

    #[test]
    fn inbox_messages_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Optouts::open(dir.path(), Clock::system()).unwrap();
        assert_eq!(store.seen("abc").unwrap(), None);
        store.mark_seen("abc", "bounced").unwrap();
        store.mark_seen("abc", "other").unwrap();
        assert_eq!(store.seen("abc").unwrap().as_deref(), Some("bounced"));
    }
}
