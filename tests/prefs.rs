//! The preferences page (issue 23): a reader changes topics, format, language and pauses,
//! with a real HTTP client and in a real browser; the next dry run follows.

use crate::harness::{site, token, Site, SECRET};
use crate::join::post_form;
use crate::serve::{agent, Serve};
use crate::smtp::SmtpServer;

fn prefs_site(server: &SmtpServer) -> Site {
    let site = site(&server.plain(1));
    let config = std::fs::read_to_string(site.path("digestif.toml")).unwrap();
    site.file(
        "digestif.toml",
        format!("{config}\n[web]\nurl = \"https://veille.example.org/lettre/\"\n"),
    )
}

/// Camille's entry in the list, as text.
fn camille(site: &Site) -> String {
    let list = std::fs::read_to_string(site.path("subscribers.toml")).unwrap();
    let start = list.find("email = \"camille@example.org\"").unwrap();
    let end = list[start..]
        .find("[[subscriber]]")
        .map_or(list.len(), |e| start + e);
    list[start..end].to_string()
}

fn dry_run(site: &Site) -> String {
    site.run_env(
        &["send", "--dry-run"],
        &[("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)],
    )
    .success()
    .stdout()
}

#[test]
fn a_reader_changes_topics_format_language_and_pauses_and_the_next_run_follows() {
    let server = SmtpServer::start(&[]);
    let site = prefs_site(&server);
    let serve = Serve::start(&site);
    let url = format!(
        "{}/lettre/preferences?token={}",
        serve.base,
        token("camille@example.org")
    );
    let mut page = agent().get(&url).call().unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let page = page.body_mut().read_to_string().unwrap();
    assert!(page.contains("value=\"Camille Durand\""), "{page}");
    assert!(page.contains("c…@example.org"), "{page}");

    let (status, saved) = post_form(
        &url,
        "name=Camille+D.&categories=Marketing&format=text&language=en&pause=4",
        "text/html",
    );
    assert_eq!(status, 200, "{saved}");
    crate::harness::eventually("the choices are written into the list", || {
        camille(&site).contains("paused_until")
    });
    let entry = camille(&site);
    assert!(entry.contains("name = \"Camille D.\""), "{entry}");
    assert!(entry.contains("categories = [\"Marketing\"]"), "{entry}");
    assert!(entry.contains("format = \"text\""), "{entry}");
    assert!(entry.contains("language = \"en\""), "{entry}");
    // The harness's clock says 2012-01-09: four weeks on.
    assert!(entry.contains("paused_until = 2012-02-06"), "{entry}");
    assert!(!dry_run(&site).contains("camille@example.org"), "paused");

    let (status, _) = post_form(
        &url,
        "categories=Marketing&format=text&pause=0",
        "text/html",
    );
    assert_eq!(status, 200);
    crate::harness::eventually("the pause's end is written into the list", || {
        !camille(&site).contains("paused_until")
    });
    let entry = camille(&site);
    assert!(
        !entry.contains("name ="),
        "an empty name is no name: {entry}"
    );
    assert!(dry_run(&site).contains("camille@example.org"));

    // Every topic ticked is every topic, and a forged token changes nothing.
    post_form(
        &url,
        "categories=Marketing&categories=Relation+client",
        "text/html",
    );
    crate::harness::eventually("every topic is written as no list of topics", || {
        !camille(&site).contains("categories")
    });
    let forged = format!("{}/lettre/preferences?token={}", serve.base, "0".repeat(32));
    assert_eq!(post_form(&forged, "format=text", "text/html").0, 400);
}

#[test]
fn a_real_browser_changes_the_preferences_and_the_dry_run_follows() {
    let server = SmtpServer::start(&[]);
    let site = prefs_site(&server);
    let serve = Serve::start(&site);
    let url = format!(
        "{}/lettre/preferences?token={}",
        serve.base,
        token("camille@example.org")
    );
    let mut browser = crate::cdp::Browser::start();
    browser.open(&url);
    for width in [375, 800] {
        browser.screenshot("prefs", width);
    }
    // Untick "Relation client", choose plain text, save.
    browser.eval(
        "document.querySelector('input[name=categories][value=\"Relation client\"]').click();
         document.querySelector('#prefs-text').click();
         document.querySelector('form button[type=submit]').click();",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !browser.text().contains("enregistré") {
        assert!(std::time::Instant::now() < deadline, "{}", browser.text());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for width in [375, 800] {
        browser.screenshot("prefs-saved", width);
    }
    crate::harness::eventually("the choices are written into the list", || {
        camille(&site).contains("format = \"text\"")
    });
    let entry = camille(&site);
    assert!(entry.contains("categories = [\"Marketing\"]"), "{entry}");
    assert!(entry.contains("format = \"text\""), "{entry}");
    let out = dry_run(&site);
    assert!(out.contains("camille@example.org"), "{out}");
}

#[test]
fn every_digest_links_to_the_readers_own_preferences_page() {
    let server = SmtpServer::start(&[]);
    let site = prefs_site(&server);
    crate::harness::send(&site, &[]).success();
    let camille = server
        .messages()
        .into_iter()
        .find(|m| m.rcpt[0] == "camille@example.org")
        .unwrap();
    let link = format!(
        "https://veille.example.org/lettre/preferences?token={}",
        token("camille@example.org")
    );
    assert!(camille.text().contains(&link), "{}", camille.text());
    let raw = String::from_utf8_lossy(&camille.raw).replace("=\r\n", "");
    assert!(
        raw.contains("Vos pr=C3=A9f=C3=A9rences"),
        "the HTML footer's link"
    );
}
