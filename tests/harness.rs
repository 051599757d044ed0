//! A small chainable harness over a temporary newsletter folder.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::Command;

use crate::smtp::SmtpServer;

pub(crate) const NOW: &str = "2012-01-09T12:00:00+01:00";

pub(crate) const CONFIG: &str = r#"
[newsletter]
name = "Veille Test"
base_url = "https://veille.example.org/"
language = "fr"
timezone = "Europe/Paris"
posts_dir = "posts"
subscribers = "subscribers.toml"
categories = ["Relation client", "Marketing"]
default_category = "Divers"

[sender]
from = "Veille Test <veille@example.org>"
unsubscribe_mailto = "desabonnement@example.org"
"#;

pub(crate) struct Site {
    pub dir: tempfile::TempDir,
}

impl Site {
    /// A folder with `CONFIG` and no posts.
    pub(crate) fn new() -> Site {
        let site = Site {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(site.path("posts")).unwrap();
        site.file("digestif.toml", CONFIG)
            .file("subscribers.toml", "")
    }

    /// An empty folder: a generator's site is written into it, then `init` runs there.
    pub(crate) fn empty() -> Site {
        Site {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub(crate) fn file(self, rel: &str, content: impl AsRef<[u8]>) -> Site {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    /// A post with a title, an offset date-time and a category.
    pub(crate) fn post(self, name: &str, title: &str, date: &str, category: &str) -> Site {
        let text = format!(
            "+++\ntitle = {title:?}\ndate = {date}\ncategory = {category:?}\nsource = \"Source\"\nlink = \"https://news.example.com/{name}\"\n+++\nCorps de {name}.\n"
        );
        self.file(&format!("posts/{name}.md"), text)
    }

    /// The posts of the sample week 2011-W52 (complete at [`NOW`]) and one of 2011-W51.
    pub(crate) fn with_sample_week(self) -> Site {
        self.post(
            "a",
            "Plaintes ignorées",
            "2011-12-27T09:30:00+01:00",
            "Relation client",
        )
        .post(
            "b",
            "Vidéos courtes",
            "2011-12-28T18:00:00+01:00",
            "Marketing",
        )
        // Sunday 23:30 UTC is Monday in Paris: week 2011-W52.
        .post("c", "Minuit passé", "2011-12-25T23:30:00Z", "Marketing")
        .post(
            "d",
            "Semaine d'avant",
            "2011-12-20T10:00:00+01:00",
            "Marketing",
        )
    }

    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("digestif").unwrap();
        cmd.current_dir(self.dir.path())
            .env_remove("DIGESTIF_CONFIG")
            .env("DIGESTIF_NOW", NOW)
            .args(args);
        cmd
    }

    /// Start digestif in the background with `envs` (for kill and lock tests).
    pub(crate) fn spawn(&self, args: &[&str], envs: &[(&str, &str)]) -> std::process::Child {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_digestif"));
        cmd.current_dir(self.dir.path())
            .env_remove("DIGESTIF_CONFIG")
            .env("DIGESTIF_NOW", NOW)
            .args(args);
        cmd.envs(envs.iter().copied());
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// [`Site::run`] with extra environment variables.
    pub(crate) fn run_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let output = self.cmd(args).envs(envs.iter().copied()).output().unwrap();
        Run {
            output,
            root: self.dir.path().to_path_buf(),
        }
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        let output = self.cmd(args).output().unwrap();
        Run {
            output,
            root: self.dir.path().to_path_buf(),
        }
    }
}

pub(crate) struct Run {
    pub output: Output,
    root: PathBuf,
}

impl Run {
    pub(crate) fn from(output: Output, site: &Site) -> Run {
        Run {
            output,
            root: site.dir.path().to_path_buf(),
        }
    }

    pub(crate) fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// stderr with the temporary folder's path replaced by `$DIR`.
    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).replace(&*self.root.to_string_lossy(), "$DIR")
    }

    /// stderr without the source excerpts under each diagnostic (the `  |` lines), for
    /// tests about which problems are found rather than how they are drawn.
    pub(crate) fn problems(&self) -> String {
        self.stderr()
            .lines()
            .filter(|line| {
                let gutter = line.split_once(" |").map_or("x", |(g, _)| g);
                !gutter.chars().all(|c| c.is_ascii_digit() || c == ' ')
            })
            .map(|line| format!("{line}\n"))
            .collect()
    }

    pub(crate) fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    #[track_caller]
    pub(crate) fn assert_stdout_starts(&self, prefix: &str) {
        let out = self.stdout();
        assert!(
            out.starts_with(prefix),
            "stdout does not start with {prefix:?}:\n{out}"
        );
    }

    #[track_caller]
    pub(crate) fn assert_stdout_contains(&self, needle: &str) {
        let out = self.stdout();
        assert!(
            out.contains(needle),
            "stdout does not contain {needle:?}:\n{out}"
        );
    }

    #[track_caller]
    pub(crate) fn success(self) -> Run {
        assert_eq!(
            self.code(),
            0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    #[track_caller]
    pub(crate) fn fails_with(self, code: i32, stderr: &str) -> Run {
        assert_eq!(self.stderr(), stderr, "stdout:\n{}", self.stdout());
        assert_eq!(self.code(), code);
        self
    }
}

/// digestif run in `dir` with the real clock, no config or colour settings from the
/// environment: for first steps (`init`) and what depends on the terminal.
pub(crate) fn real_clock(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("digestif").unwrap();
    cmd.current_dir(dir)
        .env_remove("DIGESTIF_CONFIG")
        .env_remove("DIGESTIF_NOW")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .args(args);
    cmd
}

/// The stdout of `cmd`, which must succeed.
#[track_caller]
pub(crate) fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

// A newsletter that sends: the sample week, a list of readers, a secret for their links.

pub(crate) const SECRET: &str = "test-unsubscribe-secret-0123456789";

/// The token digestif puts in `email`'s links and return path under [`SECRET`].
pub(crate) fn token(email: &str) -> String {
    digestif::audience::token::Secret::new(SECRET.as_bytes().to_vec())
        .unwrap()
        .token(email)
}

pub(crate) const SUBSCRIBERS: &str = r#"
[[subscriber]]
email = "camille@example.org"
name = "Camille Durand"

[[subscriber]]
email = "sam@example.com"
name = "Sam"
categories = ["Marketing"]
format = "text"
language = "en"

[[subscriber]]
email = "nobody@example.net"
categories = ["Divers"]

[[subscriber]]
email = "gone@example.com"
status = "unsubscribed"
"#;

/// A site whose last complete week (2011-W52 at the harness's NOW) has three posts.
pub(crate) fn site(smtp: &str) -> Site {
    let config = CONFIG.replace(
        "unsubscribe_mailto = \"desabonnement@example.org\"",
        "unsubscribe_mailto = \"desabonnement@example.org\"\nunsubscribe_url = \"https://veille.example.org/unsubscribe\"\nreply_to = \"Rédaction <redaction@example.org>\"",
    );
    Site::new()
        .file(
            "digestif.toml",
            format!("{config}\n[smtp]\nretry_delay_ms = 20\n{smtp}\n"),
        )
        .file("subscribers.toml", SUBSCRIBERS)
        .with_sample_week()
}

/// Start `digestif send` in the background.
pub(crate) fn spawn_send(site: &Site) -> std::process::Child {
    site.spawn(&["send"], &[("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)])
}

/// [`wait_for`] while `send` runs: a send that ends first fails the test with its own words.
pub(crate) fn wait_for_send(server: &SmtpServer, n: usize, send: &mut std::process::Child) {
    wait_for_messages(server, n, Some(send));
}

/// Wait until the server has received `n` messages; a minute without them fails the test.
pub(crate) fn wait_for(server: &SmtpServer, n: usize) {
    wait_for_messages(server, n, None);
}

fn wait_for_messages(server: &SmtpServer, n: usize, mut send: Option<&mut std::process::Child>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.count() < n {
        if let Some(send) = send.as_deref_mut() {
            if let Some(status) = send.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = send.stderr.take() {
                    std::io::Read::read_to_string(&mut e, &mut err).unwrap();
                }
                panic!(
                    "the send ended ({status}) after {} messages: {err}",
                    server.count()
                );
            }
        }
        assert!(
            Instant::now() < deadline,
            "the server received {} of the {n} messages awaited within 60 s",
            server.count()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Wait until `check` holds (`serve` writes what it accepted into the list within a few
/// seconds, not before it answers); 20 s without it fails the test, saying `what`.
pub(crate) fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "not within 20 s: {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `digestif send ARGS` with the secret and the test SMTP password set.
pub(crate) fn send(site: &Site, args: &[&str]) -> Run {
    let mut all = vec!["send"];
    all.extend_from_slice(args);
    let output = site
        .cmd(&all)
        .env("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)
        .env("TEST_SMTP_PASSWORD", "s3cret-pass")
        .output()
        .unwrap();
    Run::from(output, site)
}

pub(crate) fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
