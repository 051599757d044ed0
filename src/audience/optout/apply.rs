//! Requests to leave written into the subscribers file: at once when the lock is free,
//! else by whoever holds it, when they let it go.

use std::collections::{HashMap, HashSet};

use super::{already_left, Optouts, Readers};
use crate::audience::subscribers::{self, Catalog, Editor, Status};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::lock::Lock;

/// What [`apply_pending`] wrote.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// (address, new status) for each subscriber whose entry changed, joins included.
    pub changed: Vec<(String, Status)>,
}

/// Write confirmed joins into the list: a new entry at the end (with a `since` date and a
/// comment naming the form and the confirmation), or an entry that had left made active
/// again (a person may change their mind). An address that complained about our mail is
/// never added back this way: only by the blogger (`subscribers add --resubscribe`).
/// A confirmation in `serve` lands here: the list is searched, not parsed whole, unless the
/// search cannot be sure.
/// Returns the addresses of the readers who joined or came back.
fn apply_joins(
    config: &Config,
    catalog: &Catalog,
    store: &Optouts,
    clock: Clock,
) -> Result<Vec<String>> {
    let unapplied = store.unapplied_joins()?;
    if unapplied.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = unapplied.iter().map(|j| j.id).collect();
    let mut joins = Vec::new();
    for join in unapplied {
        if !store.complained(&join.key)? && join.email.parse::<lettre::Address>().is_ok() {
            joins.push(join);
        }
    }
    let keys: Vec<String> = joins.iter().map(|j| j.key.clone()).collect();
    let path = &config.subscribers;
    let listed = if keys.is_empty() {
        Some(HashMap::new())
    } else {
        catalog.with(|k| subscribers::patch::lookup(path, k, &keys))?
    };
    match listed {
        Some(listed) => {
            let (mut back, mut new, mut seen) = (HashMap::new(), Vec::new(), HashSet::new());
            for join in &joins {
                match listed.get(&join.key) {
                    Some((_, Status::Active)) => {}
                    Some(_) => {
                        back.insert(join.key.clone(), Status::Active);
                    }
                    None if seen.insert(join.key.clone()) => new.push(joined_entry(join, clock)),
                    None => {}
                }
            }
            let never = |current: Status, asked: Status| current == asked;
            let set = catalog.with(|k| subscribers::patch::set_statuses(path, k, &back, &never))?;
            if set.is_none() {
                join_whole(config, catalog, &joins, clock)?;
            } else if !new.is_empty() {
                subscribers::patch::append(path, &new.join("\n"))?;
            }
        }
        None => join_whole(config, catalog, &joins, clock)?,
    }
    store.mark_joins_applied(&ids)?;
    Ok(joins.into_iter().map(|j| j.email).collect())
}

/// [`apply_joins`] through the whole edit, when a search of the list cannot be sure.
fn join_whole(
    config: &Config,
    catalog: &Catalog,
    joins: &[super::Join],
    clock: Clock,
) -> Result<()> {
    let mut editor = catalog.with(|k| Editor::open(&config.subscribers, k))?;
    let mut changed = false;
    for join in joins {
        let Ok(email) = join.email.parse::<lettre::Address>() else {
            continue;
        };
        match editor.find(&email).map(|s| s.status) {
            Some(Status::Active) => {}
            Some(_) => changed |= editor.set_status(&email, Status::Active),
            None => {
                let (note, new) = (join_note(join), new_subscriber(join, clock));
                editor.add_noted(&new, email, &note);
                changed = true;
            }
        }
    }
    if changed {
        editor.save()?;
    }
    Ok(())
}

/// Why a joined reader's entry is there, as a comment above it.
fn join_note(join: &super::Join) -> String {
    format!(
        "# joined through {} (asked {}, confirmed {})",
        crate::text::header_safe(&join.form),
        join.asked_at,
        join.confirmed_at
    )
}

/// A joined reader's entry as the file holds it, its note above.
fn joined_entry(join: &super::Join, clock: Clock) -> String {
    let Ok(email) = join.email.parse::<lettre::Address>() else {
        return String::new();
    };
    let entry = subscribers::entry_text(&new_subscriber(join, clock), &email);
    format!("{}\n{entry}", join_note(join))
}

/// Write readers' choices (preferences page) into their entries, each reader's latest.
fn apply_choices(config: &Config, catalog: &Catalog, store: &Optouts) -> Result<()> {
    let choices = store.unapplied_choices()?;
    if choices.is_empty() {
        return Ok(());
    }
    let latest: HashMap<String, subscribers::Choices> = choices
        .iter()
        .map(|(_, key, chosen)| (key.clone(), chosen.clone()))
        .collect();
    let path = &config.subscribers;
    if catalog
        .with(|k| subscribers::patch::set_choices(path, k, &latest))?
        .is_none()
    {
        let mut editor = catalog.with(|k| Editor::open(path, k))?;
        let mut changed = false;
        for (key, chosen) in &latest {
            changed |= editor.set_choices(key, chosen);
        }
        if changed {
            editor.save()?;
        }
    }
    let ids: Vec<i64> = choices.iter().map(|(id, _, _)| *id).collect();
    store.mark_choices_applied(&ids)
}

/// The list entry a join asks for.
fn new_subscriber(join: &super::Join, clock: Clock) -> subscribers::NewSubscriber {
    let p = &join.prefs;
    subscribers::NewSubscriber {
        name: p.name.clone(),
        categories: p.categories.clone(),
        format: match p.format.as_deref() {
            Some("text") => Some(subscribers::Format::Text),
            _ => None,
        },
        language: p.language.clone(),
        since: Some(clock.now().date_naive()),
    }
}

/// Write every pending request into the subscribers file (comments and order kept). The
/// caller holds the lock; a request for someone already gone, or already in that status,
/// changes nothing.
pub(crate) fn apply_pending(
    config: &Config,
    catalog: &Catalog,
    _lock: &Lock,
    clock: Clock,
) -> Result<Applied> {
    let store = Optouts::open(&config.state_dir, clock)?;
    let joined = apply_joins(config, catalog, &store, clock)?;
    apply_choices(config, catalog, &store)?;
    let mut applied = Applied {
        changed: joined.into_iter().map(|e| (e, Status::Active)).collect(),
    };
    let pending = store.pending()?;
    let (Some(first), Some(last)) = (pending.first(), pending.last()) else {
        return Ok(applied);
    };
    let (first, last) = (first.id, last.id);
    // The latest request per reader, written in one pass over the file that parses only
    // those readers' entries (the whole list is parsed when that pass cannot be sure).
    let changes: HashMap<String, Status> =
        pending.iter().map(|r| (r.key.clone(), r.status)).collect();
    let patched = catalog.with(|known| {
        subscribers::patch::set_statuses(&config.subscribers, known, &changes, &|current, asked| {
            already_left(current, asked)
        })
    })?;
    if let Some(changed) = patched {
        applied.changed.extend(changed);
        store.mark_applied(first, last)?;
        return Ok(applied);
    }
    let mut editor = catalog.with(|k| Editor::open(&config.subscribers, k))?;
    let before = applied.changed.len();
    for request in &pending {
        let Some(s) = editor.subscribers.iter().find(|s| s.key() == request.key) else {
            continue;
        };
        if !already_left(s.status, request.status) {
            let email = s.email.clone();
            editor.set_status(&email, request.status);
            applied.changed.push((email.to_string(), request.status));
        }
    }
    if applied.changed.len() > before {
        editor.save()?;
    }
    // After the save: a crash between the two applies the same requests again, harmlessly.
    store.mark_applied(first, last)?;
    Ok(applied)
}

/// The lock, held by a send or an edit of the list, with the requests to leave written in
/// when it is taken and again when it is let go (the end of a send, an error, a signal
/// that ends the run), so that none waits for the next run.
pub(crate) struct Guard<'a> {
    config: &'a Config,
    catalog: &'a Catalog,
    lock: Option<Lock>,
    clock: Clock,
    /// Told when the requests cannot be written in at the end (they stay recorded, and
    /// the next send or edit writes them in): the caller says so to the user.
    late_failure: LateFailure,
}

/// What the holder of a [`Guard`] does with a failure to write the requests in at the end.
pub(crate) type LateFailure = fn(&Config, &Error);

impl<'a> Guard<'a> {
    pub(crate) fn acquire(
        config: &'a Config,
        catalog: &'a Catalog,
        clock: Clock,
        late_failure: LateFailure,
    ) -> Result<Guard<'a>> {
        // Before the lock: a list that is not a regular file must not hold it.
        crate::fsutil::ensure_regular(&config.subscribers, "the subscriber list")?;
        let lock = Lock::acquire(&config.state_dir)?;
        apply_pending(config, catalog, &lock, clock)?;
        Ok(Guard {
            config,
            catalog,
            lock: Some(lock),
            clock,
            late_failure,
        })
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let Some(lock) = self.lock.take() else { return };
        if let Err(e) = apply_pending(self.config, self.catalog, &lock, self.clock) {
            (self.late_failure)(self.config, &e);
        }
    }
}

/// Apply pending requests now if no send or edit holds the lock; `None` when one does
/// (it applies them when it ends).
pub(crate) fn apply_if_free(
    config: &Config,
    catalog: &Catalog,
    clock: Clock,
) -> Result<Option<Applied>> {
    match Lock::try_fold(&config.state_dir)? {
        Some(lock) => apply_pending(config, catalog, &lock, clock).map(Some),
        None => Ok(None),
    }
}

/// What became of a request to leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Left {
    /// Recorded and written into the subscribers file.
    Done { email: String },
    /// Recorded; the file is updated when the running send or edit ends, and a running
    /// send skips them from now on.
    Waiting { email: String },
    /// Already in that status (or bounced): nothing recorded.
    Already { email: String, status: Status },
    /// Not in the list.
    NotListed,
}

/// Record that the reader `key` leaves with `status`, then write it into the file if the
/// lock is free. The request is durable before this returns, whatever the lock.
pub(crate) fn leave(
    config: &Config,
    catalog: &Catalog,
    readers: &Readers,
    key: &str,
    status: Status,
    source: &str,
    clock: Clock,
) -> Result<Left> {
    let Some((email, current)) = readers.get(key).cloned() else {
        return Ok(Left::NotListed);
    };
    if already_left(current, status) {
        return Ok(Left::Already {
            email,
            status: current,
        });
    }
    Optouts::open(&config.state_dir, clock)?.record(key, status, source)?;
    Ok(match apply_if_free(config, catalog, clock)? {
        Some(_) => Left::Done { email },
        None => Left::Waiting { email },
    })
}
