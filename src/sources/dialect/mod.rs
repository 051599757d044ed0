//! Front matter as Zola, Hugo and Jekyll write it, read as it is: each dialect's keys are
//! mapped onto the same [`Post`]; keys a generator ignores (theme keys, `math = true`) are
//! ignored here too, but a key one typo away from one we read is a warning.

mod meta;
mod permalink;
mod post;

use std::path::Path;

use super::Post;
use crate::error::Diagnostic;
pub(crate) use meta::{Meta, Value};
pub(crate) use permalink::fill_permalink;
pub(crate) use post::{date_prefix, to_post};

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
    pub(super) fn known_keys(self) -> &'static [&'static str] {
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
                "build",
                "_build",
                "headless",
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
    "render",
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

/// Which dialect a `+++` file speaks, from its keys, when the site does not say. A key
/// of neither generator that is one typo from ours (`categroy`) keeps our strict format,
/// which reports it; any other key (`author`, `render`) is a generator's file, never ours.
pub(crate) fn toml_dialect_of(keys: &[String]) -> Dialect {
    if keys.iter().any(|k| ZOLA_ONLY.contains(&k.as_str())) {
        return Dialect::Zola;
    }
    if keys.iter().any(|k| HUGO_ONLY.contains(&k.as_str())) {
        return Dialect::Hugo;
    }
    let foreign = keys.iter().any(|k| {
        !OURS.contains(&k.as_str())
            && !OURS
                .iter()
                .any(|ours| strsim::damerau_levenshtein(k, ours) <= 2)
    });
    if foreign {
        Dialect::Zola
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

/// What a generator's file turned out to be.
#[derive(Debug)]
pub enum Read {
    Post(Box<Post>),
    /// Not a post (a section index, a page without a date): why.
    NotAPost(String),
}

/// Keys that themes commonly read and generators pass through: never a typo, even when
/// one edit from a key we read (`authors` and `author`).
const THEME_KEYS: &[&str] = &[
    "authors",
    "author",
    "image",
    "images",
    "toc",
    "comments",
    "featured",
    "cover",
    "thumbnail",
    "series",
    "math",
    "mathjax",
    "katex",
    "share",
    "hidden",
    "header",
    "sidebar",
    "last_modified_at",
    "excerpt_separator",
    "pin",
    "sticky",
    "featured_image",
    "banner",
    "lang",
    "language",
    "translationKey",
    "menu",
    "showToc",
    "robots",
    "canonical",
];

/// A key one or two edits from a key this dialect reads, and not itself one: a typo the
/// generator would silently ignore.
fn typo_warnings(dialect: Dialect, meta: &Meta, path: &Path, warnings: &mut Vec<Diagnostic>) {
    let known = dialect.known_keys();
    for key in meta.keys() {
        if known.contains(&key.as_str()) || THEME_KEYS.contains(&key.as_str()) {
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
    use super::post::date_prefix;
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
        assert_eq!(
            toml_dialect_of(&keys(&["title", "date", "author"])),
            Dialect::Zola,
            "a key of no format of ours is a generator's file"
        );
    }
}
