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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::ledger::{Journal, Ledger, Receipt, Recipient, State, Update};
use super::plan::Pace;
use super::transport::{Connector, Deliver, Next, Outcome};
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
/// has to sync their marks in. The syncer gathers lines for
/// [`crate::delivery::ledger::journal::GATHER`] (1 ms) and a sync takes 0.2 to 1.5 ms here, while a
/// message takes some 350 µs per connection at 4 connections: with 4 ahead, workers still
/// waited for 7 syncs in 10 (100,000 messages); with 8, for 1 in 10. It is also the
/// power-loss bound: at most this many plus one messages resent per connection.
pub(crate) const PREPARED_AHEAD: usize = 8;

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
        self.abort.lock().expect("abort lock").get_or_insert(e);
    }

    /// Block until this worker may start a message (global rate limit).
    fn wait_for_slot(&self) {
        let Some(limiter) = &self.limiter else { return };
        let slot = {
            let mut next = limiter.lock().expect("limiter lock");
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
        if let Some(e) = shared.abort.into_inner().expect("abort lock") {
            return Err(e);
        }
        folded?;
        let interrupted = self.stop.load(Ordering::SeqCst);
        Ok(RunStats {
            messages: shared.messages.into_inner(),
            bytes: shared.bytes.into_inner(),
            stopped: shared.stopped.into_inner().expect("stopped lock"),
            unreachable: shared.unreachable.into_inner().expect("unreachable lock"),
            interrupted,
        })
    }

    fn next(&self, shared: &Shared, week: Week, kind: &Kind) -> Result<Option<Recipient>> {
        let mut q = shared.queue.lock().expect("queue lock");
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
        let mut transport = self.connector.connect();
        // The previous message's outcome rides in the same record as the next "sending".
        let mut pending: Vec<Update> = Vec::new();
        // The recipients this worker has taken from the queue. The one after the current
        // is composed, so its envelope can go out ahead (see `Next`). With `ledger_sync =
        // "full"`, *sending* marks are recorded [`PREPARED_AHEAD`] recipients ahead, so
        // that the journal's syncer can gather the marks of many messages into one sync
        // and still have them on disk before they are needed.
        let mut ahead: VecDeque<Taken> = VecDeque::new();
        let depth = if self.full_sync() { PREPARED_AHEAD } else { 1 };
        // Not under a rate limit: a message starts with its MAIL command, which must wait
        // for its slot (and a server waiting for content should not be kept waiting).
        let announce_next = shared.limiter.is_none();
        let result = (|| {
            while !self.should_stop(shared) {
                if ahead.is_empty() {
                    match self.take(shared, writer, &mut pending, week, kind)? {
                        Some(taken) => ahead.push_back(taken),
                        None => break,
                    }
                }
                let Some(mut current) = ahead.pop_front() else {
                    break;
                };
                if current.receipt.is_some() {
                    // Marked ahead: that it starts now rides with the next record, made
                    // before its transaction (see `Update::Started`).
                    pending.push(Update::Started {
                        seq: current.recipient.seq,
                    });
                }
                while ahead.len() < depth {
                    match self.take(shared, writer, &mut pending, week, kind)? {
                        Some(taken) => ahead.push_back(taken),
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
                        pending.push(Update::Outcome {
                            seq: current.recipient.seq,
                            state: State::Failed,
                            attempts: 0,
                            detail: e.to_string(),
                        });
                        self.advance(shared);
                        continue;
                    }
                };
                let receipt = self.mark(writer, &mut current, &mut pending)?;
                let next = ahead
                    .front_mut()
                    .filter(|_| announce_next)
                    .and_then(|next| self.composed(next));
                let ready = Ready {
                    seq: current.recipient.seq,
                    envelope,
                    bytes,
                    receipt,
                };
                self.deliver(
                    shared,
                    writer,
                    transport.as_mut(),
                    ready,
                    next,
                    &mut pending,
                )?;
                self.advance(shared);
            }
            Ok(())
        })();
        transport.close();
        for taken in ahead.into_iter().filter(|t| t.receipt.is_some()) {
            // Marked *sending* but never started: back to the queue.
            pending.push(Update::Outcome {
                seq: taken.recipient.seq,
                state: State::Pending,
                attempts: 0,
                detail: "not started: the run stopped".into(),
            });
        }
        let flushed = writer.record(std::mem::take(&mut pending));
        result.and(flushed.map(|_| ()))
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
            if shared
                .departures
                .lock()
                .expect("departures lock")
                .has_left(&recipient.key)?
            {
                pending.push(Update::Outcome {
                    seq: recipient.seq,
                    state: State::Unsubscribed,
                    attempts: 0,
                    detail: "left during the send".into(),
                });
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

    /// Send one prepared message; its outcome is left in `pending` for the next record.
    fn deliver(
        &self,
        shared: &Shared,
        writer: &Writer,
        transport: &mut dyn Deliver,
        ready: Ready,
        next: Option<Next<'_>>,
        pending: &mut Vec<Update>,
    ) -> Result<()> {
        let Ready {
            seq,
            envelope,
            bytes,
            receipt,
        } = ready;
        let outcome = |state: State, attempts: u32, detail: String| Update::Outcome {
            seq,
            state,
            attempts: i64::from(attempts),
            detail,
        };
        let mut durable = || writer.journal.wait_durable(receipt);
        let mut attempts = 0u32;
        let (state, detail) = loop {
            shared.wait_for_slot();
            attempts += 1;
            match transport.deliver(&envelope, &bytes, next, &mut durable) {
                Outcome::Sent(reply) => {
                    shared.breaker.store(0, Ordering::SeqCst);
                    shared.messages.fetch_add(1, Ordering::Relaxed);
                    shared
                        .bytes
                        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    break (State::Sent, reply);
                }
                Outcome::Permanent { reply, campaign } => {
                    if campaign
                        && shared.breaker.fetch_add(1, Ordering::SeqCst) + 1 >= CIRCUIT_BREAKER
                    {
                        *shared.stopped.lock().expect("stopped lock") = Some(format!(
                            "stopped after {CIRCUIT_BREAKER} messages in a row were refused for a reason that is not the address's (last: {reply}); the rest stay pending"
                        ));
                        shared.aborting.store(true, Ordering::SeqCst);
                    }
                    break (State::Failed, reply);
                }
                Outcome::Unknown(detail) => {
                    // Maybe delivered: never sent again within this run. The ledger lets a
                    // later run resend it while its unknown outcomes stay within the limit.
                    pending.push(Update::Unknown {
                        seq,
                        attempts: i64::from(attempts),
                        detail,
                        resend_limit: self.pace.resend_unknown,
                    });
                    return Ok(());
                }
                Outcome::Transient(error)
                    if attempts >= self.pace.retry.max_attempts || self.should_stop(shared) =>
                {
                    break (State::Deferred, error);
                }
                Outcome::Unreachable(error)
                    if attempts >= self.pace.retry.max_attempts || self.should_stop(shared) =>
                {
                    // Every other message would fail the same way: stop, leave them pending.
                    shared.unreachable.lock().expect("unreachable lock").get_or_insert(format!(
                        "stopped: cannot reach the server ({error}); the rest stay pending for the next run"
                    ));
                    shared.aborting.store(true, Ordering::SeqCst);
                    break (State::Deferred, error);
                }
                Outcome::Transient(_) | Outcome::Unreachable(_) => {
                    std::thread::sleep(self.pace.retry.delay(attempts));
                }
                Outcome::Fatal(e) => {
                    writer.record(vec![outcome(State::Pending, 0, e.to_string())])?;
                    return Err(e);
                }
            }
        };
        pending.push(outcome(state, attempts, detail));
        Ok(())
    }
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

/// Where the workers record what they do: the run's journal, folded into the ledger a
/// segment at a time.
struct Writer {
    ledger: Mutex<Ledger>,
    journal: Journal,
}

impl Writer {
    /// Append `updates` to the journal; when that fills a segment, fold it into the ledger.
    fn record(&self, updates: Vec<Update>) -> Result<Receipt> {
        let (receipt, full) = self.journal.append(&updates)?;
        if let Some(closed) = full {
            self.ledger.lock().expect("ledger lock").fold(closed)?;
        }
        Ok(receipt)
    }

    /// Close the journal and fold its last segment.
    fn finish(self, state_dir: &std::path::Path) -> Result<()> {
        let run = self.journal.run().to_string();
        let ledger = self.ledger.into_inner().expect("ledger lock");
        ledger.fold(self.journal.finish()?)?;
        ledger.forget_folds(state_dir, &run)
    }
}

#[cfg(test)]
mod tests;
