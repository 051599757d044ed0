//! A post's own page, as its generator would serve it.

use std::path::Path;

use chrono::{DateTime, Datelike, FixedOffset};
use url::Url;

use super::Dialect;
use crate::sources::generator::Page;
use crate::sources::ParseContext;

/// The post's own page: its explicit URL key, else the config's pattern, else the site's
/// own rules (its generator's settings), else the generator's default.
pub(super) fn permalink(
    dialect: Dialect,
    page: &Page,
    slug: &str,
    ctx: &ParseContext,
) -> Option<Url> {
    let explicit = match dialect {
        Dialect::Zola => page.meta.text("path"),
        Dialect::Hugo => page.meta.text("url"),
        Dialect::Jekyll => page.meta.text("permalink").filter(|p| !p.contains(':')),
        Dialect::Digestif => None,
    };
    if let Some(mut explicit) = explicit {
        // Zola serves `path = "2025/12/19/slug"` at `…/slug/`.
        if dialect == Dialect::Zola && !explicit.ends_with('/') {
            explicit.push('/');
        }
        return ctx.base_url.join(explicit.trim_start_matches('/')).ok();
    }
    let section = section_of(page.path, ctx);
    let site = ctx.generator.as_ref().filter(|g| g.dialect == dialect);
    let relative = match (&ctx.permalink, site) {
        (Some(pattern), _) => fill_permalink(pattern, slug, &section, page.categories, page.date),
        (None, Some(site)) => site.page_path(page)?,
        (None, None) => default_path(dialect, slug, &section, page)?,
    };
    ctx.base_url.join(relative.trim_start_matches('/')).ok()
}

/// A generator's default when its settings were not found.
fn default_path(dialect: Dialect, slug: &str, section: &[String], page: &Page) -> Option<String> {
    let date = page.date;
    Some(match dialect {
        // Zola and Hugo: /<section folders>/<slug>/
        Dialect::Zola | Dialect::Hugo => {
            let mut parts = section.to_vec();
            parts.push(slug.to_string());
            format!("{}/", parts.join("/"))
        }
        // Jekyll's default "date" style: /:categories/:year/:month/:day/:title.html
        Dialect::Jekyll => {
            let mut parts: Vec<String> = page.categories.iter().map(|c| c.to_lowercase()).collect();
            parts.push(format!(
                "{:04}/{:02}/{:02}",
                date.year(),
                date.month(),
                date.day()
            ));
            format!("{}/{slug}.html", parts.join("/"))
        }
        Dialect::Digestif => return None,
    })
}

/// `{year}/{month}/{day}/{slug}/`, with `{section}` and `{category}` too.
pub(crate) fn fill_permalink(
    pattern: &str,
    slug: &str,
    section: &[String],
    categories: &[String],
    date: DateTime<FixedOffset>,
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
    let mut sections = crate::sources::generator::sections(path, &ctx.content_root);
    sections.retain(|s| s != "_posts");
    sections
}
