//! Each digest's rates, from what came back after it: hard and soft bounces, refusals of
//! the sender (per receiving domain), complaints and leaves. A finding counts against
//! the latest digest sent before it arrived.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};

use crate::audience::optout::Event;
use crate::week::Week;

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

/// What the store's events say, counted as they stream by (a store that has run for
/// years holds millions): each digest's rates, findings attributed to the latest digest
/// sent before each, and the readers' [`Activity`] by calendar week.
pub(crate) struct Tally {
    tz: chrono_tz::Tz,
    /// The digests by when they started, oldest first.
    digests: Vec<(DateTime<FixedOffset>, WeekRates)>,
    activity: BTreeMap<Week, Activity>,
}

impl Tally {
    pub(crate) fn new(sends: &[Sent], tz: chrono_tz::Tz) -> Tally {
        let mut digests: Vec<_> = sends
            .iter()
            .filter_map(|s| {
                let started = DateTime::parse_from_rfc3339(s.started_at).ok()?;
                let rates = WeekRates {
                    week: s.week.to_string(),
                    delivered: s.delivered,
                    ..WeekRates::default()
                };
                Some((started, rates))
            })
            .collect();
        digests.sort_by_key(|(started, _)| *started);
        Tally {
            tz,
            digests,
            activity: BTreeMap::new(),
        }
    }

    /// Count one event (one whose time cannot be read counts nowhere).
    pub(crate) fn add(&mut self, event: Event<'_>) {
        let Ok(at) = DateTime::parse_from_rfc3339(event.at) else {
            return;
        };
        match event.class {
            "join" | "confirm" | "change" => self.reader_did(at, event.class),
            "leave" => {
                self.reader_did(at, event.class);
                self.came_back(at, event);
            }
            _ => self.came_back(at, event),
        }
    }

    /// A finding (or a leave) against the digest before it.
    fn came_back(&mut self, at: DateTime<FixedOffset>, event: Event<'_>) {
        let after = self.digests.partition_point(|(started, _)| *started <= at);
        let Some((_, rates)) = after.checked_sub(1).map(|i| &mut self.digests[i]) else {
            return;
        };
        match event.class {
            "hard" => rates.hard += 1,
            "soft" => rates.soft += 1,
            "block" => {
                rates.block += 1;
                *rates
                    .block_by_domain
                    .entry(event.domain.to_string())
                    .or_default() += 1;
            }
            "complaint" => rates.complaints += 1,
            "leave" => rates.leaves += 1,
            _ => {}
        }
    }

    /// What a reader did on the web, or a leave, in its calendar week.
    fn reader_did(&mut self, at: DateTime<FixedOffset>, class: &str) {
        let week = Week::of_instant(at.with_timezone(&self.tz), self.tz);
        let entry = self.activity.entry(week).or_default();
        match class {
            "join" => entry.asked += 1,
            "confirm" => entry.confirmed += 1,
            "change" => entry.changed += 1,
            _ => entry.left += 1,
        }
    }

    /// Each digest's rates, oldest first.
    pub(crate) fn rates(&self) -> impl Iterator<Item = &WeekRates> {
        self.digests.iter().map(|(_, rates)| rates)
    }

    /// [`Activity`] per week with any, oldest first.
    pub(crate) fn activity(&self) -> Vec<Activity> {
        let weeks = self.activity.iter();
        weeks
            .map(|(week, a)| Activity {
                week: week.to_string(),
                ..a.clone()
            })
            .collect()
    }
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

    fn event<'a>(at: &'a str, class: &'a str, domain: &'a str) -> Event<'a> {
        Event { at, class, domain }
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
        let mut tally = Tally::new(&sends, chrono_tz::UTC);
        events.into_iter().for_each(|e| tally.add(e));
        let rates: Vec<_> = tally.rates().cloned().collect();
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
        let mut tally = Tally::new(&[], chrono_tz::Europe::Paris);
        events.into_iter().for_each(|e| tally.add(e));
        let weeks = tally.activity();
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
