//! Command handlers, one file per command: each loads what its command needs, calls the
//! stages, prints, and returns the exit status. The only modules that print or read the
//! clock.

/// Print a line of the report. `send` keeps SIGPIPE ignored so that it always finishes and
/// records what is in flight; a closed stdout (`digestif send | head`) must not turn the
/// report into a panic, so write errors are ignored.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub(crate) mod archive;
pub(crate) mod check;
pub(crate) mod dry_run;
pub(crate) mod preview;
pub(crate) mod send;
pub(crate) mod status;
pub(crate) mod subscribers;
pub(crate) mod unsubscribe;
pub(crate) mod weeks;
