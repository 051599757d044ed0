//! `digestif check`: validate the config, every post, the notes, the templates and the
//! subscribers, and every setting `send` would refuse; list every problem at once.
//! `--smtp` also tries the connection.

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use crate::audience::token::{self, Purpose};
use crate::clock::Clock;
use crate::config::Config;
use crate::delivery::transport::TransportSettings;
use crate::error::{exit, Diagnostic, Error, Result};
use crate::mail::no_way_out;
use crate::site;

mod links;

/// What `check --json` prints.
#[derive(Debug, Default, Serialize)]
struct Report {
    ok: bool,
    config: String,
    posts: usize,
    published: usize,
    drafts: usize,
    scheduled: usize,
    /// Past their expiry date (Hugo's `expiryDate`): the site no longer has their page.
    expired: usize,
    subscribers: usize,
    subscribers_file: String,
    defaults: Vec<String>,
    warnings: Vec<String>,
    problems: Vec<String>,
    /// Files under posts_dir that are not posts (a section index, a page), and why.
    skipped: Vec<String>,
    smtp: Vec<String>,
    /// `--links`: one line per link of the latest complete week, with what the web answered.
    links: Vec<String>,
    /// `[dkim]`: the TXT record to publish (name, text).
    dkim: Option<(String, String)>,
}

/// What `check` does beyond the files: `--smtp`, `--links`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Extra {
    pub smtp: bool,
    pub links: bool,
}

/// `digestif check [--smtp] [--json]`.
pub(crate) fn run(config_path: &Path, extra: Extra, json: bool, clock: Clock) -> Result<ExitCode> {
    // A config with mistakes still gives what it can, so the posts' and the subscribers'
    // problems are reported in the same run.
    let (config, mut problems) = Config::load_partial(config_path)?;
    let Some(config) = config else {
        return config_unreadable(config_path, problems, json);
    };
    let config_ok = problems.is_empty();
    if config_ok {
        super::fold_waiting(&config, &site::catalog(&config), clock);
    }
    let found = site::inspect(&config, super::feed_mode(false))?;
    problems.extend(found.problems.iter().cloned());
    // With mistakes in the config, what it says of the whole newsletter (no posts where
    // it looked, a default host) may come from them: only the files' own warnings stay.
    let mut warnings = found.warnings.clone();
    if !config_ok {
        warnings.retain(|w| !w.path.as_os_str().is_empty());
    }
    // What `send` checks before it connects: the same calls, so the two cannot disagree.
    // Not with a config that has mistakes: its stand-in values would only add follow-ons.
    let settings = if config_ok {
        sending_settings(&config, &mut problems)
    } else {
        None
    };
    if found.active == 0 && problems.is_empty() {
        // Said only when nothing else stops a send, so it is never a follow-on.
        warnings.push(Diagnostic::new(
            &config.subscribers,
            "no active reader: `send` would reach nobody, so it stops (exit 2) and keeps the \
             week to send",
        ));
    }
    let dkim = dkim_record(&config, config_ok, &mut problems);
    let mut report = Report::of(&config, &found, &warnings, clock.start());
    report.dkim = dkim;
    let warnings_shown: Vec<String> = warnings.iter().map(warning_text).collect();
    if !problems.is_empty() {
        if json {
            report.problems = problems.iter().map(ToString::to_string).collect();
            return Ok(print_json(&report, exit::INPUT));
        }
        for warning in &warnings_shown {
            warn!("{warning}");
        }
        return Err(Error::Invalid(problems));
    }
    if let Some(settings) = settings.as_ref().filter(|_| extra.smtp) {
        match settings.probe() {
            Ok(steps) => report.smtp = steps,
            Err(e) if json => {
                report.problems.push(e.to_string());
                return Ok(print_json(&report, e.exit_code()));
            }
            Err(e) => {
                print_human(&report, &warnings_shown);
                return Err(e);
            }
        }
    }
    let broken = if extra.links {
        links::check(&config, &found.posts, clock.start(), &mut report)
    } else {
        Vec::new()
    };
    finish(report, broken, &warnings_shown, json)
}

/// Print what `check` found, after the links were checked (or not).
fn finish(
    mut report: Report,
    broken: Vec<Diagnostic>,
    warnings_shown: &[String],
    json: bool,
) -> Result<ExitCode> {
    report.ok = broken.is_empty();
    if json {
        report.problems = broken.iter().map(ToString::to_string).collect();
        let code = if broken.is_empty() {
            exit::SUCCESS
        } else {
            exit::INPUT
        };
        return Ok(print_json(&report, code));
    }
    print_human(&report, warnings_shown);
    if !broken.is_empty() {
        return Err(Error::Invalid(broken));
    }
    Ok(ExitCode::SUCCESS)
}

impl Report {
    /// What `check` found, before the SMTP probe; `ok` is decided at the end.
    fn of(
        config: &Config,
        found: &site::Inspection,
        warnings: &[Diagnostic],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Report {
        let posts = &found.posts;
        let published = posts.iter().filter(|p| p.is_published(now)).count();
        let drafts = posts.iter().filter(|p| p.draft).count();
        let expired = posts
            .iter()
            .filter(|p| !p.draft && p.is_expired(now))
            .count();
        Report {
            config: config.path.display().to_string(),
            subscribers_file: config.subscribers.display().to_string(),
            defaults: config.defaults.clone(),
            posts: posts.len(),
            published,
            drafts,
            scheduled: posts.len() - published - drafts - expired,
            expired,
            subscribers: found.subscribers,
            warnings: warnings.iter().map(warning_line).collect(),
            skipped: found
                .skipped
                .iter()
                .map(|(path, why)| format!("{}: {why}", path.display()))
                .collect(),
            ..Report::default()
        }
    }
}

/// A config that is not TOML at all: its problems, and nothing else to check.
fn config_unreadable(path: &Path, problems: Vec<Diagnostic>, json: bool) -> Result<ExitCode> {
    if !json {
        return Err(Error::Invalid(problems));
    }
    let report = Report {
        config: path.display().to_string(),
        problems: problems.iter().map(ToString::to_string).collect(),
        ..Report::default()
    };
    Ok(print_json(&report, exit::INPUT))
}

/// What `send` checks before it connects; the settings for `--smtp` when they are usable.
fn sending_settings(config: &Config, problems: &mut Vec<Diagnostic>) -> Option<TransportSettings> {
    let settings = match TransportSettings::new(&config.smtp, &config.sender.from.email) {
        Ok(settings) => Some(settings),
        Err(e) => {
            problems.push(setting_problem(config, &e));
            None
        }
    };
    if let Err(e) = token::secret_for(&config.sender, Purpose::Sign).and(no_way_out(config)) {
        problems.push(setting_problem(config, &e));
    }
    settings
}

/// `[dkim]`'s key read as `send` reads it; the TXT record to publish.
fn dkim_record(
    config: &Config,
    config_ok: bool,
    problems: &mut Vec<Diagnostic>,
) -> Option<(String, String)> {
    let dkim = config.dkim.as_ref().filter(|_| config_ok)?;
    match crate::mail::Signer::load(dkim) {
        Ok(signer) => Some(signer.dns_record()),
        Err(e) => {
            problems.push(setting_problem(config, &e));
            None
        }
    }
}

/// A setting `send` would refuse, as a problem of the config file.
fn setting_problem(config: &Config, e: &Error) -> Diagnostic {
    Diagnostic::new(&config.path, e.to_string())
}

/// A warning on one line, for `--json`: a newsletter-wide one without a place.
fn warning_line(d: &Diagnostic) -> String {
    if d.path.as_os_str().is_empty() {
        d.message.clone()
    } else {
        d.to_string()
    }
}

/// A warning as a person reads it: with its source line and hint when it has them.
fn warning_text(d: &Diagnostic) -> String {
    if d.path.as_os_str().is_empty() {
        d.message.clone()
    } else {
        d.report()
    }
}

fn print_human(report: &Report, warnings: &[String]) {
    for warning in warnings {
        warn!("{warning}");
    }
    say!("ok: {}", report.config);
    if !report.defaults.is_empty() {
        say!("  defaults used: {}", report.defaults.join(", "));
    }
    let expired = match report.expired {
        0 => String::new(),
        n => format!(", expired: {n}"),
    };
    say!(
        "ok: {} posts (published: {}, drafts: {}, scheduled: {}{expired})",
        report.posts,
        report.published,
        report.drafts,
        report.scheduled
    );
    if !report.skipped.is_empty() {
        say!("  not posts, skipped: {}", report.skipped.len());
        for skipped in &report.skipped {
            say!("    {skipped}");
        }
    }
    say!(
        "ok: {} ({} subscribers)",
        report.subscribers_file,
        report.subscribers
    );
    say!("ok: sending settings (what `send` checks before it connects)");
    for step in &report.smtp {
        say!("ok: smtp: {step}");
    }
    if let Some((name, text)) = &report.dkim {
        say!("ok: dkim: every message is signed; publish this TXT record at {name}:");
        say!("  \"{text}\"");
    }
    for line in &report.links {
        say!("{line}");
    }
}

fn print_json(report: &Report, code: u8) -> ExitCode {
    emit!(
        "{}",
        serde_json::to_string_pretty(report).unwrap_or_default()
    );
    ExitCode::from(code)
}
