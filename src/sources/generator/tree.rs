//! A generator's config file read into one tree, whatever its syntax (TOML, YAML or JSON),
//! with keys looked up as the generator does (Hugo's are case-insensitive).

use std::path::Path;

use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// Read a config file by its extension; `Err` is the line (when the parser knows it) and
/// what is wrong, on one line.
pub(super) fn read_file(path: &Path) -> Result<Value, (Option<usize>, String)> {
    let text = std::fs::read_to_string(path).map_err(|e| (None, e.to_string()))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "toml" => toml::from_str::<Value>(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            (line, e.message().trim().replace('\n', "; "))
        }),
        "json" => serde_json::from_str::<Value>(&text).map_err(|e| (Some(e.line()), e.to_string())),
        _ => YamlLoader::load_from_str(&text)
            .map(|docs| docs.into_iter().next().map_or(Value::Null, yaml_to_value))
            .map_err(|e| (Some(e.marker().line()), e.info().to_string())),
    }
}

fn yaml_to_value(yaml: Yaml) -> Value {
    match yaml {
        Yaml::String(s) | Yaml::Real(s) => Value::String(s),
        Yaml::Integer(i) => Value::from(i),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Array(items) => Value::Array(items.into_iter().map(yaml_to_value).collect()),
        Yaml::Hash(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let key = match k {
                    Yaml::String(s) | Yaml::Real(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    _ => continue,
                };
                map.insert(key, yaml_to_value(v));
            }
            Value::Object(map)
        }
        _ => Value::Null,
    }
}

/// `value[key]`, the key matched without regard to case (as Hugo reads its settings).
pub(super) fn get<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    let map = value.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// A text setting, trimmed; `None` when missing or empty.
pub(super) fn text(value: &Value, key: &str) -> Option<String> {
    let found = get(value, key)?;
    let text = match found {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// A boolean setting (`true`, or the text "true" some YAML writers leave).
pub(super) fn flag(value: &Value, key: &str) -> Option<bool> {
    match get(value, key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Merge `extra` into `base`: tables are merged key by key, and `base` keeps its own
/// values (the file read first wins).
pub(super) fn merge_under(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(base), Value::Object(extra)) => {
            for (key, value) in extra {
                let existing = base.keys().find(|k| k.eq_ignore_ascii_case(&key)).cloned();
                match existing {
                    Some(k) => merge_under(base.get_mut(&k).expect("key just found"), value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base @ Value::Null, extra) => *base = extra,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_without_case_and_the_first_file_wins() {
        let mut base: Value = serde_json::json!({"baseURL": "https://a.org/", "params": {"x": 1}});
        merge_under(
            &mut base,
            serde_json::json!({"baseurl": "https://b.org/", "Params": {"y": 2}, "title": "T"}),
        );
        assert_eq!(text(&base, "BASEURL").as_deref(), Some("https://a.org/"));
        assert_eq!(get(&base, "params").unwrap()["y"], 2);
        assert_eq!(text(&base, "title").as_deref(), Some("T"));
    }

    #[test]
    fn yaml_becomes_the_same_tree() {
        let docs = YamlLoader::load_from_str("url: https://x.org\nfuture: true\nn: 3\n").unwrap();
        let value = yaml_to_value(docs.into_iter().next().unwrap());
        assert_eq!(text(&value, "url").as_deref(), Some("https://x.org"));
        assert_eq!(flag(&value, "future"), Some(true));
        assert_eq!(text(&value, "n").as_deref(), Some("3"));
    }
}
