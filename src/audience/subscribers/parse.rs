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
    if !streamable(std::io::BufReader::new(open()?)) {
        // Multi-line strings or other tables: blocks cannot be cut by lines; read it whole.
        let source =
            std::fs::read_to_string(path).map_err(|e| Error::io("read subscribers", path, e))?;
        v.document(&source, 1, 0);
        return Ok(sorted(v.problems));
    }
    let mut reader = std::io::BufReader::new(open()?);
    let mut splitter = Splitter::default();
    let mut line = String::new();
    let mut index = 0;
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| Error::io("read subscribers", path, e))?;
        if read == 0 {
            break;
        }
        if let Some(block) = splitter.push(&line) {
            v.document(&block.text, block.first_line, index);
            index += 1;
        }
    }
    let last = splitter.finish();
    v.document(&last.text, last.first_line, index);
    Ok(sorted(v.problems))
}

fn sorted(mut problems: Vec<Diagnostic>) -> Vec<Diagnostic> {
    problems.sort_by_key(|d| (d.line, d.column));
    problems
}

/// Can the file be cut into blocks line by line? (No multi-line strings, no other tables.)
fn streamable(reader: impl BufRead) -> bool {
    for line in reader.split(b'\n') {
        let Ok(line) = line else { return true };
        let Ok(line) = std::str::from_utf8(&line) else {
            return true;
        };
        let t = line.trim_start();
        if line.contains("\"\"\"")
            || line.contains("\'\'\'")
            || (t.starts_with('[') && !is_subscriber_header(t))
        {
            return false;
        }
    }
    true
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
        let path = self.path;
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
                self.problems.push(crate::toml_input::with_hint(problem));
                return;
            }
        };
        for (key, item) in doc.iter() {
            if key != "subscriber" {
                let offset = doc
                    .key(key)
                    .and_then(toml_edit::Key::span)
                    .map_or(0, |s| s.start);
                self.problems.push(at(
                    offset,
                    format!("unknown key `{key}`: expected [[subscriber]] tables"),
                ));
            } else if !item.is_array_of_tables() {
                self.problems.push(at(
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
            match entry.validate(self.known) {
                Ok(mut sub) => match (self.seen)(&sub.key(), sub.line) {
                    Some(first) => self.problems.push(Diagnostic::at(
                        path,
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
                },
                Err(mut found) => self.problems.append(&mut found),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::subscribers::{Format, Status};
    use chrono::NaiveDate;

    fn categories() -> Vec<String> {
        vec!["Marketing".into(), "Relation client".into()]
    }

    fn parse_str(src: &str) -> Result<Vec<Subscriber>, Vec<Diagnostic>> {
        let cats = categories();
        let known = Known {
            categories: &cats,
            languages: &|l| l == "fr" || l == "en",
        };
        parse(Path::new("s.toml"), src, &known)
    }

    fn messages(src: &str) -> Vec<String> {
        parse_str(src)
            .err()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn can_parse_every_field() {
        let list = parse_str(
            "[[subscriber]]\nemail = \"a@example.org\"\nname = \"A\"\ncategories = [\"Marketing\"]\n\
             format = \"text\"\nlanguage = \"en\"\nstatus = \"unsubscribed\"\nsince = 2011-12-01\n",
        )
        .unwrap();
        let s = &list[0];
        assert_eq!(s.format, Format::Text);
        assert_eq!(s.status, Status::Unsubscribed);
        assert_eq!(s.since, NaiveDate::from_ymd_opt(2011, 12, 1));
        assert_eq!(s.line, 1);
    }

    #[test]
    fn reports_every_problem_with_its_line() {
        let found = messages(
            "[[subscriber]]\nemail = \"not an address\"\n\n[[subscriber]]\nemail = \"b@example.org\"\nformat = \"pdf\"\n\
             categories = [\"Sport\"]\nstatut = \"active\"\n\n[[subscriber]]\nname = \"no email\"\n",
        );
        assert_eq!(found.len(), 5, "{found:#?}");
        assert!(
            found[0].starts_with("s.toml:2:9: `email`: \"not an address\" is not a valid address")
        );
        assert_eq!(
            found[1],
            "s.toml:6:10: `format`: expected \"html\" or \"text\", found \"pdf\""
        );
        assert_eq!(found[2], "s.toml:7:15: `categories`: unknown category \"Sport\"; known categories: `Marketing`, `Relation client`");
        assert_eq!(found[3], "s.toml:8:1: unknown field `statut`, expected one of `email`, `name`, `categories`, `format`, `language`, `status`, `since`, `paused_until`");
        assert_eq!(found[4], "s.toml:10: missing field `email`");
    }

    #[test]
    fn block_by_block_and_whole_file_parsing_agree() {
        let src = "# list\nstray = 1\n\n[[subscriber]]\nemail = \"a@example.org\"\n[[subscriber]] # two\nemail = \"b@example.org\"\nnmae = 1\n";
        let expected = [
            "s.toml:2:1: unknown key `stray`: expected [[subscriber]] tables",
            "s.toml:8:1: unknown field `nmae`, expected one of `email`, `name`, `categories`, `format`, `language`, `status`, `since`, `paused_until`",
        ];
        assert_eq!(messages(src), expected);
        // A multi-line string anywhere forces the whole-file path: same diagnostics.
        let whole = src.replace("# list", "# list '''");
        assert_eq!(messages(&whole), expected);
        let ok = parse_str(
            "[[subscriber]]\nemail = \"a@example.org\"\nname = \"\"\"Multi\nline\"\"\"\n",
        )
        .unwrap();
        assert_eq!(ok[0].name.as_deref(), Some("Multi line"));
    }

    #[test]
    fn streaming_and_whole_file_validation_agree() {
        let files = [
            "# list\n\n[[subscriber]]\nemail = \"a@example.org\"\n\n# about b\n[[subscriber]] # two\nemail = \"b@example.org\"\nnmae = 1\n[[subscriber]]\nemail = \"A@Example.org\"\nemail2 = 1\n[[subscriber]]\nemail = \"a@EXAMPLE.org\"\n",
            "[[subscriber]]\nemail = \"a@example.org\"\nname = '''x\n[[subscriber]]'''\n[[subscriber]]\nemail = \"bad\"\n",
            "stray = 1\n[[subscriber]]\nemail = \"ok@example.org\"\ncategories = [\"Sport\"]\n",
        ];
        let cats = categories();
        let known = Known {
            categories: &cats,
            languages: &|_| true,
        };
        for text in files {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.toml");
            std::fs::write(&path, text).unwrap();
            let whole = parse(&path, text, &known);
            let mut streamed = Vec::new();
            let problems = stream_in_memory(&path, &known, &mut |s| streamed.push(s)).unwrap();
            match whole {
                Ok(subs) => {
                    assert!(problems.is_empty(), "{problems:?}");
                    assert_eq!(
                        subs.iter().map(|s| (s.key(), s.line)).collect::<Vec<_>>(),
                        streamed
                            .iter()
                            .map(|s| (s.key(), s.line))
                            .collect::<Vec<_>>()
                    );
                }
                Err(expected) => assert_eq!(problems, expected, "{text}"),
            }
        }
    }

    #[test]
    fn duplicates_compare_domains_case_insensitively_and_as_punycode() {
        let found = messages(
            "[[subscriber]]\nemail = \"Jo@ÜNÏCODE.example\"\n[[subscriber]]\nemail = \"Jo@xn--ncode-cta3g.example\"\n\
             [[subscriber]]\nemail = \"jo@xn--ncode-cta3g.example\"\n",
        );
        assert_eq!(
            found,
            ["s.toml:3: duplicate subscriber Jo@xn--ncode-cta3g.example: already on line 1"]
        );
    }
}
