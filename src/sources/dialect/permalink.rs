//! A post's own page, as its generator would serve it.

use std::path::{Component, Path};

use chrono::{DateTime, Datelike};
use chrono_tz::Tz;
use url::Url;

use super::{Dialect, Meta};
use crate::sources::ParseContext;

/// The post's own page: its explicit URL key, else the config's pattern, else the
/// generator's default.
pub(super) fn permalink(
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
