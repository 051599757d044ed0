//! Requests to leave from `serve`, made durable together: each worker hands its request to
//! one thread that writes all those waiting in one transaction, with one sync, and answers
//! each when that commit is on disk. A burst of a thousand clicks costs a few dozen syncs,
//! not a thousand; no request is answered before it would survive a power loss.
//!
//! The thread remembers the row of each request it recorded until a fold writes it into
//! the list, so that a second click from the same reader is told apart from a first by
//! one row read by id, with no index of requests by reader to write at every click.
//! Requests that other commands record while `serve` runs (a bounce read by `inbox`
//! while a send holds the list) are not among them: a click of such a reader records a
//! second request, which the fold writes in as harmlessly as the first.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};

use super::Optouts;
use crate::audience::subscribers::Status;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::store::Store;

/// Requests written in one transaction, at most.
const BATCH: usize = 512;
/// Requests waiting for the writer, at most: a worker past that waits its turn.
const QUEUE: usize = 4096;
/// Pages written to the log between two of this thread's checkpoints, about 4 MiB, so
/// that copying them takes milliseconds. Left to grow, the log passed 380 MB in a 10 s
/// burst: the folds' checkpoints never caught up with a writer that never paused, so the
/// log never started over, and every commit's sync grew the file, which on ext4 waits for
/// the journal, and with it for whatever a fold wrote meanwhile (stalls of 50-760 ms).
const CHECKPOINT_AFTER: usize = 1024;
/// Pages a commit writes, about: the table's last leaf, the pending index's, a parent
/// or the header; and one more per [`ROWS_PER_PAGE`] requests. (Before version 6 of the
/// store, each request also wrote a page of its own, at random in an index by reader.)
const PAGES_PER_COMMIT: usize = 3;
/// Requests whose rows fill a page, about (a row and its entry in the pending index).
const ROWS_PER_PAGE: usize = 32;

struct Job {
    request: (String, Status, String),
    done: Sender<std::result::Result<bool, String>>,
}

/// The requests this process recorded that may still wait to be written into the list:
/// a hash of the reader's key to status and row, 24 bytes and no allocation a request
/// (a second reader with the same hash only costs a request recorded twice: the row is
/// checked against the key). Let go once a fold has written them in.
type Waiting = Arc<Mutex<HashMap<u64, (Status, i64)>>>;

/// The map's key for a reader.
fn hashed(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// The hand-off to the writing thread; cheap to share between workers.
pub(crate) struct Recorder {
    jobs: SyncSender<Job>,
    path: std::path::PathBuf,
    waiting: Waiting,
}

impl Recorder {
    /// Open the store of `state_dir` now (so that a store we cannot write fails `serve`'s
    /// start, not the first click) and start the writing thread.
    pub(crate) fn start(state_dir: &Path, clock: Clock) -> Result<Recorder> {
        let store = Optouts::open(state_dir, clock)?;
        // Checkpoints come between two of this thread's commits, not inside one.
        store.checkpoint_by_hand()?;
        let path = store.path.clone();
        let known = store.pending()?;
        let known = known
            .into_iter()
            .map(|r| (hashed(&r.key), (r.status, r.id)));
        let waiting: Waiting = Arc::new(Mutex::new(known.collect()));
        let (jobs, queue) = mpsc::sync_channel(QUEUE);
        let writer = Writer {
            store,
            waiting: Arc::clone(&waiting),
            pages: 0,
        };
        std::thread::Builder::new()
            .name("optout-writer".into())
            .spawn(move || writer.run(&queue))
            .map_err(|e| Error::io("start a thread for", state_dir, e))?;
        Ok(Recorder {
            jobs,
            path,
            waiting,
        })
    }

    /// What this recorder remembers, to let go of after each fold.
    pub(crate) fn remembered(&self) -> Remembered {
        Remembered(Arc::clone(&self.waiting))
    }

    /// The row of a request to leave that this process recorded for `key`, if one may
    /// still wait to be written into the list (ask the store: a fold may have).
    pub(crate) fn recorded_for(&self, key: &str) -> Option<i64> {
        let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.get(&hashed(key)).map(|(_, id)| *id)
    }

    /// Record that `key` leaves with `status`: `true` once it is on disk, `false` when the
    /// same request already waited to be written into the list.
    pub(crate) fn record(&self, key: &str, status: Status, source: &str) -> Result<bool> {
        let (done, answer) = mpsc::channel();
        let request = (key.to_string(), status, source.to_string());
        let gone = || self.unusable("the writing thread has stopped".into());
        self.jobs.send(Job { request, done }).map_err(|_| gone())?;
        answer
            .recv()
            .map_err(|_| gone())?
            .map_err(|why| self.unusable(why))
    }

    fn unusable(&self, why: String) -> Error {
        Error::StoreUnusable {
            store: Store::Optouts,
            path: self.path.clone(),
            why,
        }
    }
}

/// Where a request of a batch stands: its own place among those written, or a repeat of
/// one earlier in the batch.
enum Slot {
    Own(usize),
    Repeat,
}

/// The writing thread's state.
struct Writer {
    store: Optouts,
    waiting: Waiting,
    /// Pages written to the log since the last checkpoint, about.
    pages: usize,
}

impl Writer {
    /// Until every worker has let go: take what waits, write it, answer each; every
    /// [`CHECKPOINT_AFTER`] pages or so, once the answers are out, copy the log into the
    /// store.
    fn run(mut self, queue: &Receiver<Job>) {
        while let Ok(first) = queue.recv() {
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.pages += PAGES_PER_COMMIT + self.write_one_batch(batch) / ROWS_PER_PAGE;
            if self.pages >= CHECKPOINT_AFTER {
                self.pages = match self.store.checkpoint() {
                    Ok(true) => 0,
                    // A reader held part of the log, or the checkpoint failed (which loses
                    // nothing: the log keeps every commit): again a quarter later, not at
                    // every commit meanwhile.
                    _ => CHECKPOINT_AFTER * 3 / 4,
                };
            }
        }
    }

    /// Write `batch` in one transaction and answer each of its requests; how many it wrote.
    fn write_one_batch(&mut self, batch: Vec<Job>) -> usize {
        // A second click of the same reader in the batch waits behind the first.
        let mut firsts = HashSet::new();
        let mut requests = Vec::with_capacity(batch.len());
        let slots: Vec<Slot> = (batch.iter())
            .map(|job| {
                let (key, status, _) = &job.request;
                if !firsts.insert((key.as_str(), *status)) {
                    return Slot::Repeat;
                }
                requests.push(job.request.clone());
                Slot::Own(requests.len() - 1)
            })
            .collect();
        match self.record(&requests) {
            Ok(ids) => {
                let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
                for ((key, status, _), id) in requests.iter().zip(&ids) {
                    if let Some(id) = id {
                        waiting.insert(hashed(key), (*status, *id));
                    }
                }
                for (job, slot) in batch.into_iter().zip(slots) {
                    let new = matches!(slot, Slot::Own(at) if ids[at].is_some());
                    let _ = job.done.send(Ok(new));
                }
                ids.iter().flatten().count()
            }
            Err(e) => {
                for job in batch {
                    let _ = job.done.send(Err(e.to_string()));
                }
                0
            }
        }
    }

    /// Record `requests`, each unless this process's own request for it still waits.
    fn record(&mut self, requests: &[(String, Status, String)]) -> Result<Vec<Option<i64>>> {
        // Looked up first: workers asking `recorded_for` do not wait for the commit.
        let known: Vec<Option<i64>> = {
            let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            (requests.iter())
                .map(|(key, status, _)| match waiting.get(&hashed(key)) {
                    Some((s, id)) if s == status => Some(*id),
                    _ => None,
                })
                .collect()
        };
        self.store.record_many(requests, &known)
    }
}

/// The recorder's memory, for the folding thread to let go of what it wrote in.
#[derive(Clone)]
pub(crate) struct Remembered(Waiting);

impl Remembered {
    /// Let go of the requests below `first_waiting` (all of them when `None`): a fold has
    /// written them into the list and the index, so memory holds only what waits.
    pub(crate) fn forget_below(&self, first_waiting: Option<i64>) {
        let mut waiting = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match first_waiting {
            Some(first) => waiting.retain(|_, (_, id)| *id >= first),
            None => waiting.clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_requests_are_each_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Arc::new(Recorder::start(dir.path(), Clock::system()).unwrap());
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let recorder = Arc::clone(&recorder);
                std::thread::spawn(move || {
                    (0..25)
                        .map(|i| {
                            let key = format!("r{}@example.org", (t * 25 + i) % 100);
                            recorder.record(&key, Status::Unsubscribed, "web").unwrap()
                        })
                        .filter(|new| *new)
                        .count()
                })
            })
            .collect();
        let new: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(new, 100, "200 clicks from 100 readers: 100 requests");
        let store = Optouts::open(dir.path(), Clock::system()).unwrap();
        assert_eq!(store.pending().unwrap().len(), 100);
    }

    #[test]
    fn a_second_click_is_new_only_once_the_first_is_written_in_even_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let leave = |recorder: &Recorder, key: &str| {
            recorder.record(key, Status::Unsubscribed, "web").unwrap()
        };
        let recorder = Recorder::start(dir.path(), Clock::system()).unwrap();
        assert!(leave(&recorder, "jo@x.org"));
        assert!(!leave(&recorder, "jo@x.org"), "the first still waits");
        assert!(leave(&recorder, "ana@x.org"));
        let jo = recorder.recorded_for("jo@x.org").unwrap();
        drop(recorder);
        // A new `serve` learns from the store what waits.
        let recorder = Recorder::start(dir.path(), Clock::system()).unwrap();
        assert_eq!(recorder.recorded_for("jo@x.org"), Some(jo));
        assert!(!leave(&recorder, "jo@x.org"));
        // A fold writes Jo's request in: Jo's next click is a request of its own.
        let store = Optouts::open(dir.path(), Clock::system()).unwrap();
        store.mark_applied(jo, jo).unwrap();
        assert!(leave(&recorder, "jo@x.org"));
        assert!(recorder.recorded_for("jo@x.org").unwrap() > jo);
        let pending: Vec<String> = store
            .pending()
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(pending, ["ana@x.org", "jo@x.org"]);
    }

    #[test]
    fn requests_written_in_are_let_go_when_the_fold_says() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Recorder::start(dir.path(), Clock::system()).unwrap();
        for key in ["jo@x.org", "ana@x.org"] {
            assert!(recorder.record(key, Status::Unsubscribed, "web").unwrap());
        }
        let jo = recorder.recorded_for("jo@x.org").unwrap();
        let ana = recorder.recorded_for("ana@x.org").unwrap();
        recorder.remembered().forget_below(Some(ana));
        assert_eq!(recorder.recorded_for("jo@x.org"), None);
        assert_eq!(recorder.recorded_for("ana@x.org"), Some(ana));
        // Forgotten, a second click records a second request.
        assert!(recorder
            .record("jo@x.org", Status::Unsubscribed, "web")
            .unwrap());
        assert!(recorder.recorded_for("jo@x.org").unwrap() > jo);
        recorder.remembered().forget_below(None);
        assert_eq!(recorder.recorded_for("ana@x.org"), None);
    }

    #[test]
    fn the_log_starts_over_however_long_the_requests_come() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Recorder::start(dir.path(), Clock::system()).unwrap();
        // One at a time: a commit each, three times the pages between two checkpoints.
        let commits = 3 * CHECKPOINT_AFTER / (PAGES_PER_COMMIT + 1);
        for i in 0..commits {
            let key = format!("r{i}@example.org");
            assert!(recorder.record(&key, Status::Unsubscribed, "web").unwrap());
        }
        let log = std::fs::metadata(dir.path().join("optouts.sqlite-wal")).unwrap();
        let frame = 4096 + 24;
        let most = (CHECKPOINT_AFTER + 64) * frame;
        assert!(
            log.len() <= most as u64,
            "the log grew to {} bytes, past {most}",
            log.len()
        );
        let store = Optouts::open(dir.path(), Clock::system()).unwrap();
        assert_eq!(store.pending().unwrap().len(), commits);
    }

    #[test]
    fn a_reader_holding_the_log_only_delays_its_new_start() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Recorder::start(dir.path(), Clock::system()).unwrap();
        let record = |from: usize, to: usize| {
            for i in from..to {
                let key = format!("r{i}@example.org");
                assert!(recorder.record(&key, Status::Unsubscribed, "web").unwrap());
            }
        };
        record(0, 1);
        // A read transaction left open: no checkpoint may copy past what it reads.
        let reader = rusqlite::Connection::open(dir.path().join("optouts.sqlite")).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let count = "SELECT count(*) FROM optouts";
        let seen: i64 = reader.query_row(count, [], |r| r.get(0)).unwrap();
        let commits = 2 * CHECKPOINT_AFTER / (PAGES_PER_COMMIT + 1);
        record(1, 1 + commits);
        assert_eq!(
            reader.query_row(count, [], |r| r.get::<_, i64>(0)).unwrap(),
            seen
        );
        reader.execute_batch("COMMIT").unwrap();
        // Let go: within a checkpoint's worth of requests the log starts over.
        record(1 + commits, 1 + 2 * commits);
        let frames: i64 = reader
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
            .unwrap();
        assert!(
            frames <= (CHECKPOINT_AFTER + 64) as i64,
            "{frames} pages in the log: it never started over"
        );
        let store = Optouts::open(dir.path(), Clock::system()).unwrap();
        assert_eq!(store.pending().unwrap().len(), 1 + 2 * commits);
    }
}
