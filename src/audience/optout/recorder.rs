//! Requests to leave from `serve`, made durable together: each worker hands its request to
//! one thread that writes all those waiting in one transaction, with one sync, and answers
//! each when that commit is on disk. A burst of a thousand clicks costs a few dozen syncs,
//! not a thousand; no request is answered before it would survive a power loss.

use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};

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
/// Pages a commit writes besides one per request (the reader's leaf of `optouts_key`,
/// far from the last request's): the table's last leaf, the pending index's, a parent.
const PAGES_PER_COMMIT: usize = 3;

struct Job {
    request: (String, Status, String),
    done: Sender<std::result::Result<bool, String>>,
}

/// The hand-off to the writing thread; cheap to share between workers.
pub(crate) struct Recorder {
    jobs: SyncSender<Job>,
    path: std::path::PathBuf,
}

impl Recorder {
    /// Open the store of `state_dir` now (so that a store we cannot write fails `serve`'s
    /// start, not the first click) and start the writing thread.
    pub(crate) fn start(state_dir: &Path, clock: Clock) -> Result<Recorder> {
        let store = Optouts::open(state_dir, clock)?;
        // Checkpoints come between two of this thread's commits, not inside one.
        store.checkpoint_by_hand()?;
        let path = store.path.clone();
        let (jobs, waiting) = mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("optout-writer".into())
            .spawn(move || write_batches(store, &waiting))
            .map_err(|e| Error::io("start a thread for", state_dir, e))?;
        Ok(Recorder { jobs, path })
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

/// Until every worker has let go: take what waits, write it, answer each; every
/// [`CHECKPOINT_AFTER`] pages or so, once the answers are out, copy the log into the store.
fn write_batches(mut store: Optouts, waiting: &Receiver<Job>) {
    let mut pages = 0;
    while let Ok(first) = waiting.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match waiting.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        pages += PAGES_PER_COMMIT + write_one_batch(&mut store, batch);
        if pages >= CHECKPOINT_AFTER {
            pages = match store.checkpoint() {
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
fn write_one_batch(store: &mut Optouts, batch: Vec<Job>) -> usize {
    let requests: Vec<_> = batch.iter().map(|j| j.request.clone()).collect();
    match store.record_many(&requests) {
        Ok(recorded) => {
            let new = recorded.iter().filter(|new| **new).count();
            for (job, new) in batch.into_iter().zip(recorded) {
                let _ = job.done.send(Ok(new));
            }
            new
        }
        Err(e) => {
            for job in batch {
                let _ = job.done.send(Err(e.to_string()));
            }
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_requests_are_each_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = std::sync::Arc::new(Recorder::start(dir.path(), Clock::system()).unwrap());
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let recorder = std::sync::Arc::clone(&recorder);
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
