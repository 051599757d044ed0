//! The outcome journal: what the workers of a run record about each message, appended to a
//! file with one `write` per record and folded into the SQLite ledger in batches.
//!
//! Why: a `write` reaches the page cache and survives a killed process exactly as a SQLite
//! commit in WAL mode does, for a small fraction of the CPU (no B-tree, no log frames, no
//! shared-memory index), and an fsync of it can cover the records of every worker at once
//! (group commit). The guarantees stay the ledger's: a recipient's *sending* record is
//! written (and, with `ledger_sync = "full"`, synced) before its end of data may go out,
//! and its outcome before that connection's next message.
//!
//! A journal is a folder of segments, `state/journal/<run>-<n>.log`. The first line names
//! the week and kind; each further line is one [`Update`] with a CRC-32 over the segment's
//! name and the line, so a torn tail (or a stale block after a power loss) ends the
//! segment instead of being applied. A segment is folded once closed: its updates are
//! applied in one SQLite transaction, which also records how many lines were folded, so a
//! crash between that commit and the segment's removal never applies a line twice.

mod kept;
mod line;
mod read;

pub(crate) use kept::{keep, proof, release, scrub, Proof, Served};
use line::encode;
pub(crate) use read::{boot_id, leftovers, read, run_of, sync_dir};

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::Update;
use crate::error::{Error, Result};
use crate::kind::Kind;
use crate::week::Week;

/// Lines per segment: a segment is folded into SQLite (one transaction) when it fills.
pub(crate) const SEGMENT_LINES: u64 = 1024;

/// Bytes written ahead (zeros) when a segment is created, so that a sync of its lines
/// changes no file size and costs a data flush only (about 140 µs here, against 220 µs for
/// a growing file). A segment that fills them up before [`SEGMENT_LINES`] is closed.
const SEGMENT_BYTES: u64 = 256 * 1024;

/// With `ledger_sync = "normal"`, the journal is synced every this many lines (about half
/// as many messages: a *sending* line and an outcome line each). A power loss loses at most
/// the lines since the last sync, whose recipients are then sent again.
pub(crate) const SYNC_EVERY_LINES: u64 = 200;

/// With `ledger_sync = "full"`, how long the syncer lets lines gather before syncing them
/// with one `fdatasync`, unless a worker waits for them. A sync costs about 60 µs of CPU
/// here (two exits to the hypervisor, wake-ups) whatever it covers: syncing as soon as a
/// line waits made one per two messages. The engine prepares messages far enough ahead
/// that their marks are synced before they are needed.
///
/// How long that is depends on the relay's pace and the number of connections, so the
/// window adapts between these bounds: a sync a worker had to wait for halves it, a sync
/// nobody waited for lengthens it by an eighth. At 4 connections to a local sink it stays
/// near the floor; at 16, each connection's next messages are further away and it grows:
/// 100,000 messages took about 6,900 syncs there with a fixed 1 ms window, 2,400 adapting
/// (and 8% less CPU).
#[cfg(not(test))]
const GATHER: (Duration, Duration) = (Duration::from_millis(1), Duration::from_millis(8));
/// Tests gather longer, so that only the syncs a worker waits for put lines on disk in
/// time: a test that cuts the power sees what the waits alone guarantee.
#[cfg(test)]
const GATHER: (Duration, Duration) = (Duration::from_millis(50), Duration::from_millis(50));

const HEADER: &str = "digestif-journal 1";

/// The journal of one run of one (week, kind).
pub(crate) struct Journal {
    shared: Arc<Shared>,
    /// With `ledger_sync = "full"`: the thread that syncs the journal whenever lines wait.
    /// One: a second was measured no faster (syncs of one file take turns in the kernel).
    syncer: Option<std::thread::JoinHandle<()>>,
}

/// What the workers and the syncer share.
struct Shared {
    dir: PathBuf,
    run: String,
    /// The first line of each segment: the week and kind its lines are about.
    header: String,
    full_sync: bool,
    current: Mutex<Segment>,
    durability: Mutex<Durability>,
    /// Wakes the syncer: lines appended while it slept, a worker waiting, or the end.
    to_syncer: Condvar,
    /// Wakes the waiters: lines synced, or the syncer failed.
    to_waiters: Condvar,
}

/// How far the journal is on disk (`ledger_sync = "full"`).
struct Durability {
    appended: u64,
    synced: u64,
    /// When the oldest line not yet synced was appended: the syncer lets lines gather for
    /// `gather` after it before syncing them all at once.
    unsynced_since: Option<Instant>,
    /// The gathering window, within [`GATHER`].
    gather: Duration,
    /// Workers blocked in [`Journal::wait_durable`]: the syncer syncs at once for them.
    waiting: usize,
    /// The syncer failed: every waiter gets this error, and nothing more is sent.
    failed: Option<String>,
    done: bool,
    /// The syncer sleeps with no line to sync: only then does an append wake it (a
    /// wake-up is a system call).
    idle: bool,
}

impl Default for Durability {
    fn default() -> Self {
        Durability {
            appended: 0,
            synced: 0,
            unsynced_since: None,
            gather: GATHER.0,
            waiting: 0,
            failed: None,
            done: false,
            idle: false,
        }
    }
}

/// The gathering window after a sync: shorter when a worker waited for it, longer when
/// not, within `(floor, ceiling)`.
fn adapted(gather: Duration, waited: bool, (floor, ceiling): (Duration, Duration)) -> Duration {
    if waited {
        (gather / 2).max(floor)
    } else {
        (gather + gather / 8).min(ceiling)
    }
}

/// The segment being written.
struct Segment {
    file: Arc<File>,
    path: PathBuf,
    name: String,
    number: u32,
    lines: u64,
    /// Lines appended by this journal so far, over all segments.
    total: u64,
    /// Lines since the last sync (`ledger_sync = "normal"`).
    unsynced: u64,
    /// Bytes written.
    len: u64,
}

/// Where an append ended: [`Journal::wait_durable`] waits until the journal is synced that far.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Receipt(u64);

/// A segment nobody writes any more, ready to be folded ([`super::Ledger::fold`]).
#[derive(Debug)]
pub(crate) struct Closed(pub(crate) PathBuf);

/// The journal folder of a state folder.
pub(crate) fn dir_in(state_dir: &Path) -> PathBuf {
    state_dir.join("journal")
}

impl Journal {
    /// Start the journal of a run; `started` (the wall clock) names the run, so a later
    /// run's segments sort after this one's.
    pub(crate) fn create(
        state_dir: &Path,
        week: Week,
        kind: &Kind,
        full_sync: bool,
        started: chrono::DateTime<chrono::Utc>,
    ) -> Result<Journal> {
        let dir = dir_in(state_dir);
        crate::fsutil::create_private_dir(&dir)?;
        let run = format!(
            "{}-{}",
            started.format("%Y%m%dT%H%M%S%.6fZ"),
            std::process::id()
        );
        // The boot the run started in: a segment a killed run left behind in the same boot
        // is whole (the page cache outlives a process), one from an earlier boot may have
        // lost its unsynced tail.
        let header = match boot_id() {
            Some(boot) => format!("{HEADER} {week} {kind} {boot}\n"),
            None => format!("{HEADER} {week} {kind}\n"),
        };
        let first = new_segment(&dir, &run, &header, full_sync, 1)?;
        let shared = Arc::new(Shared {
            dir,
            run,
            header,
            full_sync,
            current: Mutex::new(first),
            durability: Mutex::new(Durability::default()),
            to_syncer: Condvar::new(),
            to_waiters: Condvar::new(),
        });
        let syncer = full_sync.then(|| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || shared.sync_while_running())
        });
        Ok(Journal { shared, syncer })
    }

    /// Append `updates` with one write. Returns how far to wait for durability, and the
    /// previous segment when this append filled it up (the caller folds it).
    pub(crate) fn append(&self, updates: &[Update]) -> Result<(Receipt, Option<Closed>)> {
        let shared = &*self.shared;
        let mut seg = lock(&shared.current);
        let encoded = |name: &str| {
            let mut buf = String::with_capacity(160 * updates.len());
            for u in updates {
                encode(name, u, &mut buf);
            }
            buf
        };
        let mut buf = encoded(&seg.name);
        let mut closed = None;
        if seg.len + buf.len() as u64 > SEGMENT_BYTES || seg.lines >= SEGMENT_LINES {
            closed = Some(shared.rotate(&mut seg)?);
            // Each line's checksum covers its segment's name.
            buf = encoded(&seg.name);
        }
        use std::os::unix::fs::FileExt;
        seg.file
            .write_all_at(buf.as_bytes(), seg.len)
            .map_err(|e| Error::journal("write", &seg.path, e))?;
        let n = updates.len() as u64;
        seg.len += buf.len() as u64;
        seg.lines += n;
        seg.total += n;
        seg.unsynced += n;
        let receipt = Receipt(seg.total);
        if shared.full_sync {
            let mut d = lock(&shared.durability);
            d.appended = seg.total;
            if d.unsynced_since.is_none() {
                d.unsynced_since = Some(Instant::now());
                if d.idle {
                    shared.to_syncer.notify_one();
                }
            }
        } else if seg.unsynced >= SYNC_EVERY_LINES {
            seg.file
                .sync_data()
                .map_err(|e| Error::journal("sync", &seg.path, e))?;
            seg.unsynced = 0;
            on_disk::note(&seg.path, seg.len);
        }
        Ok((receipt, closed))
    }

    /// With `ledger_sync = "full"`, return once every line up to `receipt` is on disk. The
    /// syncer syncs what has gathered for a while ([`GATHER`]), or at once when a worker waits here,
    /// and one sync covers the lines of every worker appended before it (group commit).
    pub(crate) fn wait_durable(&self, receipt: Receipt) -> Result<()> {
        let shared = &*self.shared;
        if !shared.full_sync {
            return Ok(());
        }
        let mut d = lock(&shared.durability);
        let mut counted = false;
        let result = loop {
            if let Some(why) = &d.failed {
                break Err(Error::journal(
                    "sync",
                    &shared.dir,
                    std::io::Error::other(why.clone()),
                ));
            }
            if d.synced >= receipt.0 {
                break Ok(());
            }
            if !counted {
                counted = true;
                d.waiting += 1;
                shared.to_syncer.notify_one();
            }
            d = shared
                .to_waiters
                .wait(d)
                .unwrap_or_else(PoisonError::into_inner);
        };
        if counted {
            d.waiting -= 1;
        }
        result
    }

    /// The run's name, which every segment's name starts with.
    pub(crate) fn run(&self) -> &str {
        &self.shared.run
    }

    /// End the run: the last segment, closed and synced, to be folded.
    pub(crate) fn finish(mut self) -> Result<Closed> {
        self.stop_syncer();
        let seg = lock(&self.shared.current);
        seg.file
            .sync_data()
            .map_err(|e| Error::journal("sync", &seg.path, e))?;
        on_disk::note(&seg.path, seg.len);
        Ok(Closed(seg.path.clone()))
    }

    fn stop_syncer(&mut self) {
        let Some(syncer) = self.syncer.take() else {
            return;
        };
        lock(&self.shared.durability).done = true;
        self.shared.to_syncer.notify_one();
        let _ = syncer.join();
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop_syncer();
    }
}

impl Shared {
    /// Close the current segment (synced) and start the next one.
    fn rotate(&self, seg: &mut Segment) -> Result<Closed> {
        seg.file
            .sync_data()
            .map_err(|e| Error::journal("sync", &seg.path, e))?;
        on_disk::note(&seg.path, seg.len);
        let mut next = new_segment(
            &self.dir,
            &self.run,
            &self.header,
            self.full_sync,
            seg.number + 1,
        )?;
        next.total = seg.total;
        let old = std::mem::replace(seg, next);
        Ok(Closed(old.path))
    }

    /// The syncer: sync what has gathered, until the journal is finished.
    fn sync_while_running(&self) {
        while self.wait_for_lines_to_sync() {
            // Lines of earlier segments were synced when their segment was closed.
            let (file, path, upto, len) = {
                let seg = lock(&self.current);
                (Arc::clone(&seg.file), seg.path.clone(), seg.total, seg.len)
            };
            let result = file.sync_data();
            if result.is_ok() {
                on_disk::note(&path, len);
            }
            let mut d = lock(&self.durability);
            match result {
                Ok(()) => {
                    d.synced = d.synced.max(upto);
                    if d.synced >= d.appended {
                        d.unsynced_since = None;
                    }
                    // A wake-up is a system call: only for workers that wait.
                    if d.waiting > 0 {
                        self.to_waiters.notify_all();
                    }
                }
                Err(e) => {
                    d.failed = Some(format!("{}: {e}", path.display()));
                    d.done = true;
                    self.to_waiters.notify_all();
                }
            }
        }
    }

    /// Block until lines should be synced: they have gathered long enough, or a worker
    /// waits for them. `false`: the journal is finished.
    fn wait_for_lines_to_sync(&self) -> bool {
        let mut d = lock(&self.durability);
        loop {
            if d.done {
                return false;
            }
            match d.unsynced_since {
                None => {
                    d.idle = true;
                    d = self
                        .to_syncer
                        .wait(d)
                        .unwrap_or_else(PoisonError::into_inner);
                    d.idle = false;
                }
                Some(since) => {
                    let due = since + d.gather;
                    let now = Instant::now();
                    if d.waiting > 0 || now >= due {
                        // Lines appended from here on start the next gathering (the sync
                        // covers any written before it reads the segment's length).
                        d.unsynced_since = None;
                        d.gather = adapted(d.gather, d.waiting > 0, GATHER);
                        return true;
                    }
                    d = self
                        .to_syncer
                        .wait_timeout(d, due - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
    }
}

/// Create segment `number` of `run`, its header written (and synced with `full_sync`).
fn new_segment(
    dir: &Path,
    run: &str,
    header: &str,
    full_sync: bool,
    number: u32,
) -> Result<Segment> {
    let name = format!("{run}-{number:06}.log");
    let path = dir.join(&name);
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        // Readers' addresses and outcomes: owner only, whatever the umask.
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::journal("create", &path, e))?;
    // Held while the segment is written: opening the ledger folds only unlocked segments.
    file.lock().map_err(|e| Error::journal("lock", &path, e))?;
    // The header, then zeros up to the segment's size (no line, so reading stops there).
    let mut ahead = vec![0u8; SEGMENT_BYTES as usize];
    ahead[..header.len()].copy_from_slice(header.as_bytes());
    file.write_all(&ahead)
        .map_err(|e| Error::journal("write", &path, e))?;
    if full_sync {
        file.sync_all()
            .map_err(|e| Error::journal("sync", &path, e))?;
        sync_dir(dir)?;
        on_disk::note(&path, header.len() as u64);
    }
    Ok(Segment {
        file: Arc::new(file),
        path,
        name,
        number,
        lines: 0,
        total: 0,
        unsynced: 0,
        len: header.len() as u64,
    })
}

/// How much of each segment is known to be on disk. Test builds keep it, so that a test can
/// cut the power at any instant (the engine's tests); other builds keep nothing.
#[cfg(test)]
pub(crate) mod on_disk {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::sync::{LazyLock, Mutex};

    static SYNCED: LazyLock<Mutex<HashMap<PathBuf, u64>>> = LazyLock::new(Default::default);

    pub(crate) fn note(path: &Path, len: u64) {
        let mut synced = SYNCED.lock().expect("on-disk lock");
        let known = synced.entry(path.to_path_buf()).or_default();
        *known = (*known).max(len);
    }

    /// Bytes of the segment at `path` that a power loss would leave.
    pub(crate) fn len(path: &Path) -> u64 {
        let synced = SYNCED.lock().expect("on-disk lock");
        synced.get(path).copied().unwrap_or(0)
    }
}

#[cfg(not(test))]
mod on_disk {
    pub(super) fn note(_: &std::path::Path, _: u64) {}
}

/// A lock of the journal, even if a worker panicked while holding it: the segment and the
/// sync state stay whole between appends, and the panic ends the run anyway.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
