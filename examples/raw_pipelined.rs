//! The physical limit of this machine for `bench/send.sh`: C plain sockets, each sending
//! its share of COUNT prebuilt messages with RFC 2920 pipelining and nothing else. The
//! end of one message's data goes out in the same write as the next MAIL, RCPT and DATA,
//! so a message costs one round trip; replies are read for their codes only. No TLS, no
//! library, no ledger: what any SMTP client on this machine could at best reach.
//!
//! Usage: raw_pipelined HOST PORT CONCURRENCY COUNT MESSAGE.eml
//! Prints: messages elapsed_seconds

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Read one reply (all its lines); its code.
fn reply(input: &mut impl BufRead) -> u16 {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            input.read_line(&mut line).expect("read") > 0,
            "connection closed"
        );
        if line.as_bytes().get(3) != Some(&b'-') {
            return line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .expect("reply code");
        }
    }
}

fn expect(input: &mut impl BufRead, code: u16, what: &str) {
    let got = reply(input);
    assert_eq!(got, code, "{what}");
}

/// MAIL, RCPT and DATA of message `i`, as one group.
fn envelope(i: usize) -> String {
    format!("MAIL FROM:<bench@example.org>\r\nRCPT TO:<r{i}@example.org>\r\nDATA\r\n")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port, concurrency, count, message] = &args[..] else {
        eprintln!("usage: raw_pipelined HOST PORT CONCURRENCY COUNT MESSAGE.eml");
        std::process::exit(2);
    };
    let port: u16 = port.parse().expect("port");
    let concurrency: usize = concurrency.parse().expect("concurrency");
    let count: usize = count.parse().expect("count");
    let raw = std::fs::read_to_string(message).expect("message file");
    let mut data = raw.replace("\r\n.", "\r\n..");
    if !data.ends_with("\r\n") {
        data.push_str("\r\n");
    }
    data.push_str(".\r\n");
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..concurrency {
            s.spawn(|| {
                let stream = TcpStream::connect((host.as_str(), port)).expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let mut output = stream.try_clone().expect("clone");
                let mut input = BufReader::new(stream);
                expect(&mut input, 220, "greeting");
                output
                    .write_all(b"EHLO bench.example.org\r\n")
                    .expect("write");
                expect(&mut input, 250, "EHLO");
                let mut i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return;
                }
                output.write_all(envelope(i).as_bytes()).expect("write");
                let mut group = Vec::with_capacity(data.len() + 128);
                loop {
                    expect(&mut input, 250, "MAIL");
                    expect(&mut input, 250, "RCPT");
                    expect(&mut input, 354, "DATA");
                    let following = next.fetch_add(1, Ordering::Relaxed);
                    group.clear();
                    group.extend_from_slice(data.as_bytes());
                    if following < count {
                        group.extend_from_slice(envelope(following).as_bytes());
                    } else {
                        group.extend_from_slice(b"QUIT\r\n");
                    }
                    output.write_all(&group).expect("write");
                    expect(&mut input, 250, "end of data");
                    i = following;
                    if i >= count {
                        let _ = reply(&mut input); // QUIT's 221
                        return;
                    }
                }
            });
        }
    });
    println!("{count} {:.6}", start.elapsed().as_secs_f64());
}
