//! The campaign: which weeks a run sends, who gets which variant, and freezing both into
//! the ledger before the first message goes out. Fed by the site (what to say), the
//! subscribers (to whom) and the ledger (what was already done); the engine then works
//! through what is frozen. Prints nothing and reads no clock: `now` is an argument.

mod audience;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

use crate::audience::subscribers::{self, Catalog, Format, Subscriber};
use crate::delivery::ledger::{AudienceRow, Ledger, State, Variant};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::kind::Kind;
use crate::render::{Rendered, Renderer};
use crate::site::Site;
use crate::templates::{Strings, Templates};
use crate::week::Week;
use audience::Audience;
pub(crate) use audience::To;

/// What the command line asked for.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ask {
    /// `--week`: this week, complete or not.
    pub week: Option<Week>,
    /// `--to`: a test send to some subscribers, recorded apart.
    pub test_send: bool,
    /// `--retry-failed`: weeks with failed recipients are open again.
    pub retry_failed: bool,
}

/// On first use, a week that ended more than this many days ago is not sent without
/// `--week`: installing digestif on a quiet blog must not mail out months-old news.
pub(crate) const FIRST_USE_MAX_AGE_DAYS: i64 = 7;

/// The weeks a run sends, and what it held back.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Selection {
    /// Oldest first.
    pub weeks: Vec<Week>,
    /// First use only: the latest complete week, not sent because it ended more than
    /// [`FIRST_USE_MAX_AGE_DAYS`] ago.
    pub too_old: Option<Week>,
}

/// Which weeks a run sends, oldest first.
pub(crate) fn select_weeks(
    site: &Site,
    ledger: Option<&Ledger>,
    ask: Ask,
    now: DateTime<Utc>,
) -> Result<Selection> {
    let tz = site.config.timezone;
    let recorded = match ledger {
        Some(l) => l.real_weeks(ask.retry_failed)?,
        None => Vec::new(),
    };
    let weeks = candidate_weeks(site, &recorded, ask, now)?;
    let first_use = recorded.is_empty();
    match weeks.as_slice() {
        [only]
            if first_use
                && ask.week.is_none()
                && !ask.test_send
                && only.days_since_end(now, tz) > FIRST_USE_MAX_AGE_DAYS =>
        {
            Ok(Selection {
                weeks: Vec::new(),
                too_old: Some(*only),
            })
        }
        _ => Ok(Selection {
            weeks,
            too_old: None,
        }),
    }
}

fn candidate_weeks(
    site: &Site,
    recorded: &[(Week, bool)],
    ask: Ask,
    now: DateTime<Utc>,
) -> Result<Vec<Week>> {
    let tz = site.config.timezone;
    if let Some(week) = ask.week {
        if site.digest(week, now).is_empty() {
            return Err(Error::EmptyWeek(week.to_string()));
        }
        // A real send of a week already sent to everyone has nothing left to do.
        let finished = !ask.test_send && recorded.contains(&(week, false));
        return Ok(if finished { vec![] } else { vec![week] });
    }
    if ask.test_send {
        // A test send previews the latest week with posts, finished or not.
        return Ok(site.latest_week(now).into_iter().collect());
    }
    let complete: Vec<Week> = crate::digest::weeks(&site.posts, tz, now)
        .into_iter()
        .map(|(w, _)| w)
        .filter(|w| w.is_complete(now, tz))
        .collect();
    Ok(new_weeks(&complete, recorded))
}

/// The weeks to send given the complete weeks with posts (newest first) and the ledger's
/// real sends (oldest first, each with "still open"): every open week, and every complete
/// week after the first one ever sent that was never sent. On first use (nothing
/// recorded) only the last complete week, never the whole archive.
fn new_weeks(complete: &[Week], recorded: &[(Week, bool)]) -> Vec<Week> {
    let Some(first) = recorded.first().map(|(w, _)| *w) else {
        return complete.first().copied().into_iter().collect();
    };
    let known: HashSet<Week> = recorded.iter().map(|(w, _)| *w).collect();
    let mut weeks: Vec<Week> = recorded
        .iter()
        .filter(|(_, open)| *open)
        .map(|(w, _)| *w)
        .collect();
    weeks.extend(
        complete
            .iter()
            .copied()
            .filter(|w| *w > first && !known.contains(w)),
    );
    weeks.sort();
    weeks.dedup();
    weeks
}

/// A rendered digest as the ledger keeps it: the parts with their markers, and the
/// greeting wording of its language.
pub(crate) fn frozen_variant(
    id: i64,
    rendered: Rendered,
    format: Format,
    strings: &Strings,
) -> Variant {
    Variant {
        id,
        subject: rendered.subject,
        html: (format == Format::Html).then_some(rendered.html),
        text: rendered.text,
        greeting_named: strings.greeting.clone(),
        greeting_anonymous: strings.greeting_anonymous.clone(),
    }
}

/// What makes two subscribers' messages differ beyond greeting and links:
/// chosen categories (sorted), format, language.
type VariantKey = (Option<Vec<String>>, Format, String);

/// Renders each distinct variant of a week once, the first time a subscriber needs it.
struct Variants<'s> {
    site: &'s Site,
    digest: Digest<'s>,
    renderers: HashMap<String, Renderer>,
    ids: HashMap<VariantKey, Option<i64>>,
    rendered: Vec<Variant>,
    hash: Sha256,
}

impl<'s> Variants<'s> {
    fn new(site: &'s Site, week: Week, now: DateTime<Utc>) -> Result<Variants<'s>> {
        let digest = site.digest(week, now);
        if digest.is_empty() {
            return Err(Error::EmptyWeek(week.to_string()));
        }
        Ok(Variants {
            site,
            digest,
            renderers: HashMap::new(),
            ids: HashMap::new(),
            rendered: Vec::new(),
            hash: Sha256::new(),
        })
    }

    /// The variant `s` gets; `None` when none of their categories has a post this week.
    fn id_for(&mut self, s: &Subscriber) -> Result<Option<i64>> {
        let language = s
            .language
            .clone()
            .unwrap_or_else(|| self.site.config.language.clone());
        let mut categories = s.categories.clone();
        if let Some(c) = categories.as_mut() {
            c.sort();
        }
        let key = (categories, s.format, language);
        if let Some(id) = self.ids.get(&key) {
            return Ok(*id);
        }
        let only = self.digest.only(key.0.as_deref());
        let id = if only.is_empty() {
            None
        } else {
            Some(self.render(&only, s.format, &key.2)?)
        };
        self.ids.insert(key, id);
        Ok(id)
    }

    fn render(&mut self, digest: &Digest<'_>, format: Format, language: &str) -> Result<i64> {
        if !self.renderers.contains_key(language) {
            let templates = Templates::load(&self.site.config.templates_dir, language)?;
            self.renderers.insert(
                language.to_string(),
                Renderer::new(&self.site.config, templates),
            );
        }
        let renderer = &self.renderers[language];
        let rendered = renderer.render(digest)?;
        let variant = frozen_variant(
            self.rendered.len() as i64,
            rendered,
            format,
            &renderer.templates().strings,
        );
        for part in [
            variant.subject.as_str(),
            variant.html.as_deref().unwrap_or(""),
            &variant.text,
        ] {
            self.hash.update(part.as_bytes());
            self.hash.update([0]);
        }
        self.rendered.push(variant);
        Ok(self.rendered.len() as i64 - 1)
    }

    /// The rendered variants and a hash of their content.
    fn finish(self) -> (Vec<Variant>, String) {
        let hash = crate::text::hex(&self.hash.finalize());
        (self.rendered, hash)
    }
}

/// Freeze `week`: stream the subscriber list once, validating it, rendering each variant
/// when first needed and recording the audience; any problem undoes the whole freeze.
/// Returns the audience's size.
pub(crate) fn freeze_week(
    site: &Site,
    catalog: &Catalog,
    ledger: &mut Ledger,
    week: Week,
    kind: &Kind,
    to: To<'_>,
    now: DateTime<Utc>,
) -> Result<usize> {
    let mut variants = Variants::new(site, week, now)?;
    let mut audience = Audience::new(to)?;
    // Readers a repaired ledger knows were served this week (see `Ledger::repair`).
    let recovered = match kind {
        Kind::Real => ledger.recovered(week)?,
        _ => HashMap::new(),
    };
    let served = |key: &str| -> Option<State> {
        if recovered.is_empty() {
            return None;
        }
        let id = crate::mail::message_id(week, key, &site.config.sender);
        recovered.get(&id).copied()
    };
    let mut freezer = ledger.freezer(week, kind)?;
    let mut failure: Option<Error> = None;
    let problems = catalog.with(|known| {
        subscribers::stream_hashed(&site.config.subscribers, known, &mut |sub| {
            // A reader who paused gets no digest for the weeks that end before the pause.
            let paused = sub.paused_until.is_some_and(|until| week.sunday() < until);
            if failure.is_some() || paused || !audience.wants(&sub) {
                return;
            }
            let key = sub.key();
            let was = served(&key);
            let added = variants.id_for(&sub).and_then(|variant| {
                let row = AudienceRow {
                    key,
                    email: sub.email.to_string(),
                    name: sub.name,
                    variant,
                };
                freezer.add_as(&row, was)
            });
            if let Err(e) = added {
                failure.get_or_insert(e);
            }
        })
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    for stranger in audience.check()? {
        let variant = variants.id_for(&stranger)?;
        freezer.add(&AudienceRow {
            key: stranger.key(),
            email: stranger.email.to_string(),
            name: None,
            variant,
        })?;
    }
    // A week is used up for a reader, never for the list: with nobody to mail, nothing
    // is committed (the freezer's transaction rolls back), and the week stays to send.
    if let (members, 0) = freezer.tally() {
        return Err(Error::NoReaders {
            week: week.to_string(),
            why: nobody_because(members, &site.config.subscribers),
        });
    }
    let (rendered, hash) = variants.finish();
    freezer.finish(&hash, &rendered)
}

/// Why a freeze reached nobody, for [`Error::NoReaders`].
fn nobody_because(members: usize, list: &std::path::Path) -> String {
    if members == 0 {
        format!("{} lists no active reader", list.display())
    } else {
        format!(
            "none of the {members} active readers in {} follows a category with a post that week",
            list.display()
        )
    }
}

/// For a week frozen by an earlier run: skip the recipients who left since, after checking
/// that the list is still valid.
pub(crate) fn skip_departed(
    site: &Site,
    catalog: &Catalog,
    ledger: &mut Ledger,
    week: Week,
    kind: &Kind,
) -> Result<()> {
    let mut problems = Vec::new();
    ledger.skip_departed(week, kind, |emit| {
        problems = catalog.with(|known| {
            subscribers::stream_in_memory(&site.config.subscribers, known, &mut |sub| {
                if sub.is_active() {
                    emit(&sub.key());
                }
            })
        })?;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(std::mem::take(&mut problems)))
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::subscribers::Status;

    fn w(s: &str) -> Week {
        s.parse().unwrap()
    }

    fn weeks(list: &[&str]) -> Vec<Week> {
        list.iter().map(|s| w(s)).collect()
    }

    #[test]
    fn first_use_sends_only_the_last_complete_week() {
        let complete = weeks(&["2012-W02", "2012-W01", "2011-W52"]);
        assert_eq!(new_weeks(&complete, &[]), weeks(&["2012-W02"]));
        assert_eq!(new_weeks(&[], &[]), []);
    }

    #[test]
    fn later_runs_send_open_weeks_and_every_new_week_oldest_first() {
        let complete = weeks(&["2012-W03", "2012-W02", "2012-W01", "2011-W52", "2011-W50"]);
        // W52 sent in full, W01 still has deferred readers; W50 predates the first send.
        let recorded = [(w("2011-W52"), false), (w("2012-W01"), true)];
        assert_eq!(
            new_weeks(&complete, &recorded),
            weeks(&["2012-W01", "2012-W02", "2012-W03"])
        );
        let all_done = [(w("2011-W52"), false), (w("2012-W01"), false)];
        assert_eq!(
            new_weeks(&complete, &all_done),
            weeks(&["2012-W02", "2012-W03"])
        );
    }

    #[test]
    fn nothing_is_new_when_every_week_was_sent() {
        let complete = weeks(&["2012-W01", "2011-W52"]);
        let recorded = [(w("2011-W52"), false), (w("2012-W01"), false)];
        assert_eq!(new_weeks(&complete, &recorded), []);
    }

    fn subscriber(email: &str, status: Status) -> Subscriber {
        Subscriber {
            email: email.parse().unwrap(),
            name: None,
            categories: None,
            format: Format::Html,
            language: None,
            status,
            since: None,
            paused_until: None,
            line: 1,
            place: (0, 0),
        }
    }

    #[test]
    fn the_audience_is_every_active_subscriber_without_to() {
        let mut audience = Audience::new(To::Everyone).unwrap();
        assert!(audience.wants(&subscriber("a@example.org", Status::Active)));
        assert!(!audience.wants(&subscriber("b@example.org", Status::Unsubscribed)));
        assert!(audience.check().unwrap().is_empty());
    }

    #[test]
    fn to_picks_active_subscribers_and_names_the_others() {
        let to = ["A@Example.org".to_string(), "gone@example.org".to_string()];
        let mut audience = Audience::new(To::Subscribers(&to)).unwrap();
        assert!(!audience.wants(&subscriber("other@example.org", Status::Active)));
        assert!(audience.wants(&subscriber("A@example.org", Status::Active)));
        assert_eq!(
            audience.check().unwrap_err().to_string(),
            "--to gone@example.org: not in the subscribers file"
        );
        let mut audience = Audience::new(To::Anyone(&to[1..])).unwrap();
        assert!(!audience.wants(&subscriber("gone@example.org", Status::Unsubscribed)));
        assert_eq!(
            audience.check().unwrap_err().to_string(),
            "--to gone@example.org: this subscriber is unsubscribed"
        );
        let bad = Audience::new(To::Anyone(&["not an address".to_string()]))
            .err()
            .unwrap();
        assert!(
            bad.to_string()
                .starts_with("--to \"not an address\": not a valid address ("),
            "{bad}"
        );
    }

    #[test]
    fn a_test_copy_goes_to_anyone_not_listed_with_the_defaults() {
        let to = ["A@Example.org".to_string(), "new@example.net".to_string()];
        let mut audience = Audience::new(To::Anyone(&to)).unwrap();
        assert!(audience.wants(&subscriber("A@example.org", Status::Active)));
        let strangers = audience.check().unwrap();
        assert_eq!(strangers.len(), 1);
        assert_eq!(strangers[0].email.to_string(), "new@example.net");
        assert_eq!(
            (&strangers[0].categories, strangers[0].format),
            (&None, Format::Html)
        );
    }
}
