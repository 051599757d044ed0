//! `digestif serve` with a real HTTP client (ureq), while a real send runs (issue 10).

use std::io::Read;
use std::time::{Duration, Instant};

use crate::harness::Site;
use crate::harness::{site, spawn_send, token, wait_for, SECRET};
use crate::smtp::SmtpServer;

/// A list whose entries carry comments, which must survive every edit.
pub(crate) fn commented_subscribers(n: usize) -> String {
    let mut out = String::from("# Lecteurs de la veille.\n# Ne pas trier : l'ordre compte.\n\n");
    for i in 0..n {
        out.push_str(&format!(
            "# lecteur {i}\n[[subscriber]]\nemail = \"reader{i:03}@example.org\" # inscrit au salon\n\n"
        ));
    }
    out
}

/// `digestif serve` on a free port, killed when dropped.
pub(crate) struct Serve {
    child: std::process::Child,
    pub(crate) base: String,
}

impl Serve {
    pub(crate) fn start(site: &Site) -> Serve {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let mut child = site.spawn(
            &["serve", "--listen", &listen, "--verbose"],
            &[("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)],
        );
        // Drained, so that a log line per request never fills the pipe and blocks serve.
        drain(child.stdout.take());
        drain(child.stderr.take());
        let serve = Serve {
            child,
            base: format!("http://{listen}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while agent()
            .get(&format!("{}/healthz", serve.base))
            .call()
            .is_err()
        {
            assert!(Instant::now() < deadline, "digestif serve did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        serve
    }

    pub(crate) fn url(&self, token: &str) -> String {
        format!("{}/unsubscribe?token={token}", self.base)
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) {
    if let Some(mut pipe) = pipe {
        std::thread::spawn(move || std::io::copy(&mut pipe, &mut std::io::sink()));
    }
}

impl Serve {
    /// `kill -9`: no fold, no goodbye.
    pub(crate) fn kill_now(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that reports 4xx/5xx as responses, never follows redirects, and gives up fast.
pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

pub(crate) fn get(url: &str) -> (u16, String) {
    let mut r = agent().get(url).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

/// A one-click POST as RFC 8058 describes it.
pub(crate) fn one_click(url: &str) -> (u16, String) {
    let mut r = agent()
        .post(url)
        .content_type("application/x-www-form-urlencoded")
        .send("List-Unsubscribe=One-Click")
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

#[test]
fn a_click_during_a_slow_send_is_honoured_at_once_and_written_after() {
    let server = SmtpServer::start(&["--delay-ms", "10"]);
    let n = 300;
    let list = commented_subscribers(n);
    let site = site(&server.plain(2)).file("subscribers.toml", &list);
    let serve = Serve::start(&site);
    let leaving = "reader250@example.org";

    // A GET shows a page with a button and changes nothing (link scanners GET).
    let (status, page) = get(&serve.url(&token(leaving)));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<form method=\"post\""), "{page}");
    assert!(page.contains("r…@example.org"), "{page}");
    assert!(
        !page.contains(leaving),
        "the page never shows the whole address"
    );

    let mut send = spawn_send(&site);
    wait_for(&server, 20);
    let (status, page) = one_click(&serve.url(&token(leaving)));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("ne recevra plus"), "{page}");
    // Answered while the send still runs (and holds the lock): it did not wait for it.
    assert!(
        send.try_wait().unwrap().is_none(),
        "the send ended before the click"
    );
    assert!(
        server.count() < n - 40,
        "the click came too late to test anything"
    );

    let status = send.wait().unwrap();
    let mut out = String::new();
    send.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "{out}");
    assert!(
        out.starts_with("2011-W52: 299 sent, 0 deferred, 0 failed, 0 skipped, 1 unsubscribed"),
        "{out}"
    );
    let received = server.messages();
    assert_eq!(received.len(), n - 1);
    assert!(received
        .iter()
        .all(|m| !m.rcpt.iter().any(|r| r == leaving)));

    // The file says so, with every comment and byte of the other entries kept.
    let after = std::fs::read_to_string(site.path("subscribers.toml")).unwrap();
    let expected = list.replace(
        "email = \"reader250@example.org\" # inscrit au salon\n",
        "email = \"reader250@example.org\" # inscrit au salon\nstatus = \"unsubscribed\"\n",
    );
    assert_eq!(after, expected);

    // Clicking again is harmless; a GET now says they already left.
    let (status, page) = one_click(&serve.url(&token(leaving)));
    assert_eq!(
        (status, page.contains("déjà désabonné")),
        (200, true),
        "{page}"
    );
}

#[test]
fn forged_tokens_get_400_and_other_paths_404() {
    let site = site("host = \"127.0.0.1\"\ntls = \"none\"")
        .file("subscribers.toml", commented_subscribers(3));
    let serve = Serve::start(&site);
    let forged = digestif::audience::token::Secret::new(b"not-the-real-secret!".to_vec())
        .unwrap()
        .token("reader001@example.org");
    for url in [
        serve.url(&forged),
        serve.url("reader001@example.org"),
        format!("{}/unsubscribe", serve.base),
    ] {
        let (status, page) = one_click(&url);
        assert_eq!(status, 400, "{url}: {page}");
        assert!(page.contains("n’est pas valide"), "{page}");
        assert_eq!(get(&url).0, 400);
    }
    assert_eq!(get(&format!("{}/admin", serve.base)).0, 404);
    let r = agent().put(&serve.url(&forged)).send("x").unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers().get("allow").unwrap(), "GET, HEAD, POST");
    // Nothing changed.
    assert_eq!(
        std::fs::read_to_string(site.path("subscribers.toml")).unwrap(),
        commented_subscribers(3)
    );
}
