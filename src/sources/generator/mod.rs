//! A generator's own settings (Hugo, Jekyll, Zola), read as the generator reads them: the
//! site's name, address, language and time zone for `init`, and the rules that decide each
//! post's URL, so that a digest links to the page the generator really writes.

mod hugo;
mod jekyll;
mod tree;
mod zola;

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset};
use chrono_tz::Tz;
use url::Url;

use super::dialect::Meta;
use super::Dialect;

/// What a site's config says, as far as a digest needs it.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    pub dialect: Dialect,
    /// The folder that holds the config file.
    pub root: PathBuf,
    /// The config file read (the first one, for a Hugo config folder).
    pub file: PathBuf,
    pub title: Option<String>,
    pub base_url: Option<Url>,
    /// Two-letter language of the site, when it says.
    pub language: Option<String>,
    pub timezone: Option<Tz>,
    /// The folder that holds the blog's posts, as `init` proposes it.
    pub posts_dir: PathBuf,
    pub(crate) rules: Rules,
}

/// How each generator turns a post into a URL.
#[derive(Debug, Clone)]
pub(crate) enum Rules {
    Hugo(hugo::Rules),
    Jekyll(jekyll::Rules),
    Zola(zola::Rules),
}

/// A generator's config that is there but cannot be read: whose it is, and why (the
/// message names the file, and the line when the parser gives one).
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub dialect: Dialect,
    pub file: PathBuf,
    pub line: Option<usize>,
    pub why: String,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.why),
            None => write!(f, "{}: {}", self.file.display(), self.why),
        }
    }
}

/// One of `dialect`'s config files, read.
fn read(dialect: Dialect, path: &Path) -> Result<serde_json::Value, Unreadable> {
    tree::read_file(path).map_err(|(line, why)| Unreadable {
        dialect,
        file: path.to_path_buf(),
        line,
        why,
    })
}

/// What the URL rules look at in one post.
pub(crate) struct Page<'a> {
    pub path: &'a Path,
    pub meta: &'a Meta,
    pub title: &'a str,
    /// The date as written (its own offset), which the URL's date tokens come from.
    pub date: DateTime<FixedOffset>,
    pub categories: &'a [String],
}

impl SiteConfig {
    /// The site whose config sits in `posts_dir` or one of the four folders above it.
    /// `Ok(None)`: no generator's config there; `Err`: one is there but cannot be read.
    pub fn find(posts_dir: &Path) -> Result<Option<SiteConfig>, Unreadable> {
        let Ok(start) = std::path::absolute(posts_dir) else {
            return Ok(None);
        };
        for dir in start.ancestors().take(5) {
            if let Some(site) = SiteConfig::at(dir)? {
                return Ok(Some(site));
            }
        }
        Ok(None)
    }

    /// The site whose root is `dir`, if a generator's config is there.
    pub fn at(dir: &Path) -> Result<Option<SiteConfig>, Unreadable> {
        if let Some(site) = jekyll::load(dir)? {
            return Ok(Some(site));
        }
        if let Some(site) = zola::load(dir)? {
            return Ok(Some(site));
        }
        hugo::load(dir)
    }

    /// The post's page relative to the site's address (`2024/05/hello/`), `None` when
    /// these rules cannot know it.
    pub(crate) fn page_path(&self, page: &Page) -> Option<String> {
        match &self.rules {
            Rules::Hugo(rules) => hugo::page_path(rules, page),
            Rules::Jekyll(rules) => jekyll::page_path(rules, page),
            Rules::Zola(rules) => zola::page_path(rules, page),
        }
    }

    /// The language of a post written in another language than the site's default (a
    /// Hugo translation: `post.fr.md`, or a file in French's content folder).
    pub(crate) fn other_language(&self, path: &Path) -> Option<String> {
        match &self.rules {
            Rules::Hugo(rules) => hugo::other_language(rules, path),
            Rules::Zola(rules) => zola::other_language(rules, path),
            Rules::Jekyll(_) => None,
        }
    }

    /// Where sections start (Hugo: the default language's content folder).
    pub(crate) fn content_root(&self) -> PathBuf {
        match &self.rules {
            Rules::Hugo(rules) => rules.default_content_dir(),
            Rules::Jekyll(_) => self.root.clone(),
            Rules::Zola(rules) => rules.content_dir.clone(),
        }
    }
}

/// `pattern` with each `:token` replaced by `value(token)`; a token it does not know stays
/// as written. Tokens are letters, digits and `_` (Hugo's and Jekyll's permalinks alike).
fn fill_tokens(pattern: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find(':') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let len = after
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(after.len());
        let token = &after[..len];
        out.push_str(&value(token).unwrap_or_else(|| format!(":{token}")));
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// The first of `names` that is a file in `dir`.
fn first_file(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// A base URL with a trailing slash, so that joining keeps its path.
fn base_url(text: Option<String>) -> Option<Url> {
    let mut text = text?;
    if !text.ends_with('/') {
        text.push('/');
    }
    Url::parse(&text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
}

/// "fr-FR", "fr_FR", "FR" → "fr".
fn two_letters(tag: Option<String>) -> Option<String> {
    let tag = tag?;
    let primary = tag.split(['-', '_']).next()?.to_ascii_lowercase();
    (primary.len() == 2 && primary.chars().all(|c| c.is_ascii_alphabetic())).then_some(primary)
}

/// The first of `candidates` (relative to `base`) that is a folder, else `base`.
fn first_folder(base: &Path, candidates: &[String]) -> PathBuf {
    candidates
        .iter()
        .map(|c| base.join(c))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| base.to_path_buf())
}

/// A file's name without its extension; for a page bundle (`index.md`), its folder's name.
pub(crate) fn page_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if is_bundle_index(path) {
        if let Some(folder) = path.parent().and_then(Path::file_name) {
            return folder.to_string_lossy().into_owned();
        }
    }
    stem
}

/// A page bundle's content file: `index.md`, or a translation of it (`index.fr.md`).
fn is_bundle_index(path: &Path) -> bool {
    path.file_stem()
        .map(|s| s.to_string_lossy())
        .is_some_and(|s| s == "index" || s.starts_with("index."))
}

/// The folders between `root` and the post (a bundle's own folder excluded), whether each
/// is written relative or absolute: `content/blog/2024/post.md` → ["blog", "2024"].
pub(crate) fn sections(path: &Path, root: &Path) -> Vec<String> {
    let parent = path.parent().unwrap_or(Path::new(""));
    let folder = if is_bundle_index(path) {
        parent.parent().unwrap_or(Path::new(""))
    } else {
        parent
    };
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    absolute(folder)
        .strip_prefix(absolute(root))
        .map(|rel| {
            rel.components()
                .filter_map(|c| match c {
                    std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}
