//! Recording what happened: the journal's updates applied to recipients' rows.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, OptionalExtension};

use super::{Ledger, State, Update};
use crate::error::Result;
use crate::kind::Kind;
use crate::week::Week;

/// A message's outcome, written into its row (found by rowid, checked by its key).
const OUTCOME: &str = "UPDATE recipients SET state = ?4, attempts = attempts + ?5,
        reply = COALESCE(?6, reply), last_error = COALESCE(?7, last_error),
        message_id = COALESCE(?8, message_id), updated_at = ?9
    WHERE rowid = ?10 AND week = ?1 AND kind = ?2 AND seq = ?3";

/// A message whose fate is unknown: deferred to the next run, or `unknown` past the limit.
const UNKNOWN: &str = "UPDATE recipients SET possible_duplicate = 1, unknown = unknown + 1,
        state = CASE WHEN unknown + 1 > ?4 THEN 'unknown' ELSE 'deferred' END,
        attempts = attempts + ?5, last_error = ?6,
        message_id = COALESCE(?7, message_id), updated_at = ?8
    WHERE rowid = ?9 AND week = ?1 AND kind = ?2 AND seq = ?3";

impl Ledger {
    /// Apply `updates` in one transaction (the engine goes through the journal).
    #[cfg(test)]
    pub(crate) fn apply<'u>(
        &self,
        week: Week,
        kind: &Kind,
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
    pub(super) fn apply_each<'u>(
        &self,
        week: Week,
        kind: &Kind,
        updates: impl IntoIterator<Item = &'u Update>,
        whole: bool,
    ) -> Result<()> {
        let week = week.to_string();
        let now = self.now();
        let mut rows = Rows {
            week: &week,
            kind,
            offset: None,
        };
        let mut sending: HashMap<i64, &str> = HashMap::new();
        let mut started: HashSet<i64> = HashSet::new();
        let mark = |rows: &mut Rows, seq: i64, message_id: &str| {
            self.update_row(rows, seq, |rowid| {
                self.changed(
                    "UPDATE recipients SET state = 'sending', message_id = ?4, updated_at = ?5
                     WHERE rowid = ?6 AND week = ?1 AND kind = ?2 AND seq = ?3",
                    params![week, kind, seq, message_id, now, rowid],
                )
            })
        };
        for update in updates {
            match update {
                Update::Sending { seq, message_id } => {
                    if let Some(earlier) = sending.insert(*seq, message_id) {
                        mark(&mut rows, *seq, earlier)?;
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
                    let message_id = sending.remove(seq);
                    self.update_row(&mut rows, *seq, |rowid| {
                        let state = state.as_str();
                        let outcome = params![
                            week, kind, seq, state, attempts, reply, error, message_id, now, rowid
                        ];
                        self.changed(OUTCOME, outcome)
                    })?;
                }
                Update::Unknown {
                    seq,
                    attempts,
                    detail,
                    resend_limit,
                } => {
                    let message_id = sending.remove(seq);
                    self.update_row(&mut rows, *seq, |rowid| {
                        let limit = resend_limit;
                        let unknown = params![
                            week, kind, seq, limit, attempts, detail, message_id, now, rowid
                        ];
                        self.changed(UNKNOWN, unknown)
                    })?;
                }
            }
        }
        // Marks whose outcome is not in this batch (in flight, or lost in a crash).
        for (seq, message_id) in sending {
            if whole && !started.contains(&seq) {
                // Recorded ahead, never started: the row stays as it was.
                continue;
            }
            mark(&mut rows, seq, message_id)?;
        }
        Ok(())
    }

    pub(super) fn update(&self, sql: &str, params: impl rusqlite::Params) -> Result<()> {
        self.changed(sql, params).map(|_| ())
    }

    /// Run `sql`; returns how many rows it changed.
    fn changed(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        stmt.execute(params).map_err(|e| self.err(e))
    }

    /// Update the row of `seq` with `run`, given its rowid: first where [`Rows`] expects
    /// it, else where the index finds it (which then sets the expectation). A row that
    /// does not exist is left alone, as an update through the index would.
    fn update_row(
        &self,
        rows: &mut Rows,
        seq: i64,
        run: impl Fn(i64) -> Result<usize>,
    ) -> Result<()> {
        if let Some(offset) = rows.offset {
            if run(offset + seq)? > 0 {
                return Ok(());
            }
        }
        let found = self
            .conn
            .prepare_cached(
                "SELECT rowid FROM recipients WHERE week = ?1 AND kind = ?2 AND seq = ?3",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![rows.week, rows.kind, seq], |r| r.get::<_, i64>(0))
                    .optional()
            })
            .map_err(|e| self.err(e))?;
        if let Some(rowid) = found {
            rows.offset = Some(rowid - seq);
            run(rowid)?;
        }
        Ok(())
    }
}

/// Where a week's rows are. A freeze inserts them in `seq` order in one transaction, so
/// each row's rowid is its `seq` plus one offset for the whole week: a row is found by
/// rowid, without the (week, kind, seq) index, which was most of an update's cost. The
/// rowid is checked with the key in every update, and a row elsewhere (a ledger migrated
/// from an older layout) is found through the index.
struct Rows<'w> {
    week: &'w str,
    kind: &'w Kind,
    /// rowid minus seq, from the last row found through the index.
    offset: Option<i64>,
}
