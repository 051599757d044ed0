//! Jekyll: `_config.yml`'s `url`, `baseurl`, `title`, `lang`, `timezone`, `permalink`
//! (a named style or a pattern) and the `permalink` of `defaults` scopes.

use std::path::Path;

use chrono::{Datelike, FixedOffset, TimeZone};
use chrono_tz::Tz;
use serde_json::Value;

use super::tree::{get, text};
use super::{base_url, first_file, two_letters, Page};
use super::{Dialect, Rules as AnyRules, SiteConfig, Unreadable};

#[derive(Debug, Clone)]
pub(crate) struct Rules {
    root: std::path::PathBuf,
    permalink: String,
    /// `defaults` scopes that set a permalink: (path prefix, pattern).
    scoped: Vec<(String, String)>,
    /// Jekyll reads dates without an offset, and shows every date, in the site's zone.
    timezone: Option<Tz>,
}

/// The Jekyll site whose root is `dir`, if there is one.
pub(super) fn load(dir: &Path) -> Result<Option<SiteConfig>, Unreadable> {
    let Some(file) = first_file(dir, &["_config.yml", "_config.yaml", "_config.toml"]) else {
        return Ok(None);
    };
    let value = super::read(Dialect::Jekyll, &file)?;
    let timezone: Option<Tz> = text(&value, "timezone").and_then(|z| z.parse().ok());
    let baseurl = text(&value, "baseurl")
        .unwrap_or_default()
        .trim_matches('/')
        .to_string();
    let address = text(&value, "url").map(|url| {
        let url = url.trim_end_matches('/');
        if baseurl.is_empty() {
            url.to_string()
        } else {
            format!("{url}/{baseurl}")
        }
    });
    Ok(Some(SiteConfig {
        dialect: Dialect::Jekyll,
        root: dir.to_path_buf(),
        file,
        title: text(&value, "title"),
        base_url: base_url(address),
        language: two_letters(text(&value, "lang").or_else(|| text(&value, "locale"))),
        timezone,
        posts_dir: posts_dir(dir),
        rules: AnyRules::Jekyll(Rules {
            root: dir.to_path_buf(),
            // The posts collection's own permalink wins over the site's.
            permalink: get(&value, "collections")
                .and_then(|c| get(c, "posts"))
                .and_then(|p| text(p, "permalink"))
                .or_else(|| text(&value, "permalink"))
                .unwrap_or_else(|| "date".into()),
            scoped: scoped_permalinks(&value),
            timezone,
        }),
    }))
}

/// `_posts`, or the whole site when category folders hold their own `_posts` too
/// (`news/_posts/…`), which Jekyll reads as well.
fn posts_dir(dir: &Path) -> std::path::PathBuf {
    let nested = walkdir::WalkDir::new(dir)
        .min_depth(2)
        .max_depth(4)
        .into_iter()
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            !(name.starts_with('.')
                || name == "_site"
                || name == "node_modules"
                || name == "vendor")
        })
        .filter_map(Result::ok)
        .any(|e| e.file_type().is_dir() && e.file_name() == "_posts");
    if nested {
        dir.to_path_buf()
    } else {
        dir.join("_posts")
    }
}

/// `defaults: [{scope: {path: "blog", type: posts}, values: {permalink: …}}]`.
fn scoped_permalinks(value: &Value) -> Vec<(String, String)> {
    let Some(Value::Array(defaults)) = get(value, "defaults") else {
        return Vec::new();
    };
    defaults
        .iter()
        .filter_map(|d| {
            let scope = get(d, "scope");
            let kind = scope.and_then(|s| text(s, "type"));
            if kind.as_deref().is_some_and(|k| k != "posts") {
                return None;
            }
            let path = scope.and_then(|s| text(s, "path")).unwrap_or_default();
            let permalink = get(d, "values").and_then(|v| text(v, "permalink"))?;
            Some((path.trim_matches('/').to_string(), permalink))
        })
        .collect()
}

/// A named style's pattern (Jekyll's `date`, `pretty`, `ordinal`, `weekdate`, `none`).
fn expand_style(style: &str) -> &str {
    match style {
        "date" => "/:categories/:year/:month/:day/:title:output_ext",
        "pretty" => "/:categories/:year/:month/:day/:title/",
        "ordinal" => "/:categories/:year/:y_day/:title:output_ext",
        "weekdate" => "/:categories/:year/W:week/:short_day/:title:output_ext",
        "none" => "/:categories/:title:output_ext",
        pattern => pattern,
    }
}

/// The post's page relative to the site's address, as Jekyll writes it.
pub(super) fn page_path(rules: &Rules, page: &Page) -> Option<String> {
    let path = std::path::absolute(page.path).ok()?;
    let relative = path.strip_prefix(&rules.root).unwrap_or(&path);
    let relative_text = relative.to_string_lossy();
    let pattern = page
        .meta
        .text("permalink")
        .or_else(|| {
            rules
                .scoped
                .iter()
                .filter(|(scope, _)| scope.is_empty() || relative_text.starts_with(scope.as_str()))
                .max_by_key(|(scope, _)| scope.len())
                .map(|(_, p)| p.clone())
        })
        .unwrap_or_else(|| rules.permalink.clone());
    let pattern = expand_style(&pattern);
    let date = match rules.timezone {
        Some(zone) => zone
            .from_utc_datetime(&page.date.naive_utc())
            .fixed_offset(),
        None => page.date,
    };
    let name = file_slug(&path);
    let title_source = page.meta.text("slug").unwrap_or_else(|| name.clone());
    let mut categories: Vec<String> = folder_categories(relative);
    categories.extend(page.categories.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    categories.retain(|c| seen.insert(c.to_lowercase()));
    let filled = fill(pattern, date, &title_source, &categories);
    Some(clean(&filled))
}

/// The date-less name of a post file (`2024-05-01-hello.md` → `hello`).
fn file_slug(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match crate::sources::dialect::date_prefix(&stem) {
        (Some(_), rest) => rest.to_string(),
        (None, name) => name.to_string(),
    }
}

/// The folders above `_posts` are categories (`news/_posts/a.md` → `news`).
fn folder_categories(relative: &Path) -> Vec<String> {
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.iter().position(|p| p == "_posts") {
        Some(at) => parts[..at].to_vec(),
        None => Vec::new(),
    }
}

fn fill(
    pattern: &str,
    date: chrono::DateTime<FixedOffset>,
    title: &str,
    categories: &[String],
) -> String {
    super::fill_tokens(pattern, |token| {
        Some(match token {
            "year" => date.format("%Y").to_string(),
            "short_year" => date.format("%y").to_string(),
            "month" => date.format("%m").to_string(),
            "i_month" => date.month().to_string(),
            "short_month" => date.format("%b").to_string(),
            "long_month" => date.format("%B").to_string(),
            "day" => date.format("%d").to_string(),
            "i_day" => date.day().to_string(),
            "y_day" => date.format("%j").to_string(),
            "week" => date.format("%V").to_string(),
            "short_day" => date.format("%a").to_string(),
            "long_day" => date.format("%A").to_string(),
            "hour" => date.format("%H").to_string(),
            "minute" => date.format("%M").to_string(),
            "second" => date.format("%S").to_string(),
            "title" => slugify(title, true, true),
            "slug" => slugify(title, false, false),
            "categories" => categories
                .iter()
                .map(|c| c.to_lowercase())
                .collect::<Vec<_>>()
                .join("/"),
            // Markdown and HTML posts alike are written as .html.
            "output_ext" => ".html".to_string(),
            _ => return None,
        })
    })
}

/// Jekyll's `Utils.slugify`: runs of other characters become one `-`; the "pretty" mode
/// keeps `._~!$&'()+,;=@` too, and `cased` keeps the letters' case.
fn slugify(text: &str, pretty: bool, cased: bool) -> String {
    let keep = |c: char| c.is_alphanumeric() || (pretty && "._~!$&'()+,;=@".contains(c));
    let mut out = String::new();
    for c in text.chars() {
        if keep(c) {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-');
    if cased {
        out.to_string()
    } else {
        out.to_lowercase()
    }
}

/// Jekyll's URL clean-up: repeated slashes to one, no leading slash (the caller joins it
/// to the site's address).
fn clean(url: &str) -> String {
    let mut out = String::new();
    for c in url.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    out.trim_start_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_keep_dots_and_case_as_jekyll_does() {
        assert_eq!(slugify("homebrew-1.1.0", true, true), "homebrew-1.1.0");
        assert_eq!(
            slugify("Deploying at Heroku", true, true),
            "Deploying-at-Heroku"
        );
        assert_eq!(
            slugify("Deploying at Heroku!", false, false),
            "deploying-at-heroku"
        );
        assert_eq!(clean("//2024//05/a.html"), "2024/05/a.html");
    }
}
