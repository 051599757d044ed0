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

use std::fs::File;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{State, Update};
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
#[cfg(not(test))]
pub(crate) const GATHER: Duration = Duration::from_millis(1);
/// Tests gather longer, so that only the syncs a worker waits for put lines on disk in
/// time: a test that cuts the power sees what the waits alone guarantee.
#[cfg(test)]
pub(crate) const GATHER: Duration = Duration::from_millis(50);

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
#[derive(Default)]
struct Durability {
    appended: u64,
    synced: u64,
    /// When the oldest line not yet synced was appended: the syncer lets lines gather for
    /// [`GATHER`] after it before syncing them all at once.
    unsynced_since: Option<Instant>,
    /// Workers blocked in [`Journal::wait_durable`]: the syncer syncs at once for them.
    waiting: usize,
    /// The syncer failed: every waiter gets this error, and nothing more is sent.
    failed: Option<String>,
    done: bool,
    /// The syncer sleeps with no line to sync: only then does an append wake it (a
    /// wake-up is a system call).
    idle: bool,
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
        crate::fsutil::create_dir_all(&dir)?;
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
        let mut seg = shared.current.lock().expect("journal lock");
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
            let mut d = shared.durability.lock().expect("journal sync lock");
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
    /// syncer syncs what has gathered for [`GATHER`], or at once when a worker waits here,
    /// and one sync covers the lines of every worker appended before it (group commit).
    pub(crate) fn wait_durable(&self, receipt: Receipt) -> Result<()> {
        let shared = &*self.shared;
        if !shared.full_sync {
            return Ok(());
        }
        let mut d = shared.durability.lock().expect("journal sync lock");
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
            d = shared.to_waiters.wait(d).expect("journal sync lock");
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
        let seg = self.shared.current.lock().expect("journal lock");
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
        self.shared
            .durability
            .lock()
            .expect("journal sync lock")
            .done = true;
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
                let seg = self.current.lock().expect("journal lock");
                (Arc::clone(&seg.file), seg.path.clone(), seg.total, seg.len)
            };
            let result = file.sync_data();
            if result.is_ok() {
                on_disk::note(&path, len);
            }
            let mut d = self.durability.lock().expect("journal sync lock");
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

    /// Block until lines should be synced: they have gathered for [`GATHER`], or a worker
    /// waits for them. `false`: the journal is finished.
    fn wait_for_lines_to_sync(&self) -> bool {
        let mut d = self.durability.lock().expect("journal sync lock");
        loop {
            if d.done {
                return false;
            }
            match d.unsynced_since {
                None => {
                    d.idle = true;
                    d = self.to_syncer.wait(d).expect("journal sync lock");
                    d.idle = false;
                }
                Some(since) => {
                    let due = since + GATHER;
                    let now = Instant::now();
                    if d.waiting > 0 || now >= due {
                        // Lines appended from here on start the next gathering (the sync
                        // covers any written before it reads the segment's length).
                        d.unsynced_since = None;
                        return true;
                    }
                    d = self
                        .to_syncer
                        .wait_timeout(d, due - now)
                        .expect("journal sync lock")
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
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
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

/// Make a directory's entries (a new file, a removal) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::journal("sync", dir, e))
}

/// Segments left in the journal folder (by a killed run, or one whose fold failed), oldest
/// first.
pub(crate) fn leftovers(state_dir: &Path) -> Result<Vec<Closed>> {
    let dir = dir_in(state_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::journal("read", &dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::journal("read", &dir, e))?.path();
        if path.extension().is_some_and(|x| x == "log") {
            found.push(path);
        }
    }
    // Run names start with their UTC start time, and segment numbers are zero-padded.
    found.sort();
    Ok(found.into_iter().map(Closed).collect())
}

/// The run a segment belongs to: its name without `-NNNNNN.log`.
pub(crate) fn run_of(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.strip_suffix(".log").and_then(|n| n.rsplit_once('-')) {
        Some((run, _)) => run.to_string(),
        None => name,
    }
}

/// What a segment holds: its week and kind, and its valid lines in order.
pub(crate) struct Contents {
    pub week: Week,
    pub kind: Kind,
    /// The boot its run started in ([`boot_id`]); `None` in segments of earlier versions.
    pub boot: Option<String>,
    pub updates: Vec<Update>,
    /// A line failed its checksum or did not parse: it and what follows were left out.
    pub torn: bool,
}

/// This boot's identity (Linux: `/proc/sys/kernel/random/boot_id`). `None` elsewhere:
/// every leftover segment is then read as if the power had gone.
pub(crate) fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        .then(|| id.to_string())
}

/// Read a closed segment. `None`: no valid header (created, then the power went).
pub(crate) fn read(path: &Path) -> Result<Option<Contents>> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = File::open(path).map_err(|e| Error::journal("read", path, e))?;
    let mut lines = std::io::BufReader::new(file).split(b'\n');
    let header = match lines.next() {
        Some(Ok(line)) => String::from_utf8(line).unwrap_or_default(),
        Some(Err(e)) => return Err(Error::journal("read", path, e)),
        None => return Ok(None),
    };
    let mut words = header
        .strip_prefix(HEADER)
        .unwrap_or_default()
        .split_whitespace();
    let (Some(week), Some(kind), boot, None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Ok(None);
    };
    let Ok(week) = week.parse::<Week>() else {
        return Ok(None);
    };
    let mut contents = Contents {
        week,
        kind: Kind::parse(kind),
        boot: boot.map(str::to_string),
        updates: Vec::new(),
        torn: false,
    };
    for line in lines {
        let line = line.map_err(|e| Error::journal("read", path, e))?;
        match std::str::from_utf8(&line)
            .ok()
            .and_then(|l| decode(&name, l))
        {
            Some(update) => contents.updates.push(update),
            None => {
                contents.torn = true;
                break;
            }
        }
    }
    Ok(Some(contents))
}

fn checksum(segment: &str, body: &str) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(segment.as_bytes());
    h.update(body.as_bytes());
    h.finalize()
}

/// One line: `CRC BODY\n`, the body one of `S seq "message-id"`,
/// `O seq state attempts "detail"`, `U seq attempts resend-limit "detail"`.
fn encode(segment: &str, update: &Update, out: &mut String) {
    use std::fmt::Write as _;
    let start = out.len();
    out.push_str("00000000 ");
    let body_start = out.len();
    let _ = match update {
        Update::Sending { seq, message_id } => {
            let _ = write!(out, "S {seq} ");
            push_quoted(out, message_id);
            Ok(())
        }
        Update::Started { seq } => write!(out, "T {seq}"),
        Update::Outcome {
            seq,
            state,
            attempts,
            detail,
        } => write!(out, "O {seq} {state} {attempts} ").map(|()| push_quoted(out, detail)),
        Update::Unknown {
            seq,
            attempts,
            detail,
            resend_limit,
        } => write!(out, "U {seq} {attempts} {resend_limit} ").map(|()| push_quoted(out, detail)),
    };
    let crc = checksum(segment, &out[body_start..]);
    let hex: [u8; 8] =
        std::array::from_fn(|i| b"0123456789abcdef"[(crc >> (28 - 4 * i)) as usize & 0xf]);
    out.replace_range(
        start..body_start - 1,
        std::str::from_utf8(&hex).unwrap_or("00000000"),
    );
    out.push('\n');
}

/// `text` as a JSON string: as it is between quotes when nothing needs escaping (SMTP
/// replies and Message-IDs nearly always), else through serde_json.
fn push_quoted(out: &mut String, text: &str) {
    if text
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into()));
    }
}

fn decode(segment: &str, line: &str) -> Option<Update> {
    let (crc, body) = line.split_once(' ')?;
    if u32::from_str_radix(crc, 16).ok()? != checksum(segment, body) {
        return None;
    }
    let mut fields = body.splitn(5, ' ');
    let tag = fields.next()?;
    let seq: i64 = fields.next()?.parse().ok()?;
    let text = |s: Option<&str>| serde_json::from_str::<String>(s?).ok();
    Some(match tag {
        "S" => {
            let rest = body.splitn(3, ' ').nth(2)?;
            Update::Sending {
                seq,
                message_id: text(Some(rest))?,
            }
        }
        "T" if fields.next().is_none() => Update::Started { seq },
        "O" => {
            let state = State::parse(fields.next()?)?;
            let attempts = fields.next()?.parse().ok()?;
            Update::Outcome {
                seq,
                state,
                attempts,
                detail: text(fields.next())?,
            }
        }
        "U" => {
            let attempts = fields.next()?.parse().ok()?;
            let resend_limit = fields.next()?.parse().ok()?;
            Update::Unknown {
                seq,
                attempts,
                resend_limit,
                detail: text(fields.next())?,
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week() -> Week {
        "2011-W52".parse().unwrap()
    }

    fn updates() -> Vec<Update> {
        vec![
            Update::Sending {
                seq: 7,
                message_id: "<digest.2011-W52.ab@example.org>".into(),
            },
            Update::Started { seq: 7 },
            Update::Outcome {
                seq: 6,
                state: State::Sent,
                attempts: 2,
                detail: "250 2.0.0 Ok: queued as \"X\" \\ é".into(),
            },
            Update::Unknown {
                seq: 5,
                attempts: 1,
                detail: "no reply after end of data within 30 s".into(),
                resend_limit: 1,
            },
        ]
    }

    #[test]
    fn lines_round_trip_and_a_changed_byte_ends_the_segment() {
        let mut out = String::new();
        for u in updates() {
            encode("seg-000001.log", &u, &mut out);
        }
        let decoded: Vec<String> = out
            .lines()
            .map(|l| format!("{:?}", decode("seg-000001.log", l).unwrap()))
            .collect();
        let expected: Vec<String> = updates().iter().map(|u| format!("{u:?}")).collect();
        assert_eq!(decoded, expected);
        let first = out.lines().next().unwrap();
        assert!(
            decode("seg-000002.log", first).is_none(),
            "a line belongs to its segment"
        );
        let flipped = first.replacen("S 7", "S 8", 1);
        assert!(decode("seg-000001.log", &flipped).is_none());
        assert!(decode("seg-000001.log", &first[..first.len() - 3]).is_none());
    }

    #[test]
    fn a_segment_of_an_earlier_version_names_no_boot_and_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("20261101T000000.000000Z-42-000001.log");
        let mut text = format!("{HEADER} 2011-W52 real\n");
        encode(
            "20261101T000000.000000Z-42-000001.log",
            &updates()[0],
            &mut text,
        );
        std::fs::write(&path, text).unwrap();
        let contents = read(&path).unwrap().unwrap();
        assert_eq!(contents.boot, None);
        assert_eq!(contents.updates.len(), 1);
        assert_eq!(run_of(&path), "20261101T000000.000000Z-42");
    }

    #[test]
    fn a_torn_tail_is_left_out_and_the_rest_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let journal =
            Journal::create(dir.path(), week(), &Kind::Real, false, chrono::Utc::now()).unwrap();
        journal.append(&updates()).unwrap();
        let Closed(path) = journal.finish().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        // The power went while the last line was written: its end never reached the disk.
        let end = bytes.iter().position(|b| *b == 0).unwrap();
        bytes[end - 10..end].fill(0);
        std::fs::write(&path, &bytes).unwrap();
        let contents = read(&path).unwrap().unwrap();
        assert_eq!(contents.week, week());
        assert_eq!(contents.kind, Kind::Real);
        assert_eq!(contents.updates.len(), updates().len() - 1);
        assert!(contents.torn);
        assert_eq!(contents.boot, boot_id(), "the header names the boot");
        assert_eq!(leftovers(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn a_full_segment_is_handed_back_for_folding() {
        let dir = tempfile::tempdir().unwrap();
        let journal =
            Journal::create(dir.path(), week(), &Kind::Real, true, chrono::Utc::now()).unwrap();
        let one = &updates()[..1];
        let mut closed = Vec::new();
        for _ in 0..SEGMENT_LINES + 3 {
            let (receipt, full) = journal.append(one).unwrap();
            journal.wait_durable(receipt).unwrap();
            closed.extend(full);
        }
        assert_eq!(closed.len(), 1);
        let first = read(&closed[0].0).unwrap().unwrap();
        assert_eq!(first.updates.len() as u64, SEGMENT_LINES);
        let last = journal.finish().unwrap();
        assert_eq!(read(&last.0).unwrap().unwrap().updates.len(), 3);
        assert_eq!(leftovers(dir.path()).unwrap().len(), 2);
    }
}
