//! Front matter read into one shape, whatever its syntax (TOML or YAML): keys with their
//! values and the line each key is on.

use std::collections::HashMap;

use yaml_rust2::{Yaml, YamlLoader};

use crate::text::normalize_whitespace;

/// A front-matter value, whatever the syntax it came from.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Text(String),
    Bool(bool),
    List(Vec<Value>),
    Map(Vec<(String, Value)>),
    Other,
}

impl Value {
    pub(super) fn text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A list of words: a list, or (Jekyll) one space-separated string.
    pub(super) fn words(&self, split_spaces: bool) -> Vec<String> {
        match self {
            Value::List(items) => items
                .iter()
                .filter_map(Value::text)
                .map(normalize_whitespace)
                .filter(|s| !s.is_empty())
                .collect(),
            Value::Text(s) if split_spaces => s.split_whitespace().map(str::to_string).collect(),
            Value::Text(s) => vec![normalize_whitespace(s)]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Front matter read into key → (value, line).
pub(crate) struct Meta {
    pub entries: Vec<(String, Value)>,
    pub lines: HashMap<String, usize>,
    /// What was forgiven while reading, as the generator forgives it: (line, why).
    pub forgiven: Vec<(usize, String)>,
    /// The file's line where the body starts (after the front matter).
    pub body_line: usize,
}

impl Meta {
    pub(super) fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(crate) fn text(&self, key: &str) -> Option<String> {
        self.get(key)
            .and_then(Value::text)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    pub(super) fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::Text(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub(super) fn line(&self, key: &str) -> usize {
        self.lines.get(key).copied().unwrap_or(1)
    }

    /// Is a key spelled as one of `known` but in another case (`Title:`)? Most files have
    /// none, and are then read as they are, without a copy.
    pub(super) fn has_other_spellings(&self, known: &[&str]) -> bool {
        self.entries.iter().any(|(k, _)| {
            !known.contains(&k.as_str()) && known.iter().any(|n| n.eq_ignore_ascii_case(k))
        })
    }

    /// The same keys, each spelled as in `known` when they differ only in case: Hugo reads
    /// `Title:` and `Date:` as `title` and `date`.
    pub(super) fn with_known_spelling(&self, known: &[&str]) -> Meta {
        let spell = |key: &str| {
            known
                .iter()
                .find(|k| k.eq_ignore_ascii_case(key))
                .map_or_else(|| key.to_string(), |k| (*k).to_string())
        };
        Meta {
            entries: self
                .entries
                .iter()
                .map(|(k, v)| (spell(k), v.clone()))
                .collect(),
            lines: self.lines.iter().map(|(k, l)| (spell(k), *l)).collect(),
            forgiven: self.forgiven.clone(),
            body_line: self.body_line,
        }
    }

    pub(crate) fn keys(&self) -> Vec<String> {
        self.entries.iter().map(|(k, _)| k.clone()).collect()
    }

    /// TOML front matter (`text` starts on line `first_line` of the file).
    pub(crate) fn from_toml(text: &str, first_line: usize) -> Result<Meta, (usize, String)> {
        let doc = toml_edit::ImDocument::parse(text).map_err(|e| {
            let line = e
                .span()
                .map_or(0, |s| text[..s.start.min(text.len())].matches('\n').count());
            (first_line + line, e.message().trim().to_string())
        })?;
        let mut lines = HashMap::new();
        let mut entries = Vec::new();
        for (key, item) in doc.as_table() {
            if let Some(span) = doc.as_table().key(key).and_then(toml_edit::Key::span) {
                lines.insert(
                    key.to_string(),
                    first_line + text[..span.start].matches('\n').count(),
                );
            }
            entries.push((key.to_string(), toml_item(item)));
        }
        Ok(Meta {
            entries,
            lines,
            forgiven: Vec::new(),
            body_line: 1,
        })
    }

    /// YAML front matter (`text` starts on line `first_line` of the file).
    pub(crate) fn from_yaml(text: &str, first_line: usize) -> Result<Meta, (usize, String)> {
        // Jekyll (Psych) and Hugo read a key given twice, the last one winning.
        let (text, duplicates) = without_earlier_duplicates(text);
        let text = text.as_str();
        let forgiven = duplicates
            .into_iter()
            .map(|(line, key)| {
                (
                    first_line + line,
                    format!("`{key}` is given twice; the last one is read, as the generator does"),
                )
            })
            .collect();
        let docs = YamlLoader::load_from_str(text)
            .or_else(|e| {
                // Go's YAML parser (Hugo) accepts a flow list closed at column 0
                // (`aliases: [\n  '/a/',\n]`); YAML 1.2 parsers do not. Indent such a
                // closing bracket and try again before giving up.
                let indented: String = text
                    .lines()
                    .map(|l| {
                        let pad = if l.starts_with([']', '}']) { " " } else { "" };
                        format!("{pad}{l}\n")
                    })
                    .collect();
                YamlLoader::load_from_str(&indented).map_err(|_| e)
            })
            .map_err(|e| {
                (
                    first_line + e.marker().line().saturating_sub(1),
                    e.info().to_string(),
                )
            })?;
        let mut entries = Vec::new();
        if let Some(Yaml::Hash(hash)) = docs.into_iter().next() {
            for (k, v) in hash {
                if let Some(k) = yaml_key(&k) {
                    entries.push((k, yaml_value(v)));
                }
            }
        }
        let mut lines = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            if let Some((key, _)) = line.split_once(':') {
                let key = key.trim_end().trim_matches(['"', '\'']);
                if !line.starts_with([' ', '\t', '-', '#']) && !key.is_empty() {
                    lines.entry(key.to_string()).or_insert(first_line + i);
                }
            }
        }
        Ok(Meta {
            entries,
            lines,
            forgiven,
            body_line: 1,
        })
    }
}

/// A top-level YAML key (`key:` at column 0), if `line` starts one.
fn top_level_key(line: &str) -> Option<&str> {
    if line.starts_with([' ', '\t', '-', '#']) {
        return None;
    }
    let (key, _) = line.split_once(':')?;
    let key = key.trim_end().trim_matches(['"', '\'']);
    (!key.is_empty()).then_some(key)
}

/// The YAML with each top-level key that is given again later blanked out (its line and
/// its indented or listed continuation), so the last one wins; the blanked (line, key).
fn without_earlier_duplicates(text: &str) -> (String, Vec<(usize, String)>) {
    let lines: Vec<&str> = text.lines().collect();
    let keys: Vec<Option<&str>> = lines.iter().map(|l| top_level_key(l)).collect();
    let mut blank = vec![false; lines.len()];
    let mut dropped = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let Some(key) = key else { continue };
        if !keys[i + 1..].contains(&Some(key)) {
            continue;
        }
        dropped.push((i, (*key).to_string()));
        blank[i] = true;
        for j in i + 1..lines.len() {
            if keys[j].is_some() || lines[j].starts_with('#') {
                break;
            }
            blank[j] = true;
        }
    }
    if dropped.is_empty() {
        return (text.to_string(), dropped);
    }
    let kept = lines
        .iter()
        .zip(&blank)
        .map(|(line, blank)| if *blank { "" } else { line })
        .collect::<Vec<_>>()
        .join("\n");
    (kept, dropped)
}

fn toml_item(item: &toml_edit::Item) -> Value {
    match item {
        toml_edit::Item::Value(v) => toml_value(v),
        toml_edit::Item::Table(t) => Value::Map(
            t.iter()
                .map(|(k, v)| (k.to_string(), toml_item(v)))
                .collect(),
        ),
        _ => Value::Other,
    }
}

fn toml_value(v: &toml_edit::Value) -> Value {
    match v {
        toml_edit::Value::String(s) => Value::Text(s.value().clone()),
        toml_edit::Value::Datetime(d) => Value::Text(d.value().to_string()),
        toml_edit::Value::Boolean(b) => Value::Bool(*b.value()),
        toml_edit::Value::Integer(i) => Value::Text(i.value().to_string()),
        toml_edit::Value::Float(f) => Value::Text(f.value().to_string()),
        toml_edit::Value::Array(a) => Value::List(a.iter().map(toml_value).collect()),
        toml_edit::Value::InlineTable(t) => Value::Map(
            t.iter()
                .map(|(k, v)| (k.to_string(), toml_value(v)))
                .collect(),
        ),
    }
}

fn yaml_key(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn yaml_value(y: Yaml) -> Value {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Value::Text(s),
        Yaml::Integer(i) => Value::Text(i.to_string()),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Array(items) => Value::List(items.into_iter().map(yaml_value).collect()),
        Yaml::Hash(hash) => Value::Map(
            hash.into_iter()
                .filter_map(|(k, v)| Some((yaml_key(&k)?, yaml_value(v))))
                .collect(),
        ),
        _ => Value::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_is_read_from_its_last_place_with_a_note() {
        let meta = Meta::from_yaml(
            "title: A\nredirect_from:\n  - /old/\ndate: 2024-01-02\nredirect_from: /new/\n",
            2,
        )
        .unwrap();
        assert_eq!(meta.text("redirect_from").as_deref(), Some("/new/"));
        assert_eq!(meta.text("date").as_deref(), Some("2024-01-02"));
        assert_eq!(meta.line("redirect_from"), 6);
        assert_eq!(meta.forgiven.len(), 1);
        assert_eq!(meta.forgiven[0].0, 3);
    }
}
