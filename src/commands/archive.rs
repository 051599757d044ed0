//! `digestif archive`: write the web archive and list the files written.

use std::path::Path;
use std::process::ExitCode;

use crate::archive;
use crate::clock::Clock;
use crate::error::Result;
use crate::site::Site;

/// `digestif archive`.
pub(crate) fn run(config: &Path, out: &Path, clock: Clock) -> Result<ExitCode> {
    let now = clock.start();
    let site = Site::load(config, super::feed_mode(false))?;
    let tz = site.config.timezone;
    let weeks: Vec<_> = crate::digest::weeks(&site.posts, tz, now)
        .into_iter()
        .map(|(week, _)| week)
        .filter(|week| week.is_complete(now, tz))
        .collect();
    super::ensure_weeks(&site, &weeks)?;
    for path in archive::write(&site, out, now)? {
        say!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
