//! A variant encoded once; each recipient costs only their headers and the encoding of
//! their greeting and unsubscribe link.

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use sha2::{Digest as _, Sha256};

use super::{header_safe, header_safe_mailbox, raw, truncate_subject};
use crate::config::Sender;

/// A variant's message encoded once, so that each recipient costs only their own headers
/// and the quoted-printable encoding of their greeting and unsubscribe link.
///
/// Each part is quoted-printable. The body is stored as encoded pieces; a personal value
/// is spliced between two soft line breaks (`=\r\n`), so it starts at column 0 and the
/// line-length rules of the pieces around it still hold. Decoded, the result is exactly
/// the variant with the values substituted; `build` is the reference it is tested against.
pub struct Prepared {
    /// From, Reply-To, Subject, List-Id, Auto-Submitted, Precedence: encoded, CRLF-ended.
    fixed_headers: String,
    body: Vec<Piece>,
}

enum Piece {
    Encoded(String),
    Greeting(Part),
    Unsubscribe(Part),
    Preferences(Part),
}

#[derive(Clone, Copy)]
enum Part {
    Text,
    Html,
}

/// What differs per recipient.
pub struct Personal<'a> {
    pub to: &'a Mailbox,
    pub message_id: &'a str,
    pub greeting: &'a str,
    pub unsubscribe_link: &'a str,
    /// The reader's preferences page (empty when the digest has no such link).
    pub preferences_link: &'a str,
    /// The `List-Unsubscribe` value (RFC 2369): `<mailto:...>`, `<https://...>`.
    pub list_unsubscribe: Option<&'a str>,
    /// Its https link carries a token: add `List-Unsubscribe-Post` (RFC 8058).
    pub one_click: bool,
    /// The `Date:` of the message: when it is composed, on the command's clock.
    pub date: DateTime<Utc>,
}

impl Prepared {
    /// Prepare `subject`, `text` and `html` (with the render stage's markers) from `sender`.
    pub fn new(sender: &Sender, subject: &str, text: &str, html: Option<&str>) -> Prepared {
        use lettre::message::header::{self, Headers};
        let mut h = Headers::new();
        h.set(header::From::from(lettre::message::Mailboxes::from(
            header_safe_mailbox(&sender.from),
        )));
        if let Some(reply_to) = &sender.reply_to {
            h.set(header::ReplyTo::from(lettre::message::Mailboxes::from(
                header_safe_mailbox(reply_to),
            )));
        }
        h.set(header::Subject::from(truncate_subject(subject)));
        h.insert_raw(raw(
            "List-Id",
            &format!("<{}>", header_safe(&sender.list_id)),
        ));
        h.insert_raw(raw("Auto-Submitted", "auto-generated"));
        h.insert_raw(raw("Precedence", "bulk"));
        let mut body = Vec::new();
        let mut push = |s: String| body.push(Piece::Encoded(s));
        push("MIME-Version: 1.0\r\n".into());
        match html {
            Some(html) => {
                let boundary = boundary(&[subject, text, html]);
                push(format!("Content-Type: multipart/alternative;\r\n boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n"));
                push(PART_TEXT.into());
                split_and_encode(text, Part::Text, &mut body);
                body.push(Piece::Encoded(format!("\r\n--{boundary}\r\n{PART_HTML}")));
                split_and_encode(html, Part::Html, &mut body);
                body.push(Piece::Encoded(format!("\r\n--{boundary}--\r\n")));
            }
            None => {
                push(PART_TEXT.into());
                split_and_encode(text, Part::Text, &mut body);
            }
        }
        Prepared {
            fixed_headers: h.to_string(),
            body,
        }
    }

    /// The complete message for one recipient.
    pub fn message(&self, p: &Personal<'_>) -> Vec<u8> {
        let mut out = String::with_capacity(self.len_hint());
        out.push_str(&self.fixed_headers);
        push_to(&mut out, p.to);
        push_header(&mut out, "Message-ID", &header_safe(p.message_id));
        DATE.with(|date| out.push_str(date.borrow_mut().at(p.date)));
        if let Some(value) = p.list_unsubscribe {
            push_header(&mut out, "List-Unsubscribe", &header_safe(value));
        }
        if p.one_click {
            out.push_str("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
        }
        for (i, piece) in self.body.iter().enumerate() {
            let next_on_new_line =
                matches!(self.body.get(i + 1), Some(Piece::Encoded(s)) if s.starts_with("\r\n"));
            match piece {
                Piece::Encoded(s) => out.push_str(s),
                Piece::Greeting(part) => {
                    splice(&mut out, p.greeting, *part, false, next_on_new_line);
                }
                Piece::Unsubscribe(part) => {
                    splice(&mut out, p.unsubscribe_link, *part, true, next_on_new_line);
                }
                Piece::Preferences(part) => {
                    splice(&mut out, p.preferences_link, *part, true, next_on_new_line);
                }
            }
        }
        out.into_bytes()
    }

    fn len_hint(&self) -> usize {
        self.fixed_headers.len()
            + 512
            + self
                .body
                .iter()
                .map(|p| {
                    if let Piece::Encoded(s) = p {
                        s.len()
                    } else {
                        128
                    }
                })
                .sum::<usize>()
    }
}

/// The `To:` line. A plain name (letters, digits, single spaces) and a short line are
/// written directly, as lettre would write them (tested); anything else goes through lettre, which
/// quotes, encodes (RFC 2047) and folds.
fn push_to(out: &mut String, to: &Mailbox) {
    let address: &str = to.email.as_ref();
    let plain = |name: &str| {
        !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
            && !name.starts_with(' ')
            && !name.ends_with(' ')
            && !name.contains("  ")
    };
    let short = address.len() + to.name.as_deref().map_or(0, str::len) < 64;
    match to.name.as_deref() {
        None if short => {
            out.push_str("To: ");
            out.push_str(address);
            out.push_str("\r\n");
        }
        Some(name) if short && plain(name) => {
            // lettre quotes a name that is more than one word.
            let quote = if name.contains(' ') { "\"" } else { "" };
            out.push_str("To: ");
            out.push_str(quote);
            out.push_str(name);
            out.push_str(quote);
            out.push_str(" <");
            out.push_str(address);
            out.push_str(">\r\n");
        }
        _ => {
            use lettre::message::header::{self, Headers};
            let mut h = Headers::new();
            h.set(header::To::from(lettre::message::Mailboxes::from(
                header_safe_mailbox(to),
            )));
            out.push_str(&h.to_string());
        }
    }
}

/// `Name: value` and CRLF, folded after a comma between `<...>` items when the line would
/// pass 78 characters (RFC 5322, 2.2.3): a `List-Unsubscribe` with a mailto and an https
/// link is longer than that.
fn push_header(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(": ");
    let mut column = name.len() + 2;
    for (i, item) in value.split(", <").enumerate() {
        if i > 0 {
            // The item's "<" was taken by the split: put it back.
            if column + 3 + item.len() > 78 {
                out.push_str(",\r\n <");
                column = 2;
            } else {
                out.push_str(", <");
                column += 3;
            }
        }
        out.push_str(item);
        column += item.len();
    }
    out.push_str("\r\n");
}

/// The `Date:` header line, formatted once per second per thread.
struct DateLine {
    second: i64,
    line: String,
}

impl DateLine {
    fn at(&mut self, now: DateTime<Utc>) -> &str {
        if now.timestamp() != self.second || self.line.is_empty() {
            self.second = now.timestamp();
            self.line = now
                .format("Date: %a, %d %b %Y %H:%M:%S +0000\r\n")
                .to_string();
        }
        &self.line
    }
}

thread_local! {
    static DATE: std::cell::RefCell<DateLine> = const {
        std::cell::RefCell::new(DateLine { second: 0, line: String::new() })
    };
}

const PART_TEXT: &str = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n";
const PART_HTML: &str =
    "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n";

/// A personal value on lines of its own: a soft line break before it (unless a line just
/// ended) and after it (unless a line break follows), escaped for HTML where needed.
fn splice(out: &mut String, value: &str, part: Part, attribute: bool, next_on_new_line: bool) {
    let value = match (part, attribute) {
        (Part::Text, _) => std::borrow::Cow::Borrowed(value),
        (Part::Html, false) => html_escape::encode_text(value),
        (Part::Html, true) => html_escape::encode_double_quoted_attribute(value),
    };
    if !out.ends_with("\r\n") {
        out.push_str("=\r\n");
    }
    out.push_str(&qp(&value));
    if !next_on_new_line {
        out.push_str("=\r\n");
    }
}

/// Makes the personal piece a marker stands for.
type PieceOf = fn(Part) -> Piece;

/// Split at the render stage's markers and quoted-printable-encode the pieces between them.
fn split_and_encode(content: &str, part: Part, body: &mut Vec<Piece>) {
    use crate::render::{GREETING_MARK, PREFERENCES_MARK, UNSUBSCRIBE_MARK};
    let marks: [(&str, PieceOf); 3] = [
        (GREETING_MARK, Piece::Greeting),
        (UNSUBSCRIBE_MARK, Piece::Unsubscribe),
        (PREFERENCES_MARK, Piece::Preferences),
    ];
    let mut rest = content;
    loop {
        let next = marks
            .iter()
            .filter_map(|(mark, piece)| rest.find(mark).map(|i| (i, *mark, piece)))
            .min_by_key(|(i, _, _)| *i);
        match next {
            Some((i, mark, piece)) => {
                body.push(Piece::Encoded(qp(&rest[..i])));
                body.push(piece(part));
                rest = &rest[i + mark.len()..];
            }
            None => {
                body.push(Piece::Encoded(qp(rest)));
                return;
            }
        }
    }
}

/// Quoted-printable with CRLF line ends, as lettre encodes bodies.
fn qp(text: &str) -> String {
    if !text.contains('\n') {
        // A greeting or a link, once per message: no line ends to normalise.
        return quoted_printable::encode_to_str(text);
    }
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    quoted_printable::encode_to_str(crlf)
}

/// A MIME boundary that cannot occur in quoted-printable content (it contains no `=`),
/// derived from the content so a variant's bytes are reproducible.
fn boundary(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for p in parts {
        hash.update(p.as_bytes());
    }
    let digest = hash.finalize();
    format!("digestif-{}", crate::text::hex(&digest[..16]))
}

#[cfg(test)]
#[path = "prepared_tests.rs"]
mod prepared_tests;
