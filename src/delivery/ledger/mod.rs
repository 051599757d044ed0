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

mod forget;
pub(crate) use forget::HeldRow;
mod apply;
mod freeze;
pub(crate) mod journal;
mod marker;
mod open;
mod queries;
mod recover;
mod view;
pub(crate) use recover::Recovered;
mod schema;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::clock::Clock;
use crate::error::Error;
use crate::kind::Kind;

pub(crate) use crate::mail::{Recipient, Variant};
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
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
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

/// One member of a frozen audience. `variant` is `None` when they get nothing this week.
#[derive(Debug, Clone)]
pub(crate) struct AudienceRow {
    pub key: String,
    pub email: String,
    pub name: Option<String>,
    pub variant: Option<i64>,
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

/// How many recipients of one (week, kind) stand in each [`State`], and how many of them
/// were possibly sent twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    by_state: [usize; State::ALL.len()],
    pub possible_duplicates: usize,
}

impl Counts {
    pub(crate) fn of(&self, state: State) -> usize {
        self.by_state[state as usize]
    }

    pub(super) fn add(&mut self, state: State, n: usize) {
        self.by_state[state as usize] += n;
    }

    /// One recipient moved from `from` to `to`.
    pub(super) fn shift(&mut self, from: State, to: State) {
        let was = &mut self.by_state[from as usize];
        *was = was.saturating_sub(1);
        self.by_state[to as usize] += 1;
    }

    /// Everyone in the audience.
    pub(crate) fn total(&self) -> usize {
        self.by_state.iter().sum()
    }

    /// Still to be attempted, or to be tried again by a later run.
    pub(crate) fn open(&self) -> usize {
        self.of(State::Pending) + self.of(State::Sending) + self.of(State::Deferred)
    }

    /// Never attempted in this run yet.
    pub(crate) fn not_attempted(&self) -> usize {
        self.of(State::Pending) + self.of(State::Sending)
    }

    /// Failed for good, or sent with an outcome that stayed unknown.
    pub(crate) fn lost(&self) -> usize {
        self.of(State::Failed) + self.of(State::Unknown)
    }

    /// Someone a report should list (see [`Ledger::problems`]).
    pub(crate) fn has_problems(&self) -> bool {
        self.lost() + self.of(State::Deferred) > 0
    }

    /// Each state with its count, by the state's name (the order reports print in).
    pub(crate) fn by_name(&self) -> std::collections::BTreeMap<&'static str, usize> {
        State::ALL
            .iter()
            .map(|s| (s.as_str(), self.of(*s)))
            .collect()
    }
}

/// As an object of state name → count, as `--json` reports have always had it.
impl serde::Serialize for Counts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.by_name().serialize(s)
    }
}

/// One (week, kind) the ledger holds.
#[derive(Debug, Clone)]
pub(crate) struct Send {
    /// As stored: a week a later version wrote may not parse.
    pub week: String,
    pub kind: Kind,
    pub started_at: String,
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
    /// Dates each change to a row.
    clock: Clock,
}

impl Ledger {
    /// The instant, as the ledger writes it.
    fn now(&self) -> String {
        stamp_of(self.clock.now())
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

/// How the ledger writes an instant (when a row changed, for people reading it).
fn stamp_of(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests;
