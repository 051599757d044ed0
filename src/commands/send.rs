//! `digestif send`: choose the weeks, freeze each one (content and audience) in the
//! ledger, run the engine, report for people and for cron. `--dry-run` is handed to
//! [`super::dry_run`] before anything is locked or opened for writing.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::audience::subscribers::Catalog;
use crate::audience::token::{self, Purpose};
use crate::campaign::{self, Ask};
use crate::cli::SendArgs;
use crate::clock::Clock;
use crate::config::LedgerSync;
use crate::engine::{Engine, RetryPolicy, RunStats};
use crate::error::{exit, Error, Result};
use crate::ledger::{Ledger, Problem};
use crate::mail::{no_way_out, Composer, Unsubscribe, NOT_CONFIGURED};
use crate::site::Site;
use crate::transport::TransportSettings;
use crate::week::Week;

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
        let lost = self.counts["failed"] + self.counts["unknown"];
        if lost > 0 || self.run.stopped.is_some() {
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

/// Why first use holds back an old week, and how to send it anyway.
fn too_old_notice(week: Week, site: &Site, now: DateTime<Utc>) -> String {
    format!(
        "the latest complete week with posts, {week}, ended {} days ago; on first use digestif \
         sends only a week that ended in the last {} days, so an old archive is not mailed \
         out. To send it anyway: digestif send --week {week}",
        week.days_since_end(now, site.config.timezone),
        campaign::FIRST_USE_MAX_AGE_DAYS,
    )
}

fn ask(args: &SendArgs) -> Ask {
    Ask {
        week: args.week,
        test_send: !args.to.is_empty(),
        retry_failed: args.retry_failed,
    }
}

/// `digestif send`.
pub(crate) fn run(config_path: &Path, args: SendArgs, clock: Clock) -> Result<ExitCode> {
    let now = clock.start();
    let site = Site::load(config_path, super::feed_mode(!args.dry_run))?;
    let config = &site.config;
    let catalog = Catalog::from_posts(config, &site.posts);
    let secret = token::secret_for(&config.sender, Purpose::Sign)?;
    let unsubscribe = Unsubscribe::new(&config.sender, secret);
    if args.dry_run {
        let ledger = Ledger::open_read_only(&config.state_dir)?;
        let selection = campaign::select_weeks(&site, ledger.as_ref(), ask(&args), now)?;
        let weeks = match selection.too_old {
            // A dry run is a look, not a mail-out: show the week, and say a send would not.
            Some(week) => {
                warn!("{}", too_old_notice(week, &site, now));
                vec![week]
            }
            None => selection.weeks,
        };
        super::ensure_weeks(&site, &weeks)?;
        if let Err(e) = no_way_out(config) {
            warn!("{e}; the previews link to {NOT_CONFIGURED}");
        }
        return super::dry_run::run(&site, &catalog, &unsubscribe, &weeks, &args, now);
    }
    let concurrency = args
        .concurrency
        .map_or(config.smtp.concurrency, usize::from);
    let rate = parse_rate(args.rate.as_deref(), config.smtp.rate_per_s)?;
    no_way_out(config)?;
    let settings = TransportSettings::new(&config.smtp, &config.sender.from.email)?;
    settings.prepare()?;
    // Readers who left while the list was locked are written in before it is read, and
    // those who leave during the send when the guard is dropped.
    let _guard = super::guard(config, &catalog, clock)?;
    let full_sync = config.smtp.ledger_sync == LedgerSync::Full;
    let mut ledger = Ledger::open(&config.state_dir)?;
    let selection = campaign::select_weeks(&site, Some(&ledger), ask(&args), now)?;
    let weeks = selection.weeks;
    super::ensure_weeks(&site, &weeks)?;
    detail!(
        "weeks to send: {}; transport: {:?} to {}, concurrency {concurrency}, rate {}",
        if weeks.is_empty() {
            "none".to_string()
        } else {
            weeks
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        },
        config.smtp.transport,
        config.smtp.host,
        if rate > 0.0 {
            format!("{rate}/s")
        } else {
            "unlimited".into()
        }
    );
    let kind = if args.to.is_empty() {
        "real".to_string()
    } else {
        // The wall clock, not `--now`: this names the run, so two test sends never share it.
        format!("test-{}", Utc::now().format("%Y%m%dT%H%M%S%.3fZ"))
    };
    if weeks.is_empty() {
        let held_back = selection.too_old.map(|w| w.to_string());
        if args.json {
            emit!(
                "{}",
                serde_json::json!({ "weeks": [], "exit_code": 0, "held_back": held_back })
            );
        } else if let Some(week) = selection.too_old {
            say!("nothing new to send: {}", too_old_notice(week, &site, now));
        } else {
            say!("nothing new to send");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let stop = Arc::new(AtomicBool::new(false));
    // SIGHUP too: a closed terminal or ssh session must not cut a transaction in half.
    for signal in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        // A second signal while finishing ends the process at once, with the shell's
        // status for a death by that signal (130 for a second Ctrl-C).
        let status = 128 + signal;
        let _ = signal_hook::flag::register_conditional_shutdown(signal, status, Arc::clone(&stop));
        let _ = signal_hook::flag::register(signal, Arc::clone(&stop));
    }
    let mut reports: Vec<WeekReport> = Vec::new();
    let mut late_error = false;
    for week in weeks {
        let report = match send_week(
            &site,
            &catalog,
            &mut ledger,
            &settings,
            &unsubscribe,
            &args,
            &kind,
            week,
            &stop,
            now,
            full_sync,
            concurrency,
            rate,
        ) {
            Ok(report) => report,
            Err(e) if reports.iter().any(|r| r.run.messages > 0) => {
                // Earlier weeks went out in this run: exit 2 ("nothing was sent") would be
                // false, so this is a failure of the run, reported with what was done.
                anstream::eprintln!("{}", e.report());
                late_error = true;
                break;
            }
            Err(e) => return Err(e),
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
    let mut code = code.unwrap_or(exit::SUCCESS);
    if late_error {
        code = exit::FAILURE;
    }
    if args.json {
        emit!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "weeks": reports, "exit_code": code })
            )
            .unwrap_or_default()
        );
    }
    Ok(ExitCode::from(code))
}

/// Freeze (or resume) one week and run the engine on it.
#[allow(clippy::too_many_arguments)]
fn send_week(
    site: &Site,
    catalog: &Catalog,
    ledger: &mut Ledger,
    settings: &TransportSettings,
    unsubscribe: &Unsubscribe,
    args: &SendArgs,
    kind: &str,
    week: Week,
    stop: &Arc<AtomicBool>,
    now: DateTime<Utc>,
    full_sync: bool,
    concurrency: usize,
    rate: f64,
) -> Result<WeekReport> {
    let config = &site.config;
    if ledger.is_frozen(week, kind)? {
        // Frozen by an earlier run: same content, same list, minus readers who left.
        campaign::skip_departed(site, catalog, ledger, week, kind)?;
    } else {
        let started = std::time::Instant::now();
        let audience = campaign::freeze_week(site, catalog, ledger, week, kind, &args.to, now)?;
        detail!(
            "froze {week}: {audience} recipients in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    // A run killed mid-transaction left those outcomes unknown: they are sent again.
    ledger.settle_interrupted(week, kind)?;
    let variants = ledger.variants(week, kind)?;
    // Counting what is left reads the whole audience: only for a bar someone sees.
    let todo = if shows_progress(args.json) {
        ledger.open_count(week, kind, args.retry_failed)?
    } else {
        0
    };
    let engine = Engine {
        composer: Composer::new(week, kind, &config.sender, unsubscribe, variants),
        connector: settings,
        state_dir: config.state_dir.clone(),
        full_sync,
        concurrency,
        rate_per_s: rate,
        retry: RetryPolicy {
            max_attempts: config.smtp.max_attempts,
            base_delay: Duration::from_millis(config.smtp.retry_delay_ms),
        },
        retry_failed: args.retry_failed,
        resend_unknown: config.smtp.resend_unknown,
        stop: Arc::clone(stop),
        progress: progress_bar(todo as u64, args.json, week),
    };
    let run = engine.run()?;
    let (counts, possible_duplicates) = ledger.counts(week, kind)?;
    // Another read of the whole audience, only when there is something to list.
    let problems = if counts["failed"] + counts["deferred"] + counts["unknown"] > 0 {
        ledger.problems(week, kind)?
    } else {
        Vec::new()
    };
    Ok(WeekReport {
        week: week.to_string(),
        kind: kind.to_string(),
        counts,
        possible_duplicates,
        problems,
        run,
    })
}

/// A progress bar is drawn only on a terminal, and never with `--json`.
fn shows_progress(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

fn progress_bar(len: u64, json: bool, week: Week) -> indicatif::ProgressBar {
    if !shows_progress(json) {
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
