//! `digestif archive` (issue 6).

use crate::harness::{Site, CONFIG};

fn site() -> Site {
    Site::new()
        .file("digestif.toml", CONFIG.replace("default_category = \"Divers\"", "default_category = \"Divers\"\narchive_url = \"https://veille.example.org/lettres/\""))
        .post("a", "Plaintes ignorées", "2011-12-27T09:30:00+01:00", "Relation client")
        .post("b", "Vidéos courtes", "2011-12-28T18:00:00+01:00", "Marketing")
        .post("d", "Semaine d'avant", "2011-12-20T10:00:00+01:00", "Marketing")
        .post("old", "L'an passé", "2010-06-15T10:00:00+02:00", "Marketing")
        // The current week (at the harness's NOW) is not finished: not archived yet.
        .post("now", "En cours", "2012-01-09T08:00:00+01:00", "Marketing")
        .file("notes/2011-W52.md", "Le mot de la rédaction.")
}

#[test]
fn archive_writes_pages_an_index_and_a_valid_atom_feed() {
    let site = site();
    let run = site.run(&["archive", "--out", "public"]).success();
    assert_eq!(
        run.stdout(),
        "public/2011-W52.html\npublic/2011-W51.html\npublic/2010-W24.html\npublic/index.html\npublic/feed.xml\n"
    );
    let index = std::fs::read_to_string(site.path("public/index.html")).unwrap();
    let positions: Vec<usize> = [
        "<h2>2011</h2>",
        "2011-W52.html",
        "2011-W51.html",
        "<h2>2010</h2>",
        "2010-W24.html",
    ]
    .iter()
    .map(|needle| {
        index
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} missing from the index"))
    })
    .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "newest first, grouped by year"
    );
    assert!(!index.contains("2012-W02"));

    let page = std::fs::read_to_string(site.path("public/2011-W52.html")).unwrap();
    assert!(page.contains("Plaintes ignorées") && page.contains("Le mot de la rédaction."));
    assert!(
        !page.contains("désabonner") && !page.contains("Bonjour"),
        "no subscriber-specific parts"
    );

    let feed = atom_syndication::Feed::read_from(std::io::BufReader::new(
        std::fs::File::open(site.path("public/feed.xml")).unwrap(),
    ))
    .unwrap();
    assert_eq!(feed.title().as_str(), "Veille Test");
    assert_eq!(feed.id(), "https://veille.example.org/lettres/feed.xml");
    assert!(!feed.authors().is_empty());
    assert_eq!(feed.updated().to_rfc3339(), "2011-12-28T18:00:00+01:00");
    let entries: Vec<(&str, &str)> = feed
        .entries()
        .iter()
        .map(|e| (e.id(), e.links()[0].href()))
        .collect();
    assert_eq!(
        entries,
        [
            (
                "https://veille.example.org/lettres/2011-W52.html",
                "https://veille.example.org/lettres/2011-W52.html"
            ),
            (
                "https://veille.example.org/lettres/2011-W51.html",
                "https://veille.example.org/lettres/2011-W51.html"
            ),
            (
                "https://veille.example.org/lettres/2010-W24.html",
                "https://veille.example.org/lettres/2010-W24.html"
            ),
        ]
    );
    assert_eq!(
        feed.entries()[0].title().as_str(),
        "Veille Test — Plaintes ignorées et 1 autre article"
    );
}

#[test]
fn archive_output_is_deterministic() {
    let site = site();
    site.run(&["archive", "--out", "one"]).success();
    site.run(&["archive", "--out", "two"]).success();
    for file in [
        "2011-W52.html",
        "2011-W51.html",
        "2010-W24.html",
        "index.html",
        "feed.xml",
    ] {
        assert_eq!(
            std::fs::read(site.path(&format!("one/{file}"))).unwrap(),
            std::fs::read(site.path(&format!("two/{file}"))).unwrap(),
            "{file}"
        );
    }
}

#[test]
fn emails_link_to_their_archive_page() {
    let site = site();
    site.run(&["preview", "--week", "2011-W52"]).success();
    let html = std::fs::read_to_string(site.path("preview/2011-W52.html")).unwrap();
    assert!(
        html.contains("href=\"https://veille.example.org/lettres/2011-W52.html\""),
        "view in your browser"
    );
    let text = std::fs::read_to_string(site.path("preview/2011-W52.txt")).unwrap();
    assert!(
        text.contains("Version en ligne\u{a0}: https://veille.example.org/lettres/2011-W52.html")
    );
}

#[test]
fn an_archive_url_without_a_trailing_slash_keeps_its_last_segment() {
    let site = site();
    let config = std::fs::read_to_string(site.path("digestif.toml"))
        .unwrap()
        .replace("veille.example.org/lettres/", "veille.example.org/lettres");
    let site = site.file("digestif.toml", config);
    site.run(&["preview", "--week", "2011-W52"]).success();
    let html = std::fs::read_to_string(site.path("preview/2011-W52.html")).unwrap();
    assert!(html.contains("href=\"https://veille.example.org/lettres/2011-W52.html\""));
}

#[cfg(unix)]
#[test]
fn archive_and_preview_pages_are_readable_by_a_web_server_running_as_another_user() {
    use std::os::unix::fs::PermissionsExt;
    let site = site();
    site.run(&["archive", "--out", "public"]).success();
    site.run(&["preview", "--week", "2011-W52"]).success();
    for file in [
        "public/index.html",
        "public/feed.xml",
        "public/2011-W52.html",
        "preview/2011-W52.html",
        "preview/2011-W52.eml",
    ] {
        let mode = std::fs::metadata(site.path(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "{file}");
    }
}
