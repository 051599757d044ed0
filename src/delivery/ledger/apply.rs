//! Recording what happened: the journal's updates applied to recipients' rows.

use std::collections::{HashMap, HashSet};

use rusqlite::params;

use super::{Ledger, State, Update};
use crate::error::Result;
use crate::kind::Kind;
use crate::week::Week;

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

    pub(super) fn update(&self, sql: &str, params: impl rusqlite::Params) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        stmt.execute(params).map(|_| ()).map_err(|e| self.err(e))
    }
}
