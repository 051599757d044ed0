//! The reference message builder: lettre's own, slower than [`super::Prepared`] but
//! obviously right. Tests compare the two; the benchmark measures the difference.

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;

use super::{header_safe, header_safe_mailbox, raw, truncate_subject};
use crate::config::Sender;
use crate::error::{Error, Result};

/// Everything that goes into one message.
pub struct Envelope<'a> {
    pub sender: &'a Sender,
    pub to: &'a Mailbox,
    pub subject: &'a str,
    pub text: String,
    /// `None` for text-only recipients.
    pub html: Option<String>,
    pub message_id: String,
    /// The `List-Unsubscribe` value, when there is a mechanism.
    pub list_unsubscribe: Option<&'a str>,
    /// Add `List-Unsubscribe-Post` (RFC 8058).
    pub one_click: bool,
}

/// Build the message for one recipient with lettre's builder. `send` and `preview` use
/// [`Prepared`] (encoded once per variant); this is the reference it is tested against.
pub fn build(e: Envelope<'_>) -> Result<Message> {
    let mut builder = Message::builder()
        .from(header_safe_mailbox(&e.sender.from))
        .to(header_safe_mailbox(e.to))
        .subject(truncate_subject(e.subject))
        .message_id(Some(header_safe(&e.message_id).into_owned()))
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
    if let Some(value) = e.list_unsubscribe {
        builder = builder.raw_header(raw("List-Unsubscribe", value));
    }
    if e.one_click {
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
    result.map_err(|err| Error::message(e.to.email.to_string(), err.to_string()))
}
