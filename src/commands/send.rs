//! `digestif send` and `digestif status`: choose the weeks, freeze each one (content and
//! audience) in the ledger, run the engine, report for people and for cron.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::cli::SendArgs;
use crate::config::{Config, LedgerSync};
use crate::digest::Week;
use crate::error::{exit, Error, Result};
use crate::fsutil;
use crate::ledger::{AudienceRow, FrozenVariant, Ledger, Problem};
use crate::lock::Lock;
use crate::render::Renderer;
use crate::send::{Composer, Engine, RetryPolicy, RunStats, Unsubscribe};
use crate::site::Site;
use crate::smtp::TransportSettings;
use crate::subscribers::Catalog;
use crate::subscribers::Format;
use crate::subscribers::{self, Subscriber};
use crate::templates::Templates;
use crate::token::Secret;

/// Print a line of the report. `send` keeps SIGPIPE ignored so that it always finishes and
/// records what is in flight; a closed stdout (`digestif send | head`) must not turn the
/// report into a panic, so write errors are ignored.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// What makes two subscribers' messages differ beyond greeting and links:
/// chosen categories (sorted), format, language.
type VariantKey = (Option<Vec<String>>, Format, String);

/// Renders each distinct variant of a week once, the first time a subscriber needs it.
struct Variants<'s> {
    site: &'s Site,
    digest: crate::digest::Digest<'s>,
    renderers: HashMap<String, Renderer>,
    ids: HashMap<VariantKey, Option<i64>>,
    rendered: Vec<FrozenVariant>,
    hash: Sha256,
}

impl<'s> Variants<'s> {
    fn new(site: &'s Site, week: Week, now: DateTime<Utc>) -> Result<Variants<'s>> {
        let digest = site.digest(week, now);
        if digest.is_empty() {
            return Err(Error::EmptyWeek(week.to_string()));
        }
        Ok(Variants {
            site,
            digest,
            renderers: HashMap::new(),
            ids: HashMap::new(),
            rendered: Vec::new(),
            hash: Sha256::new(),
        })
    }

    /// The variant `s` gets; `None` when none of their categories has a post this week.
    fn id_for(&mut self, s: &Subscriber) -> Result<Option<i64>> {
        let language = s
            .language
            .clone()
            .unwrap_or_else(|| self.site.config.language.clone());
        let mut categories = s.categories.clone();
        if let Some(c) = categories.as_mut() {
            c.sort();
        }
        let key = (categories, s.format, language);
        if let Some(id) = self.ids.get(&key) {
            return Ok(*id);
        }
        let only = self.digest.only(key.0.as_deref());
        let id = if only.is_empty() {
            None
        } else {
            Some(self.render(&only, s.format, &key.2)?)
        };
        self.ids.insert(key, id);
        Ok(id)
    }

    fn render(
        &mut self,
        digest: &crate::digest::Digest<'_>,
        format: Format,
        language: &str,
    ) -> Result<i64> {
        if !self.renderers.contains_key(language) {
            let templates = Templates::load(&self.site.config.templates_dir, language)?;
            self.renderers.insert(
                language.to_string(),
                Renderer::new(&self.site.config, templates),
            );
        }
        let renderer = &self.renderers[language];
        let rendered = renderer.render(digest)?;
        let strings = &renderer.templates().strings;
        let variant = FrozenVariant {
            id: self.rendered.len() as i64,
            subject: rendered.subject,
            html: (format == Format::Html).then_some(rendered.html),
            text: rendered.text,
            greeting_named: strings.greeting.clone(),
            greeting_anonymous: strings.greeting_anonymous.clone(),
        };
        for part in [
            variant.subject.as_str(),
            variant.html.as_deref().unwrap_or(""),
            &variant.text,
        ] {
            self.hash.update(part.as_bytes());
            self.hash.update([0]);
        }
        self.rendered.push(variant);
        Ok(self.rendered.len() as i64 - 1)
    }

    /// The rendered variants and a hash of their content.
    fn finish(self) -> (Vec<FrozenVariant>, String) {
        let hash = self
            .hash
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (self.rendered, hash)
    }
}

/// Who a run is for: every active subscriber, or only those named by `--to`.
struct Audience {
    /// Address keys asked for with `--to`, with the address as typed.
    only: Option<HashMap<String, String>>,
    found: HashSet<String>,
    unsubscribed: HashSet<String>,
}

impl Audience {
    fn new(to: &[String]) -> Result<Audience> {
        let mut only = HashMap::new();
        for email in to {
            let address: lettre::Address = email
                .parse()
                .map_err(|e| Error::Usage(format!("--to {email:?}: not a valid address ({e})")))?;
            only.insert(subscribers::address_key(&address), email.clone());
        }
        Ok(Audience {
            only: (!to.is_empty()).then_some(only),
            found: HashSet::new(),
            unsubscribed: HashSet::new(),
        })
    }

    fn wants(&mut self, s: &Subscriber) -> bool {
        let Some(only) = &self.only else {
            return s.is_active();
        };
        let key = s.key();
        if !only.contains_key(&key) {
            return false;
        }
        if !s.is_active() {
            self.unsubscribed.insert(key);
            return false;
        }
        self.found.insert(key);
        true
    }

    /// Every `--to` address must be an active subscriber.
    fn check(&self) -> Result<()> {
        for (key, email) in self.only.iter().flatten() {
            if self.unsubscribed.contains(key) {
                return Err(Error::Usage(format!(
                    "--to {email}: this subscriber is unsubscribed"
                )));
            }
            if !self.found.contains(key) {
                return Err(Error::Usage(format!(
                    "--to {email}: not in the subscribers file"
                )));
            }
        }
        Ok(())
    }
}

/// Freeze `week`: stream the subscriber list once, validating it, rendering each variant
/// when first needed and recording the audience; any problem undoes the whole freeze.
fn freeze_week(
    site: &Site,
    catalog: &Catalog,
    ledger: &mut Ledger,
    week: Week,
    kind: &str,
    to: &[String],
    now: DateTime<Utc>,
) -> Result<()> {
    let mut variants = Variants::new(site, week, now)?;
    let mut audience = Audience::new(to)?;
    let freezer = std::cell::RefCell::new(ledger.freezer(week, kind)?);
    let failure: std::cell::RefCell<Option<Error>> = std::cell::RefCell::new(None);
    let problems = catalog.with(|known| {
        subscribers::stream(
            &site.config.subscribers,
            known,
            &mut |key, line| {
                freezer.borrow().seen(key, line).unwrap_or_else(|e| {
                    failure.borrow_mut().get_or_insert(e);
                    None
                })
            },
            &mut |sub| {
                if failure.borrow().is_some() || !audience.wants(&sub) {
                    return;
                }
                let added = variants.id_for(&sub).and_then(|variant| {
                    freezer.borrow_mut().add(&AudienceRow {
                        key: sub.key(),
                        email: sub.email.to_string(),
                        name: sub.name,
                        variant,
                    })
                });
                if let Err(e) = added {
                    failure.borrow_mut().get_or_insert(e);
                }
            },
        )
    })?;
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    audience.check()?;
    let (rendered, hash) = variants.finish();
    freezer.into_inner().finish(&hash, &rendered)
}

/// For a week frozen by an earlier run: skip the recipients who left since, after checking
/// that the list is still valid.
fn skip_departed(
    site: &Site,
    catalog: &Catalog,
    ledger: &mut Ledger,
    week: Week,
    kind: &str,
) -> Result<()> {
    let mut problems = Vec::new();
    ledger.skip_departed(week, kind, |emit| {
        let mut seen: HashMap<String, usize> = HashMap::new();
        problems = catalog.with(|known| {
            subscribers::stream(
                &site.config.subscribers,
                known,
                &mut |key, line| subscribers::first_seen(&mut seen, key, line),
                &mut |sub| {
                    if sub.is_active() {
                        emit(&sub.key());
                    }
                },
            )
        })?;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(std::mem::take(&mut problems)))
        }
    })?;
    Ok(())
}

/// Which weeks a run sends.
fn select_weeks(
    site: &Site,
    ledger: Option<&Ledger>,
    args: &SendArgs,
    now: DateTime<Utc>,
) -> Result<Vec<Week>> {
    let tz = site.config.timezone;
    if let Some(week) = args.week {
        if site.digest(week, now).is_empty() {
            return Err(Error::EmptyWeek(week.to_string()));
        }
        // A real send of a week already sent to everyone has nothing left to do.
        let finished = match ledger {
            Some(l) if args.to.is_empty() => {
                l.real_weeks(args.retry_failed)?.contains(&(week, false))
            }
            _ => false,
        };
        return Ok(if finished { vec![] } else { vec![week] });
    }
    if !args.to.is_empty() {
        // A test send previews the latest week with posts, finished or not.
        return Ok(site.latest_week(now).into_iter().collect());
    }
    let complete: Vec<Week> = crate::digest::weeks(&site.posts, tz, now)
        .into_iter()
        .map(|(w, _)| w)
        .filter(|w| w.is_complete(now, tz))
        .collect();
    let recorded = match ledger {
        Some(l) => l.real_weeks(args.retry_failed)?,
        None => Vec::new(),
    };
    let Some(first) = recorded.first().map(|(w, _)| *w) else {
        // First use: only the last complete week, never the whole archive.
        return Ok(complete.first().copied().into_iter().collect());
    };
    let known: HashSet<Week> = recorded.iter().map(|(w, _)| *w).collect();
    let mut weeks: Vec<Week> = recorded
        .iter()
        .filter(|(_, open)| *open)
        .map(|(w, _)| *w)
        .collect();
    weeks.extend(
        complete
            .into_iter()
            .filter(|w| *w > first && !known.contains(w)),
    );
    weeks.sort();
    weeks.dedup();
    Ok(weeks)
}

fn parse_rate(rate: Option<&str>, default: f64) -> Result<f64> {
    let Some(rate) = rate else { return Ok(default) };
    rate.trim_end_matches("/s")
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r >= 0.0)
        .ok_or_else(|| {
            Error::Usage(format!(
                "--rate: expected messages per second such as 20 or 20/s, found {rate:?}"
            ))
        })
}

fn unsubscribe_settings(config: &Config) -> Result<Unsubscribe> {
    let https = match &config.sender.unsubscribe_url {
        Some(url) => Some((
            url.clone(),
            Secret::from_env(&config.sender.unsubscribe_secret_env)?,
        )),
        None => None,
    };
    Ok(Unsubscribe {
        https,
        mailto: config.sender.unsubscribe_mailto.clone(),
        fallback: config.base_url.to_string(),
    })
}

/// One week's result, for the summary.
#[derive(Debug, Serialize)]
struct WeekReport {
    week: String,
    kind: String,
    counts: std::collections::BTreeMap<&'static str, usize>,
    possible_duplicates: usize,
    #[serde(flatten)]
    run: RunStats,
    problems: Vec<Problem>,
}

impl WeekReport {
    fn exit_code(&self) -> u8 {
        let open = self.counts["pending"] + self.counts["sending"] + self.counts["deferred"];
        if self.counts["failed"] > 0 || self.run.stopped.is_some() {
            exit::FAILURE
        } else if open > 0 || self.run.interrupted {
            exit::TEMPFAIL
        } else {
            exit::SUCCESS
        }
    }

    fn print(&self) {
        let c = &self.counts;
        let label = if self.kind == "real" {
            String::new()
        } else {
            " (test send)".to_string()
        };
        let mut line = format!(
            "{}{label}: {} sent, {} deferred, {} failed, {} skipped, {} unsubscribed; {} messages, {} bytes this run",
            self.week, c["sent"], c["deferred"], c["failed"], c["skipped"], c["unsubscribed"], self.run.messages, self.run.bytes
        );
        if c["pending"] + c["sending"] > 0 {
            line.push_str(&format!(
                "; {} not attempted yet",
                c["pending"] + c["sending"]
            ));
        }
        if self.possible_duplicates > 0 {
            line.push_str(&format!(
                "; {} possible duplicates (outcome unknown after a crash or timeout)",
                self.possible_duplicates
            ));
        }
        say!("{line}");
        for p in &self.problems {
            say!(
                "  {:<8} {}: {}",
                p.state,
                p.email,
                p.last_error.as_deref().unwrap_or("")
            );
        }
        for why in [&self.run.stopped, &self.run.unreachable]
            .into_iter()
            .flatten()
        {
            say!("  {why}");
        }
        if self.run.interrupted {
            say!("  interrupted: run `digestif send` again to finish");
        }
    }
}

pub fn run(config_path: &Path, args: SendArgs, now: DateTime<Utc>) -> Result<ExitCode> {
    let site = Site::load(config_path)?;
    let config = &site.config;
    let catalog = Catalog::from_posts(config, &site.posts);
    let unsubscribe = unsubscribe_settings(config)?;
    if args.dry_run {
        let ledger = Ledger::open_read_only(&config.state_dir)?;
        let weeks = select_weeks(&site, ledger.as_ref(), &args, now)?;
        return dry_run(&site, &catalog, &unsubscribe, &weeks, &args, now);
    }
    let concurrency = args
        .concurrency
        .map_or(config.smtp.concurrency, usize::from);
    let rate = parse_rate(args.rate.as_deref(), config.smtp.rate_per_s)?;
    let settings = TransportSettings::new(&config.smtp)?;
    let _lock = Lock::acquire(&config.state_dir)?;
    let full_sync = config.smtp.ledger_sync == LedgerSync::Full;
    let mut ledger = Ledger::open(&config.state_dir, full_sync)?;
    let weeks = select_weeks(&site, Some(&ledger), &args, now)?;
    let kind = if args.to.is_empty() {
        "real".to_string()
    } else {
        format!("test-{}", Utc::now().format("%Y%m%dT%H%M%S%.3fZ"))
    };
    if weeks.is_empty() {
        if args.json {
            say!("{}", serde_json::json!({ "weeks": [], "exit_code": 0 }));
        } else {
            say!("nothing new to send");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // A second signal while finishing ends the process at once.
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop));
        let _ = signal_hook::flag::register(signal, Arc::clone(&stop));
    }
    let mut reports = Vec::new();
    for week in weeks {
        if ledger.is_frozen(week, &kind)? {
            // Frozen by an earlier run: same content, same list, minus readers who left.
            skip_departed(&site, &catalog, &mut ledger, week, &kind)?;
        } else {
            freeze_week(&site, &catalog, &mut ledger, week, &kind, &args.to, now)?;
        }
        let variants = ledger.variants(week, &kind)?;
        let todo = ledger.open_count(week, &kind, args.retry_failed)?;
        let engine = Engine {
            composer: Composer::new(week, &kind, &config.sender, &unsubscribe, variants),
            settings: &settings,
            state_dir: config.state_dir.clone(),
            full_sync,
            concurrency,
            rate_per_s: rate,
            retry: RetryPolicy {
                max_attempts: config.smtp.max_attempts,
                base_delay: Duration::from_millis(config.smtp.retry_delay_ms),
            },
            retry_failed: args.retry_failed,
            stop: Arc::clone(&stop),
            progress: progress_bar(todo as u64, args.json, week),
        };
        let run = engine.run()?;
        let (counts, possible_duplicates) = ledger.counts(week, &kind)?;
        let report = WeekReport {
            week: week.to_string(),
            kind: kind.clone(),
            counts,
            possible_duplicates,
            problems: ledger.problems(week, &kind)?,
            run,
        };
        if !args.json {
            report.print();
        }
        let halt = report.run.interrupted
            || report.run.stopped.is_some()
            || report.run.unreachable.is_some();
        reports.push(report);
        if halt {
            break;
        }
    }
    let code = reports
        .iter()
        .map(WeekReport::exit_code)
        .max_by_key(|c| match *c {
            exit::FAILURE => 2,
            exit::TEMPFAIL => 1,
            _ => 0,
        });
    let code = code.unwrap_or(exit::SUCCESS);
    if args.json {
        say!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "weeks": reports, "exit_code": code })
            )
            .unwrap_or_default()
        );
    }
    Ok(ExitCode::from(code))
}

fn progress_bar(len: u64, json: bool, week: Week) -> indicatif::ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix} [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(week.to_string());
    bar
}

/// `--dry-run`: every message exactly as it would be sent, written under `args.out`.
fn dry_run(
    site: &Site,
    catalog: &Catalog,
    unsubscribe: &Unsubscribe,
    weeks: &[Week],
    args: &SendArgs,
    now: DateTime<Utc>,
) -> Result<ExitCode> {
    if weeks.is_empty() {
        say!("nothing new to send");
        return Ok(ExitCode::SUCCESS);
    }
    // The same freeze as a real send, into a throwaway ledger: the list is streamed, and
    // the messages are exactly those a send would build.
    let scratch = tempfile::tempdir()
        .map_err(|e| Error::io("create a temporary folder in", &std::env::temp_dir(), e))?;
    let mut ledger = Ledger::open(scratch.path(), false)?;
    let mut summaries = Vec::new();
    for &week in weeks {
        freeze_week(site, catalog, &mut ledger, week, "real", &args.to, now)?;
        let dir = args.out.join(week.to_string());
        fsutil::create_dir_all(&dir)?;
        super::preview::write_parts(site, week, now, &args.out, !args.json)?;
        let composer = Composer::new(
            week,
            "real",
            &site.config.sender,
            unsubscribe,
            ledger.variants(week, "real")?,
        );
        let (mut messages, mut bytes, mut after) = (0usize, 0u64, -1);
        loop {
            let batch = ledger.next_batch(week, "real", after, 512, false)?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for r in &batch {
                let (_, eml, _) = composer.compose(r)?;
                let path = dir.join(format!("{:05}-{}.eml", r.seq + 1, safe_file_name(&r.email)));
                fsutil::write_atomic(&path, &eml)?;
                if !args.json {
                    say!("{}", path.display());
                }
                messages += 1;
                bytes += eml.len() as u64;
            }
        }
        let (counts, _) = ledger.counts(week, "real")?;
        let (recipients, skipped) = (counts.values().sum::<usize>(), counts["skipped"]);
        if !args.json {
            say!(
                "dry run {week}: {recipients} recipients, {skipped} skipped (no post in their categories), {messages} messages, {bytes} bytes; nothing sent"
            );
        }
        summaries.push(serde_json::json!({
            "week": week.to_string(), "recipients": recipients, "skipped": skipped,
            "messages": messages, "bytes": bytes, "out": dir.display().to_string(),
        }));
    }
    if args.json {
        let all = serde_json::json!({ "dry_run": true, "weeks": summaries });
        say!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
    }
    Ok(ExitCode::SUCCESS)
}

/// An address as a file name: no path separators or control characters.
fn safe_file_name(email: &str) -> String {
    email
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "@._+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
