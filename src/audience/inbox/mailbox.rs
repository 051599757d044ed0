//! A mailbox read as it is stored: a Maildir (`cur/` and `new/`) or an mbox file.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One message of a mailbox: where it is, and its bytes.
pub(crate) struct Stored {
    pub place: String,
    pub raw: Vec<u8>,
}

/// Every message of a Maildir (`new/` and `cur/`) or an mbox file, in a stable order.
pub(crate) fn read_mailbox(path: &Path) -> Result<Vec<Stored>> {
    if path.is_dir() {
        if !path.join("cur").is_dir() && !path.join("new").is_dir() {
            return Err(Error::Usage(format!(
                "{} is a folder but not a Maildir (no cur/ or new/ in it)",
                path.display()
            )));
        }
        let mut files: Vec<PathBuf> = Vec::new();
        for sub in ["new", "cur"] {
            let dir = path.join(sub);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let entry = entry.map_err(|e| Error::io("read Maildir", &dir, e))?;
                if entry.path().is_file() {
                    files.push(entry.path());
                }
            }
        }
        files.sort();
        files
            .into_iter()
            .map(|f| {
                let raw = std::fs::read(&f).map_err(|e| Error::io("read message", &f, e))?;
                Ok(Stored {
                    place: f.display().to_string(),
                    raw,
                })
            })
            .collect()
    } else {
        let raw = std::fs::read(path).map_err(|e| Error::io("read mbox", path, e))?;
        Ok(split_mbox(&raw)
            .into_iter()
            .enumerate()
            .map(|(i, raw)| Stored {
                place: format!("{} message {}", path.display(), i + 1),
                raw,
            })
            .collect())
    }
}

/// Split an mbox: each message starts with a `From ` line at the start of the file or
/// after a blank line; `>From ` quoting (mboxrd) is undone.
pub(super) fn split_mbox(raw: &[u8]) -> Vec<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut previous_blank = true;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if previous_blank && line.starts_with(b"From ") {
            messages.extend(current.take());
            current = Some(Vec::new());
            previous_blank = false;
            continue;
        }
        let blank = line == b"\n" || line == b"\r\n";
        if let Some(m) = current.as_mut() {
            let unquoted = line
                .iter()
                .position(|&b| b != b'>')
                .filter(|&n| n > 0 && line[n..].starts_with(b"From "))
                .map_or(line, |_| &line[1..]);
            m.extend_from_slice(unquoted);
        }
        previous_blank = blank;
    }
    messages.extend(current);
    for m in &mut messages {
        // The blank line before the next `From ` belongs to the mbox, not the message.
        if m.ends_with(b"\n\n") {
            m.pop();
        }
    }
    messages
}
