//! Delivery. One [`Deliver`] per engine worker: SMTP over lettre's low-level
//! `SmtpConnection` ([`smtp`]), or lettre's sendmail and file transports ([`local`]). A
//! transport turns each attempt into an [`Outcome`]; what to do about it (retry, defer,
//! stop) is the engine's decision, not the transport's.

mod local;
pub(crate) mod reached;
mod smtp;

use std::fmt;
use std::net::IpAddr;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::config::{SmtpConfig, TlsMode, TransportKind};
use crate::error::{Error, Result};
use local::LettreDeliver;
use smtp::SmtpDeliver;

/// What happened to one message.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The server accepted the end of data.
    Sent(String),
    /// Try again later (4xx, or the connection failed before the end of data).
    Transient(String),
    /// The server refused this message for good (5xx). `campaign`: the refusal says
    /// something about the whole send, not this one address (after the data, at MAIL, or
    /// at RCPT for a policy or protocol reason), and counts toward the circuit breaker.
    Permanent { reply: String, campaign: bool },
    /// The message was sent but no reply came: it may or may not have been delivered.
    Unknown(String),
    /// No connection could be opened: temporary, but the next message would fare the same.
    Unreachable(String),
    /// Stop the whole run (authentication, TLS, unusable configuration).
    Fatal(Error),
}

/// The message a worker will send after this one on the same connection, if nothing
/// intervenes: SMTP writes its envelope in the same group as this end of data (RFC 2920),
/// which saves a round trip per message.
#[derive(Clone, Copy)]
pub(crate) struct Next<'a> {
    pub envelope: &'a Envelope,
    pub message: &'a [u8],
}

/// One connection's worth of delivery: each call is one attempt at one message.
pub(crate) trait Deliver: Send {
    /// `durable` returns once the ledger's record of this message is durable: it is called
    /// before the end of data goes out (after which the message may be delivered), and its
    /// error abandons the message and stops the run. `next` is a hint: a call for another
    /// message than the one announced is still served (on a new connection if need be).
    fn deliver(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
        next: Option<Next<'_>>,
        durable: &mut dyn FnMut() -> Result<()>,
    ) -> Outcome;
    fn close(&mut self) {}
}

/// Opens one [`Deliver`] per engine worker. The engine knows only this trait, so its
/// rules (retry, defer, breaker, duplicates) do not depend on how messages travel.
pub(crate) trait Connector: Sync {
    fn connect(&self) -> Box<dyn Deliver>;
}

impl Connector for TransportSettings {
    fn connect(&self) -> Box<dyn Deliver> {
        self.open()
    }
}

/// Everything a worker needs to open its own transport.
#[derive(Clone)]
pub(crate) struct TransportSettings {
    pub config: SmtpConfig,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) tls: Option<TlsParameters>,
    pub(crate) hello: ClientId,
}

impl fmt::Debug for TransportSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print credentials.
        f.debug_struct("TransportSettings")
            .field("host", &self.config.host)
            .finish_non_exhaustive()
    }
}

/// Is `host` this machine? Authentication without TLS is allowed only there.
pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl TransportSettings {
    /// Validate the `[smtp]` table and read the password (from the environment or a file).
    /// `from`: the sender's address, whose domain names us in EHLO when the machine's own
    /// name is not fully qualified.
    pub(crate) fn new(config: &SmtpConfig, from: &lettre::Address) -> Result<TransportSettings> {
        let password = match (&config.password_env, &config.password_file) {
            (Some(var), _) => Some(std::env::var(var).map_err(|_| {
                Error::Setting(format!(
                    "smtp.password_env: the environment variable {var} is not set"
                ))
            })?),
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| Error::io("read password file", file, e))?;
                Some(text.lines().next().unwrap_or("").to_string())
            }
            (None, None) => None,
        };
        let credentials = match (&config.username, password) {
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password)),
            (Some(_), None) => {
                return Err(Error::Setting(
                    "smtp.username is set but no password: set password_env or password_file"
                        .into(),
                ))
            }
            (None, Some(_)) => {
                return Err(Error::Setting(
                    "smtp: a password is configured but no username".into(),
                ))
            }
            (None, None) => None,
        };
        if config.transport == TransportKind::Smtp
            && config.tls == TlsMode::None
            && !is_loopback(&config.host)
        {
            if credentials.is_some() {
                return Err(Error::Setting(format!(
                    "smtp: refusing to send a password unencrypted to {}: use tls = \"starttls\" or \"tls\"",
                    config.host
                )));
            }
            if !config.allow_insecure {
                return Err(Error::Setting(format!(
                    "smtp: tls = \"none\" to {}, which is not this machine: set allow_insecure = true if you mean it",
                    config.host
                )));
            }
        }
        let tls = match config.tls {
            TlsMode::None => None,
            _ => Some(tls_parameters(config)?),
        };
        let hello = match &config.hello_name {
            Some(name) => ClientId::Domain(name.clone()),
            None => default_hello(from),
        };
        Ok(TransportSettings {
            config: config.clone(),
            credentials,
            tls,
            hello,
        })
    }

    /// Make ready what sending needs on this machine (the `file` transport's folder).
    /// Kept out of [`TransportSettings::new`] so that `check` changes nothing.
    pub(crate) fn prepare(&self) -> Result<()> {
        if self.config.transport == TransportKind::File {
            crate::fsutil::create_dir_all(&self.config.file_dir)?;
        }
        Ok(())
    }

    /// Try the connection a send would open, step by step, sending nothing.
    pub(crate) fn probe(&self) -> Result<Vec<String>> {
        match self.config.transport {
            TransportKind::Smtp => smtp::probe(self),
            TransportKind::File => Ok(vec![format!(
                "transport = \"file\": messages are written into {}, nothing to connect to",
                self.config.file_dir.display()
            )]),
            TransportKind::Sendmail => Ok(vec![format!(
                "transport = \"sendmail\": messages are handed to {}, nothing to connect to",
                self.config
                    .sendmail_command
                    .as_deref()
                    .unwrap_or(std::path::Path::new("sendmail"))
                    .display()
            )]),
        }
    }

    /// A fresh transport for one worker.
    pub(crate) fn open(&self) -> Box<dyn Deliver> {
        match self.config.transport {
            TransportKind::Smtp => Box::new(SmtpDeliver::new(self.clone())),
            TransportKind::File => Box::new(LettreDeliver {
                transport: lettre::FileTransport::new(&self.config.file_dir),
                // A folder that cannot be written will not fix itself: stop the run.
                failures_are_fatal: true,
            }),
            TransportKind::Sendmail => {
                Box::new(LettreDeliver {
                    transport: match &self.config.sendmail_command {
                        Some(cmd) => lettre::SendmailTransport::new_with_command(cmd.as_os_str()),
                        None => lettre::SendmailTransport::new(),
                    },
                    // The local MTA may be busy or restarting: retry, then defer.
                    failures_are_fatal: false,
                })
            }
        }
    }
}

/// The EHLO name when `hello_name` is not set: this machine's name if it is fully
/// qualified, else the From domain (in ASCII). Relays often refuse a bare host name such as
/// `vm` (Postfix: `reject_non_fqdn_helo_hostname`), and at RCPT time, for every reader.
fn default_hello(from: &lettre::Address) -> ClientId {
    match ClientId::default() {
        ClientId::Domain(name) if is_fqdn(&name) => ClientId::Domain(name),
        _ => {
            let domain = from.domain();
            let ascii = idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_string());
            ClientId::Domain(ascii)
        }
    }
}

fn is_fqdn(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    name.contains('.')
        && !name.ends_with(".localdomain")
        && !name.ends_with(".local")
        && name
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters> {
    let mut builder = TlsParameters::builder(config.host.clone());
    if let Some(ca) = &config.ca_file {
        let pem = std::fs::read(ca).map_err(|e| Error::io("read CA file", ca, e))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            Error::Setting(format!(
                "smtp.ca_file {}: not a PEM certificate ({e})",
                ca.display()
            ))
        })?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build()
        .map_err(|e| Error::smtp(&config.host, format!("cannot set up TLS: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ehlo_names_are_fully_qualified() {
        assert!(is_fqdn("mail.example.org"));
        assert!(is_fqdn("mail.example.org."));
        for bare in [
            "vm",
            "localhost",
            "box.localdomain",
            "printer.local",
            "a..b",
            "",
        ] {
            assert!(!is_fqdn(bare), "{bare}");
        }
        let from: lettre::Address = "veille@bücher.example".parse().unwrap();
        let ClientId::Domain(name) = default_hello(&from) else {
            panic!("a domain")
        };
        assert!(is_fqdn(&name), "{name}");
        assert!(name.is_ascii());
    }

    #[test]
    fn loopback_hosts() {
        for host in ["localhost", "127.0.0.1", "127.9.9.9", "::1", "[::1]"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["smtp.example.org", "10.0.0.1", "localhost.example.org"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn the_password_file_gives_its_first_line_and_is_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "p4ss-from-file\nignored\n").unwrap();
        let config = SmtpConfig {
            host: "127.0.0.1".into(),
            tls: TlsMode::None,
            username: Some("u".into()),
            password_file: Some(file),
            ..SmtpConfig::default()
        };
        let settings = TransportSettings::new(&config, &"a@example.org".parse().unwrap()).unwrap();
        let credentials = settings.credentials.clone().unwrap();
        assert_eq!(
            credentials,
            Credentials::new("u".into(), "p4ss-from-file".into())
        );
        assert!(!format!("{settings:?}").contains("p4ss"));
    }

    #[test]
    fn plain_text_auth_to_a_remote_host_is_refused() {
        // A password file, not the environment: tests run in parallel threads, and
        // changing the process environment from one of them races with the others.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "secret-pw\n").unwrap();
        let config = SmtpConfig {
            host: "smtp.example.org".into(),
            tls: TlsMode::None,
            username: Some("u".into()),
            password_file: Some(file),
            ..SmtpConfig::default()
        };
        let err = TransportSettings::new(&config, &"a@example.org".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("refusing to send a password unencrypted"),
            "{err}"
        );
        assert!(!err.contains("secret-pw"));
        let config = SmtpConfig {
            username: None,
            password_file: None,
            ..config
        };
        assert!(
            TransportSettings::new(&config, &"a@example.org".parse().unwrap())
                .unwrap_err()
                .to_string()
                .contains("allow_insecure")
        );
    }
}
