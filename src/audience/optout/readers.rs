//! Who is on the list, as far as a request to leave needs to know.

use std::collections::HashMap;

use crate::audience::subscribers::{self, Catalog, Status};
use crate::audience::token::{Index, Secret};
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
    /// `secret`: to resolve tokens; `None` when only addresses will be asked for.
    pub(crate) fn load(
        config: &Config,
        catalog: &Catalog,
        secret: Option<Secret>,
    ) -> Result<Readers> {
        let mut by_key = HashMap::new();
        catalog.with(|known| {
            subscribers::stream_in_memory(&config.subscribers, known, &mut |s| {
                by_key.insert(s.key(), (s.email.to_string(), s.status));
            })
        })?;
        let index = secret.map(|secret| Index::new(secret, by_key.keys().cloned()));
        Ok(Readers { index, by_key })
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
            None => Readers::load(config, catalog, None),
        }
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
