//! The systemd recipe in `contrib/systemd/` (issue 14): valid for systemd itself, retries
//! deferred readers the same day, and shown verbatim in the README.

use std::process::Command;

use crate::harness::repo_root;

const UNITS: &[&str] = &[
    "digestif.service",
    "digestif.timer",
    "digestif-serve.service",
];

fn unit(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("contrib/systemd").join(name)).unwrap()
}

#[test]
fn systemd_analyze_verify_accepts_the_units_without_a_word() {
    let dir = tempfile::tempdir().unwrap();
    for name in UNITS {
        // verify checks that ExecStart exists: point it at the binary under test.
        let text = unit(name).replace("/usr/local/bin/digestif", env!("CARGO_BIN_EXE_digestif"));
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(UNITS)
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze (Debian's systemd package; scripts/test installs it)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // verify exits 0 on unknown keys and bad values; it only says so.
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}

#[test]
fn the_service_retries_only_the_temporary_failure() {
    let service = unit("digestif.service");
    let value = |key: &str| {
        service
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing"))
            .to_string()
    };
    assert_eq!(value("Restart"), "on-failure");
    let prevent: Vec<&str> = value("RestartPreventExitStatus")
        .leak()
        .split(' ')
        .collect();
    assert_eq!(
        prevent,
        ["1", "2", "3"],
        "75 must stay a failure that restarts"
    );
    assert!(
        !service.contains("SuccessExitStatus"),
        "75 must not count as success"
    );
    let period = value("RestartSec");
    assert!(period.ends_with('h') || period.ends_with("min"), "{period}");
}

#[test]
fn the_readme_shows_the_units_as_they_are() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    for name in UNITS {
        assert!(
            readme.contains(&unit(name)),
            "README shows contrib/systemd/{name} verbatim"
        );
    }
}
