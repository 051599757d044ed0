//! The subscriber list: a TOML file of `[[subscriber]]` tables that people edit by hand.
//!
//! This module holds the model (a [`Subscriber`] and what validating one needs to know);
//! [`parse`](parse::parse) and [`stream`] validate a whole file and report every problem
//! with its line; [`Editor`] changes entries without touching the bytes of the others.
//! Nothing here knows about weeks, messages or the ledger.

mod add;
mod edit;
mod entry;
mod import;
mod parse;
pub(crate) mod patch;
mod quick;
mod scan;

use std::collections::HashMap;

use chrono::NaiveDate;
use lettre::Address;
use serde::Serialize;

use crate::config::Config;
use crate::sources::Post;

pub(crate) use add::{add, check_new, Added};
pub(crate) use edit::{backup_path, entry_text, Choices, Editor, NewSubscriber};
pub(crate) use import::{import, Listed, Row};
pub(crate) use parse::{stream, stream_hashed, stream_in_memory};

/// The keys a `[[subscriber]]` table may have.
pub(crate) const FIELDS: &[&str] = &[
    "email",
    "name",
    "categories",
    "format",
    "language",
    "status",
    "since",
    "paused_until",
];

/// Whether a subscriber receives the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Active,
    /// Kept in the file so that an import never re-subscribes them.
    Unsubscribed,
    /// Their mail bounces for good (`digestif inbox`): never mailed, never re-imported.
    Bounced,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Unsubscribed => "unsubscribed",
            Status::Bounced => "bounced",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Status> {
        match s {
            "active" => Some(Status::Active),
            "unsubscribed" => Some(Status::Unsubscribed),
            "bounced" => Some(Status::Bounced),
            _ => None,
        }
    }
}

/// One validated subscriber.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Subscriber {
    pub email: Address,
    pub name: Option<String>,
    /// `None`: every category.
    pub categories: Option<Vec<String>>,
    pub format: Format,
    pub language: Option<String>,
    pub status: Status,
    pub since: Option<NaiveDate>,
    /// No digest for the weeks that end before this day (the reader paused).
    pub paused_until: Option<NaiveDate>,
    /// Line of the `[[subscriber]]` header in the file.
    pub line: usize,
    /// (block, table within the block) in the file, for edits.
    #[serde(skip)]
    pub(crate) place: (usize, usize),
}

impl Subscriber {
    /// Someone who is not in the list, with the newsletter's defaults (every category,
    /// HTML, its language): a test copy sent to any address.
    pub(crate) fn with_defaults(email: Address) -> Subscriber {
        Subscriber {
            email,
            name: None,
            categories: None,
            format: Format::Html,
            language: None,
            status: Status::Active,
            since: None,
            paused_until: None,
            line: 0,
            place: (0, 0),
        }
    }

    pub(crate) fn is_active(&self) -> bool {
        self.status == Status::Active
    }

    /// The identity used for duplicates, the ledger and tokens.
    pub(crate) fn key(&self) -> String {
        address_key(&self.email)
    }
}

/// The key of an address written as text (a mail's header, a ledger row); `None` when it
/// is not an address.
pub(crate) fn key_of_text(address: &str) -> Option<String> {
    address.parse().ok().map(|a| address_key(&a))
}

/// Two addresses are the same subscriber when their keys are equal: the local part as
/// written (mail systems may treat case there as significant), the domain lowercased and
/// in its ASCII (punycode) form, so `ünïcode.example` equals `xn--ncode-cta3g.example`.
pub(crate) fn address_key(address: &Address) -> String {
    let domain = address.domain();
    // An ASCII domain comes out of IDNA lowercased, or fails it and is lowercased: the
    // same either way, without IDNA's cost (this runs for every reader of every send).
    let ascii = if domain.is_ascii() {
        domain.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_lowercase())
    };
    format!("{}@{}", address.user(), ascii.to_lowercase())
}

/// Which parts a recipient gets.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Format {
    /// HTML with its plain-text alternative.
    Html,
    /// Plain text only.
    Text,
}

/// What validation needs to know about the newsletter.
pub struct Known<'a> {
    /// Categories subscribers may choose.
    pub categories: &'a [String],
    /// Languages that have wording.
    pub languages: &'a (dyn Fn(&str) -> bool + Sync),
}

/// The newsletter facts that subscriber validation needs.
#[derive(Clone)]
pub struct Catalog {
    pub categories: Vec<String>,
    templates_dir: std::path::PathBuf,
}

impl Catalog {
    /// Known categories: the configured ones, the default one, and every category a post uses.
    pub fn from_posts(config: &Config, posts: &[Post]) -> Catalog {
        let mut categories = config.categories.clone();
        categories.push(config.default_category.clone());
        categories.extend(posts.iter().map(|p| p.category.clone()));
        let mut seen = std::collections::HashSet::new();
        categories.retain(|c| seen.insert(c.clone()));
        Catalog {
            categories,
            templates_dir: config.templates_dir.clone(),
        }
    }

    pub fn with<T>(&self, f: impl FnOnce(&Known<'_>) -> T) -> T {
        let dir = self.templates_dir.clone();
        let languages = move |l: &str| crate::templates::has_language(&dir, l);
        f(&Known {
            categories: &self.categories,
            languages: &languages,
        })
    }
}

/// The usual memory of [`stream`]'s `seen`: the line where each address key was first
/// met, in a map. Returns the earlier line for a duplicate.
pub(crate) fn first_seen(
    seen: &mut HashMap<String, usize>,
    key: &str,
    line: usize,
) -> Option<usize> {
    match seen.get(key) {
        Some(first) => Some(*first),
        None => {
            seen.insert(key.to_string(), line);
            None
        }
    }
}

/// Duplicate addresses in a list of any size for 8 bytes per entry: the first pass keeps
/// a keyed 64-bit hash of each address key; only when two hashes meet does a second pass
/// ([`Hashed::exact`]) compare the addresses themselves, so a collision is never taken for
/// a duplicate and a million readers cost 8 MB, not the addresses.
#[derive(Default)]
pub(crate) struct Hashed {
    state: std::collections::hash_map::RandomState,
    hashes: Vec<u64>,
}

impl Hashed {
    /// Remember `key`.
    pub(crate) fn note(&mut self, key: &str) {
        use std::hash::BuildHasher;
        self.hashes.push(self.state.hash_one(key));
    }

    /// `None` when no two keys share a hash (no duplicates); else the second pass's `seen`,
    /// which remembers only the keys whose hash was met twice.
    pub(crate) fn exact(mut self) -> Option<Exact> {
        self.hashes.sort_unstable();
        let twice: std::collections::HashSet<u64> = self
            .hashes
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        (!twice.is_empty()).then(|| Exact {
            state: self.state,
            twice,
            seen: HashMap::new(),
        })
    }
}

/// The exact duplicate check of the keys a [`Hashed`] pass suspects.
pub(crate) struct Exact {
    state: std::collections::hash_map::RandomState,
    twice: std::collections::HashSet<u64>,
    seen: HashMap<String, usize>,
}

impl Exact {
    /// The line of an earlier entry with `key`, or `None` (and remember this one).
    pub(crate) fn seen(&mut self, key: &str, line: usize) -> Option<usize> {
        use std::hash::BuildHasher;
        if !self.twice.contains(&self.state.hash_one(key)) {
            return None;
        }
        first_seen(&mut self.seen, key, line)
    }
}

#[cfg(test)]
mod tests {
    use super::Hashed;

    #[test]
    fn hashed_keys_find_duplicates_and_the_exact_pass_names_the_first_line() {
        let mut hashed = Hashed::default();
        for key in ["a@x.org", "b@x.org", "c@x.org"] {
            hashed.note(key);
        }
        assert!(hashed.exact().is_none(), "no duplicate, no second pass");
        let mut hashed = Hashed::default();
        for key in ["a@x.org", "b@x.org", "a@x.org"] {
            hashed.note(key);
        }
        let mut exact = hashed.exact().expect("a duplicate");
        assert_eq!(exact.seen("a@x.org", 1), None);
        assert_eq!(exact.seen("b@x.org", 5), None, "not suspected");
        assert_eq!(exact.seen("b@x.org", 6), None, "not remembered either");
        assert_eq!(exact.seen("a@x.org", 9), Some(1));
    }
}
