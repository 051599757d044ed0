//! What comes back after a digest, kept with its time so that `status` can give each
//! week its rates: hard and soft bounces, refusals of the sender per receiving domain,
//! complaints. Leaves are the store's own requests.

use rusqlite::params;

use super::Optouts;
use crate::error::Result;

/// Version 2 of the store: the inbox's findings, one row each.
pub(super) fn create_table(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS inbox_events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            class TEXT NOT NULL CHECK (class IN ('hard', 'soft', 'block', 'complaint')),
            domain TEXT NOT NULL
        );",
    )
}

/// One finding of the inbox, as `status` counts it, borrowed from the store's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Event<'a> {
    /// RFC 3339.
    pub at: &'a str,
    /// `hard`, `soft`, `block`, `complaint`, or `leave` (a request to leave that is not a
    /// complaint: one-click, the unsubscribe address, the command).
    pub class: &'a str,
    /// The receiving domain (the reader's), or empty for a leave.
    pub domain: &'a str,
}

impl Optouts {
    /// Keep one finding of the inbox (`class` as [`Event::class`]).
    pub(crate) fn note_event(&self, class: &str, domain: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO inbox_events (at, class, domain) VALUES (?1, ?2, ?3)",
                params![self.clock.now().to_rfc3339(), class, domain],
            )
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Hand every finding and every leave to `visit`, in no particular order, one row at a
    /// time: a store that has run for years holds millions of them.
    pub(crate) fn each_event(&self, mut visit: impl FnMut(Event<'_>)) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT at, class, domain FROM inbox_events
                 UNION ALL
                 SELECT at, 'leave', '' FROM optouts
                   WHERE status = 'unsubscribed' AND source NOT LIKE 'inbox: abuse report%'
                 UNION ALL
                 SELECT at, class, '' FROM reader_events",
            )
            .map_err(|e| self.db(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.db(e))?;
        while let Some(row) = rows.next().map_err(|e| self.db(e))? {
            let text = |i| row.get_ref(i).and_then(|v| Ok(v.as_str()?));
            let event = Event {
                at: text(0).map_err(|e| self.db(e))?,
                class: text(1).map_err(|e| self.db(e))?,
                domain: text(2).map_err(|e| self.db(e))?,
            };
            visit(event);
        }
        Ok(())
    }
}
