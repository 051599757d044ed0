//! The subscriber list: a TOML file of `[[subscriber]]` tables that people edit by hand.
//!
//! [`parse`] validates the whole file and reports every problem with its line;
//! [`Editor`] changes entries through `toml_edit`, so comments, order and formatting of
//! untouched entries stay byte-for-byte, and saves atomically with a `.bak` of the old file.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use lettre::Address;
use serde::Serialize;
use toml_edit::{ArrayOfTables, DocumentMut, ImDocument, Item, Table};

use crate::error::{Diagnostic, Error, Result};
use crate::fsutil::write_atomic;
use crate::mail::Format;

/// The keys a `[[subscriber]]` table may have.
pub const FIELDS: &[&str] = &[
    "email",
    "name",
    "categories",
    "format",
    "language",
    "status",
    "since",
];

/// Whether a subscriber receives the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    /// Kept in the file so that an import never re-subscribes them.
    Unsubscribed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Unsubscribed => "unsubscribed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "active" => Some(Status::Active),
            "unsubscribed" => Some(Status::Unsubscribed),
            _ => None,
        }
    }
}

/// One validated subscriber.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subscriber {
    pub email: Address,
    pub name: Option<String>,
    /// `None`: every category.
    pub categories: Option<Vec<String>>,
    pub format: Format,
    pub language: Option<String>,
    pub status: Status,
    pub since: Option<NaiveDate>,
    /// Line of the `[[subscriber]]` header in the file.
    pub line: usize,
    /// (block, table within the block) in the file, for edits.
    #[serde(skip)]
    place: (usize, usize),
}

impl Subscriber {
    pub fn is_active(&self) -> bool {
        self.status == Status::Active
    }

    /// The identity used for duplicates, the ledger and tokens.
    pub fn key(&self) -> String {
        address_key(&self.email)
    }
}

/// Two addresses are the same subscriber when their keys are equal: the local part as
/// written (mail systems may treat case there as significant), the domain lowercased and
/// in its ASCII (punycode) form, so `ünïcode.example` equals `xn--ncode-cta3g.example`.
pub fn address_key(address: &Address) -> String {
    let domain = address.domain();
    let ascii = idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_lowercase());
    format!("{}@{}", address.user(), ascii.to_lowercase())
}

/// What validation needs to know about the newsletter.
pub struct Known<'a> {
    /// Categories subscribers may choose.
    pub categories: &'a [String],
    /// Languages that have wording.
    pub languages: &'a dyn Fn(&str) -> bool,
}

/// Validate `source`; `path` labels diagnostics. Entries come back in file order.
///
/// The file is validated entry by entry (each `[[subscriber]]` block parsed on its own), so
/// a list of 100,000 subscribers never exists as one big TOML document in memory. Files
/// with multi-line strings, whose blocks cannot be split safely by lines, are parsed whole.
pub fn parse(
    path: &Path,
    source: &str,
    known: &Known<'_>,
) -> Result<Vec<Subscriber>, Vec<Diagnostic>> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut subscribers = Vec::new();
    let mut v = Validation {
        path,
        known,
        seen: &mut |key: &str, line| match seen.get(key) {
            Some(first) => Some(*first),
            None => {
                seen.insert(key.to_string(), line);
                None
            }
        },
        sink: &mut |sub| subscribers.push(sub),
        problems: Vec::new(),
    };
    let mut first_line = 1;
    for (i, (_, block)) in blocks(source).into_iter().enumerate() {
        v.document(block, first_line, i);
        first_line += block.matches('\n').count();
    }
    let mut problems = v.problems;
    problems.sort_by_key(|d| (d.line, d.column));
    if problems.is_empty() {
        Ok(subscribers)
    } else {
        Err(problems)
    }
}

/// Validate the file at `path` entry by entry without holding it in memory: each valid
/// subscriber goes to `sink` as soon as it is read, and `seen(key, line)` answers with the
/// line of an earlier entry with the same address (and remembers this one), so the caller
/// chooses where that memory lives (a `send` keeps it in SQLite). Every problem is returned
/// at the end; a caller that must not act on a bad list undoes what `sink` did.
pub fn stream(
    path: &Path,
    known: &Known<'_>,
    seen: &mut dyn FnMut(&str, usize) -> Option<usize>,
    sink: &mut dyn FnMut(Subscriber),
) -> Result<Vec<Diagnostic>> {
    use std::io::BufRead;
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
    let (mut block, mut comments) = (String::new(), String::new());
    let (mut block_line, mut line_no, mut index) = (1, 0, 0);
    let mut line = String::new();
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| Error::io("read subscribers", path, e))?;
        if read == 0 {
            break;
        }
        line_no += 1;
        let t = line.trim_start();
        if t.starts_with('[') {
            // A header starts a new block, with the comment lines right above it.
            v.document(&block, block_line, index);
            index += 1;
            block_line = line_no - comments.matches('\n').count();
            block = std::mem::take(&mut comments);
            block.push_str(&line);
        } else if t.starts_with('#') {
            comments.push_str(&line);
        } else {
            block.push_str(&comments);
            comments.clear();
            block.push_str(&line);
        }
    }
    block.push_str(&comments);
    v.document(&block, block_line, index);
    Ok(sorted(v.problems))
}

fn sorted(mut problems: Vec<Diagnostic>) -> Vec<Diagnostic> {
    problems.sort_by_key(|d| (d.line, d.column));
    problems
}

/// Can the file be cut into blocks line by line? (No multi-line strings, no other tables.)
fn streamable(reader: impl std::io::BufRead) -> bool {
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

/// Split the file at its `[[subscriber]]` header lines: (byte offset, block). `None` when
/// that is not safe (multi-line strings, other tables).
fn split_entries(source: &str) -> Option<Vec<(usize, &str)>> {
    if source.contains("\"\"\"") || source.contains("'''") {
        return None;
    }
    let mut starts = vec![0];
    let mut offset = 0;
    // Comment lines right above a header (no blank line between) belong to that entry.
    let mut comments_from: Option<usize> = None;
    for line in source.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with('[') {
            if !is_subscriber_header(t) {
                return None;
            }
            let start = comments_from.unwrap_or(offset);
            if start > 0 {
                starts.push(start);
            }
        }
        comments_from = match t.starts_with('#') {
            true => comments_from.or(Some(offset)),
            false => None,
        };
        offset += line.len();
    }
    starts.push(source.len());
    Some(
        starts
            .windows(2)
            .map(|w| (w[0], &source[w[0]..w[1]]))
            .collect(),
    )
}

/// The file as blocks to parse and edit one by one: one per entry when it can be split
/// safely, else the whole file as one block.
fn blocks(source: &str) -> Vec<(usize, &str)> {
    split_entries(source).unwrap_or_else(|| vec![(0, source)])
}

fn is_subscriber_header(line: &str) -> bool {
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
                self.problems
                    .push(at(offset, e.message().trim().replace('\n', " ")));
                return;
            }
        };
        for (key, item) in doc.iter() {
            if key != "subscriber" {
                let offset = doc.key(key).and_then(|k| k.span()).map_or(0, |s| s.start);
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

/// A diagnostic located in a block, moved to the block's place in the file.
fn shift(mut d: Diagnostic, first_line: usize) -> Diagnostic {
    d.line = d.line.map(|l| l + first_line - 1);
    d
}

/// One `[[subscriber]]` table being validated.
struct Entry<'a> {
    path: &'a Path,
    /// The parsed block; spans are relative to it.
    block: &'a str,
    /// Its first line in the file.
    first_line: usize,
    table: &'a Table,
}

impl Entry<'_> {
    fn span_of(&self, key: &str) -> Range<usize> {
        self.table
            .get(key)
            .and_then(Item::span)
            .or_else(|| self.table.span())
            .unwrap_or(0..0)
    }

    fn line(&self) -> usize {
        let offset = self.table.span().map_or(0, |s| s.start);
        self.first_line
            + self.block[..offset.min(self.block.len())]
                .matches('\n')
                .count()
    }

    fn problem(&self, key: &str, message: String) -> Diagnostic {
        self.at(self.span_of(key).start, message)
    }

    /// A diagnostic at `offset` of the block.
    fn at(&self, offset: usize, message: impl Into<String>) -> Diagnostic {
        shift(
            Diagnostic::at_offset(self.path, self.block, offset, message),
            self.first_line,
        )
    }

    fn string(&self, key: &str, problems: &mut Vec<Diagnostic>) -> Option<String> {
        let item = self.table.get(key)?;
        match item.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                problems.push(self.problem(key, format!("`{key}`: expected a string")));
                None
            }
        }
    }

    fn validate(&self, known: &Known<'_>) -> Result<Subscriber, Vec<Diagnostic>> {
        let mut problems = Vec::new();
        for (key, _) in self.table.iter() {
            if !FIELDS.contains(&key) {
                let offset = self
                    .table
                    .key(key)
                    .and_then(|k| k.span())
                    .map_or(0, |s| s.start);
                problems.push(self.at(
                    offset,
                    format!(
                        "unknown field `{key}`, expected one of {}",
                        quoted_list(FIELDS)
                    ),
                ));
            }
        }
        let email = match self.string("email", &mut problems) {
            None if self.table.get("email").is_none() => {
                problems.push(Diagnostic::at(
                    self.path,
                    self.line(),
                    "missing field `email`",
                ));
                None
            }
            None => None,
            Some(raw) => match raw.trim().parse::<Address>() {
                Ok(address) => Some(address),
                Err(e) => {
                    problems.push(self.problem(
                        "email",
                        format!("`email`: {raw:?} is not a valid address ({e})"),
                    ));
                    None
                }
            },
        };
        let name = self
            .string("name", &mut problems)
            .map(|n| crate::posts::normalize_whitespace(&n));
        let categories = self.categories(known, &mut problems);
        let format = match self.string("format", &mut problems).as_deref() {
            None | Some("html") => Format::Html,
            Some("text") => Format::Text,
            Some(other) => {
                problems.push(self.problem(
                    "format",
                    format!("`format`: expected \"html\" or \"text\", found {other:?}"),
                ));
                Format::Html
            }
        };
        let status = match self.string("status", &mut problems) {
            None => Status::Active,
            Some(s) => Status::parse(&s).unwrap_or_else(|| {
                problems.push(self.problem(
                    "status",
                    format!("`status`: expected \"active\" or \"unsubscribed\", found {s:?}"),
                ));
                Status::Active
            }),
        };
        let language = self.string("language", &mut problems);
        if let Some(l) = &language {
            if !(known.languages)(l) {
                problems.push(self.problem(
                    "language",
                    format!("`language`: no wording for {l:?}; expected \"fr\" or \"en\""),
                ));
            }
        }
        let since = self.since(&mut problems);
        match (problems.is_empty(), email) {
            (true, Some(email)) => Ok(Subscriber {
                email,
                name,
                categories,
                format,
                language,
                status,
                since,
                line: self.line(),
                place: (0, 0),
            }),
            _ => Err(problems),
        }
    }

    fn categories(&self, known: &Known<'_>, problems: &mut Vec<Diagnostic>) -> Option<Vec<String>> {
        let item = self.table.get("categories")?;
        let Some(array) = item.as_array() else {
            problems.push(self.problem(
                "categories",
                "`categories`: expected an array of strings".into(),
            ));
            return None;
        };
        let mut out = Vec::new();
        for value in array.iter() {
            let offset = value
                .span()
                .map_or(self.span_of("categories").start, |s| s.start);
            match value.as_str() {
                Some(c) if known.categories.iter().any(|k| k == c) => out.push(c.to_string()),
                Some(c) => problems.push(self.at(
                    offset,
                    format!(
                        "`categories`: unknown category {c:?}; known categories: {}",
                        quoted_list(known.categories)
                    ),
                )),
                None => problems.push(self.at(offset, "`categories`: expected strings")),
            }
        }
        Some(out)
    }

    fn since(&self, problems: &mut Vec<Diagnostic>) -> Option<NaiveDate> {
        let item = self.table.get("since")?;
        let date = item
            .as_datetime()
            .and_then(|d| d.date)
            .filter(|_| item.as_datetime().is_some_and(|d| d.time.is_none()));
        match date
            .and_then(|d| NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into()))
        {
            Some(date) => Some(date),
            None => {
                problems.push(self.problem(
                    "since",
                    "`since`: expected a date such as 2011-12-01".into(),
                ));
                None
            }
        }
    }
}

fn quoted_list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("`{}`", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Read and validate the subscribers file.
pub fn load(path: &Path, known: &Known<'_>) -> Result<Vec<Subscriber>> {
    let source =
        std::fs::read_to_string(path).map_err(|e| Error::io("read subscribers", path, e))?;
    parse(path, &source, known).map_err(Error::Invalid)
}

/// A change to one subscriber, for [`Editor`].
#[derive(Debug, Clone, Default)]
pub struct NewSubscriber {
    pub email: String,
    pub name: Option<String>,
    pub categories: Vec<String>,
    pub format: Option<Format>,
    pub language: Option<String>,
    pub since: Option<NaiveDate>,
}

/// Edits that keep the file as its author wrote it: only the block of the entry that
/// changes is parsed and re-serialized (with `toml_edit`); every other byte stays.
pub struct Editor {
    path: PathBuf,
    pub subscribers: Vec<Subscriber>,
    blocks: Vec<String>,
    /// Index in `subscribers`, per address key.
    index: HashMap<String, usize>,
}

impl Editor {
    /// Load `path` for editing; a missing file starts an empty list.
    pub fn open(path: &Path, known: &Known<'_>) -> Result<Editor> {
        let source = match std::fs::read_to_string(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io("read subscribers", path, e)),
            Ok(source) => source,
        };
        Editor::from_source(path, &source, known)
    }

    fn from_source(path: &Path, source: &str, known: &Known<'_>) -> Result<Editor> {
        let subscribers = parse(path, source, known).map_err(Error::Invalid)?;
        let blocks = blocks(source)
            .into_iter()
            .map(|(_, b)| b.to_string())
            .collect();
        let index = subscribers
            .iter()
            .enumerate()
            .map(|(i, s)| (s.key(), i))
            .collect();
        Ok(Editor {
            path: path.to_path_buf(),
            subscribers,
            blocks,
            index,
        })
    }

    pub fn find(&self, email: &Address) -> Option<&Subscriber> {
        self.index
            .get(&address_key(email))
            .map(|&i| &self.subscribers[i])
    }

    /// Parse block `b`, let `change` edit it, write it back.
    fn edit_block<T>(&mut self, b: usize, change: impl FnOnce(&mut DocumentMut) -> T) -> T {
        let mut doc = self.blocks[b]
            .parse::<DocumentMut>()
            .expect("validated block parses");
        let result = change(&mut doc);
        self.blocks[b] = doc.to_string();
        result
    }

    /// Append a new entry at the end of the file.
    pub fn add(&mut self, new: &NewSubscriber, email: Address) {
        let mut table = Table::new();
        table.insert("email", toml_edit::value(email.to_string()));
        if let Some(name) = new
            .name
            .as_deref()
            .map(crate::posts::normalize_whitespace)
            .filter(|n| !n.is_empty())
        {
            table.insert("name", toml_edit::value(name));
        }
        if !new.categories.is_empty() {
            table.insert(
                "categories",
                toml_edit::value(new.categories.iter().collect::<toml_edit::Array>()),
            );
        }
        if let Some(Format::Text) = new.format {
            table.insert("format", toml_edit::value("text"));
        }
        if let Some(language) = &new.language {
            table.insert("language", toml_edit::value(language.as_str()));
        }
        if let Some(since) = new.since {
            let date = toml_edit::Date {
                year: since.year() as u16,
                month: since.month() as u8,
                day: since.day() as u8,
            };
            table.insert(
                "since",
                toml_edit::value(toml_edit::Datetime {
                    date: Some(date),
                    time: None,
                    offset: None,
                }),
            );
        }
        let mut tables = ArrayOfTables::new();
        tables.push(table);
        let mut doc = DocumentMut::new();
        doc.insert("subscriber", Item::ArrayOfTables(tables));
        let mut text = doc.to_string();
        match self.blocks.last_mut() {
            Some(last) if !last.is_empty() => {
                if !last.ends_with('\n') {
                    last.push('\n');
                }
                text.insert(0, '\n');
            }
            _ => {}
        }
        self.blocks.push(text);
        let subscriber = Subscriber {
            email: email.clone(),
            name: new.name.clone(),
            categories: (!new.categories.is_empty()).then(|| new.categories.clone()),
            format: new.format.unwrap_or(Format::Html),
            language: new.language.clone(),
            status: Status::Active,
            since: new.since,
            line: 0,
            place: (self.blocks.len() - 1, 0),
        };
        self.index
            .insert(address_key(&email), self.subscribers.len());
        self.subscribers.push(subscriber);
    }

    /// Set `status` of an existing entry; returns false when the address is not listed.
    pub fn set_status(&mut self, email: &Address, status: Status) -> bool {
        let Some(&i) = self.index.get(&address_key(email)) else {
            return false;
        };
        let (b, t) = self.subscribers[i].place;
        self.edit_block(b, |doc| {
            let table = doc["subscriber"]
                .as_array_of_tables_mut()
                .and_then(|a| a.get_mut(t))
                .expect("placed");
            match status {
                Status::Active => {
                    table.remove("status");
                }
                Status::Unsubscribed => {
                    table.insert("status", toml_edit::value("unsubscribed"));
                }
            }
        });
        self.subscribers[i].status = status;
        true
    }

    /// Delete an entry and the comments attached to it; returns false when not listed.
    pub fn remove(&mut self, email: &Address) -> bool {
        let Some(i) = self.index.remove(&address_key(email)) else {
            return false;
        };
        let (b, t) = self.subscribers[i].place;
        self.edit_block(b, |doc| {
            let tables = doc["subscriber"].as_array_of_tables_mut().expect("placed");
            let prefix = tables
                .get(t)
                .and_then(|t| t.decor().prefix())
                .and_then(|p| p.as_str())
                .unwrap_or("");
            let kept = detached_comments(prefix).to_string();
            tables.remove(t);
            if kept.is_empty() {
                return;
            }
            // Comments that stood apart from the removed entry (a file header, a section
            // note) are not the entry's: keep them above whatever follows.
            match tables.get_mut(t) {
                Some(next) => {
                    let next_prefix = next
                        .decor()
                        .prefix()
                        .and_then(|p| p.as_str())
                        .unwrap_or("")
                        .to_string();
                    next.decor_mut()
                        .set_prefix(format!("{kept}{}", next_prefix.trim_start_matches('\n')));
                }
                None => {
                    let trailing = doc.trailing().as_str().unwrap_or("").to_string();
                    doc.set_trailing(format!("{kept}{trailing}"));
                }
            }
            if doc["subscriber"]
                .as_array_of_tables()
                .is_some_and(|a| a.is_empty())
            {
                doc.remove("subscriber");
            }
        });
        self.subscribers.remove(i);
        for s in self
            .subscribers
            .iter_mut()
            .filter(|s| s.place.0 == b && s.place.1 > t)
        {
            s.place.1 -= 1;
        }
        for v in self.index.values_mut() {
            if *v > i {
                *v -= 1;
            }
        }
        true
    }

    /// The file's new text.
    pub fn to_text(&self) -> String {
        self.blocks.concat()
    }

    /// Write atomically, keeping the previous version as `<file>.bak`.
    pub fn save(&self) -> Result<()> {
        if self.path.exists() {
            let bak = backup_path(&self.path);
            let old = std::fs::read(&self.path).map_err(|e| Error::io("read", &self.path, e))?;
            write_atomic(&bak, &old)?;
        }
        write_atomic(&self.path, self.to_text().as_bytes())
    }
}

/// The part of an entry's leading decor that is separated from it by a blank line.
fn detached_comments(prefix: &str) -> &str {
    match prefix.rfind("\n\n") {
        Some(i) => &prefix[..i + 2],
        None => "",
    }
}

pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".bak");
    path.with_file_name(name)
}

/// The newsletter facts that subscriber validation needs.
pub struct Catalog {
    pub categories: Vec<String>,
    templates_dir: std::path::PathBuf,
}

impl Catalog {
    /// Known categories: the configured ones, the default one, and every category a post uses.
    pub fn from_posts(config: &crate::config::Config, posts: &[crate::posts::Post]) -> Catalog {
        let mut categories = config.categories.clone();
        categories.push(config.default_category.clone());
        categories.extend(posts.iter().map(|p| p.category.clone()));
        let mut seen = std::collections::HashSet::new();
        categories.retain(|c| seen.insert(c.clone()));
        Catalog {
            categories,
            templates_dir: config.templates_dir.clone(),
        }
    }

    pub fn with<T>(&self, f: impl FnOnce(&Known<'_>) -> T) -> T {
        let dir = self.templates_dir.clone();
        let languages = move |l: &str| crate::templates::has_language(&dir, l);
        f(&Known {
            categories: &self.categories,
            languages: &languages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            .map(|d| d.to_string())
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
        assert_eq!(found[3], "s.toml:8:1: unknown field `statut`, expected one of `email`, `name`, `categories`, `format`, `language`, `status`, `since`");
        assert_eq!(found[4], "s.toml:10: missing field `email`");
    }

    #[test]
    fn block_by_block_and_whole_file_parsing_agree() {
        let src = "# list\nstray = 1\n\n[[subscriber]]\nemail = \"a@example.org\"\n[[subscriber]] # two\nemail = \"b@example.org\"\nnmae = 1\n";
        let expected = [
            "s.toml:2:1: unknown key `stray`: expected [[subscriber]] tables",
            "s.toml:8:1: unknown field `nmae`, expected one of `email`, `name`, `categories`, `format`, `language`, `status`, `since`",
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
    fn removing_an_entry_takes_its_attached_comment_and_keeps_detached_ones() {
        let src = "# header\n\n[[subscriber]]\nemail = \"a@example.org\"\n\n# about b\n[[subscriber]]\nemail = \"b@example.org\"\n\n# section note\n\n[[subscriber]]\nemail = \"c@example.org\"\n";
        for text in [src.to_string(), src.replace("# header", "# header '''")] {
            let cats = categories();
            let known = Known {
                categories: &cats,
                languages: &|_| true,
            };
            let mut editor = Editor::from_source(Path::new("s.toml"), &text, &known).unwrap();
            assert!(editor.remove(&"b@example.org".parse().unwrap()));
            assert!(editor.remove(&"c@example.org".parse().unwrap()));
            let out = editor.to_text();
            assert!(
                !out.contains("about b")
                    && !out.contains("b@example.org")
                    && !out.contains("c@example.org"),
                "{out}"
            );
            assert!(
                out.starts_with(&text[..text.find("\n\n# about").unwrap()]),
                "{out}"
            );
            assert!(out.contains("# section note"), "{out}");
            let again = Editor::from_source(Path::new("s.toml"), &out, &known).unwrap();
            assert_eq!(again.subscribers.len(), 1);
        }
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
            let mut seen = HashMap::new();
            let mut streamed = Vec::new();
            let problems = stream(
                &path,
                &known,
                &mut |key, line| match seen.get(key) {
                    Some(first) => Some(*first),
                    None => {
                        seen.insert(key.to_string(), line);
                        None
                    }
                },
                &mut |s| streamed.push(s),
            )
            .unwrap();
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

    #[test]
    fn edits_keep_untouched_entries_byte_for_byte() {
        let original = "# My readers\n\n[[subscriber]]   # first\nemail = \"a@example.org\"  # work address\nname  =  \"A\"\n\n\
                        # a friend\n[[subscriber]]\nemail = \"b@example.org\"\n";
        let cats = categories();
        let known = Known {
            categories: &cats,
            languages: &|_| true,
        };
        let mut editor = Editor::from_source(Path::new("s.toml"), original, &known).unwrap();
        editor.add(
            &NewSubscriber {
                email: "c@example.org".into(),
                name: Some("C".into()),
                ..Default::default()
            },
            "c@example.org".parse().unwrap(),
        );
        assert_eq!(
            editor.to_text(),
            format!("{original}\n[[subscriber]]\nemail = \"c@example.org\"\nname = \"C\"\n")
        );
        editor.set_status(&"b@example.org".parse().unwrap(), Status::Unsubscribed);
        assert!(editor.to_text().starts_with("# My readers\n\n[[subscriber]]   # first\nemail = \"a@example.org\"  # work address\nname  =  \"A\"\n"));
        assert!(editor
            .to_text()
            .contains("email = \"b@example.org\"\nstatus = \"unsubscribed\"\n"));
    }
}
