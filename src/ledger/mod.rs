//! The send ledger: the only module that remembers. SQLite (bundled, WAL) under `state_dir`.
//!
//! For each (week, kind) it freezes what is sent (the rendered variants) and to whom (the
//! audience, in order), then tracks each recipient: pending → sending → sent / deferred /
//! failed / unknown. A recipient is recorded *sending* before its end of data can go out,
//! and *sent* only after the server's reply to it.
//!
//! Durability: WAL mode with `synchronous=FULL`: every commit is on disk when it returns.
//! During a send, the workers record each message in the [`journal`] (one `write`, synced
//! as `ledger_sync` says) and the journal is folded into SQLite in batches; opening the
//! ledger for writing folds what a killed run left in it.

mod freeze;
pub(crate) mod journal;
mod marker;
mod schema;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::store::{self, Access, Store};
use crate::week::Week;

pub(crate) use freeze::Freezer;
pub(crate) use journal::{Closed, Journal, Receipt};
pub(crate) use marker::Marker;

/// Where a recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Pending,
    /// Transaction started; outcome not yet recorded. Found at the start of a run (the
    /// last one was killed): sent again, flagged a possible duplicate.
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
    /// No reply came after the data (or the connection was lost after it) more often than
    /// `smtp.resend_unknown` allows resending: maybe delivered, never sent again.
    Unknown,
}

impl State {
    pub(crate) const ALL: [State; 8] = [
        State::Pending,
        State::Sending,
        State::Sent,
        State::Deferred,
        State::Failed,
        State::Skipped,
        State::Unsubscribed,
        State::Unknown,
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
            State::Unknown => "unknown",
        }
    }

    fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

impl serde::Serialize for State {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl rusqlite::types::FromSql for State {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        State::parse(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown recipient state {text:?}").into())
        })
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
    /// Their transaction starts now. With `ledger_sync = "full"` the *sending* mark is
    /// recorded messages ahead; a killed run's marks without this line never started
    /// (see [`Ledger::fold_leftovers`]).
    Started { seq: i64 },
    /// The outcome; `attempts` is the number of transactions tried in this run.
    Outcome {
        seq: i64,
        state: State,
        attempts: i64,
        detail: String,
    },
    /// No reply after the end of data (or the connection dropped after it): maybe
    /// delivered. Left *deferred* for one more try while the recipient's unknown outcomes
    /// stay within `resend_limit`, else *unknown* for good.
    Unknown {
        seq: i64,
        attempts: i64,
        detail: String,
        resend_limit: u32,
    },
}

/// A recipient with a problem, for reports.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Problem {
    pub email: String,
    pub state: State,
    pub attempts: i64,
    pub last_error: Option<String>,
}

pub(crate) struct Ledger {
    conn: Connection,
    path: PathBuf,
}

impl Ledger {
    pub(crate) fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join("ledger.sqlite3")
    }

    /// Open (creating) the ledger for writing. A state folder whose marker says it held a
    /// ledger, but whose ledger is missing, empty or short of a week, is refused. What a
    /// killed run left in the journal is folded in first.
    pub(crate) fn open(state_dir: &Path) -> Result<Ledger> {
        crate::fsutil::create_dir_all(state_dir)?;
        let path = Ledger::path_in(state_dir);
        let marker = Marker::read(state_dir)?;
        if marker.is_some() && !has_content(&path) {
            return Err(lost(&path, "is missing or empty"));
        }
        let conn = store::open(Store::Ledger, &path, Access::Write)?;
        let mut ledger = Ledger { conn, path };
        if marker.is_some() && schema::is_empty(&ledger.conn).map_err(|e| ledger.err(e))? {
            return Err(lost(&ledger.path, "holds no ledger tables"));
        }
        schema::migrate(&mut ledger.conn).map_err(|e| ledger.unusable(e))?;
        match marker {
            None => Marker {
                weeks: ledger.real_week_names()?,
            }
            .write(state_dir)?,
            Some(marker) => ledger.check_weeks(&marker)?,
        }
        ledger.fold_leftovers(state_dir)?;
        Ok(ledger)
    }

    /// Fold the segments a killed run left in the journal. A segment still locked belongs
    /// to a run in progress and is left to it.
    fn fold_leftovers(&self, state_dir: &Path) -> Result<()> {
        let mut folded = false;
        let leftovers = journal::leftovers(state_dir)?;
        for (i, closed) in leftovers.iter().enumerate() {
            let Ok(file) = std::fs::File::open(&closed.0) else {
                continue;
            };
            if file.try_lock().is_err() {
                continue;
            }
            // Only the last segment of a run can tell a mark that never started: a later
            // one could hold its *started* line.
            let last_of_run = leftovers
                .get(i + 1)
                .is_none_or(|next| journal::run_of(&next.0) != journal::run_of(&closed.0));
            self.fold_segment(Closed(closed.0.clone()), last_of_run)?;
            folded = true;
        }
        if folded {
            journal::sync_dir(&journal::dir_in(state_dir))?;
        }
        Ok(())
    }

    /// Apply a closed journal segment, in one transaction that also records how many of
    /// its lines are applied (a crash before the segment is removed never applies a line
    /// twice), then remove it. Returns the number of updates applied.
    pub(crate) fn fold(&self, closed: Closed) -> Result<usize> {
        self.fold_segment(closed, false)
    }

    /// [`Ledger::fold`]. `last_of_killed_run`: the segment is the last a killed run left;
    /// if the run started in this boot, the segment is whole (the page cache outlives a
    /// process), so a *sending* mark without its *started* line was recorded ahead and
    /// never started: it is not applied, and the reader is not counted a possible
    /// duplicate. After a reboot (maybe a power loss) every mark is applied.
    fn fold_segment(&self, closed: Closed, last_of_killed_run: bool) -> Result<usize> {
        let path = closed.0;
        let segment = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let applied = match journal::read(&path)? {
            None => 0,
            // A torn last line (the process or the power died mid-write) is left out: its
            // message never started, or is still *sending* from the line before.
            Some(contents) => {
                let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
                let done: usize = tx
                    .query_row(
                        "SELECT lines FROM journal_folds WHERE segment = ?1",
                        [&segment],
                        |r| r.get::<_, i64>(0),
                    )
                    .optional()
                    .map_err(|e| self.err(e))?
                    .unwrap_or(0) as usize;
                let todo = &contents.updates[done.min(contents.updates.len())..];
                let whole = last_of_killed_run
                    && contents.boot.is_some()
                    && contents.boot == journal::boot_id();
                self.apply_each(contents.week, &contents.kind, todo, whole)?;
                self.update(
                    "INSERT OR REPLACE INTO journal_folds (segment, lines) VALUES (?1, ?2)",
                    params![segment, contents.updates.len() as i64],
                )?;
                tx.commit().map_err(|e| self.err(e))?;
                todo.len()
            }
        };
        std::fs::remove_file(&path).map_err(|e| Error::journal("remove", &path, e))?;
        Ok(applied)
    }

    /// Forget the fold records of a run whose segments are all folded and removed (the
    /// removals made durable first, so no segment can come back).
    pub(crate) fn forget_folds(&self, state_dir: &Path, run: &str) -> Result<()> {
        journal::sync_dir(&journal::dir_in(state_dir))?;
        self.update(
            "DELETE FROM journal_folds WHERE substr(segment, 1, length(?1) + 1) = ?1 || '-'",
            params![run],
        )
    }

    /// The real weeks this ledger has frozen.
    fn real_week_names(&self) -> Result<std::collections::BTreeSet<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT week FROM sends WHERE kind = 'real'")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// Every week the marker lists must be here.
    fn check_weeks(&self, marker: &Marker) -> Result<()> {
        let here = self.real_week_names()?;
        let missing: Vec<&str> = marker
            .weeks
            .iter()
            .filter(|w| !here.contains(*w))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(lost(
            &self.path,
            &format!(
                "has lost week {} that ledger.marker lists",
                missing.join(", ")
            ),
        ))
    }

    /// Rebuild a lost ledger from its marker: a ledger that cannot be opened is moved
    /// aside and started anew; each week the marker lists but the ledger lacks is
    /// recorded as sent (nobody gets it again), or with `force` forgotten (it may be sent
    /// again). Returns the weeks recorded and the weeks forgotten.
    pub(crate) fn repair(
        state_dir: &Path,
        force: bool,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Repair> {
        let Some(mut marker) = Marker::read(state_dir)? else {
            return Ok(Repair::default());
        };
        let path = Ledger::path_in(state_dir);
        let usable = match Ledger::open(state_dir) {
            Ok(_) => return Ok(Repair::default()),
            Err(Error::LedgerUnusable { .. }) => {
                has_content(&path)
                    && store::open(Store::Ledger, &path, Access::Write)
                        .ok()
                        .is_some_and(|c| schema::is_empty(&c).is_ok_and(|empty| !empty))
            }
            Err(other) => return Err(other),
        };
        let mut moved = Vec::new();
        if !usable {
            let stamp = now.format("%Y%m%dT%H%M%SZ");
            for suffix in ["", "-wal", "-shm"] {
                let from = PathBuf::from(format!("{}{suffix}", path.display()));
                if from.exists() {
                    let to = PathBuf::from(format!("{}.lost-{stamp}", from.display()));
                    std::fs::rename(&from, &to).map_err(|e| Error::io("move aside", &from, e))?;
                    moved.push(to);
                }
            }
        }
        // Open without the marker's checks: they are what is being repaired.
        let conn = store::open(Store::Ledger, &path, Access::Write)?;
        let mut ledger = Ledger { conn, path };
        schema::migrate(&mut ledger.conn).map_err(|e| ledger.unusable(e))?;
        let here = ledger.real_week_names()?;
        let missing: Vec<String> = marker.weeks.difference(&here).cloned().collect();
        if force {
            for week in &missing {
                marker.weeks.remove(week);
            }
            marker.write(state_dir)?;
        } else {
            for week in &missing {
                ledger
                    .conn
                    .execute(
                        "INSERT INTO sends (week, kind, started_at, content_hash)
                         VALUES (?1, 'real', ?2, 'recovered: recorded as sent by status --repair')",
                        params![week, stamp_of(now)],
                    )
                    .map_err(|e| ledger.err(e))?;
            }
        }
        Ok(Repair {
            recorded: if force { Vec::new() } else { missing.clone() },
            forgotten: if force { missing } else { Vec::new() },
            moved,
        })
    }

    /// Open an existing ledger read-only; `None` when there is none yet.
    pub(crate) fn open_read_only(state_dir: &Path) -> Result<Option<Ledger>> {
        let path = Ledger::path_in(state_dir);
        let marker = Marker::read(state_dir)?;
        if !path.exists() && marker.is_none() {
            return Ok(None);
        }
        if marker.is_some() && !has_content(&path) {
            return Err(lost(&path, "is missing or empty"));
        }
        let conn = store::open(Store::Ledger, &path, Access::Read)?;
        let ledger = Ledger { conn, path };
        schema::check_readable(&ledger.conn).map_err(|e| ledger.unusable(e))?;
        if let Some(marker) = marker {
            if schema::is_empty(&ledger.conn).map_err(|e| ledger.err(e))? {
                return Err(lost(&ledger.path, "holds no ledger tables"));
            }
            ledger.check_weeks(&marker)?;
        }
        Ok(Some(ledger))
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        Error::ledger(&self.path, e)
    }

    fn unusable(&self, e: schema::Unusable) -> Error {
        match e {
            schema::Unusable::Sqlite(e) => self.err(e),
            other => Error::LedgerUnusable {
                path: self.path.clone(),
                why: other.to_string(),
            },
        }
    }

    /// Real weeks recorded so far, oldest first, with whether any recipient is still open
    /// (pending, sending or deferred).
    /// With `include_failed`, failed recipients count as open too (`--retry-failed`).
    pub(crate) fn real_weeks(&self, include_failed: bool) -> Result<Vec<(Week, bool)>> {
        let open = open_states(include_failed);
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
        let states = open_states(retry_failed);
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

    /// Before a run: recipients left *sending* by a run that was killed mid-transaction.
    /// The ledger cannot tell whether their data went out, so each is sent again (nobody
    /// is skipped) and flagged a possible duplicate; a kill leaves at most `concurrency`
    /// of them. Returns how many were found.
    pub(crate) fn settle_interrupted(&self, week: Week, kind: &str) -> Result<usize> {
        self.conn
            .execute(
                "UPDATE recipients SET possible_duplicate = 1, state = 'deferred',
                     last_error = 'outcome unknown: the run was killed during this transaction',
                     updated_at = ?3
                 WHERE week = ?1 AND kind = ?2 AND state = 'sending'",
                params![week.to_string(), kind, now()],
            )
            .map_err(|e| self.err(e))
    }

    /// How many recipients still need a message.
    pub(crate) fn open_count(&self, week: Week, kind: &str, retry_failed: bool) -> Result<usize> {
        let states = open_states(retry_failed);
        self.conn
            .query_row(
                &format!("SELECT COUNT(*) FROM recipients WHERE week = ?1 AND kind = ?2 AND state IN {states}"),
                params![week.to_string(), kind],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(|e| self.err(e))
    }

    /// Every recipient's state, in seq order.
    #[cfg(test)]
    pub(crate) fn states_in_order(&self, week: Week, kind: &str) -> Vec<State> {
        let mut stmt = self
            .conn
            .prepare("SELECT state FROM recipients WHERE week = ?1 AND kind = ?2 ORDER BY seq")
            .unwrap();
        let rows = stmt
            .query_map(params![week.to_string(), kind], |r| r.get::<_, State>(0))
            .unwrap();
        rows.map(Result::unwrap).collect()
    }

    /// Apply `updates` in one transaction (the engine goes through the journal).
    #[cfg(test)]
    pub(crate) fn apply<'u>(
        &self,
        week: Week,
        kind: &str,
        updates: impl IntoIterator<Item = &'u Update>,
    ) -> Result<()> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        self.apply_each(week, kind, updates, false)?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Apply `updates` in order, inside the caller's transaction. A recipient's *sending*
    /// mark and its outcome in the same batch become one row update. `whole`: these are
    /// all the lines recorded since the first mark (see [`Ledger::fold_segment`]), so a
    /// mark without its *started* line is left out.
    fn apply_each<'u>(
        &self,
        week: Week,
        kind: &str,
        updates: impl IntoIterator<Item = &'u Update>,
        whole: bool,
    ) -> Result<()> {
        let week = week.to_string();
        let now = now();
        let mut sending: HashMap<i64, &str> = HashMap::new();
        let mut started: HashSet<i64> = HashSet::new();
        let mark = |seq: &i64, message_id: &str| {
            self.update(
                "UPDATE recipients SET state = 'sending', message_id = ?4, updated_at = ?5
                 WHERE week = ?1 AND kind = ?2 AND seq = ?3",
                params![week, kind, seq, message_id, now],
            )
        };
        for update in updates {
            match update {
                Update::Sending { seq, message_id } => {
                    if let Some(earlier) = sending.insert(*seq, message_id) {
                        mark(seq, earlier)?;
                    }
                }
                Update::Started { seq } => {
                    started.insert(*seq);
                }
                Update::Outcome {
                    seq,
                    state,
                    attempts,
                    detail,
                } => {
                    let (reply, error) = if *state == State::Sent {
                        (Some(detail), None)
                    } else {
                        (None, Some(detail))
                    };
                    self.update(
                        "UPDATE recipients SET state = ?4, attempts = attempts + ?5, reply = COALESCE(?6, reply),
                             last_error = COALESCE(?7, last_error), message_id = COALESCE(?8, message_id),
                             updated_at = ?9
                         WHERE week = ?1 AND kind = ?2 AND seq = ?3",
                        params![week, kind, seq, state.as_str(), attempts, reply, error, sending.remove(seq), now],
                    )?;
                }
                Update::Unknown {
                    seq,
                    attempts,
                    detail,
                    resend_limit,
                } => self.update(
                    "UPDATE recipients SET possible_duplicate = 1, unknown = unknown + 1,
                         state = CASE WHEN unknown + 1 > ?4 THEN 'unknown' ELSE 'deferred' END,
                         attempts = attempts + ?5, last_error = ?6,
                         message_id = COALESCE(?7, message_id), updated_at = ?8
                     WHERE week = ?1 AND kind = ?2 AND seq = ?3",
                    params![
                        week,
                        kind,
                        seq,
                        resend_limit,
                        attempts,
                        detail,
                        sending.remove(seq),
                        now
                    ],
                )?,
            }
        }
        // Marks whose outcome is not in this batch (in flight, or lost in a crash).
        for (seq, message_id) in sending {
            if whole && !started.contains(&seq) {
                // Recorded ahead, never started: the row stays as it was.
                continue;
            }
            mark(&seq, message_id)?;
        }
        Ok(())
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
                    r.get::<_, State>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut duplicates = 0;
        for row in rows {
            let (state, n, dup) = row.map_err(|e| self.err(e))?;
            counts.insert(state.as_str(), n as usize);
            duplicates += dup as usize;
        }
        Ok((counts, duplicates))
    }

    /// Failed, deferred and unknown-outcome recipients with their last error.
    pub(crate) fn problems(&self, week: Week, kind: &str) -> Result<Vec<Problem>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT email, state, attempts, last_error FROM recipients
                 WHERE week = ?1 AND kind = ?2 AND state IN ('failed', 'deferred', 'unknown') ORDER BY seq",
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

/// What `status --repair` did.
#[derive(Debug, Default)]
pub(crate) struct Repair {
    /// Weeks recorded as sent.
    pub recorded: Vec<String>,
    /// Weeks forgotten (`--force`): they may be sent again.
    pub forgotten: Vec<String>,
    /// Ledger files moved aside.
    pub moved: Vec<PathBuf>,
}

/// The states of recipients who still need a message, as an SQL list; with
/// `include_failed` (`--retry-failed`), failed ones too.
fn open_states(include_failed: bool) -> &'static str {
    if include_failed {
        "('pending', 'sending', 'deferred', 'failed')"
    } else {
        "('pending', 'sending', 'deferred')"
    }
}

/// Does `path` exist with some content? (`truncate -s 0` leaves an empty file.)
fn has_content(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
}

/// The error for a ledger the marker says should be there.
fn lost(path: &Path, what: &str) -> Error {
    Error::LedgerUnusable {
        path: path.to_path_buf(),
        why: format!(
            "this state folder held a ledger (see ledger.marker), but the ledger {what}: it was deleted, truncated or lost its write-ahead log. Nothing is sent, so that nobody gets a week twice. To go on, run `digestif status --repair`: it records the weeks ledger.marker lists as sent (with --force, it forgets them instead, so they can be sent again)"
        ),
    }
}

/// When a row changed, for people reading the ledger: the wall clock, not `--now`, which
/// only decides what is sent.
fn now() -> String {
    stamp_of(chrono::Utc::now())
}

/// How the ledger writes an instant.
fn stamp_of(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests;
