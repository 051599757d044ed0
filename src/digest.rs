//! Stage 3: grouping. Published posts → one ISO week → sections by category.
//!
//! Pure: the time zone, the week and "now" are arguments; nothing here reads the clock
//! or the disk.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::sources::Post;
use crate::week::Week;

/// One category's posts in a digest.
#[derive(Debug, Clone)]
pub struct Section<'a> {
    pub category: String,
    pub posts: Vec<&'a Post>,
}

/// The posts of one week, in section order.
#[derive(Debug, Clone)]
pub struct Digest<'a> {
    pub week: Week,
    pub sections: Vec<Section<'a>>,
    /// The editor's note for this week (Markdown), shown above the table of contents.
    pub note: Option<String>,
}

impl<'a> Digest<'a> {
    pub fn post_count(&self) -> usize {
        self.sections.iter().map(|s| s.posts.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }

    /// The same digest restricted to `categories` (a subscriber's choice); `None` keeps all.
    pub fn only(&self, categories: Option<&[String]>) -> Digest<'a> {
        let sections = match categories {
            None => self.sections.clone(),
            Some(wanted) => self
                .sections
                .iter()
                .filter(|s| {
                    wanted
                        .iter()
                        .any(|w| w.eq_ignore_ascii_case(&s.category) || w == &s.category)
                })
                .cloned()
                .collect(),
        };
        Digest {
            week: self.week,
            sections,
            note: self.note.clone(),
        }
    }
}

/// Group the posts published by `now` that fall in `week` (in `tz`), by category.
///
/// Categories listed in `order` come first in that order; the others follow alphabetically.
/// Within a category, posts are in date order.
pub fn group<'a>(
    posts: &'a [Post],
    week: Week,
    tz: Tz,
    now: DateTime<Utc>,
    order: &[String],
) -> Digest<'a> {
    let mut by_category: BTreeMap<&str, Vec<&Post>> = BTreeMap::new();
    for post in posts
        .iter()
        .filter(|p| p.is_published(now) && Week::of_instant(p.date, tz) == week)
    {
        by_category
            .entry(post.category.as_str())
            .or_default()
            .push(post);
    }
    let mut sections: Vec<Section<'a>> = by_category
        .into_iter()
        .map(|(category, mut posts)| {
            posts.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.title.cmp(&b.title)));
            Section {
                category: category.to_string(),
                posts,
            }
        })
        .collect();
    sections.sort_by_cached_key(|s| category_rank(&s.category, order));
    Digest {
        week,
        sections,
        note: None,
    }
}

/// Sort key: configured categories by position, then the rest alphabetically (ignoring case).
fn category_rank(category: &str, order: &[String]) -> (usize, String) {
    match order.iter().position(|c| c == category) {
        Some(i) => (i, String::new()),
        None => (order.len(), category.to_lowercase()),
    }
}

/// The weeks that have published posts, newest first, with their post count per category.
pub fn weeks(posts: &[Post], tz: Tz, now: DateTime<Utc>) -> Vec<(Week, BTreeMap<String, usize>)> {
    let mut weeks: BTreeMap<Week, BTreeMap<String, usize>> = BTreeMap::new();
    for post in posts.iter().filter(|p| p.is_published(now)) {
        *weeks
            .entry(Week::of_instant(post.date, tz))
            .or_default()
            .entry(post.category.clone())
            .or_default() += 1;
    }
    weeks.into_iter().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{Europe::Paris, UTC};

    fn week(s: &str) -> Week {
        s.parse().unwrap()
    }

    #[test]
    fn completeness_follows_the_zone() {
        let w = week("2011-W51");
        let sunday_late_utc = "2011-12-25T23:30:00Z".parse::<DateTime<Utc>>().unwrap();
        assert!(w.is_complete(sunday_late_utc, Paris));
        assert!(!w.is_complete(sunday_late_utc, UTC));
    }

    fn post(title: &str, date: &str, category: &str) -> Post {
        Post {
            path: format!("{title}.md").into(),
            title: title.into(),
            date: DateTime::parse_from_rfc3339(date)
                .unwrap()
                .with_timezone(&Paris),
            category: category.into(),
            tags: vec![],
            source: None,
            link: None,
            permalink: None,
            excerpt: String::new(),
            draft: false,
            expires: None,
            language: None,
        }
    }

    #[test]
    fn groups_by_configured_order_then_alphabetically() {
        let posts = vec![
            post("z", "2011-12-20T10:00:00+01:00", "zèbre"),
            post("b2", "2011-12-21T10:00:00+01:00", "Beta"),
            post("b1", "2011-12-19T10:00:00+01:00", "Beta"),
            post("a", "2011-12-20T10:00:00+01:00", "alpha"),
            post("m", "2011-12-22T10:00:00+01:00", "Marketing"),
            post("other week", "2011-12-27T10:00:00+01:00", "Marketing"),
        ];
        let now = "2012-01-01T00:00:00Z".parse().unwrap();
        let d = group(&posts, week("2011-W51"), Paris, now, &["Marketing".into()]);
        let names: Vec<_> = d.sections.iter().map(|s| s.category.as_str()).collect();
        assert_eq!(names, ["Marketing", "alpha", "Beta", "zèbre"]);
        let beta: Vec<_> = d.sections[2]
            .posts
            .iter()
            .map(|p| p.title.as_str())
            .collect();
        assert_eq!(beta, ["b1", "b2"]);
        assert_eq!(d.post_count(), 5);
    }

    #[test]
    fn drafts_and_scheduled_posts_are_left_out() {
        let mut draft = post("draft", "2011-12-20T10:00:00+01:00", "A");
        draft.draft = true;
        let posts = vec![
            draft,
            post("later", "2011-12-24T10:00:00+01:00", "A"),
            post("ok", "2011-12-20T10:00:00+01:00", "A"),
        ];
        let now = "2011-12-22T00:00:00Z".parse().unwrap();
        let d = group(&posts, week("2011-W51"), Paris, now, &[]);
        assert_eq!(d.post_count(), 1);
        assert_eq!(weeks(&posts, Paris, now).len(), 1);
    }
}
