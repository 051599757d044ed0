//! Crash-safe file writes: every file digestif writes goes through [`write_atomic`].

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Write `bytes` to `path` so that a crash at any point leaves either the old file or the
/// new one, never a mix: temp file in the same folder, fsync, rename, fsync the folder.
/// A new file is private (0600): use this for subscribers, state and anything naming a
/// reader.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, bytes, None, || Ok(()))
}

/// [`write_atomic`] for files meant to be served or shared (the web archive, anonymous
/// previews): a new file gets mode 0644, so a web server running as another user can
/// read it.
pub(crate) fn write_public(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, bytes, Some(0o644), || Ok(()))
}

/// [`write_atomic`] with a hook run between the durable write and the rename, so tests can
/// simulate a crash or a failure at the worst moment.
fn write_atomic_with(
    path: &Path,
    bytes: &[u8],
    new_mode: Option<u32>,
    before_rename: impl FnOnce() -> std::io::Result<()>,
) -> Result<()> {
    write_atomic_filled(path, |f| f.write_all(bytes), new_mode, before_rename)
}

/// The crash-safe write of [`write_atomic`], the content written by `fill` (a list of any
/// size can be streamed), with `before_rename` run once the new file is durable and the old
/// one still in place (to keep a backup of it, say).
pub(crate) fn write_atomic_filled(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    new_mode: Option<u32>,
    before_rename: impl FnOnce() -> std::io::Result<()>,
) -> Result<()> {
    let (dir, tmp) = temp_beside(path)?;
    fill(&mut Trickle::new(tmp.as_file())).map_err(|e| Error::io("write", tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io("sync", tmp.path(), e))?;
    if let Ok(metadata) = std::fs::metadata(path) {
        // Keep the permissions of the file we replace (a subscriber list may be private).
        let _ = std::fs::set_permissions(tmp.path(), metadata.permissions());
    } else if let Some(mode) = new_mode {
        set_mode(tmp.path(), mode)?;
    }
    before_rename().map_err(|e| Error::io("write", path, e))?;
    tmp.persist(path)
        .map_err(|e| Error::io("replace", path, e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A large file handed to the disk as it is written, a chunk at a time, rather than all at
/// the sync at the end: on ext4 a sync of any other file (the store's, answering a reader)
/// waits for every block already placed, so a list of 50 MB flushed at once stalls it for
/// as long as the disk takes to write them all; this way it waits for a chunk at most.
struct Trickle<'f> {
    file: &'f std::fs::File,
    written: u64,
    /// Where the chunk being filled begins.
    chunk: u64,
    /// The chunk handed over last, whose write is waited for before the next is handed.
    in_flight: Option<(u64, u64)>,
}

/// Bytes handed to the disk at a time.
const TRICKLE: u64 = 1 << 20;

impl<'f> Trickle<'f> {
    fn new(file: &'f std::fs::File) -> Trickle<'f> {
        Trickle {
            file,
            written: 0,
            chunk: 0,
            in_flight: None,
        }
    }

    #[cfg(target_os = "linux")]
    fn hand_over(&mut self) {
        use std::os::fd::AsRawFd;
        let fd = self.file.as_raw_fd();
        let (start, len) = (self.chunk, self.written - self.chunk);
        // Advice only: a failure here shows again, and counts, at the sync.
        // SAFETY: a valid descriptor, plain integers.
        unsafe {
            libc::sync_file_range(fd, start as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE);
            if let Some((start, len)) = self.in_flight {
                let all = libc::SYNC_FILE_RANGE_WAIT_BEFORE
                    | libc::SYNC_FILE_RANGE_WRITE
                    | libc::SYNC_FILE_RANGE_WAIT_AFTER;
                libc::sync_file_range(fd, start as i64, len as i64, all);
            }
        }
        self.in_flight = Some((start, len));
        self.chunk = self.written;
    }

    #[cfg(not(target_os = "linux"))]
    fn hand_over(&mut self) {}
}

impl Write for Trickle<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.chunk >= TRICKLE {
            self.hand_over();
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io("set the permissions of", path, e))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> Result<()> {
    Ok(())
}

/// `path`'s folder, and a new temporary file in it (mode 0600), to be renamed over `path`.
fn temp_beside(path: &Path) -> Result<(&Path, tempfile::NamedTempFile)> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".digestif-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, e))?;
    Ok((dir, tmp))
}

/// Replace `path` with `bytes` (a temporary file renamed over it, so no reader sees half a
/// file) without syncing: for previews, which a rerun makes again. The caller syncs the
/// folder once at the end ([`sync_dir`]).
pub(crate) fn write_preview(path: &Path, bytes: &[u8]) -> Result<()> {
    let (_, mut tmp) = temp_beside(path)?;
    tmp.as_file_mut()
        .write_all(bytes)
        .map_err(|e| Error::io("write", tmp.path(), e))?;
    // Mode 0600, as the temporary file was made: a reader's message holds their address.
    tmp.persist(path)
        .map_err(|e| Error::io("replace", path, e.error))?;
    Ok(())
}

/// Make a folder's entries (and, with them, the files renamed into it) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync", dir, e))
}

pub(crate) fn create_dir_all(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create folder", dir, e))
}

/// Refuse to read `path` unless it is a regular file (or missing: the caller says what that
/// means): reading a FIFO would block the command, with the lock held, until someone
/// writes to it; a device or a socket is never a digestif file.
pub(crate) fn ensure_regular(path: &Path, what: &str) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() && !meta.is_dir() => Err(Error::Usage(format!(
            "{}: {what} must be a regular file, and this is a FIFO, a device or a socket",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// A folder only its owner may enter (0700), created if missing and tightened if an
/// earlier version made it readable: the state folder holds readers' addresses.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    create_dir_all(dir)?;
    keep_private(dir, 0o700)
}

/// `path` readable by its owner only (`mode` 0600 for a file, 0700 for a folder), whatever
/// the umask was when it was made.
#[cfg(unix)]
pub(crate) fn keep_private(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)
        .map_err(|e| Error::io("read", path, e))?
        .permissions()
        .mode();
    if current & 0o777 == mode {
        return Ok(());
    }
    set_mode(path, mode)
}

#[cfg(not(unix))]
pub(crate) fn keep_private(_: &Path, _: u32) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn public_files_are_readable_by_others_and_private_ones_are_not() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        write_public(&dir.path().join("page.html"), b"<p>").unwrap();
        write_atomic(&dir.path().join("subscribers.toml"), b"").unwrap();
        assert_eq!(mode(&dir.path().join("page.html")), 0o644);
        assert_eq!(mode(&dir.path().join("subscribers.toml")), 0o600);
    }

    #[test]
    fn a_list_of_many_chunks_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.toml");
        let line = |i: u64| format!("[[subscriber]]\nemail = \"r{i}@example.org\"\n\n");
        let count = 3 * TRICKLE / 40;
        write_atomic_filled(
            &path,
            |out| (0..count).try_for_each(|i| out.write_all(line(i).as_bytes())),
            None,
            || Ok(()),
        )
        .unwrap();
        let expected: String = (0..count).map(line).collect();
        assert!(expected.len() as u64 > 2 * TRICKLE);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
    }

    #[test]
    fn a_failure_between_write_and_rename_leaves_the_original_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.toml");
        std::fs::write(&path, "original").unwrap();
        let err = write_atomic_with(&path, b"new content", None, || {
            Err(std::io::Error::other("simulated crash"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("simulated crash"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "original");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "the temporary file is cleaned up"
        );
    }
}
