//! Issue 24: DKIM signatures, checked by an independent verifier (dkimpy, from PyPI):
//! RSA and Ed25519 keys made by openssl, the TXT record `check` prints, messages as our
//! SMTP server received them and as a real Postfix delivered them, and a tampered copy
//! that must fail.

use std::process::Command;

use crate::harness::{Site, CONFIG, SECRET, SUBSCRIBERS};
use crate::postfix::Postfix;
use crate::smtp::SmtpServer;

/// A private key made by openssl (`genpkey`), mode 0600.
fn key(site: &Site, name: &str, algorithm: &[&str]) {
    let path = site.path(name);
    let out = Command::new("openssl")
        .arg("genpkey")
        .args(algorithm)
        .arg("-out")
        .arg(&path)
        .output()
        .expect("openssl (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn site_signing_with(key_file: &str, smtp: &str) -> Site {
    let config = format!(
        "{CONFIG}\n[smtp]\n{smtp}\n[dkim]\ndomain = \"example.org\"\nselector = \"digestif2026\"\nkey_file = \"{key_file}\"\n"
    );
    Site::new()
        .file("digestif.toml", config)
        .file("subscribers.toml", SUBSCRIBERS)
        .with_sample_week()
}

/// The TXT record `check` tells the user to publish.
fn published_record(site: &Site) -> String {
    let check = site
        .run_env(&["check"], &[("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)])
        .success();
    let out = check.stdout();
    assert!(
        out.contains("ok: dkim: every message is signed; publish this TXT record at digestif2026._domainkey.example.org:"),
        "{out}"
    );
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("\"v=DKIM1"))
        .unwrap();
    line.trim().trim_matches('"').to_string()
}

/// dkimpy's verdict on `message` with `record` as the DNS answer.
fn verifies(message: &[u8], record: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("message.eml");
    std::fs::write(&file, message).unwrap();
    let out = Command::new(crate::smtp::python())
        .arg(crate::harness::repo_root().join("tests/dkim_verify.py"))
        .arg(&file)
        .arg(record)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        said == "PASS" || said == "FAIL",
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    said == "PASS"
}

#[test]
fn rsa_and_ed25519_signatures_verify_with_an_independent_verifier() {
    for (name, algorithm, tag) in [
        (
            "rsa.key",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"][..],
            "k=rsa",
        ),
        ("ed.key", &["-algorithm", "ed25519"][..], "k=ed25519"),
    ] {
        let server = SmtpServer::start(&[]);
        let site = site_signing_with(name, &server.plain(1));
        key(&site, name, algorithm);
        let record = published_record(&site);
        assert!(record.contains(tag), "{record}");
        site.run_env(&["send"], &[("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)])
            .success();
        let messages = server.messages();
        assert_eq!(messages.len(), 2, "{name}");
        for m in &messages {
            let text = String::from_utf8_lossy(&m.raw);
            assert!(text.starts_with("DKIM-Signature: v=1; a="), "{text}");
            assert!(verifies(&m.raw, &record), "{name}: {text}");
        }
        // The verifier is not vacuous: a changed subject fails.
        let tampered =
            String::from_utf8_lossy(&messages[0].raw).replacen("Subject: ", "Subject: X", 1);
        assert!(
            !verifies(tampered.as_bytes(), &record),
            "{name}: a tampered copy verified"
        );
    }
}

#[test]
fn a_key_others_can_read_stops_check_and_send() {
    let server = SmtpServer::start(&[]);
    let site = site_signing_with("open.key", &server.plain(1));
    key(&site, "open.key", &["-algorithm", "ed25519"]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        site.path("open.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let env = [("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)];
    let check = site.run_env(&["check"], &env);
    assert_eq!(check.code(), 2);
    assert!(
        check
            .stderr()
            .contains("open.key: readable by others (mode 644)"),
        "{}",
        check.stderr()
    );
    let send = site.run_env(&["send"], &env);
    assert_eq!(send.code(), 2, "{}", send.stderr());
    assert_eq!(server.count(), 0, "nothing is sent unsigned");
}

#[test]
fn signatures_survive_a_real_postfix_delivery() {
    let postfix = Postfix::start(&["readers.test"], &[("ada@readers.test", "ada")]);
    let smtp = format!(
        "host = \"127.0.0.1\"\nport = {}\ntls = \"none\"",
        postfix.port
    );
    let site = site_signing_with("rsa.key", &smtp).file(
        "subscribers.toml",
        "[[subscriber]]\nemail = \"ada@readers.test\"\nname = \"Ada Lovelace\"\n",
    );
    key(
        &site,
        "rsa.key",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let record = published_record(&site);
    site.run_env(&["send"], &[("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)])
        .success();
    let delivered = &postfix.wait_for("ada", 1)[0];
    let text = String::from_utf8_lossy(delivered);
    // Postfix added its own headers above ours (Return-Path, Delivered-To, Received).
    assert!(text.starts_with("Return-Path: "), "{text}");
    assert!(verifies(delivered, &record), "{text}");
}
