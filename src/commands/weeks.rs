//! `digestif weeks`: the weeks that have published posts, newest first, with counts per
//! category.

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::digest;
use crate::error::Result;
use crate::site::Site;

/// `digestif weeks [--json]`.
pub(crate) fn run(config: &Path, json: bool, clock: Clock) -> Result<ExitCode> {
    let now = clock.start();
    let site = Site::load(config, super::feed_mode(false))?;
    super::ensure_weeks(&site, &[])?;
    if json {
        print_json(&site, now);
    } else {
        print(&site, now);
    }
    Ok(ExitCode::SUCCESS)
}

/// `[{"week": "2011-W52", "monday": "2011-12-26", "sunday": …, "complete": true,
/// "posts": 5, "categories": [{"name": …, "posts": 2}, …]}, …]`, newest first, categories
/// in section order.
fn print_json(site: &Site, now: DateTime<Utc>) {
    let tz = site.config.timezone;
    let weeks: Vec<serde_json::Value> = digest::weeks(&site.posts, tz, now)
        .into_iter()
        .map(|(week, counts)| {
            let total: usize = counts.values().sum();
            let categories: Vec<serde_json::Value> = in_section_order(site, counts)
                .into_iter()
                .map(|(name, posts)| serde_json::json!({ "name": name, "posts": posts }))
                .collect();
            serde_json::json!({
                "week": week.to_string(),
                "monday": week.monday().to_string(),
                "sunday": week.sunday().to_string(),
                "complete": week.is_complete(now, tz),
                "posts": total,
                "categories": categories,
            })
        })
        .collect();
    emit!(
        "{}",
        serde_json::to_string_pretty(&weeks).unwrap_or_default()
    );
}

/// Categories in the config's order, then the others alphabetically.
fn in_section_order(
    site: &Site,
    counts: std::collections::BTreeMap<String, usize>,
) -> Vec<(String, usize)> {
    let mut ordered: Vec<_> = counts.into_iter().collect();
    ordered.sort_by_key(|(c, _)| {
        (
            site.config
                .categories
                .iter()
                .position(|k| k == c)
                .unwrap_or(usize::MAX),
            c.to_lowercase(),
        )
    });
    ordered
}

fn print(site: &Site, now: DateTime<Utc>) {
    let strings = &site.templates.strings;
    for (week, counts) in digest::weeks(&site.posts, site.config.timezone, now) {
        let total: usize = counts.values().sum();
        let complete = if week.is_complete(now, site.config.timezone) {
            ""
        } else {
            "  (in progress)"
        };
        emit!(
            "{week}  {}  {}{complete}",
            strings.week_range(week.monday(), week.sunday()),
            strings.post_count(total)
        );
        for (category, count) in in_section_order(site, counts) {
            emit!("    {count:>3}  {category}");
        }
    }
}
