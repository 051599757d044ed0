//! Editing the subscribers file as its author wrote it: only the block of the entry that
//! changes is parsed and re-serialized (with `toml_edit`); every other byte stays. Saves
//! are atomic and keep the previous version as `<file>.bak`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use lettre::Address;
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table};

use super::parse::{blocks, parse};
use super::{address_key, Format, Known, Status, Subscriber};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

/// A change to one subscriber, for [`Editor`].
#[derive(Debug, Clone, Default)]
pub(crate) struct NewSubscriber {
    pub name: Option<String>,
    pub categories: Vec<String>,
    pub format: Option<Format>,
    pub language: Option<String>,
    pub since: Option<NaiveDate>,
}

/// Edits that keep the file as its author wrote it: only the block of the entry that
/// changes is parsed and re-serialized (with `toml_edit`); every other byte stays.
pub(crate) struct Editor {
    path: PathBuf,
    pub subscribers: Vec<Subscriber>,
    blocks: Vec<String>,
    /// Index in `subscribers`, per address key.
    index: HashMap<String, usize>,
}

impl Editor {
    /// Load `path` for editing; a missing file starts an empty list.
    pub(crate) fn open(path: &Path, known: &Known<'_>) -> Result<Editor> {
        crate::fsutil::ensure_regular(path, "the subscriber list")?;
        let source = match std::fs::read_to_string(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io("read subscribers", path, e)),
            Ok(source) => source,
        };
        Editor::from_source(path, &source, known)
    }

    fn from_source(path: &Path, source: &str, known: &Known<'_>) -> Result<Editor> {
        let subscribers = parse(path, source, known).map_err(Error::Invalid)?;
        let blocks = blocks(source).into_iter().map(|b| b.text).collect();
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

    /// The list file this editor saves to.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn find(&self, email: &Address) -> Option<&Subscriber> {
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
    pub(crate) fn add(&mut self, new: &NewSubscriber, email: Address) {
        let mut text = entry_text(new, &email);
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
            paused_until: None,
            line: 0,
            place: (self.blocks.len() - 1, 0),
        };
        self.index
            .insert(address_key(&email), self.subscribers.len());
        self.subscribers.push(subscriber);
    }

    /// [`Editor::add`], with `note` (comment lines, each starting with `#`) just above the
    /// new entry: why it is there, for the person who reads the file.
    pub(crate) fn add_noted(&mut self, new: &NewSubscriber, email: Address, note: &str) {
        self.add(new, email);
        if let Some(last) = self.blocks.last_mut() {
            let at = last.find("[[subscriber]]").unwrap_or(0);
            last.insert_str(at, &format!("{note}\n"));
        }
    }

    /// Set `status` of an existing entry; returns false when the address is not listed.
    pub(crate) fn set_status(&mut self, email: &Address, status: Status) -> bool {
        let edited = self.edit_entry(&address_key(email), |table| write_status(table, status));
        if let Some(i) = edited {
            self.subscribers[i].status = status;
        }
        edited.is_some()
    }

    /// Let `change` edit the table of the entry with address key `key` (its block is
    /// parsed and written back); the entry's index, or `None` when it is not listed.
    fn edit_entry(&mut self, key: &str, change: impl FnOnce(&mut Table)) -> Option<usize> {
        let &i = self.index.get(key)?;
        let (b, t) = self.subscribers[i].place;
        self.edit_block(b, |doc| {
            let table = doc["subscriber"]
                .as_array_of_tables_mut()
                .and_then(|a| a.get_mut(t))
                .expect("placed");
            change(table);
        });
        Some(i)
    }

    /// Write a reader's `choices` into their entry (comments kept); false when the address
    /// key is not listed.
    pub(crate) fn set_choices(&mut self, key: &str, choices: &Choices) -> bool {
        let edited = self.edit_entry(key, |table| write_choices(table, choices));
        let Some(i) = edited else {
            return false;
        };
        let s = &mut self.subscribers[i];
        s.name.clone_from(&choices.name);
        s.categories = (!choices.categories.is_empty()).then(|| choices.categories.clone());
        s.format = choices.format;
        s.language.clone_from(&choices.language);
        s.paused_until = choices.paused_until;
        true
    }

    /// Delete an entry and the comments attached to it; returns false when not listed.
    pub(crate) fn remove(&mut self, email: &Address) -> bool {
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
                .is_some_and(ArrayOfTables::is_empty)
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
    pub(crate) fn to_text(&self) -> String {
        self.blocks.concat()
    }

    /// Write atomically, keeping the previous version as `<file>.bak`.
    pub(crate) fn save(&self) -> Result<()> {
        if self.path.exists() {
            let bak = backup_path(&self.path);
            let old = std::fs::read(&self.path).map_err(|e| Error::io("read", &self.path, e))?;
            write_atomic(&bak, &old)?;
        }
        write_atomic(&self.path, self.to_text().as_bytes())
    }
}

/// Set an entry's `status` key (an active reader has none).
/// Write a reader's `choices` into their table: each field set, or removed for its default.
pub(super) fn write_choices(table: &mut Table, choices: &Choices) {
    let mut put = |key: &str, value: Option<Item>| match value {
        Some(value) => {
            table.insert(key, value);
        }
        None => {
            table.remove(key);
        }
    };
    put("name", choices.name.as_deref().map(toml_edit::value));
    put(
        "categories",
        (!choices.categories.is_empty())
            .then(|| toml_edit::value(choices.categories.iter().collect::<toml_edit::Array>())),
    );
    put(
        "format",
        (choices.format == Format::Text).then(|| toml_edit::value("text")),
    );
    put(
        "language",
        choices.language.as_deref().map(toml_edit::value),
    );
    put("paused_until", choices.paused_until.map(date_value));
}

pub(super) fn write_status(table: &mut Table, status: Status) {
    match status {
        Status::Active => {
            table.remove("status");
        }
        Status::Unsubscribed | Status::Bounced => {
            table.insert("status", toml_edit::value(status.as_str()));
        }
    }
}

/// The part of an entry's leading decor that is separated from it by a blank line.
fn detached_comments(prefix: &str) -> &str {
    match prefix.rfind("\n\n") {
        Some(i) => &prefix[..i + 2],
        None => "",
    }
}

/// One `[[subscriber]]` entry as the file holds it, for `new` at `email`.
pub(crate) fn entry_text(new: &NewSubscriber, email: &Address) -> String {
    let mut table = Table::new();
    table.insert("email", toml_edit::value(email.to_string()));
    if let Some(name) = new
        .name
        .as_deref()
        .map(crate::text::normalize_whitespace)
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
        table.insert("since", date_value(since));
    }
    let mut tables = ArrayOfTables::new();
    tables.push(table);
    let mut doc = DocumentMut::new();
    doc.insert("subscriber", Item::ArrayOfTables(tables));
    doc.to_string()
}

/// A date as TOML writes it, unquoted: `2011-12-01`.
fn date_value(day: NaiveDate) -> Item {
    let date = toml_edit::Date {
        year: day.year() as u16,
        month: day.month() as u8,
        day: day.day() as u8,
    };
    toml_edit::value(toml_edit::Datetime {
        date: Some(date),
        time: None,
        offset: None,
    })
}

/// A reader's own choices, from the preferences page: every field is written (or removed,
/// for a default: every category, HTML, the newsletter's language, no name, no pause).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Choices {
    pub name: Option<String>,
    pub categories: Vec<String>,
    pub format: Format,
    pub language: Option<String>,
    pub paused_until: Option<NaiveDate>,
}

impl Choices {
    /// `entry` as it will be once these choices are written into it.
    pub(crate) fn apply_to(&self, entry: &mut Subscriber) {
        entry.name.clone_from(&self.name);
        entry.categories = (!self.categories.is_empty()).then(|| self.categories.clone());
        entry.format = self.format;
        entry.language.clone_from(&self.language);
        entry.paused_until = self.paused_until;
    }
}

pub(crate) fn backup_path(path: &Path) -> PathBuf {
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
