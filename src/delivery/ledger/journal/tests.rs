//! The journal's lines, segments and torn tails, in a temporary folder.

use super::line::{decode, encode};
use super::*;
use crate::delivery::ledger::State;

fn week() -> Week {
    "2011-W52".parse().unwrap()
}

fn updates() -> Vec<Update> {
    vec![
        Update::Sending {
            seq: 7,
            message_id: "<digest.2011-W52.ab@example.org>".into(),
        },
        Update::Started { seq: 7 },
        Update::Outcome {
            seq: 6,
            state: State::Sent,
            attempts: 2,
            detail: "250 2.0.0 Ok: queued as \"X\" \\ é".into(),
        },
        Update::Unknown {
            seq: 5,
            attempts: 1,
            detail: "no reply after end of data within 30 s".into(),
            resend_limit: 1,
        },
    ]
}

#[test]
fn lines_round_trip_and_a_changed_byte_ends_the_segment() {
    let mut out = String::new();
    for u in updates() {
        encode("seg-000001.log", &u, &mut out);
    }
    let decoded: Vec<String> = out
        .lines()
        .map(|l| format!("{:?}", decode("seg-000001.log", l).unwrap()))
        .collect();
    let expected: Vec<String> = updates().iter().map(|u| format!("{u:?}")).collect();
    assert_eq!(decoded, expected);
    let first = out.lines().next().unwrap();
    assert!(
        decode("seg-000002.log", first).is_none(),
        "a line belongs to its segment"
    );
    let flipped = first.replacen("S 7", "S 8", 1);
    assert!(decode("seg-000001.log", &flipped).is_none());
    assert!(decode("seg-000001.log", &first[..first.len() - 3]).is_none());
}

#[test]
fn a_segment_of_an_earlier_version_names_no_boot_and_is_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("20261101T000000.000000Z-42-000001.log");
    let mut text = format!("{HEADER} 2011-W52 real\n");
    encode(
        "20261101T000000.000000Z-42-000001.log",
        &updates()[0],
        &mut text,
    );
    std::fs::write(&path, text).unwrap();
    let contents = read(&path).unwrap().unwrap();
    assert_eq!(contents.boot, None);
    assert_eq!(contents.updates.len(), 1);
    assert_eq!(run_of(&path), "20261101T000000.000000Z-42");
}

#[test]
fn a_torn_tail_is_left_out_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let journal =
        Journal::create(dir.path(), week(), &Kind::Real, false, chrono::Utc::now()).unwrap();
    journal.append(&updates()).unwrap();
    let Closed(path) = journal.finish().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    // The power went while the last line was written: its end never reached the disk.
    let end = bytes.iter().position(|b| *b == 0).unwrap();
    bytes[end - 10..end].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    let contents = read(&path).unwrap().unwrap();
    assert_eq!(contents.week, week());
    assert_eq!(contents.kind, Kind::Real);
    assert_eq!(contents.updates.len(), updates().len() - 1);
    assert!(contents.torn);
    assert_eq!(contents.boot, boot_id(), "the header names the boot");
    assert_eq!(leftovers(dir.path()).unwrap().len(), 1);
}

#[test]
fn a_full_segment_is_handed_back_for_folding() {
    let dir = tempfile::tempdir().unwrap();
    let journal =
        Journal::create(dir.path(), week(), &Kind::Real, true, chrono::Utc::now()).unwrap();
    let one = &updates()[..1];
    let mut closed = Vec::new();
    for _ in 0..SEGMENT_LINES + 3 {
        let (receipt, full) = journal.append(one).unwrap();
        journal.wait_durable(receipt).unwrap();
        closed.extend(full);
    }
    assert_eq!(closed.len(), 1);
    let first = read(&closed[0].0).unwrap().unwrap();
    assert_eq!(first.updates.len() as u64, SEGMENT_LINES);
    let last = journal.finish().unwrap();
    assert_eq!(read(&last.0).unwrap().unwrap().updates.len(), 3);
    assert_eq!(leftovers(dir.path()).unwrap().len(), 2);
}
