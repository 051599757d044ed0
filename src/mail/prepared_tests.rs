//! The prepared message against lettre's own build, byte for byte.

use super::*;
use crate::render::{GREETING_MARK, PREFERENCES_MARK, UNSUBSCRIBE_MARK};

/// The mail tests' sender, with a Reply-To.
fn sender() -> Sender {
    Sender {
        reply_to: Some("Rédaction <redaction@example.org>".parse().unwrap()),
        ..super::super::tests::sender()
    }
}

#[test]
fn prepared_messages_decode_like_lettre_built_ones() {
    let long_line = "é ".repeat(120);
    let text =
        format!("Titre\n{GREETING_MARK}\n\n{long_line}\n.leading dot\nfin : {UNSUBSCRIBE_MARK}\n");
    let html =
        format!("<p>{GREETING_MARK}</p><p>{long_line}</p><a href=\"{UNSUBSCRIBE_MARK}\">x</a> <a href=\"{PREFERENCES_MARK}\">p</a>");
    let to: Mailbox = "Zoé \"Z\" <zoe@example.com>".parse().unwrap();
    let greeting = "Bonjour Zoé <b>&</b>,";
    let link = "https://veille.example.org/u?token=a.b&x=\"1\"";
    let prefs = "https://veille.example.org/lettre/preferences?token=a&b";
    let list_unsubscribe =
        format!("<mailto:desabonnement@example.org?subject=unsubscribe>, <{link}>");
    let s = sender();
    let prepared = Prepared::new(&s, "Sujet — été", &text, Some(&html));
    let fast = prepared.message(&Personal {
        to: &to,
        message_id: "<m@example.org>",
        greeting,
        unsubscribe_link: link,
        preferences_link: prefs,
        list_unsubscribe: Some(&list_unsubscribe),
        one_click: true,
        date: DateTime::from_timestamp(1_325_000_000, 0).unwrap(),
    });
    let (reference_html, reference_text) =
        crate::render::fill_markers(Some(&html), &text, greeting, (link, prefs));
    let reference = super::super::build(super::super::Envelope {
        sender: &s,
        to: &to,
        subject: "Sujet — été",
        text: reference_text,
        html: reference_html,
        message_id: "<m@example.org>".into(),
        list_unsubscribe: Some(&list_unsubscribe),
        one_click: true,
    })
    .unwrap()
    .formatted();
    let a = mailparse::parse_mail(&fast).unwrap();
    let b = mailparse::parse_mail(&reference).unwrap();
    use mailparse::MailHeaderMap;
    for name in [
        "From",
        "To",
        "Reply-To",
        "Subject",
        "Message-ID",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Auto-Submitted",
    ] {
        assert_eq!(
            a.headers.get_first_value(name),
            b.headers.get_first_value(name),
            "{name}"
        );
    }
    assert_eq!(a.ctype.mimetype, "multipart/alternative");
    for i in 0..2 {
        assert_eq!(a.subparts[i].ctype.mimetype, b.subparts[i].ctype.mimetype);
        // mailparse keeps the CRLF that belongs to the boundary line of a quoted-printable
        // part (lettre chose base64 for the reference), hence the trim.
        let (x, y) = (
            a.subparts[i].get_body().unwrap(),
            b.subparts[i].get_body().unwrap(),
        );
        assert_eq!(
            x.trim_end_matches("\r\n"),
            y.trim_end_matches("\r\n"),
            "part {i}"
        );
    }
    let raw = String::from_utf8(fast).unwrap();
    assert!(raw.is_ascii());
    assert!(
        raw.split("\r\n").all(|l| l.len() <= 78),
        "quoted-printable lines stay short"
    );
}

#[test]
fn a_plain_to_line_is_written_as_lettre_writes_it() {
    use lettre::message::header::{self, Headers};
    for to in [
        "reader5@bench5.example.org",
        "Reader 5 <reader5@bench5.example.org>",
        "Camille <camille@example.org>",
        "\"Durand, Camille\" <camille@example.org>",
        "Zoé <zoe@example.org>",
        "A Very Long Name Indeed For A Reader <a.very.long.address@subdomain.example.org>",
    ] {
        let to: Mailbox = to.parse().unwrap();
        let mut ours = String::new();
        push_to(&mut ours, &to);
        let mut h = Headers::new();
        h.set(header::To::from(lettre::message::Mailboxes::from(
            to.clone(),
        )));
        assert_eq!(ours, h.to_string(), "{to}");
    }
}

#[test]
fn text_only_variant_is_a_single_part() {
    let s = sender();
    let prepared = Prepared::new(
        &s,
        "S",
        &format!("{GREETING_MARK}\ncorps\n{UNSUBSCRIBE_MARK}\n"),
        None,
    );
    let to: Mailbox = "a@example.com".parse().unwrap();
    let msg = prepared.message(&Personal {
        to: &to,
        message_id: "<m@e.org>",
        greeting: "Salut,",
        unsubscribe_link: "mailto:x@e.org",
        preferences_link: "",
        list_unsubscribe: Some("<mailto:x@e.org>"),
        one_click: false,
        date: DateTime::from_timestamp(1_325_000_000, 0).unwrap(),
    });
    let parsed = mailparse::parse_mail(&msg).unwrap();
    assert_eq!(parsed.ctype.mimetype, "text/plain");
    assert_eq!(
        parsed.get_body().unwrap().replace("\r\n", "\n"),
        "Salut,\ncorps\nmailto:x@e.org\n"
    );
}

#[test]
fn header_injection_is_neutralised() {
    let s = Sender {
        list_id: "veille.example.org\r\nX-List: 1".into(),
        ..sender()
    };
    let prepared = Prepared::new(
        &s,
        "Hello\r\nBcc: victim@example.com",
        "t",
        Some("<p>h</p>"),
    );
    let to: Mailbox = "Evil\r\nCc: x@example.com <lecteur@example.com>"
        .parse()
        .unwrap_or_else(|_| "lecteur@example.com".parse().unwrap());
    let msg = prepared.message(&Personal {
        to: &to,
        message_id: "<x@example.org>\r\nX-Id: 1",
        greeting: "Hi\r\nX-Greeting: 1",
        unsubscribe_link: "https://e.org/u?t=1\r\nX-Link: 1",
        preferences_link: "",
        list_unsubscribe: Some("<https://e.org/u?t=1\r\nX-Evil: 1>"),
        one_click: true,
        date: DateTime::from_timestamp(1_325_000_000, 0).unwrap(),
    });
    let raw = String::from_utf8(msg).unwrap();
    let headers = &raw[..raw.find("\r\n\r\n").unwrap()];
    for injected in [
        "Bcc:",
        "Cc:",
        "X-List:",
        "X-Id:",
        "X-Evil:",
        "X-Greeting:",
        "X-Link:",
    ] {
        assert!(
            !raw.contains(&format!("\r\n{injected}")),
            "{injected} reached a header line:\n{headers}"
        );
    }
    let parsed = mailparse::parse_mail(raw.as_bytes()).unwrap();
    use mailparse::MailHeaderMap;
    assert_eq!(
        parsed
            .headers
            .get_first_value("List-Unsubscribe-Post")
            .as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(
        parsed
            .headers
            .get_first_value("Subject")
            .unwrap()
            .contains("Bcc: victim"),
        "the subject is kept, on one line"
    );
    assert!(raw.lines().all(|l| l.len() <= 998));
}
