//! Command handlers, one file per command: each loads what its command needs, calls the
//! stages, prints, and returns the exit status. The only modules that print or read the
//! clock.

use std::sync::atomic::{AtomicU8, Ordering};

/// `--quiet` (0), default (1), `--verbose` (2).
static VERBOSITY: AtomicU8 = AtomicU8::new(1);

/// Set once by `run`, from `--quiet` / `--verbose`.
pub(crate) fn set_verbosity(quiet: bool, verbose: bool) {
    let level = if quiet { 0 } else { 1 + u8::from(verbose) };
    VERBOSITY.store(level, Ordering::Relaxed);
}

pub(crate) fn verbosity() -> u8 {
    VERBOSITY.load(Ordering::Relaxed)
}

/// `--offline`: feeds are not fetched, the kept items are used.
static OFFLINE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub(crate) fn set_offline(offline: bool) {
    OFFLINE.store(offline, Ordering::Relaxed);
}

/// How a command fetches feeds: `strict` for a real send (a feed that cannot be fetched
/// stops it), lenient for a look (a warning, when items of it are kept).
pub(crate) fn feed_mode(strict: bool) -> crate::sources::feeds::Fetch {
    use crate::sources::feeds::Fetch;
    match (OFFLINE.load(Ordering::Relaxed), strict) {
        (true, _) => Fetch::Offline,
        (false, true) => Fetch::Strict,
        (false, false) => Fetch::Lenient,
    }
}

/// Print a line of the report (what was done; silenced by `--quiet`). Data a command was
/// asked for (`weeks`, `status`, `--json`) goes through [`emit!`] instead. `send` keeps
/// SIGPIPE ignored so that it always finishes and records what is in flight; a closed
/// stdout (`digestif send | head`) must not turn the report into a panic, so write errors
/// are ignored.
macro_rules! say {
    ($($arg:tt)*) => {{
        if $crate::commands::verbosity() >= 1 {
            emit!($($arg)*);
        }
    }};
}

/// Print a line only with `--verbose`: the defaults used, where things were found.
macro_rules! detail {
    ($($arg:tt)*) => {{
        if $crate::commands::verbosity() >= 2 {
            emit!($($arg)*);
        }
    }};
}

/// Print a line of data to stdout, whatever the verbosity.
macro_rules! emit {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// A warning on stderr (never silenced: it is about something the user should fix),
/// coloured on a terminal.
macro_rules! warn {
    ($($arg:tt)*) => {{
        let style = anstyle::AnsiColor::Yellow.on_default().bold();
        anstream::eprintln!("{style}warning{style:#}: {}", format_args!($($arg)*));
    }};
}

/// With `--verbose`, say which config file is used (it may come from a parent folder).
pub(crate) fn note_config(path: &std::path::Path) {
    detail!("config: {}", path.display());
}

/// Before writing `weeks`: stop if a post that cannot be read belongs to one of them; say
/// the rest (bad posts of other weeks, a generator's ignored typos) as warnings. The notes
/// about posts' markup (typos a generator ignores, shortcodes left out of excerpts) are
/// `check`'s business: `--quiet` (a cron job) leaves them out of a send or a preview.
pub(crate) fn ensure_weeks(
    site: &crate::site::Site,
    weeks: &[crate::week::Week],
) -> crate::error::Result<()> {
    let markup_notes = site.warnings.iter().filter(|_| verbosity() >= 1);
    for warning in site.ensure_weeks(weeks)?.iter().chain(markup_notes) {
        warn!("{}", warning.report());
    }
    Ok(())
}

/// The lock on the list, with the requests to leave written in when it is taken and when
/// it is let go; a failure then is a warning (they stay recorded for the next run).
pub(crate) fn guard<'a>(
    config: &'a crate::config::Config,
    catalog: &'a crate::audience::subscribers::Catalog,
    clock: crate::clock::Clock,
) -> crate::error::Result<crate::audience::optout::Guard<'a>> {
    crate::audience::optout::Guard::acquire(config, catalog, clock, |config, e| {
        warn!(
            "requests to leave are recorded but not yet written into {}: {e}",
            config.subscribers.display()
        );
    })
}

/// Write in what `serve` (or a mail) recorded and has not folded into the list yet, so a
/// command that reads the list reads what readers asked for. Only where there is a store,
/// and only if nothing holds the list (what holds it folds when it ends); a failure is a
/// warning.
pub(crate) fn fold_waiting(
    config: &crate::config::Config,
    catalog: &crate::audience::subscribers::Catalog,
    clock: crate::clock::Clock,
) {
    if !config.state_dir.join("optouts.sqlite").exists() {
        return;
    }
    if let Err(e) = crate::audience::optout::apply_if_free(config, catalog, clock) {
        warn!(
            "requests recorded by `serve` are not yet written into {}: {e}",
            config.subscribers.display()
        );
    }
}

pub(crate) mod archive;
pub(crate) mod check;
pub(crate) mod docs;
pub(crate) mod dry_run;
pub(crate) mod inbox;
pub(crate) mod init;
pub(crate) mod person;
pub(crate) mod preview;
pub(crate) mod previews;
pub(crate) mod schedule;
pub(crate) mod send;
pub(crate) mod serve;
pub(crate) mod setup;
pub(crate) mod status;
pub(crate) mod subscribers;
pub(crate) mod unsubscribe;
pub(crate) mod weeks;
