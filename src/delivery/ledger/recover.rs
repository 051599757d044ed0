//! Repairing a lost ledger (`status --repair`): from its marker, which lists every week
//! sent, and from the journal, which proves who was served in a week still open.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::params;

use super::{has_content, journal, schema, stamp_of, Ledger, Marker, State};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::store::{self, Access, Store};
use crate::week::Week;

/// What `status --repair` did.
#[derive(Debug, Default)]
pub(crate) struct Repair {
    /// Weeks recorded as sent.
    pub recorded: Vec<String>,
    /// Weeks forgotten (`--force`): they may be sent again.
    pub forgotten: Vec<String>,
    /// Weeks rebuilt from the journal: the readers it proves served are kept; the others
    /// get the week from the next `send`.
    pub recovered: Vec<Recovered>,
    /// Ledger files moved aside.
    pub moved: Vec<PathBuf>,
}

/// A week rebuilt from the journal.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub week: String,
    /// Readers by what the journal shows: sent, maybe sent, refused for good.
    pub counts: std::collections::BTreeMap<journal::Served, usize>,
    /// A reboot since the send: lines not yet synced may have been lost with the power.
    pub rebooted: bool,
}

impl Ledger {
    /// Rebuild a lost ledger from its marker: a ledger that cannot be opened is moved
    /// aside and started anew. Each week the marker lists but the ledger lacks is, when
    /// the journal still holds its lines (the week was not done), rebuilt from them: who
    /// was served stays served, whatever `force` says, and the others get it from the
    /// next send. Otherwise (the week was done) it is recorded as sent, or with `force`
    /// forgotten (it may be sent again).
    pub(crate) fn repair(state_dir: &Path, force: bool, clock: Clock) -> Result<Repair> {
        let Some(mut marker) = Marker::read(state_dir)? else {
            return Ok(Repair::default());
        };
        let mut repair = Repair::default();
        let Some(ledger) = Ledger::reopen_lost(state_dir, clock, &mut repair.moved)? else {
            return Ok(repair);
        };
        let here = ledger.real_week_names()?;
        let missing: Vec<String> = marker.weeks.difference(&here).cloned().collect();
        for name in missing {
            let proof = match name.parse::<Week>() {
                Ok(week) => journal::proof(state_dir, week)?,
                Err(_) => journal::Proof::default(),
            };
            if !proof.segments.is_empty() {
                repair.recovered.push(ledger.record_proof(&name, &proof)?);
                marker.weeks.remove(&name);
                marker.write(state_dir)?;
                for segment in &proof.segments {
                    std::fs::remove_file(segment)
                        .map_err(|e| Error::journal("remove", segment, e))?;
                }
            } else if force {
                marker.weeks.remove(&name);
                marker.write(state_dir)?;
                repair.forgotten.push(name);
            } else {
                ledger.record_as_sent(&name)?;
                repair.recorded.push(name);
            }
        }
        Ok(repair)
    }

    /// The ledger of a state folder whose ledger is damaged, opened without the marker's
    /// checks (they are what is being repaired); an unusable one is moved aside first.
    /// `None`: the ledger is whole.
    fn reopen_lost(
        state_dir: &Path,
        clock: Clock,
        moved: &mut Vec<PathBuf>,
    ) -> Result<Option<Ledger>> {
        let path = Ledger::path_in(state_dir);
        let usable = match Ledger::open(state_dir, clock) {
            Ok(_) => return Ok(None),
            Err(Error::LedgerUnusable { .. }) => {
                has_content(&path)
                    && store::open(Store::Ledger, &path, Access::Write)
                        .ok()
                        .is_some_and(|c| schema::is_empty(&c).is_ok_and(|empty| !empty))
            }
            Err(other) => return Err(other),
        };
        if !usable {
            let stamp = clock.now().format("%Y%m%dT%H%M%SZ");
            for suffix in ["", "-wal", "-shm"] {
                let from = PathBuf::from(format!("{}{suffix}", path.display()));
                if from.exists() {
                    let to = PathBuf::from(format!("{}.lost-{stamp}", from.display()));
                    std::fs::rename(&from, &to).map_err(|e| Error::io("move aside", &from, e))?;
                    moved.push(to);
                }
            }
        }
        let conn = store::open(Store::Ledger, &path, Access::Write)?;
        let mut ledger = Ledger { conn, path, clock };
        schema::migrate(&mut ledger.conn).map_err(|e| ledger.unusable(e))?;
        Ok(Some(ledger))
    }

    fn record_as_sent(&self, week: &str) -> Result<()> {
        self.update(
            "INSERT INTO sends (week, kind, started_at, content_hash)
             VALUES (?1, 'real', ?2, 'recovered: recorded as sent by status --repair')",
            params![week, stamp_of(self.clock.now())],
        )
    }

    /// Keep what the journal proves of `week` for its next freeze, in one transaction.
    fn record_proof(&self, week: &str, proof: &journal::Proof) -> Result<Recovered> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        let mut counts = std::collections::BTreeMap::new();
        for (message_id, served) in &proof.served {
            self.update(
                "INSERT OR REPLACE INTO recovered (week, message_id, state) VALUES (?1, ?2, ?3)",
                params![week, message_id, served.as_str()],
            )?;
            *counts.entry(*served).or_default() += 1;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(Recovered {
            week: week.to_string(),
            counts,
            rebooted: proof.rebooted,
        })
    }

    /// What a repair proved of `week`, by Message-ID, for its freeze.
    pub(crate) fn recovered(&self, week: Week) -> Result<HashMap<String, State>> {
        let mut stmt = self
            .conn
            .prepare("SELECT message_id, state FROM recovered WHERE week = ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([week.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, State>(1)?))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }
}
