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

/// One finding of the inbox, as `status` counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// RFC 3339.
    pub at: String,
    /// `hard`, `soft`, `block`, `complaint`, or `leave` (a request to leave that is not a
    /// complaint: one-click, the unsubscribe address, the command).
    pub class: String,
    /// The receiving domain (the reader's), or empty for a leave.
    pub domain: String,
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

    /// Every finding and every leave, oldest first.
    pub(crate) fn events(&self) -> Result<Vec<Event>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT at, class, domain FROM inbox_events
                 UNION ALL
                 SELECT at, 'leave', '' FROM optouts
                   WHERE status = 'unsubscribed' AND source NOT LIKE 'inbox: abuse report%'
                 UNION ALL
                 SELECT at, class, '' FROM reader_events
                 ORDER BY 1",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Event {
                    at: r.get(0)?,
                    class: r.get(1)?,
                    domain: r.get(2)?,
                })
            })
            .map_err(|e| self.db(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.db(e))
    }
}
