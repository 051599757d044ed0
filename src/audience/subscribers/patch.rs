//! A few readers looked up, or their status changed, in a list of any size without
//! parsing it: the file is searched (SIMD `memmem`) for the local part of each address
//! asked for, and only the entries around the hits are parsed; only the ones that change
//! are re-serialized (with `toml_edit`), every other byte is copied. A request to leave
//! then costs a read and a write of the file, not a parse of a million entries in memory.

use std::collections::HashMap;
use std::io::Write;
use std::ops::Range;
use std::path::Path;

use toml_edit::{DocumentMut, Table};

use super::edit::{backup_path, write_choices, write_status};
use super::parse::{is_subscriber_header, parse};
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
    let Some(file) = List::read(path)? else {
        return Ok(None);
    };
    let mut found: HashMap<String, Subscriber> = HashMap::new();
    for (_, s) in file.entries(path, known, keys) {
        found.entry(s.key()).or_insert(s);
    }
    let all = found.len() == keys.len();
    Ok(file.answers(all).then(|| found.into_values().collect()))
}

/// Append `entry` (one `[[subscriber]]` block) for the reader `key` when a search shows
/// the list does not hold them, without parsing the rest. `false` when it cannot say for
/// sure, or they are there: the caller then reads the list whole (and says what it found).
pub(crate) fn append_new(path: &Path, known: &Known<'_>, key: &str, entry: &str) -> Result<bool> {
    let Some(file) = List::read(path)? else {
        return Ok(false);
    };
    let keys = [key.to_string()];
    if !file.entries(path, known, &keys).is_empty() || !file.answers(false) {
        return Ok(false);
    }
    let end = file.bytes.len();
    let separator = separator_after(&file.bytes);
    write_replacing(
        path,
        &file.bytes,
        &[(end..end, format!("{separator}{entry}"))],
    )?;
    Ok(true)
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
    let Some(file) = List::read(path)? else {
        return Ok(None);
    };
    let entries = file.entries(path, known, keys);
    if !file.answers(entries.len() == keys.len()) {
        return Ok(None);
    }
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    for (range, s) in entries {
        let text = std::str::from_utf8(&file.bytes[range.clone()]).unwrap_or_default();
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
    if !edits.is_empty() {
        edits.sort_by_key(|(range, _)| range.start);
        write_replacing(path, &file.bytes, &edits)?;
    }
    Ok(Some(()))
}

/// Append `entries` (whole `[[subscriber]]` blocks) at the end of the list, a blank line
/// apart, the old file kept as `.bak`. The old file is copied, never held in memory.
pub(crate) fn append(path: &Path, entries: &str) -> Result<()> {
    let mut old = std::fs::File::open(path).map_err(|e| Error::io("read subscribers", path, e))?;
    let tail = last_bytes(&mut old).map_err(|e| Error::io("read subscribers", path, e))?;
    let separator = separator_after(&tail);
    let fill = |file: &mut std::fs::File| {
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
    let Some(file) = List::read(path)? else {
        return Ok(None);
    };
    let entries = file.entries(path, known, &[key.to_string()]);
    match entries.as_slice() {
        [] if file.answers(false) => Ok(Some(false)),
        [(range, _)] => {
            let start = file.comments_above(range.start);
            write_replacing(path, &file.bytes, &[(start..range.end, String::new())])?;
            Ok(Some(true))
        }
        _ => Ok(None),
    }
}

/// A subscribers file read whole, as bytes.
struct List {
    bytes: Vec<u8>,
    escapes: bool,
}

impl List {
    /// `None` when the file is not cut into plain `[[subscriber]]` entries.
    fn read(path: &Path) -> Result<Option<List>> {
        crate::fsutil::ensure_regular(path, "the subscriber list")?;
        let bytes = std::fs::read(path).map_err(|e| Error::io("read subscribers", path, e))?;
        let finder = memchr::memmem::Finder::new;
        if finder("\"\"\"").find(&bytes).is_some() || finder("\'\'\'").find(&bytes).is_some() {
            return Ok(None);
        }
        let plain = line_starts(&bytes).all(|start| {
            let line = trim_start(&bytes[start..]);
            !line.starts_with(b"[") || is_entry_header(line)
        });
        let escapes = memchr::memchr(b'\\', &bytes).is_some();
        Ok(plain.then_some(List { bytes, escapes }))
    }

    /// Can the search's answer be trusted, given whether it `found_all` it looked for?
    fn answers(&self, found_all: bool) -> bool {
        found_all || !self.escapes
    }

    /// The entries of `keys`, each with its byte range: the entries whose text holds a
    /// key's local part, parsed one by one (an entry that does not parse is nobody: a
    /// reader can leave while another entry has a mistake in it).
    fn entries(
        &self,
        path: &Path,
        known: &Known<'_>,
        keys: &[String],
    ) -> Vec<(Range<usize>, Subscriber)> {
        let mut ranges: Vec<Range<usize>> = Vec::new();
        for key in keys {
            let local = key.rsplit_once('@').map_or(key.as_str(), |(l, _)| l);
            for hit in memchr::memmem::find_iter(&self.bytes, local.as_bytes()) {
                let range = self.entry_around(hit);
                if !ranges.contains(&range) {
                    ranges.push(range);
                }
            }
        }
        let mut entries = Vec::new();
        for range in ranges {
            let Ok(text) = std::str::from_utf8(&self.bytes[range.clone()]) else {
                continue;
            };
            for s in parse(path, text, known).unwrap_or_default() {
                if keys.contains(&s.key()) {
                    entries.push((range.clone(), s));
                }
            }
        }
        entries
    }

    /// Where the comment lines right above the line at `start` begin (`start` if none): a
    /// blank line ends them, and what is above it is not about that entry.
    fn comments_above(&self, start: usize) -> usize {
        let bytes = &self.bytes;
        let mut at = start;
        while at > 0 {
            let previous = memchr::memrchr(b'\n', &bytes[..at - 1]).map_or(0, |n| n + 1);
            if !trim_start(&bytes[previous..at]).starts_with(b"#") {
                break;
            }
            at = previous;
        }
        at
    }

    /// The entry holding byte `at`: from its header line to the next header, less the
    /// comment lines right above that header (they belong to the next entry).
    fn entry_around(&self, at: usize) -> Range<usize> {
        let bytes = &self.bytes;
        let line_start = |i: usize| memchr::memrchr(b'\n', &bytes[..i]).map_or(0, |n| n + 1);
        let is_header = |start: usize| trim_start(&bytes[start..]).starts_with(b"[");
        let mut start = line_start(at);
        while start > 0 && !is_header(start) {
            start = line_start(start - 1);
        }
        let mut end = bytes.len();
        let mut next = memchr::memchr(b'\n', &bytes[at..]).map(|n| at + n + 1);
        while let Some(line) = next.filter(|&l| l < bytes.len()) {
            if is_header(line) {
                end = line;
                break;
            }
            next = memchr::memchr(b'\n', &bytes[line..]).map(|n| line + n + 1);
        }
        // Comment lines right above the next header go with it.
        while end > start {
            let previous = line_start(end - 1);
            if previous <= start || !trim_start(&bytes[previous..]).starts_with(b"#") {
                break;
            }
            end = previous;
        }
        start..end
    }
}

/// Where each line of `bytes` starts.
fn line_starts(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    std::iter::once(0).chain(memchr::memchr_iter(b'\n', bytes).map(|n| n + 1))
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes
        .iter()
        .take_while(|b| **b == b' ' || **b == b'\t')
        .count();
    &bytes[skip..]
}

/// Is this line (up to its end) an entry's `[[subscriber]]` header?
fn is_entry_header(line: &[u8]) -> bool {
    let end = memchr::memchr(b'\n', line).unwrap_or(line.len());
    std::str::from_utf8(&line[..end]).is_ok_and(|l| is_subscriber_header(l.trim_end()))
}

/// Write `bytes` with `edits` (sorted, non-overlapping ranges and their new text) to
/// `path`, crash-safely, keeping the old file as `<path>.bak` (a hard link: no copy).
fn write_replacing(path: &Path, bytes: &[u8], edits: &[(Range<usize>, String)]) -> Result<()> {
    let fill = |file: &mut std::fs::File| {
        let mut at = 0;
        for (range, text) in edits {
            file.write_all(&bytes[at..range.start])?;
            file.write_all(text.as_bytes())?;
            at = range.end;
        }
        file.write_all(&bytes[at..])
    };
    crate::fsutil::write_atomic_filled(path, fill, None, || keep_as_backup(path))
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
