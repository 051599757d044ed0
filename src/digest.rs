//! Stage 3: grouping. Published posts → one ISO week → sections by category.
//!
//! Pure: the time zone, the week and "now" are arguments; nothing here reads the clock
//! or the disk.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;

use crate::posts::Post;

/// An ISO 8601 week, such as `2011-W52`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Week {
    pub year: i32,
    pub week: u32,
}

impl Week {
    /// The ISO week that contains `date`.
    pub fn containing(date: NaiveDate) -> Week {
        let iso = date.iso_week();
        Week {
            year: iso.year(),
            week: iso.week(),
        }
    }

    /// The week of `instant` as seen on a calendar in `tz`.
    pub fn of_instant(instant: DateTime<Tz>, tz: Tz) -> Week {
        Week::containing(instant.with_timezone(&tz).date_naive())
    }

    pub fn monday(self) -> NaiveDate {
        NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon).expect("validated week")
    }

    pub fn sunday(self) -> NaiveDate {
        NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Sun).expect("validated week")
    }

    pub fn next(self) -> Week {
        Week::containing(self.monday() + chrono::Days::new(7))
    }

    /// Is the week over (its Sunday ended) at `now`, on a calendar in `tz`?
    pub fn is_complete(self, now: DateTime<Utc>, tz: Tz) -> bool {
        now.with_timezone(&tz).date_naive() > self.sunday()
    }

    /// Whole days from the end of the week's Sunday to `now`, on a calendar in `tz`
    /// (0 on the Monday after it).
    pub fn days_since_end(self, now: DateTime<Utc>, tz: Tz) -> i64 {
        (now.with_timezone(&tz).date_naive() - self.sunday()).num_days() - 1
    }
}

impl fmt::Display for Week {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

impl FromStr for Week {
    type Err = String;
    fn from_str(s: &str) -> Result<Week, String> {
        let bad = || format!("invalid week {s:?}: expected YYYY-Www, such as 2011-W52");
        let (year, week) = s.trim().split_once(['W', 'w']).ok_or_else(bad)?;
        let year: i32 = year
            .strip_suffix('-')
            .unwrap_or(year)
            .parse()
            .map_err(|_| bad())?;
        let week: u32 = week.parse().map_err(|_| bad())?;
        NaiveDate::from_isoywd_opt(year, week, Weekday::Mon)
            .map(|_| Week { year, week })
            .ok_or_else(|| format!("{year} has no ISO week {week}"))
    }
}

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
    use chrono::TimeZone;
    use chrono_tz::{America::New_York, Europe::Paris, UTC};

    fn week(s: &str) -> Week {
        s.parse().unwrap()
    }

    fn utc(s: &str) -> DateTime<Tz> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&UTC)
    }

    #[test]
    fn week_of_instant_uses_the_newsletter_zone() {
        // Sunday 23:30 UTC is already Monday in Paris, still Sunday in New York.
        let instant = utc("2011-12-25T23:30:00Z");
        assert_eq!(Week::of_instant(instant, Paris), week("2011-W52"));
        assert_eq!(Week::of_instant(instant, UTC), week("2011-W51"));
        assert_eq!(Week::of_instant(instant, New_York), week("2011-W51"));
        // Monday 03:00 UTC is still Sunday evening in New York.
        let instant = utc("2011-12-26T03:00:00Z");
        assert_eq!(Week::of_instant(instant, New_York), week("2011-W51"));
        assert_eq!(Week::of_instant(instant, Paris), week("2011-W52"));
        assert_eq!(Week::of_instant(instant, UTC), week("2011-W52"));
    }

    #[test]
    fn iso_week_year_edges() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(Week::containing(d(2012, 1, 1)), week("2011-W52"));
        assert_eq!(Week::containing(d(2012, 1, 2)), week("2012-W01"));
        assert_eq!(Week::containing(d(2020, 12, 31)), week("2020-W53"));
        assert_eq!(Week::containing(d(2021, 1, 3)), week("2020-W53"));
        assert_eq!(Week::containing(d(2021, 1, 4)), week("2021-W01"));
        assert_eq!(Week::containing(d(2014, 12, 29)), week("2015-W01"));
        for tz in [Paris, New_York, UTC] {
            let new_year = tz.with_ymd_and_hms(2021, 1, 3, 23, 59, 0).unwrap();
            assert_eq!(Week::of_instant(new_year, tz), week("2020-W53"), "{tz}");
        }
    }

    #[test]
    fn weeks_with_dst_changes_span_seven_days() {
        for (w, tz) in [
            ("2021-W12", Paris),
            ("2021-W43", Paris),
            ("2021-W10", New_York),
            ("2021-W44", New_York),
        ] {
            let w = week(w);
            assert_eq!((w.sunday() - w.monday()).num_days(), 6);
            let last_minute = tz
                .from_local_datetime(&w.sunday().and_hms_opt(23, 59, 59).unwrap())
                .unwrap();
            assert_eq!(Week::of_instant(last_minute, tz), w);
            assert_eq!(
                Week::of_instant(last_minute + chrono::Duration::seconds(1), tz),
                w.next()
            );
        }
    }

    #[test]
    fn parses_and_rejects_week_strings() {
        assert_eq!(week("2011-W52").to_string(), "2011-W52");
        assert_eq!(
            week("2020W53"),
            Week {
                year: 2020,
                week: 53
            }
        );
        assert_eq!(
            "2021-W53".parse::<Week>().unwrap_err(),
            "2021 has no ISO week 53"
        );
        assert!("52".parse::<Week>().is_err());
        assert_eq!(week("2020-W53").next(), week("2021-W01"));
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
