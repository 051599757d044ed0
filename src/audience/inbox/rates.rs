//! Each digest's rates, from what came back after it: hard and soft bounces, refusals of
//! the sender (per receiving domain), complaints and leaves. A finding counts against
//! the latest digest sent before it arrived.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};

use crate::audience::optout::Event;

/// Complaints above this share of the messages sent get a warning (Gmail's and Yahoo's
/// bulk-sender rules allow 0.3%; staying under 0.1% is their advice).
pub(crate) const COMPLAINT_WARNING: f64 = 0.001;
/// Hard bounces above this share: the list holds addresses that no longer exist.
pub(crate) const HARD_BOUNCE_WARNING: f64 = 0.02;

/// One week's digest and what came back after it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub(crate) struct WeekRates {
    pub week: String,
    /// Messages the relay accepted.
    pub delivered: usize,
    pub hard: usize,
    pub soft: usize,
    pub block: usize,
    pub complaints: usize,
    pub leaves: usize,
    /// Refusals of the sender by receiving domain.
    pub block_by_domain: BTreeMap<String, usize>,
}

/// A digest as the ledger has it: its week, when it started, how many messages it sent.
pub(crate) struct Sent<'a> {
    pub week: &'a str,
    pub started_at: &'a str,
    pub delivered: usize,
}

/// What readers did in one calendar week (the newsletter's time zone).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Activity {
    pub week: String,
    /// Requests from the subscribe form (confirmed or not).
    pub asked: usize,
    pub confirmed: usize,
    /// Choices saved on the preferences page.
    pub changed: usize,
    pub left: usize,
}

/// [`Activity`] per week, oldest first, from the store's events.
pub(crate) fn activity_by_week(events: &[Event], tz: chrono_tz::Tz) -> Vec<Activity> {
    let mut weeks: BTreeMap<String, Activity> = BTreeMap::new();
    for event in events {
        let Ok(at) = DateTime::parse_from_rfc3339(&event.at) else {
            continue;
        };
        let week = crate::week::Week::of_instant(at.with_timezone(&tz), tz).to_string();
        let entry = weeks.entry(week.clone()).or_insert_with(|| Activity {
            week,
            ..Activity::default()
        });
        match event.class.as_str() {
            "join" => entry.asked += 1,
            "confirm" => entry.confirmed += 1,
            "change" => entry.changed += 1,
            "leave" => entry.left += 1,
            _ => {}
        }
    }
    weeks
        .into_values()
        .filter(|a| a.asked + a.confirmed + a.changed + a.left > 0)
        .collect()
}

/// The rates of every digest in `sends`, findings attributed to the latest one sent
/// before each.
pub(crate) fn per_week(sends: &[Sent], events: &[Event]) -> Vec<WeekRates> {
    let mut weeks: Vec<(DateTime<FixedOffset>, WeekRates)> = sends
        .iter()
        .filter_map(|s| {
            let started = DateTime::parse_from_rfc3339(s.started_at).ok()?;
            Some((
                started,
                WeekRates {
                    week: s.week.to_string(),
                    delivered: s.delivered,
                    ..WeekRates::default()
                },
            ))
        })
        .collect();
    weeks.sort_by_key(|(started, _)| *started);
    for event in events {
        let Ok(at) = DateTime::parse_from_rfc3339(&event.at) else {
            continue;
        };
        let Some((_, rates)) = weeks.iter_mut().rev().find(|(started, _)| *started <= at) else {
            continue;
        };
        match event.class.as_str() {
            "hard" => rates.hard += 1,
            "soft" => rates.soft += 1,
            "block" => {
                rates.block += 1;
                *rates
                    .block_by_domain
                    .entry(event.domain.clone())
                    .or_default() += 1;
            }
            "complaint" => rates.complaints += 1,
            "leave" => rates.leaves += 1,
            // What readers do on the web (join, confirm, change) is not about a digest.
            _ => {}
        }
    }
    weeks.into_iter().map(|(_, rates)| rates).collect()
}

impl WeekRates {
    /// `part` of the messages delivered, as a percentage for people.
    pub(crate) fn percent(&self, part: usize) -> String {
        if self.delivered == 0 {
            return "-".into();
        }
        format!("{:.2}%", 100.0 * part as f64 / self.delivered as f64)
    }

    /// What a sender should act on before the next digest.
    pub(crate) fn warnings(&self) -> Vec<String> {
        let share = |n: usize| {
            if self.delivered == 0 {
                0.0
            } else {
                n as f64 / self.delivered as f64
            }
        };
        let mut out = Vec::new();
        if share(self.complaints) > COMPLAINT_WARNING {
            out.push(format!(
                "{}: complaints at {} ({} of {}): above 0.1%; Gmail and Yahoo refuse bulk mail above 0.3%",
                self.week,
                self.percent(self.complaints),
                self.complaints,
                self.delivered
            ));
        }
        if share(self.hard) > HARD_BOUNCE_WARNING {
            out.push(format!(
                "{}: hard bounces at {} ({} of {}): above 2%; the list holds addresses that no longer exist",
                self.week,
                self.percent(self.hard),
                self.hard,
                self.delivered
            ));
        }
        for (domain, n) in &self.block_by_domain {
            let domain = if domain.is_empty() {
                "an unknown domain"
            } else {
                domain
            };
            out.push(format!(
                "{domain} refused {n} messages as spam or by policy in {} (the addresses are kept)",
                self.week
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: &str, class: &str, domain: &str) -> Event {
        Event {
            at: at.into(),
            class: class.into(),
            domain: domain.into(),
        }
    }

    #[test]
    fn findings_count_against_the_latest_digest_before_them() {
        let sends = [
            Sent {
                week: "2011-W51",
                started_at: "2011-12-26T07:00:00+00:00",
                delivered: 1000,
            },
            Sent {
                week: "2011-W52",
                started_at: "2012-01-02T07:00:00Z",
                delivered: 400,
            },
        ];
        let events = [
            event("2011-12-20T00:00:00+00:00", "hard", "x.test"),
            event("2011-12-26T09:00:00+00:00", "hard", "a.test"),
            event("2011-12-27T09:00:00+01:00", "complaint", "a.test"),
            event("2012-01-02T08:00:00+00:00", "block", "gmail.com"),
            event("2012-01-02T08:00:01+00:00", "block", "gmail.com"),
            event("2012-01-03T08:00:00+00:00", "leave", ""),
            event("2012-01-03T09:00:00+00:00", "complaint", "b.test"),
        ];
        let rates = per_week(&sends, &events);
        assert_eq!((rates[0].hard, rates[0].complaints), (1, 1));
        assert_eq!(
            (rates[1].block, rates[1].leaves, rates[1].complaints),
            (2, 1, 1)
        );
        assert_eq!(rates[1].block_by_domain["gmail.com"], 2);
        assert!(rates[0].warnings().is_empty(), "0.1% is not above 0.1%");
        let warnings = rates[1].warnings();
        assert!(
            warnings[0].starts_with("2011-W52: complaints at 0.25% (1 of 400)"),
            "{warnings:?}"
        );
        assert_eq!(
            warnings[1],
            "gmail.com refused 2 messages as spam or by policy in 2011-W52 (the addresses are kept)"
        );
    }

    #[test]
    fn readers_activity_is_counted_by_calendar_week_in_the_newsletters_zone() {
        let events = [
            // 22:30 UTC on Sunday 1 January is 23:30 in Paris: still week 52 there.
            event("2012-01-01T22:30:00+00:00", "join", ""),
            event("2012-01-01T22:40:00+00:00", "confirm", ""),
            event("2012-01-02T09:00:00+00:00", "change", ""),
            event("2012-01-03T09:00:00+00:00", "leave", ""),
            event("2012-01-03T09:00:00+00:00", "hard", "a.test"),
        ];
        let weeks = activity_by_week(&events, chrono_tz::Europe::Paris);
        let line = |a: &Activity| (a.week.clone(), a.asked, a.confirmed, a.changed, a.left);
        assert_eq!(
            weeks.iter().map(line).collect::<Vec<_>>(),
            [
                ("2011-W52".to_string(), 1, 1, 0, 0),
                ("2012-W01".to_string(), 0, 0, 1, 1)
            ]
        );
    }
}
