//! `preview`, `weeks` and `check`, end to end.

use crate::harness::{repo_root, Site};

fn site_with_posts() -> Site {
    Site::new().with_sample_week()
}

#[test]
fn preview_writes_html_text_and_eml_of_the_latest_week() {
    let site = site_with_posts();
    let run = site.run(&["preview", "--out", "out"]).success();
    assert_eq!(
        run.stdout(),
        "out/2011-W52.html\nout/2011-W52.txt\nout/2011-W52.eml\n"
    );
    let html = std::fs::read_to_string(site.path("out/2011-W52.html")).unwrap();
    assert!(html.contains("Semaine du 26 décembre 2011 au 1er janvier 2012"));
    assert!(html.contains("Minuit passé") && !html.contains("Semaine d’avant"));
    let text = std::fs::read_to_string(site.path("out/2011-W52.txt")).unwrap();
    assert!(text.contains("Plaintes ignorées"));

    let eml = std::fs::read(site.path("out/2011-W52.eml")).unwrap();
    let raw = String::from_utf8_lossy(&eml);
    // Dated by the command's clock: `DIGESTIF_NOW` (the harness's NOW, 11:00 UTC) reaches `Date:`.
    assert!(raw.contains("\r\nDate: Mon, 09 Jan 2012 11:00:"), "{raw}");
    assert!(
        raw.contains("Subject: ") && raw.contains("=?utf-8?b?"),
        "subject must be RFC 2047-encoded:\n{raw}"
    );
    let parsed = mailparse::parse_mail(&eml).unwrap();
    assert_eq!(parsed.ctype.mimetype, "multipart/alternative");
    assert_eq!(parsed.subparts[0].ctype.mimetype, "text/plain");
    assert_eq!(parsed.subparts[1].ctype.mimetype, "text/html");
    assert_eq!(parsed.subparts[0].ctype.charset.to_lowercase(), "utf-8");
    assert_eq!(
        parsed.subparts[0]
            .get_body()
            .unwrap()
            .replace("\r\n", "\n")
            .trim_end(),
        text.trim_end()
    );
    use mailparse::MailHeaderMap;
    assert_eq!(
        parsed.headers.get_first_value("Subject").unwrap(),
        "Veille Test — Plaintes ignorées et 2 autres articles"
    );
}

#[test]
fn preview_of_a_named_week() {
    let site = site_with_posts();
    site.run(&["preview", "--week", "2011-W51"]).success();
    let html = std::fs::read_to_string(site.path("preview/2011-W51.html")).unwrap();
    assert!(html.contains("Semaine d’avant"));
}

#[test]
fn preview_of_an_empty_week_fails_and_writes_nothing() {
    let site = site_with_posts();
    site.run(&["preview", "--week", "2011-W40"]).fails_with(
        2,
        "error: no published post in week 2011-W40: nothing to write (see `digestif weeks`)\n",
    );
    assert!(!site.path("preview").exists());
}

#[test]
fn preview_rejects_a_malformed_week() {
    let site = site_with_posts();
    let run = site.run(&["preview", "--week", "52"]);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr()
            .contains("invalid week \"52\": expected YYYY-Www"),
        "{}",
        run.stderr()
    );
}

#[test]
fn weeks_lists_counts_newest_first() {
    let run = site_with_posts().run(&["weeks"]).success();
    assert_eq!(
        run.stdout(),
        "2011-W52  Semaine du 26 décembre 2011 au 1er janvier 2012  3 articles\n      1  Relation client\n      2  Marketing\n\
         2011-W51  Semaine du 19 au 25 décembre 2011  1 article\n      1  Marketing\n"
    );
}

#[test]
fn drafts_and_scheduled_posts_stay_out() {
    let site = site_with_posts()
        .file(
            "posts/draft.md",
            "+++\ntitle = \"Brouillon\"\ndate = 2011-12-27\ndraft = true\n+++\n",
        )
        .file(
            "posts/later.md",
            "+++\ntitle = \"Plus tard\"\ndate = 2011-12-30T10:00:00+01:00\n+++\n",
        );
    let before_the_scheduled_post = "2011-12-29T12:00:00+01:00";
    let at = |args: &[&str]| {
        let out = site
            .cmd(args)
            .env("DIGESTIF_NOW", before_the_scheduled_post)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    at(&["preview"]);
    for part in ["html", "txt"] {
        let text = std::fs::read_to_string(site.path(&format!("preview/2011-W52.{part}"))).unwrap();
        // The week's published posts are all there, and only they.
        for published in ["Plaintes ignorées", "Vidéos courtes", "Minuit passé"] {
            assert!(text.contains(published), "{part}: {published} missing");
        }
        assert!(
            !text.contains("Brouillon") && !text.contains("Plus tard"),
            "{part}: a draft or a scheduled post is in the digest"
        );
    }
    // Counted as what they are, not as published posts of the week.
    let weeks = at(&["weeks"]);
    assert!(weeks.starts_with("2011-W52  Semaine du 26 décembre 2011 au 1er janvier 2012  3 articles  (in progress)\n"), "{weeks}");
    let check: serde_json::Value = serde_json::from_str(&at(&["check", "--json"])).unwrap();
    assert_eq!(
        (
            &check["posts"],
            &check["published"],
            &check["drafts"],
            &check["scheduled"]
        ),
        (&6.into(), &4.into(), &1.into(), &1.into()),
        "{check}"
    );
}

#[test]
fn check_reports_every_bad_post_with_file_and_line() {
    let site = site_with_posts()
        .file("posts/bad/no-title.md", "+++\ndate = 2011-12-27\n+++\nx\n")
        .file(
            "posts/bad/bad-date.md",
            "+++\ntitle = \"t\"\ndate = \"hier\"\n+++\n",
        )
        .file(
            "posts/bad/typo.md",
            "+++\ntitle = \"t\"\ndate = 2011-12-27\ncategroy = \"x\"\n+++\n",
        )
        .file(
            "posts/bad/unclosed.md",
            "+++\ntitle = \"t\"\ndate = 2011-12-27\n",
        )
        .file(
            "posts/bad/latin1.md",
            b"+++\ntitle = \"caf\xe9\"\ndate = 2011-12-27\n+++\n",
        )
        // YAML without a date: a Hugo page, not a post; skipped, not an error.
        .file("posts/bad/yaml.md", "---\ntitle: t\n---\n")
        .file("notes/semaine-52.md", "Mot de la rédaction");
    // The whole report, as a person sees it: each problem, the line with a caret under it,
    // and a hint where there is a usual fix.
    site.run(&["check"]).fails_with(
        2,
        "warning: smtp.host is not set: send would use localhost (see `digestif check --smtp`)\n\
         error: posts/bad/bad-date.md:3:8: invalid type: string \"hier\", expected a TOML datetime\n  \
         |\n\
         3 | date = \"hier\"\n  \
         |        ^^^^^^\n\
         help: write a bare TOML date such as 2011-12-20T09:30:00+01:00 or 2011-12-20 (no quotes)\n\
         error: posts/bad/latin1.md:2:13: invalid UTF-8 at byte 16: posts must be UTF-8 text\n  \
         |\n\
         2 | title = \"caf\n  \
         |             ^\n\
         error: posts/bad/no-title.md:1: missing field `title` in front matter\n\
         error: posts/bad/typo.md:4:1: unknown field `categroy`, expected one of `title`, `date`, `category`, `tags`, `source`, `link`, `summary`, `draft`, `language`\n  \
         |\n\
         4 | categroy = \"x\"\n  \
         |\x20^^^^^^^^\n\
         help: did you mean `category`?\n\
         error: posts/bad/unclosed.md:1: front matter opened with +++ on line 1 is never closed (expected a closing +++ line)\n\
         error: notes/semaine-52.md: an editor's note must be named after its ISO week, such as 2011-W52.md\n\
         6 problems found\n",
    );
}

#[test]
fn preview_refuses_to_render_when_any_post_is_invalid() {
    let site = site_with_posts().file(
        "posts/typo.md",
        "+++\ntitle = \"t\"\ndate = 2011-12-27\ncategroy = \"x\"\n+++\n",
    );
    let run = site.run(&["preview"]);
    assert_eq!(run.code(), 2);
    assert!(run
        .stderr()
        .contains("typo.md:4:1: unknown field `categroy`"));
    assert!(!site.path("preview").exists());
}

#[test]
fn check_reports_config_errors_with_line() {
    let site = Site::new().file(
        "digestif.toml",
        crate::harness::CONFIG.replace(
            "timezone = \"Europe/Paris\"",
            "timezone = \"Europe/Paris\"\ncolour = \"red\"",
        ),
    );
    let run = site.run(&["check"]);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr()
            .starts_with("error: digestif.toml:7:1: unknown field `colour`, expected one of"),
        "{}",
        run.stderr()
    );
}

#[test]
fn missing_config_names_the_file() {
    let site = Site::new();
    site.run(&["--config", "nope.toml", "check"]).fails_with(
        2,
        "error: cannot read config nope.toml: No such file or directory (os error 2)\n",
    );
}

#[test]
fn bundled_defaults_check_and_preview() {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = assert_cmd::Command::cargo_bin("digestif").unwrap();
    cmd.current_dir(repo_root())
        .env("DIGESTIF_NOW", "2012-01-09T12:00:00+01:00")
        .args(["preview", "--week", "2011-W52", "--out"])
        .arg(out.path())
        .assert()
        .success();
    let html = std::fs::read_to_string(out.path().join("2011-W52.html")).unwrap();
    assert!(
        html.contains("Holiday sales"),
        "the UTC-midnight post belongs to W52 in Paris"
    );
    assert!(
        html.contains("Social media in 2012"),
        "1 January 2012 belongs to 2011-W52"
    );
    let mut check = assert_cmd::Command::cargo_bin("digestif").unwrap();
    check
        .current_dir(repo_root())
        .arg("check")
        .assert()
        .success();
}

#[test]
fn help_has_examples_on_every_command() {
    // Every command and subcommand clap knows, so a new one cannot be forgotten here.
    use clap::CommandFactory;
    fn paths(cmd: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(prefix.clone());
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut path = prefix.clone();
            path.push(sub.get_name().to_string());
            paths(sub, path, out);
        }
    }
    let mut all = Vec::new();
    paths(&digestif::cli::Cli::command(), Vec::new(), &mut all);
    assert!(all.len() >= 15, "{all:?}");
    let site = Site::new();
    for mut cmd in all {
        cmd.push("--help".into());
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let run = site.run(&args).success();
        assert!(run.stdout().contains("Example"), "{args:?} has no example");
    }
}

#[test]
fn notes_are_read_only_from_regular_files_inside_their_folder() {
    // Regression (#11): `mkfifo notes/2012-W01.md` made every command hang, and a symlink
    // notes/2012-W01.md → /etc/passwd put that file into every reader's message.
    let site = Site::new()
        .with_sample_week()
        .file("notes/2011-W52.md", "Le mot.");
    std::fs::create_dir_all(site.path("elsewhere")).unwrap();
    std::fs::write(site.path("elsewhere/secret.md"), "root:x:0:0").unwrap();
    std::os::unix::fs::symlink(
        site.path("elsewhere/secret.md"),
        site.path("notes/2012-W01.md"),
    )
    .unwrap();
    let fifo = std::ffi::CString::new(site.path("notes/2012-W02.md").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    // A link to a note inside the folder is fine.
    std::os::unix::fs::symlink(
        site.path("notes/2011-W52.md"),
        site.path("notes/2011-W51.md"),
    )
    .unwrap();
    let secret = site.path("elsewhere/secret.md").canonicalize().unwrap();
    site.cmd(&["check"])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(2)
        .stderr(format!(
            "warning: smtp.host is not set: send would use localhost (see `digestif check --smtp`)\n\
             error: notes/2012-W01.md: a link to {}, outside the notes folder: notes are read only from inside it\n\
             error: notes/2012-W02.md: not a regular file (a FIFO, socket, device or folder): notes must be files\n\
             2 problems found\n",
            secret.display()
        ));
}

/// `preview --as EMAIL` on the bundled sample: that subscriber's exact message.
#[test]
fn preview_as_a_subscriber_writes_their_own_message() {
    let out = tempfile::tempdir().unwrap();
    let run = |email: &str| {
        let mut cmd = assert_cmd::Command::cargo_bin("digestif").unwrap();
        cmd.current_dir(repo_root())
            .env("DIGESTIF_NOW", crate::harness::NOW)
            .env("DIGESTIF_UNSUBSCRIBE_SECRET", "a-preview-secret-of-16+")
            .args(["preview", "--week", "2011-W52", "--as", email, "--out"])
            .arg(out.path());
        cmd.output().unwrap()
    };
    // Sam reads English, Marketing and Outils only.
    assert!(run("sam@example.com").status.success());
    let text = std::fs::read_to_string(out.path().join("2011-W52-as-sam@example.com.txt")).unwrap();
    assert!(
        text.starts_with("Veille Réseaux\nWeek of December 26, 2011 – January 1, 2012"),
        "{text}"
    );
    assert!(
        text.contains("Hello Sam Taylor,") && text.contains("MARKETING"),
        "{text}"
    );
    assert!(!text.contains("RELATION CLIENT"), "{text}");
    let eml = std::fs::read(out.path().join("2011-W52-as-sam@example.com.eml")).unwrap();
    let mail = mailparse::parse_mail(&eml).unwrap();
    use mailparse::MailHeaderMap;
    assert!(mail
        .headers
        .get_first_value("To")
        .unwrap()
        .contains("sam@example.com"));
    assert!(mail
        .headers
        .get_first_value("List-Unsubscribe")
        .unwrap()
        .contains("%20"));
    // Léa takes text only: no HTML file.
    assert!(run("lea.martin@example.org").status.success());
    assert!(out
        .path()
        .join("2011-W52-as-lea.martin@example.org.txt")
        .exists());
    assert!(!out
        .path()
        .join("2011-W52-as-lea.martin@example.org.html")
        .exists());
    // Someone who left, or a stranger: said plainly, exit 2.
    let gone = run("ancien.lecteur@example.com");
    assert_eq!(gone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("this subscriber is unsubscribed"));
    let stranger = run("nobody@example.com");
    assert!(String::from_utf8_lossy(&stranger.stderr).contains("not in the subscribers file"));
}
