//! One person in the ledger: what it holds about them (`subscribers show`), and forgetting
//! them (`subscribers forget`): their rows keep their week and state, so the counts stay
//! true and no week is sent to that row again, but the address, the name, the replies
//! that may quote the address and the Message-ID (a hash of it) are gone.

use std::collections::HashSet;

use rusqlite::params;

use super::Ledger;
use crate::error::Result;

/// One week of one person, as the ledger holds it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct HeldRow {
    pub week: String,
    pub kind: String,
    pub email: String,
    pub name: Option<String>,
    pub state: String,
    pub attempts: u32,
    pub updated_at: String,
}

impl Ledger {
    /// Every row about `key`, oldest week first.
    pub(crate) fn rows_of(&self, key: &str) -> Result<Vec<HeldRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT week, kind, email, name, state, attempts, updated_at FROM recipients
                 WHERE key = ?1 ORDER BY week, kind",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([key], |r| {
                Ok(HeldRow {
                    week: r.get(0)?,
                    kind: r.get(1)?,
                    email: r.get(2)?,
                    name: r.get(3)?,
                    state: r.get(4)?,
                    attempts: r.get(5)?,
                    updated_at: r.get(6)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// The address a Message-ID of ours was sent to, if the ledger has it.
    pub(crate) fn email_of_message_id(&self, message_id: &str) -> Result<Option<String>> {
        use rusqlite::OptionalExtension as _;
        self.conn
            .query_row(
                "SELECT email FROM recipients WHERE message_id = ?1 LIMIT 1",
                [message_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Replace `key`'s rows by `tombstone` rows and overwrite the freed space, and blank
    /// their Message-IDs in the journal's keep; how many rows.
    pub(crate) fn forget(&self, key: &str, tombstone: &str) -> Result<usize> {
        self.conn
            .pragma_update(None, "secure_delete", true)
            .map_err(|e| self.err(e))?;
        let ids: HashSet<String> = {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT message_id FROM recipients WHERE key = ?1 AND message_id IS NOT NULL",
                )
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([key], |r| r.get(0))
                .map_err(|e| self.err(e))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(|e| self.err(e))?
        };
        if let Some(state_dir) = self.path.parent().filter(|_| !ids.is_empty()) {
            super::journal::scrub(state_dir, &ids)?;
        }
        let rows = self
            .conn
            .execute(
                "UPDATE recipients SET key = ?1, email = '(forgotten)', name = NULL,
                     message_id = NULL, reply = NULL, last_error = NULL
                 WHERE key = ?2",
                params![tombstone, key],
            )
            .map_err(|e| self.err(e))?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }
}
