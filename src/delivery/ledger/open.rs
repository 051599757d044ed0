//! Opening the ledger: for writing (folding what a killed run left in the journal), read
//! only, or to repair one that was lost.

use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension};

use super::{has_content, journal, lost, schema, Closed, Ledger, Marker};
use crate::clock::Clock;
use crate::error::Result;
use crate::store::{self, Access, Store};

impl Ledger {
    pub(crate) fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join("ledger.sqlite3")
    }

    /// Open (creating) the ledger for writing. A state folder whose marker says it held a
    /// ledger, but whose ledger is missing, empty or short of a week, is refused. What a
    /// killed run left in the journal is folded in first.
    pub(crate) fn open(state_dir: &Path, clock: Clock) -> Result<Ledger> {
        crate::fsutil::create_private_dir(state_dir)?;
        let path = Ledger::path_in(state_dir);
        let marker = Marker::read(state_dir)?;
        if marker.is_some() && !has_content(&path) {
            return Err(lost(&path, "is missing or empty"));
        }
        let conn = store::open(Store::Ledger, &path, Access::Write)?;
        let mut ledger = Ledger { conn, path, clock };
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

    /// Open an existing ledger read-only; `None` when there is none yet.
    pub(crate) fn open_read_only(state_dir: &Path, clock: Clock) -> Result<Option<Ledger>> {
        let path = Ledger::path_in(state_dir);
        let marker = Marker::read(state_dir)?;
        if !path.exists() && marker.is_none() {
            return Ok(None);
        }
        if marker.is_some() && !has_content(&path) {
            return Err(lost(&path, "is missing or empty"));
        }
        let conn = store::open(Store::Ledger, &path, Access::Read)?;
        let ledger = Ledger { conn, path, clock };
        schema::check_readable(&ledger.conn).map_err(|e| ledger.unusable(e))?;
        if let Some(marker) = marker {
            if schema::is_empty(&ledger.conn).map_err(|e| ledger.err(e))? {
                return Err(lost(&ledger.path, "holds no ledger tables"));
            }
            ledger.check_weeks(&marker)?;
        }
        Ok(Some(ledger))
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
    /// its lines are applied (a crash before the segment is moved never applies a line
    /// twice), then move it to its week's keep ([`journal::keep`]). Returns the number of
    /// updates applied.
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
        let contents = journal::read(&path)?;
        let applied = match &contents {
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
        journal::keep(&path, contents.as_ref())?;
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
    pub(super) fn real_week_names(&self) -> Result<std::collections::BTreeSet<String>> {
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
}
