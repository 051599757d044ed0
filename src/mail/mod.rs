//! Building messages. A rendered variant plus one recipient becomes a complete RFC 5322
//! message: multipart/alternative (text first, HTML last), encoded headers, list headers.
//! [`Prepared`] encodes a variant once and splices each recipient in; [`Composer`] is the
//! one place that decides what a recipient's message holds (greeting, unsubscribe link,
//! Message-ID) for send, dry run and preview alike; [`build`] is lettre's builder, kept as
//! the reference the fast path is tested against. Nothing here touches the network.

mod compose;
mod dkim;
mod prepared;
mod reference;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::Address;
use sha2::{Digest as _, Sha256};
use std::borrow::Cow;
use unicode_segmentation::UnicodeSegmentation;

use crate::config::Sender;
use crate::week::Week;

pub(crate) use compose::{no_way_out, Composer, Unsubscribe, NOT_CONFIGURED};
pub(crate) use dkim::Signer;
pub use prepared::{Personal, Prepared};
pub use reference::{build, Envelope};

/// Longest subject we send, in characters, before truncation on a grapheme boundary.
/// RFC 5322 caps lines at 998 octets; encoded words and folding stay well under that.
pub const MAX_SUBJECT_CHARS: usize = 200;

/// A stable Message-ID for (newsletter, week, recipient), so a retried message keeps its
/// identity and two newsletters sent from one domain never share one. `recipient` is the
/// address key as it is: two local parts that differ only in case may be two mailboxes
/// (RFC 5321), so they get two Message-IDs.
pub fn message_id(week: Week, recipient: &str, sender: &Sender) -> String {
    let list = &sender.list_id;
    let hash = Sha256::digest(format!("{list}\0{week}\0{recipient}").as_bytes());
    let hex = crate::text::hex(&hash[..12]);
    let domain = sender.from.email.domain();
    let domain = if domain.is_ascii() {
        Cow::Borrowed(domain)
    } else {
        Cow::Owned(idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_string()))
    };
    format!("<digest.{week}.{hex}.{list}@{domain}>")
}

/// `address` with its domain in ASCII (IDNA punycode): what RCPT TO and headers carry, so
/// `lecteur@bücher.example` reaches servers without SMTPUTF8.
pub fn ascii_domain(address: &Address) -> Result<Address, String> {
    if address.domain().is_ascii() {
        return Ok(address.clone());
    }
    let domain = idna::domain_to_ascii(address.domain())
        .map_err(|_| format!("the domain {:?} is not a valid IDN", address.domain()))?;
    Address::new(address.user(), domain).map_err(|e| format!("bad address ({e})"))
}

pub(crate) fn raw(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(
        HeaderName::new_from_ascii_str(name),
        header_safe(value).into_owned(),
    )
}

pub use crate::text::header_safe;

/// One rendered variant of a week, as the ledger froze it: what the composer encodes.
#[derive(Debug, Clone)]
pub(crate) struct Variant {
    pub id: i64,
    pub subject: String,
    pub html: Option<String>,
    pub text: String,
    pub greeting_named: String,
    pub greeting_anonymous: String,
}

/// One reader to compose a message for, as the ledger lists them.
#[derive(Debug, Clone)]
pub(crate) struct Recipient {
    pub seq: i64,
    pub key: String,
    pub email: String,
    pub name: Option<String>,
    pub variant: i64,
}

pub(crate) fn header_safe_mailbox(mailbox: &Mailbox) -> Mailbox {
    Mailbox::new(
        mailbox.name.as_deref().map(|n| header_safe(n).into_owned()),
        mailbox.email.clone(),
    )
}

/// The subject on one line, cut on a grapheme boundary with an ellipsis when too long.
pub fn truncate_subject(subject: &str) -> String {
    let clean = crate::text::normalize_whitespace(&header_safe(subject));
    if clean.chars().count() <= MAX_SUBJECT_CHARS {
        return clean;
    }
    let mut out = String::new();
    for g in clean.graphemes(true) {
        if out.chars().count() + g.chars().count() > MAX_SUBJECT_CHARS - 1 {
            break;
        }
        out.push_str(g);
    }
    out.push('…');
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The sender of the mail tests.
    pub(in crate::mail) fn sender() -> Sender {
        Sender {
            from: "Veille Réseaux <veille@example.org>".parse().unwrap(),
            reply_to: None,
            list_id: "veille.example.org".into(),
            unsubscribe_mailto: Some("desabonnement@example.org".into()),
            unsubscribe_url: None,
            unsubscribe_secret_env: "X".into(),
            bounce_address: None,
            soft_bounce_limit: 3,
            soft_bounce_weeks: 8,
        }
    }

    #[test]
    fn message_ids_are_stable_per_week_and_recipient() {
        let w: Week = "2011-W52".parse().unwrap();
        let a = message_id(w, "a@example.com", &sender());
        assert_eq!(a, message_id(w, "a@example.com", &sender()));
        assert_ne!(a, message_id(w, "b@example.com", &sender()));
        // Regression (#11): local parts differing in case only shared one Message-ID.
        assert_ne!(a, message_id(w, "A@example.com", &sender()));
        assert!(a.starts_with("<digest.2011-W52."), "{a}");
        assert!(a.ends_with(".veille.example.org@example.org>"), "{a}");
        // Regression (#10): two newsletters on one domain shared Message-IDs.
        let other = Sender {
            list_id: "autre.example.org".into(),
            ..sender()
        };
        assert_ne!(a, message_id(w, "a@example.com", &other));
    }

    #[test]
    fn idn_domains_go_out_in_punycode() {
        let a: Address = "lecteur@bücher.example".parse().unwrap();
        assert_eq!(
            ascii_domain(&a).unwrap().to_string(),
            "lecteur@xn--bcher-kva.example"
        );
        let b: Address = "jo@example.org".parse().unwrap();
        assert_eq!(ascii_domain(&b).unwrap(), b);
        let c: Address = "lécteur@bücher.example".parse().unwrap();
        assert_eq!(
            ascii_domain(&c).unwrap().to_string(),
            "lécteur@xn--bcher-kva.example"
        );
    }

    #[test]
    fn long_subjects_are_cut_on_grapheme_boundaries() {
        let s = "é\u{301}".repeat(300);
        let t = truncate_subject(&s);
        assert!(t.chars().count() <= MAX_SUBJECT_CHARS);
        assert!(t.ends_with("\u{301}…"));
    }
}
