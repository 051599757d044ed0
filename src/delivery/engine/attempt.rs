//! One message's attempts: retried while the failure is temporary, and each outcome read
//! for what it means to the run (the circuit breaker, an unreachable server, a stop).

use std::sync::atomic::Ordering;

use super::writer::Writer;
use super::{lock, Engine, Ready, Shared, CIRCUIT_BREAKER};
use crate::delivery::ledger::{State, Update};
use crate::delivery::transport::{Deliver, Next, Outcome};
use crate::error::Result;

/// What one attempt's outcome means for the message.
enum Verdict {
    /// Its final state in this run, with the reply or the error.
    Done(State, String),
    /// Maybe delivered: recorded as unknown, never sent again within this run.
    Unknown(String),
    /// Try again after the retry delay.
    Retry,
}

impl Engine<'_> {
    /// Send one prepared message; its outcome is left in `pending` for the next record.
    pub(super) fn deliver(
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
        let mut durable = || writer.journal.wait_durable(receipt);
        let mut attempts = 0u32;
        loop {
            shared.wait_for_slot();
            attempts += 1;
            let outcome = transport.deliver(&envelope, &bytes, next, &mut durable);
            let verdict = match outcome {
                Outcome::Fatal(e) => {
                    let detail = e.to_string();
                    writer.record(vec![Update::Outcome {
                        seq,
                        state: State::Pending,
                        attempts: 0,
                        detail,
                    }])?;
                    return Err(e);
                }
                other => self.judge(shared, other, attempts, bytes.len()),
            };
            match verdict {
                Verdict::Retry => std::thread::sleep(self.pace.retry.delay(attempts)),
                Verdict::Unknown(detail) => {
                    // A later run may resend it while its unknown outcomes stay within
                    // the limit.
                    pending.push(Update::Unknown {
                        seq,
                        attempts: i64::from(attempts),
                        detail,
                        resend_limit: self.pace.resend_unknown,
                    });
                    return Ok(());
                }
                Verdict::Done(state, detail) => {
                    pending.push(Update::Outcome {
                        seq,
                        state,
                        attempts: i64::from(attempts),
                        detail,
                    });
                    return Ok(());
                }
            }
        }
    }

    /// What attempt number `attempts` of a message of `size` bytes came to, and what it
    /// tells the run: a success closes the circuit breaker, refusals that are not about the
    /// address open it, an unreachable server stops the run.
    fn judge(&self, shared: &Shared, outcome: Outcome, attempts: u32, size: usize) -> Verdict {
        let last_try = attempts >= self.pace.retry.max_attempts || self.should_stop(shared);
        match outcome {
            Outcome::Sent(reply) => {
                shared.breaker.store(0, Ordering::SeqCst);
                shared.messages.fetch_add(1, Ordering::Relaxed);
                shared.bytes.fetch_add(size as u64, Ordering::Relaxed);
                Verdict::Done(State::Sent, reply)
            }
            Outcome::Permanent { reply, campaign } => {
                if campaign && shared.breaker.fetch_add(1, Ordering::SeqCst) + 1 >= CIRCUIT_BREAKER
                {
                    *lock(&shared.stopped) = Some(format!(
                        "stopped after {CIRCUIT_BREAKER} messages in a row were refused for a reason that is not the address's (last: {reply}); the rest stay pending"
                    ));
                    shared.aborting.store(true, Ordering::SeqCst);
                }
                Verdict::Done(State::Failed, reply)
            }
            Outcome::Unknown(detail) => Verdict::Unknown(detail),
            Outcome::Transient(error) if last_try => Verdict::Done(State::Deferred, error),
            Outcome::Unreachable(error) if last_try => {
                // Every other message would fail the same way: stop, leave them pending.
                lock(&shared.unreachable).get_or_insert(format!(
                    "stopped: cannot reach the server ({error}); the rest stay pending for the next run"
                ));
                shared.aborting.store(true, Ordering::SeqCst);
                Verdict::Done(State::Deferred, error)
            }
            Outcome::Transient(_) | Outcome::Unreachable(_) => Verdict::Retry,
            // Handled by the caller, which stops the run.
            Outcome::Fatal(e) => Verdict::Done(State::Pending, e.to_string()),
        }
    }
}
