//! `digestif archive`: write the web archive and list the files written.

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::archive;
use crate::error::Result;
use crate::site::Site;

/// `digestif archive`.
pub(crate) fn run(config: &Path, out: &Path, now: DateTime<Utc>) -> Result<ExitCode> {
    let site = Site::load(config)?;
    for path in archive::write(&site, out, now)? {
        say!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
