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

use super::subscribers::Catalog;
use crate::cli::SendArgs;
use crate::config::{Config, LedgerSync};
use crate::digest::Week;
use crate::error::{exit, Error, Result};
use crate::lock::Lock;
use crate::mail::Format;
use crate::render::Renderer;
use crate::send::{Composer, Engine, RetryPolicy, RunStats, Unsubscribe};
use crate::smtp::TransportSettings;
use crate::state::{AudienceRow, FrozenVariant, Ledger, Problem, Recipient};
use crate::subscribers::{self, Subscriber};
use crate::templates::Templates;
use crate::token::Secret;
use crate::{fsutil, Site};

/// The rendered variants and the audience of one week, ready to freeze.
struct Plan {
    variants: Vec<FrozenVariant>,
    /// Each audience member's variant, in audience order (`None`: nothing for them).
    ids: Vec<Option<i64>>,
    content_hash: String,
}

/// What makes two subscribers' messages differ beyond greeting and links:
/// chosen categories (sorted), format, language.
type VariantKey = (Option<Vec<String>>, Format, String);

/// Render one variant per distinct (categories, format, language) and assign everyone.
fn plan(site: &Site, audience: &[&Subscriber], week: Week, now: DateTime<Utc>) -> Result<Plan> {
    let digest = site.digest(week, now);
    if digest.is_empty() {
        return Err(Error::EmptyWeek(week.to_string()));
    }
    let mut renderers: HashMap<String, Renderer> = HashMap::new();
    let mut ids: HashMap<VariantKey, Option<i64>> = HashMap::new();
    let mut variants = Vec::new();
    let mut rows = Vec::with_capacity(audience.len());
    // Only the variant ids are kept; ledger rows are made one at a time while freezing.
    let mut hash = Sha256::new();
    for s in audience {
        let language = s
            .language
            .clone()
            .unwrap_or_else(|| site.config.language.clone());
        let mut categories = s.categories.clone();
        if let Some(c) = categories.as_mut() {
            c.sort();
        }
        let key = (categories.clone(), s.format, language.clone());
        let id = match ids.get(&key) {
            Some(id) => *id,
            None => {
                let only = digest.only(categories.as_deref());
                let id = if only.is_empty() {
                    None
                } else {
                    if !renderers.contains_key(&language) {
                        let templates = Templates::load(&site.config.templates_dir, &language)?;
                        renderers.insert(language.clone(), Renderer::new(&site.config, templates));
                    }
                    let renderer = &renderers[&language];
                    let rendered = renderer.render(&only)?;
                    let strings = &renderer.templates().strings;
                    let variant = FrozenVariant {
                        id: variants.len() as i64,
                        subject: rendered.subject,
                        html: (s.format == Format::Html).then_some(rendered.html),
                        text: rendered.text,
                        greeting_named: strings.greeting.clone(),
                        greeting_anonymous: strings.greeting_anonymous.clone(),
                    };
                    for part in [
                        variant.subject.as_str(),
                        variant.html.as_deref().unwrap_or(""),
                        &variant.text,
                    ] {
                        hash.update(part.as_bytes());
                        hash.update([0]);
                    }
                    variants.push(variant);
                    Some(variants.len() as i64 - 1)
                };
                ids.insert(key, id);
                id
            }
        };
        rows.push(id);
    }
    let content_hash = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Plan {
        variants,
        ids: rows,
        content_hash,
    })
}

impl Plan {
    /// The ledger rows of `audience`, made as they are inserted.
    fn rows<'a>(
        &'a self,
        audience: &'a [&'a Subscriber],
    ) -> impl Iterator<Item = AudienceRow> + 'a {
        audience.iter().zip(&self.ids).map(|(s, id)| AudienceRow {
            key: s.key(),
            email: s.email.to_string(),
            name: s.name.clone(),
            variant: *id,
        })
    }
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
        return Ok(vec![week]);
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

/// The subscribers this run is for: every active one, or those named by `--to`.
fn audience<'a>(list: &'a [Subscriber], to: &[String]) -> Result<Vec<&'a Subscriber>> {
    if to.is_empty() {
        return Ok(list.iter().filter(|s| s.is_active()).collect());
    }
    let mut chosen = Vec::new();
    for email in to {
        let address: lettre::Address = email
            .parse()
            .map_err(|e| Error::Usage(format!("--to {email:?}: not a valid address ({e})")))?;
        let key = subscribers::address_key(&address);
        match list.iter().find(|s| s.key() == key) {
            Some(s) if s.is_active() => chosen.push(s),
            Some(_) => {
                return Err(Error::Usage(format!(
                    "--to {email}: this subscriber is unsubscribed"
                )))
            }
            None => {
                return Err(Error::Usage(format!(
                    "--to {email}: not in the subscribers file"
                )))
            }
        }
    }
    Ok(chosen)
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
        println!("{line}");
        for p in &self.problems {
            println!(
                "  {:<8} {}: {}",
                p.state,
                p.email,
                p.last_error.as_deref().unwrap_or("")
            );
        }
        if let Some(why) = &self.run.stopped {
            println!("  {why}");
        }
        if self.run.interrupted {
            println!("  interrupted: run `digestif send` again to finish");
        }
    }
}

pub fn run(config_path: &Path, args: SendArgs, now: DateTime<Utc>) -> Result<ExitCode> {
    let site = Site::load(config_path)?;
    let config = &site.config;
    let catalog = Catalog::from_posts(config, &site.posts);
    let list = catalog.with(|k| subscribers::load(&config.subscribers, k))?;
    let audience = audience(&list, &args.to)?;
    let unsubscribe = unsubscribe_settings(config)?;
    if args.dry_run {
        let ledger = Ledger::open_read_only(&config.state_dir)?;
        let weeks = select_weeks(&site, ledger.as_ref(), &args, now)?;
        return dry_run(&site, &audience, &unsubscribe, &weeks, &args, now);
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
    let weeks: Vec<Week> = weeks
        .into_iter()
        .filter(|w| {
            !(kind == "real"
                && ledger
                    .real_weeks(args.retry_failed)
                    .is_ok_and(|r| r.contains(&(*w, false))))
        })
        .collect();
    if weeks.is_empty() {
        if args.json {
            println!("{}", serde_json::json!({ "weeks": [], "exit_code": 0 }));
        } else {
            println!("nothing new to send");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // A second signal while finishing ends the process at once.
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop));
        let _ = signal_hook::flag::register(signal, Arc::clone(&stop));
    }
    let mut active: Option<HashSet<String>> = None;
    let mut reports = Vec::new();
    for week in weeks {
        // A week frozen now has only active subscribers in its audience; one frozen by an
        // earlier run is checked against the list as it is today.
        let mut resumed = true;
        if !ledger.is_frozen(week, &kind)? {
            resumed = false;
            let plan = plan(&site, &audience, week, now)?;
            ledger.freeze(
                week,
                &kind,
                &plan.content_hash,
                &plan.variants,
                plan.rows(&audience),
            )?;
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
            active: if resumed {
                Some(
                    active
                        .get_or_insert_with(|| {
                            list.iter()
                                .filter(|s| s.is_active())
                                .map(Subscriber::key)
                                .collect()
                        })
                        .clone(),
                )
            } else {
                None
            },
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
        let halt = report.run.interrupted || report.run.stopped.is_some();
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
        println!(
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
    audience: &[&Subscriber],
    unsubscribe: &Unsubscribe,
    weeks: &[Week],
    args: &SendArgs,
    now: DateTime<Utc>,
) -> Result<ExitCode> {
    if weeks.is_empty() {
        println!("nothing new to send");
        return Ok(ExitCode::SUCCESS);
    }
    let mut summaries = Vec::new();
    for &week in weeks {
        let plan = plan(site, audience, week, now)?;
        let dir = args.out.join(week.to_string());
        fsutil::create_dir_all(&dir)?;
        crate::write_preview_parts(site, week, now, &args.out, !args.json)?;
        let composer = Composer::new(
            week,
            "real",
            &site.config.sender,
            unsubscribe,
            plan.variants.clone(),
        );
        let (mut messages, mut bytes, mut skipped) = (0usize, 0u64, 0usize);
        for (seq, row) in plan.rows(audience).enumerate() {
            let Some(variant) = row.variant else {
                skipped += 1;
                continue;
            };
            let r = Recipient {
                seq: seq as i64,
                key: row.key.clone(),
                email: row.email.clone(),
                name: row.name.clone(),
                variant,
                state: "pending".into(),
                attempts: 0,
            };
            let (_, eml, _) = composer.compose(&r)?;
            let path = dir.join(format!("{:05}-{}.eml", seq + 1, safe_file_name(&row.email)));
            fsutil::write_atomic(&path, &eml)?;
            if !args.json {
                println!("{}", path.display());
            }
            messages += 1;
            bytes += eml.len() as u64;
        }
        let summary = serde_json::json!({
            "week": week.to_string(), "recipients": plan.ids.len(), "skipped": skipped,
            "messages": messages, "bytes": bytes, "out": dir.display().to_string(),
        });
        if !args.json {
            println!(
                "dry run {week}: {} recipients, {skipped} skipped (no post in their categories), {messages} messages, {bytes} bytes; nothing sent",
                plan.ids.len()
            );
        }
        summaries.push(summary);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "dry_run": true, "weeks": summaries })
            )
            .unwrap_or_default()
        );
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
