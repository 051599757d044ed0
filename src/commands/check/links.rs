//! `check --links`: the links of the latest complete week's digest, asked of the web.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Report;
use crate::config::Config;
use crate::error::Diagnostic;
use crate::site::links::{self, Answer, Link};
use crate::sources::Post;
use crate::week::Week;

/// How long one link may take, redirects included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Ask for every link of the latest complete week with posts; report lines go into
/// `report.links`, and each broken link is returned as a problem of its post.
pub(super) fn check(
    config: &Config,
    posts: &[Post],
    now: DateTime<Utc>,
    report: &mut Report,
) -> Vec<Diagnostic> {
    let tz = config.timezone;
    let latest = crate::digest::weeks(posts, tz, now)
        .into_iter()
        .map(|(week, _)| week)
        .rfind(|week| week.is_complete(now, tz));
    let Some(week) = latest else {
        report
            .links
            .push("links: no complete week with posts to check".into());
        return Vec::new();
    };
    let links = links_of(posts, week, tz, now);
    let answers = links::check(&links, TIMEOUT);
    let mut problems = Vec::new();
    let mut fine = 0;
    for (link, answer) in &answers {
        let chain = answer.chain_text();
        match answer {
            Answer::Fine { chain: c, .. } if c.is_empty() => fine += 1,
            Answer::Fine { status, .. } => {
                fine += 1;
                report.links.push(format!(
                    "note: {}{chain} → {status}: it works, but the post could link the final address",
                    link.url
                ));
            }
            Answer::Broken { status, .. } => problems.push(Diagnostic::new(
                &link.post,
                format!("link {}{chain} answers {status}", link.url),
            )),
            Answer::Unreachable(why) => problems.push(Diagnostic::new(
                &link.post,
                format!("link {}{chain}: {why}", link.url),
            )),
        }
    }
    let skipped = links.len().saturating_sub(answers.len());
    report.links.push(format!(
        "{}: links of {week}: {fine} of {} answer{}",
        if problems.is_empty() { "ok" } else { "error" },
        answers.len(),
        if skipped > 0 {
            format!(
                " ({skipped} more not asked: at most {} per run)",
                links::MAX_LINKS
            )
        } else {
            String::new()
        }
    ));
    problems
}

/// The week's posts' links: the curated article and the post's own page, each once.
fn links_of(posts: &[Post], week: Week, tz: chrono_tz::Tz, now: DateTime<Utc>) -> Vec<Link> {
    let mut seen = std::collections::HashSet::new();
    posts
        .iter()
        .filter(|p| p.is_published(now) && Week::of_instant(p.date, tz) == week)
        .flat_map(|p| {
            [p.link.clone(), p.permalink.clone()]
                .into_iter()
                .flatten()
                .map(|url| Link {
                    url,
                    post: p.path.clone(),
                })
        })
        .filter(|link| seen.insert(link.url.clone()))
        .collect()
}
