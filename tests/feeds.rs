//! Feeds as a source (issue 9): a WordPress-shaped RSS feed, an Atom feed and a JSON Feed,
//! served by a real HTTP server started by the test (`tests/http_server.py`) or read from
//! files, become digests; kept items outlive the feed's window; 304s and an unreachable
//! server are handled as the README says.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::harness::{repo_root, Site};

struct HttpServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl HttpServer {
    fn start() -> HttpServer {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("www")).unwrap();
        let mut child = Command::new(crate::smtp::python())
            .arg(repo_root().join("tests/http_server.py"))
            .arg("--root")
            .arg(dir.path().join("www"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the test HTTP server (python3)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().strip_prefix("READY ").unwrap().parse().unwrap();
        HttpServer { child, port, dir }
    }

    fn serve(&self, name: &str, content: &str) {
        let path = self.dir.path().join("www").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }

    /// (path, status, If-None-Match sent) of every request so far.
    fn requests(&self) -> Vec<(String, u64, Option<String>)> {
        let Ok(text) = std::fs::read_to_string(self.dir.path().join("requests.jsonl")) else {
            return Vec::new();
        };
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["path"].as_str().unwrap().to_string(),
                    v["status"].as_u64().unwrap(),
                    v["if_none_match"].as_str().map(str::to_string),
                )
            })
            .collect()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_item(n: u32, title: &str, date: &str, category: &str) -> String {
    format!(
        "<item><title>{title}</title><link>https://veille.example.org/{n}/</link>\
         <dc:creator><![CDATA[Rédaction]]></dc:creator><pubDate>{date}</pubDate>\
         <category><![CDATA[{category}]]></category><category><![CDATA[Tag {n}]]></category>\
         <guid isPermaLink=\"false\">https://veille.example.org/?p={n}</guid>\
         <description><![CDATA[<p>Résumé du billet {n}, avec du <strong>gras</strong> [&#8230;]</p>\
         <p>L&#8217;article <a rel=\"nofollow\" href=\"https://veille.example.org/{n}/\">{title}</a> est apparu en premier sur \
         <a rel=\"nofollow\" href=\"https://veille.example.org\">Veille</a>.</p>]]></description>\
         <content:encoded><![CDATA[<p>Le billet entier {n}.</p>]]></content:encoded></item>"
    )
}

/// A feed shaped like WordPress's, with `items`.
pub(crate) fn wordpress(items: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" \
         xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\
         <channel><title>Veille</title><link>https://veille.example.org</link><description>Veille</description>\
         <language>fr-FR</language><generator>https://wordpress.org/?v=6.4</generator>{}</channel></rss>\n",
        items.concat()
    )
}

pub(crate) fn three_items() -> Vec<String> {
    vec![
        rss_item(
            3,
            "Vidéos courtes",
            "Wed, 28 Dec 2011 17:00:00 +0000",
            "marketing",
        ),
        rss_item(
            2,
            "Plaintes &amp; clients",
            "Tue, 27 Dec 2011 08:30:00 +0000",
            "relation-client",
        ),
        rss_item(
            1,
            "La semaine d&#8217;avant",
            "Tue, 20 Dec 2011 09:00:00 +0000",
            "marketing",
        ),
    ]
}

pub(crate) fn site_with_feeds(feeds: &[String]) -> Site {
    let list = feeds
        .iter()
        .map(|f| format!("{f:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let config = crate::harness::CONFIG.replace(
        "default_category = \"Divers\"",
        &format!("default_category = \"Divers\"\nfeeds = [{list}]\nfeed_timeout_s = 5"),
    ) + "\n[category_names]\n\"relation-client\" = \"Relation client\"\n\"marketing\" = \"Marketing\"\n";
    Site::new().file("digestif.toml", config)
}

#[test]
fn a_wordpress_feed_over_http_becomes_a_digest() {
    let server = HttpServer::start();
    server.serve("feed/index.xml", &wordpress(&three_items()));
    let site = site_with_feeds(&[server.url("feed/index.xml")]);
    let weeks = site.run(&["weeks"]).success();
    assert!(
        weeks.stdout().starts_with("2011-W52"),
        "{}{}",
        weeks.stdout(),
        weeks.stderr()
    );
    site.run(&["preview", "--week", "2011-W52"]).success();
    let html = std::fs::read_to_string(site.path("preview/2011-W52.html")).unwrap();
    let text = std::fs::read_to_string(site.path("preview/2011-W52.txt")).unwrap();
    for (title, url) in [
        ("Plaintes &amp; clients", "https://veille.example.org/2/"),
        ("Vidéos courtes", "https://veille.example.org/3/"),
    ] {
        assert!(html.contains(&format!("href=\"{url}\"")), "{url}");
        assert!(html.contains(title), "{title}");
        assert!(text.contains(url));
    }
    assert!(text.contains("Plaintes & clients"));
    assert!(text.contains("Résumé du billet 2, avec du gras"), "{text}");
    for furniture in [
        "est apparu en premier",
        "[…]",
        "&#8230;",
        "Le billet entier",
    ] {
        assert!(
            !text.contains(furniture) && !html.contains(furniture),
            "{furniture}"
        );
    }
    // Categories go through [category_names]; the relation-client one comes first.
    let relation = text.find("RELATION CLIENT").expect("mapped category");
    assert!(relation < text.find("MARKETING").unwrap());
}

#[test]
fn kept_items_survive_the_feed_window_and_unchanged_feeds_get_a_304() {
    let server = HttpServer::start();
    server.serve("feed.xml", &wordpress(&three_items()));
    let site = site_with_feeds(&[server.url("feed.xml")]);
    site.run(&["weeks"]).success();
    site.run(&["weeks"]).success();
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].1, 200);
    assert_eq!(
        requests[1].1, 304,
        "the second fetch is conditional: {requests:?}"
    );
    assert!(requests[1].2.is_some());

    // The feed now lists only its newest item: the older ones stay in their weeks.
    server.serve("feed.xml", &wordpress(&three_items()[..1]));
    let weeks = site.run(&["weeks"]).success();
    assert!(
        weeks.stdout().contains("2011-W52") && weeks.stdout().contains("2011-W51"),
        "{}",
        weeks.stdout()
    );
    site.run(&["preview", "--week", "2011-W51"]).success();
    let text = std::fs::read_to_string(site.path("preview/2011-W51.txt")).unwrap();
    assert!(text.contains("La semaine d’avant"), "{text}");
}

#[test]
fn an_unreachable_feed_stops_a_send_warns_a_preview_and_offline_uses_what_is_kept() {
    let server = HttpServer::start();
    server.serve("feed.xml", &wordpress(&three_items()));
    let url = server.url("feed.xml");
    let site = site_with_feeds(std::slice::from_ref(&url));
    site.run(&["weeks"]).success();
    drop(server);

    let run = site.run(&["send", "--week", "2011-W52"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(
        run.stderr()
            .contains(&format!("error: feed {url}: cannot fetch")),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("nothing is sent from 3 kept items"));

    let run = site.run(&["preview", "--week", "2011-W52"]).success();
    assert!(
        run.stderr()
            .contains("using the 3 items kept from earlier runs"),
        "{}",
        run.stderr()
    );

    let run = site
        .run(&["--offline", "preview", "--week", "2011-W52"])
        .success();
    assert_eq!(run.stderr(), "", "offline: no fetch, no warning");

    // A feed never fetched and unreachable: even a preview has nothing to show, and
    // --offline says so instead of saying nothing (issue 26).
    let fresh = site_with_feeds(std::slice::from_ref(&url));
    let offline = fresh.run(&["--offline", "weeks"]);
    assert!(
        offline.stderr().contains(&format!(
            "feed {url}: --offline, and no items of it are kept from an earlier run"
        )),
        "{}",
        offline.stderr()
    );
    let run = fresh.run(&["weeks"]);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr()
            .contains("no items of it are kept from an earlier run"),
        "{}",
        run.stderr()
    );
}

#[test]
fn atom_and_json_feeds_over_http_and_a_feed_file_become_one_digest() {
    let server = HttpServer::start();
    server.serve(
        "feed.json",
        r#"{"version": "https://jsonfeed.org/version/1.1", "title": "Links", "language": "en-GB", "items": [
            {"id": "j1", "url": "https://links.example.net/j1", "title": "Un lien JSON",
             "content_html": "<p>Pourquoi ce lien compte.</p>", "date_published": "2011-12-29T10:00:00+01:00",
             "tags": ["Outils"]}]}"#,
    );
    server.serve(
        "atom.xml",
        r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Notes</title><id>urn:notes</id><updated>2011-12-30T10:00:00Z</updated>
<entry><title type="html">Une &lt;em&gt;note&lt;/em&gt; Atom</title><id>urn:notes:1</id>
<link rel="alternate" href="https://notes.example.net/1"/><published>2011-12-30T10:00:00Z</published>
<updated>2011-12-30T10:00:00Z</updated><category term="Marketing"/>
<summary type="html">&lt;p&gt;Le résumé Atom.&lt;/p&gt;</summary></entry></feed>"#,
    );
    // A feed can also be a local file (relative to the config).
    let site = site_with_feeds(&[
        server.url("atom.xml"),
        server.url("feed.json"),
        "exported.xml".to_string(),
    ])
    .file(
        "exported.xml",
        wordpress(&[rss_item(
            9,
            "Depuis un fichier",
            "Fri, 30 Dec 2011 08:00:00 +0000",
            "marketing",
        )]),
    );
    site.run(&["preview", "--week", "2011-W52"]).success();
    let text = std::fs::read_to_string(site.path("preview/2011-W52.txt")).unwrap();
    // The JSON feed says it is English: its post is marked so in the French digest; the
    // WordPress feed's fr-FR is the digest's own language, so its posts are not.
    let html = std::fs::read_to_string(site.path("preview/2011-W52.html")).unwrap();
    assert_eq!(html.matches("lang=\"en-GB\"").count(), 1, "{html}");
    assert!(!html.contains("lang=\"fr-FR\""));
    for needle in [
        "Une note Atom",
        "https://notes.example.net/1",
        "Le résumé Atom.",
        "Un lien JSON",
        "https://links.example.net/j1",
        "Pourquoi ce lien compte.",
        "OUTILS",
        "Depuis un fichier",
    ] {
        assert!(text.contains(needle), "{needle} in:\n{text}");
    }
}

#[test]
fn a_local_feed_file_is_read_even_offline() {
    // Issue 26: --offline is about the network; a file on disk is always read.
    let site =
        site_with_feeds(&["export.xml".to_string()]).file("export.xml", wordpress(&three_items()));
    let run = site.run(&["--offline", "weeks"]).success();
    assert_eq!(run.stderr(), "");
    assert!(run.stdout().starts_with("2011-W52"), "{}", run.stdout());
}

/// One `<item>` of a WordPress export (WXR 1.2).
fn wxr_item(id: u32, title: &str, status: &str, kind: &str, password: &str) -> String {
    format!(
        "<item><title><![CDATA[{title}]]></title><link>https://veille.example.org/?p={id}</link>\
         <pubDate>Tue, 27 Dec 2011 08:30:00 +0000</pubDate><dc:creator><![CDATA[ed]]></dc:creator>\
         <guid isPermaLink=\"false\">https://veille.example.org/?p={id}</guid><description></description>\
         <content:encoded><![CDATA[<p>Le texte de {title}, avec un &amp; et <em>du gras</em>.</p>\n\n<p>Suite.</p>]]></content:encoded>\
         <excerpt:encoded><![CDATA[]]></excerpt:encoded>\
         <wp:post_id>{id}</wp:post_id><wp:post_date><![CDATA[2011-12-27 09:30:00]]></wp:post_date>\
         <wp:post_date_gmt><![CDATA[2011-12-27 08:30:00]]></wp:post_date_gmt>\
         <wp:status><![CDATA[{status}]]></wp:status><wp:post_type><![CDATA[{kind}]]></wp:post_type>\
         <wp:post_password><![CDATA[{password}]]></wp:post_password>\
         <category domain=\"post_tag\" nicename=\"crm\"><![CDATA[crm]]></category>\
         <category domain=\"category\" nicename=\"relation-client\"><![CDATA[relation-client]]></category>\
         <wp:postmeta><wp:meta_key><![CDATA[_edit_last]]></wp:meta_key><wp:meta_value><![CDATA[1]]></wp:meta_value></wp:postmeta>\
         </item>"
    )
}

#[test]
fn a_wordpress_export_mails_only_the_published_posts() {
    // Issue 22: Tools → Export holds private, draft, pending, scheduled and protected
    // posts, pages and attachments too; only what WordPress shows everyone is a post.
    let items = [
        wxr_item(1, "Publié", "publish", "post", ""),
        wxr_item(2, "Privé", "private", "post", ""),
        wxr_item(3, "Brouillon", "draft", "post", ""),
        wxr_item(4, "En attente", "pending", "post", ""),
        wxr_item(5, "Programmé", "future", "post", ""),
        wxr_item(6, "Protégé", "publish", "post", "secret"),
        wxr_item(7, "À propos", "publish", "page", ""),
        wxr_item(8, "image.jpg", "inherit", "attachment", ""),
        wxr_item(9, "Menu", "publish", "nav_menu_item", ""),
    ];
    let export = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<rss version=\"2.0\" \
         xmlns:excerpt=\"http://wordpress.org/export/1.2/excerpt/\" \
         xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" \
         xmlns:wfw=\"http://wellformedweb.org/CommentAPI/\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" \
         xmlns:wp=\"http://wordpress.org/export/1.2/\">\n<channel><title>Veille</title>\
         <link>https://veille.example.org</link><language>fr-FR</language><wp:wxr_version>1.2</wp:wxr_version>\
         <wp:category><wp:term_id>1</wp:term_id><wp:category_nicename><![CDATA[relation-client]]></wp:category_nicename></wp:category>\
         {}</channel></rss>\n",
        items.concat()
    );
    let site = site_with_feeds(&["export.xml".to_string()]).file("export.xml", export);
    site.run(&["preview", "--week", "2011-W52"]).success();
    let text = std::fs::read_to_string(site.path("preview/2011-W52.txt")).unwrap();
    assert!(text.contains("Publié"), "{text}");
    assert!(
        text.contains("Le texte de Publié, avec un & et du gras."),
        "{text}"
    );
    assert!(text.contains("https://veille.example.org/?p=1"), "{text}");
    assert!(
        text.contains("Relation client"),
        "the category, not the tag:\n{text}"
    );
    for hidden in [
        "Privé",
        "Brouillon",
        "En attente",
        "Programmé",
        "Protégé",
        "À propos",
        "image.jpg",
        "Menu",
        "Suite.",
    ] {
        assert!(
            !text.contains(hidden),
            "{hidden} must not be mailed:\n{text}"
        );
    }
    let weeks = site.run(&["weeks"]).success();
    assert!(
        weeks.stdout().contains("  1 article\n"),
        "{}",
        weeks.stdout()
    );
}
