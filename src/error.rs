//! Errors and diagnostics.
//!
//! A [`Diagnostic`] is one problem in one input file, located by line and column, so the
//! user can jump to it. Stages collect every diagnostic they find and return them together
//! ([`Error::Invalid`]) instead of stopping at the first one.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// 1-based column (in characters), when known.
    pub column: Option<usize>,
    pub message: String,
    /// The offending line and how many characters from `column` to underline.
    pub excerpt: Option<Box<(String, usize)>>,
    /// What to do about it, when there is a common fix.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(path: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            path: path.to_path_buf(),
            line: None,
            column: None,
            message: message.into(),
            excerpt: None,
            help: None,
        }
    }

    /// Add a `help:` line.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn at(path: &Path, line: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            line: Some(line),
            ..Diagnostic::new(path, message)
        }
    }

    /// Locate the diagnostic at byte `offset` of `source`.
    pub fn at_offset(path: &Path, source: &str, offset: usize, message: impl Into<String>) -> Self {
        Diagnostic::at_span(path, source, offset..offset + 1, message)
    }

    /// Locate the diagnostic at the bytes `span` of `source`, which the report underlines
    /// (up to the end of the first line).
    pub fn at_span(
        path: &Path,
        source: &str,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = line_col(source, span.start);
        let start = floor_char_boundary(source, span.start.min(source.len()));
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let text = source[line_start..line_end].trim_end_matches('\r');
        let end = floor_char_boundary(source, span.end.clamp(start, line_end.max(start)));
        let width = source[start..end].chars().count().max(1);
        Diagnostic {
            line: Some(line),
            column: Some(column),
            excerpt: Some(Box::new((text.to_string(), width))),
            ..Diagnostic::new(path, message)
        }
    }

    /// Turn a `toml` parse/deserialize error into a diagnostic. `base` is the byte offset of
    /// the TOML text inside `file_source` (non-zero for front matter).
    pub fn from_toml(path: &Path, file_source: &str, base: usize, err: &toml::de::Error) -> Self {
        let message = toml_message(err);
        match err.span() {
            Some(span) => Diagnostic::at_span(
                path,
                file_source,
                base + span.start..base + span.end,
                message,
            ),
            None => Diagnostic::new(path, message),
        }
    }

    /// The report for a person: the `file:line:column: message` line, then the source line
    /// with a caret under the problem, then the hint. Styled with ANSI codes, which
    /// [`anstream`] strips when stderr is not a terminal or `NO_COLOR` is set.
    pub fn report(&self) -> String {
        use anstyle::{AnsiColor, Style};
        let bold = Style::new().bold();
        let red = AnsiColor::Red.on_default().bold();
        let blue = AnsiColor::Blue.on_default().bold();
        let cyan = AnsiColor::Cyan.on_default().bold();
        let mut out = format!("{bold}{self}{bold:#}");
        if let (Some(line), Some(column), Some(excerpt)) = (self.line, self.column, &self.excerpt) {
            let (text, width) = &**excerpt;
            let number = line.to_string();
            let pad = " ".repeat(number.len());
            let shown = text.replace('\t', " ");
            let before = " ".repeat(column - 1);
            let carets = "^".repeat(*width);
            out.push_str(&format!(
                "\n{blue}{pad} |{blue:#}\n{blue}{number} |{blue:#} {shown}\n{blue}{pad} |{blue:#} {before}{red}{carets}{red:#}"
            ));
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("\n{cyan}help{cyan:#}: {help}"));
        }
        out
    }
}

/// The `toml` crate's message without its own rendering of the source, which would repeat
/// the location we already print.
fn toml_message(err: &toml::de::Error) -> String {
    err.message().trim().replace('\n', " ")
}

/// 1-based line and column of byte `offset` in `source`.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(source, offset.min(source.len()));
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// The SQLite files digestif keeps in its state folder (see `store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// `ledger.sqlite3`: who was sent what, week by week.
    Ledger,
    /// `optouts.sqlite`: requests to leave, bounces, the inbox's memory.
    Optouts,
    /// `feeds.sqlite`: the items of the feeds, kept between runs.
    Feeds,
    /// `readers.sqlite`: who each token names (derived from the list, rebuilt at will).
    Readers,
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Store::Ledger => "send ledger",
            Store::Optouts => "opt-out store",
            Store::Feeds => "feed cache",
            Store::Readers => "reader index",
        })
    }
}

/// Every error digestif reports to the user, grouped by cause. Each names the file,
/// setting, recipient or server it is about; the exit status follows from the cause.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input files with located problems: config, posts, notes, subscribers, wording.
    #[error("{}", render_diagnostics(.0))]
    Invalid(Vec<Diagnostic>),
    /// A file or folder that cannot be read or written.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The command line or the environment asks for something that cannot be done.
    #[error("{0}")]
    Usage(String),
    /// A setting that parses but cannot be used as it is (SMTP security rules, a password
    /// or secret that is not there). The message starts with the setting's name.
    #[error("{0}")]
    Setting(String),
    #[error("no published post in week {0}: nothing to write (see `digestif weeks`)")]
    EmptyWeek(String),
    /// A week that would reach nobody: nothing is recorded, so the week stays to send.
    #[error("{week} reaches nobody: {why}; nothing was sent or recorded, and the week stays to send\nhelp: add readers (`digestif subscribers add EMAIL`), then run `digestif send` again")]
    NoReaders { week: String, why: String },
    #[error("another digestif process holds the lock {}: {hint}", .path.display())]
    Locked { path: PathBuf, hint: &'static str },
    /// A template file (the stylesheet) that cannot be applied.
    #[error("{file}: {message}")]
    Template { file: String, message: String },
    /// The web archive's Atom feed could not be serialized.
    #[error("web archive: cannot write the Atom feed: {0}")]
    Feed(String),
    /// One recipient's message cannot be built (their address, a variant the ledger lacks).
    #[error("cannot build the message for {recipient}: {message}")]
    Message { recipient: String, message: String },
    /// A SQLite store cannot be read or written (for the ledger: nothing more is sent).
    #[error("{store} {}: {source}", .path.display())]
    Store {
        store: Store,
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// A store file that is not ours, or is a newer digestif's: left as it is.
    #[error("{store} {}: {why}", .path.display())]
    StoreUnusable {
        store: Store,
        path: PathBuf,
        why: String,
    },
    /// The send's journal (part of the ledger) cannot be read or written: nothing more is
    /// sent, and what went out is known from the lines before.
    #[error("send ledger journal {}: cannot {action}: {source}", .path.display())]
    Journal {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The state folder's ledger cannot be used as it is (lost, emptied, foreign, newer):
    /// nothing is sent until a person decides (the message says how).
    #[error("send ledger {}: {why}", .path.display())]
    LedgerUnusable { path: PathBuf, why: String },
    /// The SMTP server refused the session: TLS, authentication, a 5xx greeting.
    #[error("SMTP server {server}: {message}")]
    Smtp { server: String, message: String },
    /// A local transport (a file folder, sendmail) cannot take messages. Exit 1, since
    /// messages may already have gone out in this run.
    #[error("delivery: {0}")]
    Delivery(String),
}

impl Error {
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn store(store: Store, path: &Path, source: rusqlite::Error) -> Self {
        Error::Store {
            store,
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn ledger(path: &Path, source: rusqlite::Error) -> Self {
        Error::store(Store::Ledger, path, source)
    }

    pub fn journal(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Error::Journal {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn smtp(server: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Smtp {
            server: server.into(),
            message: message.into(),
        }
    }

    pub fn message(recipient: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Message {
            recipient: recipient.into(),
            message: message.into(),
        }
    }
}

fn render_diagnostics(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diagnostics.iter().enumerate() {
        if i > 0 {
            out.push_str("\nerror: ");
        }
        out.push_str(&d.to_string());
        if let Some(help) = &d.help {
            out.push_str(&format!("\nhelp: {help}"));
        }
    }
    if diagnostics.len() > 1 {
        out.push_str(&format!("\n{} problems found", diagnostics.len()));
    }
    out
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The full report for stderr, styled (see [`Diagnostic::report`]): each problem with its
    /// source line and hint, then the count.
    pub fn report(&self) -> String {
        let red = anstyle::AnsiColor::Red.on_default().bold();
        let error = format!("{red}error{red:#}: ");
        match self {
            Error::Invalid(diagnostics) => {
                let mut out = diagnostics
                    .iter()
                    .map(|d| format!("{error}{}", d.report()))
                    .collect::<Vec<_>>()
                    .join("\n");
                if diagnostics.len() > 1 {
                    out.push_str(&format!("\n{} problems found", diagnostics.len()));
                }
                out
            }
            other => format!("{error}{other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_that_cannot_be_written_is_a_failure_of_the_run_not_bad_input() {
        // Messages may already have gone out: cron must not read "nothing was sent" (2).
        let full = std::io::Error::other("No space left on device");
        let e = Error::journal("write", Path::new("state/journal/r-000001.log"), full);
        assert_eq!(e.exit_code(), exit::FAILURE);
        assert_eq!(
            e.to_string(),
            "send ledger journal state/journal/r-000001.log: cannot write: No space left on device"
        );
    }

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let src = "a\nété = 1\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 2), (2, 1));
        // byte 6 is after "été" (5 bytes) on line 2
        assert_eq!(line_col(src, 7), (2, 4));
    }

    #[test]
    fn the_report_underlines_the_value_and_gives_the_hint() {
        let src = "[newsletter]\nlangage = \"fr\"\n";
        let d = Diagnostic::at_span(Path::new("d.toml"), src, 13..20, "unknown key `langage`")
            .with_help("did you mean `language`?");
        let plain = anstream::adapter::strip_str(&d.report()).to_string();
        assert_eq!(
            plain,
            "d.toml:2:1: unknown key `langage`\n  |\n2 | langage = \"fr\"\n  | ^^^^^^^\nhelp: did you mean `language`?"
        );
    }

    #[test]
    fn diagnostics_render_as_file_line_column() {
        let d = Diagnostic::at_offset(Path::new("posts/a.md"), "x\ny", 2, "bad");
        assert_eq!(d.to_string(), "posts/a.md:2:1: bad");
    }
}

/// Exit codes, documented in the README.
pub mod exit {
    pub const SUCCESS: u8 = 0;
    /// Some messages failed permanently (5xx), or an SMTP/TLS/authentication failure.
    pub const FAILURE: u8 = 1;
    /// Invalid input, config or usage: nothing was sent.
    pub const INPUT: u8 = 2;
    /// Another digestif process holds the lock.
    pub const LOCKED: u8 = 3;
    /// Temporary failure (EX_TEMPFAIL): some messages deferred, or interrupted; run again.
    pub const TEMPFAIL: u8 = 75;
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Invalid(_)
            | Error::Usage(_)
            | Error::Setting(_)
            | Error::EmptyWeek(_)
            | Error::NoReaders { .. }
            | Error::Io { .. }
            | Error::Template { .. }
            | Error::LedgerUnusable { .. }
            | Error::Message { .. }
            | Error::StoreUnusable { .. } => exit::INPUT,
            // The feeds are read before anything is sent.
            Error::Store {
                store: Store::Feeds,
                ..
            } => exit::INPUT,
            Error::Locked { .. } => exit::LOCKED,
            Error::Feed(_)
            | Error::Store { .. }
            | Error::Journal { .. }
            | Error::Smtp { .. }
            | Error::Delivery(_) => exit::FAILURE,
        }
    }
}
