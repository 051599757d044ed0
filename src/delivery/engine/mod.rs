//! The send engine. Works through one frozen week's recipients with `concurrency`
//! workers, each with its own transport, sharing one ledger journal, and records every
//! outcome before its connection's next end of data.
//!
//! What it guarantees: nobody marked *sent* without a 250 reply to the end of data; nobody
//! skipped (a rerun takes everyone not *sent*); a message's *sending* record is written
//! (synced, with `ledger_sync = "full"`) before its end of data goes out; at most one
//! message in flight per worker, so a crash can leave at most `concurrency` outcomes
//! unknown, each resent once with the same Message-ID and counted as a possible duplicate.
//!
//! With `ledger_sync = "full"` each worker records the *sending* marks of the next
//! [`PREPARED_AHEAD`] recipients ahead, and a message's outcome rides with the mark taken
//! after it, which must be on disk before that later message's end of data: a power loss
//! resends at most `PREPARED_AHEAD + 1` messages per worker. Each transaction also records
//! that it starts ([`Update::Started`]), so that after a kill the marks of messages that
//! never started are dropped rather than counted as possible duplicates.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::ledger::{Journal, Ledger, Receipt, Recipient, State, Update};
use super::plan::Pace;
use super::transport::{Connector, Deliver, Next};
use crate::audience::optout::Watch;
use crate::clock::Clock;
use crate::config::LedgerSync;
use crate::error::{Error, Result};
use crate::kind::Kind;
use crate::mail::Composer;
use crate::week::Week;

/// Consecutive 5xx refusals that are not about the address (after the data, at MAIL, or a
/// policy refusal at RCPT) that stop a run: the relay is refusing the whole campaign.
pub(crate) const CIRCUIT_BREAKER: usize = 5;

/// With `ledger_sync = "full"`, messages each worker keeps prepared (composed, *sending*
/// mark recorded) beyond the one it sends: the time they take to send is what the journal
/// has to sync their marks in. The syncer gathers lines for 1 ms or more (the window
/// adapts) and a sync takes 0.2 to 1.5 ms here, while a message takes some 350 µs per
/// connection at 4 connections: with 4 ahead and a fixed 1 ms window, workers still waited
/// for 7 syncs in 10 (100,000 messages); with 8, for 1 in 10. It is also the
/// power-loss bound: at most this many plus one messages resent per connection.
pub(crate) const PREPARED_AHEAD: usize = 8;

mod attempt;
mod writer;

use writer::Writer;

/// Retries of temporary failures within a run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
}

impl RetryPolicy {
    fn delay(&self, attempt: u32) -> Duration {
        self.base_delay * 2u32.saturating_pow(attempt.saturating_sub(1))
    }
}

/// What one run of one week did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct RunStats {
    pub messages: usize,
    pub bytes: u64,
    /// Why the run stopped early, if it did (circuit breaker).
    pub stopped: Option<String>,
    /// The server could not be reached: the rest is left pending for the next run.
    pub unreachable: Option<String>,
    pub interrupted: bool,
}

pub(crate) struct Engine<'a> {
    pub composer: Composer<'a>,
    pub connector: &'a dyn Connector,
    pub state_dir: PathBuf,
    pub pace: Pace,
    /// Dates the ledger's records.
    pub clock: Clock,
    /// The wall clock when the run started: names its journal.
    pub started: DateTime<Utc>,
    /// Set by SIGTERM/SIGINT: finish what is in flight, start nothing new.
    pub stop: Arc<AtomicBool>,
    pub progress: indicatif::ProgressBar,
}

/// State shared by the workers of one run.
struct Shared {
    queue: Mutex<Queue>,
    abort: Mutex<Option<Error>>,
    aborting: AtomicBool,
    breaker: AtomicUsize,
    limiter: Option<Mutex<Instant>>,
    interval: Duration,
    messages: AtomicUsize,
    bytes: AtomicU64,
    stopped: Mutex<Option<String>>,
    unreachable: Mutex<Option<String>>,
    /// Readers who asked to leave since the list was frozen.
    departures: Mutex<Watch>,
    /// The progress bar is drawn (a hidden one still costs a clock read per message).
    show_progress: bool,
}

struct Queue {
    ledger: Ledger,
    after_seq: i64,
    buffered: VecDeque<Recipient>,
    exhausted: bool,
}

impl Shared {
    fn fail(&self, e: Error) {
        self.aborting.store(true, Ordering::SeqCst);
        lock(&self.abort).get_or_insert(e);
    }

    /// Block until this worker may start a message (global rate limit).
    fn wait_for_slot(&self) {
        let Some(limiter) = &self.limiter else { return };
        let slot = {
            let mut next = lock(limiter);
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        let now = Instant::now();
        if slot > now {
            std::thread::sleep(slot - now);
        }
    }
}

impl Engine<'_> {
    /// `ledger_sync = "full"`: each end of data waits for its mark to be on disk.
    fn full_sync(&self) -> bool {
        self.pace.sync == LedgerSync::Full
    }

    pub(crate) fn run(&self) -> Result<RunStats> {
        let week = self.composer.week;
        let kind = self.composer.kind;
        let queue = Queue {
            ledger: Ledger::open(&self.state_dir, self.clock)?,
            after_seq: -1,
            buffered: VecDeque::new(),
            exhausted: false,
        };
        let rate = self.pace.rate_per_s;
        let shared = Shared {
            queue: Mutex::new(queue),
            abort: Mutex::new(None),
            aborting: AtomicBool::new(false),
            breaker: AtomicUsize::new(0),
            limiter: (rate > 0.0).then(|| Mutex::new(Instant::now())),
            interval: if rate > 0.0 {
                Duration::from_secs_f64(1.0 / rate)
            } else {
                Duration::ZERO
            },
            messages: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
            stopped: Mutex::new(None),
            unreachable: Mutex::new(None),
            departures: Mutex::new(Watch::open(&self.state_dir)?),
            show_progress: !self.progress.is_hidden(),
        };
        let writer = Writer {
            ledger: Mutex::new(Ledger::open(&self.state_dir, self.clock)?),
            journal: Journal::create(&self.state_dir, week, kind, self.full_sync(), self.started)?,
        };
        std::thread::scope(|scope| {
            for _ in 0..self.pace.concurrency.max(1) {
                scope.spawn(|| {
                    if let Err(e) = self.worker(&shared, &writer, week, kind) {
                        shared.fail(e);
                    }
                });
            }
        });
        // Folded whatever happened: what is left would be folded by the next run anyway.
        let folded = writer.finish(&self.state_dir);
        self.progress.finish_and_clear();
        if let Some(e) = into_value(shared.abort) {
            return Err(e);
        }
        folded?;
        let interrupted = self.stop.load(Ordering::SeqCst);
        Ok(RunStats {
            messages: shared.messages.into_inner(),
            bytes: shared.bytes.into_inner(),
            stopped: into_value(shared.stopped),
            unreachable: into_value(shared.unreachable),
            interrupted,
        })
    }

    fn next(&self, shared: &Shared, week: Week, kind: &Kind) -> Result<Option<Recipient>> {
        let mut q = lock(&shared.queue);
        if q.buffered.is_empty() && !q.exhausted {
            let batch =
                q.ledger
                    .next_batch(week, kind, q.after_seq, 256, self.pace.retry_failed)?;
            q.exhausted = batch.is_empty();
            if let Some(last) = batch.last() {
                q.after_seq = last.seq;
            }
            q.buffered.extend(batch);
        }
        Ok(q.buffered.pop_front())
    }

    /// One more recipient done, on the progress bar.
    fn advance(&self, shared: &Shared) {
        if shared.show_progress {
            self.progress.inc(1);
        }
    }

    fn should_stop(&self, shared: &Shared) -> bool {
        self.stop.load(Ordering::SeqCst) || shared.aborting.load(Ordering::SeqCst)
    }

    fn worker(&self, shared: &Shared, writer: &Writer, week: Week, kind: &Kind) -> Result<()> {
        let mut lane = Lane {
            transport: self.connector.connect(),
            pending: Vec::new(),
            ahead: VecDeque::new(),
            depth: if self.full_sync() { PREPARED_AHEAD } else { 1 },
            // Not under a rate limit: a message starts with its MAIL command, which must
            // wait for its slot (and a server waiting for content should not be kept
            // waiting).
            announce_next: shared.limiter.is_none(),
        };
        let result = (|| {
            while !self.should_stop(shared) && self.step(shared, writer, &mut lane, week, kind)? {}
            Ok(())
        })();
        lane.transport.close();
        for taken in lane.ahead.into_iter().filter(|t| t.receipt.is_some()) {
            // Marked *sending* but never started: back to the queue.
            lane.pending.push(Update::Outcome {
                seq: taken.recipient.seq,
                state: State::Pending,
                attempts: 0,
                detail: "not started: the run stopped".into(),
            });
        }
        let flushed = writer.record(std::mem::take(&mut lane.pending));
        result.and(flushed.map(|_| ()))
    }

    /// Send the next message of `lane`; `false` when nobody is left.
    fn step(
        &self,
        shared: &Shared,
        writer: &Writer,
        lane: &mut Lane,
        week: Week,
        kind: &Kind,
    ) -> Result<bool> {
        if lane.ahead.is_empty() {
            match self.take(shared, writer, &mut lane.pending, week, kind)? {
                Some(taken) => lane.ahead.push_back(taken),
                None => return Ok(false),
            }
        }
        let Some(mut current) = lane.ahead.pop_front() else {
            return Ok(false);
        };
        // Just before their message, not only when taken ahead: a reader who left since
        // is not mailed (the watch looks every few milliseconds).
        if lock(&shared.departures).has_left(&current.recipient.key)? {
            lane.pending
                .push(left_during_the_send(current.recipient.seq));
            self.advance(shared);
            return Ok(true);
        }
        if current.receipt.is_some() {
            // Marked ahead: that it starts now rides with the next record, made before its
            // transaction (see `Update::Started`).
            lane.pending.push(Update::Started {
                seq: current.recipient.seq,
            });
        }
        while lane.ahead.len() < lane.depth {
            match self.take(shared, writer, &mut lane.pending, week, kind)? {
                Some(taken) => lane.ahead.push_back(taken),
                None => break,
            }
        }
        let message = match current.message.take() {
            Some(message) => message,
            None => self
                .composer
                .compose_with_id(&current.recipient, &current.message_id),
        };
        let (envelope, bytes) = match message {
            Ok(message) => message,
            Err(e) => {
                lane.pending.push(Update::Outcome {
                    seq: current.recipient.seq,
                    state: State::Failed,
                    attempts: 0,
                    detail: e.to_string(),
                });
                self.advance(shared);
                return Ok(true);
            }
        };
        let receipt = self.mark(writer, &mut current, &mut lane.pending)?;
        let next = lane
            .ahead
            .front_mut()
            .filter(|_| lane.announce_next)
            .and_then(|next| self.composed(next));
        let ready = Ready {
            seq: current.recipient.seq,
            envelope,
            bytes,
            receipt,
        };
        let transport = lane.transport.as_mut();
        self.deliver(shared, writer, transport, ready, next, &mut lane.pending)?;
        self.advance(shared);
        Ok(true)
    }

    /// Make sure `current`'s *sending* mark, and the outcomes in `pending`, are recorded
    /// before its transaction starts (if the ledger cannot be written, nothing is sent).
    /// Returns how far the journal must be durable before its end of data.
    fn mark(
        &self,
        writer: &Writer,
        current: &mut Taken,
        pending: &mut Vec<Update>,
    ) -> Result<Receipt> {
        match current.receipt {
            // Marked ahead, and no later mark carried the outcomes (the queue ran dry, so
            // nothing was taken ahead): they go now, and are waited for with the message.
            Some(_) if !pending.is_empty() => writer.record(std::mem::take(pending)),
            Some(receipt) => Ok(receipt),
            None => {
                let seq = current.recipient.seq;
                pending.push(Update::Sending {
                    seq,
                    message_id: std::mem::take(&mut current.message_id),
                });
                pending.push(Update::Started { seq });
                writer.record(std::mem::take(pending))
            }
        }
    }

    /// `next`'s message, composed once, for the transport to announce its envelope.
    fn composed<'t>(&self, next: &'t mut Taken) -> Option<Next<'t>> {
        let message = next.message.get_or_insert_with(|| {
            self.composer
                .compose_with_id(&next.recipient, &next.message_id)
        });
        message.as_ref().ok().map(|(envelope, bytes)| Next {
            envelope,
            message: bytes,
        })
    }

    /// The next recipient to send, with its Message-ID; with `ledger_sync = "full"`, its
    /// *sending* mark recorded (with the outcomes in `pending`). A reader who left gets
    /// their outcome in `pending` and the next one is taken. `None`: nobody is left.
    fn take(
        &self,
        shared: &Shared,
        writer: &Writer,
        pending: &mut Vec<Update>,
        week: Week,
        kind: &Kind,
    ) -> Result<Option<Taken>> {
        while let Some(recipient) = self.next(shared, week, kind)? {
            if lock(&shared.departures).has_left(&recipient.key)? {
                pending.push(left_during_the_send(recipient.seq));
                self.advance(shared);
                continue;
            }
            let message_id = self.composer.message_id(&recipient);
            let mut taken = Taken {
                recipient,
                message_id,
                receipt: None,
                message: None,
            };
            if self.full_sync() {
                // The transport waits for the mark to be durable only before the end of
                // data (before it, nothing can be delivered).
                pending.push(Update::Sending {
                    seq: taken.recipient.seq,
                    message_id: taken.message_id.clone(),
                });
                taken.receipt = Some(writer.record(std::mem::take(pending))?);
            }
            return Ok(Some(taken));
        }
        Ok(None)
    }
}

/// One worker's own state: its connection, the recipients it has taken, and the records
/// waiting for its next write. The one after the current is composed, so its envelope can
/// go out ahead (see `Next`). With `ledger_sync = "full"`, *sending* marks are recorded
/// [`PREPARED_AHEAD`] recipients ahead, so that the journal's syncer can gather the marks
/// of many messages into one sync and still have them on disk before they are needed.
struct Lane {
    transport: Box<dyn Deliver>,
    /// The previous message's outcome rides in the same record as the next "sending".
    pending: Vec<Update>,
    ahead: VecDeque<Taken>,
    /// How many recipients are taken ahead.
    depth: usize,
    /// Announce the next message's envelope after this end of data.
    announce_next: bool,
}

/// A recipient a worker has taken from the queue.
struct Taken {
    recipient: Recipient,
    message_id: String,
    receipt: Option<Receipt>,
    /// Composed ahead, to announce its envelope.
    message: Option<Result<(lettre::address::Envelope, Vec<u8>)>>,
}

/// A recipient's message, built, with its *sending* mark recorded.
struct Ready {
    seq: i64,
    envelope: lettre::address::Envelope,
    bytes: Vec<u8>,
    receipt: Receipt,
}

/// The outcome of a reader who asked to leave while the send ran.
fn left_during_the_send(seq: i64) -> Update {
    Update::Outcome {
        seq,
        state: State::Unsubscribed,
        attempts: 0,
        detail: "left during the send".into(),
    }
}

/// A lock, even if a worker panicked while holding it: what it guards (counters, the
/// first error, the ledger between transactions) stays whole, and the panic ends the run.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The value a mutex held at the end of the run (see [`lock`]).
fn into_value<T>(mutex: Mutex<T>) -> T {
    mutex.into_inner().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
