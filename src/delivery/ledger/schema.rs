//! The ledger's shape and its history. A ledger carries SQLite's `application_id` (so a
//! foreign database is never taken for ours) and a `user_version`; opening one for writing
//! brings it to [`VERSION`] with the migrations below, in one transaction.
//!
//! History: version 0 had no version at all; its `recipients` were keyed by
//! (week, kind, key) in the first releases, then by (week, kind, seq). Version 2 keys by
//! (week, kind, seq), checks the state column, and counts unknown outcomes per recipient.
//! Version 3 adds `journal_folds`, how much of each journal segment is in the ledger.

use rusqlite::{Connection, OptionalExtension};

/// "dgst": marks a SQLite file as a digestif ledger.
pub(super) const APPLICATION_ID: i32 = 0x6467_7374;
/// The shape this build reads and writes.
pub(super) const VERSION: i32 = 4;

const SENDS: &str = "
CREATE TABLE IF NOT EXISTS sends (
    week TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    PRIMARY KEY (week, kind)
);
CREATE TABLE IF NOT EXISTS variants (
    week TEXT NOT NULL,
    kind TEXT NOT NULL,
    variant INTEGER NOT NULL,
    subject TEXT NOT NULL,
    html TEXT,
    text TEXT NOT NULL,
    greeting_named TEXT NOT NULL,
    greeting_anonymous TEXT NOT NULL,
    PRIMARY KEY (week, kind, variant)
);
-- How many lines of each journal segment were applied (see ledger::journal).
CREATE TABLE IF NOT EXISTS journal_folds (
    segment TEXT PRIMARY KEY,
    lines INTEGER NOT NULL
);
-- What the journal proved of a week the ledger lost (`status --repair`, version 4): the
-- week's next freeze gives the reader of each Message-ID this state instead of pending.
CREATE TABLE IF NOT EXISTS recovered (
    week TEXT NOT NULL,
    message_id TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (week, message_id)
);";

/// The states a recipient may be in. Written as comparisons: SQLite evaluates an `IN` list
/// of eight by building a temporary B-tree at every insert and update, which cost a third
/// of a freeze's CPU.
const STATE_CHECK: &str = "state = 'pending' OR state = 'sending' OR state = 'sent' \
    OR state = 'deferred' OR state = 'failed' OR state = 'skipped' \
    OR state = 'unsubscribed' OR state = 'unknown'";

/// The same check as versions 0 to 2 wrote it.
const STATE_CHECK_V2: &str = "state IN\n        ('pending', 'sending', 'sent', 'deferred', 'failed', 'skipped', 'unsubscribed', 'unknown')";

/// Version 2's recipients, created under `name` (migrations build it aside, then rename).
fn recipients_table(name: &str) -> String {
    format!(
        "CREATE TABLE {name} (
    week TEXT NOT NULL,
    kind TEXT NOT NULL,
    seq INTEGER NOT NULL,
    key TEXT NOT NULL,
    email TEXT NOT NULL,
    name TEXT,
    variant INTEGER,
    state TEXT NOT NULL CHECK ({STATE_CHECK}),
    attempts INTEGER NOT NULL DEFAULT 0,
    message_id TEXT,
    reply TEXT,
    last_error TEXT,
    possible_duplicate INTEGER NOT NULL DEFAULT 0,
    -- Transactions with no reply after the end of data (outcome unknown).
    unknown INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    -- Rows are inserted in seq order, so the primary key grows at its end (fast freezes).
    PRIMARY KEY (week, kind, seq)
);"
    )
}

/// What is wrong with a database that cannot be used as this build's ledger.
#[derive(Debug)]
pub(super) enum Unusable {
    Sqlite(rusqlite::Error),
    /// Another program's database.
    Foreign(i32),
    /// Written by a newer digestif.
    Newer(i32),
}

impl From<rusqlite::Error> for Unusable {
    fn from(e: rusqlite::Error) -> Self {
        Unusable::Sqlite(e)
    }
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Sqlite(e) => write!(f, "{e}"),
            Unusable::Foreign(id) => write!(
                f,
                "not a digestif ledger (SQLite application id {id:#x}); move it away"
            ),
            Unusable::Newer(v) => write!(
                f,
                "written by a newer digestif (ledger version {v}, this one reads up to {VERSION}); upgrade digestif"
            ),
        }
    }
}

fn has_table(conn: &Connection, name: &str) -> Result<bool, rusqlite::Error> {
    conn.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
}

/// Check that a ledger opened read-only is one this build can read.
pub(super) fn check_readable(conn: &Connection) -> Result<(), Unusable> {
    match crate::store::ids(conn)? {
        (0, 0) => Ok(()),
        (APPLICATION_ID, v) if v <= VERSION => Ok(()),
        (APPLICATION_ID, v) => Err(Unusable::Newer(v)),
        (other, _) => Err(Unusable::Foreign(other)),
    }
}

/// Whether the database holds no ledger tables at all (new, or emptied).
pub(super) fn is_empty(conn: &Connection) -> Result<bool, rusqlite::Error> {
    Ok(!has_table(conn, "recipients")?)
}

/// Bring the ledger to [`VERSION`]: create it, or migrate an older one, in one transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), Unusable> {
    let (app, version) = crate::store::ids(conn)?;
    match (app, version) {
        (APPLICATION_ID, VERSION) => return Ok(()),
        (APPLICATION_ID, v) if v > VERSION => return Err(Unusable::Newer(v)),
        (APPLICATION_ID, _) | (0, 0) => {}
        (other, _) => return Err(Unusable::Foreign(other)),
    }
    let tx = conn.transaction()?;
    tx.execute_batch(SENDS)?;
    let has_recipients = has_table(&tx, "recipients")?;
    if has_recipients && version < 2 {
        // Versions 0 and 1: rebuild under the new key and constraints, keeping every row.
        tx.execute_batch(&recipients_table("recipients_v2"))?;
        tx.execute_batch(
            "INSERT INTO recipients_v2 (week, kind, seq, key, email, name, variant, state, attempts,
                 message_id, reply, last_error, possible_duplicate, updated_at)
             SELECT week, kind, seq, key, email, name, variant, state, attempts,
                 message_id, reply, last_error, possible_duplicate, updated_at FROM recipients;
             DROP INDEX IF EXISTS recipients_by_seq;
             DROP TABLE recipients;
             ALTER TABLE recipients_v2 RENAME TO recipients;",
        )?;
    } else if !has_recipients {
        tx.execute_batch(&recipients_table("recipients"))?;
    } else if version < 3 {
        // The same constraint, cheaper to check: rewritten in place (SQLite's documented
        // way to change a CHECK constraint without copying the table, safe as every row
        // meets the new one), so a ledger of millions of rows migrates at once.
        let schema_version: i64 = tx.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
        tx.execute_batch("PRAGMA writable_schema = ON;")?;
        tx.execute(
            "UPDATE sqlite_master SET sql = replace(sql, ?1, ?2) WHERE type = 'table' AND name = 'recipients'",
            [STATE_CHECK_V2, STATE_CHECK],
        )?;
        tx.execute_batch(&format!(
            "PRAGMA schema_version = {}; PRAGMA writable_schema = OFF;",
            schema_version + 1
        ))?;
    }
    tx.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {VERSION};"
    ))?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout the first releases shipped, before versions existed.
    const VERSION_0_KEYED_BY_ADDRESS: &str = "
        CREATE TABLE sends (week TEXT NOT NULL, kind TEXT NOT NULL, started_at TEXT NOT NULL,
            content_hash TEXT NOT NULL, PRIMARY KEY (week, kind));
        CREATE TABLE variants (week TEXT NOT NULL, kind TEXT NOT NULL, variant INTEGER NOT NULL,
            subject TEXT NOT NULL, html TEXT, text TEXT NOT NULL, greeting_named TEXT NOT NULL,
            greeting_anonymous TEXT NOT NULL, PRIMARY KEY (week, kind, variant));
        CREATE TABLE recipients (week TEXT NOT NULL, kind TEXT NOT NULL, seq INTEGER NOT NULL,
            key TEXT NOT NULL, email TEXT NOT NULL, name TEXT, variant INTEGER, state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0, message_id TEXT, reply TEXT, last_error TEXT,
            possible_duplicate INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL,
            PRIMARY KEY (week, kind, key));
        CREATE INDEX recipients_by_seq ON recipients (week, kind, seq);
        INSERT INTO sends VALUES ('2011-W52', 'real', 't', 'h');
        INSERT INTO recipients (week, kind, seq, key, email, state, updated_at)
            VALUES ('2011-W52', 'real', 0, 'a@x.org', 'a@x.org', 'sent', 't'),
                   ('2011-W52', 'real', 1, 'b@x.org', 'b@x.org', 'deferred', 't');";

    #[test]
    fn an_unversioned_ledger_is_migrated_keeping_every_row() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(VERSION_0_KEYED_BY_ADDRESS).unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(crate::store::ids(&conn).unwrap(), (APPLICATION_ID, VERSION));
        let rows: Vec<(i64, String, i64)> = conn
            .prepare("SELECT seq, state, unknown FROM recipients ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows, [(0, "sent".into(), 0), (1, "deferred".into(), 0)]);
        // The new key: two rows with one address but different seq are allowed now.
        conn.execute(
            "INSERT INTO recipients (week, kind, seq, key, email, state, updated_at)
             VALUES ('2011-W52', 'real', 2, 'a@x.org', 'a@x.org', 'pending', 't')",
            [],
        )
        .unwrap();
        // And states are checked.
        let refused = conn
            .execute("UPDATE recipients SET state = 'snet' WHERE seq = 0", [])
            .unwrap_err();
        assert!(
            refused.to_string().contains("CHECK constraint failed"),
            "{refused}"
        );
        // Migrating again changes nothing.
        migrate(&mut conn).unwrap();
    }

    #[test]
    fn a_version_2_ledger_keeps_its_rows_and_gets_the_cheaper_state_check_in_place() {
        let mut conn = Connection::open_in_memory().unwrap();
        let v2 = recipients_table("recipients").replace(STATE_CHECK, STATE_CHECK_V2);
        conn.execute_batch(&format!(
            "{SENDS}
             {v2};
             INSERT INTO recipients (week, kind, seq, key, email, state, unknown, updated_at)
                 VALUES ('2011-W52', 'real', 0, 'a@x.org', 'a@x.org', 'deferred', 1, 't');
             PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 2;"
        ))
        .unwrap();
        let before: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'recipients'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(before.contains(STATE_CHECK_V2), "{before}");
        migrate(&mut conn).unwrap();
        assert_eq!(crate::store::ids(&conn).unwrap(), (APPLICATION_ID, VERSION));
        let after: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'recipients'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(after.contains(STATE_CHECK), "{after}");
        let row: (String, i64) = conn
            .query_row("SELECT state, unknown FROM recipients", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(row, ("deferred".into(), 1));
        let refused = conn
            .execute("UPDATE recipients SET state = 'snet'", [])
            .unwrap_err();
        assert!(
            refused.to_string().contains("CHECK constraint failed"),
            "{refused}"
        );
        conn.execute("UPDATE recipients SET state = 'sent'", [])
            .unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }

    #[test]
    fn foreign_and_newer_databases_are_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA application_id = 42; CREATE TABLE t (x);")
            .unwrap();
        assert!(matches!(migrate(&mut conn), Err(Unusable::Foreign(42))));
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.execute_batch("PRAGMA user_version = 99;").unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(err.to_string().contains("newer digestif"), "{err}");
        assert!(matches!(check_readable(&conn), Err(Unusable::Newer(99))));
    }
}
