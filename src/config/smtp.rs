//! The `[smtp]` table: how messages leave the machine.

use std::path::PathBuf;

use serde::Deserialize;

use super::Located;

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

impl SmtpConfig {
    /// Check the values that parse but cannot be used.
    pub(super) fn check(&self, at: &mut Located<'_>) {
        if let Some(name) = &self.hello_name {
            if let Err(why) = check_hello_name(name) {
                at.problem(format!("smtp.hello_name: {why}, found {name:?}"));
            }
        }
        if self.concurrency == 0 {
            at.problem("smtp.concurrency: expected at least 1");
        }
        if self.max_attempts == 0 {
            at.problem("smtp.max_attempts: expected at least 1");
        }
        if self.rate_per_s < 0.0 || !self.rate_per_s.is_finite() {
            at.problem("smtp.rate_per_s: expected 0 (unlimited) or more");
        }
        if self.password_env.is_some() && self.password_file.is_some() {
            at.problem("smtp: give either password_env or password_file, not both");
        }
    }
}

/// The EHLO name: a fully-qualified domain name or an address literal.
fn check_hello_name(name: &str) -> Result<(), &'static str> {
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
