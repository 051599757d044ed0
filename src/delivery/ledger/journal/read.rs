//! Reading what a journal holds: the segments a run left, and each segment's lines up to
//! the first that fails its checksum.

use std::fs::File;
use std::io::BufRead;
use std::path::Path;

use super::line::decode;
use super::{dir_in, Closed, HEADER};
use crate::delivery::ledger::Update;
use crate::error::{Error, Result};
use crate::kind::Kind;
use crate::week::Week;

/// Make a directory's entries (a new file, a removal) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::journal("sync", dir, e))
}

/// Segments left in the journal folder (by a killed run, or one whose fold failed), oldest
/// first.
pub(crate) fn leftovers(state_dir: &Path) -> Result<Vec<Closed>> {
    let dir = dir_in(state_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::journal("read", &dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::journal("read", &dir, e))?.path();
        if path.extension().is_some_and(|x| x == "log") {
            found.push(path);
        }
    }
    // Run names start with their UTC start time, and segment numbers are zero-padded.
    found.sort();
    Ok(found.into_iter().map(Closed).collect())
}

/// The run a segment belongs to: its name without `-NNNNNN.log`.
pub(crate) fn run_of(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.strip_suffix(".log").and_then(|n| n.rsplit_once('-')) {
        Some((run, _)) => run.to_string(),
        None => name,
    }
}

/// What a segment holds: its week and kind, and its valid lines in order.
pub(crate) struct Contents {
    pub week: Week,
    pub kind: Kind,
    /// The boot its run started in ([`boot_id`]); `None` in segments of earlier versions.
    pub boot: Option<String>,
    pub updates: Vec<Update>,
    /// A line failed its checksum or did not parse: it and what follows were left out.
    pub torn: bool,
    /// Bytes of the header and the valid lines: what is left when the zeros written ahead
    /// (and a torn tail) are cut off.
    pub len: u64,
}

/// This boot's identity (Linux: `/proc/sys/kernel/random/boot_id`). `None` elsewhere:
/// every leftover segment is then read as if the power had gone.
pub(crate) fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        .then(|| id.to_string())
}

/// Read a closed segment. `None`: no valid header (created, then the power went).
pub(crate) fn read(path: &Path) -> Result<Option<Contents>> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = File::open(path).map_err(|e| Error::journal("read", path, e))?;
    let mut lines = std::io::BufReader::new(file).split(b'\n');
    let header = match lines.next() {
        Some(Ok(line)) => String::from_utf8(line).unwrap_or_default(),
        Some(Err(e)) => return Err(Error::journal("read", path, e)),
        None => return Ok(None),
    };
    let mut words = header
        .strip_prefix(HEADER)
        .unwrap_or_default()
        .split_whitespace();
    let (Some(week), Some(kind), boot, None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Ok(None);
    };
    let Ok(week) = week.parse::<Week>() else {
        return Ok(None);
    };
    let mut contents = Contents {
        week,
        kind: Kind::parse(kind),
        boot: boot.map(str::to_string),
        updates: Vec::new(),
        torn: false,
        len: header.len() as u64 + 1,
    };
    for line in lines {
        let line = line.map_err(|e| Error::journal("read", path, e))?;
        match std::str::from_utf8(&line)
            .ok()
            .and_then(|l| decode(&name, l))
        {
            Some(update) => {
                contents.updates.push(update);
                contents.len += line.len() as u64 + 1;
            }
            None => {
                contents.torn = true;
                break;
            }
        }
    }
    Ok(Some(contents))
}
