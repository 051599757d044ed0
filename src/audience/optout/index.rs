//! Who a token names, without reading the list: `<state_dir>/readers.sqlite` maps each
//! reader's token to their address key, address and status, as the list file was at a
//! stamp (inode, length, modification time). A click then costs one indexed lookup, not a
//! read of a million entries and a million HMACs.
//!
//! The index is derived data: deleted, it is built again. When the list changes under it
//! (a hand edit, a command, a send), it is rebuilt in the background into a new file that
//! replaces it whole, while lookups go on against the old one; only a token the old one
//! does not know waits for the new one. Changes `serve` makes itself (a fold of the
//! requests it accepted) are written into the index as they are made.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::audience::subscribers::{self, Catalog, Status};
use crate::audience::token::{Named, Secret};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::{self, Access, Schema, Store};

/// "dgsr": a digestif reader index.
const SCHEMA: Schema = Schema {
    application_id: 0x6467_7372,
    migrations: &[create_tables, create_changed],
};

/// Version 2: the readers a fold of `serve`'s changed, apart from the million rows the
/// build wrote in the list's order. Written into those rows, each fold of thousands of
/// clicks dirtied a page per reader (tens of MB synced at the next checkpoint, a stall of
/// every other sync on the disk meanwhile); here they sit together, a few pages.
fn create_changed(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE changed (
            tag BLOB PRIMARY KEY,
            key TEXT NOT NULL,
            email TEXT NOT NULL,
            status TEXT NOT NULL
        ) WITHOUT ROWID;",
    )
}

fn create_tables(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE readers (
            tag BLOB NOT NULL,
            key TEXT NOT NULL,
            email TEXT NOT NULL,
            status TEXT NOT NULL
        );
        CREATE INDEX readers_tag ON readers (tag);
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);",
    )
}

/// How long a lookup of a token the index does not know waits for a rebuild under way.
const WAIT_FOR_REBUILD: Duration = Duration::from_secs(60);

/// A reader as the index knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Indexed {
    pub key: String,
    pub email: String,
    pub status: Status,
}

/// A file's identity and version: it changed when this does (the list is only ever
/// replaced whole, by a rename, or edited by hand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    inode: u64,
    len: u64,
    modified_ns: i128,
}

impl Stamp {
    pub(crate) fn of(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(Stamp {
            inode: meta.ino(),
            len: meta.len(),
            modified_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        })
    }

    fn text(self) -> String {
        format!("{}:{}:{}", self.inode, self.len, self.modified_ns)
    }
}

/// Where the index stands against the list file.
struct Freshness {
    /// The list's stamp the index reflects (`None`: no index yet).
    indexed: Option<String>,
    rebuilding: bool,
    /// A fold of ours is under way on a list the index was up to date with: the list
    /// changes, but the index stays right for all but the fold's readers, and
    /// [`TokenIndex::folded`] brings those in.
    folding: bool,
    /// The last rebuild's failure, told to the next lookup that waits.
    failed: Option<String>,
}

/// The reader index of one state folder, shared by `serve`'s workers.
pub(crate) struct TokenIndex {
    list: PathBuf,
    path: PathBuf,
    catalog: Catalog,
    secret: Secret,
    conn: Mutex<Connection>,
    fresh: Mutex<Freshness>,
    /// Told when a rebuild or a fold of ours ends.
    settled: Condvar,
}

impl TokenIndex {
    /// Open the index of `config`'s state folder (made empty if missing); it is not brought
    /// up to date here, so that `serve` starts at once: see [`TokenIndex::refresh`].
    pub(crate) fn open(config: &Config, catalog: &Catalog, secret: Secret) -> Result<TokenIndex> {
        crate::fsutil::create_private_dir(&config.state_dir)?;
        let path = config.state_dir.join("readers.sqlite");
        let conn = open_index(&path)?;
        let stamp = meta(&conn, "stamp").map_err(|e| Error::store(Store::Readers, &path, e))?;
        let check = meta(&conn, "secret").map_err(|e| Error::store(Store::Readers, &path, e))?;
        // Made under another secret, its tags name nobody: as good as none.
        let indexed = stamp.filter(|_| check.as_deref() == Some(&secret_check(&secret)));
        Ok(TokenIndex {
            list: config.subscribers.clone(),
            path,
            catalog: catalog.clone(),
            secret,
            conn: Mutex::new(conn),
            fresh: Mutex::new(Freshness {
                indexed,
                rebuilding: false,
                folding: false,
                failed: None,
            }),
            settled: Condvar::new(),
        })
    }

    pub(crate) fn secret(&self) -> &Secret {
        &self.secret
    }

    /// Is the index that of the list as it is now? Starts a rebuild in the background when
    /// it is not (one at a time). Costs one `stat`.
    pub(crate) fn refresh(self: &Arc<Self>) -> bool {
        let now = Stamp::of(&self.list).map(Stamp::text);
        let mut fresh = lock(&self.fresh);
        let ours = fresh.folding && !fresh.rebuilding;
        if fresh.indexed.is_some() && (ours || fresh.indexed == now) {
            return true;
        }
        if !fresh.rebuilding {
            fresh.rebuilding = true;
            let index = Arc::clone(self);
            std::thread::spawn(move || index.rebuild());
        }
        false
    }

    /// The reader `token` names: a token of either format, checked against the secret.
    /// When the list changed since the index was made, a token it does not know, or knows
    /// as active (they may have left since), waits for the rebuild.
    pub(crate) fn find(self: &Arc<Self>, token: &str) -> Result<Option<Indexed>> {
        let Some(tag) = self.tag_of(token) else {
            return Ok(None);
        };
        let fresh = self.refresh();
        let found = self.get(&tag)?;
        let sure = found.as_ref().is_some_and(|r| r.status != Status::Active);
        if fresh || sure {
            return Ok(found);
        }
        self.wait_for_rebuild()?;
        self.get(&tag)
    }

    /// The tag a token carries: its own, or for a first-format token (which holds its
    /// address key under a MAC) the tag of that key.
    fn tag_of(&self, token: &str) -> Option<[u8; 16]> {
        match self.secret.read(token)? {
            Named::Key(key) => Some(self.secret.tag(&key)),
            Named::Tag(tag) => Some(tag),
        }
    }

    /// The reader of `tag` (see [`reader_of`]).
    fn get(&self, tag: &[u8; 16]) -> Result<Option<Indexed>> {
        reader_of(&lock(&self.conn), tag).map_err(|e| self.db(e))
    }

    fn wait_for_rebuild(&self) -> Result<()> {
        let fresh = lock(&self.fresh);
        let (fresh, _) = self
            .settled
            .wait_timeout_while(fresh, WAIT_FOR_REBUILD, |f| f.rebuilding)
            .unwrap_or_else(PoisonError::into_inner);
        match &fresh.failed {
            Some(why) => Err(Error::StoreUnusable {
                store: Store::Readers,
                path: self.path.clone(),
                why: why.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Build the index of the list as it is into a new file, then put it in place.
    fn rebuild(&self) {
        let result = self.build_new();
        let mut fresh = lock(&self.fresh);
        match result {
            Ok(stamp) => {
                fresh.indexed = stamp;
                fresh.failed = None;
            }
            Err(e) => fresh.failed = Some(e.to_string()),
        }
        fresh.rebuilding = false;
        self.settled.notify_all();
    }

    /// The new index, written beside the old one and renamed over it; the stamp it is of.
    fn build_new(&self) -> Result<Option<String>> {
        let stamp = Stamp::of(&self.list).map(Stamp::text);
        let new = self.path.with_extension("sqlite.new");
        let _ = std::fs::remove_file(&new);
        let mut conn = open_index(&new)?;
        let db = |e| Error::store(Store::Readers, &new, e);
        // Derived data: no journal, no sync until the end (a crash leaves a `.new` file
        // that the next rebuild removes).
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -8192;",
        )
        .map_err(db)?;
        // Rows in the list's order, indexed by tag at the end: SQLite sorts the tags once
        // (bounded memory, temporary files) instead of a million inserts at random places.
        conn.execute_batch("DROP INDEX readers_tag;").map_err(db)?;
        let tx = conn.transaction().map_err(db)?;
        {
            let mut insert = tx
                .prepare("INSERT INTO readers VALUES (?1, ?2, ?3, ?4)")
                .map_err(db)?;
            let mut failure = None;
            self.catalog.with(|known| {
                subscribers::stream(&self.list, known, &mut |_, _| None, &mut |s| {
                    let key = s.key();
                    let tag = self.secret.tag(&key);
                    let row = params![&tag[..], key, s.email.to_string(), s.status.as_str()];
                    if let Err(e) = insert.execute(row) {
                        failure.get_or_insert(e);
                    }
                })
            })?;
            if let Some(e) = failure {
                return Err(db(e));
            }
            tx.execute_batch("CREATE INDEX readers_tag ON readers (tag);")
                .map_err(db)?;
            set_meta(&tx, "stamp", stamp.as_deref().unwrap_or("")).map_err(db)?;
            set_meta(&tx, "secret", &secret_check(&self.secret)).map_err(db)?;
        }
        tx.commit().map_err(db)?;
        conn.execute_batch("PRAGMA journal_mode = DELETE;")
            .map_err(db)?;
        drop(conn);
        // Swapped under the connection's lock: no lookup sees a half-replaced file.
        let mut current = lock(&self.conn);
        // The old file closed first: its write-ahead log is named by the path.
        let placeholder = Connection::open_in_memory().map_err(db)?;
        drop(std::mem::replace(&mut *current, placeholder));
        std::fs::rename(&new, &self.path).map_err(|e| Error::io("replace", &self.path, e))?;
        *current = open_index(&self.path)?;
        Ok(stamp)
    }

    /// A fold of ours begins, the list's lock held: until [`TokenIndex::folded`] (or
    /// [`TokenIndex::fold_ended`]) the list's changes are not a reason to rebuild, if the
    /// index was up to date with it. The list's stamp before it.
    pub(crate) fn fold_begins(&self) -> Option<Stamp> {
        let before = Stamp::of(&self.list);
        let mut fresh = lock(&self.fresh);
        fresh.folding = fresh.indexed.is_some() && fresh.indexed == before.map(Stamp::text);
        before
    }

    /// A fold of ours wrote nothing (the list was held, or the fold failed).
    pub(crate) fn fold_ended(&self) {
        lock(&self.fresh).folding = false;
        self.settled.notify_all();
    }

    /// Wait until no fold of ours is under way, so that the index has what the last one
    /// wrote into the list (or is known to be behind it, and lookups wait for a rebuild).
    pub(crate) fn wait_for_fold(&self) {
        let fresh = lock(&self.fresh);
        let _ = self
            .settled
            .wait_timeout_while(fresh, WAIT_FOR_REBUILD, |f| f.folding)
            .unwrap_or_else(PoisonError::into_inner);
    }

    /// Write what a fold of ours changed in the list (address, new status) into the index,
    /// and take the list's new stamp as ours, if the index was that of the list as it was
    /// `before` the fold; else the list changed under us too, and a rebuild follows.
    pub(crate) fn folded(&self, before: Option<Stamp>, changed: &[(String, Status)]) -> Result<()> {
        let ours = {
            let fresh = lock(&self.fresh);
            !fresh.rebuilding && fresh.indexed.is_some() && fresh.indexed == before.map(Stamp::text)
        };
        if !ours {
            self.fold_ended();
            return Ok(());
        }
        let after = Stamp::of(&self.list).map(Stamp::text);
        let written = self.write_rows(changed, after.as_deref());
        let mut fresh = lock(&self.fresh);
        fresh.folding = false;
        if written.is_ok() {
            fresh.indexed = after;
        }
        drop(fresh);
        self.settled.notify_all();
        written
    }

    /// Write the fold's readers and the list's new stamp through a connection of its own,
    /// outside the locks: lookups go on meanwhile (WAL), reading the index as it was.
    fn write_rows(&self, changed: &[(String, Status)], stamp: Option<&str>) -> Result<()> {
        let rows: Vec<([u8; 16], String, &str, Status)> = changed
            .iter()
            .filter_map(|(email, status)| {
                let key = subscribers::key_of_text(email)?;
                Some((self.secret.tag(&key), key, email.as_str(), *status))
            })
            .collect();
        let mut conn = open_index(&self.path)?;
        let tx = conn.transaction().map_err(|e| self.db(e))?;
        {
            let mut write = tx
                .prepare("INSERT OR REPLACE INTO changed VALUES (?1, ?2, ?3, ?4)")
                .map_err(|e| self.db(e))?;
            for (tag, key, email, status) in &rows {
                write
                    .execute(params![&tag[..], key, email, status.as_str()])
                    .map_err(|e| self.db(e))?;
            }
        }
        set_meta(&tx, "stamp", stamp.unwrap_or("")).map_err(|e| self.db(e))?;
        tx.commit().map_err(|e| self.db(e))
    }

    fn db(&self, e: rusqlite::Error) -> Error {
        Error::store(Store::Readers, &self.path, e)
    }
}

impl std::fmt::Debug for TokenIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIndex")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The reader of `tag`: as a fold of `serve`'s left them, else as the list was at the
/// build (the first entry, should the list name them twice).
fn reader_of(conn: &Connection, tag: &[u8; 16]) -> rusqlite::Result<Option<Indexed>> {
    for sql in [
        "SELECT key, email, status FROM changed WHERE tag = ?1",
        "SELECT key, email, status FROM readers WHERE tag = ?1 ORDER BY rowid LIMIT 1",
    ] {
        let mut stmt = conn.prepare_cached(sql)?;
        let found = stmt
            .query_row([&tag[..]], |r| {
                Ok(Indexed {
                    key: r.get(0)?,
                    email: r.get(1)?,
                    status: Status::parse(&r.get::<_, String>(2)?).unwrap_or(Status::Active),
                })
            })
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// The address keys of `tags` from `serve`'s reader index, for a command that is not
/// `serve`: `None` unless the index is that of the list as it is now, made with `secret`
/// (absent, behind the list, or unreadable, it is derived data the caller does without).
pub(crate) fn keys_if_current(
    config: &Config,
    secret: &Secret,
    tags: &[[u8; 16]],
) -> Option<HashMap<[u8; 16], String>> {
    let path = config.state_dir.join("readers.sqlite");
    if !path.exists() {
        return None;
    }
    let conn = store::open(Store::Readers, &path, Access::Read).ok()?;
    let current = Stamp::of(&config.subscribers).map(Stamp::text);
    let ours = meta(&conn, "secret").ok()? == Some(secret_check(secret));
    if !ours || current.is_none() || meta(&conn, "stamp").ok()? != current {
        return None;
    }
    let mut keys = HashMap::new();
    for tag in tags {
        if let Some(reader) = reader_of(&conn, tag).ok()? {
            keys.insert(*tag, reader.key);
        }
    }
    Some(keys)
}

fn open_index(path: &Path) -> Result<Connection> {
    let mut conn = store::open(Store::Readers, path, Access::Write)?;
    store::migrate(Store::Readers, path, &mut conn, &SCHEMA)?;
    // Derived data, rebuilt at will: a commit need not reach the disk before an answer.
    conn.execute_batch("PRAGMA synchronous = NORMAL;")
        .map_err(|e| Error::store(Store::Readers, path, e))?;
    Ok(conn)
}

fn meta(conn: &Connection, name: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()
}

fn set_meta(conn: &Connection, name: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)",
        [name, value],
    )
    .map(drop)
}

/// Which secret an index was made with, without keeping the secret (a tag of a fixed key).
fn secret_check(secret: &Secret) -> String {
    crate::text::hex(&secret.tag("\0digestif reader index"))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A worker that panicked while holding the lock left a whole value behind.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
