//! Who a freeze is for: every active subscriber, or the addresses a command names.

use std::collections::{HashMap, HashSet};

use crate::audience::subscribers::{self, Subscriber};
use crate::error::{Error, Result};

/// Who a freeze is for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum To<'a> {
    /// Every active subscriber: the week's mailing.
    Everyone,
    /// These active subscribers only (`preview --as`: a subscriber's own message).
    Subscribers(&'a [String]),
    /// These addresses (`send --to`, a test copy): a subscriber gets their own message,
    /// anyone else the default one (every category, HTML, the newsletter's language).
    /// Someone who left or bounced is never mailed.
    Anyone(&'a [String]),
}

impl<'a> To<'a> {
    /// `send --to ADDRESS…`: nobody named means the whole list.
    pub(crate) fn named(addresses: &'a [String]) -> To<'a> {
        if addresses.is_empty() {
            To::Everyone
        } else {
            To::Anyone(addresses)
        }
    }
}

/// Who a run is for: every active subscriber, or only those named by `--to`.
pub(super) struct Audience {
    /// Address keys asked for with `--to`, with the address as typed.
    only: Option<HashMap<String, String>>,
    /// Whether addresses that are not in the list are mailed too.
    strangers: bool,
    found: HashSet<String>,
    unsubscribed: HashSet<String>,
}

impl Audience {
    pub(super) fn new(to: To<'_>) -> Result<Audience> {
        let (named, strangers) = match to {
            To::Everyone => (None, false),
            To::Subscribers(named) => (Some(named), false),
            To::Anyone(named) => (Some(named), true),
        };
        let mut only = HashMap::new();
        for email in named.unwrap_or_default() {
            let address: lettre::Address = email
                .parse()
                .map_err(|e| Error::Usage(format!("--to {email:?}: not a valid address ({e})")))?;
            only.insert(subscribers::address_key(&address), email.clone());
        }
        Ok(Audience {
            only: named.map(|_| only),
            strangers,
            found: HashSet::new(),
            unsubscribed: HashSet::new(),
        })
    }

    pub(super) fn wants(&mut self, s: &Subscriber) -> bool {
        let Some(only) = &self.only else {
            return s.is_active();
        };
        let key = s.key();
        if !only.contains_key(&key) {
            return false;
        }
        if !s.is_active() {
            self.unsubscribed.insert(key);
            return false;
        }
        self.found.insert(key);
        true
    }

    /// Every named address must be an active subscriber, or (with `To::Anyone`) not in the
    /// list at all; those are returned, to get the default message.
    pub(super) fn check(&self) -> Result<Vec<Subscriber>> {
        let mut strangers = Vec::new();
        for (key, email) in self.only.iter().flatten() {
            if self.unsubscribed.contains(key) {
                return Err(Error::Usage(format!(
                    "--to {email}: this subscriber is unsubscribed"
                )));
            }
            if self.found.contains(key) {
                continue;
            }
            if !self.strangers {
                return Err(Error::Usage(format!(
                    "--to {email}: not in the subscribers file"
                )));
            }
            let address = email
                .parse()
                .map_err(|e| Error::Usage(format!("--to {email:?}: not a valid address ({e})")))?;
            strangers.push(Subscriber::with_defaults(address));
        }
        Ok(strangers)
    }
}
