//! Freezing a week: its audience, in list order, and its rendered variants, written in one
//! transaction so that a week is either wholly frozen or not at all.

use std::path::PathBuf;

use rusqlite::params;

use super::{AudienceRow, Marker, State, Variant};
use crate::error::{Error, Result};
use crate::kind::Kind;
use crate::week::Week;

/// A week being frozen (see [`Ledger::freezer`]).
pub(crate) struct Freezer<'l> {
    pub(super) tx: rusqlite::Transaction<'l>,
    pub(super) path: PathBuf,
    pub(super) week: Week,
    pub(super) kind: Kind,
    pub(super) seq: i64,
    /// Members of the audience who get a message (the others are skipped).
    pub(super) receiving: usize,
    pub(super) now: String,
}

impl Freezer<'_> {
    fn err(&self, e: rusqlite::Error) -> Error {
        Error::ledger(&self.path, e)
    }

    /// Add the next member of the audience.
    pub(crate) fn add(&mut self, row: &AudienceRow) -> Result<()> {
        self.add_as(row, None)
    }

    /// Add the next member of the audience, who was already `served` this week if the
    /// journal proved it after the ledger lost the week (see [`super::Ledger::recovered`]).
    pub(crate) fn add_as(&mut self, row: &AudienceRow, served: Option<State>) -> Result<()> {
        let state = if row.variant.is_some() {
            self.receiving += 1;
            served.unwrap_or(State::Pending)
        } else {
            State::Skipped
        };
        let mut insert = self
            .tx
            .prepare_cached(
                "INSERT INTO recipients (week, kind, seq, key, email, name, variant, state, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(|e| self.err(e))?;
        insert
            .execute(params![
                self.week,
                self.kind,
                self.seq,
                row.key,
                row.email,
                row.name,
                row.variant,
                state.as_str(),
                self.now
            ])
            .map_err(|e| self.err(e))?;
        self.seq += 1;
        Ok(())
    }

    /// The audience so far: (members, members who get a message).
    pub(crate) fn tally(&self) -> (usize, usize) {
        (self.seq as usize, self.receiving)
    }

    /// Record the variants and commit the whole freeze. Returns the audience's size.
    pub(crate) fn finish(self, content_hash: &str, variants: &[Variant]) -> Result<usize> {
        let err = |e| Error::ledger(&self.path, e);
        self.tx
            .execute(
                "INSERT INTO sends (week, kind, started_at, content_hash) VALUES (?1, ?2, ?3, ?4)",
                params![self.week, self.kind, self.now, content_hash],
            )
            .map_err(err)?;
        for v in variants {
            self.tx
                .execute(
                    "INSERT INTO variants (week, kind, variant, subject, html, text, greeting_named, greeting_anonymous)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![self.week, self.kind, v.id, v.subject, v.html, v.text, v.greeting_named, v.greeting_anonymous],
                )
                .map_err(err)?;
        }
        if self.kind == Kind::Real {
            // Used up: the rows now say who was served.
            self.tx
                .execute("DELETE FROM recovered WHERE week = ?1", params![self.week])
                .map_err(err)?;
        }
        self.tx.commit().map_err(err)?;
        // Listed in the marker once committed, before anything is sent: a ledger that later
        // loses this week (a lost WAL) is then known to be damaged.
        if let (Kind::Real, Some(state_dir)) = (&self.kind, self.path.parent()) {
            Marker::add_week(state_dir, self.week)?;
        }
        Ok(self.seq as usize)
    }
}
