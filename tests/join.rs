//! Joining through the subscribe form (issue 23): a real HTTP client posts to `digestif
//! serve`, the confirmation mail arrives at a real SMTP server, and only the confirmation
//! page's POST writes the reader into the list.

use crate::harness::{site, Site, SECRET};
use crate::serve::{agent, Serve};
use crate::smtp::SmtpServer;

/// The test site with `[web] url` under /lettre/, mailing through `server`.
fn join_site(server: &SmtpServer) -> Site {
    let site = site(&server.plain(1));
    let config = std::fs::read_to_string(site.path("digestif.toml")).unwrap();
    site.file(
        "digestif.toml",
        format!("{config}\n[web]\nurl = \"https://veille.example.org/lettre/\"\n"),
    )
}

/// POST a form body to `url`; (status, body).
pub(crate) fn post_form(url: &str, body: &str, accept: &str) -> (u16, String) {
    let mut r = agent()
        .post(url)
        .header("Accept", accept)
        .header("Origin", "https://veille.example.org")
        .content_type("application/x-www-form-urlencoded")
        .send(body)
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

fn get(url: &str) -> (u16, String) {
    let mut r = agent().get(url).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

/// Wait for the `n`th mail at `server`; its confirmation link, pointed at `serve`.
pub(crate) fn confirmation_link(server: &SmtpServer, n: usize, serve: &Serve) -> String {
    crate::harness::wait_for(server, n);
    let mail = &server.messages()[n - 1];
    let text = mail.text();
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with("https://veille.example.org/lettre/confirm?token="))
        .unwrap_or_else(|| panic!("no confirmation link in:\n{text}"));
    link.replace("https://veille.example.org", &serve.base)
}

#[test]
fn double_opt_in_through_the_endpoint_writes_the_reader_only_once_confirmed() {
    let server = SmtpServer::start(&[]);
    let site = join_site(&server);
    let list_before = std::fs::read_to_string(site.path("subscribers.toml")).unwrap();
    let serve = Serve::start(&site);
    let subscribe = format!("{}/lettre/subscribe", serve.base);

    let body = "email=nouvelle%40example.org&name=Nina+Nouvelle&categories=Marketing&format=text";
    let (status, page) = post_form(&subscribe, body, "text/html");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("consultez votre boîte de réception"),
        "{page}"
    );
    let link = confirmation_link(&server, 1, &serve);
    let mail = &server.messages()[0];
    assert_eq!(mail.rcpt, vec!["nouvelle@example.org"]);
    assert!(mail.header("List-Unsubscribe").is_none(), "not a digest");
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Confirmez votre abonnement à Veille Test")
    );
    assert!(!link.contains("nouvelle"), "the token holds no address");
    let list = || std::fs::read_to_string(site.path("subscribers.toml")).unwrap();
    assert_eq!(
        list(),
        list_before,
        "nothing in the list before the confirmation"
    );

    // A link scanner's GET changes nothing; the page's button does.
    let (status, page) = get(&link);
    assert_eq!(status, 200);
    assert!(page.contains("Confirmer mon abonnement"), "{page}");
    assert_eq!(list(), list_before);
    let (status, page) = post_form(&link, "", "text/html");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Bienvenue"), "{page}");
    crate::harness::eventually("the join is written into the list", || {
        list().contains("nouvelle@example.org")
    });
    let after = list();
    assert!(
        after.starts_with(&list_before),
        "the file is kept, the entry appended"
    );
    let added = &after[list_before.len()..];
    assert!(
        added.contains("# joined through https://veille.example.org"),
        "{added}"
    );
    assert!(
        added.contains("email = \"nouvelle@example.org\""),
        "{added}"
    );
    assert!(added.contains("name = \"Nina Nouvelle\""), "{added}");
    assert!(added.contains("categories = [\"Marketing\"]"), "{added}");
    assert!(added.contains("format = \"text\""), "{added}");
    assert!(added.contains("since = "), "{added}");

    // The consent record, and the next dry run includes them.
    let show = site.run_env(
        &["subscribers", "show", "nouvelle@example.org"],
        &[("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)],
    );
    show.assert_stdout_contains("consent: asked through https://veille.example.org");
    let dry = site.run_env(
        &["send", "--dry-run"],
        &[("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)],
    );
    dry.assert_stdout_contains("nouvelle@example.org");

    // `status` counts what readers did, by week.
    let status = site.run_env(&["status"], &[("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)]);
    status
        .assert_stdout_contains(": 1 asked to join, 1 confirmed, 0 changed their choices, 0 left");

    // The link is used up.
    let (status, _) = post_form(&link, "", "text/html");
    assert_eq!(status, 400);
}

#[test]
fn the_answer_never_tells_who_is_listed_and_each_address_gets_one_mail_a_day() {
    let server = SmtpServer::start(&[]);
    let site = join_site(&server);
    let serve = Serve::start(&site);
    let subscribe = format!("{}/lettre/subscribe", serve.base);
    let answer = |email: &str| post_form(&subscribe, &format!("email={email}"), "application/json");
    let new = answer("inconnu%40example.org");
    let listed = answer("camille%40example.org");
    let gone = answer("gone%40example.com");
    assert_eq!(new.0, 200);
    assert_eq!(new, listed, "a listed address gets the same answer");
    assert_eq!(new, gone, "an unsubscribed address too");
    assert!(
        new.1.contains("\"status\":\"check-your-inbox\""),
        "{}",
        new.1
    );
    // Again, the same day: the same answer, no second mail.
    assert_eq!(answer("inconnu%40example.org"), new);
    crate::harness::wait_for(&server, 3);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let to: Vec<String> = server
        .messages()
        .iter()
        .map(|m| m.rcpt[0].clone())
        .collect();
    assert_eq!(to.len(), 3, "{to:?}");
    assert_eq!(to.iter().filter(|t| t.starts_with("inconnu")).count(), 1);

    // Programs: the honeypot is answered alike and mails nobody; a huge body is refused.
    let bot = post_form(
        &subscribe,
        "email=bot%40example.org&website=x",
        "application/json",
    );
    assert_eq!(bot, new);
    let huge = format!("email=a%40example.org&name={}", "x".repeat(20_000));
    assert_eq!(post_form(&subscribe, &huge, "text/html").0, 413);
    let (status, page) = post_form(&subscribe, "email=not-an-address", "text/html");
    assert_eq!(status, 400, "{page}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(server.count(), 3);
}

/// A blog page holding `snippet`, served by Python's file server on its own port (another
/// origin than `serve`); killed when dropped.
struct Blog {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Blog {
    fn start(snippet: &str) -> Blog {
        let dir = tempfile::tempdir().unwrap();
        let page = format!(
            "<!DOCTYPE html><html lang=\"fr\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Veille Test</title></head><body><main style=\"max-width:40rem;margin:auto;padding:1rem;font-family:sans-serif\"><h1>Veille Test</h1><p>Chaque semaine, le meilleur de la veille.</p>{snippet}</main></body></html>"
        );
        std::fs::write(dir.path().join("index.html"), page).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(crate::smtp::python())
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}/");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while agent().get(&url).call().is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the blog's server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Blog {
            child,
            url,
            _dir: dir,
        }
    }
}

impl Drop for Blog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_real_browser_subscribes_from_the_blog_and_confirms() {
    let server = SmtpServer::start(&[]);
    let site = join_site(&server);
    let serve = Serve::start(&site);
    let snippet = site.run(&["subscribe-form"]).success().stdout();
    assert!(snippet.contains("action=\"https://veille.example.org/lettre/subscribe\""));
    assert!(!snippet.contains("<script"), "no JavaScript needed");
    // The proxy's job, done by hand: the public address points at our local `serve`.
    let snippet = snippet.replace("https://veille.example.org", &serve.base);
    let blog = Blog::start(&snippet);

    let mut browser = crate::cdp::Browser::start();
    // The form serve hosts itself, and the unsubscribe page (which offers the preferences).
    browser.open(&format!("{}/lettre/subscribe", serve.base));
    assert!(browser.text().contains("Votre adresse électronique"));
    let unsubscribe = format!(
        "{}/unsubscribe?token={}",
        serve.base,
        crate::harness::token("camille@example.org")
    );
    for width in [375, 800] {
        browser.screenshot("join-hosted-form", width);
    }
    browser.open(&unsubscribe);
    assert!(browser.text().contains("Votre abonnement à Veille Test"));
    for width in [375, 800] {
        browser.screenshot("unsubscribe", width);
    }
    browser.open(&blog.url);
    for width in [375, 800] {
        browser.screenshot("join-form", width);
    }
    // A person fills the form: address, name, one topic, plain text; then presses the button.
    browser.eval(
        "document.querySelector('#digestif-email').value = 'lectrice@example.org';
         document.querySelector('#digestif-name').value = 'Léa Lectrice';
         document.querySelector('input[name=categories][value=Marketing]').click();
         document.querySelector('#digestif-format-text').click();
         document.querySelector('form.digestif-subscribe button').click();",
    );
    browser.wait_for_page(&format!("{}/lettre/subscribe", serve.base));
    assert!(browser
        .text()
        .contains("consultez votre boîte de réception"));
    for width in [375, 800] {
        browser.screenshot("join-check-inbox", width);
    }
    let link = confirmation_link(&server, 1, &serve);
    browser.open(&link);
    assert!(browser
        .text()
        .contains("Confirmer que l…@example.org souhaite recevoir"));
    for width in [375, 800] {
        browser.screenshot("join-confirm", width);
    }
    let list_before = std::fs::read_to_string(site.path("subscribers.toml")).unwrap();
    assert!(!list_before.contains("lectrice@example.org"));
    browser.eval("document.querySelector('form button').click()");
    browser.wait_for_page(&format!("{}/lettre/confirm", serve.base));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !browser.text().contains("Bienvenue") {
        assert!(std::time::Instant::now() < deadline, "{}", browser.text());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for width in [375, 800] {
        browser.screenshot("join-done", width);
    }
    let read = || std::fs::read_to_string(site.path("subscribers.toml")).unwrap();
    crate::harness::eventually("the join is written into the list", || {
        read().contains("lectrice@example.org")
    });
    let list = read();
    assert!(list.contains("email = \"lectrice@example.org\""), "{list}");
    assert!(
        list.contains("# joined through http://127.0.0.1:"),
        "the consent, in the file: {list}"
    );
    assert!(list.contains("name = \"Léa Lectrice\""), "{list}");
    assert!(list.contains("categories = [\"Marketing\"]"), "{list}");
    assert!(list.contains("format = \"text\""), "{list}");
    let dry = site.run_env(
        &["send", "--dry-run"],
        &[("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)],
    );
    dry.assert_stdout_contains("lectrice@example.org");
}

#[test]
fn a_flood_from_one_client_mails_little_and_healthz_keeps_answering() {
    const POSTS: usize = 10_000;
    const CLIENTS: usize = 4;
    let server = SmtpServer::start(&[]);
    let site = join_site(&server);
    let serve = Serve::start(&site);
    let subscribe = format!("{}/lettre/subscribe", serve.base);
    let healthz = format!("{}/lettre/healthz", serve.base);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (statuses, slowest) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut slowest = std::time::Duration::ZERO;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let asked = std::time::Instant::now();
                let mut answer = agent().get(&healthz).call().unwrap();
                let _ = answer.body_mut().read_to_string();
                let status = answer.status().as_u16();
                assert_eq!(status, 200);
                slowest = slowest.max(asked.elapsed());
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            slowest
        });
        let flooders: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let subscribe = &subscribe;
                scope.spawn(move || {
                    let client = agent();
                    let mut statuses = std::collections::HashMap::<u16, usize>::new();
                    for i in 0..POSTS / CLIENTS {
                        // 100 distinct addresses, each asked for many times.
                        let body = format!("email=flood{}%40example.org", (i * CLIENTS + c) % 100);
                        let mut answer = client
                            .post(subscribe.as_str())
                            .content_type("application/x-www-form-urlencoded")
                            .send(body.as_str())
                            .unwrap();
                        // Read to the end, so the connection is kept for the next one.
                        let _ = answer.body_mut().read_to_string();
                        let status = answer.status().as_u16();
                        *statuses.entry(status).or_default() += 1;
                    }
                    statuses
                })
            })
            .collect();
        let mut all = std::collections::HashMap::<u16, usize>::new();
        for f in flooders {
            for (status, n) in f.join().unwrap() {
                *all.entry(status).or_default() += n;
            }
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        (all, watcher.join().unwrap())
    });
    eprintln!("flood of {POSTS} POSTs: {statuses:?}; slowest healthz {slowest:?}");
    assert_eq!(statuses.values().sum::<usize>(), POSTS);
    let accepted = statuses.get(&200).copied().unwrap_or(0);
    assert_eq!(accepted, 20, "web.per_client_per_hour: {statuses:?}");
    assert_eq!(statuses.get(&429).copied().unwrap_or(0), POSTS - 20);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut to: Vec<String> = server
        .messages()
        .iter()
        .map(|m| m.rcpt[0].clone())
        .collect();
    let mails = to.len();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), mails, "at most one mail per address");
    assert!(mails <= 20, "{mails} mails");
}

/// Ask to join as `email` and confirm through the mailed link (the `n`th mail).
fn join_and_confirm(serve: &Serve, server: &SmtpServer, email: &str, n: usize) -> (u16, String) {
    let subscribe = format!("{}/lettre/subscribe", serve.base);
    let body = format!("email={}", email.replace('@', "%40"));
    assert_eq!(post_form(&subscribe, &body, "text/html").0, 200);
    let link = confirmation_link(server, n, serve);
    post_form(&link, "", "text/html")
}

#[test]
fn a_reader_who_left_may_come_back_but_not_one_who_complained() {
    let server = SmtpServer::start(&[]);
    let site = join_site(&server);
    // sam@example.com reported a digest as spam (an abuse report read by `inbox`).
    let report = "From: fbl@isp.example\r\nTo: desabonnement@example.org\r\nSubject: FW: abuse\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nabuse\r\n--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: test/1\r\nVersion: 1\r\nOriginal-Rcpt-To: sam@example.com\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nTo: sam@example.com\r\nSubject: digest\r\n\r\nhello\r\n--b--\r\n";
    let maildir = site.path("mail");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    std::fs::write(maildir.join("new/1.eml"), report).unwrap();
    site.run_env(
        &["inbox", "mail"],
        &[("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)],
    )
    .success();
    let list = || std::fs::read_to_string(site.path("subscribers.toml")).unwrap();
    assert!(list().contains("email = \"sam@example.com\"\nname = \"Sam\"\ncategories = [\"Marketing\"]\nformat = \"text\"\nlanguage = \"en\"\nstatus = \"unsubscribed\""), "{}", list());

    let serve = Serve::start(&site);
    // gone@example.com had unsubscribed: confirming again subscribes them again.
    let (status, page) = join_and_confirm(&serve, &server, "gone@example.com", 1);
    assert_eq!(status, 200, "{page}");
    crate::harness::eventually("the return is written into the list", || {
        !list().contains("gone@example.com\"\nstatus")
    });
    assert!(
        list().contains("email = \"gone@example.com\"\n\n")
            || !list().contains("gone@example.com\"\nstatus"),
        "{}",
        list()
    );
    // Sam's request gets the usual answer, and no mail.
    let subscribe = format!("{}/lettre/subscribe", serve.base);
    assert_eq!(
        post_form(&subscribe, "email=sam%40example.com", "text/html").0,
        200
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        server.count(),
        1,
        "nothing mailed to an address that complained"
    );
    assert!(list().contains("status = \"unsubscribed\""), "{}", list());
}

#[test]
fn a_thank_you_page_gets_the_browser_after_subscribing() {
    let server = SmtpServer::start(&[]);
    let site = join_site(&server);
    let config = std::fs::read_to_string(site.path("digestif.toml")).unwrap();
    let site = site.file(
        "digestif.toml",
        format!("{config}thank_you_url = \"https://veille.example.org/merci/\"\n"),
    );
    let serve = Serve::start(&site);
    let mut answer = agent()
        .post(&format!("{}/lettre/subscribe", serve.base))
        .content_type("application/x-www-form-urlencoded")
        .send("email=merci%40example.org")
        .unwrap();
    assert_eq!(answer.status().as_u16(), 303);
    assert_eq!(
        answer
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("https://veille.example.org/merci/")
    );
    let _ = answer.body_mut().read_to_string();
    crate::harness::wait_for(&server, 1);
}

#[test]
fn a_confirmation_during_a_send_is_answered_at_once_and_written_when_the_send_ends() {
    // The send's audience is frozen: the new reader gets the next digest, not this one.
    let server = SmtpServer::start(&["--delay-ms", "10"]);
    let list: String = (0..200)
        .map(|i| format!("[[subscriber]]\nemail = \"reader{i:03}@example.org\"\n\n"))
        .collect();
    let site = join_site(&server).file("subscribers.toml", list);
    let serve = Serve::start(&site);
    let subscribe = format!("{}/lettre/subscribe", serve.base);
    assert_eq!(
        post_form(&subscribe, "email=tardive%40example.org", "text/html").0,
        200
    );
    let link = confirmation_link(&server, 1, &serve);

    let mut send = crate::harness::spawn_send(&site);
    crate::harness::wait_for_send(&server, 20, &mut send);
    let (status, page) = post_form(&link, "", "text/html");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Bienvenue"), "{page}");
    assert!(
        send.try_wait().unwrap().is_none(),
        "answered while the send runs"
    );
    let file = || std::fs::read_to_string(site.path("subscribers.toml")).unwrap();
    assert!(
        !file().contains("tardive"),
        "the list is the send's until it ends"
    );
    assert!(send.wait().unwrap().success());
    assert!(
        file().contains("email = \"tardive@example.org\""),
        "written when it ended"
    );
    let to_her = server
        .messages()
        .iter()
        .filter(|m| m.rcpt[0] == "tardive@example.org")
        .count();
    assert_eq!(
        to_her, 1,
        "only the confirmation mail, not the digest in flight"
    );
}
