//! The engine's rules driven by a scripted transport: retries, deferral, the circuit
//! breaker, unknown outcomes and crashes, with no server, no sleeps and no timing.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::address::Envelope;

use super::*;
use crate::audience::optout::{Optouts, LOOK_EVERY};
use crate::audience::subscribers::Status;
use crate::config::Sender;
use crate::delivery::ledger::{AudienceRow, State, Variant};
use crate::delivery::transport::{Connector, Deliver, Outcome};
use crate::mail::Unsubscribe;

mod crashes;
use crashes::copy_as_on_disk;
mod rules;

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
    /// Accepted, and meanwhile the reader the script's `leaver` names asks to leave (as
    /// the endpoint records it), more than a look of the send's watch before the next
    /// message.
    AcceptWhileOneLeaves,
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
    /// For [`Reply::AcceptWhileOneLeaves`]: the state folder, and who leaves.
    leaver: Option<(PathBuf, String)>,
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
        if matches!(
            reply,
            Reply::Accept | Reply::Refuse | Reply::Silence | Reply::AcceptWhileOneLeaves
        ) {
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
            Reply::AcceptWhileOneLeaves => {
                let (state, key) = self.0.leaver.as_ref().expect("a leaver");
                let store = Optouts::open(state, Clock::system()).unwrap();
                store.record(key, Status::Unsubscribed, "web").unwrap();
                std::thread::sleep(LOOK_EVERY * 2);
                Outcome::Sent("250 ok".into())
            }
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
        soft_bounce_weeks: 8,
    };
    let unsubscribe = Unsubscribe {
        url: None,
        mailto: Some("leave@example.org".into()),
        secret: None,
        bounce: None,
        preferences: None,
    };
    let variants = ledger.variants(week(), &Kind::Real).unwrap();
    let engine = Engine {
        composer: Composer::new(
            week(),
            &Kind::Real,
            &sender,
            &unsubscribe,
            variants,
            Clock::system(),
        ),
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
