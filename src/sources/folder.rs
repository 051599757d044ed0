//! A posts folder walked: every post file read in any dialect, with the problems, the
//! warnings and the files that are not posts.

use std::path::{Path, PathBuf};

use chrono::DateTime;
use chrono_tz::Tz;

use super::dialect::{self, Meta};
use super::{dates, split_any, Dialect, ParseContext, Post};
use crate::error::{line_col, Diagnostic, Error, Result};

/// What [`load`] found under `posts_dir`.
#[derive(Debug, Default)]
pub struct Loaded {
    pub posts: Vec<Post>,
    /// Files that are posts but cannot be read as they are, with the date when it was
    /// readable (a problem outside the week being sent does not block it).
    pub problems: Vec<Problem>,
    /// Legal but probably unintended: a typo a generator ignores, a post without a URL.
    pub warnings: Vec<Diagnostic>,
    /// Files that are not posts (a section index, a page without a date), and why.
    pub skipped: Vec<(PathBuf, String)>,
    /// The generator the folder was read as, when there is one.
    pub site: Option<Dialect>,
}

/// A post file that cannot be used.
#[derive(Debug, Clone)]
pub struct Problem {
    pub diagnostic: Diagnostic,
    /// The post's date, when that much could be read.
    pub date: Option<DateTime<Tz>>,
}

impl Loaded {
    /// The problems' diagnostics, for `check` and errors.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        self.problems.iter().map(|p| p.diagnostic.clone()).collect()
    }
}

/// Read and parse every post file under `dir` (sorted by path for stable output), leaving
/// out what `ctx.exclude` matches.
pub fn load(dir: &Path, ctx: &ParseContext) -> Result<Loaded> {
    if !dir.is_dir() {
        return Err(Error::io(
            "read posts folder",
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder"),
        ));
    }
    let mut loaded = Loaded {
        site: ctx.site,
        ..Loaded::default()
    };
    loaded.warnings.extend(ctx.site_problem.clone());
    let walker = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0
                || !(e.file_name().to_string_lossy().starts_with('.')
                    || (e.file_type().is_dir() && !site_reads_folder(ctx.site, e.file_name()))
                    || e.path()
                        .strip_prefix(dir)
                        .is_ok_and(|rel| ctx.exclude.is_match(rel)))
        });
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let path = e.path().unwrap_or(dir).to_path_buf();
                loaded.problems.push(Problem {
                    diagnostic: Diagnostic::new(&path, format!("cannot read: {e}")),
                    date: None,
                });
                continue;
            }
        };
        let path = entry.path();
        if !entry.file_type().is_file() || !is_post_file(path, ctx.site) {
            continue;
        }
        if !in_posts_folder(path, ctx.site) {
            continue;
        }
        let text = match read_text(path) {
            Ok(text) => text,
            Err(diagnostic) => {
                loaded.problems.push(Problem {
                    diagnostic,
                    date: None,
                });
                continue;
            }
        };
        match read(path, &text, ctx, &mut loaded.warnings) {
            Ok(dialect::Read::Post(post)) => loaded.posts.push(*post),
            Ok(dialect::Read::NotAPost(why)) => loaded.skipped.push((path.to_path_buf(), why)),
            Err(found) => {
                let date = readable_date(&text, ctx);
                loaded.problems.extend(
                    found
                        .into_iter()
                        .map(|diagnostic| Problem { diagnostic, date }),
                );
            }
        }
    }
    loaded.warnings = grouped(std::mem::take(&mut loaded.warnings));
    Ok(loaded)
}

/// One line per kind of warning: the same message (and help) in many posts is said once,
/// at its first place, with how many posts have it, so a site with 300 posts gets a
/// readable `check`.
fn grouped(warnings: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut groups: Vec<(Diagnostic, usize)> = Vec::new();
    let mut index: std::collections::HashMap<(String, Option<String>), usize> =
        std::collections::HashMap::new();
    for warning in warnings {
        let key = (warning.message.clone(), warning.help.clone());
        match index.get(&key) {
            Some(&at) => groups[at].1 += 1,
            None => {
                index.insert(key, groups.len());
                groups.push((warning, 1));
            }
        }
    }
    groups
        .into_iter()
        .map(|(mut first, count)| {
            if count > 1 {
                first.message = format!("{} ({count} posts; the first is here)", first.message);
            }
            first
        })
        .collect()
}

/// Read one file of any dialect.
pub fn read(
    path: &Path,
    source: &str,
    ctx: &ParseContext,
    warnings: &mut Vec<Diagnostic>,
) -> Result<dialect::Read, Vec<Diagnostic>> {
    let generator = ctx.format.or(ctx.site).filter(|d| *d != Dialect::Digestif);
    let split = match split_any(path, source) {
        Ok(split) => split,
        // Zola, Hugo and Jekyll render a Markdown file without front matter as a plain page.
        Err(_) if generator.is_some() && !source.trim_start().starts_with(['+', '-']) => {
            return Ok(dialect::Read::NotAPost(
                "no front matter: a page, not a post".into(),
            ));
        }
        Err(d) => return Err(vec![d]),
    };
    let first_line = line_col(source, split.offset).0;
    let mut meta = if split.yaml {
        Meta::from_yaml(split.front_matter, first_line)
    } else {
        Meta::from_toml(split.front_matter, first_line)
    }
    .map_err(|(line, why)| vec![front_matter_problem(path, source, line, &why)])?;
    let body_offset = split.body.as_ptr() as usize - source.as_ptr() as usize;
    meta.body_line = line_col(source, body_offset).0;
    let dialect = match (ctx.format, split.yaml) {
        (Some(forced), _) => forced,
        (None, true) => match ctx.site {
            Some(site @ (Dialect::Hugo | Dialect::Jekyll)) => site,
            _ if path.components().any(|c| c.as_os_str() == "_posts") => Dialect::Jekyll,
            _ => Dialect::Hugo,
        },
        (None, false) => match ctx.site {
            // Our own posts kept inside a generator's site stay ours.
            Some(site @ (Dialect::Zola | Dialect::Hugo))
                if !dialect::looks_like_ours(&meta.keys()) =>
            {
                site
            }
            _ => dialect::toml_dialect_of(&meta.keys()),
        },
    };
    if dialect == Dialect::Digestif {
        return Post::parse(path, source, ctx).map(|post| dialect::Read::Post(Box::new(post)));
    }
    dialect::to_post(dialect, &meta, path, split.body, ctx, warnings)
}

/// A front matter that does not parse, with the usual fix when its line holds a date
/// written the way people write them (`date = 27/11/2026`).
fn front_matter_problem(path: &Path, source: &str, line: usize, why: &str) -> Diagnostic {
    let problem = Diagnostic::at(path, line, format!("front matter: {why}"));
    let written = source.lines().nth(line.saturating_sub(1)).unwrap_or("");
    let Some((key, value)) = written.split_once(['=', ':']) else {
        return problem;
    };
    match crate::toml_input::date_as_toml(value) {
        Some(fixed) => problem.with_help(format!(
            "dates are written YYYY-MM-DD, a time with its seconds: `{} = {fixed}`",
            key.trim()
        )),
        None => problem,
    }
}

/// The date of a file that failed to parse, if its front matter has a readable one: a
/// problem outside the week being sent need not block that week.
fn readable_date(source: &str, ctx: &ParseContext) -> Option<DateTime<Tz>> {
    let split = split_any(Path::new(""), source).ok()?;
    let meta = if split.yaml {
        Meta::from_yaml(split.front_matter, 1).ok()?
    } else {
        Meta::from_toml(split.front_matter, 1).ok()?
    };
    let text = meta.entries.iter().find_map(|(k, v)| match v {
        dialect::Value::Text(t) if k == "date" || k == "publishDate" => Some(t.clone()),
        _ => None,
    })?;
    dates::parse_flexible(&text, ctx.timezone).ok()
}

/// Extensions of the files read as posts.
pub const POST_EXTENSIONS: &[&str] = &["md", "markdown"];

/// Text documents a blog folder may hold that are not read as posts (images and other
/// assets are expected there and not mentioned).
const OTHER_DOCUMENTS: &[&str] = &[
    "txt", "html", "htm", "rst", "adoc", "asciidoc", "org", "mdx", "mdown", "mkd", "mkdn",
    "textile",
];

/// Hugo and Jekyll also publish `.html` content files with front matter as posts.
fn is_post_file(path: &Path, site: Option<Dialect>) -> bool {
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        return false;
    };
    let ext = ext.to_ascii_lowercase();
    POST_EXTENSIONS.contains(&ext.as_str())
        || (matches!(site, Some(Dialect::Hugo | Dialect::Jekyll)) && ext == "html")
}

/// A file beside an `index.md` is one of that page's assets (a Hugo or Zola bundle).
fn in_page_bundle(path: &Path) -> bool {
    path.parent().is_some_and(|d| {
        POST_EXTENSIONS
            .iter()
            .any(|e| d.join(format!("index.{e}")).is_file())
    })
}

/// Jekyll's posts are the files in a `_posts` folder; the rest of its site are pages.
fn in_posts_folder(path: &Path, site: Option<Dialect>) -> bool {
    site != Some(Dialect::Jekyll) || path.iter().any(|c| c == "_posts")
}

/// A Jekyll site's root holds its build (`_site`), layouts, includes, drafts and
/// vendored gems: only `_posts` and ordinary folders (categories) can hold posts.
fn site_reads_folder(site: Option<Dialect>, name: &std::ffi::OsStr) -> bool {
    if site != Some(Dialect::Jekyll) {
        return true;
    }
    let name = name.to_string_lossy();
    name == "_posts" || !(name.starts_with('_') || name == "node_modules" || name == "vendor")
}

/// Documents under `dir` that look like writing but are not read as posts (`.txt`,
/// `.html`, `.rst`…), so `check` can say so instead of silently finding fewer posts.
pub fn unread_documents(dir: &Path, site: Option<Dialect>) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0
                || !(e.file_name().to_string_lossy().starts_with('.')
                    || (e.file_type().is_dir() && !site_reads_folder(site, e.file_name())))
        })
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .filter(|p| in_posts_folder(p, site))
        .filter(|p| !in_page_bundle(p))
        .filter(|p| !is_post_file(p, site))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| OTHER_DOCUMENTS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect()
}

fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let bytes =
        std::fs::read(path).map_err(|e| Diagnostic::new(path, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let valid = std::str::from_utf8(valid).unwrap_or_default();
        Diagnostic::at_offset(
            path,
            valid,
            valid.len(),
            format!(
                "invalid UTF-8 at byte {}: posts must be UTF-8 text",
                valid.len()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_kind_with_the_count_at_the_first_place() {
        let typo = |p: &str| {
            Diagnostic::at(Path::new(p), 3, "unknown key `descripton`")
                .with_help("did you mean `description`?")
        };
        let grouped = grouped(vec![
            typo("a.md"),
            Diagnostic::at(Path::new("b.md"), 8, "shortcodes removed"),
            typo("c.md"),
            typo("d.md"),
        ]);
        assert_eq!(grouped.len(), 2);
        assert_eq!(grouped[0].path, Path::new("a.md"));
        assert_eq!(
            grouped[0].message,
            "unknown key `descripton` (3 posts; the first is here)"
        );
        assert_eq!(grouped[1].message, "shortcodes removed");
    }
}
