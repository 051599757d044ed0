//! Reading a TOML file (the config, a post's front matter) so that **every** problem is
//! reported at once, each with a hint when there is a usual fix.
//!
//! serde stops at the first unknown key or wrong type. [`deserialize_rest`] records that
//! problem, blanks the statement it is about (same length, so later offsets still point at
//! the right place) and deserializes again, until the text deserializes or the problem
//! cannot be blanked (a syntax error, a missing key).

use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;
use toml_edit::{ImDocument, Item, Table};

use crate::error::Diagnostic;

/// More distinct problems than this in one file is noise, not information.
const MAX_PROBLEMS: usize = 50;

/// What [`deserialize_rest`] could read.
#[derive(Debug)]
pub(crate) struct Partial<T> {
    /// The value without the faulty statements, if that deserializes.
    pub value: Option<T>,
    pub problems: Vec<Diagnostic>,
    /// Keys of the statements left out (each already has its problem).
    pub left_out: Vec<String>,
}

/// Deserialize `text`, which starts at byte `base` of `file_source` (non-zero for front
/// matter), reporting every unknown key and wrong type in one go; also give what
/// deserializes once the faulty statements are left out, so the caller can check the values
/// that are there too.
pub(crate) fn deserialize_rest<T: DeserializeOwned>(
    path: &Path,
    file_source: &str,
    base: usize,
    text: &str,
) -> Partial<T> {
    let mut text = text.to_string();
    let mut problems = Vec::new();
    let mut blanked_keys = Vec::new();
    loop {
        let err = match toml::from_str::<T>(&text) {
            Ok(value) => {
                return Partial {
                    value: Some(value),
                    problems,
                    left_out: blanked_keys,
                }
            }
            Err(err) => err,
        };
        if let Some(missing) = missing_field(err.message()) {
            // A required key we blanked is already reported as wrong: not a new problem.
            if !blanked_keys.iter().any(|k| k == missing) {
                problems.push(with_hint(Diagnostic::from_toml(
                    path,
                    file_source,
                    base,
                    &err,
                )));
            }
            return Partial {
                value: None,
                problems,
                left_out: blanked_keys,
            };
        }
        let diagnostic = Diagnostic::from_toml(path, file_source, base, &err);
        let blanked = err
            .span()
            .and_then(|span| blank_statement(&mut text, &span));
        problems.push(with_hint(diagnostic));
        match blanked {
            Some(key) if problems.len() < MAX_PROBLEMS => blanked_keys.push(key),
            _ => {
                return Partial {
                    value: None,
                    problems,
                    left_out: blanked_keys,
                }
            }
        }
    }
}

/// serde's "missing field `x`" → "x".
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// Add the usual fix to a serde/toml diagnostic: the known key a typo is close to, the
/// quotes around a date.
pub(crate) fn with_hint(d: Diagnostic) -> Diagnostic {
    if let Some((unknown, expected)) = unknown_field(&d.message) {
        let help = match did_you_mean(&unknown, expected.iter().map(String::as_str)) {
            Some(known) => format!("did you mean `{known}`?"),
            None => "remove the key, or check its spelling and the [table] it is in".into(),
        };
        return d.with_help(help);
    }
    if d.message.contains("invalid type: string")
        && (d.message.contains("datetime") || d.message.contains("date-time"))
    {
        let value = d
            .excerpt
            .as_ref()
            .and_then(|excerpt| excerpt.0.split_once('='))
            .map(|(key, value)| (key.trim(), value.trim().trim_matches(['"', '\''])));
        let help = match value {
            Some((key, value)) if value.parse::<toml::value::Datetime>().is_ok() => {
                format!("remove the quotes: TOML dates are bare, `{key} = {value}`")
            }
            _ => {
                "write a bare TOML date such as 2011-12-20T09:30:00+01:00 or 2011-12-20 (no quotes)"
                    .into()
            }
        };
        return d.with_help(help);
    }
    let written = d
        .excerpt
        .as_ref()
        .and_then(|excerpt| excerpt.0.split_once('='))
        .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()));
    if let Some(fixed) = written.as_ref().and_then(|(_, value)| date_as_toml(value)) {
        let key = written.as_ref().map_or("date", |(key, _)| key.as_str());
        return d.with_help(format!(
            "TOML dates are written YYYY-MM-DD, a time with its seconds: `{key} = {fixed}`"
        ));
    }
    d
}

/// A date written the way people write them (`27/11/2026`, `27.11.2026`, `2026/11/27`,
/// `2026-11-27 09:00`) as TOML writes it; `None` when it does not look like a date.
pub(crate) fn date_as_toml(value: &str) -> Option<String> {
    let value = value.trim().trim_matches(['"', '\'']);
    let (date, time) = match value.split_once([' ', 'T']) {
        Some((date, time)) => (date, Some(time.trim())),
        None => (value, None),
    };
    let parts: Vec<&str> = date.split(['/', '.', '-']).collect();
    let number = |s: &str| s.parse::<u32>().ok();
    let (year, month, day) = match parts.as_slice() {
        [y, m, d] if y.len() == 4 => (number(y)?, number(m)?, number(d)?),
        [d, m, y] if y.len() == 4 => (number(y)?, number(m)?, number(d)?),
        _ => return None,
    };
    chrono::NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let date = format!("{year:04}-{month:02}-{day:02}");
    match time {
        None => Some(date),
        Some(time) => {
            let hms: Vec<u32> = time.split(':').map(number).collect::<Option<_>>()?;
            let (h, m, s) = match hms.as_slice() {
                [h, m] => (*h, *m, 0),
                [h, m, s] => (*h, *m, *s),
                _ => return None,
            };
            chrono::NaiveTime::from_hms_opt(h, m, s)?;
            Some(format!("{date}T{h:02}:{m:02}:{s:02}"))
        }
    }
}

/// The closest of `known` to `word`, if it is close enough to be a typo.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(word, k), k))
        .filter(|(distance, k)| *distance <= (k.chars().count() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// `unknown field `x`, expected one of `a`, `b`` (serde's wording) → ("x", ["a", "b"]).
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((unknown.to_string(), expected))
}

/// Replace the statement (key = value, or a whole `[table]`) that `span` points into with
/// spaces, keeping line breaks, so the text keeps its length and line numbers. Returns the
/// statement's key, or `None` when there is no such statement.
fn blank_statement(text: &mut String, span: &Range<usize>) -> Option<String> {
    let doc = ImDocument::parse(text.as_str()).ok()?;
    let mut ranges = Vec::new();
    let key = find_statement(doc.as_table(), span.start, &mut ranges)?;
    drop(doc);
    // SAFETY-free byte surgery: every replaced byte becomes an ASCII space, and whole UTF-8
    // sequences are replaced (ranges come from the parser, on char boundaries).
    let mut bytes = std::mem::take(text).into_bytes();
    for range in ranges {
        for b in &mut bytes[range] {
            if *b != b'\n' && *b != b'\r' {
                *b = b' ';
            }
        }
    }
    *text = String::from_utf8(bytes).unwrap_or_default();
    Some(key)
}

/// The byte ranges making up the innermost statement of `table` that contains `offset`,
/// and its key.
fn find_statement(table: &Table, offset: usize, out: &mut Vec<Range<usize>>) -> Option<String> {
    for (name, item) in table {
        let Some((key, _)) = table.get_key_value(name) else {
            continue;
        };
        match item {
            Item::Value(value) => {
                if let (Some(k), Some(v)) = (key.span(), value.span()) {
                    let whole = k.start..v.end.max(k.end);
                    if whole.contains(&offset) {
                        out.push(whole);
                        return Some(name.to_string());
                    }
                }
            }
            Item::Table(inner) => {
                if let Some(found) = find_in_table(inner, key.span(), offset, out) {
                    return Some(found.unwrap_or_else(|| name.to_string()));
                }
            }
            Item::ArrayOfTables(array) => {
                for inner in array {
                    if let Some(found) = find_in_table(inner, None, offset, out) {
                        return Some(found.unwrap_or_else(|| name.to_string()));
                    }
                }
            }
            Item::None => {}
        }
    }
    None
}

/// A statement inside `table` (`Some(Some(key))`), or the table itself when `offset` is in
/// its header (`Some(None)`).
fn find_in_table(
    table: &Table,
    key_span: Option<Range<usize>>,
    offset: usize,
    out: &mut Vec<Range<usize>>,
) -> Option<Option<String>> {
    if let Some(found) = find_statement(table, offset, out) {
        return Some(Some(found));
    }
    let whole = table.span().or(key_span)?;
    if whole.contains(&offset) {
        blank_table(table, Some(whole), out);
        return Some(None);
    }
    None
}

/// Every range of a table: its header and all its statements, nested tables included.
fn blank_table(table: &Table, header: Option<Range<usize>>, out: &mut Vec<Range<usize>>) {
    if !table.is_implicit() {
        out.extend(header);
    }
    for (key, item) in table {
        let Some((key, _)) = table.get_key_value(key) else {
            continue;
        };
        match item {
            Item::Value(value) => {
                if let (Some(k), Some(v)) = (key.span(), value.span()) {
                    out.push(k.start..v.end.max(k.end));
                }
            }
            Item::Table(inner) => blank_table(inner, inner.span(), out),
            Item::ArrayOfTables(array) => {
                for inner in array {
                    blank_table(inner, inner.span(), out);
                }
            }
            Item::None => {}
        }
    }
}

#[cfg(test)]
mod date_tests {
    use super::date_as_toml;

    #[test]
    fn dates_as_people_write_them_are_shown_as_toml_writes_them() {
        assert_eq!(date_as_toml("27/11/2026").as_deref(), Some("2026-11-27"));
        assert_eq!(date_as_toml("27.11.2026").as_deref(), Some("2026-11-27"));
        assert_eq!(date_as_toml("2026/11/27").as_deref(), Some("2026-11-27"));
        assert_eq!(
            date_as_toml("2026-11-27 09:00").as_deref(),
            Some("2026-11-27T09:00:00")
        );
        assert_eq!(date_as_toml("31/02/2026"), None, "not a day");
        assert_eq!(date_as_toml("\"fr\""), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        newsletter: Newsletter,
        #[serde(default)]
        smtp: Smtp,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Newsletter {
        name: String,
        language: Option<String>,
        timezone: Option<String>,
        date: Option<toml::value::Datetime>,
    }

    #[derive(Debug, Deserialize, Default)]
    #[serde(deny_unknown_fields, default)]
    #[allow(dead_code)]
    struct Smtp {
        port: u16,
        host: String,
    }

    fn problems(src: &str) -> Vec<String> {
        deserialize_rest::<Doc>(Path::new("d.toml"), src, 0, src)
            .problems
            .iter()
            .map(|d| {
                format!(
                    "{}{}",
                    d,
                    d.help
                        .as_ref()
                        .map(|h| format!(" | {h}"))
                        .unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn reports_three_typos_in_one_go_with_hints() {
        let src =
            "[newsletter]\nname = \"x\"\nlangage = \"fr\"\ntimezon = \"UTC\"\n[smtp]\nprot = 25\n";
        let found = problems(src);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].starts_with("d.toml:3:1: unknown field `langage`, expected one of `name`"));
        assert!(
            found[0].ends_with("| did you mean `language`?"),
            "{found:?}"
        );
        assert!(found[1].starts_with("d.toml:4:1: unknown field `timezon`"));
        assert!(found[1].ends_with("| did you mean `timezone`?"));
        assert!(found[2].starts_with("d.toml:6:1: unknown field `prot`"));
        assert!(found[2].ends_with("| did you mean `port`?"));
    }

    #[test]
    fn a_wrong_type_and_an_unknown_table_are_reported_with_the_rest() {
        let src = "[newsletter]\nname = \"x\"\n[smtp]\nport = \"25\"\nhost = 1\n[smpt]\nport = 2\n";
        let found = problems(src);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(
            found[0].starts_with("d.toml:4:8: invalid type: string \"25\""),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("d.toml:5:8: invalid type: integer"),
            "{found:?}"
        );
        assert!(found[2].contains("unknown field `smpt`"), "{found:?}");
        assert!(found[2].ends_with("did you mean `smtp`?"), "{found:?}");
    }

    #[test]
    fn a_quoted_date_gets_remove_the_quotes() {
        let src = "[newsletter]\nname = \"x\"\ndate = \"2025-03-11\"\n";
        let found = problems(src);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].ends_with("| remove the quotes: TOML dates are bare, `date = 2025-03-11`"),
            "{found:?}"
        );
    }

    #[test]
    fn a_missing_key_stops_without_looping() {
        let found = problems("[newsletter]\nlanguage = \"fr\"\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("missing field `name`"), "{found:?}");
    }

    #[test]
    fn typos_are_matched_to_close_keys_only() {
        let keys = ["category", "date", "title", "tags"];
        assert_eq!(did_you_mean("categroy", keys), Some("category"));
        assert_eq!(did_you_mean("dat", keys), Some("date"));
        assert_eq!(did_you_mean("math", keys), None);
    }
}
