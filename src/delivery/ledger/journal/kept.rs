//! What the journal proves once its segments are folded. A folded segment of a real week is
//! kept (cut to its lines) until that week has nobody left to send to, so that if the
//! ledger itself is lost, `status --repair` can still tell who was served: a segment's
//! *sending* lines carry each message's Message-ID, which is a function of the week and the
//! reader's address and survives the ledger.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::line::encode;
use super::read::{boot_id, leftovers, read, Contents};
use super::{dir_in, sync_dir};
use crate::delivery::ledger::{State, Update};
use crate::error::{Error, Result};
use crate::kind::Kind;
use crate::week::Week;

/// Where the folded segments of `week` wait for the week to end.
pub(crate) fn kept_dir(state_dir: &Path, week: Week) -> PathBuf {
    dir_in(state_dir).join("kept").join(week.to_string())
}

/// Move the folded segment at `path` (in the journal folder) to its week's keep, cut to
/// its lines; a segment of a test send is removed.
pub(crate) fn keep(path: &Path, contents: Option<&Contents>) -> Result<()> {
    let Some(contents) = contents.filter(|c| c.kind == Kind::Real) else {
        return std::fs::remove_file(path).map_err(|e| Error::journal("remove", path, e));
    };
    let journal = path.parent().unwrap_or(Path::new("."));
    let dir = journal.join("kept").join(contents.week.to_string());
    crate::fsutil::create_private_dir(&dir)?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(contents.len))
        .map_err(|e| Error::journal("cut", path, e))?;
    let to = dir.join(path.file_name().unwrap_or_default());
    std::fs::rename(path, &to).map_err(|e| Error::journal("keep", path, e))
}

/// Drop what the journal kept of `week`: its send is over, the ledger alone says it.
pub(crate) fn release(state_dir: &Path, week: Week) -> Result<()> {
    let dir = kept_dir(state_dir, week);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => sync_dir(&dir_in(state_dir).join("kept")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::journal("remove", &dir, e)),
    }
}

/// Blank the Message-IDs in `ids` (a person being forgotten) wherever the journal keeps
/// them: a Message-ID is a hash of the address anyone holding the address can recompute.
/// Returns how many lines were blanked.
pub(crate) fn scrub(state_dir: &Path, ids: &HashSet<String>) -> Result<usize> {
    let kept = dir_in(state_dir).join("kept");
    let weeks = match std::fs::read_dir(&kept) {
        Ok(weeks) => weeks,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::journal("read", &kept, e)),
    };
    let mut blanked = 0;
    for week in weeks {
        let dir = week.map_err(|e| Error::journal("read", &kept, e))?.path();
        let segments = std::fs::read_dir(&dir).map_err(|e| Error::journal("read", &dir, e))?;
        for segment in segments {
            let path = segment.map_err(|e| Error::journal("read", &dir, e))?.path();
            if path.extension().is_some_and(|x| x == "log") {
                blanked += scrub_segment(&path, ids)?;
            }
        }
    }
    Ok(blanked)
}

/// [`scrub`] in one segment, rewritten (atomically) only if it names one of `ids`.
fn scrub_segment(path: &Path, ids: &HashSet<String>) -> Result<usize> {
    let Some(mut contents) = read(path)? else {
        return Ok(0);
    };
    let mut blanked = 0;
    for update in &mut contents.updates {
        if let Update::Sending { message_id, .. } = update {
            if ids.contains(message_id.as_str()) {
                *message_id = String::new();
                blanked += 1;
            }
        }
    }
    if blanked == 0 {
        return Ok(0);
    }
    let bytes = std::fs::read(path).map_err(|e| Error::journal("read", path, e))?;
    let header_end = bytes
        .iter()
        .position(|b| *b == b'\n')
        .unwrap_or(bytes.len());
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut text = String::from_utf8_lossy(&bytes[..header_end]).into_owned();
    text.push('\n');
    for update in &contents.updates {
        encode(&name, update, &mut text);
    }
    crate::fsutil::write_atomic(path, text.as_bytes())?;
    Ok(blanked)
}

/// What the journal shows of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Served {
    /// Refused for good (5xx): not served, not to be tried again.
    Failed,
    /// Its transaction started and no outcome was recorded (the run was killed): sent
    /// again and flagged a possible duplicate, as after any kill.
    Interrupted,
    /// No reply came after the data: maybe delivered, never sent again.
    Unknown,
    /// The server took it.
    Sent,
}

impl Served {
    /// The state a new freeze gives the reader.
    pub(crate) fn state(self) -> State {
        match self {
            Served::Failed => State::Failed,
            Served::Interrupted => State::Sending,
            Served::Unknown => State::Unknown,
            Served::Sent => State::Sent,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        self.state().as_str()
    }
}

/// What the journal proves about one real week, by Message-ID.
#[derive(Debug, Default)]
pub(crate) struct Proof {
    pub served: HashMap<String, Served>,
    /// The segments read: removed once what they prove is recorded elsewhere.
    pub segments: Vec<PathBuf>,
    /// One of them was written before the last boot: lines not yet synced then (with
    /// `ledger_sync = "normal"`) may have been lost with the power.
    pub rebooted: bool,
}

/// Read every segment of `week`, kept or left by a killed run. Lines are keyed by the
/// audience's order (`seq`) of one freeze; a week's segments all belong to one freeze
/// (repair removes them when it records what they prove).
pub(crate) fn proof(state_dir: &Path, week: Week) -> Result<Proof> {
    let mut segments: Vec<PathBuf> = leftovers(state_dir)?.into_iter().map(|c| c.0).collect();
    let dir = kept_dir(state_dir, week);
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries {
                let path = entry.map_err(|e| Error::journal("read", &dir, e))?.path();
                if path.extension().is_some_and(|x| x == "log") {
                    segments.push(path);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::journal("read", &dir, e)),
    }
    // Run names start with their start time, segment numbers are zero-padded.
    segments.sort_by_key(|p| p.file_name().map(std::ffi::OsStr::to_os_string));
    let mut tally = Tally::default();
    let mut proof = Proof::default();
    for path in segments {
        let Some(contents) = read(&path)? else {
            continue;
        };
        if contents.week != week || contents.kind != Kind::Real {
            continue;
        }
        proof.rebooted |= contents.boot.is_none() || contents.boot != boot_id();
        tally.add(&contents);
        proof.segments.push(path);
    }
    proof.served = tally.finish();
    Ok(proof)
}

/// Folds a week's lines into what each message is known to have become.
#[derive(Default)]
struct Tally {
    message_ids: HashMap<i64, String>,
    /// Marks not yet followed by an outcome: did the transaction start?
    open: HashMap<i64, bool>,
    served: HashMap<String, Served>,
}

impl Tally {
    fn add(&mut self, contents: &Contents) {
        // After a reboot the page cache is gone: a *started* line may be lost, so every
        // mark is taken as started (see `Ledger::fold_segment`).
        let whole = contents.boot.is_some() && contents.boot == boot_id();
        for update in &contents.updates {
            match update {
                Update::Sending { seq, message_id } => {
                    self.message_ids.insert(*seq, message_id.clone());
                    self.open.insert(*seq, !whole);
                }
                Update::Started { seq } => {
                    self.open.insert(*seq, true);
                }
                Update::Outcome { seq, state, .. } => {
                    self.open.remove(seq);
                    let served = match state {
                        State::Sent => Some(Served::Sent),
                        State::Failed => Some(Served::Failed),
                        _ => None,
                    };
                    self.note(*seq, served);
                }
                Update::Unknown { seq, .. } => {
                    self.open.remove(seq);
                    self.note(*seq, Some(Served::Unknown));
                }
            }
        }
    }

    /// What a message became; a later attempt never makes it less served than it was.
    fn note(&mut self, seq: i64, served: Option<Served>) {
        let (Some(served), Some(id)) = (served, self.message_ids.get(&seq)) else {
            return;
        };
        let known = self.served.entry(id.clone()).or_insert(served);
        *known = (*known).max(served);
    }

    fn finish(mut self) -> HashMap<String, Served> {
        let started: Vec<i64> = self
            .open
            .iter()
            .filter(|(_, started)| **started)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in started {
            self.note(seq, Some(Served::Interrupted));
        }
        self.served
    }
}
