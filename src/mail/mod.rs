//! Building messages. A rendered variant plus one recipient becomes a complete RFC 5322
//! message: multipart/alternative (text first, HTML last), encoded headers, list headers.
//! [`Prepared`] encodes a variant once and splices each recipient in; [`Composer`] is the
//! one place that decides what a recipient's message holds (greeting, unsubscribe link,
//! Message-ID) for send, dry run and preview alike; [`build`] is lettre's builder, kept as
//! the reference the fast path is tested against. Nothing here touches the network.

mod compose;
mod prepared;
mod reference;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::Mailbox;
use sha2::{Digest as _, Sha256};
use unicode_segmentation::UnicodeSegmentation;

use crate::config::Sender;
use crate::digest::Week;

pub(crate) use compose::{Composer, Unsubscribe};
pub use prepared::{Personal, Prepared};
pub use reference::{build, Envelope};

/// Longest subject we send, in characters, before truncation on a grapheme boundary.
/// RFC 5322 caps lines at 998 octets; encoded words and folding stay well under that.
pub const MAX_SUBJECT_CHARS: usize = 200;

/// A stable Message-ID for (week, recipient), so a retried message keeps its identity.
/// `recipient` is the address key as it is: two local parts that differ only in case may
/// be two mailboxes (RFC 5321), so they get two Message-IDs.
pub fn message_id(week: Week, recipient: &str, sender: &Sender) -> String {
    let hash = Sha256::digest(format!("{week}\0{recipient}").as_bytes());
    let hex: String = hash.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("<digest.{week}.{hex}@{}>", sender.from.email.domain())
}

pub(crate) fn raw(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), header_safe(value))
}

/// Header text with CR, LF and other control characters replaced by spaces.
pub fn header_safe(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

pub(crate) fn header_safe_mailbox(mailbox: &Mailbox) -> Mailbox {
    Mailbox::new(
        mailbox.name.as_deref().map(header_safe),
        mailbox.email.clone(),
    )
}

/// The subject on one line, cut on a grapheme boundary with an ellipsis when too long.
pub fn truncate_subject(subject: &str) -> String {
    let clean = crate::posts::normalize_whitespace(&header_safe(subject));
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
mod tests {
    use super::*;

    fn sender() -> Sender {
        Sender {
            from: "Veille Réseaux <veille@example.org>".parse().unwrap(),
            reply_to: None,
            list_id: "veille.example.org".into(),
            unsubscribe_mailto: Some("desabonnement@example.org".into()),
            unsubscribe_url: None,
            unsubscribe_secret_env: "X".into(),
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
        assert!(a.starts_with("<digest.2011-W52.") && a.ends_with("@example.org>"));
    }

    #[test]
    fn long_subjects_are_cut_on_grapheme_boundaries() {
        let s = "é\u{301}".repeat(300);
        let t = truncate_subject(&s);
        assert!(t.chars().count() <= MAX_SUBJECT_CHARS);
        assert!(t.ends_with("\u{301}…"));
    }
}
