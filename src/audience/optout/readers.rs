//! Who is on the list, as far as a request to leave needs to know.

use std::collections::{HashMap, HashSet};

use super::index;
use crate::audience::subscribers::{self, Catalog, Status};
use crate::audience::token::{Index, Named, Secret};
use crate::config::Config;
use crate::error::Result;

/// Who is on the list, as far as a request to leave needs to know: each address key's
/// address and status, and the tokens that name them. Read without the lock (the file is
/// only ever replaced whole), and leniently: a reader can leave even while another entry
/// of the file has a mistake in it.
pub(crate) struct Readers {
    pub index: Option<Index>,
    by_key: HashMap<String, (String, Status)>,
}

impl Readers {
    /// The whole list, when a search for some readers cannot answer for sure.
    fn load(config: &Config, catalog: &Catalog) -> Result<Readers> {
        let mut by_key = HashMap::new();
        catalog.with(|known| {
            subscribers::stream_in_memory(&config.subscribers, known, &mut |s| {
                by_key.insert(s.key(), (s.email.to_string(), s.status));
            })
        })?;
        Ok(Readers {
            index: None,
            by_key,
        })
    }

    /// The readers of `keys` only: the file is searched for them and only the entries that
    /// may be theirs are parsed (the whole list is read as [`Readers::load`] does when that
    /// search cannot answer for sure). For a request naming its address.
    pub(crate) fn of(config: &Config, catalog: &Catalog, keys: &[String]) -> Result<Readers> {
        let found =
            catalog.with(|known| subscribers::patch::lookup(&config.subscribers, known, keys))?;
        match found {
            Some(by_key) => Ok(Readers {
                index: None,
                by_key,
            }),
            None => Readers::load(config, catalog),
        }
    }

    /// The readers named by `tokens` or by the address keys `keys`, found without holding
    /// the list in memory. A token of the first format holds its key under a MAC; an opaque
    /// one is looked up in `serve`'s reader index when that index is of the list as it is,
    /// else the list is read once, each entry's token computed and only the matches kept.
    /// Without a secret, tokens name nobody.
    pub(crate) fn named(
        config: &Config,
        catalog: &Catalog,
        secret: Option<Secret>,
        tokens: &[&str],
        keys: &[String],
    ) -> Result<Readers> {
        let found = match &secret {
            Some(secret) => keys_of_tokens(config, catalog, secret, tokens)?,
            None => Vec::new(),
        };
        let mut wanted: Vec<String> = keys.iter().chain(&found).cloned().collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut readers = Readers::of(config, catalog, &wanted)?;
        // An index of the few readers found: it resolves exactly the tokens asked about.
        readers.index = secret.map(|secret| Index::new(secret, found));
        Ok(readers)
    }

    /// Add the readers of `keys` (found as [`Readers::of`] finds them).
    pub(crate) fn include(
        &mut self,
        config: &Config,
        catalog: &Catalog,
        keys: &[String],
    ) -> Result<()> {
        let more = Readers::of(config, catalog, keys)?;
        self.by_key.extend(more.by_key);
        Ok(())
    }

    /// The address key a token stands for.
    pub(crate) fn resolve(&self, token: &str) -> Option<String> {
        self.index.as_ref()?.resolve(token)
    }

    /// (address, status) of a listed reader.
    pub(crate) fn get(&self, key: &str) -> Option<&(String, Status)> {
        self.by_key.get(key)
    }
}

/// The whole entry of the reader with address key `key`, searched for in the list (which
/// may hold a million), else streamed: the preferences page and `subscribers show` read
/// one person.
pub(crate) fn entry_of(
    config: &Config,
    catalog: &Catalog,
    key: &str,
) -> Result<Option<subscribers::Subscriber>> {
    let keys = [key.to_string()];
    if let Some(found) =
        catalog.with(|known| subscribers::patch::find(&config.subscribers, known, &keys))?
    {
        return Ok(found.into_iter().next());
    }
    let mut found = None;
    catalog.with(|known| {
        subscribers::stream(&config.subscribers, known, &mut |_, _| None, &mut |s| {
            if found.is_none() && subscribers::address_key(&s.email) == key {
                found = Some(s);
            }
        })
    })?;
    Ok(found)
}

/// The address keys the listed `tokens` stand for (see [`Readers::named`]).
fn keys_of_tokens(
    config: &Config,
    catalog: &Catalog,
    secret: &Secret,
    tokens: &[&str],
) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut opaque = HashSet::new();
    for token in tokens {
        match secret.read(token) {
            Some(Named::Key(key)) => keys.push(key),
            Some(Named::Tag(tag)) => {
                opaque.insert(tag);
            }
            None => {}
        }
    }
    if opaque.is_empty() {
        return Ok(keys);
    }
    let tags: Vec<[u8; 16]> = opaque.iter().copied().collect();
    let by_tag = match index::keys_if_current(config, secret, &tags) {
        Some(by_tag) => by_tag,
        None => scan_for_tags(config, catalog, secret, &opaque)?,
    };
    keys.extend(by_tag.into_values());
    Ok(keys)
}

/// The list read once for the readers whose tokens carry `tags` (the first entry of each,
/// as the index has it): one HMAC per entry until all are found, nothing else kept.
fn scan_for_tags(
    config: &Config,
    catalog: &Catalog,
    secret: &Secret,
    tags: &HashSet<[u8; 16]>,
) -> Result<HashMap<[u8; 16], String>> {
    let mut found = HashMap::new();
    catalog.with(|known| {
        subscribers::stream(&config.subscribers, known, &mut |_, _| None, &mut |s| {
            if found.len() < tags.len() {
                let key = s.key();
                let tag = secret.tag(&key);
                if tags.contains(&tag) {
                    found.entry(tag).or_insert(key);
                }
            }
        })
    })?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new(b"0123456789abcdef-readers-test".to_vec()).unwrap()
    }

    #[test]
    fn only_the_readers_named_are_found_and_each_token_names_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let list = "[[subscriber]]\nemail = \"jo@example.org\"\n\n\
                    [[subscriber]]\nemail = \"ana@example.org\"\nstatus = \"bounced\"\n\n\
                    [[subscriber]]\nemail = \"lea@example.org\"\n\n\
                    [[subscriber]]\nemail = \"kim@example.org\"\n";
        let (config, catalog) = super::super::newsletter_in(dir.path(), list);
        let s = secret();
        let (jo, ana) = (s.token("jo@example.org"), s.sign_legacy("ana@example.org"));
        let upper = s.token("kim@example.org").to_uppercase();
        let gone = s.token("gone@example.org");
        let tokens = [
            jo.as_str(),
            ana.as_str(),
            upper.as_str(),
            gone.as_str(),
            "junk",
        ];
        let keys = ["lea@example.org".to_string()];
        let readers = Readers::named(&config, &catalog, Some(secret()), &tokens, &keys).unwrap();
        assert_eq!(readers.resolve(&jo).as_deref(), Some("jo@example.org"));
        assert_eq!(readers.resolve(&ana).as_deref(), Some("ana@example.org"));
        assert_eq!(readers.resolve(&upper).as_deref(), Some("kim@example.org"));
        assert_eq!(readers.resolve(&gone), None);
        assert_eq!(readers.resolve("junk"), None);
        let ana_entry = readers.get("ana@example.org").cloned();
        assert_eq!(ana_entry, Some(("ana@example.org".into(), Status::Bounced)));
        assert!(readers.get("lea@example.org").is_some(), "named by address");
        let mut listed: Vec<&String> = readers.by_key.keys().collect();
        listed.sort();
        assert_eq!(
            listed,
            [
                "ana@example.org",
                "jo@example.org",
                "kim@example.org",
                "lea@example.org"
            ],
            "the readers named, not the list"
        );
        // Without the secret, a token names no one; an address still does.
        let blind = Readers::named(&config, &catalog, None, &[jo.as_str()], &keys).unwrap();
        assert_eq!(blind.resolve(&jo), None);
        assert!(blind.get("lea@example.org").is_some());
    }
}
