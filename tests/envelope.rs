//! The envelope and the way out, against the real aiosmtpd server (issue 10): IDN
//! domains, non-ASCII local parts, refusals at RCPT, no bulk mail without unsubscribe.

use crate::harness::{site, CONFIG, SECRET};
use crate::smtp::SmtpServer;

fn smtp(server: &SmtpServer, concurrency: usize) -> String {
    format!("{}\nmax_attempts = 1", server.plain(concurrency))
}

fn send(site: &crate::harness::Site) -> crate::harness::Run {
    site.run_env(&["send"], &[("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)])
}

fn readers(emails: &[&str]) -> String {
    emails
        .iter()
        .map(|e| format!("[[subscriber]]\nemail = \"{e}\"\n\n"))
        .collect()
}

#[test]
fn idn_domains_go_out_in_punycode_and_a_utf8_local_part_needs_smtputf8() {
    let server = SmtpServer::start(&["--no-smtputf8"]);
    let site = site(&smtp(&server, 1)).file(
        "subscribers.toml",
        readers(&[
            "lecteur@bücher.example",
            "zoé@example.org",
            "ana@example.org",
        ]),
    );
    let run = send(&site);
    assert_eq!(run.code(), 1, "{}{}", run.stdout(), run.stderr());
    assert!(
        run.stdout()
            .starts_with("2011-W52: 2 sent, 0 deferred, 1 failed"),
        "{}",
        run.stdout()
    );
    run.assert_stdout_contains("zoé@example.org: the address has a non-ASCII local part and the server does not offer SMTPUTF8");
    let received = server.messages();
    let rcpts: Vec<&str> = received.iter().map(|m| m.rcpt[0].as_str()).collect();
    assert_eq!(rcpts, ["lecteur@xn--bcher-kva.example", "ana@example.org"]);
    let idn = &received[0];
    assert_eq!(idn.header("To").unwrap(), "lecteur@xn--bcher-kva.example");
    assert!(String::from_utf8_lossy(&idn.raw).is_ascii());

    // A server that offers SMTPUTF8 gets that reader, with the parameter.
    let server = SmtpServer::start(&[]);
    let offered = crate::harness::site(&smtp(&server, 1))
        .file("subscribers.toml", readers(&["zoé@example.org"]));
    send(&offered).success();
    let received = server.messages();
    assert_eq!(received[0].rcpt, ["zoé@example.org"]);
    assert!(
        received[0].mail_options.iter().any(|o| o == "SMTPUTF8"),
        "{:?}",
        received[0].mail_options
    );
}

#[test]
fn a_policy_refusal_of_every_recipient_trips_the_circuit_breaker() {
    let server = SmtpServer::start(&[
        "--refuse-rcpt",
        "554 5.7.1 Helo command rejected: need fully-qualified hostname",
    ]);
    let list: Vec<String> = (0..20).map(|i| format!("r{i:02}@example.org")).collect();
    let list: Vec<&str> = list.iter().map(String::as_str).collect();
    let site = site(&smtp(&server, 1)).file("subscribers.toml", readers(&list));
    let run = send(&site);
    assert_eq!(run.code(), 1);
    assert!(run.stdout().starts_with("2011-W52: 0 sent, 0 deferred, 5 failed, 0 skipped, 0 unsubscribed; 0 messages, 0 bytes this run; 15 not attempted yet"), "{}", run.stdout());
    run.assert_stdout_contains("stopped after 5 messages in a row were refused for a reason that is not the address's (last: 554 permanent error (554): 5.7.1 Helo command rejected");
}

#[test]
fn unknown_mailboxes_in_a_row_do_not_stop_the_run() {
    // 5.1.1 is about one address: six dead ones in a row are six failures, not an outage.
    let dead: Vec<String> = (0..6).map(|i| format!("dead{i}@example.org")).collect();
    let mut args = vec![];
    for d in &dead {
        args.extend(["--reject", d.as_str()]);
    }
    let server = SmtpServer::start(&args);
    let mut list: Vec<&str> = dead.iter().map(String::as_str).collect();
    list.push("alive@example.org");
    let site = site(&smtp(&server, 1)).file("subscribers.toml", readers(&list));
    let run = send(&site);
    // Unknown addresses are hard bounces: marked bounced, and no failure of the run.
    assert_eq!(run.code(), 0, "{}", run.stdout());
    run.assert_stdout_contains("  6 refused as unknown addresses: marked bounced");
    assert!(
        run.stdout()
            .starts_with("2011-W52: 1 sent, 0 deferred, 6 failed"),
        "{}",
        run.stdout()
    );
    assert_eq!(server.count(), 1);
}

#[test]
fn no_bulk_mail_without_a_way_out() {
    let server = SmtpServer::start(&[]);
    let config = CONFIG.replace("unsubscribe_mailto = \"desabonnement@example.org\"\n", "");
    let site = site(&smtp(&server, 1))
        .file(
            "digestif.toml",
            format!("{config}\n[smtp]\n{}\n", smtp(&server, 1)),
        )
        .file("subscribers.toml", readers(&["ana@example.org"]));
    let run = send(&site);
    assert_eq!(run.code(), 2, "{}{}", run.stdout(), run.stderr());
    assert!(
        run.stderr()
            .starts_with("error: sender: neither unsubscribe_url nor unsubscribe_mailto is set"),
        "{}",
        run.stderr()
    );
    assert_eq!(server.count(), 0);
    let check = site.run(&["check"]);
    assert_eq!(check.code(), 2);
    assert!(
        check
            .stderr()
            .contains("neither unsubscribe_url nor unsubscribe_mailto"),
        "{}",
        check.stderr()
    );
    // A dry run still previews, says why a send would refuse, and links nowhere real.
    let dry = site.run(&["send", "--dry-run"]).success();
    assert!(
        dry.stderr()
            .contains("warning: sender: neither unsubscribe_url"),
        "{}",
        dry.stderr()
    );
    let text = std::fs::read_to_string(site.path("preview/2011-W52.txt")).unwrap();
    assert!(
        text.contains("https://unsubscribe-not-configured.invalid/"),
        "{text}"
    );
    assert!(
        !text.contains("désabonner : https://veille.example.org/\n"),
        "{text}"
    );
}

#[test]
fn one_click_needs_https_and_list_ids_stay_one_token() {
    let site = site("host = \"127.0.0.1\"\ntls = \"none\"").file(
        "digestif.toml",
        CONFIG.replace(
            "unsubscribe_mailto = \"desabonnement@example.org\"",
            "unsubscribe_url = \"http://veille.example.org/unsubscribe\"\nlist_id = \"veille réseaux\"",
        ),
    );
    let run = site.run(&["check"]);
    assert_eq!(run.code(), 2);
    let problems = run.problems();
    assert!(
        problems
            .contains("sender.unsubscribe_url: one-click unsubscribe (RFC 8058) requires https"),
        "{problems}"
    );
    assert!(
        problems.contains("sender.list_id: expected a dot-separated name"),
        "{problems}"
    );
}
