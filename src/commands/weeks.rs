//! `digestif weeks`: the weeks that have published posts, newest first, with counts per
//! category.

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::digest;
use crate::error::Result;
use crate::site::Site;

/// `digestif weeks`.
pub(crate) fn run(config: &Path, now: DateTime<Utc>) -> Result<ExitCode> {
    let site = Site::load(config)?;
    print(&site, now);
    Ok(ExitCode::SUCCESS)
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
        println!(
            "{week}  {}  {}{complete}",
            strings.week_range(week.monday(), week.sunday()),
            strings.post_count(total)
        );
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
        for (category, count) in ordered {
            println!("    {count:>3}  {category}");
        }
    }
}
