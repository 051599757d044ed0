//! Zola: `zola.toml`/`config.toml`'s `base_url`, `title`, `default_language` and
//! `[slugify] paths`.

use std::path::{Path, PathBuf};

use super::tree::{self, get, text};
use super::{base_url, first_file, first_folder, page_name, sections, two_letters, Page};
use super::{Dialect, Rules as AnyRules, SiteConfig, Unreadable};

#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub(super) content_dir: PathBuf,
    slugify: Slugify,
    /// `[slugify] paths_keep_dates`: a dated file name keeps its date in the URL.
    keep_dates: bool,
    /// The site's other languages (`[languages.fr]`): `page.fr.md` is French's.
    other_languages: Vec<String>,
}

/// `[slugify] paths`: how a file's name becomes its URL.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slugify {
    On,
    Safe,
    Off,
}

/// The Zola site whose root is `dir`, if there is one.
pub(super) fn load(dir: &Path) -> Result<Option<SiteConfig>, Unreadable> {
    let Some(file) = first_file(dir, &["zola.toml", "config.toml"]) else {
        return Ok(None);
    };
    let value = super::read(Dialect::Zola, &file)?;
    if get(&value, "base_url").is_none() {
        return Ok(None);
    }
    let settings = get(&value, "slugify");
    let keep_dates = settings.and_then(|s| tree::flag(s, "paths_keep_dates")) == Some(true);
    let other_languages = match get(&value, "languages") {
        Some(serde_json::Value::Object(table)) => table.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let slugify = match settings.and_then(|s| text(s, "paths")).as_deref() {
        Some("safe") => Slugify::Safe,
        Some("off") => Slugify::Off,
        _ => Slugify::On,
    };
    let content_dir = dir.join("content");
    let candidates = ["blog", "posts", "post", "articles"].map(String::from);
    Ok(Some(SiteConfig {
        dialect: Dialect::Zola,
        root: dir.to_path_buf(),
        file,
        title: text(&value, "title"),
        base_url: base_url(text(&value, "base_url")),
        language: two_letters(text(&value, "default_language")),
        timezone: None,
        posts_dir: first_folder(&content_dir, &candidates),
        rules: AnyRules::Zola(Rules {
            content_dir,
            slugify,
            keep_dates,
            other_languages,
        }),
    }))
}

/// The post's page relative to the site's address, as Zola writes it.
pub(super) fn page_path(rules: &Rules, page: &Page) -> Option<String> {
    if let Some(mut path) = page.meta.text("path") {
        if !path.ends_with('/') {
            path.push('/');
        }
        return Some(path.trim_start_matches('/').to_string());
    }
    let path = std::path::absolute(page.path).ok()?;
    let name = page_name(&path);
    let name = match crate::sources::dialect::date_prefix(&name) {
        (Some(_), rest) if rest != name && !rules.keep_dates => rest.to_string(),
        _ => name,
    };
    let slug = slugify(&page.meta.text("slug").unwrap_or(name), rules.slugify);
    let mut parts = sections(&path, &rules.content_dir);
    parts.push(slug);
    Some(format!("{}/", parts.join("/")))
}

/// The language of `page.fr.md` when French is one of the site's other languages.
pub(super) fn other_language(rules: &Rules, path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_string_lossy().into_owned();
    let (_, code) = stem.rsplit_once('.')?;
    rules
        .other_languages
        .iter()
        .find(|l| l.as_str() == code)
        .cloned()
}

fn slugify(text: &str, how: Slugify) -> String {
    match how {
        Slugify::On => slug::slugify(text),
        // Only what no file system allows: NTFS's forbidden characters, and spaces and
        // dots at the end.
        Slugify::Safe => text
            .trim_end_matches([' ', '.'])
            .chars()
            .filter(|c| !r#"<>:"/\|?*"#.contains(*c))
            .collect(),
        Slugify::Off => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugify_paths_as_zola_documents_them() {
        assert_eq!(slugify("Mon Billet: été", Slugify::On), "mon-billet-ete");
        assert_eq!(slugify("Mon Billet: été.", Slugify::Safe), "Mon Billet été");
        assert_eq!(slugify("Mon Billet", Slugify::Off), "Mon Billet");
    }
}
