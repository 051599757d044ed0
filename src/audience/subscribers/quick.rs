//! The plainest entries read without building a TOML document. Nearly every entry of a
//! long list has this shape: `key = "text"`, one-line arrays of such strings, dates,
//! comments. Reading them directly takes a third of the time `toml_edit` takes.
//!
//! Anything else (escapes, multi-line arrays, quoted or dotted keys, a time after a
//! date, a control character) and any entry with a problem gives `None`: the block then
//! goes through `toml_edit`, which finds and places every problem. The tests check on
//! many generated blocks that both readings give the same subscribers.

use chrono::NaiveDate;

use super::{Format, Known, Status, Subscriber, FIELDS};

/// The entries of `text` (a block whose first line is line `first_line` of the file), or
/// `None` when only the full parser can say.
pub(super) fn entries(known: &Known<'_>, text: &str, first_line: usize) -> Option<Vec<Subscriber>> {
    let mut out = Vec::new();
    let mut current: Option<Fields<'_>> = None;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        // A CR only as part of a CRLF line end; any other is a control character.
        let line = match raw.strip_suffix('\n') {
            Some(line) => line.strip_suffix('\r').unwrap_or(line),
            None => raw,
        };
        let line = line.trim_start_matches([' ', '\t']);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            plain_comment(comment)?;
        } else if line.starts_with('[') {
            header(line)?;
            if let Some(fields) = current.take() {
                out.push(fields.subscriber(known)?);
            }
            current = Some(Fields::at(first_line + i));
        } else {
            // A key before any header belongs to the root table: not a subscriber.
            let (key, value) = key_value(line)?;
            current.as_mut()?.set(key, value)?;
        }
    }
    if let Some(fields) = current {
        out.push(fields.subscriber(known)?);
    }
    Some(out)
}

/// A value in its plainest form.
#[derive(Debug)]
enum Value<'a> {
    Str(&'a str),
    Array(Vec<&'a str>),
    Date(NaiveDate),
}

/// One entry's keys, as read.
struct Fields<'a> {
    line: usize,
    values: [Option<Value<'a>>; FIELDS.len()],
}

impl<'a> Fields<'a> {
    fn at(line: usize) -> Fields<'a> {
        Fields {
            line,
            values: Default::default(),
        }
    }

    /// Keep `value` under `key`; `None` for an unknown or repeated key.
    fn set(&mut self, key: &str, value: Value<'a>) -> Option<()> {
        let slot = &mut self.values[FIELDS.iter().position(|f| *f == key)?];
        slot.is_none().then(|| *slot = Some(value))
    }

    fn take(&mut self, key: &str) -> Option<Value<'a>> {
        let at = FIELDS.iter().position(|f| *f == key)?;
        self.values[at].take()
    }

    /// A string field: `Some(None)` when absent, `None` when not a string.
    fn text(&mut self, key: &str) -> Option<Option<&'a str>> {
        match self.take(key) {
            None => Some(None),
            Some(Value::Str(s)) => Some(Some(s)),
            Some(_) => None,
        }
    }

    fn date(&mut self, key: &str) -> Option<Option<NaiveDate>> {
        match self.take(key) {
            None => Some(None),
            Some(Value::Date(d)) => Some(Some(d)),
            Some(_) => None,
        }
    }

    /// The subscriber, when every field is as [`super::entry`] accepts it.
    fn subscriber(mut self, known: &Known<'_>) -> Option<Subscriber> {
        let email = self.text("email")??.trim().parse().ok()?;
        let name = self.text("name")?.map(crate::text::normalize_whitespace);
        let categories = match self.take("categories") {
            None => None,
            Some(Value::Array(items)) => Some(
                items
                    .into_iter()
                    .map(|c| {
                        known
                            .categories
                            .iter()
                            .any(|k| k == c)
                            .then(|| c.to_string())
                    })
                    .collect::<Option<Vec<_>>>()?,
            ),
            Some(_) => return None,
        };
        let format = match self.text("format")? {
            None | Some("html") => Format::Html,
            Some("text") => Format::Text,
            Some(_) => return None,
        };
        let status = match self.text("status")? {
            None => Status::Active,
            Some(s) => Status::parse(s)?,
        };
        let language = match self.text("language")? {
            Some(l) if !(known.languages)(l) => return None,
            l => l.map(str::to_string),
        };
        let (since, paused_until) = (self.date("since")?, self.date("paused_until")?);
        // A field of FIELDS this reading does not know yet: left to `entry`.
        if self.values.iter().any(Option::is_some) {
            return None;
        }
        Some(Subscriber {
            email,
            name,
            categories,
            format,
            language,
            status,
            since,
            paused_until,
            line: self.line,
            place: (0, 0),
        })
    }
}

/// `[[subscriber]]`, maybe followed by a comment.
fn header(line: &str) -> Option<()> {
    end_of_line(line.strip_prefix("[[subscriber]]")?)
}

/// `key = value`, maybe followed by a comment; the key bare.
fn key_value(line: &str) -> Option<(&str, Value<'_>)> {
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(line.len());
    let (key, rest) = line.split_at(end);
    let rest = rest.trim_start_matches([' ', '\t']).strip_prefix('=')?;
    let rest = rest.trim_start_matches([' ', '\t']);
    let (value, rest) = value(rest)?;
    end_of_line(rest)?;
    (!key.is_empty()).then_some((key, value))
}

fn value(s: &str) -> Option<(Value<'_>, &str)> {
    match s.as_bytes().first()? {
        b'"' | b'\'' => string(s).map(|(v, rest)| (Value::Str(v), rest)),
        b'[' => array(&s[1..]),
        b'0'..=b'9' => date(s),
        _ => None,
    }
}

/// A one-line basic string without escapes, or a one-line literal string.
fn string(s: &str) -> Option<(&str, &str)> {
    let quote = s.chars().next()?;
    let body = &s[1..];
    let end = body.find(quote)?;
    let (text, rest) = (&body[..end], &body[end + 1..]);
    // `""` followed by a quote opens a multi-line string.
    if text.is_empty() && rest.starts_with(quote) {
        return None;
    }
    let plain = |c: char| !(is_control(c) || (quote == '"' && c == '\\'));
    text.chars().all(plain).then_some((text, rest))
}

/// The rest of a one-line array of plain strings, after its `[`.
fn array(mut s: &str) -> Option<(Value<'_>, &str)> {
    let mut items = Vec::new();
    loop {
        s = s.trim_start_matches([' ', '\t']);
        if let Some(rest) = s.strip_prefix(']') {
            return Some((Value::Array(items), rest));
        }
        let (item, rest) = string(s)?;
        items.push(item);
        s = rest.trim_start_matches([' ', '\t']);
        match s.as_bytes().first()? {
            b',' => s = &s[1..],
            b']' => return Some((Value::Array(items), &s[1..])),
            _ => return None,
        }
    }
}

/// `YYYY-MM-DD`, a local date and nothing more.
fn date(s: &str) -> Option<(Value<'_>, &str)> {
    let b = s.as_bytes();
    let shape = b.len() >= 10
        && b[..10].iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shape {
        return None;
    }
    let number = |r: std::ops::Range<usize>| s[r].parse::<u32>().ok();
    let year = i32::try_from(number(0..4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?)?;
    Some((Value::Date(date), &s[10..]))
}

/// Spaces, then nothing or a comment.
fn end_of_line(rest: &str) -> Option<()> {
    let rest = rest.trim_start_matches([' ', '\t']);
    match rest.strip_prefix('#') {
        Some(comment) => plain_comment(comment),
        None => rest.is_empty().then_some(()),
    }
}

/// TOML allows no control character but tab in a comment.
fn plain_comment(comment: &str) -> Option<()> {
    (!comment.chars().any(is_control)).then_some(())
}

/// What TOML refuses in comments and one-line strings: ASCII control characters but tab.
fn is_control(c: char) -> bool {
    (c < ' ' && c != '\t') || c == '\x7f'
}

#[cfg(test)]
#[path = "quick_tests.rs"]
mod tests;
