//! The ceiling of the library digestif builds on, for `bench/send.sh`: lettre's
//! `SmtpConnection`, prebuilt message bytes, C connections, one recipient per transaction;
//! no ledger, no rendering, no per-message building.
//!
//! Like digestif, it writes each message and its final "." in one write (lettre's own
//! `send` writes them separately and, without TCP_NODELAY, stalls ~40 ms per message).
//!
//! Usage: bare_lettre HOST PORT CONCURRENCY COUNT MESSAGE.eml
//! Prints: messages elapsed_seconds

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lettre::transport::smtp::client::SmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::Address;

struct Payload(String);

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port, concurrency, count, message] = &args[..] else {
        eprintln!("usage: bare_lettre HOST PORT CONCURRENCY COUNT MESSAGE.eml");
        std::process::exit(2);
    };
    let port: u16 = port.parse().expect("port");
    let concurrency: usize = concurrency.parse().expect("concurrency");
    let count: usize = count.parse().expect("count");
    let raw = std::fs::read_to_string(message).expect("message file");
    let mut stuffed = raw.replace("\r\n.", "\r\n..");
    if !stuffed.ends_with("\r\n") {
        stuffed.push_str("\r\n");
    }
    stuffed.push_str(".\r\n");
    let payload = Payload(stuffed);
    let from: Address = "bench@example.org".parse().unwrap();
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..concurrency {
            s.spawn(|| {
                let mut conn = SmtpConnection::connect(
                    (host.as_str(), port),
                    Some(Duration::from_secs(30)),
                    &ClientId::Domain("bench.example.org".into()),
                    None,
                    None,
                )
                .expect("connect");
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let to: Address = format!("r{i}@example.org").parse().unwrap();
                    conn.command(Mail::new(Some(from.clone()), vec![]))
                        .expect("MAIL");
                    conn.command(Rcpt::new(to, vec![])).expect("RCPT");
                    conn.command(Data).expect("DATA");
                    conn.command(&payload).expect("end of data");
                }
                let _ = conn.quit();
            });
        }
    });
    println!("{count} {:.6}", start.elapsed().as_secs_f64());
}
