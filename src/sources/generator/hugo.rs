//! Hugo: `hugo.*`/`config.*` and the `config/_default/` folder; `baseURL`, `title`,
//! `languageCode`, `timeZone`, `contentDir` (per language too), `[permalinks]`, `uglyURLs`,
//! `disablePathToLower`, `params.mainSections`.

use std::path::{Path, PathBuf};

use chrono::{Datelike, Weekday};
use serde_json::Value;

use super::tree::{self, flag, get, text};
use super::{base_url, first_file, first_folder, page_name, sections, two_letters, Page};
use super::{Dialect, Rules as AnyRules, SiteConfig, Unreadable};

const NAMES: &[&str] = &[
    "hugo.toml",
    "hugo.yaml",
    "hugo.yml",
    "hugo.json",
    "config.toml",
    "config.yaml",
    "config.yml",
    "config.json",
];

#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// Section → pattern (`posts` → `/:year/:month/:slug/`).
    permalinks: Vec<(String, String)>,
    /// `uglyURLs`: for the whole site, or per section (`[uglyURLs] post = true`).
    ugly: bool,
    ugly_sections: Vec<(String, bool)>,
    lowercase: bool,
    languages: Vec<Language>,
}

#[derive(Debug, Clone)]
struct Language {
    code: String,
    content_dir: PathBuf,
    /// `fr/` for a language served under its own folder, else empty.
    prefix: String,
}

impl Rules {
    pub(super) fn default_content_dir(&self) -> PathBuf {
        self.languages[0].content_dir.clone()
    }
}

/// The Hugo site whose root is `dir`, if there is one.
pub(super) fn load(dir: &Path) -> Result<Option<SiteConfig>, Unreadable> {
    let root_file = first_file(dir, NAMES);
    let config_dir = dir.join("config").join("_default");
    let dir_files: Vec<PathBuf> = std::fs::read_dir(&config_dir)
        .map(|entries| {
            let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            files.sort();
            files
        })
        .unwrap_or_default();
    let Some(file) = root_file.clone().or_else(|| first_file(&config_dir, NAMES)) else {
        return Ok(None);
    };
    let mut value = Value::Null;
    if let Some(root_file) = &root_file {
        value = super::read(Dialect::Hugo, root_file)?;
        // A `config.toml` without Hugo's keys is someone else's (Zola's is read first).
        if get(&value, "baseURL").is_none() && !is_hugo_name(root_file) {
            return Ok(None);
        }
    }
    for path in dir_files.iter().filter(|p| is_config_file(p)) {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let part = super::read(Dialect::Hugo, path)?;
        // `params.toml` is the `params` table; `menus.fr.toml` is French's `menus`, and
        // `languages.fr.toml` French's own table.
        let part = match stem.split_once('.') {
            _ if matches!(stem, "hugo" | "config") => part,
            Some(("languages", language)) => serde_json::json!({ "languages": { language: part } }),
            Some((key, language)) => {
                serde_json::json!({ "languages": { language: { key: part } } })
            }
            None => serde_json::json!({ stem: part }),
        };
        tree::merge_under(&mut value, part);
    }
    Ok(Some(site(dir, file, &value)))
}

fn is_hugo_name(path: &Path) -> bool {
    path.file_stem().is_some_and(|s| s == "hugo")
}

fn is_config_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e == "toml" || e == "yaml" || e == "yml" || e == "json")
}

fn site(dir: &Path, file: PathBuf, value: &Value) -> SiteConfig {
    let default_language = text(value, "defaultContentLanguage").unwrap_or_else(|| "en".into());
    let languages = languages(dir, value, &default_language);
    let main_sections: Vec<String> = get(value, "params")
        .and_then(|p| get(p, "mainSections"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut candidates = main_sections;
    candidates.extend(["posts", "post", "blog", "articles"].map(String::from));
    let content_dir = &languages[0].content_dir;
    SiteConfig {
        dialect: Dialect::Hugo,
        root: dir.to_path_buf(),
        file,
        title: text(value, "title"),
        base_url: base_url(text(value, "baseURL")),
        language: two_letters(text(value, "languageCode").or(Some(default_language))),
        timezone: text(value, "timeZone").and_then(|z| z.parse().ok()),
        posts_dir: first_folder(content_dir, &candidates),
        rules: AnyRules::Hugo(Rules {
            permalinks: permalinks(value),
            ugly: flag(value, "uglyURLs").unwrap_or(false),
            ugly_sections: match get(value, "uglyURLs") {
                Some(Value::Object(map)) => map
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_bool()?)))
                    .collect(),
                _ => Vec::new(),
            },
            lowercase: !flag(value, "disablePathToLower").unwrap_or(false),
            languages,
        }),
    }
}

/// The site's languages, the default first, each with its content folder and URL prefix.
fn languages(dir: &Path, value: &Value, default: &str) -> Vec<Language> {
    let content_dir = text(value, "contentDir").unwrap_or_else(|| "content".into());
    let in_subdir = flag(value, "defaultContentLanguageInSubdir").unwrap_or(false);
    let mut languages = vec![Language {
        code: default.to_string(),
        content_dir: dir.join(&content_dir),
        prefix: if in_subdir {
            format!("{default}/")
        } else {
            String::new()
        },
    }];
    let Some(Value::Object(table)) = get(value, "languages") else {
        return languages;
    };
    for (code, settings) in table {
        let own_dir = text(settings, "contentDir").map(|d| dir.join(d));
        if code.eq_ignore_ascii_case(default) {
            if let Some(own_dir) = own_dir {
                languages[0].content_dir = own_dir;
            }
            continue;
        }
        languages.push(Language {
            code: code.to_lowercase(),
            content_dir: own_dir.unwrap_or_else(|| dir.join(&content_dir)),
            prefix: format!("{}/", code.to_lowercase()),
        });
    }
    languages
}

/// `[permalinks]`, in either form: `posts = "…"` or (Hugo ≥ 0.120) `[permalinks.page]`.
fn permalinks(value: &Value) -> Vec<(String, String)> {
    let Some(Value::Object(table)) = get(value, "permalinks") else {
        return Vec::new();
    };
    let table = match get(&Value::Object(table.clone()), "page") {
        Some(Value::Object(page)) => page.clone(),
        _ => table.clone(),
    };
    table
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
        .collect()
}

/// The post's page relative to the site's address, as Hugo writes it.
pub(super) fn page_path(rules: &Rules, page: &Page) -> Option<String> {
    if let Some(url) = page.meta.text("url") {
        return Some(url.trim_start_matches('/').to_string());
    }
    let path = std::path::absolute(page.path).ok()?;
    let (language, name) = language_of(rules, &path);
    let sections = sections(&path, &language.content_dir);
    let slug = page.meta.text("slug");
    let pattern = sections.first().and_then(|s| {
        rules
            .permalinks
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(s))
            .map(|(_, p)| p)
    });
    let mut relative = match pattern {
        Some(pattern) => fill(pattern, page, &sections, slug.as_deref(), &name, rules),
        None => {
            let mut parts: Vec<String> = sections.iter().map(|s| urlize(s, rules)).collect();
            parts.push(urlize(slug.as_deref().unwrap_or(&name), rules));
            format!("{}/", parts.join("/"))
        }
    };
    let ugly = sections
        .first()
        .and_then(|s| {
            rules
                .ugly_sections
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(s))
        })
        .map_or(rules.ugly, |(_, on)| *on);
    if ugly && relative.ends_with('/') && relative.len() > 1 {
        relative.pop();
        relative.push_str(".html");
    }
    Some(format!(
        "{}{}",
        language.prefix,
        relative.trim_start_matches('/')
    ))
}

/// The language a content file is in (its content folder, or `name.fr.md`), and the
/// file's name without the language.
fn language_of<'a>(rules: &'a Rules, path: &Path) -> (&'a Language, String) {
    let name = page_name(path);
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some((base, code)) = stem.rsplit_once('.') {
        if let Some(language) = rules
            .languages
            .iter()
            .find(|l| l.code == code.to_lowercase())
        {
            let name = if base == "index" {
                name
            } else {
                base.to_string()
            };
            return (language, name);
        }
    }
    // The deepest content folder holding the file; languages sharing one folder are the
    // default's (listed first), unless the name says otherwise.
    let by_folder = rules
        .languages
        .iter()
        .rev()
        .filter(|l| path.starts_with(&l.content_dir))
        .max_by_key(|l| l.content_dir.components().count());
    (by_folder.unwrap_or(&rules.languages[0]), name)
}

/// The language code of a file that is not in the site's default language.
pub(super) fn other_language(rules: &Rules, path: &Path) -> Option<String> {
    let path = std::path::absolute(path).ok()?;
    let (language, _) = language_of(rules, &path);
    (language.code != rules.languages[0].code).then(|| language.code.clone())
}

/// A `[permalinks]` pattern with Hugo's tokens filled.
fn fill(
    pattern: &str,
    page: &Page,
    sections: &[String],
    slug: Option<&str>,
    name: &str,
    rules: &Rules,
) -> String {
    let date = page.date;
    let title = urlize(page.title, rules);
    super::fill_tokens(pattern, |token| {
        Some(match token {
            "year" => format!("{:04}", date.year()),
            "month" => format!("{:02}", date.month()),
            "monthname" => month_name(date.month()).to_lowercase(),
            "day" => format!("{:02}", date.day()),
            "weekday" => date.weekday().num_days_from_sunday().to_string(),
            "weekdayname" => weekday_name(date.weekday()).to_lowercase(),
            "yearday" => date.ordinal().to_string(),
            "section" => sections
                .first()
                .map(|s| urlize(s, rules))
                .unwrap_or_default(),
            "sections" => sections
                .iter()
                .map(|s| urlize(s, rules))
                .collect::<Vec<_>>()
                .join("/"),
            "title" => title.clone(),
            "slug" => slug.map_or_else(|| title.clone(), |s| urlize(s, rules)),
            "filename" | "contentbasename" => urlize(name, rules),
            "slugorfilename" | "slugorcontentbasename" => urlize(slug.unwrap_or(name), rules),
            _ => return None,
        })
    })
}

/// Hugo's `urlize` for a path part: letters, digits and `._-#+~@` kept, spaces to one `-`,
/// the rest dropped; lower case unless `disablePathToLower`.
fn urlize(text: &str, rules: &Rules) -> String {
    let mut out = String::new();
    let mut was_hyphen = false;
    for c in text.chars() {
        if c.is_alphanumeric() || "._-#+~@".contains(c) {
            was_hyphen = c == '-';
            out.push(c);
        } else if c.is_whitespace() && !was_hyphen {
            out.push('-');
            was_hyphen = true;
        }
    }
    if rules.lowercase {
        out.to_lowercase()
    } else {
        out
    }
}

fn month_name(month: u32) -> &'static str {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    NAMES[(month as usize + 11) % 12]
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}
