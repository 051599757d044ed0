//! `digestif subscribers …` and `digestif unsubscribe`, end to end (issue 4).

use crate::harness::Site;

const COMMENTED: &str = "\
# Readers of Veille Test — edited by hand, keep the comments!

[[subscriber]]           # our first reader
email = \"camille@example.org\"
name  = \"Camille\"      # spelled like this on purpose
categories = [ \"Marketing\" ]

# met at a conference
[[subscriber]]
email = \"sam@example.com\"
status = \"unsubscribed\"

[[subscriber]]
email = \"lea@example.org\"
format = \"text\"
";

fn site() -> Site {
    Site::new().file("subscribers.toml", COMMENTED)
}

fn read(site: &Site, rel: &str) -> String {
    std::fs::read_to_string(site.path(rel)).unwrap()
}

#[test]
fn list_shows_a_table_and_filters() {
    let run = site()
        .run(&["subscribers", "list", "--status", "active"])
        .success();
    assert_eq!(
        run.stdout(),
        "EMAIL                NAME     STATUS  FORMAT  CATEGORIES\n\
         camille@example.org  Camille  active  html    Marketing\n\
         lea@example.org               active  text    (all)\n\
         2 subscribers\n"
    );
    let run = site()
        .run(&[
            "subscribers",
            "list",
            "--category",
            "Relation client",
            "--json",
        ])
        .success();
    let json: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let emails: Vec<_> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["email"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(emails, ["sam@example.com", "lea@example.org"]);
}

#[test]
fn add_keeps_every_comment_and_untouched_entry_byte_for_byte() {
    let site = site();
    site.run(&[
        "subscribers",
        "add",
        "new@example.net",
        "--name",
        "Nouvelle",
        "--category",
        "Marketing",
        "--format",
        "text",
    ])
    .success();
    let text = read(&site, "subscribers.toml");
    assert!(text.starts_with(COMMENTED), "{text}");
    let added = &text[COMMENTED.len()..];
    // `since` is today in the newsletter's zone, as DIGESTIF_NOW says (#11).
    assert_eq!(added, "\n[[subscriber]]\nemail = \"new@example.net\"\nname = \"Nouvelle\"\ncategories = [\"Marketing\"]\nformat = \"text\"\nsince = 2012-01-09\n");
    assert_eq!(read(&site, "subscribers.toml.bak"), COMMENTED);
}

#[test]
fn unsubscribe_and_remove_touch_only_their_entry() {
    let site = site();
    site.run(&["subscribers", "unsubscribe", "lea@example.org"])
        .success();
    assert_eq!(
        read(&site, "subscribers.toml"),
        format!("{COMMENTED}status = \"unsubscribed\"\n")
    );
    site.run(&["subscribers", "remove", "CAMILLE@EXAMPLE.ORG"])
        .fails_with(2, "error: CAMILLE@EXAMPLE.ORG is not in subscribers.toml\n");
    site.run(&["subscribers", "remove", "camille@EXAMPLE.org"])
        .success();
    let text = read(&site, "subscribers.toml");
    assert!(!text.contains("camille"));
    assert!(
        text.starts_with("# Readers of Veille Test — edited by hand, keep the comments!\n"),
        "{text}"
    );
    assert!(text.contains("# met at a conference\n[[subscriber]]\nemail = \"sam@example.com\""));
}

#[test]
fn add_refuses_duplicates_and_asks_before_resubscribing() {
    let site = site();
    site.run(&["subscribers", "add", "camille@EXAMPLE.ORG"])
        .fails_with(
            2,
            "error: camille@example.org is already subscribed (subscribers.toml line 3)\n",
        );
    site.run(&["subscribers", "add", "sam@example.com"]).fails_with(
        2,
        "error: sam@example.com unsubscribed earlier (subscribers.toml line 9): add --resubscribe if they asked to come back\n",
    );
    site.run(&["subscribers", "add", "sam@example.com", "--resubscribe"])
        .success();
    assert!(!read(&site, "subscribers.toml").contains("unsubscribed"));
    site.run(&["subscribers", "add", "x@example.com", "--category", "Sport"]).fails_with(
        2,
        "error: --category \"Sport\" is not a category of the newsletter; known categories: Relation client, Marketing, Divers\n",
    );
    site.run(&["subscribers", "add", "not-an-address"])
        .fails_with(
            2,
            "error: \"not-an-address\" is not a valid email address (Missing domain or user)\n",
        );
}

#[test]
fn check_reports_every_subscriber_problem_with_lines() {
    let site = Site::new().file(
        "subscribers.toml",
        "[[subscriber]]\nemail = \"a@example.org\"\n\n[[subscriber]]\nemail = \"a@Example.ORG\"\n\n\
         [[subscriber]]\nemail = \"b@@example.org\"\nformat = \"pdf\"\nstatus = \"gone\"\ncategories = [\"Sport\"]\nnmae = \"B\"\n\n\
         [[subscriber]]\nemail = \"jo@ÜNÏCODE.example\"\n[[subscriber]]\nemail = \"jo@xn--ncode-cta3g.example\"\n",
    );
    let run = site.run(&["check"]);
    assert_eq!(run.code(), 2);
    assert_eq!(
        run.problems(),
        "warning: posts: no posts found, so there is nothing to send\n\
         warning: smtp.host is not set: send would use localhost (see `digestif check --smtp`)\n\
         error: subscribers.toml:4: duplicate subscriber a@Example.ORG: already on line 1\n\
         error: subscribers.toml:8:9: `email`: \"b@@example.org\" is not a valid address (Invalid email user)\n\
         error: subscribers.toml:9:10: `format`: expected \"html\" or \"text\", found \"pdf\"\n\
         error: subscribers.toml:10:10: `status`: expected \"active\", \"unsubscribed\" or \"bounced\", found \"gone\"\n\
         error: subscribers.toml:11:15: `categories`: unknown category \"Sport\"; known categories: `Relation client`, `Marketing`, `Divers`\n\
         error: subscribers.toml:12:1: unknown field `nmae`, expected one of `email`, `name`, `categories`, `format`, `language`, `status`, `since`, `paused_until`\n\
         help: did you mean `name`?\n\
         error: subscribers.toml:16: duplicate subscriber jo@xn--ncode-cta3g.example: already on line 14\n\
         7 problems found\n",
    );
}

const MAILCHIMP: &str =
    "\u{feff}Email Address,First Name,Last Name,EMAIL_TYPE,MEMBER_RATING,OPTIN_TIME\n\
new.reader@example.net,Ana,Lima,html,2,2011-11-30 10:00:00\n\
camille@example.org,Camille,Durand,html,5,2011-10-01 09:00:00\n\
sam@example.com,Sam,Taylor,html,1,2011-10-02 09:00:00\n\
broken-address,Bad,Row,html,1,\n\
plain@example.net,,,text,3,\n";

const LISTMONK: &str = "uuid,email,name,attributes,status,created_at,updated_at\n\
6a1e0c,lm.one@example.org,Listmonk One,{},enabled,2011-12-01,2011-12-01\n\
6a1e0d,lm.blocked@example.org,Blocked Person,{},blocklisted,2011-12-01,2011-12-01\n\
6a1e0e,lea@example.org,Léa,{},enabled,2011-12-01,2011-12-01\n";

#[test]
fn import_merges_mailchimp_export_without_resubscribing() {
    let site = site().file("mailchimp.csv", MAILCHIMP);
    let run = site
        .run(&["subscribers", "import", "mailchimp.csv", "--dry-run"])
        .success();
    assert!(
        run.stdout()
            .ends_with("2 added, 3 skipped (dry run: nothing written)\n"),
        "{}",
        run.stdout()
    );
    assert_eq!(read(&site, "subscribers.toml"), COMMENTED);

    let run = site
        .run(&["subscribers", "import", "mailchimp.csv"])
        .success();
    assert_eq!(
        run.stdout(),
        "added new.reader@example.net\n\
         skipped mailchimp.csv:3: camille@example.org: already subscribed (line 3)\n\
         skipped mailchimp.csv:4: sam@example.com: unsubscribed earlier (line 9), not re-subscribed\n\
         skipped mailchimp.csv:5: broken-address: not a valid address (Missing domain or user)\n\
         added plain@example.net\n\
         2 added, 3 skipped\n"
    );
    let text = read(&site, "subscribers.toml");
    assert!(text.starts_with(COMMENTED));
    assert!(text.contains("email = \"new.reader@example.net\"\nname = \"Ana Lima\"\n"));
    assert!(text.contains("email = \"plain@example.net\"\nformat = \"text\"\n"));
    // Importing again adds nothing.
    let run = site
        .run(&["subscribers", "import", "mailchimp.csv"])
        .success();
    assert!(run.stdout().ends_with("0 added, 5 skipped\n"));
}

#[test]
fn import_understands_listmonk_status() {
    let site = site().file("listmonk.csv", LISTMONK);
    let run = site
        .run(&["subscribers", "import", "listmonk.csv"])
        .success();
    assert!(
        run.stdout()
            .contains("added lm.blocked@example.org (as unsubscribed, as in the export)"),
        "{}",
        run.stdout()
    );
    let list = site
        .run(&["subscribers", "list", "--status", "unsubscribed"])
        .success();
    assert!(list.stdout().contains("lm.blocked@example.org"));
}

#[test]
fn export_as_csv_round_trips_through_import() {
    let site = site();
    let csv = site
        .run(&["subscribers", "export", "--csv"])
        .success()
        .stdout();
    assert!(csv.starts_with("email,name,categories,format,language,status,since,paused_until\ncamille@example.org,Camille,Marketing,html,,active,,\n"), "{csv}");
    let other = Site::new().file("in.csv", &csv);
    other.run(&["subscribers", "import", "in.csv"]).success();
    let json = other.run(&["subscribers", "export"]).success().stdout();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert_eq!(v[1]["status"], "unsubscribed");
}

#[test]
fn unsubscribe_token_works_once_and_forgeries_fail() {
    let site = site();
    let secret = "a-test-secret-of-at-least-16-bytes";
    let token = digestif::audience::token::Secret::new(secret.as_bytes().to_vec())
        .unwrap()
        .token("lea@example.org");
    let forged = digestif::audience::token::Secret::new(b"some-other-secret-16".to_vec())
        .unwrap()
        .token("lea@example.org");
    let run = |t: &str| {
        let out = site
            .cmd(&["unsubscribe", "--token", t])
            .env("DIGESTIF_UNSUBSCRIBE_SECRET", secret)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(
        run(&forged),
        (
            2,
            String::new(),
            "error: invalid unsubscribe token: forged, altered, made with another secret, or for an address no longer listed\n"
                .into()
        )
    );
    assert_eq!(read(&site, "subscribers.toml"), COMMENTED);
    assert_eq!(
        run(&token),
        (0, "unsubscribed lea@example.org\n".into(), String::new())
    );
    assert_eq!(
        run(&token),
        (
            0,
            "lea@example.org was already unsubscribed\n".into(),
            String::new()
        )
    );
    let missing = site.run(&["unsubscribe", "--token", &token]);
    assert_eq!(missing.stderr(), "error: the unsubscribe secret is missing: set the environment variable DIGESTIF_UNSUBSCRIBE_SECRET\n");
}

#[test]
fn edits_wait_for_nobody_a_held_lock_refuses_them() {
    let site = site();
    std::fs::create_dir_all(site.path("state")).unwrap();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(site.path("state/digestif.lock"))
        .unwrap();
    file.try_lock().unwrap();
    let run = site.run(&["subscribers", "add", "z@example.org"]);
    assert_eq!(run.code(), 3);
    assert!(
        run.stderr()
            .contains("another digestif process holds the lock"),
        "{}",
        run.stderr()
    );
    assert_eq!(read(&site, "subscribers.toml"), COMMENTED);
    // Leaving never waits: recorded now, written in when the lock is let go.
    let run = site.run(&["subscribers", "unsubscribe", "lea@example.org"]);
    assert_eq!(
        (run.code(), run.stdout()),
        (0, "unsubscribed lea@example.org: recorded now; a send is running and skips them, and subscribers.toml is updated when it ends\n".into()),
        "{}",
        run.stderr()
    );
    assert_eq!(read(&site, "subscribers.toml"), COMMENTED);
    site.run(&["status"])
        .success()
        .assert_stdout_contains("1 requests to leave recorded");
    drop(file);
    // The next command that takes the lock writes it in first.
    site.run(&["subscribers", "add", "z@example.org"]).success();
    let list = site.run(&["subscribers", "list", "--status", "unsubscribed", "--json"]);
    assert!(list.success().stdout().contains("lea@example.org"));
}

/// Issue 24: one person shown, then forgotten. After `forget`, the address is in no file of
/// the state (the stores overwrite what they free), nor in the list; the weeks they got
/// stay counted; an import of the address is refused, and `add` needs --resubscribe.
#[test]
fn a_person_is_shown_then_forgotten_everywhere_digestif_keeps_state() {
    let config = crate::harness::CONFIG.to_string()
        + "\n[smtp]\ntransport = \"file\"\nfile_dir = \"outbox\"\n";
    let site = Site::new()
        .file("digestif.toml", config)
        .file("subscribers.toml", crate::harness::SUBSCRIBERS)
        .with_sample_week();
    site.run(&["send"]).success();
    site.run(&["subscribers", "unsubscribe", "camille@example.org"])
        .success();
    let show = site
        .run(&["subscribers", "show", "camille@example.org"])
        .success();
    let out = show.stdout();
    assert!(
        out.contains("status unsubscribed, name Camille Durand"),
        "{out}"
    );
    assert!(out.contains("unsubscribed at "), "{out}");
    assert!(
        out.contains("2011-W52 (real): sent after 1 attempt(s)"),
        "{out}"
    );
    let json = site
        .run(&["subscribers", "show", "camille@example.org", "--json"])
        .success();
    let json: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    assert_eq!(json["weeks"][0]["email"], "camille@example.org");

    let forget = site
        .run(&["subscribers", "forget", "camille@example.org"])
        .success();
    assert!(
        forget.stdout().contains(
            "forgot camille@example.org: their entry (subscribers.toml line 2), 1 request(s)"
        ),
        "{}",
        forget.stdout()
    );
    let contains = |dir: &std::path::Path, needle: &[u8]| -> Vec<String> {
        let mut found = Vec::new();
        for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
            if entry.file_type().is_file() {
                let bytes = std::fs::read(entry.path()).unwrap();
                if bytes
                    .windows(needle.len())
                    .any(|w| w.eq_ignore_ascii_case(needle))
                {
                    found.push(entry.path().display().to_string());
                }
            }
        }
        found
    };
    assert_eq!(
        contains(&site.path("state"), b"camille@example.org"),
        Vec::<String>::new()
    );
    assert_eq!(
        contains(&site.path("state"), b"Camille Durand"),
        Vec::<String>::new()
    );
    for file in ["subscribers.toml", "subscribers.toml.bak"] {
        let list = std::fs::read_to_string(site.path(file)).unwrap();
        assert!(!list.contains("camille"), "{file}: {list}");
    }
    // The week they got is still counted, without them.
    let status = site.run(&["status"]).success();
    assert!(
        status.stdout().contains("2011-W52  started"),
        "{}",
        status.stdout()
    );
    assert!(
        status.stdout().contains("2 sent, 1 skipped"),
        "{}",
        status.stdout()
    );
    let shown = site
        .run(&["subscribers", "show", "camille@example.org"])
        .success();
    assert!(
        shown.stdout().contains("forgotten at their request"),
        "{}",
        shown.stdout()
    );
    // Never added back by an import; `add` only when they ask again.
    let site = site.file("back.csv", "email\ncamille@example.org\n");
    let import = site.run(&["subscribers", "import", "back.csv"]).success();
    assert!(
        import.stdout().contains("forgotten at their request"),
        "{}",
        import.stdout()
    );
    let add = site.run(&["subscribers", "add", "camille@example.org"]);
    assert_eq!(add.code(), 2, "{}", add.stderr());
    assert!(
        add.stderr()
            .contains("--resubscribe only if they ask to join again"),
        "{}",
        add.stderr()
    );
    site.run(&["subscribers", "add", "camille@example.org", "--resubscribe"])
        .success();
}

#[test]
fn export_streams_the_same_json_as_list_and_nothing_from_a_list_with_a_mistake() {
    let site = site();
    let export = site.run(&["subscribers", "export"]).success().stdout();
    let list = site
        .run(&["subscribers", "list", "--json"])
        .success()
        .stdout();
    assert_eq!(export, list);
    let broken = site.file(
        "subscribers.toml",
        "[[subscriber]]\nemail = \"a@example.org\"\n\n[[subscriber]]\nemail = \"not an address\"\n",
    );
    for args in [
        &["subscribers", "export"][..],
        &["subscribers", "export", "--csv"],
    ] {
        let run = broken.run(args);
        assert_eq!(run.code(), 2);
        assert_eq!(
            run.stdout(),
            "",
            "nothing exported from a list with a mistake"
        );
        assert!(
            run.stderr().contains("subscribers.toml:5"),
            "{}",
            run.stderr()
        );
    }
}
