//! Dates as the generators write them, quoted or not: RFC 3339 (`2021-01-22T12:17:58-07:00`),
//! a space instead of the `T` (`2024-05-01 10:00:00 +0200`, Jekyll), one-digit months,
//! days and hours (`2021-1-2T9:05:00`, which Hugo accepts), a bare date, fractional
//! seconds, `Z` or `UTC`. A date without an offset is a wall-clock time in the newsletter's
//! zone.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
};
use chrono_tz::Tz;

/// Read `text` as a date or date-time; `Err` says what was expected.
pub(crate) fn parse_flexible(text: &str, tz: Tz) -> Result<DateTime<Tz>, String> {
    parse_own_offset(text, tz).map(|d| d.with_timezone(&tz))
}

/// Read `text` keeping the offset it was written with (a date without one is in `tz`):
/// generators take a URL's `:year/:month/:day` from the date as written, not from the
/// instant seen from the newsletter's zone.
pub(crate) fn parse_own_offset(text: &str, tz: Tz) -> Result<DateTime<FixedOffset>, String> {
    let text = text.trim();
    let expected = || {
        format!(
            "{text:?} is not a date: expected e.g. 2011-12-20, 2011-12-20T09:30:00+01:00 or 2011-12-20 09:30:00 +0100"
        )
    };
    let (date_part, rest) = split_date(text).ok_or_else(expected)?;
    let date = parse_ymd(date_part).ok_or_else(expected)?;
    let rest = rest.trim_start_matches(['T', 't', ' ']);
    if rest.is_empty() {
        return local_in_zone(NaiveDateTime::new(date, NaiveTime::MIN), tz)
            .map(|d| d.fixed_offset());
    }
    let (time_part, offset_part) = split_offset(rest);
    let time = parse_hms(time_part).ok_or_else(expected)?;
    // Ruby's Time.parse (Jekyll) reads "2023-01-29 18:30:22 2023 -0800", the year repeated.
    let offset_part = offset_part
        .trim_start()
        .strip_prefix(&format!("{:04}", date.year()))
        .unwrap_or(offset_part);
    let naive = NaiveDateTime::new(date, time);
    match parse_offset(offset_part.trim()).ok_or_else(expected)? {
        Some(offset) => offset
            .from_local_datetime(&naive)
            .single()
            .ok_or_else(expected),
        None => local_in_zone(naive, tz).map(|d| d.fixed_offset()),
    }
}

/// `2021-01-22…` → ("2021-01-22", "…"): the date is the leading digits and dashes.
fn split_date(text: &str) -> Option<(&str, &str)> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(text.len());
    (end > 0).then(|| text.split_at(end))
}

fn parse_ymd(text: &str) -> Option<NaiveDate> {
    let mut parts = text.split('-');
    let year = parts.next()?.parse().ok()?;
    let month = parts.next()?.parse().ok()?;
    let day = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1000..=9999).contains(&year) {
        return None;
    }
    NaiveDate::from_ymd_opt(year, month, day)
}

/// `12:17:58.5-07:00` → ("12:17:58.5", "-07:00"); `10:00:00 +0200` → ("10:00:00", "+0200").
fn split_offset(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.' || c == ','))
        .unwrap_or(text.len());
    text.split_at(end)
}

fn parse_hms(text: &str) -> Option<NaiveTime> {
    let (hms, fraction) = match text.split_once(['.', ',']) {
        Some((hms, f)) => (hms, f),
        None => (text, ""),
    };
    let mut parts = hms.split(':');
    let hour = parts.next()?.parse().ok()?;
    let minute = parts.next()?.parse().ok()?;
    let second: u32 = match parts.next() {
        Some(s) => s.parse().ok()?,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    let nanos = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction.chars().take(9).collect();
        digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32)
    };
    NaiveTime::from_hms_nano_opt(hour, minute, second.min(59), nanos)
}

/// `Z`, `UTC`, `+02:00`, `+0200`, `-07`, or nothing (`None`: local time).
fn parse_offset(text: &str) -> Option<Option<FixedOffset>> {
    if text.is_empty() {
        return Some(None);
    }
    if text.eq_ignore_ascii_case("z") || text.eq_ignore_ascii_case("utc") || text == "GMT" {
        return Some(FixedOffset::east_opt(0));
    }
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits: String = digits.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        4 => (digits[..2].parse().ok()?, digits[2..].parse().ok()?),
        _ => return None,
    };
    Some(FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60)))
}

/// Resolve a TOML date or date-time to an instant in `tz`.
///
/// Local date-times and bare dates are wall-clock times in `tz`. A time that falls in a DST
/// gap is moved forward by the gap (as clocks do); an ambiguous one takes the earlier instant.
pub fn resolve_date(value: &toml::value::Datetime, tz: Tz) -> Result<DateTime<Tz>, String> {
    let Some(d) = value.date else {
        return Err(format!(
            "expected a date or date-time, found the bare time {value}"
        ));
    };
    let date = NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
        .ok_or_else(|| format!("{value} is not a valid date"))?;
    let time = match value.time {
        Some(t) => NaiveTime::from_hms_nano_opt(
            u32::from(t.hour),
            u32::from(t.minute),
            u32::from(t.second).min(59),
            t.nanosecond,
        )
        .ok_or_else(|| format!("{value} is not a valid time"))?,
        None => NaiveTime::MIN,
    };
    let naive = NaiveDateTime::new(date, time);
    match value.offset {
        Some(offset) => {
            let seconds = match offset {
                toml::value::Offset::Z => 0,
                toml::value::Offset::Custom { minutes } => i32::from(minutes) * 60,
            };
            let fixed = FixedOffset::east_opt(seconds)
                .ok_or_else(|| format!("{value} has an out-of-range offset"))?;
            let instant = fixed
                .from_local_datetime(&naive)
                .single()
                .ok_or_else(|| format!("{value} is not a valid date-time"))?;
            Ok(instant.with_timezone(&tz))
        }
        None => local_in_zone(naive, tz),
    }
}

fn local_in_zone(naive: NaiveDateTime, tz: Tz) -> Result<DateTime<Tz>, String> {
    if let Some(dt) = tz.from_local_datetime(&naive).earliest() {
        return Ok(dt);
    }
    // In a DST gap: read the wall-clock time with the offset in force before the gap, as
    // a clock that was not moved forward would, so 02:30 in a one-hour gap is 03:30.
    // Gaps last at most a few hours; the offset three hours earlier is the one before it.
    let before = tz
        .from_local_datetime(&(naive - Duration::hours(3)))
        .earliest()
        .ok_or_else(|| format!("{naive} does not exist in {tz}"))?;
    let offset = chrono::Offset::fix(before.offset());
    let utc = naive - Duration::seconds(i64::from(offset.local_minus_utc()));
    Ok(tz.from_utc_datetime(&utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> String {
        parse_flexible(text, chrono_tz::Europe::Paris)
            .map(|d| d.to_rfc3339())
            .unwrap_or_else(|e| e)
    }

    #[test]
    fn reads_the_forms_generators_write() {
        assert_eq!(at("2021-01-22T12:17:58-07:00"), "2021-01-22T20:17:58+01:00");
        assert_eq!(at("2024-05-01 10:00:00 +0200"), "2024-05-01T10:00:00+02:00");
        assert_eq!(at("2024-05-01 10:00:00"), "2024-05-01T10:00:00+02:00");
        assert_eq!(
            at("2023-01-29 18:30:22 2023 -0800"),
            "2023-01-30T03:30:22+01:00"
        );
        assert_eq!(at("2024-05-01"), "2024-05-01T00:00:00+02:00");
        assert_eq!(at("2021-1-2T9:05:00"), "2021-01-02T09:05:00+01:00");
        assert_eq!(at("2021-01-02T09:05"), "2021-01-02T09:05:00+01:00");
        assert_eq!(at("2011-12-25T23:30:00Z"), "2011-12-26T00:30:00+01:00");
        assert_eq!(at("2011-12-25 23:30:00 UTC"), "2011-12-26T00:30:00+01:00");
        assert_eq!(
            at("2019-03-04T10:00:00.123456+01:00"),
            "2019-03-04T10:00:00.123456+01:00"
        );
    }

    #[test]
    fn refuses_what_is_not_a_date() {
        for bad in [
            "hier",
            "2021-13-01",
            "2021-02-30",
            "12:00",
            "2021-01-01T25:00:00",
            "2021-01-01 10:00 CEST",
        ] {
            assert!(at(bad).contains("is not a date"), "{bad}: {}", at(bad));
        }
    }
}
