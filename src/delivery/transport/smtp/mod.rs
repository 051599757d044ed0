//! SMTP delivery over lettre's low-level `SmtpConnection`, one recipient per transaction,
//! so every failure is known to be before or after the end of data.
//!
//! lettre's pooled `SmtpTransport` writes the message and the final `.` in two small writes
//! without TCP_NODELAY, which stalls each message ~40 ms on delayed ACKs. Here the message and
//! its terminator go out in one write, so nothing waits on Nagle's algorithm.

mod replies;
mod wire;

use std::net::ToSocketAddrs;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Mechanism;
use lettre::transport::smtp::client::SmtpConnection;
use lettre::transport::smtp::commands::{Data, Ehlo, Rcpt, Rset};
use lettre::transport::smtp::response::Response;

use super::{is_loopback, Deliver, Next, Outcome, TransportSettings};
use crate::config::TlsMode;
use crate::error::Error;
use replies::{
    classify_connect_error, describe, hang_up, is_about_the_address, is_closing, is_timeout,
    reset_after_transient, server, tls_failure,
};
use wire::{data_payload, envelope_group, mail_command, read_envelope_replies, response_text, Raw};

/// SMTP, one connection per worker, reconnected after failures.
pub(super) struct SmtpDeliver {
    settings: TransportSettings,
    /// The open connection, if any.
    session: Option<Session>,
    /// The dot-stuffed message being written, kept from message to message.
    payload: String,
}

/// One open connection and what it knows.
struct Session {
    conn: SmtpConnection,
    /// The server announced PIPELINING (RFC 2920): MAIL, RCPT and DATA go in one write.
    pipelining: bool,
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

impl Primed {
    /// Is the server waiting for this envelope's content? Then no other command may go.
    fn waits_for_content(&self) -> bool {
        self.answer.is_ok()
    }
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
            session: None,
            payload: String::new(),
        }
    }
}

impl Session {
    /// Connect, greet, secure and authenticate as the settings say.
    fn open(settings: &TransportSettings) -> Result<Session, ConnectError> {
        let c = &settings.config;
        let timeout = Some(Duration::from_secs(c.timeout_s.max(1)));
        let addr = (c.host.as_str(), c.port())
            .to_socket_addrs()
            .map_err(|e| ConnectError::Transient(format!("cannot resolve {}: {e}", c.host)))?
            .collect::<Vec<_>>();
        let implicit_tls = settings.tls.as_ref().filter(|_| c.tls == TlsMode::Tls);
        let mut conn = SmtpConnection::connect(
            addr.as_slice(),
            timeout,
            &settings.hello,
            implicit_tls,
            None,
        )
        .map_err(|e| classify_connect_error(c, e))?;
        if c.tls == TlsMode::Starttls {
            start_tls(&mut conn, settings)?;
        }
        // lettre keeps only the EHLO keywords it uses; ask again to learn about PIPELINING.
        let pipelining = match conn.command(Ehlo::new(settings.hello.clone())) {
            Ok(response) => response
                .message()
                .any(|line| line.trim().eq_ignore_ascii_case("PIPELINING")),
            Err(e) => return Err(classify_connect_error(c, e)),
        };
        authenticate(&mut conn, settings)?;
        Ok(Session {
            conn,
            pipelining,
            primed: None,
        })
    }

    /// One SMTP transaction for one recipient; with `next`, that message's envelope goes
    /// out after this end of data, in the same write.
    fn transaction(
        &mut self,
        out: &mut Payload<'_>,
        envelope: &Envelope,
        message: &[u8],
        next: Option<Next<'_>>,
        durable: &mut dyn FnMut() -> Result<(), Error>,
    ) -> Outcome {
        if let Some(primed) = self.primed.take() {
            // `deliver` checked that it is this message's.
            return match primed.answer {
                Ok(()) => self.end_of_data(out, message, next, durable),
                Err(refused) => refused,
            };
        }
        let mail = match mail_command(&self.conn, envelope, message) {
            Ok(mail) => mail,
            Err(o) => return o,
        };
        if self.pipelining && envelope.to().len() == 1 {
            let first = self
                .conn
                .command(Raw(envelope_group(&mail, &envelope.to()[0])));
            if let Err(o) = read_envelope_replies(&mut self.conn, first) {
                return o;
            }
            return self.end_of_data(out, message, next, durable);
        }
        let reply = self.conn.command(mail);
        if let Err(o) = self.before_data(reply, false) {
            return o;
        }
        for to in envelope.to() {
            let reply = self.conn.command(Rcpt::new(to.clone(), vec![]));
            if let Err(o) = self.before_data(reply, true) {
                return o;
            }
        }
        let reply = self.conn.command(Data);
        if let Err(o) = self.before_data(reply, false) {
            return o;
        }
        self.end_of_data(out, message, next, durable)
    }

    /// A reply before the data: a refusal leaves the connection ready for the next
    /// transaction (RSET), or drops it when it failed.
    fn before_data(
        &mut self,
        reply: Result<Response, lettre::transport::smtp::Error>,
        rcpt: bool,
    ) -> Result<Response, Outcome> {
        reply.map_err(|e| {
            if e.is_permanent() {
                let _ = self.conn.command(Rset);
                let reply = describe(&e);
                Outcome::Permanent {
                    campaign: !(rcpt && is_about_the_address(&reply)),
                    reply,
                }
            } else if e.is_transient() {
                reset_after_transient(&mut self.conn, &e);
                Outcome::Transient(describe(&e))
            } else {
                hang_up(&mut self.conn);
                Outcome::Transient(describe(&e))
            }
        })
    }

    /// The message and its final dot in one write (with the next message's envelope, when
    /// it can be pipelined), and the reply that decides its fate; first, the ledger's record
    /// of it must be durable. If it cannot be, the connection is dropped mid-data, so the
    /// server discards the message.
    fn end_of_data(
        &mut self,
        out: &mut Payload<'_>,
        message: &[u8],
        next: Option<Next<'_>>,
        durable: &mut dyn FnMut() -> Result<(), Error>,
    ) -> Outcome {
        let conn = &mut self.conn;
        if let Err(e) = durable() {
            hang_up(conn);
            return Outcome::Fatal(e);
        }
        data_payload(message, out.text);
        // The next envelope, pipelined: RFC 2920 lets message content start a group.
        let ahead = next
            .filter(|n| self.pipelining && n.envelope.to().len() == 1)
            .and_then(|n| Some((n, mail_command(conn, n.envelope, n.message).ok()?)));
        if let Some((n, mail)) = &ahead {
            out.text
                .push_str(&envelope_group(mail, &n.envelope.to()[0]));
        }
        let reply = conn.command(Raw(out.text.as_str()));
        let outcome = match &reply {
            Ok(response) => Outcome::Sent(response_text(response)),
            Err(e) if e.is_permanent() => Outcome::Permanent {
                reply: describe(e),
                campaign: true,
            },
            Err(e) if e.is_transient() => Outcome::Transient(describe(e)),
            Err(e) => {
                hang_up(conn);
                return Outcome::Unknown(if is_timeout(e) {
                    format!("no reply after end of data within {} s", out.timeout_s)
                } else {
                    format!("connection lost after end of data: {}", describe(e))
                });
            }
        };
        if reply.as_ref().is_err_and(is_closing) {
            hang_up(conn);
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

    /// End the session: QUIT, unless the server waits for a message's content (QUIT would
    /// be read as content), then the connection is dropped and the server discards the
    /// empty transaction.
    fn close(mut self) {
        if self.primed.take().is_some_and(|p| p.waits_for_content()) {
            hang_up(&mut self.conn);
        } else {
            let _ = self.conn.quit();
        }
    }
}

/// The buffer a message is written from, and the timeout its reply is waited for.
struct Payload<'a> {
    text: &'a mut String,
    timeout_s: u64,
}

/// STARTTLS, required: a server that does not offer it, or an upgrade that fails (a
/// certificate or protocol problem that retrying will not fix), stops the run.
fn start_tls(conn: &mut SmtpConnection, settings: &TransportSettings) -> Result<(), ConnectError> {
    let c = &settings.config;
    let fatal = |why: String| ConnectError::Fatal(Error::smtp(server(c), why));
    let tls = match settings.tls.as_ref() {
        Some(tls) if conn.can_starttls() => tls,
        Some(_) => {
            hang_up(conn);
            return Err(fatal(
                "does not offer STARTTLS, and tls = \"starttls\" requires it".into(),
            ));
        }
        None => return Err(fatal("no TLS settings were prepared for STARTTLS".into())),
    };
    conn.starttls(tls, &settings.hello)
        .map_err(|e| fatal(tls_failure(c, &e)))
}

/// AUTH, when a username is configured: never over an unencrypted connection to another
/// machine; a refusal stops the run, a 4xx is retried later.
fn authenticate(
    conn: &mut SmtpConnection,
    settings: &TransportSettings,
) -> Result<(), ConnectError> {
    let c = &settings.config;
    let Some(credentials) = &settings.credentials else {
        return Ok(());
    };
    if !conn.is_encrypted() && !is_loopback(&c.host) {
        hang_up(conn);
        return Err(ConnectError::Fatal(Error::smtp(
            server(c),
            "refusing to authenticate over an unencrypted connection",
        )));
    }
    let Err(e) = conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials) else {
        return Ok(());
    };
    hang_up(conn);
    Err(if e.is_transient() {
        ConnectError::Transient(format!("authentication: {}", describe(&e)))
    } else {
        let user = c.username.as_deref().unwrap_or("");
        ConnectError::Fatal(Error::smtp(
            server(c),
            format!("authentication as {user} failed: {}", describe(&e)),
        ))
    })
}

impl Deliver for SmtpDeliver {
    fn deliver(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
        next: Option<Next<'_>>,
        durable: &mut dyn FnMut() -> Result<(), Error>,
    ) -> Outcome {
        let announced_other = |s: &Session| {
            s.primed.as_ref().is_some_and(|p| {
                (p.envelope != *envelope || p.ascii != message.is_ascii()) && p.waits_for_content()
            })
        };
        // Not the message announced (a retry came first): a connection waiting for
        // content cannot take another command, so it is dropped.
        if self.session.as_ref().is_some_and(announced_other) {
            self.drop_connection();
        }
        let session = match self.session.take().filter(|s| !s.conn.has_broken()) {
            Some(mut session) => {
                // A refusal announced for another message is forgotten with it.
                session.primed = session
                    .primed
                    .take()
                    .filter(|p| p.envelope == *envelope && p.ascii == message.is_ascii());
                session
            }
            None => match Session::open(&self.settings) {
                Ok(session) => session,
                Err(ConnectError::Transient(e)) => return Outcome::Unreachable(e),
                Err(ConnectError::Fatal(e)) => return Outcome::Fatal(e),
            },
        };
        let session = self.session.insert(session);
        let mut out = Payload {
            text: &mut self.payload,
            timeout_s: self.settings.config.timeout_s.max(1),
        };
        let outcome = session.transaction(&mut out, envelope, message, next, durable);
        if session.conn.has_broken() {
            // Broken, or closed by the server's 421: the next message opens a new one.
            self.drop_connection();
        }
        outcome
    }

    fn close(&mut self) {
        if let Some(session) = self.session.take() {
            session.close();
        }
    }
}

impl SmtpDeliver {
    fn drop_connection(&mut self) {
        if let Some(mut session) = self.session.take() {
            hang_up(&mut session.conn);
        }
    }
}

/// `check --smtp`: connect, EHLO, STARTTLS and AUTH as a send would, then QUIT without
/// sending anything. Returns one line per step; the error names the step that failed.
pub(super) fn probe(settings: &TransportSettings) -> Result<Vec<String>, Error> {
    let c = &settings.config;
    let Session {
        mut conn,
        pipelining,
        ..
    } = Session::open(settings).map_err(|e| match e {
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
