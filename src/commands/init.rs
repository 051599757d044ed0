//! `digestif init`: a working newsletter folder, so that `check` and `send --dry-run`
//! succeed right after it. Never overwrites a file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Days, Utc};
use chrono_tz::Tz;
use lettre::message::Mailbox;
use url::Url;

use crate::cli::InitArgs;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::sources::generator::SiteConfig;

/// `digestif init`.
pub(crate) fn run(args: &InitArgs, clock: Clock) -> Result<ExitCode> {
    let now = clock.start();
    let root = std::path::absolute(&args.dir).unwrap_or_else(|_| args.dir.clone());
    let site = SiteConfig::at(&root)
        .map_err(|why| Error::Usage(format!("init: the site's config cannot be read: {why}")))?;
    let values = Values::from_args(args, site.as_ref())?;
    let mut files = vec![
        (PathBuf::from("digestif.toml"), values.config()),
        (PathBuf::from("subscribers.toml"), values.subscribers()),
    ];
    if site.is_none() {
        files.insert(
            1,
            (
                PathBuf::from("posts").join(values.post_file_name(now)),
                values.example_post(now),
            ),
        );
        files.push((PathBuf::from(".gitignore"), GITIGNORE.to_string()));
    }
    refuse_to_overwrite(args, &files)?;
    if let Some(site) = &site {
        say!(
            "found a {} site ({}): the newsletter reads it as it is",
            site.dialect.name(),
            site.file.display()
        );
    } else {
        fsutil::create_dir_all(&args.dir.join("posts"))?;
    }
    for (rel, text) in &files {
        let path = args.dir.join(rel);
        // The list holds readers' addresses: owner only (0600); the rest may be shared.
        if rel == Path::new("subscribers.toml") {
            fsutil::write_atomic(&path, text.as_bytes())?;
        } else {
            fsutil::write_public(&path, text.as_bytes())?;
        }
        say!("created {}", path.display());
    }
    if site.is_some() {
        append_to_gitignore(&args.dir.join(".gitignore"))?;
    }
    let cd = if args.dir == Path::new(".") {
        String::new()
    } else {
        format!("cd {} && ", args.dir.display())
    };
    say!(
        "next: {cd}digestif check && digestif send --dry-run   (then open preview/*.html; \
         edit digestif.toml's [smtp] and subscribers.toml before a real send)"
    );
    Ok(ExitCode::SUCCESS)
}

fn refuse_to_overwrite(args: &InitArgs, files: &[(PathBuf, String)]) -> Result<()> {
    let existing: Vec<String> = files
        .iter()
        .map(|(rel, _)| args.dir.join(rel))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if existing.is_empty() {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "init: not overwriting {}; run it in an empty folder or a site's root, or pass one: digestif init DIR",
        existing.join(", ")
    )))
}

/// Add our lines to a site's `.gitignore` (created if missing), keeping what is there and
/// adding only the lines it lacks.
fn append_to_gitignore(path: &Path) -> Result<()> {
    let current = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let have: Vec<&str> = current.lines().map(str::trim).collect();
    let missing: Vec<&str> = GITIGNORE
        .lines()
        .filter(|l| l.starts_with('/') && !have.contains(l))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut text = current.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(
        "# digestif: the send ledger, previews, archive, and schedule's secrets and log\n",
    );
    for line in missing {
        text.push_str(line);
        text.push('\n');
    }
    fsutil::write_public(path, text.as_bytes())?;
    say!(
        "{} {}",
        if current.is_empty() {
            "created"
        } else {
            "added digestif's lines to"
        },
        path.display()
    );
    Ok(())
}

/// The answers, checked, with the defaults filled in (from the site's config when there
/// is one).
struct Values {
    name: String,
    url: Url,
    from: Mailbox,
    language: String,
    timezone: Tz,
    /// In a site: the posts folder relative to the site's root, and the generator.
    site: Option<(String, &'static str)>,
}

impl Values {
    fn from_args(args: &InitArgs, site: Option<&SiteConfig>) -> Result<Values> {
        let name = match (&args.name, site.and_then(|s| s.title.clone())) {
            (Some(name), _) => name.trim().to_string(),
            (None, Some(title)) => title.replace(['\r', '\n'], " ").trim().to_string(),
            (None, None) => folder_name(&args.dir),
        };
        if name.is_empty() || name.contains(['\r', '\n']) {
            return Err(Error::Usage(
                "init --name: expected a one-line name for the newsletter".into(),
            ));
        }
        let url = match (&args.url, site.and_then(|s| s.base_url.clone())) {
            (Some(url), _) => parse_url(url)?,
            (None, Some(url)) => url,
            (None, None) => parse_url("https://blog.example.org/")?,
        };
        let from = sender(args, &name, &url)?;
        let language = args
            .language
            .clone()
            .or_else(|| site.and_then(|s| s.language.clone()))
            .filter(|l| l == "en" || l == "fr")
            .unwrap_or_else(|| "en".into());
        let timezone = match &args.timezone {
            Some(tz) => tz.parse::<Tz>().map_err(|_| {
                Error::Usage(format!(
                    "init --timezone: unknown time zone {tz:?}; expected an IANA name such as Europe/Paris"
                ))
            })?,
            None => site.and_then(|s| s.timezone).unwrap_or_else(local_timezone),
        };
        let site = site.map(|s| {
            let posts = s.posts_dir.strip_prefix(&s.root).unwrap_or(&s.posts_dir);
            let posts = match posts.to_string_lossy() {
                p if p.is_empty() => ".".to_string(),
                p => p.into_owned(),
            };
            (posts, s.dialect.name())
        });
        Ok(Values {
            name,
            url,
            from,
            language,
            timezone,
            site,
        })
    }

    fn config(&self) -> String {
        let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
        CONFIG
            .replace("@name@", &quote(&self.name))
            .replace("@url@", &quote(self.url.as_str()))
            .replace("@language@", &quote(&self.language))
            .replace("@timezone@", &quote(self.timezone.name()))
            .replace("@from@", &quote(&self.from.to_string()))
            .replace("@address@", &quote(self.from.email.as_ref()))
            .replace("@posts@", &self.posts_lines())
    }

    /// Where the posts are: ours by default; a site's folder, read as its generator does.
    fn posts_lines(&self) -> String {
        match &self.site {
            None => POSTS_LINES.to_string(),
            Some((posts, generator)) => format!(
                "# The site's posts, read as {generator} reads them: each post links to the page\n\
                 # {generator} writes, from the site's own config (see the README).\n\
                 posts_dir = {}\n",
                toml::Value::String(posts.clone())
            ),
        }
    }

    /// A date in last week (in the newsletter's zone), so the first dry run has a complete
    /// week to show.
    fn example_date(&self, now: DateTime<Utc>) -> chrono::NaiveDate {
        now.with_timezone(&self.timezone).date_naive() - Days::new(7)
    }

    fn post_file_name(&self, now: DateTime<Utc>) -> String {
        format!("{}-welcome.md", self.example_date(now))
    }

    fn example_post(&self, now: DateTime<Utc>) -> String {
        let date = self.example_date(now);
        let body = if self.language == "fr" {
            "+++\ntitle = \"Bienvenue dans la lettre\"\ndate = {date}T09:00:00\ncategory = \"Actualités\"\n\
             # link = \"https://exemple.org/article\"   # pour un lien commenté : l'article d'origine\n\
             # source = \"Exemple\"                     # et le nom de son site\n\
             +++\n\
             Chaque billet du dossier `posts/` de la semaine entre dans la lettre : son titre, ce \
             premier paragraphe comme extrait, et un lien.\n\n\
             Le reste du billet n'apparaît que sur le blog.\n"
        } else {
            "+++\ntitle = \"Welcome to the newsletter\"\ndate = {date}T09:00:00\ncategory = \"News\"\n\
             # link = \"https://example.org/article\"   # for a curated link: the original article\n\
             # source = \"Example\"                     # and the name of its site\n\
             +++\n\
             Every post of the week in `posts/` goes into the digest: its title, this first \
             paragraph as the excerpt, and a link.\n\n\
             The rest of the post is only on the blog.\n"
        };
        body.replace("{date}", &date.to_string())
    }

    fn subscribers(&self) -> String {
        SUBSCRIBERS.replace("@language@", &self.language)
    }
}

/// The blog's address, checked: absolute http(s).
fn parse_url(url: &str) -> Result<Url> {
    Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            Error::Usage(format!(
                "init --url: expected the blog's absolute https:// address, found {url:?}"
            ))
        })
}

/// `--from`, else `Name <newsletter@blog's host>`.
fn sender(args: &InitArgs, name: &str, url: &Url) -> Result<Mailbox> {
    if let Some(from) = &args.from {
        return from.parse().map_err(|e| {
            Error::Usage(format!(
                "init --from: expected \"Name <address@domain>\", found {from:?} ({e})"
            ))
        });
    }
    let host = url.host_str().unwrap_or("example.org");
    let address = format!("newsletter@{host}").parse().map_err(|e| {
        Error::Usage(format!(
            "init: pass --from: no address can be made from {host} ({e})"
        ))
    })?;
    Ok(Mailbox::new(Some(name.to_string()), address))
}

/// The folder's own name, for a default newsletter name.
fn folder_name(dir: &Path) -> String {
    std::path::absolute(dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "Newsletter".into())
}

/// This machine's time zone, else UTC (the config then says so explicitly).
fn local_timezone() -> Tz {
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|name| name.parse().ok())
        .unwrap_or(Tz::UTC)
}

const CONFIG: &str = r#"# digestif configuration. Paths are relative to this file. Every key is described in
# the README ("Configuration"); a commented key shows its default or an example.

[newsletter]
# Required: shown in the header, the footer and the subject.
name = @name@
# Required: the blog's address; relative links in posts are made absolute with it.
base_url = @url@
# Wording of the digest: "en" or "fr".
language = @language@
# IANA time zone: decides which week a post belongs to.
timezone = @timezone@
@posts@# subscribers = "subscribers.toml"
# The send ledger, which makes sure nobody gets a week twice or is skipped.
# state_dir = "state"
# Section order; other categories follow alphabetically.
# categories = ["News"]
# default_category = "General"
# Placeholders: {name} {week} {week_id} {count}.
# subject = "{name} — {week}"
# Adds a "view in your browser" link to `digestif archive`'s pages.
# archive_url = "https://blog.example.org/letters/"

[sender]
# Required: "Name <address>".
from = @from@
# reply_to = "Editor <editor@example.org>"
# Readers must be able to leave: a mailto address (the requests come to you), and/or an
# https endpoint taking one-click unsubscribes (needs $DIGESTIF_UNSUBSCRIBE_SECRET).
unsubscribe_mailto = @address@
# unsubscribe_url = "https://blog.example.org/unsubscribe"

[smtp]
# Your provider's submission server. Try it without sending: digestif check --smtp
host = "localhost"
# port = 587
# "starttls" (required, never opportunistic), "tls" (port 465) or "none" (loopback only).
# tls = "starttls"
# username = "newsletter@example.org"
# The password is never written here: name the environment variable that holds it.
# password_env = "DIGESTIF_SMTP_PASSWORD"
# concurrency = 4
# Messages per second over all connections; 0 = no limit.
# rate_per_s = 0
"#;

const POSTS_LINES: &str =
    "# Your posts: *.md / *.markdown files with TOML front matter (see posts/).\n\
# posts_dir = \"posts\"\n";

const SUBSCRIBERS: &str = r#"# One [[subscriber]] block per reader; only `email` is required.
# Manage it by hand or with `digestif subscribers add/remove/import`, which keep comments.
#
# [[subscriber]]
# email = "reader@example.org"
# name = "Camille"              # used in the greeting
# categories = ["News"]         # only these sections; leave out for every section
# format = "html"               # "html" (with a text alternative) or "text"
# language = "@language@"
"#;

const GITIGNORE: &str =
    "# digestif: the send ledger, what previews and the archive write, and the\n\
# secrets and log of `digestif schedule`\n\
/state/\n/preview/\n/archive/\n/outbox/\n/digestif.env\n/digestif.log\n";
