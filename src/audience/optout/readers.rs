//! Who is on the list, as far as a request to leave needs to know.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use crate::audience::subscribers::{self, Catalog, Status};
use crate::audience::token::{self, Index, Purpose, Secret};
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

/// The readers as the list file is now: read again when the file changed since the last
/// look (the file is only ever replaced whole, so its stamp tells). For a long-running
/// endpoint.
pub(crate) struct LiveReaders {
    config: Config,
    catalog: Catalog,
    purpose: Purpose,
    /// The list as last read, with the file's stamp then.
    cached: Mutex<(Option<Stamp>, Arc<Readers>)>,
}

impl LiveReaders {
    /// Read the list now; `purpose` says whether the secret is required (see
    /// [`token::secret_for`]).
    pub(crate) fn new(config: &Config, catalog: &Catalog, purpose: Purpose) -> Result<LiveReaders> {
        let stamp = file_stamp(&config.subscribers);
        let secret = token::secret_for(&config.sender, purpose)?;
        let readers = Readers::load(config, catalog, secret)?;
        Ok(LiveReaders {
            config: config.clone(),
            catalog: catalog.clone(),
            purpose,
            cached: Mutex::new((stamp, Arc::new(readers))),
        })
    }

    /// The readers, read again if the file changed since the last call.
    pub(crate) fn current(&self) -> Result<Arc<Readers>> {
        let stamp = file_stamp(&self.config.subscribers);
        // A worker that panicked while holding the lock left a whole value behind.
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if cached.0 != stamp {
            let secret = token::secret_for(&self.config.sender, self.purpose)?;
            let readers = Readers::load(&self.config, &self.catalog, secret)?;
            *cached = (stamp, Arc::new(readers));
        }
        Ok(Arc::clone(&cached.1))
    }
}

/// A file's (modification time, length): it changed when this does.
type Stamp = (SystemTime, u64);

fn file_stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The whole entry of the reader with address key `key`, streamed from the list (which may
/// hold a million): the preferences page and `subscribers show` read one person.
pub(crate) fn entry_of(
    config: &Config,
    catalog: &Catalog,
    key: &str,
) -> Result<Option<subscribers::Subscriber>> {
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
