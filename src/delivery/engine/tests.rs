//! The engine's rules driven by a scripted transport: retries, deferral, the circuit
//! breaker, unknown outcomes and crashes, with no server, no sleeps and no timing.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::address::Envelope;

use super::*;
use crate::config::Sender;
use crate::delivery::ledger::{AudienceRow, State, Variant};
use crate::delivery::transport::{Connector, Deliver, Outcome};
use crate::mail::Unsubscribe;

/// What the scripted server answers to one attempt.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Accept,
    /// 4xx before the end of data.
    Busy,
    /// 5xx at RCPT.
    NoSuchUser,
    /// 5xx after the end of data.
    Refuse,
    /// The data went out and no reply came.
    Silence,
    /// No connection.
    Down,
    /// Authentication failed.
    Fatal,
    /// The process dies before the end of data (a panic, standing for `kill -9`): only
    /// what the journal holds survives.
    Crash,
    /// The power goes just as the end of data would go out: the state folder is copied to
    /// the script's `power_cut` folder as a power loss would leave it, then the process
    /// dies (a panic).
    PowerCut,
}

/// Replies per recipient, in order; once a recipient's script is used up, it is accepted.
#[derive(Default)]
struct Script {
    replies: Mutex<HashMap<String, VecDeque<Reply>>>,
    /// Messages that reached the end of data (delivered or maybe delivered), per recipient.
    copies: Mutex<HashMap<String, usize>>,
    attempts: Mutex<usize>,
    /// For [`Reply::PowerCut`]: the state folder, and where to leave what the disk holds.
    power_cut: Option<(PathBuf, PathBuf)>,
}

impl Script {
    fn new(replies: &[(&str, &[Reply])]) -> Arc<Script> {
        let script = Script::default();
        for (to, list) in replies {
            script
                .replies
                .lock()
                .unwrap()
                .insert((*to).to_string(), list.iter().copied().collect());
        }
        Arc::new(script)
    }

    fn copies(&self, to: &str) -> usize {
        self.copies.lock().unwrap().get(to).copied().unwrap_or(0)
    }
}

struct Scripted(Arc<Script>);

impl Connector for Scripted {
    fn connect(&self) -> Box<dyn Deliver> {
        Box::new(Scripted(Arc::clone(&self.0)))
    }
}

impl Deliver for Scripted {
    fn deliver(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
        next: Option<Next<'_>>,
        durable: &mut dyn FnMut() -> Result<()>,
    ) -> Outcome {
        for (envelope, message) in
            std::iter::once((envelope, message)).chain(next.map(|n| (n.envelope, n.message)))
        {
            let text = String::from_utf8_lossy(message);
            assert!(
                text.contains("\r\nMessage-ID: <digest.2011-W52.")
                    && text.contains(&format!("\r\nTo: {}\r\n", envelope.to()[0])),
                "a message with its own Message-ID and recipient:\n{text}"
            );
        }
        if let Err(e) = durable() {
            return Outcome::Fatal(e);
        }
        let to = envelope.to()[0].to_string();
        *self.0.attempts.lock().unwrap() += 1;
        let reply = self
            .0
            .replies
            .lock()
            .unwrap()
            .get_mut(&to)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Reply::Accept);
        if matches!(reply, Reply::Accept | Reply::Refuse | Reply::Silence) {
            *self.0.copies.lock().unwrap().entry(to).or_default() += 1;
        }
        match reply {
            Reply::Accept => Outcome::Sent("250 ok".into()),
            Reply::Busy => Outcome::Transient("451 try later".into()),
            Reply::NoSuchUser => Outcome::Permanent {
                reply: "550 no such user".into(),
                campaign: false,
            },
            Reply::Refuse => Outcome::Permanent {
                reply: "554 refused".into(),
                campaign: true,
            },
            Reply::Silence => Outcome::Unknown("no reply after end of data within 2 s".into()),
            Reply::Down => Outcome::Unreachable("connection refused".into()),
            Reply::Fatal => Outcome::Fatal(Error::smtp("test:25", "authentication failed")),
            Reply::Crash => panic!("killed"),
            Reply::PowerCut => {
                let (state, disk) = self.0.power_cut.as_ref().expect("a power_cut folder");
                copy_as_on_disk(state, disk);
                panic!("power cut");
            }
        }
    }
}

fn week() -> Week {
    "2011-W52".parse().unwrap()
}

fn reader(i: usize) -> String {
    format!("r{i}@example.org")
}

/// A state folder with week 2011-W52 frozen for `n` readers.
fn frozen(dir: &Path, n: usize) {
    let mut ledger = Ledger::open(dir, Clock::system()).unwrap();
    let mut freezer = ledger.freezer(week(), &Kind::Real).unwrap();
    for i in 0..n {
        freezer
            .add(&AudienceRow {
                key: reader(i),
                email: reader(i),
                name: None,
                variant: Some(0),
            })
            .unwrap();
    }
    let variant = Variant {
        id: 0,
        subject: "Subject".into(),
        html: None,
        text: "Hello".into(),
        greeting_named: "Hi {name},".into(),
        greeting_anonymous: "Hi,".into(),
    };
    freezer.finish("hash", &[variant]).unwrap();
}

struct Setup {
    max_attempts: u32,
    resend_unknown: u32,
    concurrency: usize,
    full_sync: bool,
}

const DEFAULTS: Setup = Setup {
    max_attempts: 3,
    resend_unknown: 1,
    concurrency: 1,
    full_sync: false,
};

/// One run, as `digestif send` does it: settle what a stopped run left, then the engine.
fn run(dir: &Path, script: &Arc<Script>, setup: &Setup) -> Result<RunStats> {
    let ledger = Ledger::open(dir, Clock::system()).unwrap();
    ledger.settle_interrupted(week(), &Kind::Real).unwrap();
    let sender = Sender {
        from: "Veille <veille@example.org>".parse().unwrap(),
        reply_to: None,
        list_id: "example.org".into(),
        unsubscribe_mailto: None,
        unsubscribe_url: None,
        unsubscribe_secret_env: "UNUSED".into(),
        bounce_address: None,
        soft_bounce_limit: 3,
    };
    let unsubscribe = Unsubscribe {
        url: None,
        mailto: Some("leave@example.org".into()),
        secret: None,
        bounce: None,
    };
    let variants = ledger.variants(week(), &Kind::Real).unwrap();
    let engine = Engine {
        composer: Composer::new(week(), &Kind::Real, &sender, &unsubscribe, variants),
        connector: &Scripted(Arc::clone(script)),
        state_dir: dir.to_path_buf(),
        pace: Pace {
            sync: if setup.full_sync {
                LedgerSync::Full
            } else {
                LedgerSync::Normal
            },
            concurrency: setup.concurrency,
            rate_per_s: 0.0,
            retry: RetryPolicy {
                max_attempts: setup.max_attempts,
                base_delay: Duration::ZERO,
            },
            retry_failed: false,
            resend_unknown: setup.resend_unknown,
        },
        clock: Clock::system(),
        started: Utc::now(),
        stop: Arc::new(AtomicBool::new(false)),
        progress: indicatif::ProgressBar::hidden(),
    };
    engine.run()
}

/// (state, possible duplicates) of every reader, in order.
fn states(dir: &Path) -> Vec<State> {
    let ledger = Ledger::open(dir, Clock::system()).unwrap();
    let counts = ledger.counts(week(), &Kind::Real).unwrap();
    let mut problems: HashMap<String, State> = ledger
        .problems(week(), &Kind::Real)
        .unwrap()
        .into_iter()
        .map(|p| (p.email, p.state))
        .collect();
    let total = counts.total();
    (0..total)
        .map(|i| problems.remove(&reader(i)).unwrap_or(State::Sent))
        .collect()
}

fn count(dir: &Path, state: State) -> usize {
    let ledger = Ledger::open(dir, Clock::system()).unwrap();
    ledger.counts(week(), &Kind::Real).unwrap().of(state)
}

fn possible_duplicates(dir: &Path) -> usize {
    let ledger = Ledger::open(dir, Clock::system()).unwrap();
    ledger
        .counts(week(), &Kind::Real)
        .unwrap()
        .possible_duplicates
}

#[test]
fn temporary_failures_are_retried_then_sent() {
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 2);
    let script = Script::new(&[(&reader(0), &[Reply::Busy, Reply::Busy])]);
    let stats = run(dir.path(), &script, &DEFAULTS).unwrap();
    assert_eq!(stats.messages, 2);
    assert_eq!(states(dir.path()), [State::Sent, State::Sent]);
    assert_eq!(*script.attempts.lock().unwrap(), 4);
}

#[test]
fn a_reader_still_busy_after_every_attempt_is_deferred_to_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 2);
    let script = Script::new(&[(&reader(0), &[Reply::Busy; 3])]);
    run(dir.path(), &script, &DEFAULTS).unwrap();
    assert_eq!(states(dir.path()), [State::Deferred, State::Sent]);
    run(dir.path(), &script, &DEFAULTS).unwrap();
    assert_eq!(states(dir.path()), [State::Sent, State::Sent]);
    assert_eq!(
        (script.copies(&reader(0)), script.copies(&reader(1))),
        (1, 1)
    );
}

#[test]
fn a_refused_address_fails_and_the_list_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 8);
    // Refusals at RCPT never trip the breaker: they are about one address each.
    let refused: Vec<(String, [Reply; 1])> =
        (0..6).map(|i| (reader(i), [Reply::NoSuchUser])).collect();
    let refused: Vec<(&str, &[Reply])> =
        refused.iter().map(|(r, l)| (r.as_str(), &l[..])).collect();
    let script = Script::new(&refused);
    let stats = run(dir.path(), &script, &DEFAULTS).unwrap();
    assert_eq!(stats.stopped, None);
    assert_eq!(count(dir.path(), State::Failed), 6);
    assert_eq!(count(dir.path(), State::Sent), 2);
}

#[test]
fn five_refusals_after_the_data_in_a_row_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 10);
    let script = Arc::new(Script::default());
    for i in 0..10 {
        script
            .replies
            .lock()
            .unwrap()
            .insert(reader(i), VecDeque::from([Reply::Refuse]));
    }
    let stats = run(dir.path(), &script, &DEFAULTS).unwrap();
    assert!(stats
        .stopped
        .unwrap()
        .starts_with("stopped after 5 messages in a row"));
    assert_eq!(count(dir.path(), State::Failed), 5);
    assert_eq!(count(dir.path(), State::Pending), 5);
}

#[test]
fn an_unknown_outcome_is_resent_once_over_all_runs() {
    // Regression (#11): a server that takes the final dot and never answers got every
    // message 4 times per run, and again on every rerun.
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 2);
    let script = Script::new(&[(&reader(0), &[Reply::Silence; 10])]);
    run(dir.path(), &script, &DEFAULTS).unwrap();
    assert_eq!(script.copies(&reader(0)), 1, "never retried within the run");
    assert_eq!(states(dir.path()), [State::Deferred, State::Sent]);
    run(dir.path(), &script, &DEFAULTS).unwrap();
    assert_eq!(script.copies(&reader(0)), 2, "resent once by the next run");
    assert_eq!(states(dir.path()), [State::Unknown, State::Sent]);
    run(dir.path(), &script, &DEFAULTS).unwrap();
    assert_eq!(script.copies(&reader(0)), 2, "and never again");
    assert_eq!(possible_duplicates(dir.path()), 1);
    let ledger = Ledger::open(dir.path(), Clock::system()).unwrap();
    let problem = &ledger.problems(week(), &Kind::Real).unwrap()[0];
    assert_eq!(
        problem.last_error.as_deref(),
        Some("no reply after end of data within 2 s")
    );
}

#[test]
fn resend_unknown_zero_never_sends_twice() {
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 1);
    let script = Script::new(&[(&reader(0), &[Reply::Silence; 10])]);
    let setup = Setup {
        resend_unknown: 0,
        ..DEFAULTS
    };
    run(dir.path(), &script, &setup).unwrap();
    run(dir.path(), &script, &setup).unwrap();
    assert_eq!(script.copies(&reader(0)), 1);
    assert_eq!(states(dir.path()), [State::Unknown]);
}

/// What a `kill -9` during reader 0's transaction leaves: the row committed *sending*.
fn crash_during(dir: &Path, seq: i64) {
    let ledger = Ledger::open(dir, Clock::system()).unwrap();
    let update = Update::Sending {
        seq,
        message_id: "<m@example.org>".into(),
    };
    ledger.apply(week(), &Kind::Real, &[update]).unwrap();
}

#[test]
fn a_reader_in_flight_at_a_kill_is_sent_again_however_often_it_happens() {
    // The ledger cannot tell whether the data went out before the kill: nobody is
    // skipped, and each kill costs at most one possible duplicate per worker.
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 2);
    crash_during(dir.path(), 0);
    Ledger::open(dir.path(), Clock::system())
        .unwrap()
        .settle_interrupted(week(), &Kind::Real)
        .unwrap();
    crash_during(dir.path(), 0);
    let script = Script::new(&[]);
    run(dir.path(), &script, &DEFAULTS).unwrap();
    assert_eq!(script.copies(&reader(0)), 1);
    assert_eq!(states(dir.path()), [State::Sent, State::Sent]);
    assert_eq!(possible_duplicates(dir.path()), 1);
}

#[test]
fn an_unreachable_server_stops_the_run_and_leaves_the_rest_pending() {
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 5);
    let script = Script::new(&[(&reader(0), &[Reply::Down; 3])]);
    let stats = run(dir.path(), &script, &DEFAULTS).unwrap();
    assert!(stats.unreachable.unwrap().contains("connection refused"));
    assert_eq!(
        *script.attempts.lock().unwrap(),
        3,
        "one message's retries, no more"
    );
    assert_eq!(count(dir.path(), State::Deferred), 1);
    assert_eq!(count(dir.path(), State::Pending), 4);
}

#[test]
fn a_fatal_error_stops_at_once_and_marks_nothing_sent() {
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 3);
    let script = Script::new(&[(&reader(0), &[Reply::Fatal])]);
    let err = run(dir.path(), &script, &DEFAULTS).unwrap_err();
    assert_eq!(
        err.to_string(),
        "SMTP server test:25: authentication failed"
    );
    assert_eq!(count(dir.path(), State::Pending), 3);
    assert_eq!(script.copies(&reader(0)), 0);
}

#[test]
fn concurrent_workers_send_each_reader_once() {
    for full_sync in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        // More than one journal segment, so folds happen during the run.
        let n = 1500;
        frozen(dir.path(), n);
        let script = Script::new(&[(&reader(7), &[Reply::NoSuchUser])]);
        let setup = Setup {
            concurrency: 4,
            full_sync,
            ..DEFAULTS
        };
        let stats = run(dir.path(), &script, &setup).unwrap();
        assert_eq!(stats.messages, n - 1, "full_sync = {full_sync}");
        assert!((0..n).all(|i| script.copies(&reader(i)) == usize::from(i != 7)));
        assert_eq!(count(dir.path(), State::Sent), n - 1);
        assert_eq!(count(dir.path(), State::Failed), 1);
        assert!(
            crate::delivery::ledger::journal::leftovers(dir.path())
                .unwrap()
                .is_empty(),
            "every segment folded and removed"
        );
    }
}

#[test]
fn with_full_sync_the_messages_prepared_ahead_go_back_to_the_queue_when_the_run_stops() {
    let dir = tempfile::tempdir().unwrap();
    // More readers than the worker prepares ahead.
    let n = PREPARED_AHEAD + 12;
    frozen(dir.path(), n);
    let setup = Setup {
        full_sync: true,
        ..DEFAULTS
    };
    let script = Script::new(&[(&reader(2), &[Reply::Fatal])]);
    run(dir.path(), &script, &setup).unwrap_err();
    assert_eq!(count(dir.path(), State::Sent), 2);
    assert_eq!(
        count(dir.path(), State::Sending),
        0,
        "readers 3 to 10 were marked sending ahead, then put back"
    );
    assert_eq!(count(dir.path(), State::Pending), n - 2);
    let script = Script::new(&[]);
    run(dir.path(), &script, &setup).unwrap();
    assert_eq!(count(dir.path(), State::Sent), n);
    assert_eq!(possible_duplicates(dir.path()), 0);
    assert!((2..n).all(|i| script.copies(&reader(i)) == 1));
}

#[test]
fn every_outcome_is_recorded_before_the_next_end_of_data_even_when_nothing_is_left_to_take() {
    for full_sync in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        // Fewer readers than a worker takes ahead: the queue is dry from the start.
        let n = PREPARED_AHEAD;
        frozen(dir.path(), n);
        let script = Script::new(&[(&reader(n - 1), &[Reply::Crash])]);
        run_until_it_dies(dir.path(), &script, full_sync);
        assert_eq!(
            count(dir.path(), State::Sent),
            n - 1,
            "full_sync = {full_sync}: every message before the crash is known sent"
        );
        assert_eq!(count(dir.path(), State::Sending), 1);
    }
}

/// Copy the state folder `from` as a power loss would leave it: journal segments cut to
/// what was synced (SQLite syncs its own commits) and read in another boot, SQLite's
/// shared-memory index left out.
fn copy_as_on_disk(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_as_on_disk(&path, &target);
        } else if path.extension().is_some_and(|x| x == "log") {
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.truncate(crate::delivery::ledger::journal::on_disk::len(&path) as usize);
            let boot = crate::delivery::ledger::journal::boot_id().expect("a Linux boot id");
            let text = String::from_utf8_lossy(&bytes).replacen(&boot, &"0".repeat(boot.len()), 1);
            std::fs::write(target, text).unwrap();
        } else if !path.to_string_lossy().ends_with("-shm") {
            std::fs::copy(&path, target).unwrap();
        }
    }
}

/// Run one worker until `script` makes the process die (a panic).
fn run_until_it_dies(dir: &Path, script: &Arc<Script>, full_sync: bool) {
    let setup = Setup {
        full_sync,
        concurrency: 1,
        ..DEFAULTS
    };
    let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(dir, script, &setup)));
    assert!(died.is_err(), "the scripted death did not happen");
}

/// Run with `ledger_sync = "full"` and one worker, cut the power as reader `cut`'s end of
/// data would go out, and return every reader's state as the next run finds it.
fn states_after_a_power_cut(n: usize, cut: usize) -> Vec<State> {
    let dir = tempfile::tempdir().unwrap();
    let disk = tempfile::tempdir().unwrap();
    frozen(dir.path(), n);
    let script = Arc::new(Script {
        power_cut: Some((dir.path().to_path_buf(), disk.path().join("state"))),
        replies: Mutex::new([(reader(cut), [Reply::PowerCut].into())].into()),
        ..Script::default()
    });
    run_until_it_dies(dir.path(), &script, true);
    assert!((0..cut).all(|i| script.copies(&reader(i)) == 1));
    let ledger = Ledger::open(&disk.path().join("state"), Clock::system()).unwrap();
    ledger.states_in_order(week(), &Kind::Real)
}

#[test]
fn a_power_loss_with_full_sync_resends_at_most_prepared_ahead_plus_one_per_worker() {
    // Past the first journal segment, so a fold happened before the cut; one cut at each
    // place of the cycle between two waits for a sync.
    let n = 800;
    let mut most = 0;
    for cut in 700..=701 + PREPARED_AHEAD {
        let states = states_after_a_power_cut(n, cut);
        assert_eq!(states.len(), n);
        // Delivered: known sent, or marked sending (resent, flagged); never pending,
        // which would resend them unflagged.
        assert!(
            states[..cut]
                .iter()
                .all(|s| matches!(s, State::Sent | State::Sending)),
            "cut at {cut}: {:?}",
            &states[..cut]
        );
        let resent = states[..cut]
            .iter()
            .filter(|s| **s == State::Sending)
            .count();
        assert!(
            resent <= PREPARED_AHEAD,
            "cut at {cut}: {resent} delivered messages would be resent, besides the one in flight"
        );
        most = most.max(resent);
        // The one in flight had its mark on disk before its end of data; nobody later is
        // known sent.
        assert_eq!(states[cut], State::Sending, "cut at {cut}");
        assert!(states[cut..]
            .iter()
            .all(|s| matches!(s, State::Pending | State::Sending)));
    }
    assert!(most > 0, "no cut lost an outcome: the bound went untested");
}

#[test]
fn after_a_kill_with_full_sync_only_the_message_in_flight_is_a_possible_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let n = 3 * PREPARED_AHEAD;
    frozen(dir.path(), n);
    let script = Script::new(&[(&reader(5), &[Reply::Crash])]);
    run_until_it_dies(dir.path(), &script, true);
    // The readers marked ahead of reader 5 never started: the same boot's journal is
    // whole, so their marks are left out and they stay pending.
    let states = Ledger::open(dir.path(), Clock::system())
        .unwrap()
        .states_in_order(week(), &Kind::Real);
    assert_eq!(&states[..5], [State::Sent; 5]);
    assert_eq!(states[5], State::Sending);
    assert!(
        states[6..].iter().all(|s| *s == State::Pending),
        "{states:?}"
    );
    let setup = Setup {
        full_sync: true,
        ..DEFAULTS
    };
    run(dir.path(), &Script::new(&[]), &setup).unwrap();
    assert_eq!(count(dir.path(), State::Sent), n);
    assert_eq!(possible_duplicates(dir.path()), 1);
}
