//! Files that hold readers' addresses are the owner's only, whatever the umask (issue 24,
//! item 2): the state folder 0700, the stores and the journal 0600, the list 0600 from
//! `init` on and kept so on every rewrite.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::harness::{SECRET, SUBSCRIBERS};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// digestif run in `dir` under `umask 022`, as most shells have it.
fn under_umask_022(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_digestif"))
        .args(args)
        .current_dir(dir)
        .env("DIGESTIF_NOW", crate::harness::NOW)
        .env("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)
        .env_remove("DIGESTIF_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn init_writes_the_list_private_and_the_rest_readable() {
    let dir = tempfile::tempdir().unwrap();
    under_umask_022(dir.path(), &["init"]);
    assert_eq!(mode(&dir.path().join("subscribers.toml")), 0o600);
    assert_eq!(mode(&dir.path().join("digestif.toml")), 0o644);
}

#[test]
fn every_file_that_holds_an_address_is_the_owners_only() {
    let config = crate::harness::CONFIG.replace(
        "unsubscribe_mailto = \"desabonnement@example.org\"",
        "unsubscribe_url = \"https://veille.example.org/unsubscribe\"",
    ) + "\n[smtp]\ntransport = \"file\"\nfile_dir = \"outbox\"\n";
    let site = crate::feeds::site_with_feeds(&["export.xml".to_string()]).file(
        "export.xml",
        crate::feeds::wordpress(&crate::feeds::three_items()),
    );
    let with_feeds = std::fs::read_to_string(site.path("digestif.toml")).unwrap();
    let feeds_line = with_feeds
        .lines()
        .find(|l| l.starts_with("feeds = "))
        .unwrap()
        .to_string();
    let site = site
        .file(
            "digestif.toml",
            config.replace(
                "default_category = \"Divers\"",
                &format!("default_category = \"Divers\"\n{feeds_line}"),
            ),
        )
        .file("subscribers.toml", SUBSCRIBERS);
    let dir = site.dir.path();
    std::fs::set_permissions(
        dir.join("subscribers.toml"),
        PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    under_umask_022(dir, &["send", "--week", "2011-W52"]);
    under_umask_022(
        dir,
        &[
            "unsubscribe",
            "--token",
            &crate::harness::token("camille@example.org"),
        ],
    );
    under_umask_022(dir, &["subscribers", "add", "new@example.org"]);
    assert_eq!(mode(&dir.join("state")), 0o700);
    for store in ["ledger.sqlite3", "optouts.sqlite", "feeds.sqlite"] {
        assert_eq!(mode(&dir.join("state").join(store)), 0o600, "{store}");
        let wal = dir.join("state").join(format!("{store}-wal"));
        if wal.exists() {
            assert_eq!(mode(&wal), 0o600, "{store}-wal");
        }
    }
    assert_eq!(mode(&dir.join("state/journal")), 0o700);
    // The list was rewritten twice (a leave, an add): still the owner's only.
    assert_eq!(mode(&dir.join("subscribers.toml")), 0o600);
}

#[test]
fn a_fifo_as_the_config_or_the_list_is_refused_at_once_and_holds_no_lock() {
    // Issue 24, item 7: reading a FIFO would block the command, the lock held.
    let site = crate::harness::Site::new().with_sample_week();
    let list = site.path("subscribers.toml");
    std::fs::remove_file(&list).unwrap();
    let made = Command::new("mkfifo").arg(&list).status().unwrap();
    assert!(made.success());
    for args in [
        &["check"][..],
        &["send", "--week", "2011-W52"],
        &["subscribers", "add", "a@b.org"],
    ] {
        let run = site
            .cmd(args)
            .timeout(std::time::Duration::from_secs(20))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("subscribers.toml: the subscriber list must be a regular file, and this is a FIFO, a device or a socket"),
            "{args:?}: {stderr}"
        );
    }
    // Nothing waits on the FIFO: with a real list again, the next edit goes through.
    std::fs::remove_file(&list).unwrap();
    std::fs::write(&list, "").unwrap();
    site.run(&["subscribers", "add", "a@b.org"]).success();
    let config = site.path("config.fifo");
    assert!(Command::new("mkfifo")
        .arg(&config)
        .status()
        .unwrap()
        .success());
    let run = site
        .cmd(&["--config", "config.fifo", "check"])
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr)
        .contains("config.fifo: the config must be a regular file"));
}
