//! The ledger's marker: a small file beside the SQLite files that outlives them. It says
//! that this state folder has held a ledger, and lists every week a real send froze. A
//! ledger that is missing, emptied, or lacks a listed week (deleted, truncated, its WAL
//! lost) is then known for what it is, instead of being taken for a first use that mails
//! the whole list again; and `digestif status --repair` can rebuild what it lists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::week::Week;

const HEADER: &str = "\
# digestif: this state folder holds a send ledger (ledger.sqlite3), and this file lists
# the weeks it has frozen. Keep it with the ledger. If the ledger is lost, `digestif send`
# stops instead of mailing everyone again, and `digestif status --repair` rebuilds it.
";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Marker {
    /// Real weeks frozen in this ledger, oldest first.
    pub(crate) weeks: BTreeSet<String>,
}

impl Marker {
    pub(crate) fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join("ledger.marker")
    }

    /// The marker of `state_dir`, or `None` when it never held a ledger.
    pub(crate) fn read(state_dir: &Path) -> Result<Option<Marker>> {
        let path = Marker::path_in(state_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| Error::LedgerUnusable {
                path,
                why: format!(
                    "the marker file is damaged ({}); it lists the weeks sent, fix or remove it",
                    e.message().trim()
                ),
            })
    }

    /// Write the marker atomically.
    pub(crate) fn write(&self, state_dir: &Path) -> Result<()> {
        let body = toml::to_string(self).unwrap_or_default();
        fsutil::write_atomic(
            &Marker::path_in(state_dir),
            format!("{HEADER}{body}").as_bytes(),
        )
    }

    /// Record `week` (a real send just froze it).
    pub(crate) fn add_week(state_dir: &Path, week: Week) -> Result<()> {
        let mut marker = Marker::read(state_dir)?.unwrap_or_default();
        if marker.weeks.insert(week.to_string()) {
            marker.write(state_dir)?;
        }
        Ok(())
    }
}
