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

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::Utc;
use rusqlite::{params, Connection, OptionalExtension};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::store::{self, Access, Schema, Store};
use crate::subscribers::{Catalog, Editor, Status};
use crate::token::{Index, Secret};

/// "dgso": marks a SQLite file as a digestif opt-out store.
const SCHEMA: Schema = Schema {
    application_id: 0x6467_736f,
    migrations: &[create_tables],
};

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
}

impl Optouts {
    pub(crate) fn open(state_dir: &Path) -> Result<Optouts> {
        crate::fsutil::create_dir_all(state_dir)?;
        let path = state_dir.join("optouts.sqlite");
        // Every commit synced: a request acknowledged to a reader must survive a power
        // loss. Requests are rare, so the fsync per commit costs nothing that matters.
        let mut conn = store::open(Store::Optouts, &path, Access::Write)?;
        store::migrate(Store::Optouts, &path, &mut conn, &SCHEMA)?;
        Ok(Optouts { conn, path })
    }

    fn db(&self, e: rusqlite::Error) -> Error {
        Error::store(Store::Optouts, &self.path, e)
    }

    /// Record that `key` leaves with `status`; committed when this returns.
    pub(crate) fn record(&self, key: &str, status: Status, source: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO optouts (key, status, source, at) VALUES (?1, ?2, ?3, ?4)",
                params![key, status.as_str(), source, Utc::now().to_rfc3339()],
            )
            .map_err(|e| self.db(e))?;
        Ok(())
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

    fn mark_applied(&mut self, ids: &[i64]) -> Result<()> {
        let now = Utc::now().to_rfc3339();
        let path = self.path.clone();
        let db = |source| Error::store(Store::Optouts, &path, source);
        let tx = self.conn.transaction().map_err(db)?;
        for id in ids {
            tx.execute(
                "UPDATE optouts SET applied_at = ?1 WHERE id = ?2",
                params![now, id],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
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
                params![digest, verdict, Utc::now().to_rfc3339()],
            )
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Count a temporary failure of the message `message` to `key`; the number of
    /// different messages that failed so for `key`.
    pub(crate) fn soft_bounce(&self, key: &str, message: &str) -> Result<u32> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO soft_bounces (key, message, at) VALUES (?1, ?2, ?3)",
                params![key, message, Utc::now().to_rfc3339()],
            )
            .map_err(|e| self.db(e))?;
        self.conn
            .query_row(
                "SELECT count(*) FROM soft_bounces WHERE key = ?1",
                [key],
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

/// What [`apply_pending`] wrote.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// (address, new status) for each subscriber whose entry changed.
    pub changed: Vec<(String, Status)>,
}

/// Write every pending request into the subscribers file (comments and order kept). The
/// caller holds the lock; a request for someone already gone, or already in that status,
/// changes nothing.
pub(crate) fn apply_pending(config: &Config, catalog: &Catalog, _lock: &Lock) -> Result<Applied> {
    let mut store = Optouts::open(&config.state_dir)?;
    let pending = store.pending()?;
    if pending.is_empty() {
        return Ok(Applied::default());
    }
    // The latest request per reader, written in one pass over the file that parses only
    // those readers' entries (the whole list is parsed when that pass cannot be sure).
    let changes: HashMap<String, Status> =
        pending.iter().map(|r| (r.key.clone(), r.status)).collect();
    let patched = catalog.with(|known| {
        crate::subscribers::patch::set_statuses(
            &config.subscribers,
            known,
            &changes,
            &|current, asked| already_left(current, asked),
        )
    })?;
    let mut applied = Applied::default();
    if let Some(changed) = patched {
        applied.changed = changed;
        let ids: Vec<i64> = pending.iter().map(|r| r.id).collect();
        store.mark_applied(&ids)?;
        return Ok(applied);
    }
    let mut editor = catalog.with(|k| Editor::open(&config.subscribers, k))?;
    for request in &pending {
        let Some(s) = editor.subscribers.iter().find(|s| s.key() == request.key) else {
            continue;
        };
        if !already_left(s.status, request.status) {
            let email = s.email.clone();
            editor.set_status(&email, request.status);
            applied.changed.push((email.to_string(), request.status));
        }
    }
    if !applied.changed.is_empty() {
        editor.save()?;
    }
    // After the save: a crash between the two applies the same requests again, harmlessly.
    let ids: Vec<i64> = pending.iter().map(|r| r.id).collect();
    store.mark_applied(&ids)?;
    Ok(applied)
}

/// The lock, held by a send or an edit of the list, with the requests to leave written in
/// when it is taken and again when it is let go (the end of a send, an error, a signal
/// that ends the run), so that none waits for the next run.
pub(crate) struct Guard<'a> {
    config: &'a Config,
    catalog: &'a Catalog,
    lock: Option<Lock>,
}

impl<'a> Guard<'a> {
    pub(crate) fn acquire(config: &'a Config, catalog: &'a Catalog) -> Result<Guard<'a>> {
        let lock = Lock::acquire(&config.state_dir)?;
        apply_pending(config, catalog, &lock)?;
        Ok(Guard {
            config,
            catalog,
            lock: Some(lock),
        })
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let Some(lock) = self.lock.take() else { return };
        if let Err(e) = apply_pending(self.config, self.catalog, &lock) {
            // Still recorded: the next send or edit writes it in.
            let style = anstyle::AnsiColor::Yellow.on_default().bold();
            anstream::eprintln!(
                "{style}warning{style:#}: requests to leave are recorded but not yet written into {}: {e}",
                self.config.subscribers.display()
            );
        }
    }
}

/// Apply pending requests now if no send or edit holds the lock; `None` when one does
/// (it applies them when it ends).
pub(crate) fn apply_if_free(config: &Config, catalog: &Catalog) -> Result<Option<Applied>> {
    match Lock::acquire(&config.state_dir) {
        Ok(lock) => apply_pending(config, catalog, &lock).map(Some),
        Err(Error::Locked { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Who is on the list, as far as a request to leave needs to know: each address key's
/// address and status, and the tokens that name them. Read without the lock (the file is
/// only ever replaced whole), and leniently: a reader can leave even while another entry
/// of the file has a mistake in it.
pub(crate) struct Readers {
    pub index: Option<Index>,
    by_key: HashMap<String, (String, Status)>,
}

impl Readers {
    /// `secret`: to resolve tokens; `None` when only addresses will be asked for.
    pub(crate) fn load(
        config: &Config,
        catalog: &Catalog,
        secret: Option<Secret>,
    ) -> Result<Readers> {
        let mut by_key = HashMap::new();
        let mut seen = HashMap::new();
        catalog.with(|known| {
            crate::subscribers::stream(
                &config.subscribers,
                known,
                &mut |key, line| crate::subscribers::first_seen(&mut seen, key, line),
                &mut |s| {
                    by_key.insert(s.key(), (s.email.to_string(), s.status));
                },
            )
        })?;
        let index = secret.map(|secret| Index::new(secret, by_key.keys().cloned()));
        Ok(Readers { index, by_key })
    }

    /// The readers of `keys` only: the file is searched for them and only the entries that
    /// may be theirs are parsed (the whole list is read as [`Readers::load`] does when that
    /// search cannot answer for sure). For a request naming its address.
    pub(crate) fn of(config: &Config, catalog: &Catalog, keys: &[String]) -> Result<Readers> {
        let found = catalog
            .with(|known| crate::subscribers::patch::lookup(&config.subscribers, known, keys))?;
        match found {
            Some(by_key) => Ok(Readers {
                index: None,
                by_key,
            }),
            None => Readers::load(config, catalog, None),
        }
    }

    /// The address key a token stands for.
    pub(crate) fn resolve(&self, token: &str) -> Option<String> {
        self.index.as_ref()?.resolve(token)
    }

    /// (address, status) of a listed reader.
    pub(crate) fn get(&self, key: &str) -> Option<&(String, Status)> {
        self.by_key.get(key)
    }
}

/// What became of a request to leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Left {
    /// Recorded and written into the subscribers file.
    Done { email: String },
    /// Recorded; the file is updated when the running send or edit ends, and a running
    /// send skips them from now on.
    Waiting { email: String },
    /// Already in that status (or bounced): nothing recorded.
    Already { email: String, status: Status },
    /// Not in the list.
    NotListed,
}

/// Record that the reader `key` leaves with `status`, then write it into the file if the
/// lock is free. The request is durable before this returns, whatever the lock.
pub(crate) fn leave(
    config: &Config,
    catalog: &Catalog,
    readers: &Readers,
    key: &str,
    status: Status,
    source: &str,
) -> Result<Left> {
    let Some((email, current)) = readers.get(key).cloned() else {
        return Ok(Left::NotListed);
    };
    if already_left(current, status) {
        return Ok(Left::Already {
            email,
            status: current,
        });
    }
    Optouts::open(&config.state_dir)?.record(key, status, source)?;
    Ok(match apply_if_free(config, catalog)? {
        Some(_) => Left::Done { email },
        None => Left::Waiting { email },
    })
}

/// A running send's view of the requests made since it froze its list.
pub(crate) struct Watch {
    path: PathBuf,
    conn: Connection,
    /// SQLite's `data_version`: changes when another connection commits.
    version: i64,
    left: HashSet<String>,
    /// When `data_version` was last read.
    looked: Option<std::time::Instant>,
}

/// How often a running send looks for new requests to leave. A click lands at most this
/// late; looking before every message cost a tenth of the send's CPU.
const LOOK_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

impl Watch {
    pub(crate) fn open(state_dir: &Path) -> Result<Watch> {
        // Creates the database and its schema if this state folder has none yet.
        drop(Optouts::open(state_dir)?);
        let path = state_dir.join("optouts.sqlite");
        let conn = store::open(Store::Optouts, &path, Access::Read)?;
        let mut watch = Watch {
            path,
            conn,
            version: -1,
            left: HashSet::new(),
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
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key FROM optouts WHERE applied_at IS NULL")
            .map_err(db)?;
        let keys = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(db)?
            .collect::<rusqlite::Result<HashSet<String>>>()
            .map_err(db)?;
        self.left = keys;
        self.version = version;
        Ok(())
    }

    /// Did `key` ask to leave (or bounce) since the list was frozen?
    pub(crate) fn has_left(&mut self, key: &str) -> Result<bool> {
        self.refresh()?;
        Ok(self.left.contains(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_seen_by_a_running_watch_within_a_look() {
        let dir = tempfile::tempdir().unwrap();
        let mut watch = Watch::open(dir.path()).unwrap();
        assert!(!watch.has_left("jo@example.org").unwrap());
        let store = Optouts::open(dir.path()).unwrap();
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
    fn soft_bounces_count_distinct_messages_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let store = Optouts::open(dir.path()).unwrap();
        assert_eq!(store.soft_bounce("jo@example.org", "<a@x>").unwrap(), 1);
        assert_eq!(store.soft_bounce("jo@example.org", "<a@x>").unwrap(), 1);
        assert_eq!(store.soft_bounce("jo@example.org", "<b@x>").unwrap(), 2);
        store.clear_soft_bounces("jo@example.org").unwrap();
        assert_eq!(store.soft_bounce("jo@example.org", "<c@x>").unwrap(), 1);
    }

    #[test]
    fn inbox_messages_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Optouts::open(dir.path()).unwrap();
        assert_eq!(store.seen("abc").unwrap(), None);
        store.mark_seen("abc", "bounced").unwrap();
        store.mark_seen("abc", "other").unwrap();
        assert_eq!(store.seen("abc").unwrap().as_deref(), Some("bounced"));
    }
}
