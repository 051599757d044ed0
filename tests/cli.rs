//! The first steps of a new user and the command-line conventions (issue 14): `init`,
//! config discovery, diagnostics with carets, `check` knowing what `send` refuses,
//! `check --smtp`, first use and old weeks, colours, `--quiet`, `--json`, completions, man.

use crate::harness::{real_clock as digestif, stdout_of as stdout, Site, CONFIG};

#[test]
fn init_makes_a_site_that_checks_previews_and_archives_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let created = stdout(&mut digestif(
        dir.path(),
        &[
            "init",
            "lettre",
            "--name",
            "My Letter",
            "--url",
            "https://blog.example.org",
            "--from",
            "Me <me@example.org>",
            "--timezone",
            "Europe/Paris",
        ],
    ));
    assert!(created.starts_with("created lettre/digestif.toml\ncreated lettre/posts/"));
    let site = dir.path().join("lettre");
    for file in ["digestif.toml", "subscribers.toml", ".gitignore"] {
        assert!(site.join(file).is_file(), "{file}");
    }
    let config = std::fs::read_to_string(site.join("digestif.toml")).unwrap();
    assert!(config.contains("timezone = \"Europe/Paris\""));
    assert!(config.contains("base_url = \"https://blog.example.org/\""));

    let check = stdout(&mut digestif(&site, &["check"]));
    assert!(check.contains("ok: 1 posts (published: 1"), "{check}");
    let dry = stdout(&mut digestif(&site, &["send", "--dry-run"]));
    assert!(dry.contains("dry run 20"), "{dry}");
    let html = std::fs::read_dir(site.join("preview"))
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "html"))
        .expect("a preview page");
    let html = std::fs::read_to_string(html.path()).unwrap();
    assert!(html.contains("Welcome to the newsletter"));
    stdout(&mut digestif(&site, &["archive"]));
    assert!(site.join("archive/index.html").is_file());

    // A second init never overwrites what is there.
    let before = std::fs::read(site.join("digestif.toml")).unwrap();
    let again = digestif(&site, &["init", "--name", "Other"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not overwriting"));
    assert_eq!(std::fs::read(site.join("digestif.toml")).unwrap(), before);
}

#[test]
fn init_in_french_and_with_defaults_only() {
    let dir = tempfile::tempdir().unwrap();
    stdout(&mut digestif(dir.path(), &["init", "--language", "fr"]));
    let config = std::fs::read_to_string(dir.path().join("digestif.toml")).unwrap();
    assert!(config.contains("language = \"fr\""), "{config}");
    let post = std::fs::read_dir(dir.path().join("posts"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert!(std::fs::read_to_string(post.path())
        .unwrap()
        .contains("Bienvenue"));
    let check = stdout(&mut digestif(dir.path(), &["check"]));
    assert!(
        check.contains("ok: 1 posts (published: 1, drafts: 0, scheduled: 0)"),
        "{check}"
    );
    let dry = stdout(&mut digestif(dir.path(), &["send", "--dry-run"]));
    assert!(dry.contains("dry run 20"), "{dry}");
    // The digest speaks the newsletter's language: French wording, French typography.
    let week = dry
        .lines()
        .find_map(|l| l.strip_prefix("dry run "))
        .unwrap();
    let week = &week[..week.find(':').unwrap()];
    let html = std::fs::read_to_string(dir.path().join(format!("preview/{week}.html"))).unwrap();
    assert!(html.contains("<html lang=\"fr\""), "not a French page");
    assert!(
        html.contains("Bienvenue dans la lettre"),
        "the post is not in the digest"
    );
    let text = std::fs::read_to_string(dir.path().join(format!("preview/{week}.txt"))).unwrap();
    assert!(text.contains("Semaine du "), "{text}");
}

#[test]
fn three_config_typos_are_reported_in_one_run_with_carets_and_hints() {
    let config = CONFIG
        .replace("language = ", "langage = ")
        .replace("timezone = ", "timezon = ")
        .replace("posts_dir = ", "post_dir = ");
    let site = Site::new().file("digestif.toml", config);
    let run = site.run(&["check"]);
    assert_eq!(run.code(), 2);
    assert_eq!(
        run.stderr(),
        "error: digestif.toml:5:1: unknown field `langage`, expected one of `name`, `base_url`, `language`, `timezone`, `posts_dir`, `templates_dir`, `subscribers`, `state_dir`, `notes_dir`, `categories`, `default_category`, `subject`, `archive_url`, `posts_format`, `permalink`, `feeds`, `feed_timeout_s`, `exclude`\n  \
         |\n\
         5 | langage = \"fr\"\n  \
         | ^^^^^^^\n\
         help: did you mean `language`?\n\
         error: digestif.toml:6:1: unknown field `timezon`, expected one of `name`, `base_url`, `language`, `timezone`, `posts_dir`, `templates_dir`, `subscribers`, `state_dir`, `notes_dir`, `categories`, `default_category`, `subject`, `archive_url`, `posts_format`, `permalink`, `feeds`, `feed_timeout_s`, `exclude`\n  \
         |\n\
         6 | timezon = \"Europe/Paris\"\n  \
         | ^^^^^^^\n\
         help: did you mean `timezone`?\n\
         error: digestif.toml:7:1: unknown field `post_dir`, expected one of `name`, `base_url`, `language`, `timezone`, `posts_dir`, `templates_dir`, `subscribers`, `state_dir`, `notes_dir`, `categories`, `default_category`, `subject`, `archive_url`, `posts_format`, `permalink`, `feeds`, `feed_timeout_s`, `exclude`\n  \
         |\n\
         7 | post_dir = \"posts\"\n  \
         | ^^^^^^^^\n\
         help: did you mean `posts_dir`?\n\
         3 problems found\n"
    );
}

#[test]
fn the_config_is_found_from_a_subfolder_and_outputs_go_beside_it() {
    let site = Site::new().with_sample_week();
    stdout(
        site.cmd(&["preview", "--week", "2011-W52"])
            .current_dir(site.path("posts")),
    );
    assert!(site.path("preview/2011-W52.html").is_file());
    assert!(!site.path("posts/preview").exists());
}

#[test]
fn a_folder_as_config_and_no_config_at_all_say_what_to_do() {
    let site = Site::new().with_sample_week();
    // A folder holding digestif.toml is accepted.
    site.cmd(&["--config", ".", "weeks"]).assert().success();
    std::fs::create_dir(site.path("empty")).unwrap();
    let run = site.run(&["--config", "empty", "check"]);
    assert_eq!(run.code(), 2);
    assert_eq!(
        run.stderr(),
        "error: --config empty: is a folder, with no digestif.toml in it\nhelp: pass the file itself, or create a newsletter there with `digestif init empty`\n"
    );
    let nowhere = tempfile::tempdir().unwrap();
    let out = digestif(nowhere.path(), &["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: no digestif.toml in "),
        "{stderr}"
    );
    assert!(stderr
        .contains("or any folder above it\nhelp: create a newsletter here with `digestif init`"));
}

#[test]
fn check_refuses_what_send_would_refuse() {
    let site = Site::new().with_sample_week().file(
        "digestif.toml",
        format!(
            "{CONFIG}unsubscribe_url = \"https://veille.example.org/u\"\n[smtp]\nhost = \"smtp.example.net\"\ntls = \"none\"\nusername = \"veille\"\npassword_env = \"DIGESTIF_TEST_UNSET_PASSWORD\"\n"
        ),
    );
    let run = site
        .cmd(&["check"])
        .env_remove("DIGESTIF_UNSUBSCRIBE_SECRET")
        .env_remove("DIGESTIF_TEST_UNSET_PASSWORD")
        .output()
        .unwrap();
    let run = crate::harness::Run::from(run, &site);
    assert_eq!(run.code(), 2);
    assert_eq!(
        run.problems(),
        "error: digestif.toml: smtp.password_env: the environment variable DIGESTIF_TEST_UNSET_PASSWORD is not set\n\
         error: digestif.toml: the unsubscribe secret is missing: set the environment variable DIGESTIF_UNSUBSCRIBE_SECRET\n\
         2 problems found\n"
    );
    // With the password there, the next rule `send` applies is reported.
    let run = site.run_env(
        &["check"],
        &[
            ("DIGESTIF_TEST_UNSET_PASSWORD", "pw"),
            ("DIGESTIF_UNSUBSCRIBE_SECRET", "0123456789abcdef0123"),
        ],
    );
    assert_eq!(run.code(), 2);
    assert_eq!(
        run.problems(),
        "error: digestif.toml: smtp: refusing to send a password unencrypted to smtp.example.net: use tls = \"starttls\" or \"tls\"\n"
    );
}

#[test]
fn check_smtp_walks_through_starttls_and_auth_without_sending() {
    let (server, smtp, _certs) = crate::send::tls_server("s3cret-pass");
    let site = Site::new()
        .with_sample_week()
        .file("digestif.toml", format!("{CONFIG}\n[smtp]\n{smtp}\n"));
    let run = site.run_env(
        &["check", "--smtp"],
        &[("TEST_SMTP_PASSWORD", "s3cret-pass")],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let out = run.stdout();
    for step in [
        format!("ok: smtp: connected to localhost:{}", server.port),
        "ok: smtp: EHLO ".to_string(),
        "ok: smtp: STARTTLS: the connection is encrypted".to_string(),
        "ok: smtp: AUTH as veille: accepted".to_string(),
        "ok: smtp: QUIT: nothing was sent".to_string(),
    ] {
        assert!(out.contains(&step), "{step} in {out}");
    }
    assert_eq!(server.count(), 0);
    assert!(!out.contains("s3cret-pass") && !run.stderr().contains("s3cret-pass"));

    // A wrong password is the step that fails, exit 1, and the password is not shown.
    let run = site.run_env(
        &["check", "--smtp"],
        &[("TEST_SMTP_PASSWORD", "wrong-pass")],
    );
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr()
            .contains("authentication as veille failed: 535"),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("wrong-pass"));
}

#[test]
fn check_smtp_names_a_default_host_when_nothing_answers() {
    // A port nothing listens on, as a config without [smtp] would meet on localhost:587.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let site = Site::new().with_sample_week().file(
        "digestif.toml",
        format!("{CONFIG}\n[smtp]\nport = {port}\ntls = \"none\"\n"),
    );
    let run = site.run(&["check", "--smtp"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr().contains(&format!(
            "SMTP server localhost:{port} (the default: the config sets no smtp.host): cannot connect"
        )),
        "{}",
        run.stderr()
    );
}

#[test]
fn first_use_holds_back_a_week_that_ended_long_ago() {
    let site = Site::new().with_sample_week().file(
        "digestif.toml",
        format!("{CONFIG}\n[smtp]\ntransport = \"file\"\nfile_dir = \"outbox\"\n"),
    );
    let site = site.file(
        "subscribers.toml",
        "[[subscriber]]\nemail = \"camille@example.org\"\n",
    );
    // 2011-W52 ended on Sunday 1 January 2012: on 1 March it is old news.
    let late = "2012-03-01T12:00:00+01:00";
    let run = site.run_env(&["send"], &[("DIGESTIF_NOW", late)]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(
        run.stdout(),
        "nothing new to send: the latest complete week with posts, 2011-W52, ended 59 days ago; on first use digestif sends only a week that ended in the last 7 days, so an old archive is not mailed out. To send it anyway: digestif send --week 2011-W52\n"
    );
    assert!(
        !site.path("outbox").exists()
            || std::fs::read_dir(site.path("outbox")).unwrap().count() == 0
    );
    // A dry run still shows it, with the same warning.
    let run = site.run_env(&["send", "--dry-run"], &[("DIGESTIF_NOW", late)]);
    assert_eq!(run.code(), 0);
    assert!(run
        .stderr()
        .starts_with("warning: the latest complete week with posts, 2011-W52"));
    assert!(
        run.stdout().contains("dry run 2011-W52: 1 recipients"),
        "{}",
        run.stdout()
    );
    // Named, it goes.
    site.run_env(&["send", "--week", "2011-W52"], &[("DIGESTIF_NOW", late)])
        .success();
    assert_eq!(std::fs::read_dir(site.path("outbox")).unwrap().count(), 1);
}

#[test]
fn colours_only_when_asked_and_never_with_no_color() {
    let site = Site::new().file("digestif.toml", CONFIG.replace("language", "langage"));
    let forced = site
        .cmd(&["check"])
        .env("CLICOLOR_FORCE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&forced.stderr);
    assert!(
        stderr.contains("\x1b[1m\x1b[31merror\x1b[0m") || stderr.contains("\x1b[31"),
        "{stderr:?}"
    );
    let plain = site
        .cmd(&["check"])
        .env("CLICOLOR_FORCE", "1")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&plain.stderr).contains('\x1b'));
    // A pipe (the tests' stderr) gets no colour either.
    assert!(
        !String::from_utf8_lossy(&site.cmd(&["check"]).output().unwrap().stderr).contains('\x1b')
    );
}

#[test]
fn quiet_keeps_errors_and_data_and_json_is_parseable() {
    let site = Site::new().with_sample_week();
    let run = site.run(&["--quiet", "check"]).success();
    assert_eq!(run.stdout(), "");
    let run = site.run(&["-q", "weeks"]).success();
    assert!(run.stdout().starts_with("2012-W01") || run.stdout().starts_with("2011-W52"));

    let run = site.run(&["check", "--json"]).success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["posts"], 4);
    assert!(report["warnings"][0]
        .as_str()
        .unwrap()
        .starts_with("smtp.host is not set"));

    let weeks = site.run(&["weeks", "--json"]).success();
    let weeks: serde_json::Value = serde_json::from_str(&weeks.stdout()).unwrap();
    let first = &weeks[0];
    assert_eq!(first["week"], "2011-W52");
    assert_eq!(first["monday"], "2011-12-26");
    assert_eq!(first["complete"], true);
    assert!(first["categories"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["posts"].as_u64().unwrap() > 0));

    // Problems come out as JSON too, with the exit status of a failed check.
    let bad = Site::new().file("digestif.toml", CONFIG.replace("language", "langage"));
    let run = bad.run(&["check", "--json"]);
    assert_eq!(run.code(), 2);
    let report: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(report["ok"], false);
    assert!(report["problems"][0]
        .as_str()
        .unwrap()
        .starts_with("digestif.toml:5:1: unknown field `langage`"));
}

#[test]
fn completions_and_man_page_cover_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout(&mut digestif(dir.path(), &["completions", shell]));
        for command in ["init", "check", "send", "subscribers", "completions"] {
            assert!(script.contains(command), "{shell}: {command}");
        }
    }
    let man = stdout(&mut digestif(dir.path(), &["man"]));
    assert!(man.contains(".TH digestif 1"));
    for section in ["DIGESTIF SEND", "DIGESTIF INIT", "DIGESTIF CHECK"] {
        assert!(man.contains(&format!(".SH \"{section}\"")), "{section}");
    }
    assert!(man.contains("\\-\\-dry\\-run"));
}

#[test]
fn posts_that_are_not_read_are_reported_and_markdown_files_are_read() {
    let site = Site::new()
        .with_sample_week()
        .file("posts/notes.txt", "not a post")
        .file(
            "posts/long.markdown",
            "+++\ntitle = \"Long form\"\ndate = 2011-12-29T10:00:00+01:00\n+++\nText.\n",
        );
    let run = site.run(&["check"]).success();
    assert!(run.stdout().contains("ok: 5 posts"), "{}", run.stdout());
    assert!(run.stderr().contains(
        "warning: posts/notes.txt: not read as a post (posts are .md and .markdown files)"
    ));
    let empty = Site::new();
    let run = empty.run(&["check"]).success();
    assert!(run
        .stderr()
        .contains("warning: posts: no posts found, so there is nothing to send"));
}

#[test]
fn seven_mistakes_are_all_reported_by_one_check() {
    // Issue 26: a config with mistakes still gives what it can, so the subscribers' and
    // the posts folder's problems come in the same run.
    let config = CONFIG
        .replace("language = ", "langage = ")
        .replace("Europe/Paris", "Europe/Pariss")
        .replace("https://veille.example.org/", "veille.example.org")
        .replace("posts_dir = \"posts\"", "posts_dir = \"post\"")
        .replace("from = \"Veille Test <veille@example.org>\"\n", "");
    let site = Site::new().file("digestif.toml", config).file(
        "subscribers.toml",
        "[[subscriber]]\nemail = \"camille@\"\n\n[[subscriber]]\nemail = \"sam@example.com\"\nsince = 27/11/2026\n",
    );
    let run = site.run(&["check"]);
    assert_eq!(run.code(), 2);
    let said = run.problems();
    for expected in [
        "digestif.toml:5:1: unknown field `langage`",
        "help: did you mean `language`?",
        "digestif.toml:4:12: newsletter.base_url: expected an absolute http(s) URL, found \"veille.example.org\"",
        "newsletter.timezone: unknown time zone \"Europe/Pariss\"",
        "help: did you mean \"Europe/Paris\"?",
        "digestif.toml:12: missing field `from` in [sender]",
        "newsletter.posts_dir: post is not a folder",
        "help: did you mean \"posts\"?",
        "subscribers.toml:2:9: `email`: \"camille@\" is not a valid address",
        "subscribers.toml:6:",
        "help: TOML dates are written YYYY-MM-DD, a time with its seconds: `since = 2026-11-27`",
    ] {
        assert!(said.contains(expected), "missing {expected:?} in:\n{said}");
    }
    assert!(said.ends_with("7 problems found\n"), "{said}");
    assert!(
        !said.contains("no posts found"),
        "no follow-on warning:\n{said}"
    );
}

#[test]
fn completions_and_the_manual_install_where_bash_and_man_find_them() {
    // Issue 26: no folder to create by hand, no MANPATH to set.
    let home = tempfile::tempdir().unwrap();
    stdout(
        digestif(home.path(), &["completions", "bash", "--install"])
            .env("HOME", home.path())
            .env_remove("XDG_DATA_HOME"),
    );
    let script = home
        .path()
        .join(".local/share/bash-completion/completions/digestif");
    assert!(std::fs::read_to_string(script)
        .unwrap()
        .contains("digestif"));
    // The binary in a prefix of its own, as `cargo install` puts it in ~/.cargo/bin.
    let prefix = tempfile::tempdir().unwrap();
    let bin = prefix.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_digestif"), bin.join("digestif")).unwrap();
    stdout(assert_cmd::Command::new(bin.join("digestif")).args(["man", "--install"]));
    let page = prefix.path().join("share/man/man1/digestif.1");
    assert!(page.is_file());
    // man-db finds it from PATH alone (share/man beside each bin folder).
    let found = std::process::Command::new("man")
        .args(["-w", "digestif"])
        .env_remove("MANPATH")
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&found.stdout).trim(),
        page.display().to_string(),
        "{}",
        String::from_utf8_lossy(&found.stderr)
    );
}

#[test]
fn a_typo_in_the_list_file_name_gets_a_did_you_mean_with_the_rest() {
    let config = CONFIG.replace(
        "subscribers = \"subscribers.toml\"",
        "subscribers = \"subscriber.toml\"",
    );
    let site = Site::new()
        .file("digestif.toml", config)
        .file("posts/bad.md", "+++\ntitle = \"x\"\n+++\n");
    let run = site.run(&["check"]);
    assert_eq!(run.code(), 2);
    let said = run.problems();
    assert!(
        said.contains("error: digestif.toml: newsletter.subscribers: there is no file subscriber.toml\nhelp: did you mean \"subscribers.toml\"?"),
        "{said}"
    );
    assert!(
        said.contains("posts/bad.md:1: missing field `date`"),
        "{said}"
    );
}

#[test]
fn json_is_answered_in_every_outcome_failures_too() {
    // Issue 26: a script that asked for --json reads stdout alone.
    let site = Site::new()
        .with_sample_week()
        .file("posts/bad.md", "+++\ntitle = \"x\"\n+++\n");
    for args in [&["send", "--json"][..], &["weeks", "--json"]] {
        let run = site.run(args);
        assert_eq!(run.code(), 2, "{args:?}");
        let v: serde_json::Value = serde_json::from_str(&run.stdout())
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", run.stdout()));
        assert_eq!(v["ok"], false, "{args:?}");
        assert_eq!(v["exit_code"], 2, "{args:?}");
        assert!(v["error"]
            .as_str()
            .unwrap()
            .contains("posts/bad.md:1: missing field `date`"));
    }
}
