//! Messages written here in the forms of RFC 3464 (DSN), RFC 5965 (ARF) and RFC 2369
//! (mailto unsubscribe), with our own addresses and tokens.

use super::mailbox::split_mbox;
use super::*;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn bounce() -> lettre::Address {
    "bounces@news.example".parse().unwrap()
}

fn to() -> Addresses<'static> {
    let bounce: &'static lettre::Address = Box::leak(Box::new(bounce()));
    Addresses {
        bounce: Some(bounce),
        unsubscribe: Some("leave@news.example"),
    }
}

fn dsn(action: &str, status: &str, verp: bool) -> String {
    let delivered_to = if verp {
        format!("Delivered-To: bounces+{TOKEN}@news.example\r\n")
    } else {
        String::new()
    };
    format!(
        "{delivered_to}From: Mail Delivery System <MAILER-DAEMON@mx.example>\r\n\
         To: bounces+{TOKEN}@news.example\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Message-ID: <report-1@mx.example>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"B1\"\r\n\
         \r\n\
         --B1\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         Your message could not be delivered.\r\n\
         \r\n\
         --B1\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.example\r\n\
         Arrival-Date: Mon, 2 Jan 2012 08:00:00 +0100\r\n\
         \r\n\
         Final-Recipient: rfc822; Ana@Readers.example\r\n\
         Original-Recipient: rfc822;Ana@Readers.example\r\n\
         Action: {action}\r\n\
         Status: {status}\r\n\
         Diagnostic-Code: smtp; 550 {status} mailbox unavailable\r\n\
         \r\n\
         --B1\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         From: Veille <veille@news.example>\r\n\
         To: ana@readers.example\r\n\
         Message-ID: <digest.2012-W01.abc.news.example@news.example>\r\n\
         Subject: Semaine 1\r\n\
         \r\n\
         --B1--\r\n"
    )
}

#[test]
fn a_permanent_failure_is_a_hard_bounce_named_by_its_return_path() {
    let found = classify(dsn("failed", "5.1.1", true).as_bytes(), &to());
    let Finding::HardBounce { reader, status } = found else {
        panic!("{found:?}")
    };
    assert_eq!(
        reader.clues(),
        [Clue::Token(TOKEN), Clue::Address("Ana@Readers.example")]
    );
    assert!(status.starts_with("5.1.1 smtp; 550"), "{status}");
}

#[test]
fn without_verp_the_final_recipient_names_the_reader() {
    let found = classify(
        dsn("failed", "5.1.2", false).as_bytes(),
        &Addresses {
            bounce: None,
            unsubscribe: None,
        },
    );
    let Finding::HardBounce { reader, .. } = found else {
        panic!("{found:?}")
    };
    assert_eq!(reader, Reader::Address("Ana@Readers.example".into()));
}

#[test]
fn delays_and_temporary_failures_are_soft_bounces_of_one_message() {
    for (action, status) in [("delayed", "4.4.7"), ("failed", "4.2.2")] {
        let found = classify(dsn(action, status, true).as_bytes(), &to());
        let Finding::SoftBounce { message, .. } = &found else {
            panic!("{found:?}")
        };
        assert_eq!(message, "<digest.2012-W01.abc.news.example@news.example>");
    }
    let found = classify(dsn("delivered", "2.0.0", true).as_bytes(), &to());
    assert!(matches!(found, Finding::Delivered { .. }), "{found:?}");
}

/// RFC 5965's form: a human part, the machine-readable report, the reported message.
fn arf(with_token: bool) -> String {
    let unsubscribe = if with_token {
        format!("List-Unsubscribe: <https://news.example/u?token={TOKEN}>\r\n")
    } else {
        String::new()
    };
    format!(
        "From: <abuse@mailbox-provider.example>\r\n\
         To: <bounces@news.example>\r\n\
         Subject: FW: Semaine 1\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report;\r\n\
         \tboundary=\"part1_13d.2e68ed54_boundary\"\r\n\
         \r\n\
         --part1_13d.2e68ed54_boundary\r\n\
         Content-Type: text/plain; charset=\"US-ASCII\"\r\n\
         \r\n\
         This is an email abuse report for an email message received from IP\r\n\
         192.0.2.1 on Mon, 2 Jan 2012 08:00:00 +0100.\r\n\
         \r\n\
         --part1_13d.2e68ed54_boundary\r\n\
         Content-Type: message/feedback-report\r\n\
         \r\n\
         Feedback-Type: abuse\r\n\
         User-Agent: SomeGenerator/1.0\r\n\
         Version: 1\r\n\
         \r\n\
         --part1_13d.2e68ed54_boundary\r\n\
         Content-Type: message/rfc822\r\n\
         Content-Disposition: inline\r\n\
         \r\n\
         From: Veille <veille@news.example>\r\n\
         To: redacted@mailbox-provider.example\r\n\
         {unsubscribe}\
         Subject: Semaine 1\r\n\
         Message-ID: <digest.2012-W01.abc.news.example@news.example>\r\n\
         \r\n\
         Bonjour,\r\n\
         \r\n\
         --part1_13d.2e68ed54_boundary--\r\n"
    )
}

#[test]
fn an_abuse_report_names_the_reader_by_the_token_of_the_reported_message() {
    let found = classify(
        arf(true).as_bytes(),
        &Addresses {
            bounce: None,
            unsubscribe: None,
        },
    );
    let Finding::Complaint {
        reader: Some(reader),
        ..
    } = found
    else {
        panic!("{found:?}")
    };
    assert_eq!(
        reader.clues(),
        [
            Clue::Token(TOKEN),
            Clue::Address("redacted@mailbox-provider.example")
        ]
    );
    let found = classify(
        arf(false).as_bytes(),
        &Addresses {
            bounce: None,
            unsubscribe: None,
        },
    );
    let Finding::Complaint { reader, .. } = found else {
        panic!("{found:?}")
    };
    assert_eq!(
        reader,
        Some(Reader::Address("redacted@mailbox-provider.example".into()))
    );
}

#[test]
fn a_mail_to_the_unsubscribe_address_unsubscribes_its_sender() {
    let mail = format!(
        "From: Ana <ana@readers.example>\r\nTo: leave@news.example\r\n\
         Subject: unsubscribe {TOKEN}\r\n\r\n\r\n"
    );
    assert_eq!(
        classify(mail.as_bytes(), &to()),
        Finding::UnsubscribeMail {
            reader: Reader::Either(TOKEN.into(), "ana@readers.example".into())
        }
    );
    let plain =
        "From: ana@readers.example\r\nTo: Leave+x@News.example\r\nSubject: stop\r\n\r\nplease\r\n";
    assert_eq!(
        classify(plain.as_bytes(), &to()),
        Finding::UnsubscribeMail {
            reader: Reader::Address("ana@readers.example".into())
        }
    );
}

#[test]
fn auto_replies_and_other_mail_are_left_alone() {
    let vacation = "From: ana@readers.example\r\nTo: leave@news.example\r\n\
                    Auto-Submitted: auto-replied\r\nSubject: Absent\r\n\r\nback monday\r\n";
    assert!(matches!(
        classify(vacation.as_bytes(), &to()),
        Finding::Other { .. }
    ));
    let letter =
        "From: ana@readers.example\r\nTo: veille@news.example\r\nSubject: Merci\r\n\r\nBravo\r\n";
    assert_eq!(
        classify(letter.as_bytes(), &to()),
        Finding::Other {
            subject: "Merci".into()
        }
    );
}

#[test]
fn mbox_files_split_on_from_lines_and_unquote() {
    let mbox = b"From MAILER-DAEMON Mon Jan  2 08:00:00 2012\n\
                 Subject: one\n\nbody\n>From the start\n\n\
                 From someone Mon Jan  2 09:00:00 2012\n\
                 Subject: two\n\nfirst line\nFrom here: not after a blank line\n";
    let messages = split_mbox(mbox);
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0], b"Subject: one\n\nbody\nFrom the start\n");
    assert_eq!(
        messages[1],
        b"Subject: two\n\nfirst line\nFrom here: not after a blank line\n"
    );
}

#[test]
fn an_abuse_report_names_the_reader_by_the_return_path_it_carries() {
    // Issue 24, item 8: a provider that redacts the address and strips the links still
    // reports the envelope sender (Original-Mail-From) or keeps the Return-Path header of
    // the reported message; both are our VERP address, with the reader's token.
    let to = Addresses {
        bounce: Some(&bounce()),
        unsubscribe: None,
    };
    // Sent to the provider's own abuse desk, not to our bounce address.
    let report = arf(false).replace("To: <bounces@news.example>", "To: <fbl@news.example>");
    let with_mail_from = report.replace(
        "Feedback-Type: abuse\r\n",
        &format!("Feedback-Type: abuse\r\nOriginal-Mail-From: <bounces+{TOKEN}@news.example>\r\n"),
    );
    let with_return_path = report.replace(
        "From: Veille <veille@news.example>\r\n",
        &format!(
            "Return-Path: <bounces+{TOKEN}@news.example>\r\nFrom: Veille <veille@news.example>\r\n"
        ),
    );
    for message in [with_mail_from, with_return_path] {
        let Finding::Complaint {
            reader: Some(reader),
            ..
        } = classify(message.as_bytes(), &to)
        else {
            panic!("not a complaint: {message}")
        };
        assert_eq!(reader.clues()[0], Clue::Token(TOKEN), "{message}");
    }
    // Without either, the redacted address is all there is.
    let Finding::Complaint { reader, .. } = classify(report.as_bytes(), &to) else {
        panic!()
    };
    assert_eq!(
        reader,
        Some(Reader::Address("redacted@mailbox-provider.example".into()))
    );
}

#[test]
fn a_block_for_spam_is_never_a_bounce_and_a_full_mailbox_is_soft() {
    // Issue 24: one bad week at a large provider must not remove every reader there.
    let blocked = dsn("failed", "5.7.1", true).replace(
        "mailbox unavailable",
        "Our system has detected that this message is likely unsolicited mail",
    );
    let found = classify(blocked.as_bytes(), &to());
    assert!(matches!(found, Finding::Blocked { .. }), "{found:?}");
    let full = classify(dsn("failed", "5.2.2", true).as_bytes(), &to());
    assert!(matches!(full, Finding::SoftBounce { .. }), "{full:?}");
    let unknown = classify(dsn("failed", "5.1.1", true).as_bytes(), &to());
    assert!(matches!(unknown, Finding::HardBounce { .. }), "{unknown:?}");
}
