//! Command-line interface (clap derive). Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::week::Week;

/// Turn a folder of Markdown posts into a weekly email digest, and send it.
#[derive(Debug, Parser)]
#[command(name = "digestif", version, about, after_help = EXAMPLES, max_term_width = 100)]
pub struct Cli {
    /// Configuration file, or a folder holding digestif.toml [default: digestif.toml here or
    /// in the nearest parent folder]
    #[arg(
        long,
        short = 'c',
        global = true,
        help_heading = "Global options",
        env = "DIGESTIF_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,

    /// Print only errors and warnings (and the data a command is asked for)
    #[arg(
        long,
        short = 'q',
        global = true,
        help_heading = "Global options",
        conflicts_with = "verbose"
    )]
    pub quiet: bool,

    /// Also say which config is used and which values are defaults
    #[arg(long, short = 'v', global = true, help_heading = "Global options")]
    pub verbose: bool,

    /// Do not fetch newsletter.feeds over the network: use the items kept from earlier runs
    /// (feeds that are local files are still read)
    #[arg(long, global = true, help_heading = "Global options")]
    pub offline: bool,

    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
The config is --config PATH, else $DIGESTIF_CONFIG, else the first digestif.toml found in the
current folder or a parent (as cargo and zola look for theirs).

Examples:
  digestif init lettre --name 'My Letter' --url https://blog.example/ --from 'Me <me@example.org>'
  digestif check                      validate config, posts and subscribers
  digestif weeks                      list the weeks that have posts
  digestif preview                    write preview/<week>.{html,txt,eml} for the latest week
  digestif preview --week 2011-W52 --out /tmp/p

Exit codes: 0 success, 1 some messages failed or their outcome stayed unknown, 2 invalid input
or usage (nothing sent), 3 another digestif holds the lock, 75 temporary failure (run again
later), 128+N killed by a second signal N.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the HTML, text and .eml of one week's digest for a person to look at
    #[command(
        after_help = "Examples:\n  digestif preview\n  digestif preview --week 2011-W52 --out /tmp/preview\n  digestif preview --as camille@example.org   exactly what Camille gets"
    )]
    #[command(display_order = 4)]
    Preview {
        /// ISO week such as 2011-W52 [default: the latest week with published posts]
        #[arg(long, value_name = "YYYY-Www")]
        week: Option<Week>,
        /// Folder for the preview files [default: preview/ beside the config]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Write the exact message this subscriber gets: their categories, format,
        /// language, greeting and unsubscribe link
        #[arg(long = "as", value_name = "EMAIL")]
        as_email: Option<String>,
    },
    /// List the weeks that have published posts, newest first, with counts per category
    #[command(after_help = "Examples:\n  digestif weeks\n  digestif weeks --json")]
    #[command(display_order = 3)]
    Weeks {
        /// JSON array instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Validate the config, every post and the subscribers file, and every setting `send`
    /// checks (SMTP security, credentials, unsubscribe); report every problem
    #[command(
        after_help = "Examples:\n  digestif check && echo ready\n  digestif check --smtp      also connect: EHLO, STARTTLS, AUTH, QUIT (sends nothing)\n  digestif check --json"
    )]
    #[command(display_order = 2)]
    Check {
        /// Also connect to the SMTP server and try EHLO, STARTTLS and AUTH, then quit
        #[arg(long)]
        smtp: bool,
        /// Also ask the web for every page the latest complete week's digest links to
        /// (HEAD, else GET; redirects followed and shown; 4xx, 5xx and no answer reported)
        #[arg(long)]
        links: bool,
        /// Machine-readable result (problems included)
        #[arg(long)]
        json: bool,
    },
    /// Create a working newsletter folder: a commented config, an example post, a
    /// subscribers file and a .gitignore
    #[command(after_help = INIT_HELP)]
    #[command(display_order = 1)]
    Init(InitArgs),
    /// Print (or install) the crontab or systemd units that run `send` every week for this
    /// installation: absolute paths, and the secrets read from digestif.env (mode 0600)
    #[command(
        after_help = "Examples:\n  digestif schedule --cron\n  digestif schedule --cron --install         writes digestif.env and digestif.crontab\n  digestif schedule --systemd --user --install   user units, no root needed\n  sudo digestif schedule --systemd --install     system units in /etc/systemd/system"
    )]
    #[command(display_order = 7)]
    Schedule(ScheduleArgs),
    /// Print (or install) a shell completion script
    #[command(
        after_help = "Examples:\n  digestif completions bash --install   where bash-completion finds it\n  digestif completions fish --install\n  digestif completions zsh > ~/.zfunc/_digestif   (a folder in your fpath)"
    )]
    #[command(display_order = 13)]
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
        /// Write it where the shell loads it (bash and fish), creating the folders
        #[arg(long)]
        install: bool,
    },
    /// Print (or install) the manual page (roff)
    #[command(after_help = "Example:\n  digestif man --install && man digestif")]
    #[command(display_order = 14)]
    Man {
        /// Write it where `man` finds it for this binary (share/man beside its bin folder)
        #[arg(long)]
        install: bool,
    },
    /// Write the web archive: a page per complete week, an index and an Atom feed
    #[command(
        after_help = "Examples:\n  digestif archive\n  digestif archive --out public/lettres"
    )]
    #[command(display_order = 12)]
    Archive {
        /// Folder for the site [default: archive/ beside the config]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Send what is new: each complete week not sent yet, to every active subscriber
    #[command(after_help = SEND_HELP)]
    #[command(display_order = 5)]
    Send(SendArgs),
    /// Show the send ledger: counts per state, failed and deferred recipients
    #[command(
        after_help = "Examples:\n  digestif status\n  digestif status --week 2011-W52 --json\n  digestif status --repair"
    )]
    #[command(display_order = 6)]
    Status {
        /// Only this week
        #[arg(long, value_name = "YYYY-Www")]
        week: Option<Week>,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
        /// Rebuild a lost or damaged ledger: the weeks ledger.marker lists are recorded as
        /// sent, so nobody gets them again
        #[arg(long)]
        repair: bool,
        /// With --repair: forget those weeks instead, so they can be sent again
        #[arg(long, requires = "repair")]
        force: bool,
    },
    /// List and edit the subscribers file (comments and formatting are kept)
    #[command(
        subcommand,
        after_help = "Examples:\n  digestif subscribers list\n  digestif subscribers add camille@example.org --name 'Camille Durand'\n  digestif subscribers unsubscribe camille@example.org"
    )]
    #[command(display_order = 8)]
    Subscribers(SubscribersCommand),
    /// Serve the subscribe form, its confirmations and one-click unsubscribe, under
    /// `web.url` (or `sender.unsubscribe_url` alone)
    #[command(after_help = SERVE_HELP)]
    #[command(display_order = 9)]
    Serve {
        /// Address and port to listen on (put nginx or Caddy with TLS in front)
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8025")]
        listen: String,
    },
    /// Print the subscribe form's HTML, to paste into the blog's template (needs `web.url`)
    #[command(
        after_help = "The form posts to <web.url>subscribe: `digestif serve` records the request and mails a\nconfirmation link (double opt-in). No JavaScript; readable without styles; a hidden\nhoneypot field. The page `serve` hosts at <web.url>subscribe is the same form.\n\nExample:\n  digestif subscribe-form > themes/mine/layouts/partials/subscribe.html"
    )]
    #[command(display_order = 9)]
    SubscribeForm,
    /// Clean the list from a mailbox: bounces (RFC 3464) mark readers bounced, abuse
    /// reports (ARF) and mails to the unsubscribe address unsubscribe them
    #[command(
        after_help = "Reads a Maildir (a folder with cur/ and new/) or an mbox file. Each message is handled\nonce, so it is safe to run from cron over the same mailbox; messages are never changed.\n\nExamples:\n  digestif inbox ~/Maildir/.bounces\n  digestif inbox /var/mail/bounces"
    )]
    #[command(display_order = 11)]
    Inbox {
        /// A Maildir folder or an mbox file
        mailbox: PathBuf,
    },
    /// Unsubscribe the reader an unsubscribe link's token was made for
    #[command(
        after_help = "Example:\n  DIGESTIF_UNSUBSCRIBE_SECRET=... digestif unsubscribe --token 53051d320634e35ce80fd2dc352d7d05"
    )]
    #[command(display_order = 10)]
    Unsubscribe {
        /// The token from the link (`...?token=T`)
        #[arg(long, value_name = "T")]
        token: String,
    },
}

const SERVE_HELP: &str = "\
With [web] url set, serve answers under its path: subscribe (GET: the form; POST: a
request, confirmed by mail), confirm (GET: a button; POST: subscribes), unsubscribe and
healthz. Without it, only the unsubscribe path of sender.unsubscribe_url.

POST <path>?token=T unsubscribes at once (RFC 8058 one-click) and answers 200; GET shows a
page with a button that makes that POST (link scanners fetch every URL, so a GET never
unsubscribes). The path is the one of sender.unsubscribe_url; TLS is the proxy's job.
Requests are recorded at once, even while a send runs. GET /healthz answers ok.

Examples:
  DIGESTIF_UNSUBSCRIBE_SECRET=... digestif serve
  digestif serve --listen 127.0.0.1:9000 --verbose    (one line per request, tokens never logged)";

const INIT_HELP: &str = "\
Writes DIR/digestif.toml, DIR/posts/<date>-welcome.md, DIR/subscribers.toml and DIR/.gitignore
(DIR defaults to the current folder); never overwrites a file. `digestif check` and
`digestif send --dry-run` succeed right after it.

In the root of a Hugo, Jekyll or Zola site, it reads the site's config instead: the name,
address, language, time zone and posts folder come from there, only digestif.toml and
subscribers.toml are written (no sample post), and .gitignore is appended to.

Examples:
  digestif init
  cd ~/my-hugo-blog && digestif init --from 'Me <me@example.org>'
  digestif init lettre --name 'Veille' --url https://veille.example.org/ \\
      --from 'Veille <veille@example.org>' --language fr --timezone Europe/Paris";

/// Options of `digestif init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Folder to create the newsletter in (created if missing); in a Hugo, Jekyll or Zola
    /// site's root, the newsletter reads that site as it is
    #[arg(default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// The newsletter's name [default: the folder's name]
    #[arg(long, value_name = "N")]
    pub name: Option<String>,
    /// The blog's address, where relative links point
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The sender, "Name <address>"
    #[arg(long, value_name = "MAILBOX")]
    pub from: Option<String>,
    /// Language of the digest's wording [default: the site's, else en]
    #[arg(long, value_parser = ["en", "fr"])]
    pub language: Option<String>,
    /// IANA time zone that decides which week a post is in [default: the site's, else this machine's]
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
}

const SEND_HELP: &str = "\
Without --week, sends every complete week (in the newsletter's time zone) that has published
posts and was not sent yet, oldest first; never the current week. On first use (empty
state) only the last complete week is sent, so old archives are not mailed out.

Examples:
  digestif send --dry-run                  write preview/<week>/*.eml, send nothing
  digestif send                            the weekly cron job
  digestif send --to me@example.org        a test send to yourself (recorded apart)
  digestif send --week 2011-W52 --concurrency 8 --rate 20

Exit codes: 0 all sent or nothing new, 1 some failed permanently or ended with an unknown
outcome (or SMTP/TLS/auth error), 2 invalid input (nothing sent), 3 another send is running,
75 some deferred or interrupted, 128+N a second signal N stopped it at once.";

impl Command {
    /// Was machine-readable output asked for? Then a failure is JSON too.
    pub fn wants_json(&self) -> bool {
        match self {
            Command::Check { json, .. }
            | Command::Weeks { json }
            | Command::Status { json, .. } => *json,
            Command::Send(args) => args.json,
            Command::Subscribers(
                SubscribersCommand::List { json, .. } | SubscribersCommand::Show { json, .. },
            ) => *json,
            _ => false,
        }
    }
}

/// Options of `digestif schedule`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("scheduler").required(true).args(["cron", "systemd"])))]
pub struct ScheduleArgs {
    /// A crontab: the weekly send and the same day's retries
    #[arg(long)]
    pub cron: bool,
    /// systemd units: the send service, its weekly timer, and the serve service when
    /// `unsubscribe_url` is set
    #[arg(long)]
    pub systemd: bool,
    /// With --systemd: units for your own systemd instance (~/.config/systemd/user), no
    /// root needed
    #[arg(long, requires = "systemd")]
    pub user: bool,
    /// Write the files (and digestif.env if missing) instead of printing them
    #[arg(long)]
    pub install: bool,
    /// The account system-wide units run as [default: the newsletter folder's owner]
    #[arg(long, value_name = "NAME", conflicts_with = "user")]
    pub run_as: Option<String>,
    /// The digestif binary the schedule runs [default: this one]
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
}

/// Options of `digestif send`.
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// Send this ISO week (even if not complete), instead of what is new
    #[arg(long, value_name = "YYYY-Www")]
    pub week: Option<Week>,
    /// Send nothing, record nothing: write the messages under --out
    #[arg(long)]
    pub dry_run: bool,
    /// Folder for --dry-run output [default: preview/ beside the config]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Only these addresses (repeatable): a subscriber gets their own message, anyone else
    /// the default one; recorded apart, never as the week's real send
    #[arg(long, value_name = "EMAIL")]
    pub to: Vec<String>,
    /// Parallel SMTP connections [default: smtp.concurrency]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: Option<u16>,
    /// Messages per second over all connections [default: smtp.rate_per_s]
    #[arg(long, value_name = "N/s")]
    pub rate: Option<String>,
    /// Also retry recipients that failed permanently before
    #[arg(long)]
    pub retry_failed: bool,
    /// Print a machine-readable summary
    #[arg(long)]
    pub json: bool,
    /// With --dry-run: write every reader's message (by default the first 100, and each
    /// variant of the digest once: a million readers would be a million files)
    #[arg(long, requires = "dry_run")]
    pub all_messages: bool,
    /// With --dry-run: also write this reader's message (repeatable)
    #[arg(long = "as", value_name = "EMAIL", requires = "dry_run")]
    pub as_readers: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Print the subscribers as a table, or JSON
    #[command(
        after_help = "Examples:\n  digestif subscribers list\n  digestif subscribers list --category Marketing --status active --json"
    )]
    List {
        /// Only subscribers who receive this category
        #[arg(long, value_name = "C")]
        category: Option<String>,
        /// Only subscribers with this status
        #[arg(long, value_name = "S", value_parser = ["active", "unsubscribed", "bounced"])]
        status: Option<String>,
        /// The requests from the subscribe form still waiting for their confirmation
        /// instead (not in the list yet)
        #[arg(long, conflicts_with_all = ["category", "status"])]
        pending: bool,
        /// JSON array instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Add a subscriber at the end of the file
    #[command(
        after_help = "Examples:\n  digestif subscribers add camille@example.org --name 'Camille Durand'\n  digestif subscribers add lea@example.org --category 'Relation client' --format text"
    )]
    Add {
        email: String,
        /// Name used in the greeting
        #[arg(long, value_name = "N")]
        name: Option<String>,
        /// Only this category (repeat for several); none = every category
        #[arg(long = "category", value_name = "C")]
        categories: Vec<String>,
        /// html (HTML with a text alternative) or text
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
        /// Language of this reader's digest (fr, en)
        #[arg(long, value_name = "LANG")]
        language: Option<String>,
        /// Re-activate an address that had unsubscribed
        #[arg(long)]
        resubscribe: bool,
    },
    /// Delete a subscriber's entry
    #[command(after_help = "Example:\n  digestif subscribers remove camille@example.org")]
    Remove { email: String },
    /// Keep the entry but mark it status = "unsubscribed"
    #[command(after_help = "Example:\n  digestif subscribers unsubscribe camille@example.org")]
    Unsubscribe { email: String },
    /// Print all that is held about one person: the list entry, requests to leave,
    /// bounces, and every week of the send ledger
    #[command(
        after_help = "Examples:\n  digestif subscribers show camille@example.org\n  digestif subscribers show camille@example.org --json"
    )]
    Show {
        email: String,
        /// JSON instead of lines
        #[arg(long)]
        json: bool,
    },
    /// Forget one person (right to erasure): their entry is removed and their address is
    /// erased from the state; a keyed hash is kept so an import never adds them back
    #[command(after_help = "Example:\n  digestif subscribers forget camille@example.org")]
    Forget { email: String },
    /// Merge a CSV export (header row; Mailchimp and listmonk column names understood)
    #[command(
        after_help = "Examples:\n  digestif subscribers import mailchimp-export.csv --dry-run\n  digestif subscribers import listmonk.csv"
    )]
    Import {
        file: PathBuf,
        /// Show what would be added and skipped, change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Print every subscriber as JSON, or CSV
    #[command(
        after_help = "Examples:\n  digestif subscribers export > backup.json\n  digestif subscribers export --csv > subscribers.csv"
    )]
    Export {
        /// CSV with a header row instead of JSON
        #[arg(long)]
        csv: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    Html,
    Text,
}

impl From<FormatArg> for crate::audience::subscribers::Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Html => crate::audience::subscribers::Format::Html,
            FormatArg::Text => crate::audience::subscribers::Format::Text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
