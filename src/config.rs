//! Stage 1: the configuration file (`digestif.toml`).
//!
//! [`Config::parse`] is pure (text in, validated config or every problem out);
//! [`Config::load`] reads the file and resolves relative paths against its folder.
//! Secrets are never read here: the config only names where they live
//! (`password_env`, `password_file`, `unsubscribe_secret_env`).

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use lettre::message::Mailbox;
use lettre::Address;
use serde::Deserialize;
use toml::Spanned;
use url::Url;

use crate::error::{Diagnostic, Error, Result};
use crate::toml_input;

/// Placeholders the `subject` template may use.
pub const SUBJECT_PLACEHOLDERS: &[&str] =
    &["name", "week", "week_id", "count", "lead", "lead_and_more"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    newsletter: RawNewsletter,
    sender: RawSender,
    #[serde(default)]
    smtp: SmtpConfig,
    /// A generator's category name → the digest's section.
    #[serde(default)]
    category_names: std::collections::HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNewsletter {
    name: String,
    base_url: Spanned<String>,
    #[serde(default = "default_language")]
    language: Spanned<String>,
    #[serde(default = "default_timezone")]
    timezone: Spanned<String>,
    #[serde(default = "default_posts_dir")]
    posts_dir: PathBuf,
    #[serde(default = "default_templates_dir")]
    templates_dir: PathBuf,
    #[serde(default = "default_subscribers")]
    subscribers: PathBuf,
    #[serde(default = "default_state_dir")]
    state_dir: PathBuf,
    #[serde(default = "default_notes_dir")]
    notes_dir: PathBuf,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default = "default_category")]
    default_category: String,
    #[serde(default = "default_subject")]
    subject: Spanned<String>,
    archive_url: Option<Spanned<String>>,
    posts_format: Option<Spanned<String>>,
    permalink: Option<String>,
    #[serde(default)]
    feeds: Vec<String>,
    #[serde(default = "default_feed_timeout")]
    feed_timeout_s: u64,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
}

/// The values `newsletter.posts_format` takes.
pub const POSTS_FORMATS: &[&str] = &["auto", "digestif", "zola", "hugo", "jekyll"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSender {
    from: Spanned<String>,
    reply_to: Option<Spanned<String>>,
    list_id: Option<Spanned<String>>,
    unsubscribe_mailto: Option<Spanned<String>>,
    unsubscribe_url: Option<Spanned<String>>,
    #[serde(default = "default_secret_env")]
    unsubscribe_secret_env: String,
    bounce_address: Option<Spanned<String>>,
    #[serde(default = "default_soft_bounce_limit")]
    soft_bounce_limit: u32,
}

fn default_soft_bounce_limit() -> u32 {
    3
}

fn default_language() -> Spanned<String> {
    Spanned::new(0..0, "en".into())
}
fn default_timezone() -> Spanned<String> {
    Spanned::new(0..0, "UTC".into())
}
fn default_posts_dir() -> PathBuf {
    "posts".into()
}
fn default_templates_dir() -> PathBuf {
    "templates".into()
}
fn default_subscribers() -> PathBuf {
    "subscribers.toml".into()
}
fn default_state_dir() -> PathBuf {
    "state".into()
}
fn default_notes_dir() -> PathBuf {
    "notes".into()
}
fn default_category() -> String {
    "General".into()
}
fn default_subject() -> Spanned<String> {
    Spanned::new(0..0, "{name} — {lead_and_more}".into())
}
fn default_feed_timeout() -> u64 {
    20
}
fn default_secret_env() -> String {
    "DIGESTIF_UNSUBSCRIBE_SECRET".into()
}

/// How messages leave the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// SMTP submission to `host:port`.
    #[default]
    Smtp,
    /// Hand each message to the local MTA's `sendmail` command.
    Sendmail,
    /// Write each message as an `.eml` file into `file_dir`.
    File,
}

/// Transport security for SMTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS (required, never optional).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No encryption: only for loopback, or with `allow_insecure = true`.
    None,
}

/// The `[smtp]` table. Field names are the documented keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub transport: TransportKind,
    pub host: String,
    pub port: Option<u16>,
    pub tls: TlsMode,
    pub username: Option<String>,
    /// Name of the environment variable holding the password.
    pub password_env: Option<String>,
    /// File whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// PEM file of a CA to trust in addition to the system's roots.
    pub ca_file: Option<PathBuf>,
    pub timeout_s: u64,
    pub concurrency: usize,
    /// Messages per second over all connections; 0 means unlimited.
    pub rate_per_s: f64,
    pub allow_insecure: bool,
    /// Folder for `transport = "file"`.
    pub file_dir: PathBuf,
    /// Command for `transport = "sendmail"`.
    pub sendmail_command: Option<PathBuf>,
    /// Name sent in EHLO; defaults to the machine's name if fully qualified, else the From
    /// domain (see `transport::default_hello`).
    pub hello_name: Option<String>,
    /// Tries per message within one run before it is left deferred for the next run.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each further one.
    pub retry_delay_ms: u64,
    /// How many times a message whose outcome stayed unknown (no reply, or the connection
    /// lost, after the end of data) is sent again, over all runs. 0: never.
    pub resend_unknown: u32,
    /// "full" (default): the send journal is synced before each message's end of data, so
    /// the ledger survives power loss too; "normal": it survives a killed process, and a
    /// power loss may send again about 100 readers.
    pub ledger_sync: LedgerSync,
    /// No `host` in the file: errors say `localhost` was a default, not a choice.
    #[serde(skip)]
    pub host_is_default: bool,
}

/// Durability of the send's records (see `ledger::journal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LedgerSync {
    Normal,
    #[default]
    Full,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            transport: TransportKind::Smtp,
            host: "localhost".into(),
            port: None,
            tls: TlsMode::Starttls,
            username: None,
            password_env: None,
            password_file: None,
            ca_file: None,
            timeout_s: 30,
            concurrency: 4,
            rate_per_s: 0.0,
            allow_insecure: false,
            file_dir: "outbox".into(),
            sendmail_command: None,
            hello_name: None,
            max_attempts: 4,
            retry_delay_ms: 1000,
            resend_unknown: 1,
            ledger_sync: LedgerSync::Full,
            host_is_default: false,
        }
    }
}

impl SmtpConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            TlsMode::Tls => 465,
            TlsMode::Starttls => 587,
            TlsMode::None => 25,
        })
    }
}

/// Who the digest comes from and how readers leave.
#[derive(Debug, Clone)]
pub struct Sender {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// `List-Id` value, e.g. `veille.example.org`.
    pub list_id: String,
    pub unsubscribe_mailto: Option<String>,
    pub unsubscribe_url: Option<Url>,
    pub unsubscribe_secret_env: String,
    /// Envelope sender for bounces, VERP-style: `bounces@example.org` makes each reader's
    /// return path `bounces+TOKEN@example.org`, so a bounce names its reader. `None`: the
    /// From address, with no token.
    pub bounce_address: Option<Address>,
    /// Temporary delivery failures reported for one reader, on different messages, that
    /// mark them `bounced` (`digestif inbox`).
    pub soft_bounce_limit: u32,
}

impl Sender {
    /// Is there a way for readers to leave? Bulk mail without one is never sent.
    pub fn can_unsubscribe(&self) -> bool {
        self.unsubscribe_url.is_some() || self.unsubscribe_mailto.is_some()
    }
}

/// The validated configuration; every path is absolute or relative to the working folder.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub name: String,
    pub base_url: Url,
    pub language: String,
    pub timezone: Tz,
    pub posts_dir: PathBuf,
    pub templates_dir: PathBuf,
    pub subscribers: PathBuf,
    pub state_dir: PathBuf,
    pub notes_dir: PathBuf,
    pub categories: Vec<String>,
    pub default_category: String,
    pub subject: String,
    pub archive_url: Option<Url>,
    /// `newsletter.posts_format`: one of [`POSTS_FORMATS`] but "auto" (`None`).
    pub posts_format: Option<String>,
    /// `newsletter.permalink`: a post's page relative to `base_url`.
    pub permalink: Option<String>,
    /// `newsletter.exclude`: globs under `posts_dir` that are not posts.
    pub exclude: globset::GlobSet,
    /// `[category_names]`.
    pub category_names: std::collections::HashMap<String, String>,
    /// `newsletter.feeds`: URLs, or files relative to the config.
    pub feeds: Vec<String>,
    pub feed_timeout_s: u64,
    pub sender: Sender,
    pub smtp: SmtpConfig,
    /// The settings that matter and were left to their defaults, each as
    /// `key = value (what it means)`, for `check` to say.
    pub defaults: Vec<String>,
}

impl Config {
    /// Read and validate the config file at `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let source =
            std::fs::read_to_string(path).map_err(|e| Error::io("read config", path, e))?;
        let mut config = Config::parse(path, &source).map_err(Error::Invalid)?;
        let base = path.parent().unwrap_or(Path::new(""));
        for dir in [
            &mut config.posts_dir,
            &mut config.templates_dir,
            &mut config.subscribers,
            &mut config.state_dir,
            &mut config.notes_dir,
            &mut config.smtp.file_dir,
        ] {
            *dir = base.join(&*dir);
        }
        for file in [&mut config.smtp.password_file, &mut config.smtp.ca_file]
            .into_iter()
            .flatten()
        {
            *file = base.join(&*file);
        }
        Ok(config)
    }

    /// Validate `source`; `path` only labels diagnostics. Paths stay as written.
    pub fn parse(path: &Path, source: &str) -> Result<Config, Vec<Diagnostic>> {
        let partial = toml_input::deserialize_rest::<RawConfig>(path, source, 0, source);
        let mut problems = partial.problems;
        let Some(raw) = partial.value else {
            return Err(problems);
        };
        let n = &raw.newsletter;
        let timezone = match n.timezone.get_ref().parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                let written = n.timezone.get_ref();
                let close = toml_input::did_you_mean(
                    written,
                    chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()),
                );
                let unknown = Diagnostic::at_span(
                    path,
                    source,
                    n.timezone.span(),
                    format!(
                        "newsletter.timezone: unknown time zone {written:?}; expected an IANA name such as \"Europe/Paris\""
                    ),
                );
                problems.push(match close {
                    Some(name) => unknown.with_help(format!("did you mean \"{name}\"?")),
                    None => unknown,
                });
                None
            }
        };

        let mut check = |span: std::ops::Range<usize>, message: String| {
            problems.push(Diagnostic::at_span(path, source, span, message));
        };
        let base_url = match Url::parse(n.base_url.get_ref()) {
            Ok(url) if url.scheme() == "https" || url.scheme() == "http" => Some(as_folder(url)),
            Ok(_) | Err(_) => {
                check(
                    n.base_url.span(),
                    format!(
                        "newsletter.base_url: expected an absolute http(s) URL, found {:?}",
                        n.base_url.get_ref()
                    ),
                );
                None
            }
        };
        let language = n.language.get_ref().trim().to_string();
        if language.is_empty()
            || !language
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            check(
                n.language.span(),
                format!(
                    "newsletter.language: expected a language code such as \"fr\" or \"en\", found {:?}",
                    n.language.get_ref()
                ),
            );
        }
        for unknown in unknown_placeholders(n.subject.get_ref()) {
            check(
                n.subject.span(),
                format!(
                    "newsletter.subject: unknown placeholder {{{unknown}}}; expected one of {}",
                    SUBJECT_PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if n.name.trim().is_empty() {
            problems.push(Diagnostic::new(path, "newsletter.name: must not be empty"));
        }
        let archive_url = n.archive_url.as_ref().and_then(|u| {
            let parsed = Url::parse(u.get_ref()).ok().map(as_folder);
            if parsed.is_none() {
                problems.push(Diagnostic::at_span(
                    path,
                    source,
                    u.span(),
                    format!(
                        "newsletter.archive_url: expected an absolute URL, found {:?}",
                        u.get_ref()
                    ),
                ));
            }
            parsed
        });

        let posts_format = n.posts_format.as_ref().and_then(|f| {
            let value = f.get_ref().trim().to_lowercase();
            if !POSTS_FORMATS.contains(&value.as_str()) {
                problems.push(Diagnostic::at_span(
                    path,
                    source,
                    f.span(),
                    format!(
                        "newsletter.posts_format: expected one of {}, found {:?}",
                        POSTS_FORMATS.join(", "),
                        f.get_ref()
                    ),
                ));
            }
            (value != "auto").then_some(value)
        });
        let mut globs = globset::GlobSetBuilder::new();
        for pattern in &n.exclude {
            match globset::Glob::new(pattern.get_ref()) {
                Ok(glob) => {
                    globs.add(glob);
                }
                Err(e) => problems.push(Diagnostic::at_span(
                    path,
                    source,
                    pattern.span(),
                    format!(
                        "newsletter.exclude: {:?} is not a glob pattern ({e})",
                        pattern.get_ref()
                    ),
                )),
            }
        }
        let exclude = globs.build().unwrap_or_else(|_| globset::GlobSet::empty());

        let s = &raw.sender;
        let from = parse_mailbox(path, source, "sender.from", &s.from, &mut problems);
        let reply_to = s
            .reply_to
            .as_ref()
            .and_then(|r| parse_mailbox(path, source, "sender.reply_to", r, &mut problems));
        let unsubscribe_url = s.unsubscribe_url.as_ref().and_then(|u| {
            let problem = match Url::parse(u.get_ref()) {
                Ok(url) if url.scheme() == "https" && url.host().is_some() => return Some(url),
                Ok(url) if url.scheme() == "http" => {
                    "one-click unsubscribe (RFC 8058) requires https: put the endpoint behind TLS"
                        .to_string()
                }
                Ok(_) => "expected an https:// URL".to_string(),
                Err(e) => format!("expected an absolute https:// URL ({e})"),
            };
            problems.push(Diagnostic::at_span(
                path,
                source,
                u.span(),
                format!("sender.unsubscribe_url: {problem}, found {:?}", u.get_ref()),
            ));
            None
        });
        let unsubscribe_mailto = s.unsubscribe_mailto.as_ref().and_then(|m| {
            match m.get_ref().trim_start_matches("mailto:").parse::<Address>() {
                Ok(addr) => Some(addr.to_string()),
                Err(e) => {
                    problems.push(Diagnostic::at_span(
                        path,
                        source,
                        m.span(),
                        format!("sender.unsubscribe_mailto: expected an email address ({e})"),
                    ));
                    None
                }
            }
        });
        let list_id = s.list_id.as_ref().and_then(|l| {
            check_list_id(l.get_ref())
                .map_err(|why| {
                    problems.push(Diagnostic::at_span(
                        path,
                        source,
                        l.span(),
                        format!("sender.list_id: {why}, found {:?}", l.get_ref()),
                    ));
                })
                .ok()
        });
        let bounce_address = s.bounce_address.as_ref().and_then(|b| {
            match b.get_ref().parse::<Address>() {
                Ok(a) if a.user().contains('+') => {
                    problems.push(Diagnostic::at_span(
                        path,
                        source,
                        b.span(),
                        "sender.bounce_address: expected an address without '+' (digestif adds +TOKEN to it)",
                    ));
                    None
                }
                Ok(a) => Some(a),
                Err(e) => {
                    problems.push(Diagnostic::at_span(
                        path,
                        source,
                        b.span(),
                        format!("sender.bounce_address: expected an email address ({e})"),
                    ));
                    None
                }
            }
        });
        if s.soft_bounce_limit == 0 {
            problems.push(Diagnostic::new(
                path,
                "sender.soft_bounce_limit: expected at least 1",
            ));
        }
        if let Some(name) = &raw.smtp.hello_name {
            if let Err(why) = check_hello_name(name) {
                problems.push(Diagnostic::new(
                    path,
                    format!("smtp.hello_name: {why}, found {name:?}"),
                ));
            }
        }
        let smtp = &raw.smtp;
        if smtp.concurrency == 0 {
            problems.push(Diagnostic::new(
                path,
                "smtp.concurrency: expected at least 1",
            ));
        }
        if smtp.max_attempts == 0 {
            problems.push(Diagnostic::new(
                path,
                "smtp.max_attempts: expected at least 1",
            ));
        }
        if smtp.rate_per_s < 0.0 || !smtp.rate_per_s.is_finite() {
            problems.push(Diagnostic::new(
                path,
                "smtp.rate_per_s: expected 0 (unlimited) or more",
            ));
        }
        if smtp.password_env.is_some() && smtp.password_file.is_some() {
            problems.push(Diagnostic::new(
                path,
                "smtp: give either password_env or password_file, not both",
            ));
        }

        match (problems.is_empty(), base_url, timezone, from) {
            (true, Some(base_url), Some(timezone), Some(from)) => {
                // What the file itself sets, to tell defaults from choices: parsed once.
                let written: toml::Table = source.parse().unwrap_or_default();
                let list_id = list_id.unwrap_or_else(|| from.email.domain().to_string());
                Ok(Config {
                    path: path.to_path_buf(),
                    name: n.name.trim().to_string(),
                    base_url,
                    language,
                    timezone,
                    posts_dir: n.posts_dir.clone(),
                    templates_dir: n.templates_dir.clone(),
                    subscribers: n.subscribers.clone(),
                    state_dir: n.state_dir.clone(),
                    notes_dir: n.notes_dir.clone(),
                    categories: n.categories.clone(),
                    default_category: n.default_category.clone(),
                    subject: n.subject.get_ref().clone(),
                    archive_url,
                    posts_format,
                    permalink: n.permalink.clone(),
                    exclude,
                    category_names: raw.category_names.clone(),
                    feeds: n.feeds.clone(),
                    feed_timeout_s: n.feed_timeout_s.max(1),
                    sender: Sender {
                        from,
                        reply_to,
                        list_id,
                        unsubscribe_mailto,
                        unsubscribe_url,
                        unsubscribe_secret_env: s.unsubscribe_secret_env.clone(),
                        bounce_address,
                        soft_bounce_limit: s.soft_bounce_limit,
                    },
                    smtp: SmtpConfig {
                        host_is_default: !has_key(&written, "smtp", "host"),
                        ..raw.smtp
                    },
                    defaults: defaulted_settings(&written),
                })
            }
            _ => {
                problems.sort_by_key(|d| d.line);
                Err(problems)
            }
        }
    }
}

/// Is `table.key` written in the file?
fn has_key(file: &toml::Table, table: &str, key: &str) -> bool {
    file.get(table)
        .and_then(|t| t.as_table())
        .is_some_and(|t| t.contains_key(key))
}

/// The settings whose defaults change what readers get or where mail goes, when the file
/// does not set them.
fn defaulted_settings(file: &toml::Table) -> Vec<String> {
    const NOTABLE: &[(&str, &str, &str)] = &[
        (
            "newsletter",
            "timezone",
            "\"UTC\" (decides which week a post is in)",
        ),
        ("newsletter", "language", "\"en\""),
        ("newsletter", "posts_dir", "\"posts\""),
        ("newsletter", "subscribers", "\"subscribers.toml\""),
        ("newsletter", "state_dir", "\"state\""),
        ("smtp", "transport", "\"smtp\""),
        ("smtp", "host", "\"localhost\""),
        ("smtp", "tls", "\"starttls\""),
    ];
    NOTABLE
        .iter()
        .filter(|(table, key, _)| !has_key(file, table, key))
        .map(|(table, key, value)| format!("{table}.{key} = {value}"))
        .collect()
}

/// A site or archive URL names a folder: `https://example.org/lettre` means
/// `https://example.org/lettre/`, or every link joined onto it would lose `lettre`.
fn as_folder(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

fn parse_mailbox(
    path: &Path,
    source: &str,
    key: &str,
    value: &Spanned<String>,
    problems: &mut Vec<Diagnostic>,
) -> Option<Mailbox> {
    match value.get_ref().parse::<Mailbox>() {
        Ok(mailbox) => Some(mailbox),
        Err(e) => {
            problems.push(Diagnostic::at_span(
                path,
                source,
                value.span(),
                format!(
                    "{key}: expected \"Name <address@domain>\" or an address, found {:?} ({e})",
                    value.get_ref()
                ),
            ));
            None
        }
    }
}

/// A `List-Id` (RFC 2919): a dot-atom, such as `veille.example.org`. It goes into headers
/// and Message-IDs, so nothing else may get through.
fn check_list_id(id: &str) -> std::result::Result<String, &'static str> {
    let atom = |a: &str| {
        !a.is_empty()
            && a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if id.len() > 200 {
        Err("expected at most 200 characters")
    } else if !id.split('.').all(atom) {
        Err("expected a dot-separated name such as \"veille.example.org\" (ASCII letters, digits, - and _ only)")
    } else {
        Ok(id.to_string())
    }
}

/// The EHLO name: a fully-qualified domain name or an address literal.
fn check_hello_name(name: &str) -> std::result::Result<(), &'static str> {
    let literal = name.starts_with('[') && name.ends_with(']');
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if literal || (name.contains('.') && name.split('.').all(label_ok)) {
        Ok(())
    } else {
        Err("expected a fully-qualified domain name such as \"mail.example.org\" (relays refuse bare host names)")
    }
}

/// Placeholders in `template` (`{like_this}`) that are not in [`SUBJECT_PLACEHOLDERS`].
fn unknown_placeholders(template: &str) -> Vec<&str> {
    crate::text::placeholders(template)
        .into_iter()
        .filter(|name| !SUBJECT_PLACEHOLDERS.contains(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[newsletter]
name = "Veille"
base_url = "https://veille.example.org/"
timezone = "Europe/Paris"
language = "fr"
[sender]
from = "Veille <veille@example.org>"
"#;

    #[test]
    fn can_parse_a_minimal_config_with_defaults() {
        let c = Config::parse(Path::new("d.toml"), MINIMAL).unwrap();
        assert_eq!(c.timezone, chrono_tz::Europe::Paris);
        assert_eq!(c.posts_dir, PathBuf::from("posts"));
        assert_eq!(c.sender.list_id, "example.org");
        assert_eq!(c.smtp.port(), 587);
    }

    #[test]
    fn site_and_archive_urls_are_folders_even_without_a_trailing_slash() {
        let src = MINIMAL
            .replace("https://veille.example.org/", "https://example.org/veille")
            .replace(
                "language = \"fr\"",
                "language = \"fr\"\narchive_url = \"https://example.org/lettre\"",
            );
        let c = Config::parse(Path::new("d.toml"), &src).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(c.base_url.as_str(), "https://example.org/veille/");
        assert_eq!(
            c.archive_url
                .unwrap()
                .join("2011-W52.html")
                .unwrap()
                .as_str(),
            "https://example.org/lettre/2011-W52.html"
        );
    }

    #[test]
    fn errors_on_unknown_key_with_line_and_expected_keys() {
        let src = MINIMAL.replace("language = \"fr\"", "langage = \"fr\"");
        let err = Config::parse(Path::new("d.toml"), &src).unwrap_err();
        assert_eq!(err.len(), 1);
        let text = err[0].to_string();
        assert!(
            text.starts_with("d.toml:6:1: unknown field `langage`, expected one of"),
            "{text}"
        );
    }

    #[test]
    fn reports_every_semantic_problem_at_once() {
        let src = MINIMAL
            .replace("Europe/Paris", "Europe/Pariss")
            .replace("https://veille.example.org/", "not a url")
            .replace("Veille <veille@example.org>", "nobody");
        let err = Config::parse(Path::new("d.toml"), &src).unwrap_err();
        let lines: Vec<String> = err.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].starts_with("d.toml:4:12: newsletter.base_url"),
            "{lines:?}"
        );
        assert!(lines[1].starts_with("d.toml:5:12: newsletter.timezone: unknown time zone"));
        assert_eq!(
            err[1].help.as_deref(),
            Some("did you mean \"Europe/Paris\"?")
        );
        assert_eq!(
            err[1].excerpt.as_ref().unwrap().1,
            "\"Europe/Pariss\"".len()
        );
        assert!(lines[2].starts_with("d.toml:8:8: sender.from"));
    }

    #[test]
    fn reports_typos_wrong_types_and_bad_values_together_in_file_order() {
        let src = MINIMAL
            .replace("timezone = ", "timezon = ")
            .replace("Europe/Paris", "Europe/Pariss")
            .replace("language = \"fr\"", "langage = \"fr\"")
            .replace("[sender]", "[sender]\nreply_to = 7")
            + "[smtp]\nprot = 25\nconcurency = 2\n";
        let err = Config::parse(Path::new("d.toml"), &src).unwrap_err();
        let lines: Vec<String> = err
            .iter()
            .map(|d| format!("{d} | {}", d.help.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert!(
            lines[0].starts_with("d.toml:5:1: unknown field `timezon`"),
            "{lines:#?}"
        );
        assert!(lines[0].ends_with("did you mean `timezone`?"));
        assert!(lines[1].starts_with("d.toml:6:1: unknown field `langage`"));
        assert!(
            lines[2].starts_with("d.toml:8:12: invalid type: integer `7`"),
            "{lines:#?}"
        );
        assert!(lines[3].ends_with("did you mean `port`?"));
        assert!(lines[4].ends_with("did you mean `concurrency`?"));
    }

    #[test]
    fn errors_on_unknown_subject_placeholder() {
        let src = MINIMAL.replace(
            "language = \"fr\"",
            "language = \"fr\"\nsubject = \"{nom}\"",
        );
        let err = Config::parse(Path::new("d.toml"), &src).unwrap_err();
        assert!(
            err[0].message.contains("unknown placeholder {nom}"),
            "{err:?}"
        );
    }
}
