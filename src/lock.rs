//! One writer at a time: `send` and every subscriber edit hold an exclusive lock on
//! `<state_dir>/digestif.lock`. The kernel releases it when the process dies, so a crash
//! never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::error::{Error, Result};

#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
}

impl Lock {
    /// Take the lock or fail at once with [`Error::Locked`].
    pub(crate) fn acquire(state_dir: &Path) -> Result<Lock> {
        crate::fsutil::create_private_dir(state_dir)?;
        let path = state_dir.join("digestif.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("open lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Lock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(Error::Locked {
                path,
                hint: "a send or a subscriber edit is running; try again when it ends",
            }),
            Err(TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
        }
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
        drop(first);
        Lock::acquire(dir.path()).unwrap();
    }
}
