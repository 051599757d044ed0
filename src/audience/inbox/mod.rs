//! Reading what comes back: delivery status notifications (RFC 3464), abuse reports
//! (ARF, RFC 5965) and "unsubscribe" mails, each turned into a [`Finding`] about one
//! reader. Parsing is mailparse's (MIME, headers, addresses); this module only knows
//! which fields say what. Reading the mailbox (Maildir or mbox) is here too; what to do
//! with a finding is the `inbox` command's.

mod class;
mod mailbox;
mod policy;
pub(crate) mod rates;

use mailparse::{MailHeaderMap, ParsedMail};

use crate::audience::optout::Readers;

use class::{class_of_reply, Class};
pub(crate) use mailbox::{read_mailbox, Stored};
pub(crate) use policy::{bounce_refused, handle, Tally};

/// What one message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    /// A permanent failure of the address (action `failed`, a hard status) for this reader.
    HardBounce { reader: Reader, status: String },
    /// The receiver refused the sender (spam, policy, reputation: `5.7.x`): not the
    /// address's fault, never a bounce.
    Blocked { reader: Reader, status: String },
    /// A temporary failure (action `delayed`, or a 4.x.x status) of one message.
    SoftBounce {
        reader: Reader,
        status: String,
        /// The failed message's Message-ID (or the report's), to count each message once.
        message: String,
    },
    /// Delivered after all (action `delivered`): their failures in a row start again.
    Delivered { reader: Reader },
    /// An abuse report (a reader pressed "spam"): the clues it carries, and the reported
    /// message's Message-ID (whose it was is in the send ledger).
    Complaint {
        reader: Option<Reader>,
        message_id: Option<String>,
    },
    /// A mail to the unsubscribe address.
    UnsubscribeMail { reader: Reader },
    /// A report or request that names no one we can find.
    Unmatched { what: &'static str, detail: String },
    /// Anything else: left alone.
    Other { subject: String },
}

impl Finding {
    /// Who the message says it is about, if anyone.
    pub(crate) fn reader(&self) -> Option<&Reader> {
        match self {
            Finding::HardBounce { reader, .. }
            | Finding::Blocked { reader, .. }
            | Finding::SoftBounce { reader, .. }
            | Finding::Delivered { reader }
            | Finding::UnsubscribeMail { reader } => Some(reader),
            Finding::Complaint { reader, .. } => reader.as_ref(),
            Finding::Unmatched { .. } | Finding::Other { .. } => None,
        }
    }

    /// A complaint's reported Message-ID, when no clue of it names a listed reader: the
    /// send ledger knows whose message it was.
    pub(crate) fn unresolved_message_id(&self, readers: &Readers) -> Option<&str> {
        match self {
            Finding::Complaint {
                reader,
                message_id: Some(id),
            } if reader
                .as_ref()
                .is_none_or(|r| policy::find(readers, r).is_none()) =>
            {
                Some(id)
            }
            _ => None,
        }
    }
}

/// Who a message is about, as the message says it: a token (from the VERP return path or
/// an unsubscribe link) is the surest, then an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reader {
    Token(String),
    Address(String),
    /// Several clues, best first.
    Either(String, String),
}

impl Reader {
    fn from_clues(token: Option<String>, address: Option<String>) -> Option<Reader> {
        match (token, address) {
            (Some(t), Some(a)) => Some(Reader::Either(t, a)),
            (Some(t), None) => Some(Reader::Token(t)),
            (None, Some(a)) => Some(Reader::Address(a)),
            (None, None) => None,
        }
    }

    /// The clues, best first.
    pub(crate) fn clues(&self) -> Vec<Clue<'_>> {
        match self {
            Reader::Token(t) => vec![Clue::Token(t)],
            Reader::Address(a) => vec![Clue::Address(a)],
            Reader::Either(t, a) => vec![Clue::Token(t), Clue::Address(a)],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clue<'a> {
    Token(&'a str),
    Address(&'a str),
}

/// Where replies and bounces are addressed.
pub(crate) struct Addresses<'a> {
    /// VERP base: `bounces@d` receives `bounces+TOKEN@d`.
    pub bounce: Option<&'a lettre::Address>,
    pub unsubscribe: Option<&'a str>,
}

/// Read one message and say what it is about.
pub(crate) fn classify(raw: &[u8], to: &Addresses<'_>) -> Finding {
    let Ok(mail) = mailparse::parse_mail(raw) else {
        return Finding::Other {
            subject: "(not a mail message)".into(),
        };
    };
    let subject = mail.headers.get_first_value("Subject").unwrap_or_default();
    let verp = to.bounce.and_then(|b| verp_token(&mail, b));
    match report_type(&mail).as_deref() {
        Some("delivery-status") => return delivery_status(&mail, verp),
        Some("feedback-report") => return complaint(&mail, verp, to.bounce),
        _ => {}
    }
    if let Some(address) = to.unsubscribe {
        if addressed_to(&mail, address) && !auto_submitted(&mail) {
            return unsubscribe_mail(&mail, &subject);
        }
    }
    Finding::Other { subject }
}

/// `report-type` of a `multipart/report`, lowercased.
fn report_type(mail: &ParsedMail<'_>) -> Option<String> {
    (mail.ctype.mimetype == "multipart/report")
        .then(|| {
            mail.ctype
                .params
                .get("report-type")
                .map(|t| t.to_lowercase())
        })
        .flatten()
}

/// The token of a return path `user+TOKEN@domain`, from the headers an MTA adds on
/// delivery (`Delivered-To`, `X-Original-To`, `Envelope-To`) or the report's `To`.
fn verp_token(mail: &ParsedMail<'_>, bounce: &lettre::Address) -> Option<String> {
    [
        "Delivered-To",
        "X-Original-To",
        "Envelope-To",
        "X-Envelope-To",
        "To",
    ]
    .iter()
    .flat_map(|h| mail.headers.get_all_values(h))
    .find_map(|v| token_of_return_path(&v, bounce))
}

/// The reader's token in a VERP return path, `bounces+TOKEN@domain`, among the addresses
/// of a header value.
fn token_of_return_path(value: &str, bounce: &lettre::Address) -> Option<String> {
    let prefix = format!("{}+", bounce.user().to_lowercase());
    let domain = bounce.domain().to_lowercase();
    addresses(value).into_iter().find_map(|a| {
        let (local, d) = a.rsplit_once('@')?;
        let local = local.to_lowercase();
        (d.to_lowercase() == domain)
            .then(|| local.strip_prefix(&prefix).map(str::to_string))
            .flatten()
            .filter(|t| !t.is_empty())
    })
}

/// Every address in a header value (a single bare address included).
fn addresses(value: &str) -> Vec<String> {
    match mailparse::addrparse(value) {
        Ok(list) => list
            .iter()
            .flat_map(|a| match a {
                mailparse::MailAddr::Single(s) => vec![s.addr.clone()],
                mailparse::MailAddr::Group(g) => g.addrs.iter().map(|s| s.addr.clone()).collect(),
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// RFC 3464: the `message/delivery-status` part, one block of fields per recipient.
fn delivery_status(mail: &ParsedMail<'_>, verp: Option<String>) -> Finding {
    let Some(part) = find_part(
        mail,
        &["message/delivery-status", "message/global-delivery-status"],
    ) else {
        return Finding::Unmatched {
            what: "delivery report",
            detail: "no message/delivery-status part".into(),
        };
    };
    let body = part.get_body_raw().unwrap_or_default();
    let blocks = field_blocks(&body);
    // The first block is about the message; the others about one recipient each. A
    // VERP return path names exactly one reader, so the first recipient block is theirs.
    let Some(recipient) = blocks.iter().skip(1).find(|b| field(b, "Action").is_some()) else {
        return Finding::Unmatched {
            what: "delivery report",
            detail: "no per-recipient fields".into(),
        };
    };
    let address = field(recipient, "Final-Recipient")
        .or_else(|| field(recipient, "Original-Recipient"))
        .map(|v| typed_address(&v));
    let Some(reader) = Reader::from_clues(verp, address) else {
        return Finding::Unmatched {
            what: "delivery report",
            detail: "no recipient named".into(),
        };
    };
    let action = field(recipient, "Action")
        .unwrap_or_default()
        .to_lowercase();
    let status = field(recipient, "Status").unwrap_or_default();
    let code = status.split_whitespace().next().unwrap_or("").to_string();
    let diagnostic = field(recipient, "Diagnostic-Code").unwrap_or_default();
    let status = if diagnostic.is_empty() {
        code.clone()
    } else {
        format!("{code} {}", diagnostic.trim())
    };
    let class = class::class_of(&code, &status);
    match action.as_str() {
        "failed" if class == Class::Block => Finding::Blocked { reader, status },
        "failed" if code.starts_with('5') && class == Class::Hard => {
            Finding::HardBounce { reader, status }
        }
        "failed" | "delayed" => Finding::SoftBounce {
            reader,
            status,
            message: original_message_id(mail)
                .or_else(|| mail.headers.get_first_value("Message-ID"))
                .unwrap_or_default(),
        },
        "delivered" | "relayed" | "expanded" => Finding::Delivered { reader },
        other => Finding::Unmatched {
            what: "delivery report",
            detail: format!("action {other:?}"),
        },
    }
}

/// RFC 5965: a `message/feedback-report` and the reported message (or its headers).
fn complaint(
    mail: &ParsedMail<'_>,
    verp: Option<String>,
    bounce: Option<&lettre::Address>,
) -> Finding {
    let report = find_part(mail, &["message/feedback-report"])
        .and_then(|p| p.get_body_raw().ok())
        .unwrap_or_default();
    let fields = field_blocks(&report).into_iter().next().unwrap_or_default();
    let original = original_headers(mail);
    // A token names the reader even when the report redacts the address: the report's own
    // return path, the reported message's envelope sender or Return-Path (VERP), or our
    // List-Unsubscribe link in it.
    let return_path = |value: Option<String>| {
        value
            .zip(bounce)
            .and_then(|(v, b)| token_of_return_path(&v, b))
    };
    let original_field = |name: &str| original.as_ref().and_then(|h| field(h, name));
    let token = verp
        .or_else(|| return_path(field(&fields, "Original-Mail-From")))
        .or_else(|| return_path(original_field("Return-Path")))
        .or_else(|| original_field("List-Unsubscribe").and_then(|v| token_in(&v)));
    let address = field(&fields, "Original-Rcpt-To")
        .map(|v| typed_address(&v))
        .or_else(|| {
            original
                .as_ref()
                .and_then(|h| field(h, "To"))
                .and_then(|v| addresses(&v).into_iter().next())
        });
    let message_id = original_field("Message-ID").map(|id| id.trim().to_string());
    let reader = Reader::from_clues(token, address);
    if reader.is_none() && message_id.is_none() {
        return Finding::Unmatched {
            what: "abuse report",
            detail: "no recipient, token or original message".into(),
        };
    }
    Finding::Complaint { reader, message_id }
}

/// A reader wrote to the unsubscribe address: the token of our mailto link (subject
/// `unsubscribe TOKEN`) if it is there, else the sender's address.
fn unsubscribe_mail(mail: &ParsedMail<'_>, subject: &str) -> Finding {
    let body = mail
        .subparts
        .first()
        .unwrap_or(mail)
        .get_body()
        .unwrap_or_default();
    let token = token_in(subject).or_else(|| token_in(&body));
    let from = mail
        .headers
        .get_first_value("From")
        .and_then(|v| addresses(&v).into_iter().next());
    match Reader::from_clues(token, from) {
        Some(reader) => Finding::UnsubscribeMail { reader },
        None => Finding::Unmatched {
            what: "unsubscribe mail",
            detail: "no sender address".into(),
        },
    }
}

/// Is `address` among the recipients (or the delivery address, subaddress included)?
fn addressed_to(mail: &ParsedMail<'_>, address: &str) -> bool {
    let Some((user, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let (user, domain) = (user.to_lowercase(), domain.to_lowercase());
    ["Delivered-To", "X-Original-To", "Envelope-To", "To", "Cc"]
        .iter()
        .flat_map(|h| mail.headers.get_all_values(h))
        .flat_map(|v| addresses(&v))
        .any(|a| {
            let Some((l, d)) = a.rsplit_once('@') else {
                return false;
            };
            let l = l.to_lowercase();
            d.to_lowercase() == domain
                && (l == user || l.strip_prefix(&user).is_some_and(|r| r.starts_with('+')))
        })
}

/// RFC 3834: an automatic reply (vacation, another list's robot) never unsubscribes.
fn auto_submitted(mail: &ParsedMail<'_>) -> bool {
    mail.headers
        .get_first_value("Auto-Submitted")
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("no"))
        || mail.headers.get_first_value("X-Autoreply").is_some()
}

/// A 32-hex-digit token following `token=` or the word "unsubscribe".
fn token_in(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    for marker in ["token=", "unsubscribe "] {
        for (i, _) in lower.match_indices(marker) {
            let rest = &lower[i + marker.len()..];
            let candidate: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
            if candidate.len() == 32 {
                return Some(candidate);
            }
        }
    }
    None
}

/// `rfc822; a@b` (or `utf-8; ...`) → `a@b`.
fn typed_address(value: &str) -> String {
    let address = value.split_once(';').map_or(value, |(_, a)| a);
    address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

/// Blocks of `Name: value` fields separated by blank lines (RFC 3464 section 2.1).
fn field_blocks(body: &[u8]) -> Vec<Vec<(String, String)>> {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let block = format!("{}\n\n", block.trim_start_matches('\n'));
            mailparse::parse_headers(block.as_bytes())
                .map(|(headers, _)| {
                    headers
                        .iter()
                        .map(|h| (h.get_key(), h.get_value()))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

fn field(block: &[(String, String)], name: &str) -> Option<String> {
    block
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
}

/// The first part, at any depth, of one of these types.
fn find_part<'m>(mail: &'m ParsedMail<'m>, types: &[&str]) -> Option<&'m ParsedMail<'m>> {
    if types.contains(&mail.ctype.mimetype.as_str()) {
        return Some(mail);
    }
    mail.subparts.iter().find_map(|p| find_part(p, types))
}

/// The headers of the message a report is about (a `message/rfc822` part or
/// `text/rfc822-headers`), as (name, value) pairs.
fn original_headers(mail: &ParsedMail<'_>) -> Option<Vec<(String, String)>> {
    let part = find_part(
        mail,
        &["message/rfc822", "text/rfc822-headers", "message/global"],
    )?;
    let raw = part.get_body_raw().ok()?;
    let (headers, _) = mailparse::parse_headers(&raw).ok()?;
    Some(
        headers
            .iter()
            .map(|h| (h.get_key(), h.get_value()))
            .collect(),
    )
}

fn original_message_id(mail: &ParsedMail<'_>) -> Option<String> {
    field(&original_headers(mail)?, "Message-ID")
}

#[cfg(test)]
mod tests;
