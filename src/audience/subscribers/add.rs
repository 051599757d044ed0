//! One reader added by the blogger (`subscribers add`): the rules for someone already
//! listed, and the values checked against the newsletter.

use std::path::Path;

use lettre::Address;

use super::{Catalog, Editor, NewSubscriber, Status};
use crate::error::{Error, Result};

/// What [`add`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Added {
    New(Address),
    /// They had left or bounced and come back (`--resubscribe`); their entry's line.
    Resubscribed {
        email: Address,
        line: usize,
    },
}

/// `new`'s categories and language are the newsletter's.
pub(crate) fn check_new(
    catalog: &Catalog,
    new: &NewSubscriber,
    has_language: &dyn Fn(&str) -> bool,
) -> Result<()> {
    if let Some(unknown) = new
        .categories
        .iter()
        .find(|c| !catalog.categories.contains(c))
    {
        return Err(Error::Usage(format!(
            "--category {unknown:?} is not a category of the newsletter; known categories: {}",
            catalog.categories.join(", ")
        )));
    }
    if let Some(l) = new.language.as_deref().filter(|l| !has_language(l)) {
        return Err(Error::Usage(format!(
            "--language {l:?}: no wording for it; expected fr or en"
        )));
    }
    Ok(())
}

/// Add `address` with `new`'s values, or bring them back when `resubscribe` says they
/// asked to. Someone already subscribed, or who left without `resubscribe`, is refused
/// with the entry's place. `has_language` tells whether the newsletter has wording for a
/// language. The caller saves the editor.
pub(crate) fn add(
    editor: &mut Editor,
    catalog: &Catalog,
    address: Address,
    new: &NewSubscriber,
    resubscribe: bool,
    has_language: &dyn Fn(&str) -> bool,
) -> Result<Added> {
    let path = editor.path().to_path_buf();
    check_new(catalog, new, has_language)?;
    let Some(existing) = editor.find(&address).cloned() else {
        editor.add(new, address.clone());
        return Ok(Added::New(address));
    };
    let place = |p: &Path| format!("{} line {}", p.display(), existing.line);
    match existing.status {
        Status::Active => Err(Error::Usage(format!(
            "{} is already subscribed ({})",
            existing.email,
            place(&path)
        ))),
        _ if resubscribe => {
            editor.set_status(&address, Status::Active);
            Ok(Added::Resubscribed {
                email: existing.email,
                line: existing.line,
            })
        }
        status => Err(Error::Usage(format!(
            "{} {} earlier ({}): add --resubscribe if they asked to come back",
            existing.email,
            status.as_str(),
            place(&path)
        ))),
    }
}
