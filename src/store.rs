//! Leaf: the one way to open a SQLite file digestif keeps (the send ledger, the opt-out
//! store, the feed cache). Every store gets the same settings, its errors name the store,
//! and its shape is versioned: SQLite's `application_id` says the file is ours,
//! `user_version` how many of its migrations are applied.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction};

pub(crate) use crate::error::Store;
use crate::error::{Error, Result};

/// SQLite's page cache per connection, in KiB. Sends touch a few pages per message, so a
/// small cache costs nothing measurable and keeps memory flat whatever the list size.
const CACHE_KIB: u32 = 512;

/// How long a writer waits for another's transaction before giving up.
const BUSY: Duration = Duration::from_secs(30);

/// Whether the command writes to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Created if missing, WAL, every commit synced (a request acknowledged to a reader, a
    /// fold of the journal, must survive a power loss; commits are few).
    Write,
    /// An existing file, never changed (`status`, a dry run, a running send's watch).
    Read,
}

/// One step of a store's shape, applied in a transaction with the others still to do.
/// Steps are written to be safe on a file made before versions were recorded.
pub(crate) type Migration = fn(&Transaction<'_>) -> rusqlite::Result<()>;

/// A store's identity and history.
pub(crate) struct Schema {
    pub(crate) application_id: i32,
    /// `migrations[i]` brings the shape from version `i` to `i + 1`.
    pub(crate) migrations: &'static [Migration],
}

/// Open `path` as the store `which`, with the settings every store shares.
pub(crate) fn open(which: Store, path: &Path, access: Access) -> Result<Connection> {
    let err = |e| Error::store(which, path, e);
    let conn = match access {
        Access::Write => Connection::open(path).map_err(err)?,
        Access::Read => {
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(err)?
        }
    };
    conn.busy_timeout(BUSY).map_err(err)?;
    if access == Access::Write {
        // Readers' addresses: owner only. SQLite gives its -wal and -shm files the
        // database's mode, so they are private too.
        crate::fsutil::keep_private(path, 0o600)?;
    }
    let settings = format!(
        "PRAGMA foreign_keys = ON; PRAGMA cache_size = -{CACHE_KIB}; PRAGMA temp_store = FILE; \
         PRAGMA temp.cache_size = -{CACHE_KIB};"
    );
    conn.execute_batch(&settings).map_err(err)?;
    if access == Access::Write {
        wal(&conn).map_err(err)?;
        conn.execute_batch("PRAGMA synchronous = FULL;")
            .map_err(err)?;
    }
    Ok(conn)
}

/// Turn on write-ahead logging. SQLite answers "database is locked" at once, without its
/// busy handler, when another connection is creating the same new file: try again then.
fn wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + BUSY;
    loop {
        match conn.execute_batch("PRAGMA journal_mode = WAL;") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Bring the store to the last version of `schema`, in one transaction. A file of another
/// program, or of a newer digestif, is refused, unchanged.
pub(crate) fn migrate(
    which: Store,
    path: &Path,
    conn: &mut Connection,
    schema: &Schema,
) -> Result<()> {
    let err = |e| Error::store(which, path, e);
    // Both read in one snapshot: another process may be migrating the file right now.
    let snapshot = conn.unchecked_transaction().map_err(err)?;
    let (app, version) = ids(&snapshot).map_err(err)?;
    drop(snapshot);
    let last = schema.migrations.len() as i32;
    let unusable = |why: String| Error::StoreUnusable {
        store: which,
        path: path.to_path_buf(),
        why,
    };
    if app != schema.application_id && !(app == 0 && version == 0) {
        return Err(unusable(format!(
            "not a digestif {which} (SQLite application id {app:#x}); move it away"
        )));
    }
    if version > last {
        return Err(unusable(format!(
            "written by a newer digestif (version {version}, this one reads up to {last}); \
             upgrade digestif"
        )));
    }
    if app == schema.application_id && version == last {
        return Ok(());
    }
    // The write lock first, then the version again: two processes (or threads) opening a
    // new store at once migrate it once, the second finding it done.
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(err)?;
    let (_, version) = ids(&tx).map_err(err)?;
    if version >= last {
        return Ok(());
    }
    for step in &schema.migrations[version as usize..] {
        step(&tx).map_err(err)?;
    }
    tx.execute_batch(&format!(
        "PRAGMA application_id = {}; PRAGMA user_version = {last};",
        schema.application_id
    ))
    .map_err(err)?;
    tx.commit().map_err(err)
}

/// SQLite's `application_id` and `user_version` of `conn`.
pub(crate) fn ids(conn: &Connection) -> rusqlite::Result<(i32, i32)> {
    let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    Ok((app, version))
}

/// Does `table` have `column`? (For migrations of files made before versions.)
pub(crate) fn has_column(
    tx: &Transaction<'_>,
    table: &str,
    column: &str,
) -> rusqlite::Result<bool> {
    let mut stmt = tx.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    for name in names {
        if name? == column {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(tx: &Transaction<'_>) -> rusqlite::Result<()> {
        tx.execute_batch("CREATE TABLE IF NOT EXISTS t (a TEXT);")
    }

    fn add_b(tx: &Transaction<'_>) -> rusqlite::Result<()> {
        if !has_column(tx, "t", "b")? {
            tx.execute_batch("ALTER TABLE t ADD COLUMN b TEXT;")?;
        }
        Ok(())
    }

    const SCHEMA: Schema = Schema {
        application_id: 0x7465_7374,
        migrations: &[create, add_b],
    };

    #[test]
    fn a_store_from_before_versions_is_migrated_and_a_foreign_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let mut conn = open(Store::Feeds, &path, Access::Write).unwrap();
        // A file made before versions: the table and its later column already there.
        conn.execute_batch("CREATE TABLE t (a TEXT, b TEXT);")
            .unwrap();
        migrate(Store::Feeds, &path, &mut conn, &SCHEMA).unwrap();
        assert_eq!(ids(&conn).unwrap(), (0x7465_7374, 2));
        migrate(Store::Feeds, &path, &mut conn, &SCHEMA).unwrap();

        let other = dir.path().join("other.sqlite");
        let mut foreign = open(Store::Optouts, &other, Access::Write).unwrap();
        foreign
            .execute_batch("PRAGMA application_id = 42;")
            .unwrap();
        let e = migrate(Store::Optouts, &other, &mut foreign, &SCHEMA).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("opt-out store {}: not a digestif opt-out store (SQLite application id 0x2a); move it away", other.display())
        );
    }

    #[test]
    fn errors_name_the_store_they_come_from() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope").join("feeds.sqlite");
        let e = open(Store::Feeds, &missing, Access::Read).unwrap_err();
        assert!(e.to_string().starts_with("feed cache "), "{e}");
        assert_eq!(e.exit_code(), crate::error::exit::INPUT);
        let e = open(Store::Ledger, &missing, Access::Read).unwrap_err();
        assert!(e.to_string().starts_with("send ledger "), "{e}");
        assert_eq!(e.exit_code(), crate::error::exit::FAILURE);
    }
}
