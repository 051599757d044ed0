//! One-click at scale (issue 25): what `serve` accepts is durable before it answers, reaches
//! the list in batches without losing anything, and the server stays up for monitors and
//! real readers while slow or greedy clients hold connections.

use std::io::Write;
use std::net::TcpStream;

use crate::harness::{eventually, site, spawn_send, token, wait_for_send, Site, SECRET};
use crate::serve::{agent, commented_subscribers, get, one_click, Serve};
use crate::smtp::SmtpServer;

fn list(site: &Site) -> String {
    std::fs::read_to_string(site.path("subscribers.toml")).unwrap()
}

/// Is `email`'s entry in the list marked unsubscribed?
fn left(site: &Site, email: &str) -> bool {
    list(site).contains(&format!(
        "email = \"{email}\" # inscrit au salon\nstatus = \"unsubscribed\""
    ))
}

/// Requests recorded but not yet written into the list.
fn waiting(site: &Site) -> i64 {
    let store = rusqlite::Connection::open(site.path("state/optouts.sqlite")).unwrap();
    store
        .query_row(
            "SELECT count(*) FROM optouts WHERE applied_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

fn reader(i: usize) -> String {
    format!("reader{i:03}@example.org")
}

#[test]
fn an_unsubscribe_answered_200_survives_kill_9_of_serve() {
    let site = site("host = \"127.0.0.1\"\ntls = \"none\"")
        .file("subscribers.toml", commented_subscribers(5));
    let serve = Serve::start(&site);
    // The first click is folded at once; the second waits for the next fold, seconds away.
    assert_eq!(one_click(&serve.url(&token(&reader(1)))).0, 200);
    let (status, page) = one_click(&serve.url(&token(&reader(2))));
    assert_eq!(status, 200, "{page}");
    serve.kill_now();
    // Whatever the file says now, the store has it: the next command writes it in.
    site.run(&["subscribers", "list", "--status", "unsubscribed"])
        .success()
        .assert_stdout_contains(&reader(2));
    assert!(
        left(&site, &reader(1)) && left(&site, &reader(2)),
        "{}",
        list(&site)
    );
    assert_eq!(waiting(&site), 0);
}

#[test]
fn after_a_burst_of_clicks_the_file_and_the_store_agree() {
    let site = site("host = \"127.0.0.1\"\ntls = \"none\"")
        .file("subscribers.toml", commented_subscribers(200));
    let serve = Serve::start(&site);
    let clicked: Vec<usize> = (0..200).filter(|i| i % 3 == 0).collect();
    std::thread::scope(|s| {
        for chunk in clicked.chunks(17) {
            let serve = &serve;
            s.spawn(move || {
                for i in chunk {
                    // Twice: a second click is harmless.
                    for _ in 0..2 {
                        let (status, page) = one_click(&serve.url(&token(&reader(*i))));
                        assert_eq!(status, 200, "{page}");
                    }
                }
            });
        }
    });
    eventually("every click is written into the list", || {
        waiting(&site) == 0
    });
    let text = list(&site);
    for i in 0..200 {
        assert_eq!(left(&site, &reader(i)), i % 3 == 0, "{}: {text}", reader(i));
    }
    assert_eq!(
        text.matches("status = ").count(),
        clicked.len(),
        "one status line per reader who left, no other change"
    );
    assert_eq!(
        text.replace("\nstatus = \"unsubscribed\"", ""),
        commented_subscribers(200)
    );
    // The endpoint agrees with the file: they left, the others are asked.
    let (_, page) = get(&serve.url(&token(&reader(3))));
    assert!(page.contains("déjà désabonné"), "{page}");
    let (_, page) = get(&serve.url(&token(&reader(4))));
    assert!(page.contains("<form method=\"post\""), "{page}");
}

#[test]
fn clicks_while_a_send_holds_the_list_are_all_written_when_it_ends() {
    let server = SmtpServer::start(&["--delay-ms", "10"]);
    let n = 300;
    let site = site(&server.plain(2)).file("subscribers.toml", commented_subscribers(n));
    let serve = Serve::start(&site);
    let mut send = spawn_send(&site);
    wait_for_send(&server, 20, &mut send);
    let leaving: Vec<usize> = (250..270).collect();
    std::thread::scope(|s| {
        for i in &leaving {
            let serve = &serve;
            s.spawn(move || {
                let (status, page) = one_click(&serve.url(&token(&reader(*i))));
                assert_eq!(status, 200, "{page}");
            });
        }
    });
    assert!(
        send.try_wait().unwrap().is_none(),
        "the send ended before the clicks: nothing tested"
    );
    assert!(send.wait().unwrap().success());
    eventually("the clicks are written into the list", || {
        waiting(&site) == 0
    });
    for i in &leaving {
        assert!(left(&site, &reader(*i)), "{}", reader(*i));
    }
    // Nobody was mailed after their click was answered: the send watches the store.
    let received = server.messages();
    assert!(received.len() >= n - leaving.len(), "{}", received.len());
    assert!(received.len() < n, "some clicks came before their message");
}

#[test]
fn links_of_the_first_format_still_unsubscribe() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use hmac::Mac;
    let site = site("host = \"127.0.0.1\"\ntls = \"none\"")
        .file("subscribers.toml", commented_subscribers(3));
    let serve = Serve::start(&site);
    // `base64url(address key) . base64url(HMAC-SHA256(secret, context ‖ key))`, as the
    // first releases wrote them into digests.
    let key = reader(1);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(b"digestif-unsubscribe-v1\0");
    mac.update(key.as_bytes());
    let tag = mac.finalize().into_bytes();
    let legacy = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&key),
        URL_SAFE_NO_PAD.encode(tag)
    );
    let (status, page) = one_click(&serve.url(&legacy));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("ne recevra plus"), "{page}");
    eventually("the click is written into the list", || left(&site, &key));
    let forged = legacy.replacen('A', "B", 1).replacen('x', "y", 1);
    assert_eq!(one_click(&serve.url(&forged)).0, 400);
}

#[test]
fn slow_clients_and_a_flood_leave_healthz_and_real_readers_answered() {
    let site = site("host = \"127.0.0.1\"\ntls = \"none\"")
        .file("subscribers.toml", commented_subscribers(3));
    let serve = Serve::start(&site);
    let address = serve.base.trim_start_matches("http://").to_string();
    // 200 connections that never finish their request head (slowloris).
    let slow: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = TcpStream::connect(&address).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a")
                .unwrap();
            s
        })
        .collect();
    let healthz = format!("{}/healthz", serve.base);
    assert_eq!(get(&healthz), (200, "ok\n".to_string()));
    let (status, page) = get(&serve.url(&token(&reader(1))));
    assert_eq!(status, 200, "{page}");
    // A flood of forged clicks from 8 clients, healthz asked meanwhile.
    let base = &serve.base;
    std::thread::scope(|s| {
        for t in 0..8 {
            s.spawn(move || {
                for i in 0..100 {
                    let forged = format!("{t:02}{i:030}");
                    let url = format!("{base}/unsubscribe?token={forged}");
                    assert_eq!(one_click(&url).0, 400);
                }
            });
        }
        for _ in 0..20 {
            assert_eq!(get(&healthz).0, 200);
        }
    });
    // A body past the cap is refused, not read for ever.
    let big = "x".repeat(1 << 20);
    let r = agent().post(&serve.url(&token(&reader(2)))).send(&big);
    assert!(
        r.map(|r| r.status().as_u16() == 413).unwrap_or(true),
        "an oversized body is refused (or the connection cut)"
    );
    drop(slow);
    assert_eq!(get(&healthz).0, 200);
}
