//! Validating one `[[subscriber]]` table: every field checked, every problem located at
//! its value in the file.

use std::ops::Range;
use std::path::Path;

use chrono::NaiveDate;
use lettre::Address;
use toml_edit::{Item, Table};

use super::{Format, Known, Status, Subscriber, FIELDS};
use crate::error::Diagnostic;

/// One `[[subscriber]]` table being validated.
pub(super) struct Entry<'a> {
    pub(super) path: &'a Path,
    /// The parsed block; spans are relative to it.
    pub(super) block: &'a str,
    /// Its first line in the file.
    pub(super) first_line: usize,
    pub(super) table: &'a Table,
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

    pub(super) fn validate(&self, known: &Known<'_>) -> Result<Subscriber, Vec<Diagnostic>> {
        let mut problems = Vec::new();
        self.unknown_keys(&mut problems);
        let email = self.email(&mut problems);
        let name = self
            .string("name", &mut problems)
            .map(|n| crate::text::normalize_whitespace(&n));
        let categories = self.categories(known, &mut problems);
        let format = self.format(&mut problems);
        let status = self.status(&mut problems);
        let language = self.string("language", &mut problems);
        if let Some(l) = language.as_deref().filter(|l| !(known.languages)(l)) {
            problems.push(self.problem(
                "language",
                format!("`language`: no wording for {l:?}; expected \"fr\" or \"en\""),
            ));
        }
        let since = self.date("since", &mut problems);
        let paused_until = self.date("paused_until", &mut problems);
        match (problems.is_empty(), email) {
            (true, Some(email)) => Ok(Subscriber {
                email,
                name,
                categories,
                format,
                language,
                status,
                since,
                paused_until,
                line: self.line(),
                place: (0, 0),
            }),
            _ => Err(problems),
        }
    }

    /// Keys that are not in [`FIELDS`], with the nearest one as a hint.
    fn unknown_keys(&self, problems: &mut Vec<Diagnostic>) {
        for (key, _) in self.table {
            if FIELDS.contains(&key) {
                continue;
            }
            let offset = self
                .table
                .key(key)
                .and_then(toml_edit::Key::span)
                .map_or(0, |s| s.start);
            let unknown = self.at(
                offset,
                format!(
                    "unknown field `{key}`, expected one of {}",
                    quoted_list(FIELDS)
                ),
            );
            problems.push(
                match crate::toml_input::did_you_mean(key, FIELDS.iter().copied()) {
                    Some(known) => unknown.with_help(format!("did you mean `{known}`?")),
                    None => unknown,
                },
            );
        }
    }

    fn email(&self, problems: &mut Vec<Diagnostic>) -> Option<Address> {
        let Some(raw) = self.string("email", problems) else {
            if self.table.get("email").is_none() {
                problems.push(Diagnostic::at(
                    self.path,
                    self.line(),
                    "missing field `email`",
                ));
            }
            return None;
        };
        raw.trim()
            .parse::<Address>()
            .map_err(|e| {
                problems.push(self.problem(
                    "email",
                    format!("`email`: {raw:?} is not a valid address ({e})"),
                ));
            })
            .ok()
    }

    fn format(&self, problems: &mut Vec<Diagnostic>) -> Format {
        match self.string("format", problems).as_deref() {
            None | Some("html") => Format::Html,
            Some("text") => Format::Text,
            Some(other) => {
                problems.push(self.problem(
                    "format",
                    format!("`format`: expected \"html\" or \"text\", found {other:?}"),
                ));
                Format::Html
            }
        }
    }

    fn status(&self, problems: &mut Vec<Diagnostic>) -> Status {
        let Some(s) = self.string("status", problems) else {
            return Status::Active;
        };
        Status::parse(&s).unwrap_or_else(|| {
            problems.push(self.problem(
                "status",
                format!(
                    "`status`: expected \"active\", \"unsubscribed\" or \"bounced\", found {s:?}"
                ),
            ));
            Status::Active
        })
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
        for value in array {
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

    /// A date key (`since`, `paused_until`).
    fn date(&self, key: &str, problems: &mut Vec<Diagnostic>) -> Option<NaiveDate> {
        let item = self.table.get(key)?;
        let date = item
            .as_datetime()
            .and_then(|d| d.date)
            .filter(|_| item.as_datetime().is_some_and(|d| d.time.is_none()));
        match date
            .and_then(|d| NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into()))
        {
            Some(date) => Some(date),
            None => {
                problems.push(
                    self.problem(key, format!("`{key}`: expected a date such as 2011-12-01")),
                );
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

/// A diagnostic located in a block, moved to the block's place in the file.
pub(super) fn shift(mut d: Diagnostic, first_line: usize) -> Diagnostic {
    d.line = d.line.map(|l| l + first_line - 1);
    d
}
