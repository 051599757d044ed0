//! A real SMTP server (aiosmtpd, `tests/smtp_server.py`) started per test, and its TLS
//! certificates.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::harness::repo_root;

pub(crate) struct SmtpServer {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

/// The Python with aiosmtpd: `$DIGESTIF_TEST_PYTHON` (set by scripts/test), else the
/// project's `.venv`, else `python3`.
pub(crate) fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("DIGESTIF_TEST_PYTHON") {
        return p.into();
    }
    let venv = repo_root().join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

impl SmtpServer {
    /// The `[smtp]` lines for this server: loopback, no TLS, `concurrency` connections.
    pub(crate) fn plain(&self, concurrency: usize) -> String {
        format!(
            "host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nconcurrency = {concurrency}",
            self.port
        )
    }

    pub(crate) fn start(args: &[&str]) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(python())
            .arg(repo_root().join("tests/smtp_server.py"))
            .arg("--out")
            .arg(dir.path().join("mail"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the test SMTP server (needs python3 with aiosmtpd: run scripts/test)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!("SMTP server did not start (is aiosmtpd installed?): {line:?}")
            });
        SmtpServer { child, port, dir }
    }

    /// Messages received so far, in arrival order: (recipients, raw bytes).
    pub(crate) fn messages(&self) -> Vec<Received> {
        let log = self.dir.path().join("mail/log.jsonl");
        let Ok(text) = std::fs::read_to_string(&log) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| {
                let n = v["n"].as_u64().unwrap();
                Received {
                    mail_time: v["mail_time"].as_f64().unwrap(),
                    peer_port: v["peer_port"].as_u64().unwrap() as u16,
                    rcpt: v["rcpt"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r.as_str().unwrap().to_string())
                        .collect(),
                    tls: v["tls"].as_bool().unwrap(),
                    auth: v["auth"].as_str().map(String::from),
                    mail_options: v["mail_options"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|o| o.as_str().map(String::from))
                        .collect(),
                    raw: std::fs::read(self.dir.path().join(format!("mail/{n}.eml"))).unwrap(),
                }
            })
            .collect()
    }

    pub(crate) fn count(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("mail/log.jsonl"))
            .map_or(0, |t| t.lines().count())
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Received {
    /// When the server received MAIL FROM (seconds, monotonic clock of the server).
    pub mail_time: f64,
    /// The client's port: one per connection.
    pub peer_port: u16,
    pub rcpt: Vec<String>,
    pub tls: bool,
    pub auth: Option<String>,
    /// MAIL FROM parameters (BODY=8BITMIME, SMTPUTF8).
    pub mail_options: Vec<String>,
    pub raw: Vec<u8>,
}

impl Received {
    pub(crate) fn parsed(&self) -> mailparse::ParsedMail<'_> {
        mailparse::parse_mail(&self.raw).unwrap()
    }

    pub(crate) fn header(&self, name: &str) -> Option<String> {
        use mailparse::MailHeaderMap;
        self.parsed().headers.get_first_value(name)
    }

    /// The decoded text/plain part.
    pub(crate) fn text(&self) -> String {
        let parsed = self.parsed();
        let part = if parsed.subparts.is_empty() {
            &parsed
        } else {
            &parsed.subparts[0]
        };
        part.get_body().unwrap().replace("\r\n", "\n")
    }
}

/// A CA and a server certificate for `localhost` signed by it, as PEM files in `dir`.
/// Returns (ca.pem, server.pem, server.key).
pub(crate) fn make_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}
