//! The subscriber list: a TOML file of `[[subscriber]]` tables that people edit by hand.
//!
//! [`parse`] validates the whole file and reports every problem with its line;
//! [`Editor`] changes entries through `toml_edit`, so comments, order and formatting of
//! untouched entries stay byte-for-byte, and saves atomically with a `.bak` of the old file.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
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

/// Parsed list: the document (for edits) and the entries, in file order.
pub struct List {
    pub subscribers: Vec<Subscriber>,
    doc: ImDocument<String>,
}

/// Validate `source`; `path` labels diagnostics.
pub fn parse(path: &Path, source: &str, known: &Known<'_>) -> Result<List, Vec<Diagnostic>> {
    let doc = ImDocument::parse(source.to_string()).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        vec![Diagnostic::at_offset(
            path,
            source,
            offset,
            e.message().trim().replace('\n', " "),
        )]
    })?;
    let mut problems = Vec::new();
    let mut subscribers = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (key, item) in doc.iter() {
        if key != "subscriber" {
            let offset = doc.key(key).and_then(|k| k.span()).map_or(0, |s| s.start);
            problems.push(Diagnostic::at_offset(
                path,
                source,
                offset,
                format!("unknown key `{key}`: expected [[subscriber]] tables"),
            ));
        } else if !item.is_array_of_tables() {
            problems.push(Diagnostic::new(
                path,
                "`subscriber` must be an array of tables: write [[subscriber]]",
            ));
        }
    }
    let lines = crate::error::LineIndex::new(source);
    let tables = doc.get("subscriber").and_then(Item::as_array_of_tables);
    for table in tables.into_iter().flat_map(ArrayOfTables::iter) {
        let entry = Entry {
            path,
            source,
            table,
            lines: &lines,
        };
        match entry.validate(known) {
            Ok(sub) => {
                let key = sub.key();
                match seen.get(&key) {
                    Some(first) => problems.push(Diagnostic::at(
                        path,
                        sub.line,
                        format!(
                            "duplicate subscriber {}: already on line {first}",
                            sub.email
                        ),
                    )),
                    None => {
                        seen.insert(key, sub.line);
                        subscribers.push(sub);
                    }
                }
            }
            Err(mut found) => problems.append(&mut found),
        }
    }
    problems.sort_by_key(|d| (d.line, d.column));
    if problems.is_empty() {
        Ok(List { subscribers, doc })
    } else {
        Err(problems)
    }
}

/// One `[[subscriber]]` table being validated.
struct Entry<'a> {
    path: &'a Path,
    source: &'a str,
    table: &'a Table,
    lines: &'a crate::error::LineIndex,
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
        self.lines.line(self.table.span().map_or(0, |s| s.start))
    }

    fn problem(&self, key: &str, message: String) -> Diagnostic {
        Diagnostic::at_offset(self.path, self.source, self.span_of(key).start, message)
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
                problems.push(Diagnostic::at_offset(
                    self.path,
                    self.source,
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
                Some(c) => problems.push(Diagnostic::at_offset(
                    self.path,
                    self.source,
                    offset,
                    format!(
                        "`categories`: unknown category {c:?}; known categories: {}",
                        quoted_list(known.categories)
                    ),
                )),
                None => problems.push(Diagnostic::at_offset(
                    self.path,
                    self.source,
                    offset,
                    "`categories`: expected strings",
                )),
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
pub fn load(path: &Path, known: &Known<'_>) -> Result<List> {
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

/// Edits that keep the file as its author wrote it.
pub struct Editor {
    path: PathBuf,
    pub subscribers: Vec<Subscriber>,
    doc: DocumentMut,
    /// Index in the array of tables, per address key.
    index: HashMap<String, usize>,
}

impl Editor {
    /// Load `path` for editing; a missing file starts an empty list.
    pub fn open(path: &Path, known: &Known<'_>) -> Result<Editor> {
        let list = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                parse(path, "", known).map_err(Error::Invalid)?
            }
            _ => load(path, known)?,
        };
        let index = list
            .subscribers
            .iter()
            .enumerate()
            .map(|(i, s)| (s.key(), i))
            .collect();
        Ok(Editor {
            path: path.to_path_buf(),
            subscribers: list.subscribers,
            doc: list.doc.into_mut(),
            index,
        })
    }

    pub fn find(&self, email: &Address) -> Option<&Subscriber> {
        self.index
            .get(&address_key(email))
            .map(|&i| &self.subscribers[i])
    }

    fn tables(&mut self) -> &mut ArrayOfTables {
        if self.doc.get("subscriber").is_none() {
            self.doc
                .insert("subscriber", Item::ArrayOfTables(ArrayOfTables::new()));
        }
        self.doc["subscriber"]
            .as_array_of_tables_mut()
            .expect("validated as [[subscriber]]")
    }

    /// Append a new entry at the end of the file.
    pub fn add(&mut self, new: &NewSubscriber, email: Address) {
        let mut table = Table::new();
        table.decor_mut().set_prefix("\n");
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
                year: since.format("%Y").to_string().parse().unwrap_or(1970),
                month: since.format("%m").to_string().parse().unwrap_or(1),
                day: since.format("%d").to_string().parse().unwrap_or(1),
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
        self.tables().push(table);
        let subscriber = Subscriber {
            email: email.clone(),
            name: new.name.clone(),
            categories: (!new.categories.is_empty()).then(|| new.categories.clone()),
            format: new.format.unwrap_or(Format::Html),
            language: new.language.clone(),
            status: Status::Active,
            since: new.since,
            line: 0,
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
        let table = self.tables().get_mut(i).expect("index in range");
        match status {
            Status::Active => {
                table.remove("status");
            }
            Status::Unsubscribed => {
                table.insert("status", toml_edit::value("unsubscribed"));
            }
        }
        self.subscribers[i].status = status;
        true
    }

    /// Delete an entry; returns false when the address is not listed.
    pub fn remove(&mut self, email: &Address) -> bool {
        let Some(i) = self.index.remove(&address_key(email)) else {
            return false;
        };
        let tables = self.tables();
        let prefix = tables
            .get(i)
            .and_then(|t| t.decor().prefix())
            .and_then(|p| p.as_str())
            .unwrap_or("");
        let kept = detached_comments(prefix).to_string();
        tables.remove(i);
        if !kept.is_empty() {
            // Comments that stood apart from the removed entry (a file header, a section note)
            // are not the entry's: keep them above whatever follows.
            match tables.get_mut(i) {
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
                    let trailing = self.doc.trailing().as_str().unwrap_or("").to_string();
                    self.doc.set_trailing(format!("{kept}{trailing}"));
                }
            }
        }
        self.subscribers.remove(i);
        for v in self.index.values_mut() {
            if *v > i {
                *v -= 1;
            }
        }
        true
    }

    /// The file's new text.
    pub fn to_text(&self) -> String {
        self.doc.to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn categories() -> Vec<String> {
        vec!["Marketing".into(), "Relation client".into()]
    }

    fn parse_str(src: &str) -> Result<List, Vec<Diagnostic>> {
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
        let s = &list.subscribers[0];
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
        let list = parse(Path::new("s.toml"), original, &known).unwrap();
        let mut editor = Editor {
            path: "s.toml".into(),
            index: list
                .subscribers
                .iter()
                .enumerate()
                .map(|(i, s)| (s.key(), i))
                .collect(),
            subscribers: list.subscribers,
            doc: list.doc.into_mut(),
        };
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
