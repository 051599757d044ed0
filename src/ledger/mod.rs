//! The send ledger: the only module that remembers. SQLite (bundled, WAL) under `state_dir`.
//!
//! For each (week, kind) it freezes what is sent (the rendered variants) and to whom (the
//! audience, in order), then tracks each recipient: pending → sending → sent / deferred /
//! failed. A recipient is marked *sending* in a committed transaction before its SMTP
//! transaction starts, and *sent* only after the server's reply to the end of data.
//!
//! Durability: WAL mode. With `ledger_sync = "normal"` (default) every commit survives a
//! killed process; an OS crash or power loss can lose the last commits, whose recipients
//! are then sent again. `ledger_sync = "full"` fsyncs every commit and survives power loss.

mod freeze;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::digest::Week;
use crate::error::{Error, Result};

pub(crate) use freeze::Freezer;

const SCHEMA: &str = "
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
CREATE TABLE IF NOT EXISTS recipients (
    week TEXT NOT NULL,
    kind TEXT NOT NULL,
    seq INTEGER NOT NULL,
    key TEXT NOT NULL,
    email TEXT NOT NULL,
    name TEXT,
    variant INTEGER,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    message_id TEXT,
    reply TEXT,
    last_error TEXT,
    possible_duplicate INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    -- Rows are inserted in seq order, so the primary key grows at its end (fast freezes).
    PRIMARY KEY (week, kind, seq)
);
";

/// Where a recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Pending,
    /// Transaction started; outcome not yet recorded. After a crash: resent once.
    Sending,
    Sent,
    /// Temporary failure: retried by the next run.
    Deferred,
    /// Permanent failure (5xx): not retried unless asked.
    Failed,
    /// Nothing to send: no post in their categories.
    Skipped,
    /// Unsubscribed (or removed) after the week was frozen.
    Unsubscribed,
}

impl State {
    pub(crate) const ALL: [State; 7] = [
        State::Pending,
        State::Sending,
        State::Sent,
        State::Deferred,
        State::Failed,
        State::Skipped,
        State::Unsubscribed,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sending => "sending",
            State::Sent => "sent",
            State::Deferred => "deferred",
            State::Failed => "failed",
            State::Skipped => "skipped",
            State::Unsubscribed => "unsubscribed",
        }
    }
}

/// One rendered variant of a frozen week.
#[derive(Debug, Clone)]
pub(crate) struct FrozenVariant {
    pub id: i64,
    pub subject: String,
    pub html: Option<String>,
    pub text: String,
    pub greeting_named: String,
    pub greeting_anonymous: String,
}

/// One member of a frozen audience. `variant` is `None` when they get nothing this week.
#[derive(Debug, Clone)]
pub(crate) struct AudienceRow {
    pub key: String,
    pub email: String,
    pub name: Option<String>,
    pub variant: Option<i64>,
}

/// A recipient still to send.
#[derive(Debug, Clone)]
pub(crate) struct Recipient {
    pub seq: i64,
    pub key: String,
    pub email: String,
    pub name: Option<String>,
    pub variant: i64,
}

/// One change to a recipient's row; several are committed together by [`Ledger::apply`].
#[derive(Debug, Clone)]
pub(crate) enum Update {
    /// Their transaction is about to start. A recipient that was already *sending* (a crash
    /// left its outcome unknown) is flagged a possible duplicate.
    Sending { seq: i64, message_id: String },
    /// The outcome; `attempts` is the number of transactions tried in this run.
    Outcome {
        seq: i64,
        state: State,
        attempts: i64,
        detail: String,
    },
    /// A message whose outcome was unknown is being sent again.
    PossibleDuplicate { seq: i64 },
}

/// A recipient with a problem, for reports.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Problem {
    pub email: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// SQLite's page cache per connection, in KiB. Sends touch a few pages per message, so a
/// small cache costs nothing measurable and keeps memory flat whatever the list size.
const CACHE_KIB: u32 = 512;

pub(crate) struct Ledger {
    conn: Connection,
    path: PathBuf,
}

impl Ledger {
    pub(crate) fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join("ledger.sqlite3")
    }

    /// Open (creating) the ledger for writing.
    pub(crate) fn open(state_dir: &Path, full_sync: bool) -> Result<Ledger> {
        crate::fsutil::create_dir_all(state_dir)?;
        let path = Ledger::path_in(state_dir);
        let conn = Connection::open(&path).map_err(|e| Error::ledger(&path, e))?;
        let ledger = Ledger { conn, path };
        ledger.configure(full_sync)?;
        ledger
            .conn
            .execute_batch(SCHEMA)
            .map_err(|e| ledger.err(e))?;
        Ok(ledger)
    }

    /// Open an existing ledger read-only; `None` when there is none yet.
    pub(crate) fn open_read_only(state_dir: &Path) -> Result<Option<Ledger>> {
        let path = Ledger::path_in(state_dir);
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| Error::ledger(&path, e))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| Error::ledger(&path, e))?;
        Ok(Some(Ledger { conn, path }))
    }

    fn configure(&self, full_sync: bool) -> Result<()> {
        let sync = if full_sync { "FULL" } else { "NORMAL" };
        self.conn
            .execute_batch(&format!(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON; PRAGMA cache_size=-{CACHE_KIB}; PRAGMA temp_store=FILE; PRAGMA temp.cache_size=-{CACHE_KIB};"
            ))
            .map_err(|e| self.err(e))?;
        self.conn
            .busy_timeout(Duration::from_secs(30))
            .map_err(|e| self.err(e))
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        Error::ledger(&self.path, e)
    }

    /// Real weeks recorded so far, oldest first, with whether any recipient is still open
    /// (pending, sending or deferred).
    /// With `include_failed`, failed recipients count as open too (`--retry-failed`).
    pub(crate) fn real_weeks(&self, include_failed: bool) -> Result<Vec<(Week, bool)>> {
        let open = if include_failed {
            "('pending', 'sending', 'deferred', 'failed')"
        } else {
            "('pending', 'sending', 'deferred')"
        };
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT s.week, EXISTS (SELECT 1 FROM recipients r WHERE r.week = s.week AND r.kind = s.kind
                     AND r.state IN {open})
                 FROM sends s WHERE s.kind = 'real' ORDER BY s.week"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut weeks = Vec::new();
        for row in rows {
            let (week, open) = row.map_err(|e| self.err(e))?;
            if let Ok(week) = week.parse() {
                weeks.push((week, open));
            }
        }
        Ok(weeks)
    }

    pub(crate) fn is_frozen(&self, week: Week, kind: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM sends WHERE week = ?1 AND kind = ?2",
                params![week.to_string(), kind],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(|e| self.err(e))
    }

    /// Start freezing a week: rows are added one by one inside one transaction, which
    /// [`Freezer::finish`] commits; dropping the freezer (say, on invalid input) undoes all.
    pub(crate) fn freezer(&mut self, week: Week, kind: &str) -> Result<Freezer<'_>> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| Error::ledger(&path, e))?;
        tx.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS seen_keys (key TEXT PRIMARY KEY, line INTEGER NOT NULL);
             DELETE FROM temp.seen_keys;",
        )
        .map_err(|e| Error::ledger(&path, e))?;
        Ok(Freezer {
            tx,
            path,
            week: week.to_string(),
            kind: kind.to_string(),
            seq: 0,
            now: now(),
        })
    }

    /// For a week frozen by an earlier run: mark as unsubscribed the recipients still to be
    /// sent whose key `active` does not hand over (they left, or were removed, since).
    /// `active` is given a function to call with each active subscriber's key. Returns how
    /// many were skipped.
    pub(crate) fn skip_departed(
        &mut self,
        week: Week,
        kind: &str,
        active: impl FnOnce(&mut dyn FnMut(&str)) -> Result<()>,
    ) -> Result<usize> {
        let path = self.path.clone();
        let err = |e| Error::ledger(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute_batch("CREATE TEMP TABLE IF NOT EXISTS active_keys (key TEXT PRIMARY KEY); DELETE FROM temp.active_keys;")
            .map_err(err)?;
        let mut failure = None;
        {
            let mut insert = tx
                .prepare("INSERT OR IGNORE INTO temp.active_keys (key) VALUES (?1)")
                .map_err(err)?;
            active(&mut |key| {
                if failure.is_none() {
                    if let Err(e) = insert.execute([key]) {
                        failure = Some(e);
                    }
                }
            })?;
        }
        if let Some(e) = failure {
            return Err(err(e));
        }
        let skipped = tx
            .execute(
                "UPDATE recipients SET state = 'unsubscribed', last_error = 'unsubscribed after the week was frozen', updated_at = ?3
                 WHERE week = ?1 AND kind = ?2 AND state IN ('pending', 'sending', 'deferred', 'failed')
                   AND key NOT IN (SELECT key FROM temp.active_keys)",
                params![week.to_string(), kind, now()],
            )
            .map_err(err)?;
        tx.execute_batch("DELETE FROM temp.active_keys;")
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(skipped)
    }

    pub(crate) fn variants(&self, week: Week, kind: &str) -> Result<Vec<FrozenVariant>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT variant, subject, html, text, greeting_named, greeting_anonymous FROM variants
                 WHERE week = ?1 AND kind = ?2 ORDER BY variant",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![week.to_string(), kind], |r| {
                Ok(FrozenVariant {
                    id: r.get(0)?,
                    subject: r.get(1)?,
                    html: r.get(2)?,
                    text: r.get(3)?,
                    greeting_named: r.get(4)?,
                    greeting_anonymous: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// The next `limit` recipients after `after_seq` that still need a message.
    pub(crate) fn next_batch(
        &self,
        week: Week,
        kind: &str,
        after_seq: i64,
        limit: usize,
        retry_failed: bool,
    ) -> Result<Vec<Recipient>> {
        let states = if retry_failed {
            "('pending', 'sending', 'deferred', 'failed')"
        } else {
            "('pending', 'sending', 'deferred')"
        };
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT seq, key, email, name, variant FROM recipients
                 WHERE week = ?1 AND kind = ?2 AND seq > ?3 AND state IN {states}
                 ORDER BY seq LIMIT ?4"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(
                params![week.to_string(), kind, after_seq, limit as i64],
                |r| {
                    Ok(Recipient {
                        seq: r.get(0)?,
                        key: r.get(1)?,
                        email: r.get(2)?,
                        name: r.get(3)?,
                        variant: r.get(4)?,
                    })
                },
            )
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// How many recipients still need a message.
    pub(crate) fn open_count(&self, week: Week, kind: &str, retry_failed: bool) -> Result<usize> {
        let states = if retry_failed {
            "('pending', 'sending', 'deferred', 'failed')"
        } else {
            "('pending', 'sending', 'deferred')"
        };
        self.conn
            .query_row(
                &format!("SELECT COUNT(*) FROM recipients WHERE week = ?1 AND kind = ?2 AND state IN {states}"),
                params![week.to_string(), kind],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(|e| self.err(e))
    }

    /// Apply `updates` in one transaction (a message's outcome and the next "sending" mark
    /// share one commit).
    pub(crate) fn apply<'u>(
        &self,
        week: Week,
        kind: &str,
        updates: impl IntoIterator<Item = &'u Update>,
    ) -> Result<()> {
        let week = week.to_string();
        let now = now();
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        for update in updates {
            match update {
                Update::Sending { seq, message_id } => self.update(
                    "UPDATE recipients SET possible_duplicate = possible_duplicate OR state = 'sending',
                         state = 'sending', message_id = ?4, updated_at = ?5
                     WHERE week = ?1 AND kind = ?2 AND seq = ?3",
                    params![week, kind, seq, message_id, now],
                )?,
                Update::Outcome {
                    seq, state, attempts, detail } => {
                    let (reply, error) =
                        if *state == State::Sent { (Some(detail), None) } else { (None, Some(detail)) };
                    self.update(
                        "UPDATE recipients SET state = ?4, attempts = attempts + ?5, reply = COALESCE(?6, reply),
                             last_error = COALESCE(?7, last_error), updated_at = ?8
                         WHERE week = ?1 AND kind = ?2 AND seq = ?3",
                        params![week, kind, seq, state.as_str(), attempts, reply, error, now],
                    )?;
                }
                Update::PossibleDuplicate { seq } => self.update(
                    "UPDATE recipients SET possible_duplicate = 1 WHERE week = ?1 AND kind = ?2 AND seq = ?3",
                    params![week, kind, seq],
                )?,
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn update(&self, sql: &str, params: impl rusqlite::Params) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        stmt.execute(params).map(|_| ()).map_err(|e| self.err(e))
    }

    /// Recipient count per state, and how many were possibly sent twice.
    pub(crate) fn counts(
        &self,
        week: Week,
        kind: &str,
    ) -> Result<(BTreeMap<&'static str, usize>, usize)> {
        let mut counts: BTreeMap<&'static str, usize> =
            State::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        let mut stmt = self
            .conn
            .prepare("SELECT state, COUNT(*), SUM(possible_duplicate) FROM recipients WHERE week = ?1 AND kind = ?2 GROUP BY state")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![week.to_string(), kind], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut duplicates = 0;
        for row in rows {
            let (state, n, dup) = row.map_err(|e| self.err(e))?;
            if let Some(s) = State::ALL.iter().find(|s| s.as_str() == state) {
                counts.insert(s.as_str(), n as usize);
            }
            duplicates += dup as usize;
        }
        Ok((counts, duplicates))
    }

    /// Failed and deferred recipients with their last error.
    pub(crate) fn problems(&self, week: Week, kind: &str) -> Result<Vec<Problem>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT email, state, attempts, last_error FROM recipients
                 WHERE week = ?1 AND kind = ?2 AND state IN ('failed', 'deferred') ORDER BY seq",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![week.to_string(), kind], |r| {
                Ok(Problem {
                    email: r.get(0)?,
                    state: r.get(1)?,
                    attempts: r.get(2)?,
                    last_error: r.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// Every (week, kind) recorded, newest first.
    pub(crate) fn sends(&self) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT week, kind, started_at FROM sends ORDER BY week DESC, started_at DESC")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests;
