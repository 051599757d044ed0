//! What every command starts from: the config file it is about, and the clock
//! (`DIGESTIF_NOW`).

use std::path::{Path, PathBuf};

use chrono::DateTime;

use crate::clock::Clock;
use crate::error::{Error, Result};

/// The config file: `--config` (a file, or a folder holding `digestif.toml`), else the
/// first `digestif.toml` in the current folder or a parent, as cargo and zola look for
/// theirs.
pub(crate) fn find_config(explicit: Option<&Path>) -> Result<PathBuf> {
    const NAME: &str = "digestif.toml";
    if let Some(path) = explicit {
        if !path.is_dir() {
            return Ok(path.to_path_buf());
        }
        let inside = path.join(NAME);
        if inside.is_file() {
            return Ok(inside);
        }
        return Err(Error::Usage(format!(
            "--config {}: is a folder, with no {NAME} in it\nhelp: pass the file itself, or \
             create a newsletter there with `digestif init {}`",
            path.display(),
            path.display()
        )));
    }
    let cwd = std::env::current_dir().map_err(|e| Error::io("read", Path::new("."), e))?;
    for (depth, dir) in cwd.ancestors().enumerate() {
        if dir.join(NAME).is_file() {
            // In the current folder, keep the short relative name in every message.
            return Ok(if depth == 0 {
                PathBuf::from(NAME)
            } else {
                dir.join(NAME)
            });
        }
    }
    Err(Error::Usage(format!(
        "no {NAME} in {} or any folder above it\nhelp: create a newsletter here with \
         `digestif init`, or name the config with --config PATH (or $DIGESTIF_CONFIG)",
        cwd.display()
    )))
}

/// The clock, or one that starts at the instant `DIGESTIF_NOW` pretends it is (for testing
/// schedules: an environment variable, not a flag, so it is in no help, completion or
/// manual page). Nothing below the commands reads the system clock: they are handed this
/// one.
pub(crate) fn clock() -> Result<Clock> {
    let now = std::env::var("DIGESTIF_NOW").ok().filter(|s| !s.is_empty());
    match now.as_deref() {
        None => Ok(Clock::system()),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|d| Clock::starting_at(d.to_utc()))
            .map_err(|e| {
                Error::Usage(format!(
                    "DIGESTIF_NOW: expected an RFC 3339 instant, found {s:?} ({e})"
                ))
            }),
    }
}

/// An output folder: the one given, else `default` in the newsletter's folder, wherever the
/// command is run from.
pub(crate) fn out_dir(config: &Path, out: Option<PathBuf>, default: &str) -> PathBuf {
    out.unwrap_or_else(|| config.parent().unwrap_or(Path::new("")).join(default))
}
