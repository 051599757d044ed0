//! `digestif inbox` on an mbox written here in the RFCs' forms: an abuse report (RFC 5965),
//! mails to the unsubscribe address (RFC 2369 mailto), delays (RFC 3464), and mail that
//! must be left alone (issue 10).

use crate::harness::{token, SECRET};
use crate::harness::{Site, CONFIG};

const LIST: &str = "# Nos lecteurs\n\
[[subscriber]]\nemail = \"ana@readers.example\"\n\n\
[[subscriber]]\nemail = \"bob@readers.example\" # depuis 2011\n\n\
[[subscriber]]\nemail = \"cy@readers.example\"\n\n\
[[subscriber]]\nemail = \"dee@readers.example\"\n\n\
[[subscriber]]\nemail = \"eve@readers.example\"\n";

fn arf(reported_token: &str) -> String {
    format!(
        "From abuse@mailbox-provider.example Mon Jan  2 08:00:00 2012\n\
From: <abuse@mailbox-provider.example>\n\
To: <bounces@example.org>\n\
Subject: FW: Veille Test\n\
MIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"arf\"\n\
\n\
--arf\n\
Content-Type: text/plain\n\
\n\
This is an email abuse report.\n\
\n\
--arf\n\
Content-Type: message/feedback-report\n\
\n\
Feedback-Type: abuse\n\
User-Agent: Reporter/1.0\n\
Version: 1\n\
\n\
--arf\n\
Content-Type: text/rfc822-headers\n\
\n\
From: Veille Test <veille@example.org>\n\
To: redacted@mailbox-provider.example\n\
List-Unsubscribe: <https://veille.example.org/unsubscribe?token={reported_token}>\n\
Subject: Semaine 52\n\
\n\
--arf--\n\
\n"
    )
}

fn delay(n: usize) -> String {
    format!(
        "From MAILER-DAEMON Mon Jan  2 08:0{n}:00 2012\n\
From: MAILER-DAEMON@mx.readers.example\n\
To: bounces@example.org\n\
Subject: Delayed Mail (still being retried)\n\
Auto-Submitted: auto-replied\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"d{n}\"\n\
\n\
--d{n}\n\
Content-Type: text/plain\n\
\n\
Still trying.\n\
\n\
--d{n}\n\
Content-Type: message/delivery-status\n\
\n\
Reporting-MTA: dns; mx.readers.example\n\
\n\
Final-Recipient: rfc822; dee@readers.example\n\
Action: delayed\n\
Status: 4.2.2\n\
Diagnostic-Code: smtp; 452 4.2.2 mailbox full\n\
\n\
--d{n}\n\
Content-Type: text/rfc822-headers\n\
\n\
Message-ID: <week-{n}@example.org>\n\
\n\
--d{n}--\n\
\n"
    )
}

#[test]
fn reports_and_requests_clean_the_list_once_and_the_rest_is_left_alone() {
    let site = Site::new()
        .file(
            "digestif.toml",
            CONFIG.replace(
                "unsubscribe_mailto = \"desabonnement@example.org\"",
                "unsubscribe_mailto = \"desabonnement@example.org\"\nbounce_address = \"bounces@example.org\"\nsoft_bounce_limit = 3",
            ),
        )
        .file("subscribers.toml", LIST);
    let mut mbox = arf(&token("ana@readers.example"));
    // Our mailto link's subject carries the token; Bob writes from another address.
    mbox.push_str(&format!(
        "From bob.home@elsewhere.example Mon Jan  2 09:00:00 2012\n\
From: Bob <bob.home@elsewhere.example>\nTo: desabonnement@example.org\n\
Subject: unsubscribe {}\n\n\n",
        token("bob@readers.example")
    ));
    // Cy just writes "stop" from the subscribed address.
    mbox.push_str("From cy@readers.example Mon Jan  2 09:30:00 2012\nFrom: cy@readers.example\nTo: desabonnement@example.org\nSubject: stop\n\nMerci de me retirer.\n\n");
    // An out-of-office reply to the unsubscribe address unsubscribes nobody.
    mbox.push_str("From eve@readers.example Mon Jan  2 10:00:00 2012\nFrom: eve@readers.example\nTo: desabonnement@example.org\nAuto-Submitted: auto-replied\nSubject: Absente\n\nRetour lundi.\n\n");
    mbox.push_str("From eve@readers.example Mon Jan  2 10:30:00 2012\nFrom: eve@readers.example\nTo: veille@example.org\nSubject: Merci pour la lettre\n\nBravo.\n\n");
    // Dee's mailbox is full for three different digests: bounced at the third.
    for n in 1..=3 {
        mbox.push_str(&delay(n));
    }
    mbox.push_str(&delay(3)); // the same report twice (a resent copy): counted once
    let site = site.file("in.mbox", &mbox);
    let env = [("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)];
    let run = site.run_env(&["inbox", "in.mbox"], &env).success();
    let out = run.stdout();
    for line in [
        "in.mbox message 1: ana@readers.example unsubscribed (abuse report)",
        "in.mbox message 2: bob@readers.example unsubscribed (unsubscribe mail)",
        "in.mbox message 3: cy@readers.example unsubscribed (unsubscribe mail)",
        "in.mbox message 4: left alone: not a bounce, abuse report or unsubscribe mail (Subject: Absente)",
        "in.mbox message 5: left alone: not a bounce, abuse report or unsubscribe mail (Subject: Merci pour la lettre)",
        "in.mbox message 6: temporary failure 1 of 3 for dee@readers.example (4.2.2 smtp; 452 4.2.2 mailbox full)",
        "in.mbox message 7: temporary failure 2 of 3 for dee@readers.example",
        "in.mbox message 8: dee@readers.example bounced (3 temporary failures within 8 weeks, last 4.2.2",
        "9 messages: 1 bounced, 3 temporary failures counted, 0 refused as spam or by policy (addresses kept), 3 unsubscribed, 2 left alone, 1 handled before",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let list = std::fs::read_to_string(site.path("subscribers.toml")).unwrap();
    let expected = LIST
        .replace(
            "\"ana@readers.example\"\n",
            "\"ana@readers.example\"\nstatus = \"unsubscribed\"\n",
        )
        .replace(
            "# depuis 2011\n",
            "# depuis 2011\nstatus = \"unsubscribed\"\n",
        )
        .replace(
            "\"cy@readers.example\"\n",
            "\"cy@readers.example\"\nstatus = \"unsubscribed\"\n",
        )
        .replace(
            "\"dee@readers.example\"\n",
            "\"dee@readers.example\"\nstatus = \"bounced\"\n",
        );
    assert_eq!(list, expected);
    let again = site.run_env(&["inbox", "in.mbox"], &env).success();
    again.assert_stdout_contains("9 messages: 0 bounced, 0 temporary failures counted, 0 refused as spam or by policy (addresses kept), 0 unsubscribed, 0 left alone, 9 handled before");
    site.run(&["status"])
        .success()
        .assert_stdout_starts("subscribers: 1 active, 3 unsubscribed, 1 bounced\n");
}

#[test]
fn a_maildir_is_read_and_a_forged_token_unsubscribes_no_one() {
    let site = Site::new().file("subscribers.toml", LIST);
    let forged = digestif::audience::token::Secret::new(b"some-other-secret-xx".to_vec())
        .unwrap()
        .token("ana@readers.example");
    let mail = format!(
        "From: stranger@elsewhere.example\nTo: desabonnement@example.org\nSubject: unsubscribe {forged}\n\n\n"
    );
    let site = site
        .file("Maildir/new/1.eml", mail)
        .file("Maildir/cur/.keep", "");
    std::fs::remove_file(site.path("Maildir/cur/.keep")).unwrap();
    let run = site
        .run_env(
            &["inbox", "Maildir"],
            &[("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)],
        )
        .success();
    run.assert_stdout_contains("left alone: names no listed reader (unsubscribe mail)");
    assert_eq!(
        std::fs::read_to_string(site.path("subscribers.toml")).unwrap(),
        LIST
    );
    let not_a_maildir = site.run(&["inbox", "posts"]);
    assert_eq!(not_a_maildir.code(), 2);
    assert!(
        not_a_maildir.stderr().contains("not a Maildir"),
        "{}",
        not_a_maildir.stderr()
    );
}

/// Issue 24: an abuse report that redacts every address and strips our links still names
/// its reader: the reported message's Message-ID is in the send ledger. The complaint
/// counts in that week's rates.
#[test]
fn a_report_that_hides_every_address_is_matched_by_its_message_id() {
    let config = CONFIG.to_string() + "\n[smtp]\ntransport = \"file\"\nfile_dir = \"outbox\"\n";
    let site = Site::new()
        .file("digestif.toml", config)
        .file("subscribers.toml", crate::harness::SUBSCRIBERS)
        .with_sample_week();
    site.run(&["send"]).success();
    let camille = std::fs::read_dir(site.path("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .find(|m| {
            m.lines()
                .any(|l| l.starts_with("To:") && l.contains("camille@example.org"))
        })
        .expect("Camille's message in the outbox");
    let message_id = camille
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .unwrap()
        .trim()
        .to_string();
    let report = arf("").replace(
        "List-Unsubscribe: <https://veille.example.org/unsubscribe?token=>\n",
        &format!("Message-ID: {message_id}\n"),
    );
    assert!(!report.contains("camille"), "{report}");
    std::fs::write(site.path("reports.mbox"), report).unwrap();
    let later = [("DIGESTIF_NOW", "2012-01-09T15:00:00+01:00")];
    site.run_env(&["inbox", "reports.mbox"], &later)
        .success()
        .assert_stdout_contains("camille@example.org unsubscribed (abuse report)");
    let status = site.run(&["status", "--json"]).success();
    let json: serde_json::Value = serde_json::from_str(&status.stdout()).unwrap();
    assert_eq!(json[0]["rates"]["complaints"], 1, "{json}");
}
