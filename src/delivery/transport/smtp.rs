//! SMTP delivery over lettre's low-level `SmtpConnection`, one recipient per transaction,
//! so every failure is known to be before or after the end of data.
//!
//! lettre's pooled `SmtpTransport` writes the message and the final `.` in two small writes
//! without TCP_NODELAY, which stalls each message ~40 ms on delayed ACKs. Here the message and
//! its terminator go out in one write, so nothing waits on Nagle's algorithm.

use std::fmt;
use std::net::ToSocketAddrs;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Mechanism;
use lettre::transport::smtp::client::SmtpConnection;
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::{Category, Code, Detail, Response, Severity};

use super::{is_loopback, Deliver, Next, Outcome, TransportSettings};
use crate::config::{SmtpConfig, TlsMode};
use crate::error::Error;

/// SMTP, one connection per worker, reconnected after failures.
pub(super) struct SmtpDeliver {
    settings: TransportSettings,
    conn: Option<SmtpConnection>,
    /// The server announced PIPELINING (RFC 2920): MAIL, RCPT and DATA go in one write.
    pipelining: bool,
    /// The dot-stuffed message being written, kept from message to message.
    payload: String,
    /// The envelope of the next message, written after the last end of data in the same
    /// group (RFC 2920), and how the server answered it.
    primed: Option<Primed>,
}

/// An envelope sent ahead of its message.
struct Primed {
    envelope: Envelope,
    /// Whether its message was ASCII: the MAIL command differs (`BODY=8BITMIME`).
    ascii: bool,
    /// `Ok`: the server answered DATA with 354 and waits for the content. `Err`: refused;
    /// the connection is back to a new transaction (or closed).
    answer: Result<(), Outcome>,
}

/// How a connection attempt failed.
enum ConnectError {
    /// Worth retrying later (refused, timeout, 4xx greeting).
    Transient(String),
    /// Authentication or TLS failure: stop the run.
    Fatal(Error),
}

impl SmtpDeliver {
    pub(super) fn new(settings: TransportSettings) -> SmtpDeliver {
        SmtpDeliver {
            settings,
            conn: None,
            pipelining: false,
            payload: String::new(),
            primed: None,
        }
    }

    fn connect(&self) -> Result<(SmtpConnection, bool), ConnectError> {
        let c = &self.settings.config;
        let timeout = Some(Duration::from_secs(c.timeout_s.max(1)));
        let addr = (c.host.as_str(), c.port())
            .to_socket_addrs()
            .map_err(|e| ConnectError::Transient(format!("cannot resolve {}: {e}", c.host)))?
            .collect::<Vec<_>>();
        let implicit_tls = if c.tls == TlsMode::Tls {
            self.settings.tls.as_ref()
        } else {
            None
        };
        let mut conn = SmtpConnection::connect(
            addr.as_slice(),
            timeout,
            &self.settings.hello,
            implicit_tls,
            None,
        )
        .map_err(|e| classify_connect_error(c, e))?;
        if c.tls == TlsMode::Starttls {
            if !conn.can_starttls() {
                conn.abort();
                return Err(ConnectError::Fatal(Error::smtp(
                    server(c),
                    "does not offer STARTTLS, and tls = \"starttls\" requires it",
                )));
            }
            let tls = self.settings.tls.as_ref().expect("built for starttls");
            // The server offered STARTTLS and the upgrade failed: a certificate or protocol
            // problem that retrying will not fix.
            conn.starttls(tls, &self.settings.hello).map_err(|e| {
                ConnectError::Fatal(Error::smtp(
                    server(c),
                    format!("TLS failed: {}", describe(&e)),
                ))
            })?;
        }
        // lettre keeps only the EHLO keywords it uses; ask again to learn about PIPELINING.
        let pipelining = match conn.command(Ehlo::new(self.settings.hello.clone())) {
            Ok(response) => response
                .message()
                .any(|line| line.trim().eq_ignore_ascii_case("PIPELINING")),
            Err(e) => return Err(classify_connect_error(c, e)),
        };
        if let Some(credentials) = &self.settings.credentials {
            if !conn.is_encrypted() && !is_loopback(&c.host) {
                conn.abort();
                return Err(ConnectError::Fatal(Error::smtp(
                    server(c),
                    "refusing to authenticate over an unencrypted connection",
                )));
            }
            if let Err(e) = conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials) {
                conn.abort();
                return Err(if e.is_transient() {
                    ConnectError::Transient(format!("authentication: {}", describe(&e)))
                } else {
                    ConnectError::Fatal(Error::smtp(
                        server(c),
                        format!(
                            "authentication as {} failed: {}",
                            c.username.as_deref().unwrap_or(""),
                            describe(&e)
                        ),
                    ))
                });
            }
        }
        Ok((conn, pipelining))
    }

    /// One SMTP transaction for one recipient; with `next`, that message's envelope goes
    /// out after this end of data, in the same write.
    fn transaction(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
        next: Option<Next<'_>>,
        durable: &mut dyn FnMut() -> Result<(), Error>,
    ) -> Outcome {
        let conn = self.conn.as_mut().expect("connected");
        if let Some(primed) = self.primed.take() {
            // `deliver` checked that it is this message's.
            return match primed.answer {
                Ok(()) => self.end_of_data(message, next, durable),
                Err(refused) => refused,
            };
        }
        let mail = match mail_command(conn, envelope, message) {
            Ok(mail) => mail,
            Err(o) => return o,
        };
        let before_data = |conn: &mut SmtpConnection,
                           r: Result<Response, lettre::transport::smtp::Error>,
                           rcpt: bool| {
            r.map_err(|e| {
                if e.is_permanent() {
                    let _ = conn.command(Rset);
                    let reply = describe(&e);
                    Outcome::Permanent {
                        campaign: !(rcpt && is_about_the_address(&reply)),
                        reply,
                    }
                } else if e.is_transient() {
                    reset_after_transient(conn, &e);
                    Outcome::Transient(describe(&e))
                } else {
                    conn.abort();
                    Outcome::Transient(describe(&e))
                }
            })
        };
        if self.pipelining && envelope.to().len() == 1 {
            let batch = Raw(envelope_group(&mail, &envelope.to()[0]));
            let first = conn.command(batch);
            if let Err(o) = read_envelope_replies(conn, first) {
                return o;
            }
            return self.end_of_data(message, next, durable);
        }
        let reply = conn.command(mail);
        if let Err(o) = before_data(conn, reply, false) {
            return o;
        }
        for to in envelope.to() {
            let reply = conn.command(Rcpt::new(to.clone(), vec![]));
            if let Err(o) = before_data(conn, reply, true) {
                return o;
            }
        }
        let reply = conn.command(Data);
        if let Err(o) = before_data(conn, reply, false) {
            return o;
        }
        self.end_of_data(message, next, durable)
    }

    /// The message and its final dot in one write (with the next message's envelope, when
    /// it can be pipelined), and the reply that decides its fate; first, the ledger's record
    /// of it must be durable. If it cannot be, the connection is dropped mid-data, so the
    /// server discards the message.
    fn end_of_data(
        &mut self,
        message: &[u8],
        next: Option<Next<'_>>,
        durable: &mut dyn FnMut() -> Result<(), Error>,
    ) -> Outcome {
        let conn = self.conn.as_mut().expect("connected");
        if let Err(e) = durable() {
            conn.abort();
            return Outcome::Fatal(e);
        }
        data_payload(message, &mut self.payload);
        // The next envelope, pipelined: RFC 2920 lets message content start a group.
        let ahead = next
            .filter(|n| self.pipelining && n.envelope.to().len() == 1)
            .and_then(|n| Some((n, mail_command(conn, n.envelope, n.message).ok()?)));
        if let Some((n, mail)) = &ahead {
            self.payload
                .push_str(&envelope_group(mail, &n.envelope.to()[0]));
        }
        let timeout_s = self.settings.config.timeout_s.max(1);
        let reply = conn.command(Raw(self.payload.as_str()));
        let outcome = match &reply {
            Ok(response) => Outcome::Sent(response_text(response)),
            Err(e) if e.is_permanent() => Outcome::Permanent {
                reply: describe(e),
                campaign: true,
            },
            Err(e) if e.is_transient() => Outcome::Transient(describe(e)),
            Err(e) => {
                conn.abort();
                return Outcome::Unknown(if is_timeout(e) {
                    format!("no reply after end of data within {timeout_s} s")
                } else {
                    format!("connection lost after end of data: {}", describe(e))
                });
            }
        };
        if reply.as_ref().is_err_and(is_closing) {
            conn.abort();
            return outcome;
        }
        if let Some((n, _)) = ahead {
            let first = conn.read_response();
            self.primed = Some(Primed {
                envelope: n.envelope.clone(),
                ascii: n.message.is_ascii(),
                answer: read_envelope_replies(conn, first),
            });
        }
        outcome
    }
}

impl Deliver for SmtpDeliver {
    fn deliver(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
        next: Option<Next<'_>>,
        durable: &mut dyn FnMut() -> Result<(), Error>,
    ) -> Outcome {
        if let Some(primed) = self
            .primed
            .take_if(|p| p.envelope != *envelope || p.ascii != message.is_ascii())
        {
            // Not the message announced (a retry came first): a connection waiting for
            // content cannot take another command, so it is dropped.
            if primed.answer.is_ok() {
                self.drop_connection();
            }
        }
        if self.conn.as_ref().is_none_or(SmtpConnection::has_broken) {
            self.primed = None;
            match self.connect() {
                Ok((conn, pipelining)) => {
                    self.conn = Some(conn);
                    self.pipelining = pipelining;
                }
                Err(ConnectError::Transient(e)) => return Outcome::Unreachable(e),
                Err(ConnectError::Fatal(e)) => return Outcome::Fatal(e),
            }
        }
        let outcome = self.transaction(envelope, message, next, durable);
        if self.conn.as_ref().is_some_and(SmtpConnection::has_broken) {
            // Broken, or closed by the server's 421: the next message opens a new one.
            self.drop_connection();
        }
        outcome
    }

    fn close(&mut self) {
        let waiting_for_content = self.primed.take().is_some_and(|p| p.answer.is_ok());
        if let Some(mut conn) = self.conn.take() {
            if waiting_for_content {
                // QUIT would be read as message content: drop the connection, and the
                // server discards the empty transaction.
                conn.abort();
            } else {
                let _ = conn.quit();
            }
        }
    }
}

impl SmtpDeliver {
    fn drop_connection(&mut self) {
        self.primed = None;
        if let Some(mut c) = self.conn.take() {
            c.abort();
        }
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::is_about_the_address;

    #[test]
    fn only_addressing_and_mailbox_refusals_are_about_the_address() {
        for reply in [
            "550 permanent error (550): 5.1.1 no such user here",
            "550 5.2.2 mailbox full",
            "501 5.1.3 Bad recipient address syntax",
        ] {
            assert!(is_about_the_address(reply), "{reply}");
        }
        for reply in [
            "554 permanent error (554): 5.7.1 Relay access denied",
            "504 5.5.2 <vm>: Helo command rejected: need fully-qualified hostname",
            "550 no enhanced code, could be anything",
            "550 version 1.2.3.4 of something",
        ] {
            assert!(!is_about_the_address(reply), "{reply}");
        }
    }
}

/// The MAIL command for `envelope` and `message`: `BODY=8BITMIME` or `SMTPUTF8` when
/// needed, or the refusal when the server lacks what the message needs.
fn mail_command(
    conn: &SmtpConnection,
    envelope: &Envelope,
    message: &[u8],
) -> Result<Mail, Outcome> {
    let mut mail_params = vec![];
    if !message.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(Outcome::Permanent {
                reply: "message is 8-bit but the server lacks 8BITMIME".into(),
                campaign: true,
            });
        }
        mail_params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let non_ascii = |a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii();
    if envelope.from().is_some_and(non_ascii) || envelope.to().iter().any(non_ascii) {
        // Domains are already punycode: only a non-ASCII local part gets here.
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(Outcome::Permanent {
                reply: "the address has a non-ASCII local part and the server does not offer SMTPUTF8 (RFC 6531)".into(),
                campaign: false,
            });
        }
        mail_params.push(MailParameter::SmtpUtfEight);
    }
    Ok(Mail::new(envelope.from().cloned(), mail_params))
}

/// MAIL, RCPT and DATA as one pipelined group (RFC 2920).
fn envelope_group(mail: &Mail, to: &lettre::Address) -> String {
    format!("{mail}{}{Data}", Rcpt::new(to.clone(), vec![]))
}

/// The replies to a pipelined MAIL, RCPT and DATA, `first` already read. `Ok`: the server
/// waits for the content. On a refusal the connection is made ready for the next
/// transaction (or dropped when the server is closing it or it failed).
fn read_envelope_replies(
    conn: &mut SmtpConnection,
    first: Result<Response, lettre::transport::smtp::Error>,
) -> Result<(), Outcome> {
    let mut failure = None;
    let mut closing = false;
    let mut data_accepted = false;
    let mut first = Some(first);
    // Replies to MAIL, RCPT, DATA.
    for i in 0..3 {
        let reply = first.take().unwrap_or_else(|| conn.read_response());
        match reply {
            Ok(_) => data_accepted = i == 2,
            Err(e) if e.is_permanent() || e.is_transient() => {
                closing |= is_closing(&e);
                failure.get_or_insert(if e.is_permanent() {
                    let reply = describe(&e);
                    Outcome::Permanent {
                        campaign: !(i == 1 && is_about_the_address(&reply)),
                        reply,
                    }
                } else {
                    Outcome::Transient(describe(&e))
                });
            }
            Err(e) => {
                // The connection itself failed: nothing of the message was sent.
                conn.abort();
                return Err(Outcome::Transient(describe(&e)));
            }
        }
    }
    let Some(failure) = failure else {
        return Ok(());
    };
    if closing {
        conn.abort();
        return Err(failure);
    }
    if data_accepted {
        // DATA was accepted although MAIL or RCPT failed: end the empty message.
        let _ = conn.command(Raw(".\r\n"));
    }
    let _ = conn.command(Rset);
    Err(failure)
}

/// Commands written as they are (pipelined groups, a bare end of data, a message).
struct Raw<S: AsRef<str>>(S);

impl<S: AsRef<str>> fmt::Display for Raw<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_ref())
    }
}

/// The message, dot-stuffed, with its terminating `.` line, into `out` (cleared first):
/// written in one piece. `out` is the connection's own buffer, reused from message to
/// message, and lettre copies it once into the command it writes.
fn data_payload(message: &[u8], out: &mut String) {
    out.clear();
    // Our messages are ASCII (quoted-printable bodies, encoded headers); anything else is
    // written lossily rather than as invalid UTF-8.
    let text = match std::str::from_utf8(message) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(message),
    };
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 8);
    if bytes.first() == Some(&b'.') {
        out.push('.');
    }
    // Messages are CRLF-terminated lines; a bare LF before a dot is stuffed too.
    let mut start = 0;
    for i in memchr::memmem::find_iter(bytes, b"\n.") {
        out.push_str(&text[start..=i]);
        out.push('.');
        start = i + 1;
    }
    out.push_str(&text[start..]);
    if !bytes.ends_with(b"\r\n") {
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
}

/// The reply as the ledger keeps it: the code, then its lines joined by spaces.
fn response_text(response: &Response) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(64);
    let _ = write!(text, "{}", response.code());
    for line in response.message() {
        text.push(' ');
        text.push_str(line);
    }
    text
}

/// Did a read time out? Linux reports a socket read timeout as `WouldBlock` (EAGAIN), which
/// lettre's own `is_timeout` does not recognise.
fn is_timeout(e: &lettre::transport::smtp::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            );
        }
        source = err.source();
    }
    false
}

/// 421: the server is closing the transmission channel (RFC 5321, 3.8).
fn is_closing(e: &lettre::transport::smtp::Error) -> bool {
    e.status()
        == Some(Code::new(
            Severity::TransientNegativeCompletion,
            Category::Connections,
            Detail::One,
        ))
}

/// After a 4xx: a 421 means the server is closing, so the connection is dropped (the next
/// message opens a new one); any other 4xx leaves it usable after RSET.
fn reset_after_transient(conn: &mut SmtpConnection, e: &lettre::transport::smtp::Error) {
    if is_closing(e) {
        conn.abort();
    } else {
        let _ = conn.command(Rset);
    }
}

/// Did the TLS layer fail (certificate, handshake)? Decided on the error's type: lettre
/// reports a failed implicit-TLS handshake as a network error wrapping rustls's error.
fn is_tls_failure(e: &lettre::transport::smtp::Error) -> bool {
    if e.is_tls() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if err.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(<dyn std::error::Error + Send + Sync + 'static>::is::<rustls::Error>)
            {
                return true;
            }
        }
        source = err.source();
    }
    false
}

/// lettre's error as one line, with the server's code and text when there is one.
/// Does a RCPT refusal concern this address only? Its enhanced status code (RFC 3463) says
/// so when its subject is addressing (X.1.x: no such user, bad domain) or the mailbox
/// (X.2.x: full, disabled). Policy (X.7.x), protocol (X.5.x) and system refusals, or a
/// reply without an enhanced code, may hit every reader alike: they count toward the
/// circuit breaker.
fn is_about_the_address(reply: &str) -> bool {
    reply
        .split_whitespace()
        .take(8)
        .find_map(enhanced_subject)
        .is_some_and(|subject| subject == "1" || subject == "2")
}

/// The subject digit(s) of an enhanced status code such as `5.1.1`.
fn enhanced_subject(word: &str) -> Option<&str> {
    let mut parts = word.trim_end_matches([',', ';', ':']).split('.');
    let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
    let numeric = |p: &str| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit());
    (matches!(class, "2" | "4" | "5")
        && numeric(subject)
        && numeric(detail)
        && parts.next().is_none())
    .then_some(subject)
}

fn describe(e: &lettre::transport::smtp::Error) -> String {
    let text = e.to_string().replace(['\r', '\n'], " ");
    match e.status() {
        Some(code) if !text.starts_with(&code.to_string()) => format!("{code} {text}"),
        _ => text,
    }
}

/// `check --smtp`: connect, EHLO, STARTTLS and AUTH as a send would, then QUIT without
/// sending anything. Returns one line per step; the error names the step that failed.
pub(super) fn probe(settings: &TransportSettings) -> Result<Vec<String>, Error> {
    let c = &settings.config;
    let deliver = SmtpDeliver::new(settings.clone());
    let (mut conn, pipelining) = deliver.connect().map_err(|e| match e {
        ConnectError::Fatal(e) => e,
        ConnectError::Transient(why) => Error::smtp(server(c), why),
    })?;
    let mut steps = vec![
        format!("connected to {}", server(c)),
        format!(
            "EHLO {}: the server is {}{}",
            settings.hello,
            conn.server_info().name(),
            if pipelining { " (PIPELINING)" } else { "" }
        ),
    ];
    steps.push(match c.tls {
        TlsMode::Starttls => "STARTTLS: the connection is encrypted".into(),
        TlsMode::Tls => "TLS from the first byte: the connection is encrypted".into(),
        TlsMode::None => "no encryption (tls = \"none\")".into(),
    });
    steps.push(match (&settings.credentials, &c.username) {
        (Some(_), Some(user)) => format!("AUTH as {user}: accepted"),
        _ => "no authentication configured (no smtp.username)".into(),
    });
    let _ = conn.quit();
    steps.push("QUIT: nothing was sent".into());
    Ok(steps)
}

/// `host:port`, as errors name the server, saying when it is the default rather than a
/// choice (a config without `[smtp]` otherwise fails with a bare "connection refused").
fn server(c: &SmtpConfig) -> String {
    if c.host_is_default {
        format!(
            "{}:{} (the default: the config sets no smtp.host)",
            c.host,
            c.port()
        )
    } else {
        format!("{}:{}", c.host, c.port())
    }
}

fn classify_connect_error(c: &SmtpConfig, e: lettre::transport::smtp::Error) -> ConnectError {
    let where_ = server(c);
    if is_tls_failure(&e) {
        ConnectError::Fatal(Error::smtp(where_, format!("TLS failed: {}", describe(&e))))
    } else if e.is_permanent() {
        ConnectError::Fatal(Error::smtp(
            where_,
            format!("refused the session: {}", describe(&e)),
        ))
    } else {
        ConnectError::Transient(format!("cannot connect to {where_}: {}", describe(&e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_kept_as_its_code_and_lines() {
        let ok = Code::new(
            Severity::PositiveCompletion,
            Category::MailSystem,
            Detail::Zero,
        );
        for (lines, kept) in [
            (
                vec!["2.0.0 Ok: queued as 4Fb8"],
                "250 2.0.0 Ok: queued as 4Fb8",
            ),
            (vec!["first", "second"], "250 first second"),
        ] {
            let response = Response::new(ok, lines.into_iter().map(String::from).collect());
            assert_eq!(response_text(&response), kept);
        }
    }

    #[test]
    fn dot_stuffing_and_terminator() {
        let mut out = String::from("left over from the last message");
        for (message, stuffed) in [
            (
                &b"a\r\n.b\r\n..c\r\n."[..],
                "a\r\n..b\r\n...c\r\n..\r\n.\r\n",
            ),
            (b".x\r\n", "..x\r\n.\r\n"),
            (b"a\nb\n.", "a\nb\n..\r\n.\r\n"),
        ] {
            data_payload(message, &mut out);
            assert_eq!(out, stuffed);
        }
    }
}
