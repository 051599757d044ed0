//! What a server's reply, or a failed read, means: a timeout, a closing channel, a TLS
//! failure, a refusal about one address rather than the whole campaign.

use lettre::transport::smtp::client::SmtpConnection;
use lettre::transport::smtp::commands::Rset;
use lettre::transport::smtp::response::{Category, Code, Detail, Severity};

use super::ConnectError;
use crate::config::SmtpConfig;
use crate::error::Error;

/// Did a read time out? Linux reports a socket read timeout as `WouldBlock` (EAGAIN), which
/// lettre's own `is_timeout` does not recognise.
pub(super) fn is_timeout(e: &lettre::transport::smtp::Error) -> bool {
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
pub(super) fn is_closing(e: &lettre::transport::smtp::Error) -> bool {
    e.status()
        == Some(Code::new(
            Severity::TransientNegativeCompletion,
            Category::Connections,
            Detail::One,
        ))
}

/// Drop a connection now. lettre's `abort` first sends QUIT and waits for its reply, for as
/// long as the read timeout (`smtp.timeout_s`): a server waiting for a message's content
/// (after its 354) reads QUIT as text and never answers, and a server that stopped
/// answering does not either. So the wait is cut to a millisecond: the connection is shut
/// down whatever comes back, and a message whose final dot never went out is discarded.
pub(super) fn hang_up(conn: &mut SmtpConnection) {
    let _ = conn.set_timeout(Some(std::time::Duration::from_millis(1)));
    conn.abort();
}

/// After a 4xx: a 421 means the server is closing, so the connection is dropped (the next
/// message opens a new one); any other 4xx leaves it usable after RSET.
pub(super) fn reset_after_transient(conn: &mut SmtpConnection, e: &lettre::transport::smtp::Error) {
    if is_closing(e) {
        hang_up(conn);
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
pub(super) fn is_about_the_address(reply: &str) -> bool {
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

pub(super) fn describe(e: &lettre::transport::smtp::Error) -> String {
    let text = e.to_string().replace(['\r', '\n'], " ");
    match e.status() {
        Some(code) if !text.starts_with(&code.to_string()) => format!("{code} {text}"),
        _ => text,
    }
}

/// `host:port`, as errors name the server, saying when it is the default rather than a
/// choice (a config without `[smtp]` otherwise fails with a bare "connection refused").
pub(super) fn server(c: &SmtpConfig) -> String {
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

pub(super) fn classify_connect_error(
    c: &SmtpConfig,
    e: lettre::transport::smtp::Error,
) -> ConnectError {
    let where_ = server(c);
    if is_tls_failure(&e) {
        ConnectError::Fatal(Error::smtp(where_, tls_failure(c, &e)))
    } else if e.is_permanent() {
        ConnectError::Fatal(Error::smtp(
            where_,
            format!("refused the session: {}", describe(&e)),
        ))
    } else {
        ConnectError::Transient(format!("cannot connect to {where_}: {}", in_words(c, &e)))
    }
}

/// A TLS failure as a person can act on it: what is wrong with the certificate, and what
/// to set. The library's own words follow in parentheses.
pub(super) fn tls_failure(c: &SmtpConfig, e: &lettre::transport::smtp::Error) -> String {
    use rustls::{CertificateError, Error as Tls};
    let raw = describe(e);
    let words = match find_in_chain::<Tls>(e) {
        Some(Tls::InvalidCertificate(cert)) => match cert {
            CertificateError::UnknownIssuer => {
                "its certificate is signed by an authority this machine does not trust (a \
                 self-signed certificate, or a private CA): set smtp.ca_file to that CA's PEM \
                 file, or use the relay's public name if it has a public certificate"
                    .to_string()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "its certificate has expired (or this machine's clock is wrong: check `date`)"
                    .to_string()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "its certificate is not for \"{}\": set smtp.host to the name the \
                     certificate is for",
                    c.host
                )
            }
            CertificateError::Other(other) if other.to_string().contains("CaUsedAsEndEntity") => {
                "it presents a CA certificate as its own: the server needs a certificate \
                 signed by that CA (smtp.ca_file names the CA, not the server's certificate)"
                    .to_string()
            }
            _ => "its certificate was refused".to_string(),
        },
        Some(_) => "the TLS handshake failed".to_string(),
        None => "the TLS handshake failed (does the port speak TLS? 465 is implicit TLS, \
                 587 STARTTLS: see smtp.tls)"
            .to_string(),
    };
    format!("TLS failed: {words} ({raw})")
}

/// A connection that did not come about, in words: refused, timed out, unknown host.
fn in_words(c: &SmtpConfig, e: &lettre::transport::smtp::Error) -> String {
    let raw = describe(e);
    let Some(io) = find_in_chain::<std::io::Error>(e) else {
        return raw;
    };
    match io.kind() {
        std::io::ErrorKind::ConnectionRefused => format!(
            "connection refused: nothing listens on port {} there (check smtp.host and \
             smtp.port)",
            c.port()
        ),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => format!(
            "no answer within {} s (smtp.timeout_s): a firewall, a wrong port, or the relay \
             is down",
            c.timeout_s.max(1)
        ),
        _ => raw,
    }
}

/// The first error of type `T` in `e`'s chain of sources.
fn find_in_chain<T: std::error::Error + 'static>(e: &lettre::transport::smtp::Error) -> Option<&T> {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<T>())
        {
            return Some(inner);
        }
        source = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
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
