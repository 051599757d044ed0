//! Whether a relay has ever taken a connection from this configuration: a run that cannot
//! reach a relay that never answered is a setup mistake (exit 2, a person must look),
//! while one that answered before is down for now (exit 75, cron tries again).
//!
//! Kept as one line per (transport, host, port, tls, user) in `state_dir/relay.reached`,
//! written atomically.

use std::path::{Path, PathBuf};

use crate::config::SmtpConfig;
use crate::error::Result;
use crate::fsutil;

fn path_in(state_dir: &Path) -> PathBuf {
    state_dir.join("relay.reached")
}

/// What identifies a relay for this purpose: a change of any of these is a new setup.
pub(crate) fn fingerprint(smtp: &SmtpConfig) -> String {
    format!(
        "{:?} {}:{} {:?} {}",
        smtp.transport,
        smtp.host,
        smtp.port(),
        smtp.tls,
        smtp.username.as_deref().unwrap_or("-")
    )
}

/// Has the relay of `smtp` ever taken a connection from this state folder?
pub(crate) fn has_reached(state_dir: &Path, smtp: &SmtpConfig) -> bool {
    let wanted = fingerprint(smtp);
    std::fs::read_to_string(path_in(state_dir))
        .is_ok_and(|text| text.lines().any(|line| line == wanted))
}

/// Remember that the relay of `smtp` took a connection.
pub(crate) fn note_reached(state_dir: &Path, smtp: &SmtpConfig) -> Result<()> {
    if has_reached(state_dir, smtp) {
        return Ok(());
    }
    let path = path_in(state_dir);
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str(&fingerprint(smtp));
    text.push('\n');
    fsutil::create_private_dir(state_dir)?;
    fsutil::write_atomic(&path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_is_remembered_per_setup() {
        let dir = tempfile::tempdir().unwrap();
        let mut smtp = SmtpConfig::default();
        assert!(!has_reached(dir.path(), &smtp));
        note_reached(dir.path(), &smtp).unwrap();
        note_reached(dir.path(), &smtp).unwrap();
        assert!(has_reached(dir.path(), &smtp));
        smtp.port = Some(2525);
        assert!(
            !has_reached(dir.path(), &smtp),
            "another port is another setup"
        );
        let text = std::fs::read_to_string(dir.path().join("relay.reached")).unwrap();
        assert_eq!(text.lines().count(), 1);
    }
}
