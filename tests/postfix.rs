//! A real Postfix (Debian's), started by the test in its own folder on a free port:
//! virtual mailboxes delivered to Maildirs, and Postfix's own bounces (issue 10).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{token, SECRET};
use crate::harness::{Site, CONFIG};

const POSTFIX: &str = "/usr/sbin/postfix";

/// A private Postfix instance: `etc/`, `queue/`, `data/`, `mail/` under a temp folder.
pub(crate) struct Postfix {
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Postfix {
    /// Accept mail for `domains`; deliver `mailboxes` (address → Maildir under mail/);
    /// any other address of those domains is accepted, then bounced by Postfix itself.
    pub(crate) fn start(domains: &[&str], mailboxes: &[(&str, &str)]) -> Postfix {
        Postfix::start_with(domains, mailboxes, &[])
    }

    /// [`Postfix::start`], with `transports` (domain → Postfix transport, such as
    /// `error:5.7.1 …`, which makes Postfix itself bounce with that status).
    pub(crate) fn start_with(
        domains: &[&str],
        mailboxes: &[(&str, &str)],
        transports: &[(&str, &str)],
    ) -> Postfix {
        assert!(
            Path::new(POSTFIX).exists(),
            "{POSTFIX} is missing: scripts/test installs Debian's postfix"
        );
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Postfix's own processes run as the postfix user and as nobody: let them in.
        run("chmod", &["0755", root.to_str().unwrap()]);
        for sub in ["etc", "queue", "data", "mail"] {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        run("chown", &["postfix", root.join("data").to_str().unwrap()]);
        let nobody = output("id", &["-u", "nobody"]);
        let nogroup = output("id", &["-g", "nobody"]);
        run(
            "chown",
            &[
                &format!("{nobody}:{nogroup}"),
                root.join("mail").to_str().unwrap(),
            ],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let r = root.display();
        let main_cf = format!(
            "compatibility_level = 3.6
queue_directory = {r}/queue
data_directory = {r}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.digestif.test
mydomain = digestif.test
myorigin = digestif.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file_prefixes = {r}
maillog_file = {r}/maillog
virtual_mailbox_domains = {domains}
virtual_mailbox_base = {r}/mail
virtual_mailbox_maps = texthash:{r}/etc/vmailbox
virtual_uid_maps = static:{nobody}
virtual_gid_maps = static:{nogroup}
recipient_delimiter = +
# Accept unknown users, so that Postfix itself bounces them (a DSN to the return path).
smtpd_reject_unlisted_recipient = no
# A relay that wants a fully-qualified EHLO name, as many do.
smtpd_helo_required = yes
smtpd_helo_restrictions = reject_non_fqdn_helo_hostname, reject_invalid_helo_hostname
smtputf8_enable = yes
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
transport_maps = texthash:{r}/etc/transport
alias_maps =
alias_database =
biff = no
",
            domains = domains.join(", ")
        );
        std::fs::write(root.join("etc/main.cf"), main_cf).unwrap();
        let vmailbox: String = mailboxes
            .iter()
            .map(|(address, maildir)| format!("{address} {maildir}/\n"))
            .collect();
        std::fs::write(root.join("etc/vmailbox"), vmailbox).unwrap();
        let transport: String = transports
            .iter()
            .map(|(domain, how)| format!("{domain} {how}\n"))
            .collect();
        std::fs::write(root.join("etc/transport"), transport).unwrap();
        let services = [
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000 0 flush",
            "proxymap unix - - n - - proxymap",
            "smtp unix - - n - - smtp",
            "relay unix - - n - - smtp",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "local unix - n n - - local",
            "virtual unix - n n - - virtual",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ];
        let master_cf = format!(
            "127.0.0.1:{port} inet n - n - - smtpd\n{}\n",
            services.join("\n")
        );
        std::fs::write(root.join("etc/master.cf"), master_cf).unwrap();
        let postfix = Postfix { dir, port };
        let status = Command::new(POSTFIX)
            .args(["-c", postfix.etc().to_str().unwrap(), "start"])
            .status()
            .unwrap();
        assert!(status.success(), "postfix start failed:\n{}", postfix.log());
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "postfix never listened:\n{}",
                postfix.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        postfix
    }

    fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// The Maildir `name` (as given to [`Postfix::start`]).
    pub(crate) fn maildir(&self, name: &str) -> PathBuf {
        self.dir.path().join("mail").join(name)
    }

    /// Wait until the Maildir `name` holds `n` messages; return them.
    pub(crate) fn wait_for(&self, name: &str, n: usize) -> Vec<Vec<u8>> {
        let new = self.maildir(name).join("new");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&new)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            if files.len() >= n {
                files.sort();
                return files.iter().map(|f| std::fs::read(f).unwrap()).collect();
            }
            assert!(
                Instant::now() < deadline,
                "{name}: {} of {n} messages after 60 s; maillog:\n{}",
                files.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new(POSTFIX)
            .args(["-c", self.etc().to_str().unwrap(), "stop"])
            .status();
    }
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap();
    assert!(status.success(), "{program} {args:?}");
}

fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn header(raw: &[u8], name: &str) -> String {
    use mailparse::MailHeaderMap;
    let (headers, _) = mailparse::parse_headers(raw).unwrap();
    headers
        .get_first_value(name)
        .unwrap_or_else(|| panic!("no {name} in\n{}", String::from_utf8_lossy(raw)))
}

/// The sample week, sent from news.test (VERP bounces to bounces@news.test, a one-click
/// endpoint) through `postfix`.
pub(crate) fn news_site(postfix: &Postfix) -> Site {
    let config = CONFIG.replace(
        "from = \"Veille Test <veille@example.org>\"",
        "from = \"Veille Test <veille@news.test>\"\nbounce_address = \"bounces@news.test\"\nunsubscribe_url = \"https://news.test/unsubscribe\"",
    );
    Site::new().with_sample_week().file(
        "digestif.toml",
        format!(
            "{config}\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
            postfix.port
        ),
    )
}

#[test]
fn postfix_delivers_bounces_come_back_and_inbox_cleans_the_list() {
    let postfix = Postfix::start(
        &["readers.test", "xn--bcher-kva.test", "news.test"],
        &[
            ("ada@readers.test", "ada"),
            ("zoé@readers.test", "zoe"),
            ("lecteur@xn--bcher-kva.test", "lecteur"),
            ("bounces@news.test", "bounces"),
        ],
    );

    let subscribers = "# Lecteurs\n\
        [[subscriber]]\nemail = \"ada@readers.test\"\nname = \"Ada\"\n\n\
        # parti sans prévenir\n[[subscriber]]\nemail = \"nobody@readers.test\"\n\n\
        [[subscriber]]\nemail = \"lecteur@bücher.test\"\n\n\
        [[subscriber]]\nemail = \"zoé@readers.test\"\n";
    let site = news_site(&postfix).file("subscribers.toml", subscribers);
    let env = [("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)];
    let run = site.run_env(&["send"], &env);
    assert_eq!(
        run.code(),
        0,
        "{}{}\n{}",
        run.stdout(),
        run.stderr(),
        postfix.log()
    );
    run.assert_stdout_contains("2011-W52: 4 sent, 0 deferred, 0 failed");

    // Delivered, with a fully-qualified EHLO (Postfix refuses a bare host name), the
    // reader's own return path, and a Message-ID that names the list.
    let ada = &postfix.wait_for("ada", 1)[0];
    assert_eq!(
        header(ada, "Return-Path"),
        format!("<bounces+{}@news.test>", token("ada@readers.test"))
    );
    assert!(header(ada, "Message-ID").ends_with(".news.test@news.test>"));
    let lecteur = &postfix.wait_for("lecteur", 1)[0];
    assert_eq!(header(lecteur, "To"), "lecteur@xn--bcher-kva.test");
    let zoe = &postfix.wait_for("zoe", 1)[0];
    assert!(String::from_utf8_lossy(zoe).contains("zoé@readers.test"));

    // nobody@ does not exist: Postfix bounces it to bounces+TOKEN@news.test.
    let bounce = &postfix.wait_for("bounces", 1)[0];
    assert!(header(bounce, "Content-Type").starts_with("multipart/report"));
    let mailbox = postfix.maildir("bounces");
    let inbox = site
        .run_env(&["inbox", mailbox.to_str().unwrap()], &env)
        .success();
    inbox.assert_stdout_contains("nobody@readers.test bounced (5.1.1");
    inbox.assert_stdout_contains("1 messages: 1 bounced, 0 temporary failures counted, 0 refused as spam or by policy (addresses kept), 0 unsubscribed, 0 left alone, 0 handled before");
    let list = std::fs::read_to_string(site.path("subscribers.toml")).unwrap();
    assert_eq!(
        list,
        subscribers.replace(
            "email = \"nobody@readers.test\"\n",
            "email = \"nobody@readers.test\"\nstatus = \"bounced\"\n"
        )
    );
    let bounced = site
        .run(&["subscribers", "list", "--status", "bounced"])
        .success();
    assert!(
        bounced.stdout().contains("nobody@readers.test"),
        "{}",
        bounced.stdout()
    );
    assert!(!bounced.stdout().contains("ada@"), "{}", bounced.stdout());
    // Idempotent: the same mailbox again changes nothing.
    site.run_env(&["inbox", mailbox.to_str().unwrap()], &env)
        .success()
        .assert_stdout_contains("0 bounced, 0 temporary failures counted, 0 refused as spam or by policy (addresses kept), 0 unsubscribed, 0 left alone, 1 handled before");
    // And an import never brings them back.
    let import = site.file("back.csv", "email\nnobody@readers.test\n").run(&[
        "subscribers",
        "import",
        "back.csv",
    ]);
    assert!(
        import.stdout().contains("bounced earlier"),
        "{}{}",
        import.stdout(),
        import.stderr()
    );
}

/// Issue 24: Postfix's own bounces of each class. An unknown user is hard (5.1.1: bounced
/// at once), a full mailbox is soft (5.2.2: counted), a refusal as spam is a block (5.7.1:
/// the address kept, counted per domain); `status` shows the week's rates and warns.
#[test]
fn postfix_bounces_of_each_class_and_the_weeks_rates() {
    let postfix = Postfix::start_with(
        &["readers.test", "news.test"],
        &[
            ("ada@readers.test", "ada"),
            ("bounces@news.test", "bounces"),
        ],
        &[
            (
                "blocked.test",
                "error:5.7.1 Message refused as spam by policy",
            ),
            ("full.test", "error:5.2.2 Mailbox full"),
        ],
    );

    let readers = [
        "ada@readers.test",
        "nobody@readers.test",
        "un@blocked.test",
        "deux@blocked.test",
        "plein@full.test",
    ];
    let subscribers: String = readers
        .iter()
        .map(|r| format!("[[subscriber]]\nemail = \"{r}\"\n\n"))
        .collect();
    let site = news_site(&postfix).file("subscribers.toml", &subscribers);
    let env = [("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)];
    site.run_env(&["send"], &env)
        .success()
        .assert_stdout_contains("2011-W52: 5 sent, 0 deferred, 0 failed");
    postfix.wait_for("ada", 1);
    let bounces = postfix.wait_for("bounces", 4);
    let statuses: Vec<String> = bounces
        .iter()
        .map(|b| {
            let text = String::from_utf8_lossy(b);
            text.lines()
                .find_map(|l| l.strip_prefix("Status: "))
                .unwrap_or("?")
                .trim()
                .to_string()
        })
        .collect();
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["5.1.1", "5.2.2", "5.7.1", "5.7.1"],
        "Postfix's DSNs"
    );
    let mailbox = postfix.maildir("bounces");
    // The bounces are read an hour after the send (the harness's clock is fixed).
    let later = [env[0], ("DIGESTIF_NOW", "2012-01-09T13:00:00+01:00")];
    site.run_env(&["inbox", mailbox.to_str().unwrap()], &later)
        .success()
        .assert_stdout_contains("4 messages: 1 bounced, 1 temporary failures counted, 2 refused as spam or by policy (addresses kept)");
    // A 5.7.1 never unsubscribes anyone; the unknown user is bounced.
    let list = std::fs::read_to_string(site.path("subscribers.toml")).unwrap();
    assert_eq!(list.matches("status = \"bounced\"").count(), 1, "{list}");
    assert!(
        list.contains("email = \"nobody@readers.test\"\nstatus = \"bounced\""),
        "{list}"
    );
    let status = site.run_env(&["status", "--json"], &env).success();
    let json: serde_json::Value = serde_json::from_str(&status.stdout()).unwrap();
    let rates = &json[0]["rates"];
    assert_eq!(rates["delivered"], 5, "{json}");
    assert_eq!(
        (
            rates["hard"].as_u64(),
            rates["soft"].as_u64(),
            rates["block"].as_u64()
        ),
        (Some(1), Some(1), Some(2)),
        "{json}"
    );
    assert_eq!(rates["block_by_domain"]["blocked.test"], 2, "{json}");
    let human = site.run_env(&["status"], &env).success();
    human.assert_stdout_contains("after it: 5 delivered, 1 hard bounces (20.00%), 1 soft, 2 refused as spam or by policy, 0 complaints (0.00%), 0 left");
    let warnings = human.stderr();
    assert!(
        warnings.contains("warning: 2011-W52: hard bounces at 20.00% (1 of 5): above 2%"),
        "{warnings}"
    );
    assert!(
        warnings
            .contains("warning: blocked.test refused 2 messages as spam or by policy in 2011-W52"),
        "{warnings}"
    );
}
