//! Leaf: the ISO 8601 week, the unit a digest covers. Used by grouping, the ledger, mail
//! and the commands; it knows nothing of posts.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;

/// An ISO 8601 week, such as `2011-W52`. Kept as its Monday, so that every value is a
/// week that exists, and weeks order as time does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Week {
    monday: NaiveDate,
}

impl Week {
    /// The ISO week that contains `date`.
    pub fn containing(date: NaiveDate) -> Week {
        let back = u64::from(date.weekday().num_days_from_monday());
        Week {
            monday: date - chrono::Days::new(back),
        }
    }

    /// The ISO week-numbering year (2011 for the week of 1 January 2012).
    pub fn year(self) -> i32 {
        self.monday.iso_week().year()
    }

    /// The week's number in its year, 1 to 53.
    pub fn number(self) -> u32 {
        self.monday.iso_week().week()
    }

    /// The week of `instant` as seen on a calendar in `tz`.
    pub fn of_instant(instant: DateTime<Tz>, tz: Tz) -> Week {
        Week::containing(instant.with_timezone(&tz).date_naive())
    }

    pub fn monday(self) -> NaiveDate {
        self.monday
    }

    pub fn sunday(self) -> NaiveDate {
        self.monday + chrono::Days::new(6)
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
        write!(f, "{:04}-W{:02}", self.year(), self.number())
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
            .map(|monday| Week { monday })
            .ok_or_else(|| format!("{year} has no ISO week {week}"))
    }
}

/// Stored as its name (`2011-W52`) in the ledger.
impl rusqlite::types::ToSql for Week {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::from(self.to_string()))
    }
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
            (week("2020W53").year(), week("2020W53").number()),
            (2020, 53)
        );
        assert_eq!(week("2020W53").to_string(), "2020-W53");
        assert_eq!(
            "2021-W53".parse::<Week>().unwrap_err(),
            "2021 has no ISO week 53"
        );
        assert_eq!(
            "52".parse::<Week>().unwrap_err(),
            "invalid week \"52\": expected YYYY-Www, such as 2011-W52"
        );
        assert_eq!(week("2020-W53").next(), week("2021-W01"));
    }
}
