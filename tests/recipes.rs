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
    assert_systemd_accepts(dir.path(), UNITS);
}

/// `systemd-analyze verify` on the units `names` in `dir` succeeds and says nothing: it
/// exits 0 on unknown keys and bad values, so its silence is the test.
#[track_caller]
pub(crate) fn assert_systemd_accepts(dir: &std::path::Path, names: &[&str]) {
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(names)
        .current_dir(dir)
        .output()
        .expect("systemd-analyze (Debian's systemd package; scripts/test installs it)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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

/// A newsletter that sends to files, with a one-click endpoint (so it needs the secret).
fn scheduled_site() -> crate::harness::Site {
    let config = crate::harness::CONFIG.replace(
        "unsubscribe_mailto = \"desabonnement@example.org\"",
        "unsubscribe_url = \"https://veille.example.org/unsubscribe\"",
    ) + "\n[smtp]\ntransport = \"file\"\nfile_dir = \"outbox\"\n";
    crate::harness::Site::new()
        .file("digestif.toml", config)
        .file("subscribers.toml", crate::harness::SUBSCRIBERS)
        .with_sample_week()
}

#[test]
fn schedule_writes_user_units_that_systemd_accepts() {
    // Issue 26: no root, no user to create, every path absolute.
    let site = scheduled_site();
    let home = tempfile::tempdir().unwrap();
    site.cmd(&["schedule", "--systemd", "--user", "--install"])
        .env("HOME", home.path())
        .env_remove("XDG_CONFIG_HOME")
        .assert()
        .success();
    let dir = home.path().join(".config/systemd/user");
    let names = [
        "digestif.service",
        "digestif.timer",
        "digestif-serve.service",
    ];
    for name in names {
        assert!(dir.join(name).is_file(), "{name}");
    }
    let service = std::fs::read_to_string(dir.join("digestif.service")).unwrap();
    assert!(service.contains(&format!(
        "ExecStart={} --config {}/digestif.toml send\n",
        env!("CARGO_BIN_EXE_digestif"),
        site.dir.path().display()
    )));
    assert!(!service.contains("User="), "a user unit runs as its user");
    let env_file = site.path("digestif.env");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the secrets file is private");
    assert!(std::fs::read_to_string(&env_file)
        .unwrap()
        .contains("DIGESTIF_UNSUBSCRIBE_SECRET=\n"));
    assert_systemd_accepts(&dir, &names);
}

/// Run the weekly line of the `digestif.crontab` that `schedule --cron --install` wrote
/// as cron runs a job: /bin/sh, `PATH=/usr/bin:/bin`, `HOME` (and `extra`, such as the
/// harness's clock), nothing else, from `home`. It must succeed; the log it wrote.
#[track_caller]
pub(crate) fn run_weekly_cron_line(
    site: &crate::harness::Site,
    home: &std::path::Path,
    extra: &[&str],
) -> String {
    let crontab = std::fs::read_to_string(site.path("digestif.crontab")).unwrap();
    let line = crontab
        .lines()
        .find(|l| l.starts_with("0 7 * * 1"))
        .expect("the weekly line");
    let command = line.splitn(6, char::is_whitespace).last().unwrap().trim();
    let out = Command::new("/usr/bin/env")
        .args(["-i", "PATH=/usr/bin:/bin", "SHELL=/bin/sh"])
        .args(extra)
        .arg(format!("HOME={}", home.display()))
        .args(["/bin/sh", "-c", command])
        .current_dir(home)
        .output()
        .unwrap();
    let log = std::fs::read_to_string(site.path("digestif.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "{log}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    log
}

#[test]
fn the_scheduled_cron_line_runs_with_crons_bare_environment() {
    let site = scheduled_site();
    site.cmd(&["schedule", "--cron", "--install"])
        .assert()
        .success();
    // The secret, and the harness's clock so the sample week is the one to send.
    std::fs::write(
        site.path("digestif.env"),
        format!(
            "DIGESTIF_UNSUBSCRIBE_SECRET={}\nDIGESTIF_NOW={}\n",
            crate::harness::SECRET,
            crate::harness::NOW
        ),
    )
    .unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let log = run_weekly_cron_line(&site, elsewhere.path(), &[]);
    assert!(log.starts_with("2011-W52: 2 sent"), "{log}");
    assert_eq!(std::fs::read_dir(site.path("outbox")).unwrap().count(), 2);
}

#[test]
fn the_contrib_units_are_what_schedule_writes_for_srv_newsletter() {
    let site = scheduled_site();
    let config = std::fs::read_to_string(site.path("digestif.toml")).unwrap();
    let site = site.file(
        "digestif.toml",
        config + "password_env = \"DIGESTIF_SMTP_PASSWORD\"\n",
    );
    let run = site.run(&[
        "schedule",
        "--systemd",
        "--run-as",
        "digestif",
        "--binary",
        "/usr/local/bin/digestif",
    ]);
    let printed = run
        .success()
        .stdout()
        .replace(&*site.dir.path().to_string_lossy(), "/srv/newsletter");
    for name in UNITS {
        let header = format!("# /etc/systemd/system/{name}\n");
        let start = printed.find(&header).unwrap_or_else(|| panic!("{name}")) + header.len();
        let end = printed[start..]
            .find("\n# /etc/systemd/system/")
            .map_or(printed.len(), |i| start + i + 1);
        assert_eq!(
            printed[start..end].trim_end(),
            unit(name).trim_end(),
            "contrib/systemd/{name}"
        );
    }
}

#[test]
fn the_readme_shows_the_crontab_schedule_writes() {
    let site = scheduled_site();
    let run = site.run(&["schedule", "--cron", "--binary", "/usr/local/bin/digestif"]);
    let printed = run
        .success()
        .stdout()
        .replace(&*site.dir.path().to_string_lossy(), "/srv/newsletter");
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    assert!(
        readme.contains(&printed),
        "README's crontab is not:\n{printed}"
    );
}
