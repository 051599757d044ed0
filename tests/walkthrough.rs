//! Issue 26's walk-through, as a new user would do it, in one test: a fresh `HOME`, `init`
//! in an existing Hugo folder, `check`, the systemd user units (verified by
//! `systemd-analyze`), a test copy to someone who is not a reader, a `send` with no readers
//! (exit 2, the week kept), then the cron line, run with cron's bare environment, sending
//! to the first reader.

use crate::harness::{Site, NOW};
use crate::recipes::{assert_systemd_accepts, run_weekly_cron_line};
use crate::smtp::SmtpServer;

#[test]
fn from_init_in_a_hugo_site_to_the_first_cron_send() {
    let server = SmtpServer::start(&[]);
    let home = tempfile::tempdir().unwrap();
    let site = Site::empty()
        .file(
            "hugo.toml",
            "baseURL = \"https://veille.example.org/\"\ntitle = \"Veille\"\nlanguageCode = \"fr-FR\"\n\
             timeZone = \"Europe/Paris\"\n[permalinks]\nposts = \"/:year/:month/:slug/\"\n",
        )
        .file(
            "content/posts/plaintes.md",
            "---\ntitle: Plaintes ignorées\ndate: 2011-12-27T09:30:00+01:00\ncategories: [Relation client]\n---\nUn extrait.\n",
        )
        .file(
            "content/posts/videos.md",
            "---\ntitle: Vidéos courtes\ndate: 2011-12-28T18:00:00+01:00\ncategories: [Marketing]\n---\nUn autre.\n",
        )
        .file(".gitignore", "/public/\n");
    let run = |args: &[&str]| {
        let output = site.cmd(args).env("HOME", home.path()).output().unwrap();
        crate::harness::Run::from(output, &site)
    };

    run(&["init", "--from", "Veille <veille@example.org>"]).success();
    let config = std::fs::read_to_string(site.path("digestif.toml")).unwrap();
    for line in [
        "name = \"Veille\"",
        "base_url = \"https://veille.example.org/\"",
        "language = \"fr\"",
        "timezone = \"Europe/Paris\"",
        "posts_dir = \"content/posts\"",
    ] {
        assert!(config.contains(line), "{line} in:\n{config}");
    }
    assert!(
        !site.path("posts").exists(),
        "no sample post in a real site"
    );
    let gitignore = std::fs::read_to_string(site.path(".gitignore")).unwrap();
    assert!(gitignore.starts_with("/public/\n") && gitignore.contains("/state/\n"));
    let config = config.replace("host = \"localhost\"", &server.plain(1));
    std::fs::write(site.path("digestif.toml"), config).unwrap();

    let check = run(&["check"]).success();
    assert!(
        check.stdout().contains("ok: 2 posts (published: 2"),
        "{}",
        check.stdout()
    );

    run(&["schedule", "--systemd", "--user", "--install"]).success();
    let units = home.path().join(".config/systemd/user");
    // No one-click endpoint configured: no serve unit.
    assert!(!units.join("digestif-serve.service").exists());
    assert_systemd_accepts(&units, &["digestif.service", "digestif.timer"]);

    run(&["send", "--to", "ami@example.net"]).success();
    assert_eq!(server.count(), 1);
    assert_eq!(server.messages()[0].rcpt, ["ami@example.net"]);

    run(&["send"]).fails_with(
        2,
        "error: 2011-W52 reaches nobody: subscribers.toml lists no active reader; nothing was sent or recorded, and the week stays to send\n\
         help: add readers (`digestif subscribers add EMAIL`), then run `digestif send` again\n",
    );
    let weeks = run(&["send", "--dry-run"]).success();
    assert!(weeks.stdout().contains("2011-W52"), "{}", weeks.stdout());

    run(&[
        "subscribers",
        "add",
        "camille@example.org",
        "--name",
        "Camille",
    ])
    .success();
    run(&["schedule", "--cron", "--install"]).success();
    // What cron gives a job, plus the harness's clock, so that 2011-W52 is last week.
    let now = format!("DIGESTIF_NOW={NOW}");
    let log = run_weekly_cron_line(&site, home.path(), &[&now]);
    assert!(log.starts_with("2011-W52: 1 sent"), "{log}");
    let messages = server.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].rcpt, ["camille@example.org"]);
    let text = messages[1].text();
    assert!(
        text.contains("https://veille.example.org/2011/12/plaintes-ignor%C3%A9es/"),
        "the post's page from the site's [permalinks] (:slug is the title when no slug is given):\n{text}"
    );
}
