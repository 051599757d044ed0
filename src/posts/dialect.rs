//! Front matter as Zola, Hugo and Jekyll write it, read as it is: each dialect's keys are
//! mapped onto the same [`Post`]; keys a generator ignores (theme keys, `math = true`) are
//! ignored here too, but a key one typo away from one we read is a warning.

use std::collections::HashMap;
use std::path::{Component, Path};

use chrono::{DateTime, Datelike};
use chrono_tz::Tz;
use url::Url;
use yaml_rust2::{Yaml, YamlLoader};

use super::{dates, resolve_link, ParseContext, Post};
use crate::error::Diagnostic;
use crate::text::normalize_whitespace;

/// The generators whose files digestif reads as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// digestif's own strict TOML (`+++`): an unknown key is an error.
    Digestif,
    Zola,
    Hugo,
    Jekyll,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Digestif => "digestif",
            Dialect::Zola => "Zola",
            Dialect::Hugo => "Hugo",
            Dialect::Jekyll => "Jekyll",
        }
    }

    /// The top-level keys this dialect's mapping reads (for "did you mean").
    fn known_keys(self) -> &'static [&'static str] {
        match self {
            Dialect::Digestif => &[],
            Dialect::Zola => &[
                "title",
                "date",
                "updated",
                "description",
                "draft",
                "slug",
                "path",
                "taxonomies",
                "extra",
                "aliases",
                "weight",
                "template",
                "authors",
                "in_search_index",
                "render",
                "link",
                "source",
            ],
            Dialect::Hugo => &[
                "title",
                "date",
                "publishDate",
                "expiryDate",
                "lastmod",
                "draft",
                "categories",
                "tags",
                "description",
                "summary",
                "slug",
                "url",
                "aliases",
                "weight",
                "type",
                "layout",
                "keywords",
                "author",
                "authors",
                "link",
                "source",
            ],
            Dialect::Jekyll => &[
                "title",
                "date",
                "categories",
                "category",
                "tags",
                "excerpt",
                "description",
                "permalink",
                "published",
                "layout",
                "author",
                "link",
                "source",
            ],
        }
    }
}

/// Keys that only Zola's TOML front matter has: a `+++` file with one of them is Zola's.
const ZOLA_ONLY: &[&str] = &[
    "taxonomies",
    "extra",
    "updated",
    "path",
    "template",
    "in_search_index",
    "transparent",
    "sort_by",
];
/// Keys that only Hugo's front matter has.
const HUGO_ONLY: &[&str] = &[
    "publishDate",
    "expiryDate",
    "lastmod",
    "url",
    "categories",
    "type",
    "layout",
    "keywords",
    "summary_length",
];

/// Which dialect a `+++` file speaks, from its keys, when the site does not say.
pub(crate) fn toml_dialect_of(keys: &[String]) -> Dialect {
    if keys.iter().any(|k| ZOLA_ONLY.contains(&k.as_str())) {
        Dialect::Zola
    } else if keys.iter().any(|k| HUGO_ONLY.contains(&k.as_str())) {
        Dialect::Hugo
    } else {
        Dialect::Digestif
    }
}

/// Keys of our own format.
const OURS: &[&str] = &[
    "title", "date", "category", "tags", "source", "link", "summary", "draft",
];

/// Only our keys, with one that only we use (`category`, `source`): our own format even
/// inside a generator's site.
pub(crate) fn looks_like_ours(keys: &[String]) -> bool {
    keys.iter().all(|k| OURS.contains(&k.as_str()))
        && keys.iter().any(|k| k == "category" || k == "source")
}

/// The generator a folder belongs to, from the config files next to it or above it.
pub fn detect_site(posts_dir: &Path) -> Option<Dialect> {
    let start = std::path::absolute(posts_dir).ok()?;
    for dir in start.ancestors().take(5) {
        if dir.join("_config.yml").is_file() || dir.join("_config.yaml").is_file() {
            return Some(Dialect::Jekyll);
        }
        if dir.join("zola.toml").is_file() {
            return Some(Dialect::Zola);
        }
        for hugo in ["hugo.toml", "hugo.yaml", "hugo.yml", "hugo.json"] {
            if dir.join(hugo).is_file() {
                return Some(Dialect::Hugo);
            }
        }
        for config in ["config.toml", "config.yaml", "config.yml"] {
            if let Ok(text) = std::fs::read_to_string(dir.join(config)) {
                if text.contains("baseURL") || text.contains("baseurl") {
                    return Some(Dialect::Hugo);
                }
                if text.contains("base_url") {
                    return Some(Dialect::Zola);
                }
            }
        }
    }
    None
}

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
    fn text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A list of words: a list, or (Jekyll) one space-separated string.
    fn words(&self, split_spaces: bool) -> Vec<String> {
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
}

impl Meta {
    fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn text(&self, key: &str) -> Option<String> {
        self.get(key)
            .and_then(Value::text)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::Text(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn line(&self, key: &str) -> usize {
        self.lines.get(key).copied().unwrap_or(1)
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
        Ok(Meta { entries, lines })
    }

    /// YAML front matter (`text` starts on line `first_line` of the file).
    pub(crate) fn from_yaml(text: &str, first_line: usize) -> Result<Meta, (usize, String)> {
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
        Ok(Meta { entries, lines })
    }
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

/// What a generator's file turned out to be.
#[derive(Debug)]
pub enum Read {
    Post(Box<Post>),
    /// Not a post (a section index, a page without a date): why.
    NotAPost(String),
}

/// Map a generator's front matter onto a [`Post`]. `warnings` gets the typo-like keys and
/// the post whose URL cannot be known.
pub(crate) fn to_post(
    dialect: Dialect,
    meta: &Meta,
    path: &Path,
    body: &str,
    ctx: &ParseContext,
    warnings: &mut Vec<Diagnostic>,
) -> Result<Read, Vec<Diagnostic>> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bundle = matches!(file_name.as_str(), "index.md" | "index.markdown");
    if dialect == Dialect::Zola && file_name.starts_with("_index.") {
        return Ok(Read::NotAPost("a Zola section index (_index.md)".into()));
    }
    if dialect == Dialect::Hugo && file_name.starts_with("_index.") {
        return Ok(Read::NotAPost("a Hugo list page (_index.md)".into()));
    }
    typo_warnings(dialect, meta, path, warnings);
    let mut problems = Vec::new();
    let at = |key: &str, message: String| Diagnostic::at(path, meta.line(key), message);

    // The name the generator takes the date and slug from: the file, or its folder for a
    // page bundle (`2024-05-01-slug/index.md`).
    let stem_source = if bundle {
        path.parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        path.file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let (name_date, name_slug) = date_prefix(&stem_source);

    let date_key = match dialect {
        Dialect::Hugo if meta.get("publishDate").is_some() => "publishDate",
        _ => "date",
    };
    let date = match meta.text(date_key) {
        Some(text) => match dates::parse_flexible(&text, ctx.timezone) {
            Ok(d) => Some(d),
            Err(why) => {
                problems.push(at(date_key, format!("field `{date_key}`: {why}")));
                None
            }
        },
        None => match name_date
            .map(str::to_string)
            .or_else(|| date_in_url_path(meta))
            .and_then(|d| dates::parse_flexible(&d, ctx.timezone).ok())
        {
            Some(d) => Some(d),
            None if problems.is_empty() => {
                return Ok(Read::NotAPost(format!(
                    "no date: neither a `date` key nor a YYYY-MM-DD- prefix in its name ({} reads it as a page)",
                    dialect.name()
                )))
            }
            None => None,
        },
    };

    let title = normalize_whitespace(&meta.text("title").unwrap_or_default());
    if title.is_empty() {
        problems.push(at(
            "title",
            "missing or empty `title`: a post in a digest needs one".into(),
        ));
    }
    let mut draft = meta.bool("draft").unwrap_or(false);
    if dialect == Dialect::Jekyll && meta.bool("published") == Some(false) {
        draft = true;
    }
    if let Some(expiry) = meta.text("expiryDate").filter(|_| dialect == Dialect::Hugo) {
        if let (Ok(expiry), Some(date)) = (dates::parse_flexible(&expiry, ctx.timezone), date) {
            // Hugo stops publishing an expired page; a post that expired before its own
            // week ended was never meant to be read then.
            if expiry <= date {
                draft = true;
            }
        }
    }

    let categories = match dialect {
        Dialect::Zola => meta
            .get("taxonomies")
            .and_then(|t| t.get("categories"))
            .map(|v| v.words(false))
            .unwrap_or_default(),
        Dialect::Hugo => meta
            .get("categories")
            .map(|v| v.words(false))
            .unwrap_or_default(),
        Dialect::Jekyll => {
            let mut all = meta
                .get("categories")
                .map(|v| v.words(true))
                .unwrap_or_default();
            all.extend(
                meta.get("category")
                    .map(|v| v.words(false))
                    .unwrap_or_default(),
            );
            all
        }
        Dialect::Digestif => Vec::new(),
    };
    let tags = match dialect {
        Dialect::Zola => meta
            .get("taxonomies")
            .and_then(|t| t.get("tags"))
            .map(|v| v.words(false))
            .unwrap_or_default(),
        Dialect::Jekyll => meta.get("tags").map(|v| v.words(true)).unwrap_or_default(),
        _ => meta.get("tags").map(|v| v.words(false)).unwrap_or_default(),
    };
    let category = ctx.category_of(&categories);

    let summary = match dialect {
        Dialect::Zola => meta.text("description"),
        Dialect::Hugo => meta.text("summary").or_else(|| meta.text("description")),
        Dialect::Jekyll => meta.text("excerpt").or_else(|| meta.text("description")),
        Dialect::Digestif => None,
    };
    let extra = meta.get("extra");
    let link_text = meta.text("link").or_else(|| {
        extra
            .and_then(|e| e.get("link"))
            .and_then(Value::text)
            .map(str::to_string)
    });
    let link = link_text.and_then(|l| match resolve_link(&l, &ctx.base_url) {
        Ok(url) => Some(url),
        Err(why) => {
            problems.push(at("link", format!("field `link`: {why}")));
            None
        }
    });
    let source = meta
        .text("source")
        .or_else(|| {
            extra
                .and_then(|e| e.get("source"))
                .and_then(Value::text)
                .map(str::to_string)
        })
        .map(|s| normalize_whitespace(&s));

    let slug = meta.text("slug").unwrap_or_else(|| name_slug.to_string());
    let slug = slug::slugify(&slug);
    let Some(date) = date else {
        return Err(problems);
    };
    let permalink = permalink(dialect, meta, path, &slug, &categories, date, ctx);
    if link.is_none() && permalink.is_none() {
        warnings.push(Diagnostic::at(path, 1, "the post's own URL cannot be known: set `permalink` in digestif.toml's [newsletter] (e.g. \"{year}/{month}/{slug}/\"), or give the post a `link`"));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let raw_excerpt = summary
        .clone()
        .unwrap_or_else(|| body.chars().take(4000).collect());
    let tags_removed = super::template_tag_count(&raw_excerpt);
    if tags_removed > 0 {
        warnings.push(Diagnostic::at(
            path,
            1,
            format!("{tags_removed} shortcode or template tag(s) removed from the excerpt"),
        ));
    }
    Ok(Read::Post(Box::new(Post {
        path: path.to_path_buf(),
        title,
        date,
        category,
        tags,
        source: source.filter(|s| !s.is_empty()),
        link,
        permalink,
        excerpt: super::excerpt(summary.as_deref(), body),
        draft,
        language: meta
            .text("lang")
            .or_else(|| meta.text("language"))
            .filter(|l| super::is_language_tag(l)),
    })))
}

/// A date written in the post's URL, `path = "2025/12/19/slug"` (blogs that keep the date
/// only there): "2025-12-19".
fn date_in_url_path(meta: &Meta) -> Option<String> {
    let url = ["path", "url", "permalink"]
        .iter()
        .find_map(|key| meta.text(key))?;
    let parts: Vec<&str> = url.split('/').filter(|p| !p.is_empty()).collect();
    parts.windows(3).find_map(|w| {
        let digits = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_digit());
        (digits(w[0], 4) && digits(w[1], 2) && digits(w[2], 2))
            .then(|| format!("{}-{}-{}", w[0], w[1], w[2]))
    })
}

/// `2024-05-01-slug` or `2024-05-01_slug` → (Some("2024-05-01"), "slug"), as Zola and
/// Jekyll read names; anything else → (None, the name).
fn date_prefix(name: &str) -> (Option<&str>, &str) {
    let bytes = name.as_bytes();
    let is_date = bytes.len() >= 10
        && bytes[..10].iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !is_date {
        return (None, name);
    }
    match bytes.get(10) {
        None => (Some(&name[..10]), name),
        Some(b'-' | b'_') => (Some(&name[..10]), &name[11..]),
        Some(_) => (None, name),
    }
}

/// The post's own page: its explicit URL key, else the config's pattern, else the
/// generator's default.
fn permalink(
    dialect: Dialect,
    meta: &Meta,
    path: &Path,
    slug: &str,
    categories: &[String],
    date: DateTime<Tz>,
    ctx: &ParseContext,
) -> Option<Url> {
    let explicit = match dialect {
        Dialect::Zola => meta.text("path"),
        Dialect::Hugo => meta.text("url"),
        Dialect::Jekyll => meta.text("permalink").filter(|p| !p.contains(':')),
        Dialect::Digestif => None,
    };
    if let Some(mut explicit) = explicit {
        // Zola serves `path = "2025/12/19/slug"` at `…/slug/`.
        if dialect == Dialect::Zola && !explicit.ends_with('/') {
            explicit.push('/');
        }
        return ctx.base_url.join(explicit.trim_start_matches('/')).ok();
    }
    let section = section_of(path, ctx);
    let relative = match &ctx.permalink {
        Some(pattern) => fill_permalink(pattern, slug, &section, categories, date),
        None => match dialect {
            // Zola and Hugo: /<section folders>/<slug>/
            Dialect::Zola | Dialect::Hugo => {
                let mut parts = section.clone();
                parts.push(slug.to_string());
                format!("{}/", parts.join("/"))
            }
            // Jekyll's default "date" style: /:categories/:year/:month/:day/:title.html
            Dialect::Jekyll => {
                let mut parts: Vec<String> = categories.iter().map(|c| c.to_lowercase()).collect();
                parts.push(format!(
                    "{:04}/{:02}/{:02}",
                    date.year(),
                    date.month(),
                    date.day()
                ));
                format!("{}/{slug}.html", parts.join("/"))
            }
            Dialect::Digestif => return None,
        },
    };
    ctx.base_url.join(relative.trim_start_matches('/')).ok()
}

/// `{year}/{month}/{day}/{slug}/`, with `{section}` and `{category}` too.
pub(crate) fn fill_permalink(
    pattern: &str,
    slug: &str,
    section: &[String],
    categories: &[String],
    date: DateTime<Tz>,
) -> String {
    pattern
        .replace("{year}", &format!("{:04}", date.year()))
        .replace("{month}", &format!("{:02}", date.month()))
        .replace("{day}", &format!("{:02}", date.day()))
        .replace("{slug}", slug)
        .replace("{section}", &section.join("/"))
        .replace(
            "{category}",
            &categories.first().map(slug::slugify).unwrap_or_default(),
        )
}

/// The folders between the content root and the post (a bundle's own folder excluded):
/// `content/blog/2024/post.md` → ["blog", "2024"].
fn section_of(path: &Path, ctx: &ParseContext) -> Vec<String> {
    let parent = path.parent().unwrap_or(Path::new(""));
    let is_bundle = path.file_stem().is_some_and(|s| s == "index");
    let folder = if is_bundle {
        parent.parent().unwrap_or(Path::new(""))
    } else {
        parent
    };
    let Ok(rel) = folder.strip_prefix(&ctx.content_root) else {
        return Vec::new();
    };
    rel.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .filter(|s| s != "_posts")
        .collect()
}

/// A key one or two edits from a key this dialect reads, and not itself one: a typo the
/// generator would silently ignore.
fn typo_warnings(dialect: Dialect, meta: &Meta, path: &Path, warnings: &mut Vec<Diagnostic>) {
    let known = dialect.known_keys();
    for key in meta.keys() {
        if known.contains(&key.as_str()) {
            continue;
        }
        let close = known
            .iter()
            .copied()
            .filter(|k| strsim::damerau_levenshtein(&key, k) <= if k.len() <= 4 { 1 } else { 2 })
            .min_by_key(|k| strsim::damerau_levenshtein(&key, k));
        if let Some(close) = close {
            warnings.push(
                Diagnostic::at(
                    path,
                    meta.line(&key),
                    format!("unknown key `{key}` ({} ignores it)", dialect.name()),
                )
                .with_help(format!("did you mean `{close}`?")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_slugs_come_from_names_as_generators_read_them() {
        assert_eq!(
            date_prefix("2024-05-01-hello-world"),
            (Some("2024-05-01"), "hello-world")
        );
        assert_eq!(
            date_prefix("2024-05-01_hello"),
            (Some("2024-05-01"), "hello")
        );
        assert_eq!(date_prefix("hello"), (None, "hello"));
        assert_eq!(date_prefix("2024-05-01x"), (None, "2024-05-01x"));
    }

    #[test]
    fn toml_keys_tell_zola_from_hugo_from_ours() {
        let keys = |k: &[&str]| k.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            toml_dialect_of(&keys(&["title", "date", "taxonomies"])),
            Dialect::Zola
        );
        assert_eq!(
            toml_dialect_of(&keys(&["title", "date", "categories"])),
            Dialect::Hugo
        );
        assert_eq!(
            toml_dialect_of(&keys(&["title", "date", "categroy"])),
            Dialect::Digestif
        );
    }
}
