//! Validating a subscribers file: whole (for editing) or streamed entry by entry (for a
//! send, which must not hold 1,000,000 entries). Both cut the file the same way, with one
//! [`Splitter`], and report every problem with its file, line and column.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use toml_edit::{ArrayOfTables, ImDocument, Item};

use super::entry::{shift, Entry};
use super::{first_seen, Known, Subscriber};
use crate::error::{Diagnostic, Error, Result};

/// Validate `source`; `path` labels diagnostics. Entries come back in file order.
///
/// The file is validated entry by entry (each `[[subscriber]]` block parsed on its own), so
/// a list of 100,000 subscribers never exists as one big TOML document in memory. Files
/// with multi-line strings, whose blocks cannot be split safely by lines, are parsed whole.
pub(crate) fn parse(
    path: &Path,
    source: &str,
    known: &Known<'_>,
) -> Result<Vec<Subscriber>, Vec<Diagnostic>> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut subscribers = Vec::new();
    let mut v = Validation {
        path,
        known,
        seen: &mut |key: &str, line| first_seen(&mut seen, key, line),
        sink: &mut |sub| subscribers.push(sub),
        problems: Vec::new(),
    };
    for (i, block) in blocks(source).iter().enumerate() {
        v.document(&block.text, block.first_line, i);
    }
    let mut problems = v.problems;
    problems.sort_by_key(|d| (d.line, d.column));
    if problems.is_empty() {
        Ok(subscribers)
    } else {
        Err(problems)
    }
}

/// [`stream`] with the addresses already seen kept in memory: for lists a command reads
/// once, where a `send`'s SQLite-backed memory is not needed.
pub(crate) fn stream_in_memory(
    path: &Path,
    known: &Known<'_>,
    sink: &mut dyn FnMut(Subscriber),
) -> Result<Vec<Diagnostic>> {
    let mut seen = HashMap::new();
    stream(
        path,
        known,
        &mut |key, line| first_seen(&mut seen, key, line),
        sink,
    )
}

/// [`stream`] with duplicates found for 8 bytes per entry ([`super::Hashed`]): a second
/// pass reads the list again only when two addresses share a hash. For commands that read
/// a list of any size once (`check`, `send`'s freeze): every problem, each entry to `sink`
/// once (in the first pass).
pub(crate) fn stream_hashed(
    path: &Path,
    known: &Known<'_>,
    sink: &mut dyn FnMut(Subscriber),
) -> Result<Vec<Diagnostic>> {
    let mut hashed = super::Hashed::default();
    let problems = stream(
        path,
        known,
        &mut |key, _line| {
            hashed.note(key);
            None
        },
        sink,
    )?;
    match hashed.exact() {
        Some(mut exact) => stream(
            path,
            known,
            &mut |key, line| exact.seen(key, line),
            &mut |_| {},
        ),
        None => Ok(problems),
    }
}

/// Validate the file at `path` entry by entry without holding it in memory: each valid
/// subscriber goes to `sink` as soon as it is read, and `seen(key, line)` answers with the
/// line of an earlier entry with the same address (and remembers this one), so the caller
/// chooses where that memory lives (a `send` keeps it in SQLite). Every problem is returned
/// at the end; a caller that must not act on a bad list undoes what `sink` did.
pub(crate) fn stream(
    path: &Path,
    known: &Known<'_>,
    seen: &mut dyn FnMut(&str, usize) -> Option<usize>,
    sink: &mut dyn FnMut(Subscriber),
) -> Result<Vec<Diagnostic>> {
    crate::fsutil::ensure_regular(path, "the subscriber list")?;
    let open = || std::fs::File::open(path).map_err(|e| Error::io("read subscribers", path, e));
    let mut v = Validation {
        path,
        known,
        seen,
        sink,
        problems: Vec::new(),
    };
    if !streamable(std::io::BufReader::with_capacity(1 << 20, open()?)) {
        // Multi-line strings or other tables: blocks cannot be cut by lines; read it whole.
        let source =
            std::fs::read_to_string(path).map_err(|e| Error::io("read subscribers", path, e))?;
        v.document(&source, 1, 0);
        return Ok(sorted(v.problems));
    }
    let file = open()?;
    let mut failed = None;
    std::thread::scope(|scope| {
        let (batches, parsed) = pipeline(scope, file, path, known);
        v.in_order(parsed);
        failed = batches
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
            .err();
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(sorted(v.problems)),
    }
}

/// Blocks parsed together, one batch a task.
const BATCH: usize = 4096;

/// A batch of parsed blocks: its number, and the file's index of its first block.
type ParsedBatch = (usize, usize, Vec<Parsed>);

/// Reading and parsing on their own threads: one reads `file` and cuts it into batches of
/// blocks, two parse batches as they come (parsing is nine tenths of reading a list), and
/// the caller takes the parsed batches (in any order) from the returned channel. Bounded
/// channels keep a few batches in memory at most. The handle answers the reading's error.
fn pipeline<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    file: std::fs::File,
    path: &'s Path,
    known: &'s Known<'_>,
) -> (
    std::thread::ScopedJoinHandle<'s, Result<()>>,
    std::sync::mpsc::Receiver<ParsedBatch>,
) {
    let (to_parse, batches) = std::sync::mpsc::sync_channel::<(usize, usize, Vec<Block>)>(2);
    let (to_accept, parsed) = std::sync::mpsc::sync_channel::<ParsedBatch>(4);
    let reader = scope.spawn(move || read_batches(file, path, &to_parse));
    let batches = std::sync::Arc::new(std::sync::Mutex::new(batches));
    for _ in 0..2 {
        let (batches, to_accept) = (batches.clone(), to_accept.clone());
        scope.spawn(move || loop {
            let next = batches
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .recv();
            let Ok((number, first, blocks)) = next else {
                return;
            };
            let done = blocks
                .iter()
                .map(|b| parse_block(path, known, &b.text, b.first_line))
                .collect();
            if to_accept.send((number, first, done)).is_err() {
                return;
            }
        });
    }
    (reader, parsed)
}

/// Cut the file into batches of [`BATCH`] blocks, numbered, each with the index of its
/// first block; stops early when nobody listens any more.
fn read_batches(
    file: std::fs::File,
    path: &Path,
    out: &std::sync::mpsc::SyncSender<(usize, usize, Vec<Block>)>,
) -> Result<()> {
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let (mut splitter, mut line) = (Splitter::default(), String::new());
    let (mut batch, mut number, mut first) = (Vec::with_capacity(BATCH), 0, 0);
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| Error::io("read subscribers", path, e))?;
        if read == 0 {
            break;
        }
        if let Some(block) = splitter.push(&line) {
            batch.push(block);
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if out.send((number, first, full)).is_err() {
                    return Ok(());
                }
                (number, first) = (number + 1, first + BATCH);
            }
        }
    }
    batch.push(splitter.finish());
    let _ = out.send((number, first, batch));
    Ok(())
}

fn sorted(mut problems: Vec<Diagnostic>) -> Vec<Diagnostic> {
    problems.sort_by_key(|d| (d.line, d.column));
    problems
}

/// Can the file be cut into blocks line by line? (No multi-line strings, no other tables.)
/// A list is read twice, this look first: it searches bytes, and decodes only the lines
/// that open a table.
fn streamable(mut reader: impl BufRead) -> bool {
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return true,
            Ok(_) => {}
        }
        if memchr::memmem::find(&line, b"\"\"\"").is_some()
            || memchr::memmem::find(&line, b"\'\'\'").is_some()
        {
            return false;
        }
        let first = line.iter().find(|b| !matches!(b, b' ' | b'\t'));
        if matches!(first, Some(b'[' | 0x80..)) {
            let Ok(text) = std::str::from_utf8(&line) else {
                return true;
            };
            let t = text.trim_start();
            if t.starts_with('[') && !is_subscriber_header(t) {
                return false;
            }
        }
    }
}

/// One piece of a subscribers file: an entry with the comments right above it, or what
/// stands before the first entry.
pub(super) struct Block {
    /// Line of the file where `text` starts (1-based).
    pub(super) first_line: usize,
    pub(super) text: String,
}

/// Cuts a file into [`Block`]s at its `[[subscriber]]` headers, fed one line at a time.
/// Comment lines right above a header (no blank line between) belong to that entry, so
/// removing an entry takes its comment along. Only for files that are [`streamable`].
#[derive(Default)]
struct Splitter {
    block: String,
    comments: String,
    /// Lines fed so far.
    lines: usize,
    /// Line where `block` starts, minus one.
    block_start: usize,
}

impl Splitter {
    /// Feed one line (with its line break); returns the block that a header line ends.
    fn push(&mut self, line: &str) -> Option<Block> {
        self.lines += 1;
        let t = line.trim_start();
        if t.starts_with('[') {
            let comment_lines = self.comments.matches('\n').count();
            let text = std::mem::replace(&mut self.block, std::mem::take(&mut self.comments));
            self.block.push_str(line);
            let first_line = self.block_start + 1;
            self.block_start = self.lines - 1 - comment_lines;
            // The text before the first entry is a block only when there is some.
            return (!text.is_empty() || first_line > 1).then_some(Block { first_line, text });
        }
        if t.starts_with('#') {
            self.comments.push_str(line);
        } else {
            self.block.push_str(&self.comments);
            self.comments.clear();
            self.block.push_str(line);
        }
        None
    }

    /// The last block.
    fn finish(mut self) -> Block {
        self.block.push_str(&self.comments);
        Block {
            first_line: self.block_start + 1,
            text: self.block,
        }
    }
}

/// The file as blocks to parse and edit one by one: one per entry when it can be cut
/// safely, else the whole file as one block.
pub(super) fn blocks(source: &str) -> Vec<Block> {
    if !streamable(source.as_bytes()) {
        return vec![Block {
            first_line: 1,
            text: source.to_string(),
        }];
    }
    let mut splitter = Splitter::default();
    let mut blocks: Vec<Block> = source
        .split_inclusive('\n')
        .filter_map(|line| splitter.push(line))
        .collect();
    blocks.push(splitter.finish());
    blocks
}

pub(super) fn is_subscriber_header(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("[[") else {
        return false;
    };
    let Some(end) = rest.find("]]") else {
        return false;
    };
    let after = rest[end + 2..].trim();
    rest[..end].trim() == "subscriber" && (after.is_empty() || after.starts_with('#'))
}

/// What validation gathers across blocks.
struct Validation<'a, 'k> {
    path: &'a Path,
    known: &'a Known<'k>,
    /// Line of an earlier entry with this address key, remembering this one.
    seen: &'a mut dyn FnMut(&str, usize) -> Option<usize>,
    sink: &'a mut dyn FnMut(Subscriber),
    problems: Vec<Diagnostic>,
}

impl Validation<'_, '_> {
    /// Validate `text`, whose first line is line `first_line` of the file.
    fn document(&mut self, text: &str, first_line: usize, block: usize) {
        let parsed = parse_block(self.path, self.known, text, first_line);
        self.accept(parsed, block);
    }

    /// Hand on parsed batches in file order, whatever order they arrive in.
    fn in_order(&mut self, parsed: std::sync::mpsc::Receiver<ParsedBatch>) {
        let mut early = std::collections::BTreeMap::new();
        let mut next = 0;
        for (number, first, blocks) in parsed {
            early.insert(number, (first, blocks));
            while let Some((first, blocks)) = early.remove(&next) {
                for (i, p) in blocks.into_iter().enumerate() {
                    self.accept(p, first + i);
                }
                next += 1;
            }
        }
    }

    /// Hand on a parsed block's entries in order, each address checked against those
    /// seen before.
    fn accept(&mut self, parsed: Parsed, block: usize) {
        self.problems.extend(parsed.problems);
        for (index, mut sub) in parsed.subscribers {
            match (self.seen)(&sub.key(), sub.line) {
                Some(first) => self.problems.push(Diagnostic::at(
                    self.path,
                    sub.line,
                    format!(
                        "duplicate subscriber {}: already on line {first}",
                        sub.email
                    ),
                )),
                None => {
                    sub.place = (block, index);
                    (self.sink)(sub);
                }
            }
        }
    }
}

/// One block, parsed and validated on its own: its valid entries (with their index in
/// the block) and its problems.
pub(super) struct Parsed {
    pub(super) subscribers: Vec<(usize, Subscriber)>,
    pub(super) problems: Vec<Diagnostic>,
}

/// Parse and validate `text`, whose first line is line `first_line` of the file: the
/// quick reading when the block is plain and right, else the full one.
fn parse_block(path: &Path, known: &Known<'_>, text: &str, first_line: usize) -> Parsed {
    match super::quick::entries(known, text, first_line) {
        Some(subscribers) => Parsed {
            subscribers: subscribers.into_iter().enumerate().collect(),
            problems: Vec::new(),
        },
        None => parse_full(path, known, text, first_line),
    }
}

/// [`parse_block`] through `toml_edit`, every problem found and placed.
pub(super) fn parse_full(path: &Path, known: &Known<'_>, text: &str, first_line: usize) -> Parsed {
    let mut out = Parsed {
        subscribers: Vec::new(),
        problems: Vec::new(),
    };
    let at = |offset: usize, message: String| {
        shift(
            Diagnostic::at_offset(path, text, offset, message),
            first_line,
        )
    };
    let doc = match ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            let problem = at(offset, e.message().trim().replace('\n', " "));
            out.problems.push(crate::toml_input::with_hint(problem));
            return out;
        }
    };
    for (key, item) in doc.iter() {
        if key != "subscriber" {
            let offset = doc
                .key(key)
                .and_then(toml_edit::Key::span)
                .map_or(0, |s| s.start);
            out.problems.push(at(
                offset,
                format!("unknown key `{key}`: expected [[subscriber]] tables"),
            ));
        } else if !item.is_array_of_tables() {
            out.problems.push(at(
                0,
                "`subscriber` must be an array of tables: write [[subscriber]]".into(),
            ));
        }
    }
    let tables = doc.get("subscriber").and_then(Item::as_array_of_tables);
    for (index, table) in tables.into_iter().flat_map(ArrayOfTables::iter).enumerate() {
        let entry = Entry {
            path,
            block: text,
            first_line,
            table,
        };
        match entry.validate(known) {
            Ok(sub) => out.subscribers.push((index, sub)),
            Err(mut found) => out.problems.append(&mut found),
        }
    }
    out
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
