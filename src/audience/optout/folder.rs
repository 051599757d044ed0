//! `serve`'s requests written into the list in batches: a request is durable in the store
//! when it is answered, and reaches `subscribers.toml` (the file a person edits) at most
//! one rewrite every [`FOLD_EVERY`], so a burst of clicks after a send costs a few
//! rewrites of the list, not one per click. Sends, `check` and the `subscribers` commands
//! fold what waits when they start, so none of them reads a list behind the store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::index::TokenIndex;
use super::recorder::Remembered;
use crate::audience::subscribers::Catalog;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::Error;
use crate::lock::Lock;

/// The shortest time between two rewrites of the list by `serve`.
pub(crate) const FOLD_EVERY: Duration = Duration::from_secs(2);
/// How often to try again while a send or an edit holds the list (it folds what waits
/// when it ends, but `serve` does not know when that is).
const RETRY: Duration = Duration::from_secs(10);

/// The folding thread's handle.
pub(crate) struct Folder {
    /// Work waits to be folded.
    waiting: Mutex<bool>,
    nudged: Condvar,
    stop: AtomicBool,
}

/// What the folding thread needs.
pub(crate) struct FoldJob {
    pub config: Config,
    pub catalog: Catalog,
    pub clock: Clock,
    pub index: Arc<TokenIndex>,
    /// What `serve`'s recorder remembers, let go of once folded in.
    pub remembered: Remembered,
    /// Told when a fold fails (the requests stay recorded; the next fold tries again).
    pub report: fn(&Error),
}

impl Folder {
    /// Start the thread; it folds whatever waits now, then on each [`Folder::nudge`].
    pub(crate) fn start(job: FoldJob) -> (Arc<Folder>, std::thread::JoinHandle<()>) {
        let folder = Arc::new(Folder {
            waiting: Mutex::new(true),
            nudged: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let own = Arc::clone(&folder);
        let thread = std::thread::spawn(move || own.run(&job));
        (folder, thread)
    }

    /// Something was recorded: fold it soon.
    pub(crate) fn nudge(&self) {
        *self.waiting.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.nudged.notify_one();
    }

    /// Fold what waits one last time, then end the thread.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.nudge();
    }

    fn run(&self, job: &FoldJob) {
        yield_to_answers();
        let mut last: Option<Instant> = None;
        loop {
            let stopping = self.wait_for_work();
            if !stopping {
                // At most one rewrite every FOLD_EVERY; clicks meanwhile join this fold.
                if let Some(wait) = last.and_then(|t| FOLD_EVERY.checked_sub(t.elapsed())) {
                    self.sleep_unless_stopped(wait);
                }
            }
            last = Some(Instant::now());
            *self.waiting.lock().unwrap_or_else(PoisonError::into_inner) = false;
            let folded = fold(job);
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            if !folded {
                // Held by a send or an edit, or failed: try again later.
                *self.waiting.lock().unwrap_or_else(PoisonError::into_inner) = true;
                self.sleep_unless_stopped(RETRY);
            }
        }
    }

    /// Wait until work waits; `true` when stopping.
    fn wait_for_work(&self) -> bool {
        let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let waiting = self
            .nudged
            .wait_while(waiting, |w| !*w && !self.stop.load(Ordering::SeqCst))
            .unwrap_or_else(PoisonError::into_inner);
        drop(waiting);
        self.stop.load(Ordering::SeqCst)
    }

    fn sleep_unless_stopped(&self, wait: Duration) {
        let guard = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self
            .nudged
            .wait_timeout_while(guard, wait, |_| !self.stop.load(Ordering::SeqCst));
    }
}

/// Let `serve`'s answers go first: this thread's work (a list rewritten, thousands of
/// entries edited) can wait some milliseconds, a reader's click should not. The thread
/// holds no lock a request waits for while it works, except `optouts.sqlite`'s between two
/// short chunks, handed over fairly (see `Optouts::mark_applied`).
fn yield_to_answers() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain integers; a failure leaves the thread's priority as it was.
    unsafe {
        let me = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, me, 10);
    }
}

/// Copy the store's write-ahead log into it (the writer does so every ~1,024 pages; this
/// copies what its last commits left once a burst ends), then let the recorder forget
/// the requests now written into the list and the index.
fn settle_store(job: &FoldJob) {
    let done = super::Optouts::open(&job.config.state_dir, job.clock).and_then(|store| {
        store.checkpoint()?;
        job.remembered.forget_below(store.first_waiting()?);
        Ok(())
    });
    if let Err(e) = done {
        (job.report)(&e);
    }
}

/// One fold, if the list is free; `false` when a send or an edit holds it.
///
/// The lock is held from before the list's stamp is taken until the index has the
/// fold's readers, so that no other change of the list slips between them; and the
/// recorder forgets a request only after that, so that a reader is never shown the
/// list's old word for them (see `Endpoint::reader`).
fn fold(job: &FoldJob) -> bool {
    let applied = Lock::try_fold(&job.config.state_dir).and_then(|lock| {
        let Some(lock) = lock else {
            return Ok(None);
        };
        let before = job.index.fold_begins();
        let applied = super::apply::apply_pending(&job.config, &job.catalog, &lock, job.clock);
        match &applied {
            Ok(applied) => {
                if let Err(e) = job.index.folded(before, &applied.changed) {
                    (job.report)(&e);
                }
            }
            Err(_) => job.index.fold_ended(),
        }
        applied.map(Some)
    });
    match applied {
        Ok(Some(_)) => {
            settle_store(job);
            true
        }
        Ok(None) => false,
        Err(e) => {
            (job.report)(&e);
            false
        }
    }
}
