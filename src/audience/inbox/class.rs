//! What a delivery failure says about the address, read as relays mean it: from the
//! enhanced status code (RFC 3463) and the words of the reply.
//!
//! - **hard**: the address is wrong (`5.1.0`–`5.1.3`, `5.1.10`, a bad-recipient `5.5.x`, or
//!   a 5xx with no enhanced code that names the user): the reader is bounced at once;
//! - **soft**: the mailbox cannot take it now (`4.x.x`, `5.2.x` such as a full mailbox,
//!   `5.3.x`, `5.4.x`, anything unclear): counted, bounced only after several digests;
//! - **block**: the receiver refuses the *sender* (`5.7.x`, or words naming spam, policy,
//!   reputation, a block list): never a bounce of the address, or one bad week at a large
//!   provider would remove every reader there.

/// A failure's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Hard,
    Soft,
    Block,
}

/// The class of a failure with enhanced status `code` (`5.1.1`; may be empty) and `text`
/// (the diagnostic or the reply).
pub(crate) fn class_of(code: &str, text: &str) -> Class {
    let text = text.to_lowercase();
    let mut parts = code.trim().split('.');
    let (class, subject, detail) = (parts.next(), parts.next(), parts.next());
    if subject == Some("7") || names_a_policy(&text) {
        return Class::Block;
    }
    if class != Some("5") {
        // 4.x.x, or no enhanced code: only a permanent reply that names the user is hard.
        return if class.is_none_or(str::is_empty) && text.starts_with('5') && names_the_user(&text)
        {
            Class::Hard
        } else {
            Class::Soft
        };
    }
    match (subject, detail) {
        (Some("1"), Some("0" | "1" | "2" | "3" | "10")) => Class::Hard,
        (Some("5"), _) if names_the_user(&text) => Class::Hard,
        (Some("0" | "1" | "6"), _) if names_the_user(&text) => Class::Hard,
        _ => Class::Soft,
    }
}

/// The class of a server's reply as a send records it (`550 5.1.1 <a@b>: User unknown`):
/// its enhanced code is the first word shaped `d.d.d` among its first few.
pub(crate) fn class_of_reply(reply: &str) -> Class {
    let code = reply
        .split_whitespace()
        .take(8)
        .map(|w| w.trim_end_matches([',', ';', ':']))
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .unwrap_or("");
    class_of(code, reply)
}

/// Words of a receiver refusing the sender rather than the address.
fn names_a_policy(text: &str) -> bool {
    [
        "spam",
        "unsolicited",
        "policy",
        "reputation",
        "blocklist",
        "block list",
        "blacklist",
        "blocked",
        "dmarc",
        "spf",
        "dkim",
        "rate limit",
    ]
    .iter()
    .any(|w| text.contains(w))
}

/// Words of a receiver saying the address does not exist.
fn names_the_user(text: &str) -> bool {
    [
        "user unknown",
        "unknown user",
        "no such user",
        "unknown recipient",
        "recipient unknown",
        "invalid recipient",
        "does not exist",
        "no such mailbox",
        "mailbox not found",
        "address rejected",
        "recipient address rejected",
        "not a valid mailbox",
    ]
    .iter()
    .any(|w| text.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relays_replies_fall_in_the_class_they_mean() {
        for (code, text, class) in [
            (
                "5.1.1",
                "550 5.1.1 <jo@x.org>: Recipient address rejected: User unknown",
                Class::Hard,
            ),
            (
                "5.1.10",
                "550 5.1.10 RESOLVER.ADR.RecipientNotFound",
                Class::Hard,
            ),
            ("", "550 No such user here", Class::Hard),
            (
                "5.2.2",
                "552 5.2.2 The email account that you tried to reach is over quota",
                Class::Soft,
            ),
            ("4.2.0", "451 4.2.0 try again later", Class::Soft),
            ("5.4.4", "554 5.4.4 Unable to route", Class::Soft),
            (
                "5.7.1",
                "550-5.7.1 Our system has detected that this message is likely unsolicited mail",
                Class::Block,
            ),
            (
                "5.7.26",
                "550 5.7.26 Unauthenticated email is not accepted (DMARC)",
                Class::Block,
            ),
            (
                "5.1.1",
                "550 5.1.1 blocked using a block list",
                Class::Block,
            ),
            ("5.0.0", "550 5.0.0 something went wrong", Class::Soft),
            ("", "550 denied", Class::Soft),
        ] {
            assert_eq!(class_of(code, text), class, "{code} {text}");
        }
        assert_eq!(class_of_reply("550 5.1.1 no such user here"), Class::Hard);
        assert_eq!(
            class_of_reply("550 5.7.1 message refused as spam"),
            Class::Block
        );
        assert_eq!(class_of_reply("552 5.2.2 mailbox full"), Class::Soft);
    }
}
