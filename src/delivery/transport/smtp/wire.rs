//! What goes on the wire: the MAIL command a message needs, pipelined envelope groups and
//! their replies, the dot-stuffed message with its terminator in one write.

use std::fmt;

use lettre::address::Envelope;
use lettre::transport::smtp::client::SmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;

use super::replies::{describe, hang_up, is_about_the_address, is_closing};
use crate::delivery::transport::Outcome;

/// The MAIL command for `envelope` and `message`: `BODY=8BITMIME` or `SMTPUTF8` when
/// needed, or the refusal when the server lacks what the message needs.
pub(super) fn mail_command(
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
pub(super) fn envelope_group(mail: &Mail, to: &lettre::Address) -> String {
    format!("{mail}{}{Data}", Rcpt::new(to.clone(), vec![]))
}

/// The replies to a pipelined MAIL, RCPT and DATA, `first` already read. `Ok`: the server
/// waits for the content. On a refusal the connection is made ready for the next
/// transaction (or dropped when the server is closing it or it failed).
pub(super) fn read_envelope_replies(
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
                hang_up(conn);
                return Err(Outcome::Transient(describe(&e)));
            }
        }
    }
    let Some(failure) = failure else {
        return Ok(());
    };
    if closing {
        hang_up(conn);
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
pub(super) struct Raw<S: AsRef<str>>(pub(super) S);

impl<S: AsRef<str>> fmt::Display for Raw<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_ref())
    }
}

/// The message, dot-stuffed, with its terminating `.` line, into `out` (cleared first):
/// written in one piece. `out` is the connection's own buffer, reused from message to
/// message, and lettre copies it once into the command it writes.
pub(super) fn data_payload(message: &[u8], out: &mut String) {
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
pub(super) fn response_text(response: &Response) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(64);
    let _ = write!(text, "{}", response.code());
    for line in response.message() {
        text.push(' ');
        text.push_str(line);
    }
    text
}

#[cfg(test)]
mod tests {
    use lettre::transport::smtp::response::{Category, Code, Detail, Severity};

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
