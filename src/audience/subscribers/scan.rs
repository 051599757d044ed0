//! The subscribers file searched window by window, for [`super::patch`]: a window of about
//! [`WINDOW`] bytes ends where an entry begins (with the comment lines above it), so each
//! entry lies whole in one window, and memory stays that of a window whatever the list's
//! size. Every local part asked for is found in one pass (Aho-Corasick), then only the
//! entries around the hits are parsed.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::ops::Range;
use std::path::Path;

use aho_corasick::AhoCorasick;

use super::parse::{is_subscriber_header, parse};
use super::{Known, Subscriber};

/// Bytes read at a time (a window grows past it only for one entry longer than that).
const WINDOW: usize = 1 << 20;

/// Edits of one window: sorted, non-overlapping byte ranges of it and their new text.
pub(super) type Edits = Vec<(Range<usize>, String)>;

/// Called with each window's bytes and the entries of the keys in it (byte range in the
/// window, parsed entry); returns the window's edits.
pub(super) type Visit<'a> = dyn FnMut(&[u8], Vec<(Range<usize>, Subscriber)>) -> Edits + 'a;

/// What a pass over the file found out about it.
pub(super) struct Outcome {
    /// Cut into plain `[[subscriber]]` entries (no multi-line strings, no other tables).
    plain: bool,
    /// A `\` somewhere: a string could spell a local part with an escape.
    escapes: bool,
    /// The keys found.
    found: HashSet<String>,
}

impl Outcome {
    /// Can the search's answer be trusted? Not for a file that is not cut into plain
    /// entries; and a miss only when no escape could hide the address.
    pub(super) fn answers(&self, keys: usize) -> bool {
        self.plain && (self.found.len() == keys || !self.escapes)
    }
}

/// Read `path` window by window; `visit` gets each window's bytes and the entries of `keys`
/// in it (byte range in the window, parsed entry) and returns the window's edits; with
/// `out`, the file is written there with those edits made.
pub(super) fn scan(
    path: &Path,
    known: &Known<'_>,
    keys: &[String],
    mut out: Option<&mut dyn Write>,
    visit: &mut Visit<'_>,
) -> std::io::Result<Outcome> {
    let locals: HashSet<&str> = keys.iter().map(|k| local_part(k)).collect();
    let finder = AhoCorasick::new(&locals).map_err(std::io::Error::other)?;
    let wanted: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let mut outcome = Outcome {
        plain: true,
        escapes: false,
        found: HashSet::new(),
    };
    let mut file = std::fs::File::open(path)?;
    let mut buf: Vec<u8> = Vec::with_capacity(2 * WINDOW);
    let mut eof = false;
    loop {
        let goal = buf.len().max(WINDOW) + if buf.len() >= WINDOW { WINDOW } else { 0 };
        while buf.len() < goal && !eof {
            let start = buf.len();
            buf.resize(goal, 0);
            let n = file.read(&mut buf[start..])?;
            buf.truncate(start + n);
            eof = n == 0;
        }
        let cut = if eof {
            buf.len()
        } else {
            last_entry_start(&buf)
        };
        if cut == 0 && !eof {
            continue; // One entry longer than the window: read more.
        }
        let window = &buf[..cut];
        let entries = window_entries(path, known, window, &finder, &wanted, &mut outcome);
        let edits = visit(window, entries);
        if let Some(out) = out.as_deref_mut() {
            write_edited(out, window, &edits)?;
        }
        buf.drain(..cut);
        if eof && buf.is_empty() {
            return Ok(outcome);
        }
    }
}

/// The entries of the wanted keys in one window, its plainness and escapes noted.
fn window_entries(
    path: &Path,
    known: &Known<'_>,
    window: &[u8],
    finder: &AhoCorasick,
    wanted: &HashSet<&str>,
    outcome: &mut Outcome,
) -> Vec<(Range<usize>, Subscriber)> {
    let find = memchr::memmem::find;
    if find(window, b"\"\"\"").is_some() || find(window, b"'''").is_some() {
        outcome.plain = false;
    }
    outcome.plain &= line_starts(window).all(|start| {
        let line = trim_start(&window[start..]);
        !line.starts_with(b"[") || is_entry_header(line)
    });
    outcome.escapes |= memchr::memchr(b'\\', window).is_some();
    let mut seen = HashSet::new();
    let mut entries = Vec::new();
    for hit in finder.find_overlapping_iter(window) {
        let range = entry_around(window, hit.start());
        if !seen.insert(range.start) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(&window[range.clone()]) else {
            continue;
        };
        // An entry that does not parse is nobody: a reader can leave while another entry
        // has a mistake in it.
        for s in parse(path, text, known).unwrap_or_default() {
            let key = s.key();
            if wanted.contains(key.as_str()) {
                outcome.found.insert(key);
                entries.push((range.clone(), s));
            }
        }
    }
    entries
}

/// Write `window` with `edits` made.
fn write_edited(out: &mut dyn Write, window: &[u8], edits: &Edits) -> std::io::Result<()> {
    let mut at = 0;
    for (range, text) in edits {
        out.write_all(&window[at..range.start])?;
        out.write_all(text.as_bytes())?;
        at = range.end;
    }
    out.write_all(&window[at..])
}

fn local_part(key: &str) -> &str {
    key.rsplit_once('@').map_or(key, |(l, _)| l)
}

/// Where the last entry of `bytes` begins (its header, or the comment lines right above
/// it); 0 when the only header is at the start.
fn last_entry_start(bytes: &[u8]) -> usize {
    for newline in memchr::memrchr_iter(b'\n', bytes) {
        let start = newline + 1;
        if trim_start(&bytes[start..]).starts_with(b"[") {
            return comments_above(bytes, start);
        }
    }
    0
}

/// Where the comment lines right above the line at `start` begin (`start` if none): a
/// blank line ends them, and what is above it is not about that entry.
pub(super) fn comments_above(bytes: &[u8], start: usize) -> usize {
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

/// The entry holding byte `at`: from its header line to the next header, less the comment
/// lines right above that header (they belong to the next entry).
fn entry_around(bytes: &[u8], at: usize) -> Range<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_end_where_an_entry_begins_with_its_comments() {
        let text = b"[[subscriber]]\nemail = \"a@x.org\"\n\n# about b\n[[subscriber]]\nemail = \"b@x.org\"\n";
        let cut = last_entry_start(text);
        assert!(text[cut..].starts_with(b"# about b\n[[subscriber]]"));
        assert_eq!(
            last_entry_start(b"[[subscriber]]\nemail = \"a@x.org\"\n"),
            0
        );
    }

    #[test]
    fn a_long_list_is_searched_across_windows_and_copied_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        let mut text = String::new();
        for i in 0..60_000 {
            text.push_str(&format!(
                "# n{i}\n[[subscriber]]\nemail = \"r{i}@x.org\"\n\n"
            ));
        }
        assert!(text.len() > 2 * WINDOW);
        std::fs::write(&path, &text).unwrap();
        let languages = |_: &str| true;
        let known = Known {
            categories: &[],
            languages: &languages,
        };
        let keys: Vec<String> = [7, 25_000, 59_999, 70_000]
            .iter()
            .map(|i| format!("r{i}@x.org"))
            .collect();
        let mut copy = Vec::new();
        let mut hits = Vec::new();
        let outcome = scan(
            &path,
            &known,
            &keys,
            Some(&mut copy),
            &mut |window, entries| {
                for (range, s) in entries {
                    assert!(std::str::from_utf8(&window[range])
                        .unwrap()
                        .contains(&s.key()));
                    hits.push(s.key());
                }
                Vec::new()
            },
        )
        .unwrap();
        assert_eq!(copy, text.as_bytes());
        hits.sort();
        assert_eq!(hits, ["r25000@x.org", "r59999@x.org", "r7@x.org"]);
        assert!(outcome.answers(keys.len()), "a true miss in a plain file");
    }
}
