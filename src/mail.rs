//! Stage 5a: building messages. A rendered digest plus one recipient becomes a complete
//! RFC 5322 message: multipart/alternative (text first, HTML last), encoded headers,
//! list headers. Delivery lives in [`crate::send`]; nothing here touches the network.

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;
use sha2::{Digest as _, Sha256};
use unicode_segmentation::UnicodeSegmentation;

use crate::config::Sender;
use crate::digest::Week;
use crate::error::{Error, Result};

/// Longest subject we send, in characters, before truncation on a grapheme boundary.
/// RFC 5322 caps lines at 998 octets; encoded words and folding stay well under that.
pub const MAX_SUBJECT_CHARS: usize = 200;

/// Which parts a recipient gets.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// HTML with its plain-text alternative.
    Html,
    /// Plain text only.
    Text,
}

/// Everything that goes into one message.
pub struct Envelope<'a> {
    pub sender: &'a Sender,
    pub to: &'a Mailbox,
    pub subject: &'a str,
    pub text: String,
    /// `None` for text-only recipients.
    pub html: Option<String>,
    pub message_id: String,
    /// The https one-click unsubscribe URL, when configured.
    pub unsubscribe_url: Option<&'a str>,
}

/// A stable Message-ID for (week, recipient), so a retried message keeps its identity.
pub fn message_id(week: Week, recipient: &str, sender: &Sender) -> String {
    let hash = Sha256::digest(format!("{week}\0{}", recipient.to_lowercase()).as_bytes());
    let hex: String = hash.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("<digest.{week}.{hex}@{}>", sender.from.email.domain())
}

/// Build the message for one recipient.
pub fn build(e: Envelope<'_>) -> Result<Message> {
    let mut builder = Message::builder()
        .from(header_safe_mailbox(&e.sender.from))
        .to(header_safe_mailbox(e.to))
        .subject(truncate_subject(e.subject))
        .message_id(Some(header_safe(&e.message_id)))
        .date_now()
        .raw_header(raw(
            "List-Id",
            &format!("<{}>", header_safe(&e.sender.list_id)),
        ))
        .raw_header(raw("Auto-Submitted", "auto-generated"))
        .raw_header(raw("Precedence", "bulk"));
    if let Some(reply_to) = &e.sender.reply_to {
        builder = builder.reply_to(header_safe_mailbox(reply_to));
    }
    let mut unsubscribe = Vec::new();
    if let Some(mailto) = &e.sender.unsubscribe_mailto {
        unsubscribe.push(format!(
            "<mailto:{}?subject=unsubscribe>",
            header_safe(mailto)
        ));
    }
    if let Some(url) = e.unsubscribe_url {
        unsubscribe.push(format!("<{}>", header_safe(url)));
    }
    if !unsubscribe.is_empty() {
        builder = builder.raw_header(raw("List-Unsubscribe", &unsubscribe.join(", ")));
    }
    if e.unsubscribe_url.is_some() {
        builder = builder.raw_header(raw("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"));
    }
    let text_part = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(e.text);
    let result = match e.html {
        Some(html) => builder.multipart(
            MultiPart::alternative().singlepart(text_part).singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html),
            ),
        ),
        None => builder.singlepart(text_part),
    };
    result.map_err(|err| {
        Error::Mail(format!(
            "cannot build the message for {}: {err}",
            e.to.email
        ))
    })
}

fn raw(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), header_safe(value))
}

/// Header text with CR, LF and other control characters replaced by spaces.
pub fn header_safe(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn header_safe_mailbox(mailbox: &Mailbox) -> Mailbox {
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
        let a = message_id(w, "A@example.com", &sender());
        assert_eq!(a, message_id(w, "a@example.com", &sender()));
        assert_ne!(a, message_id(w, "b@example.com", &sender()));
        assert!(a.starts_with("<digest.2011-W52.") && a.ends_with("@example.org>"));
    }

    #[test]
    fn long_subjects_are_cut_on_grapheme_boundaries() {
        let s = "é\u{301}".repeat(300);
        let t = truncate_subject(&s);
        assert!(t.chars().count() <= MAX_SUBJECT_CHARS);
        assert!(t.ends_with("\u{301}…"));
    }

    #[test]
    fn header_injection_is_neutralised() {
        let to: Mailbox = "lecteur@example.com".parse().unwrap();
        let s = sender();
        let msg = build(Envelope {
            sender: &s,
            to: &to,
            subject: "Hello\r\nBcc: victim@example.com",
            text: "t".into(),
            html: Some("<p>h</p>".into()),
            message_id: "<x@example.org>".into(),
            unsubscribe_url: Some("https://e.org/u?t=1\r\nX-Evil: 1"),
        })
        .unwrap();
        let raw = String::from_utf8(msg.formatted()).unwrap();
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
        assert!(!raw.contains("\r\nX-Evil"), "{raw}");
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        assert!(raw.lines().all(|l| l.len() <= 998));
    }
}
