//! What the ledger answers: frozen weeks and variants, the next recipients to send, and
//! the counts and problems of a week.

use rusqlite::{params, OptionalExtension};

use super::{open_states, Counts, Freezer, Ledger, Problem, Recipient, Send, State, Variant};
use crate::error::{Error, Result};
use crate::kind::Kind;
use crate::week::Week;

impl Ledger {
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

    pub(crate) fn is_frozen(&self, week: Week, kind: &Kind) -> Result<bool> {
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
    pub(crate) fn freezer(&mut self, week: Week, kind: &Kind) -> Result<Freezer<'_>> {
        let path = self.path.clone();
        let now = self.now();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| Error::ledger(&path, e))?;
        Ok(Freezer {
            tx,
            path,
            week,
            kind: kind.clone(),
            seq: 0,
            receiving: 0,
            now,
        })
    }

    /// For a week frozen by an earlier run: mark as unsubscribed the recipients still to be
    /// sent whose key `active` does not hand over (they left, or were removed, since).
    /// `active` is given a function to call with each active subscriber's key. Returns how
    /// many were skipped.
    pub(crate) fn skip_departed(
        &mut self,
        week: Week,
        kind: &Kind,
        active: impl FnOnce(&mut dyn FnMut(&str)) -> Result<()>,
    ) -> Result<usize> {
        let now = self.now();
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
                params![week.to_string(), kind, now],
            )
            .map_err(err)?;
        tx.execute_batch("DELETE FROM temp.active_keys;")
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(skipped)
    }

    pub(crate) fn variants(&self, week: Week, kind: &Kind) -> Result<Vec<Variant>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT variant, subject, html, text, greeting_named, greeting_anonymous FROM variants
                 WHERE week = ?1 AND kind = ?2 ORDER BY variant",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![week.to_string(), kind], |r| {
                Ok(Variant {
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
        kind: &Kind,
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
    pub(crate) fn settle_interrupted(&self, week: Week, kind: &Kind) -> Result<usize> {
        self.conn
            .execute(
                "UPDATE recipients SET possible_duplicate = 1, state = 'deferred',
                     last_error = 'outcome unknown: the run was killed during this transaction',
                     updated_at = ?3
                 WHERE week = ?1 AND kind = ?2 AND state = 'sending'",
                params![week.to_string(), kind, self.now()],
            )
            .map_err(|e| self.err(e))
    }

    /// How many recipients still need a message.
    pub(crate) fn open_count(&self, week: Week, kind: &Kind, retry_failed: bool) -> Result<usize> {
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
    pub(crate) fn states_in_order(&self, week: Week, kind: &Kind) -> Vec<State> {
        let mut stmt = self
            .conn
            .prepare("SELECT state FROM recipients WHERE week = ?1 AND kind = ?2 ORDER BY seq")
            .unwrap();
        let rows = stmt
            .query_map(params![week.to_string(), kind], |r| r.get::<_, State>(0))
            .unwrap();
        rows.map(Result::unwrap).collect()
    }

    /// Recipient count per state, and how many were possibly sent twice.
    pub(crate) fn counts(&self, week: Week, kind: &Kind) -> Result<Counts> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, COUNT(*), SUM(possible_duplicate) FROM recipients WHERE week = ?1 AND kind = ?2 GROUP BY state")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![week, kind], |r| {
                Ok((
                    r.get::<_, State>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut counts = Counts::default();
        for row in rows {
            let (state, n, duplicates) = row.map_err(|e| self.err(e))?;
            counts.add(state, n as usize);
            counts.possible_duplicates += duplicates as usize;
        }
        Ok(counts)
    }

    /// Failed, deferred and unknown-outcome recipients with their last error.
    pub(crate) fn problems(&self, week: Week, kind: &Kind) -> Result<Vec<Problem>> {
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
    pub(crate) fn sends(&self) -> Result<Vec<Send>> {
        let mut stmt = self
            .conn
            .prepare("SELECT week, kind, started_at FROM sends ORDER BY week DESC, started_at DESC")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Send {
                    week: r.get(0)?,
                    kind: r.get(1)?,
                    started_at: r.get(2)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }
}
