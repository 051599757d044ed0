//! One writer at a time: `send` and every subscriber edit hold an exclusive lock on
//! `<state_dir>/digestif.lock`. The kernel releases it when the process dies, so a crash
//! never leaves a stale lock behind.
//!
//! A fold (the requests to leave written in by `serve`, `check` or a dry run) holds the
//! same lock for a moment only. It says so by holding `digestif.fold.lock` too, so that a
//! send or an edit that meets it waits for it instead of failing: a cron send must not be
//! refused because a reader clicked "unsubscribe" just then.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long a send or an edit waits for folds to let the list go. A fold of a million
/// readers takes about a second; a minute means the list is held by something else.
const FOLD_PATIENCE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub(crate) struct Lock {
    // Fields drop in order: the list is let go before the fold marker.
    _list: File,
    _fold: Option<File>,
}

impl Lock {
    /// Take the lock for a send or an edit: wait while folds hold it, fail at once with
    /// [`Error::Locked`] when another send or edit does.
    pub(crate) fn acquire(state_dir: &Path) -> Result<Lock> {
        let (list, path) = open(state_dir, "digestif.lock")?;
        let deadline = Instant::now() + FOLD_PATIENCE;
        loop {
            if try_lock(&list, &path)? {
                return Ok(Lock::sole(list));
            }
            let brief = fold_holds(state_dir)?;
            // A fold may have let go between the two looks: the list is tried once more.
            if !brief && try_lock(&list, &path)? {
                return Ok(Lock::sole(list));
            }
            if !brief || Instant::now() >= deadline {
                return Err(locked(path));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn sole(list: File) -> Lock {
        Lock {
            _list: list,
            _fold: None,
        }
    }

    /// Take the lock for a fold, or `None` at once when anyone holds it.
    pub(crate) fn try_fold(state_dir: &Path) -> Result<Option<Lock>> {
        let (fold, fold_path) = open(state_dir, "digestif.fold.lock")?;
        if !try_lock(&fold, &fold_path)? {
            return Ok(None);
        }
        let (list, path) = open(state_dir, "digestif.lock")?;
        Ok(try_lock(&list, &path)?.then_some(Lock {
            _list: list,
            _fold: Some(fold),
        }))
    }
}

/// Whether a fold holds its marker: then the list's holder, if any, is brief.
fn fold_holds(state_dir: &Path) -> Result<bool> {
    let (fold, path) = open(state_dir, "digestif.fold.lock")?;
    // Taken and let go at once; a fold that meets it in that moment tries again later.
    Ok(!try_lock(&fold, &path)?)
}

fn open(state_dir: &Path, name: &str) -> Result<(File, PathBuf)> {
    crate::fsutil::create_private_dir(state_dir)?;
    let path = state_dir.join(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open lock file", &path, e))?;
    Ok((file, path))
}

/// `true` when taken, `false` when someone else holds it.
fn try_lock(file: &File, path: &Path) -> Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(Error::io("lock", path, e)),
    }
}

fn locked(path: PathBuf) -> Error {
    Error::Locked {
        path,
        hint: "a send or a subscriber edit is running; try again when it ends",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = Lock::acquire(dir.path()).unwrap();
        assert!(matches!(
            Lock::acquire(dir.path()),
            Err(Error::Locked { .. })
        ));
        assert!(Lock::try_fold(dir.path()).unwrap().is_none());
        drop(first);
        Lock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn a_send_waits_for_a_fold_and_a_fold_never_waits() {
        let dir = tempfile::tempdir().unwrap();
        let fold = Lock::try_fold(dir.path())
            .unwrap()
            .expect("the list is free");
        assert!(Lock::try_fold(dir.path()).unwrap().is_none());
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.path().to_path_buf();
        let send = std::thread::spawn(move || {
            let lock = Lock::acquire(&path);
            tx.send(()).unwrap();
            lock
        });
        // The send is still waiting while the fold holds the list.
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        drop(fold);
        let lock = send.join().unwrap().expect("taken once the fold let go");
        assert!(Lock::try_fold(dir.path()).unwrap().is_none());
        drop(lock);
    }
}
