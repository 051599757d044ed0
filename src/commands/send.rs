//! `digestif send`: resolve the plan, choose the weeks, freeze each one (content and
//! audience) in the ledger, run the engine, report for people and for cron. `--dry-run` is
//! handed to [`super::dry_run`] before anything is locked or opened for writing.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::audience::inbox;
use crate::audience::subscribers::Catalog;
use crate::audience::token::{self, Purpose};
use crate::cli::SendArgs;
use crate::clock::Clock;
use crate::delivery::campaign;
use crate::delivery::engine::{Engine, RunStats};
use crate::delivery::ledger::{journal, Counts, Ledger, Problem, State};
use crate::delivery::plan::{Overrides, SendPlan};
use crate::delivery::transport::{reached, TransportSettings};
use crate::error::{exit, Result};
use crate::kind::Kind;
use crate::mail::{no_way_out, Composer, Signer, Unsubscribe, NOT_CONFIGURED};
use crate::site::Site;
use crate::week::Week;

/// One week's result, for the summary.
#[derive(Debug, Serialize)]
struct WeekReport {
    week: String,
    kind: Kind,
    counts: Counts,
    possible_duplicates: usize,
    /// Failed because the relay said the address is wrong: marked bounced, not a failure
    /// of the run.
    hard_bounces: usize,
    #[serde(flatten)]
    run: RunStats,
    problems: Vec<Problem>,
}

impl WeekReport {
    /// The relay answered in this run: a message went out, or was refused by it.
    fn reached_the_relay(&self) -> bool {
        self.run.messages > 0 || self.counts.of(State::Failed) > 0
    }

    fn exit_code(&self) -> u8 {
        if self.counts.lost() > self.hard_bounces || self.run.stopped.is_some() {
            exit::FAILURE
        } else if self.counts.open() > 0 || self.run.interrupted {
            exit::TEMPFAIL
        } else {
            exit::SUCCESS
        }
    }

    fn print(&self) {
        let c = &self.counts;
        let label = if self.kind.is_real() {
            ""
        } else {
            " (test send)"
        };
        let mut line = format!(
            "{}{label}: {} sent, {} deferred, {} failed, {} skipped, {} unsubscribed; {} messages, {} this run",
            self.week,
            c.of(State::Sent),
            c.of(State::Deferred),
            c.of(State::Failed),
            c.of(State::Skipped),
            c.of(State::Unsubscribed),
            self.run.messages,
            crate::text::human_bytes(self.run.bytes)
        );
        if c.not_attempted() > 0 {
            line.push_str(&format!("; {} not attempted yet", c.not_attempted()));
        }
        if self.possible_duplicates > 0 {
            line.push_str(&format!(
                "; {} possible duplicates (outcome unknown after a crash or timeout)",
                self.possible_duplicates
            ));
        }
        say!("{line}");
        for p in &self.problems {
            let error = p.last_error.as_deref().unwrap_or("");
            say!("  {:<8} {}: {error}", p.state, p.email);
        }
        for why in [&self.run.stopped, &self.run.unreachable]
            .into_iter()
            .flatten()
        {
            say!("  {why}");
        }
        if self.hard_bounces > 0 {
            say!(
                "  {} refused as unknown addresses: marked bounced, never mailed again",
                self.hard_bounces
            );
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

/// `digestif send`.
pub(crate) fn run(config_path: &Path, args: SendArgs, clock: Clock) -> Result<ExitCode> {
    let site = Site::load(config_path, super::feed_mode(!args.dry_run))?;
    let config = &site.config;
    let overrides = Overrides {
        week: args.week,
        to: &args.to,
        concurrency: args.concurrency,
        rate: args.rate.as_deref(),
        retry_failed: args.retry_failed,
    };
    // The wall clock, not DIGESTIF_NOW: this names the run, so two test sends never share it.
    let plan = SendPlan::resolve(config, &overrides, Utc::now())?;
    let catalog = Catalog::from_posts(config, &site.posts);
    let secret = token::secret_for(&config.sender, Purpose::Sign)?;
    let unsubscribe =
        Unsubscribe::new(&config.sender, secret).with_preferences(config.web.url.as_ref());
    // The key is read before anything is sent: a missing or open key stops the run here.
    let signer = match (&config.dkim, args.dry_run) {
        (Some(dkim), false) => Some(Signer::load(dkim)?),
        _ => None,
    };
    let run = Run {
        site: &site,
        catalog: &catalog,
        unsubscribe: &unsubscribe,
        signer: signer.as_ref(),
        plan: &plan,
        args: &args,
        clock,
    };
    if args.dry_run {
        run.dry_run()
    } else {
        run.send()
    }
}

/// One `send` command's values, shared by its steps.
struct Run<'a> {
    site: &'a Site,
    catalog: &'a Catalog,
    unsubscribe: &'a Unsubscribe,
    /// `[dkim]`'s key, when messages are signed.
    signer: Option<&'a Signer>,
    plan: &'a SendPlan,
    args: &'a SendArgs,
    clock: Clock,
}

impl Run<'_> {
    /// A look, not a mail-out: the weeks a send would take, written as files.
    fn dry_run(&self) -> Result<ExitCode> {
        let (site, now) = (self.site, self.clock.start());
        let ledger = Ledger::open_read_only(&site.config.state_dir, self.clock)?;
        let selection = campaign::select_weeks(site, ledger.as_ref(), self.plan.ask(), now)?;
        let weeks = match selection.too_old {
            // Show the week, and say a send would not.
            Some(week) => {
                warn!("{}", too_old_notice(week, site, now));
                vec![week]
            }
            None => selection.weeks,
        };
        super::ensure_weeks(site, &weeks)?;
        if let Err(e) = no_way_out(&site.config) {
            warn!("{e}; the previews link to {NOT_CONFIGURED}");
        }
        let (catalog, unsubscribe) = (self.catalog, self.unsubscribe);
        super::dry_run::run(site, catalog, unsubscribe, &weeks, self.args, self.clock)
    }

    /// The real send: every week selected, one after the other.
    fn send(&self) -> Result<ExitCode> {
        let (site, now) = (self.site, self.clock.start());
        let config = &site.config;
        no_way_out(config)?;
        let settings = TransportSettings::new(&config.smtp, &config.sender.from.email)?;
        settings.prepare()?;
        // Readers who left while the list was locked are written in before it is read, and
        // those who leave during the send when the guard is dropped.
        let _guard = super::guard(config, self.catalog, self.clock)?;
        let mut ledger = Ledger::open(&config.state_dir, self.clock)?;
        let selection = campaign::select_weeks(site, Some(&ledger), self.plan.ask(), now)?;
        let weeks = selection.weeks;
        super::ensure_weeks(site, &weeks)?;
        self.say_what(&weeks);
        if weeks.is_empty() {
            return Ok(self.nothing_new(selection.too_old));
        }
        let stop = stop_on_signals();
        let finished = Arc::new(AtomicBool::new(false));
        end_stalled_stops(&stop, &finished, self.args.json);
        let mut reports: Vec<WeekReport> = Vec::new();
        let mut late_error = false;
        for week in weeks {
            let report = match self.send_week(&mut ledger, &settings, week, &stop) {
                Ok(report) => report,
                Err(e) if reports.iter().any(|r| r.run.messages > 0) => {
                    // Earlier weeks went out in this run: exit 2 ("nothing was sent")
                    // would be false, so this is a failure of the run, with what was done.
                    anstream::eprintln!("{}", e.report());
                    late_error = true;
                    break;
                }
                Err(e) => return Err(e),
            };
            let smtp = &self.site.config.smtp;
            let state_dir = &self.site.config.state_dir;
            if report.reached_the_relay() {
                reached::note_reached(state_dir, smtp)?;
            }
            if !self.args.json {
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
        finished.store(true, Ordering::SeqCst);
        Ok(self.conclude(&reports, late_error))
    }

    /// With `--verbose`: the weeks and how they go out.
    fn say_what(&self, weeks: &[Week]) {
        let (smtp, pace) = (&self.site.config.smtp, &self.plan.pace);
        let names: Vec<String> = weeks.iter().map(ToString::to_string).collect();
        let rate = if pace.rate_per_s > 0.0 {
            format!("{:.1} msgs/s", pace.rate_per_s)
        } else {
            "unlimited".into()
        };
        detail!(
            "weeks to send: {}; transport: {:?} to {}, concurrency {}, rate {rate}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            },
            smtp.transport,
            smtp.host,
            pace.concurrency,
        );
    }

    fn nothing_new(&self, too_old: Option<Week>) -> ExitCode {
        let held_back = too_old.map(|w| w.to_string());
        if self.args.json {
            let summary =
                serde_json::json!({ "weeks": [], "exit_code": 0, "held_back": held_back });
            emit!("{summary}");
        } else if let Some(week) = too_old {
            say!(
                "nothing new to send: {}",
                too_old_notice(week, self.site, self.clock.start())
            );
        } else {
            say!("nothing new to send");
        }
        ExitCode::SUCCESS
    }

    /// The run's exit code (the worst week's), and the JSON summary when asked.
    fn conclude(&self, reports: &[WeekReport], late_error: bool) -> ExitCode {
        let rank = |code: &u8| match *code {
            exit::FAILURE => 2,
            exit::TEMPFAIL => 1,
            _ => 0,
        };
        let worst = reports.iter().map(WeekReport::exit_code).max_by_key(rank);
        let config = &self.site.config;
        let never_reached = reports.iter().any(|r| r.run.unreachable.is_some())
            && !reached::has_reached(&config.state_dir, &config.smtp);
        let code = if late_error {
            exit::FAILURE
        } else if never_reached && worst == Some(exit::TEMPFAIL) {
            // A setup mistake, not a relay down for now: cron must not retry it for ever.
            say!(
                "  the relay has never taken a connection from this configuration: check \
                 smtp.host, smtp.port and smtp.tls (`digestif check --smtp`); exit 2, not 75"
            );
            exit::INPUT
        } else {
            worst.unwrap_or(exit::SUCCESS)
        };
        if self.args.json {
            let summary = serde_json::json!({ "weeks": reports, "exit_code": code });
            emit!(
                "{}",
                serde_json::to_string_pretty(&summary).unwrap_or_default()
            );
        }
        ExitCode::from(code)
    }

    /// Freeze (or resume) one week and run the engine on it.
    fn send_week(
        &self,
        ledger: &mut Ledger,
        settings: &TransportSettings,
        week: Week,
        stop: &Arc<AtomicBool>,
    ) -> Result<WeekReport> {
        let (site, catalog, kind) = (self.site, self.catalog, &self.plan.kind);
        let config = &site.config;
        if ledger.is_frozen(week, kind)? {
            // Frozen by an earlier run: same content, same list, minus readers who left.
            campaign::skip_departed(site, catalog, ledger, week, kind)?;
            // A run killed mid-transaction left those outcomes unknown: they are sent again.
            // (A week frozen just now has no such row, and the search reads it all.)
            ledger.settle_interrupted(week, kind)?;
        } else {
            let started = std::time::Instant::now();
            let to = campaign::To::named(&self.plan.to);
            let audience =
                campaign::freeze_week(site, catalog, ledger, week, kind, to, self.clock.start())?;
            let seconds = started.elapsed().as_secs_f64();
            detail!("froze {week}: {audience} recipients in {seconds:.1} s");
        }
        let variants = ledger.variants(week, kind)?;
        // Counting what is left reads the whole audience: only for a bar someone sees.
        let todo = if shows_progress(self.args.json) {
            ledger.open_count(week, kind, self.plan.pace.retry_failed)?
        } else {
            0
        };
        let engine = Engine {
            composer: Composer::new(
                week,
                kind,
                &config.sender,
                self.unsubscribe,
                variants,
                self.clock,
            )
            .signed_by(self.signer),
            connector: settings,
            state_dir: config.state_dir.clone(),
            pace: self.plan.pace,
            clock: self.clock,
            // The wall clock: it names the run's journal, whose segments sort by it.
            started: Utc::now(),
            stop: Arc::clone(stop),
            progress: progress_bar(todo as u64, self.args.json, week),
        };
        let run = engine.run()?;
        let counts = ledger.counts(week, kind)?;
        if *kind == Kind::Real && counts.open() == 0 {
            // Done: the ledger alone says who got the week (see `journal::keep`).
            journal::release(&config.state_dir, week)?;
        }
        // Another read of the whole audience, only when there is something to list.
        let problems = if counts.has_problems() {
            ledger.problems(week, kind)?
        } else {
            Vec::new()
        };
        let refused: Vec<(&str, &str)> = problems
            .iter()
            .filter(|p| p.state == State::Failed)
            .filter_map(|p| Some((p.email.as_str(), p.last_error.as_deref()?)))
            .collect();
        let hard_bounces = inbox::bounce_refused(config, self.clock, &refused)?;
        Ok(WeekReport {
            week: week.to_string(),
            kind: kind.clone(),
            hard_bounces,
            possible_duplicates: counts.possible_duplicates,
            counts,
            problems,
            run,
        })
    }
}

/// SIGTERM, SIGINT and SIGHUP (a closed terminal or ssh session must not cut a transaction
/// in half) ask the run to finish what is in flight; a second one ends the process at once,
/// with the shell's status for a death by that signal (130 for a second Ctrl-C).
fn stop_on_signals() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        let status = 128 + signal;
        let _ = signal_hook::flag::register_conditional_shutdown(signal, status, Arc::clone(&stop));
        let _ = signal_hook::flag::register(signal, Arc::clone(&stop));
    }
    stop
}

/// How long the messages in flight get to finish after a stop signal: a relay that does
/// not answer must not hold a person who asked to stop (issue 24).
const STOP_GRACE: Duration = Duration::from_millis(800);

/// After a stop signal, the workers finish the messages in flight; a run still waiting
/// on the relay [`STOP_GRACE`] later ends here, as a kill would, which closes its
/// connections. That is safe at any instant: each message whose end of data went out is
/// recorded *sending* in the journal, so the next run sends it again, flagged a possible
/// duplicate (at most one per connection, the bound of a kill).
fn end_stalled_stops(stop: &Arc<AtomicBool>, finished: &Arc<AtomicBool>, json: bool) {
    let (stop, finished) = (Arc::clone(stop), Arc::clone(finished));
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(STOP_GRACE);
        if finished.load(Ordering::SeqCst) {
            return;
        }
        let why = format!(
            "interrupted: {} ms after the stop, messages were still waiting for the relay's answer (or the week for its audience); their connections are closed, and the next run sends them again (possible duplicates, at most one per connection): run `digestif send` again to finish",
            STOP_GRACE.as_millis()
        );
        if json {
            let summary = serde_json::json!({ "interrupted": why, "exit_code": exit::TEMPFAIL });
            emit!("{summary}");
        } else {
            say!("{why}");
        }
        std::process::exit(i32::from(exit::TEMPFAIL));
    });
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
