//! SpamAssassin (Debian's, local tests only: no network, no Bayes) on a digest as the
//! real SMTP server received it (issue 13).

use std::process::Command;

use crate::harness::{site, SECRET};
use crate::smtp::SmtpServer;

/// Rules about how the body is built (HTML, MIME, text/HTML balance, hidden text).
fn is_about_the_body(rule: &str, description: &str) -> bool {
    [
        "HTML_",
        "MIME_",
        "MPART_",
        "BODY_",
        "TVD_",
        "T_REMOTE_IMAGE",
        "FONT_",
    ]
    .iter()
    .any(|p| rule.starts_with(p) || rule.contains("_FONT_"))
        || ["BODY:", "RAW:", "URI:"]
            .iter()
            .any(|p| description.starts_with(p))
}

#[test]
fn spamassassin_scores_a_sent_digest_below_zero() {
    let spamassassin = "/usr/bin/spamassassin";
    assert!(
        std::path::Path::new(spamassassin).exists(),
        "{spamassassin} is missing: scripts/test installs Debian's spamassassin"
    );
    let server = SmtpServer::start(&[]);
    let site = site(&server.plain(4)).file(
        "subscribers.toml",
        "[[subscriber]]\nemail = \"camille@example.org\"\nname = \"Camille Durand\"\n",
    );
    site.run_env(&["send"], &[("DIGESTIF_UNSUBSCRIBE_SECRET", SECRET)])
        .success();
    let message = &server.messages()[0].raw;
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(spamassassin)
        // -L: local tests only; -t: the report; a private home for its preferences.
        .args(["-L", "-t"])
        .env("HOME", home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let details = report
        .split("Content analysis details:")
        .nth(1)
        .unwrap_or_else(|| panic!("no report: {report}"));
    let score: f64 = details
        .split_once('(')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no score in {details}"));
    // The rules that hit, printed for whoever reads the test output.
    let mut hits = Vec::new();
    for line in details.lines() {
        let mut words = line.split_whitespace();
        let (Some(points), Some(rule)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(points) = points.parse::<f64>() else {
            continue;
        };
        let description = words.collect::<Vec<_>>().join(" ");
        println!("spamassassin: {points:>5} {rule} {description}");
        hits.push((points, rule.to_string(), description));
    }
    println!("spamassassin: score {score}");
    assert!(score < 0.0, "score {score}:\n{details}");
    for (points, rule, description) in &hits {
        assert!(
            *points <= 0.0 || !is_about_the_body(rule, description),
            "{rule} ({points}) is about the message body's structure: {description}"
        );
    }
}
