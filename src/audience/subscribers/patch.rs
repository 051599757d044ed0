//! A few readers looked up, or their status changed, in a list of any size without
//! parsing it: the file is searched window by window ([`super::scan`]) for the local part
//! of each address asked for, and only the entries around the hits are parsed; only the
//! ones that change are re-serialized (with `toml_edit`), every other byte is copied. A
//! request to leave then costs a read and a write of the file in a window's memory, not a
//! parse of a million entries.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use toml_edit::{DocumentMut, Table};

use super::edit::{backup_path, write_choices, write_status};
use super::scan::{comments_above, scan, Outcome, Visit};
use super::{Choices, Known, Status, Subscriber};
use crate::error::{Error, Result};

/// An entry found by [`lookup`]: its address as written, and its status.
pub(crate) type Found = (String, Status);

/// The entries of `keys` (address keys). `None` when a search cannot answer for sure and
/// the caller should read the list whole: the file is not cut into plain entries
/// (multi-line strings, other tables), or a key was not found in a file with escapes (a
/// `\` in a string could spell a local part differently).
pub(crate) fn lookup(
    path: &Path,
    known: &Known<'_>,
    keys: &[String],
) -> Result<Option<HashMap<String, Found>>> {
    let found = find(path, known, keys)?.map(|entries| {
        entries
            .into_iter()
            .map(|s| (s.key(), (s.email.to_string(), s.status)))
            .collect::<HashMap<_, _>>()
    });
    Ok(found)
}

/// The whole entries of `keys` (the first of each), `None` as [`lookup`] says.
pub(crate) fn find(
    path: &Path,
    known: &Known<'_>,
    keys: &[String],
) -> Result<Option<Vec<Subscriber>>> {
    crate::fsutil::ensure_regular(path, "the subscriber list")?;
    let mut found: HashMap<String, Subscriber> = HashMap::new();
    let outcome = scan(path, known, keys, None, &mut |_, entries| {
        for (_, s) in entries {
            found.entry(s.key()).or_insert(s);
        }
        Vec::new()
    })
    .map_err(|e| Error::io("read subscribers", path, e))?;
    Ok(outcome
        .answers(keys.len())
        .then(|| found.into_values().collect()))
}

/// Append `entry` (one `[[subscriber]]` block) for the reader `key` when a search shows
/// the list does not hold them, without parsing the rest. `false` when it cannot say for
/// sure, or they are there: the caller then reads the list whole (and says what it found).
pub(crate) fn append_new(path: &Path, known: &Known<'_>, key: &str, entry: &str) -> Result<bool> {
    match find(path, known, &[key.to_string()])? {
        Some(found) if found.is_empty() => {
            append(path, entry)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Give each reader of `changes` (address key → status) that status, unless `keep(current,
/// asked)` says their current one stands. Returns (address, new status) for each entry
/// changed, or `None` as [`lookup`] does (see [`edit_entries`]).
pub(crate) fn set_statuses(
    path: &Path,
    known: &Known<'_>,
    changes: &HashMap<String, Status>,
    keep: &dyn Fn(Status, Status) -> bool,
) -> Result<Option<Vec<(String, Status)>>> {
    let keys: Vec<String> = changes.keys().cloned().collect();
    let mut changed = Vec::new();
    let edited = edit_entries(path, known, &keys, &mut |s, table| {
        let status = changes[&s.key()];
        if keep(s.status, status) {
            return false;
        }
        write_status(table, status);
        changed.push((s.email.to_string(), status));
        true
    })?;
    Ok(edited.map(|()| changed))
}

/// Write each reader's choices from the preferences page (address key → choices) into
/// their entry; `None` as [`lookup`] does.
pub(crate) fn set_choices(
    path: &Path,
    known: &Known<'_>,
    choices: &HashMap<String, Choices>,
) -> Result<Option<()>> {
    let keys: Vec<String> = choices.keys().cloned().collect();
    edit_entries(path, known, &keys, &mut |s, table| {
        write_choices(table, &choices[&s.key()]);
        true
    })
}

/// Let `edit` change the table of each entry of `keys` (`true`: it changed), and write the
/// file once, only those entries re-serialized: the new file beside the old one, synced,
/// the old one kept as `<file>.bak` (a hard link, not a copy), then replaced. `None`, with
/// nothing written, when the search cannot answer for sure (see [`lookup`]).
fn edit_entries(
    path: &Path,
    known: &Known<'_>,
    keys: &[String],
    edit: &mut dyn FnMut(&Subscriber, &mut Table) -> bool,
) -> Result<Option<()>> {
    // Nobody to edit: no pass over a list of a million.
    if keys.is_empty() {
        return Ok(Some(()));
    }
    let veto = || false;
    let (outcome, _) = rewrite(path, known, keys, &veto, &mut |window, entries| {
        let mut edits = Vec::new();
        for (range, s) in entries {
            let text = std::str::from_utf8(&window[range.clone()]).unwrap_or_default();
            let Ok(mut doc) = text.parse::<DocumentMut>() else {
                continue;
            };
            let Some(table) = doc["subscriber"]
                .as_array_of_tables_mut()
                .and_then(|a| a.get_mut(0))
            else {
                continue;
            };
            if edit(&s, table) {
                edits.push((range, doc.to_string()));
            }
        }
        edits.sort_by_key(|(range, _)| range.start);
        edits
    })?;
    Ok(outcome.answers(keys.len()).then_some(()))
}

/// Write the list again with the edits `visit` makes, window by window, crash-safely and
/// keeping the old file as `.bak`; nothing is written when there is no edit, or when the
/// search cannot answer for sure, or when `veto` says so at the end. The pass's outcome
/// and the number of edits made.
fn rewrite(
    path: &Path,
    known: &Known<'_>,
    keys: &[String],
    veto: &dyn Fn() -> bool,
    visit: &mut Visit<'_>,
) -> Result<(Outcome, usize)> {
    crate::fsutil::ensure_regular(path, "the subscriber list")?;
    let mut result = None;
    let fill = |file: &mut dyn Write| {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
        let mut count = 0;
        let outcome = scan(path, known, keys, Some(&mut out), &mut |window, entries| {
            let edits = visit(window, entries);
            count += edits.len();
            edits
        })?;
        out.flush()?;
        let keep = count > 0 && outcome.answers(keys.len()) && !veto();
        result = Some((outcome, count));
        if keep {
            Ok(())
        } else {
            // Not an error: nothing to write, and the temporary file goes away.
            Err(std::io::Error::other(NOTHING_TO_WRITE))
        }
    };
    let written = crate::fsutil::write_atomic_filled(path, fill, None, || keep_as_backup(path));
    match (written, result) {
        (Ok(()), Some(result)) => Ok(result),
        (Err(_), Some(result)) if result.1 == 0 || !result.0.answers(keys.len()) || veto() => {
            Ok(result)
        }
        (Err(e), _) => Err(e),
        (Ok(()), None) => unreachable!("the list was written without being read"),
    }
}

/// Why [`rewrite`] stops a write it has no use for.
const NOTHING_TO_WRITE: &str = "nothing to write";

/// Append `entries` (whole `[[subscriber]]` blocks) at the end of the list, a blank line
/// apart, the old file kept as `.bak`. The old file is copied, never held in memory.
pub(crate) fn append(path: &Path, entries: &str) -> Result<()> {
    let mut old = std::fs::File::open(path).map_err(|e| Error::io("read subscribers", path, e))?;
    let tail = last_bytes(&mut old).map_err(|e| Error::io("read subscribers", path, e))?;
    let separator = separator_after(&tail);
    let fill = |file: &mut dyn Write| {
        std::io::Seek::rewind(&mut old)?;
        std::io::copy(&mut old, file)?;
        file.write_all(separator.as_bytes())?;
        file.write_all(entries.as_bytes())
    };
    crate::fsutil::write_atomic_filled(path, fill, None, || keep_as_backup(path))
}

/// What goes between a file ending in `tail` and an appended entry: a blank line apart.
fn separator_after(tail: &[u8]) -> &'static str {
    match tail {
        [] | [.., b'\n', b'\n'] => "",
        [.., b'\n'] => "\n",
        _ => "\n\n",
    }
}

/// The last two bytes of `file` (fewer if it is shorter).
fn last_bytes(file: &mut std::fs::File) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(2)))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    Ok(tail)
}

/// Remove the reader `key`'s entry, with the comment lines right above it (they are about
/// it), without parsing the rest of the list: `Some(false)` when a search shows they are
/// not listed, `None` when it cannot say for sure (or they are listed twice): the caller
/// then reads the list whole.
pub(crate) fn remove(path: &Path, known: &Known<'_>, key: &str) -> Result<Option<bool>> {
    let keys = [key.to_string()];
    let seen = std::cell::Cell::new(0);
    // Listed twice: nothing written here, the whole edit says so.
    let twice = || seen.get() > 1;
    let (outcome, removed) = rewrite(path, known, &keys, &twice, &mut |window, entries| {
        seen.set(seen.get() + entries.len());
        match entries.as_slice() {
            [(range, _)] if seen.get() == 1 => {
                vec![(
                    comments_above(window, range.start)..range.end,
                    String::new(),
                )]
            }
            _ => Vec::new(),
        }
    })?;
    if twice() {
        return Ok(None);
    }
    Ok(outcome.answers(1).then_some(removed == 1))
}

/// The file at `path`, before it is replaced, kept as `<file>.bak` (a hard link, else a
/// copy).
fn keep_as_backup(path: &Path) -> std::io::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let bak = backup_path(path);
    match std::fs::remove_file(&bak) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::hard_link(path, &bak).or_else(|_| std::fs::copy(path, &bak).map(|_| ()))
}

#[cfg(test)]
#[path = "patch_tests.rs"]
mod tests;
