//! What the ledger will say once the journal is folded, read without writing anything: a
//! killed run leaves up to a segment of lines (about 340 messages) in the journal until the
//! next `send` folds them, and `status` must not report those readers as still pending.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::{params, OptionalExtension};

use super::{journal, Counts, Ledger, State, Update};
use crate::error::Result;
use crate::kind::Kind;
use crate::week::Week;

/// The journal's lines not yet in the ledger, by (week, kind), in order.
#[derive(Default)]
pub(crate) struct Unfolded {
    lines: HashMap<(String, Kind), Vec<Update>>,
    /// Every segment was written since the last boot, so a mark without its *started*
    /// line was recorded ahead and never started (see `Ledger::fold_segment`).
    whole: bool,
}

/// What the unfolded lines make of one recipient.
#[derive(Clone, Copy)]
enum Change {
    To(State),
    /// No reply after the data; `resend_limit` as in [`Update::Unknown`].
    Unknown(u32),
}

impl Ledger {
    /// Read the journal's segments (a running send's too) and keep the lines the ledger
    /// has not applied yet.
    pub(crate) fn unfolded(&self, state_dir: &Path) -> Result<Unfolded> {
        let boot = journal::boot_id();
        let mut unfolded = Unfolded {
            whole: true,
            ..Unfolded::default()
        };
        for closed in journal::leftovers(state_dir)? {
            let Some(contents) = journal::read(&closed.0)? else {
                continue;
            };
            let name = closed.0.file_name().unwrap_or_default().to_string_lossy();
            let done: i64 = self
                .conn
                .query_row(
                    "SELECT lines FROM journal_folds WHERE segment = ?1",
                    [name.as_ref()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.err(e))?
                .unwrap_or(0);
            unfolded.whole &= contents.boot.is_some() && contents.boot == boot;
            let key = (contents.week.to_string(), contents.kind);
            let skip = (done as usize).min(contents.updates.len());
            let lines = unfolded.lines.entry(key).or_default();
            lines.extend(contents.updates.into_iter().skip(skip));
        }
        Ok(unfolded)
    }

    /// [`Ledger::counts`] as they will be once `unfolded` is folded.
    pub(crate) fn counts_after(
        &self,
        unfolded: &Unfolded,
        week: Week,
        kind: &Kind,
    ) -> Result<Counts> {
        let mut counts = self.counts(week, kind)?;
        let Some(lines) = unfolded.lines.get(&(week.to_string(), kind.clone())) else {
            return Ok(counts);
        };
        for (seq, change) in changes(lines, unfolded.whole) {
            let row = self
                .conn
                .query_row(
                    "SELECT state, possible_duplicate, unknown FROM recipients
                     WHERE week = ?1 AND kind = ?2 AND seq = ?3",
                    params![week.to_string(), kind, seq],
                    |r| {
                        Ok((
                            r.get::<_, State>(0)?,
                            r.get::<_, bool>(1)?,
                            r.get::<_, u32>(2)?,
                        ))
                    },
                )
                .optional()
                .map_err(|e| self.err(e))?;
            let Some((was, duplicate, unknown)) = row else {
                continue;
            };
            let now = match change {
                Change::To(state) => state,
                Change::Unknown(limit) if unknown + 1 > limit => State::Unknown,
                Change::Unknown(_) => State::Deferred,
            };
            counts.shift(was, now);
            if matches!(change, Change::Unknown(_)) && !duplicate {
                counts.possible_duplicates += 1;
            }
        }
        Ok(counts)
    }
}

/// Where each recipient named in `lines` ends, as [`Ledger::apply_each`] would leave it.
fn changes(lines: &[Update], whole: bool) -> HashMap<i64, Change> {
    let mut last = HashMap::new();
    let mut marked = HashSet::new();
    let mut started = HashSet::new();
    for update in lines {
        match update {
            Update::Sending { seq, .. } => {
                marked.insert(*seq);
            }
            Update::Started { seq } => {
                started.insert(*seq);
            }
            Update::Outcome { seq, state, .. } => {
                marked.remove(seq);
                last.insert(*seq, Change::To(*state));
            }
            Update::Unknown {
                seq, resend_limit, ..
            } => {
                marked.remove(seq);
                last.insert(*seq, Change::Unknown(*resend_limit));
            }
        }
    }
    for seq in marked {
        if !whole || started.contains(&seq) {
            last.insert(seq, Change::To(State::Sending));
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sending(seq: i64) -> Update {
        Update::Sending {
            seq,
            message_id: format!("<{seq}@x>"),
        }
    }

    fn outcome(seq: i64, state: State) -> Update {
        Update::Outcome {
            seq,
            state,
            attempts: 1,
            detail: String::new(),
        }
    }

    #[test]
    fn marks_ahead_never_started_change_nothing_outcomes_and_started_marks_do() {
        let lines = [
            sending(0),
            Update::Started { seq: 0 },
            sending(1),
            outcome(0, State::Sent),
            Update::Started { seq: 1 },
            sending(2),
        ];
        let whole = changes(&lines, true);
        assert!(matches!(whole.get(&0), Some(Change::To(State::Sent))));
        assert!(matches!(whole.get(&1), Some(Change::To(State::Sending))));
        assert!(!whole.contains_key(&2), "recorded ahead, never started");
        // After a reboot a *started* line may be lost: every mark may have started.
        let rebooted = changes(&lines, false);
        assert!(matches!(rebooted.get(&2), Some(Change::To(State::Sending))));
    }

    #[test]
    fn a_new_attempt_after_an_outcome_is_in_flight_again() {
        let lines = [
            sending(3),
            Update::Started { seq: 3 },
            outcome(3, State::Deferred),
            sending(3),
            Update::Started { seq: 3 },
        ];
        assert!(matches!(
            changes(&lines, true).get(&3),
            Some(Change::To(State::Sending))
        ));
    }
}
