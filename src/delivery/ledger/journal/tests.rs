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

fn mark(seq: i64) -> Update {
    Update::Sending {
        seq,
        message_id: format!("<m{seq}@example.org>"),
    }
}

fn done(seq: i64, state: State) -> Update {
    Update::Outcome {
        seq,
        state,
        attempts: 1,
        detail: "250 ok".into(),
    }
}

#[test]
fn kept_segments_prove_who_was_served_and_forgetting_blanks_them() {
    let state = tempfile::tempdir().unwrap();
    let journal =
        Journal::create(state.path(), week(), &Kind::Real, false, chrono::Utc::now()).unwrap();
    let lines = [
        mark(0),
        Update::Started { seq: 0 },
        done(0, State::Sent),
        mark(1),
        Update::Started { seq: 1 },
        done(1, State::Failed),
        mark(2),
        Update::Started { seq: 2 },
        done(2, State::Deferred),
        mark(3),
        Update::Started { seq: 3 },
        mark(4), // recorded ahead, never started
    ];
    journal.append(&lines).unwrap();
    let closed = journal.finish().unwrap();
    let contents = read(&closed.0).unwrap();
    keep(&closed.0, contents.as_ref()).unwrap();
    let kept = kept::kept_dir(state.path(), week());
    let file = std::fs::read_dir(&kept)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        contents.unwrap().len,
        "cut to its lines"
    );
    let proof = proof(state.path(), week()).unwrap();
    let of = |seq: i64| proof.served.get(&format!("<m{seq}@example.org>")).copied();
    assert_eq!(of(0), Some(Served::Sent));
    assert_eq!(of(1), Some(Served::Failed));
    assert_eq!(of(2), None, "deferred: to send again");
    assert_eq!(of(3), Some(Served::Interrupted));
    assert_eq!(of(4), None, "never started");

    let ids = std::collections::HashSet::from(["<m0@example.org>".to_string()]);
    assert_eq!(scrub(state.path(), &ids).unwrap(), 1);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("<m0@"), "{text}");
    let after = super::proof(state.path(), week()).unwrap();
    assert_eq!(
        after.served.len(),
        proof.served.len(),
        "every line still reads"
    );

    release(state.path(), week()).unwrap();
    assert!(!kept.exists());
}

#[test]
fn the_gathering_window_shrinks_when_a_worker_waits_and_grows_when_none_does() {
    let ms = Duration::from_millis;
    let bounds = (ms(1), ms(8));
    // Nobody waits: it grows by an eighth at each sync, up to the ceiling.
    let mut gather = ms(1);
    let mut syncs = 0;
    while gather < ms(8) {
        gather = adapted(gather, false, bounds);
        syncs += 1;
    }
    assert_eq!(gather, ms(8));
    assert!(
        (15..=20).contains(&syncs),
        "{syncs} syncs to reach the ceiling"
    );
    // A worker waited: halved, never below the floor.
    assert_eq!(adapted(ms(8), true, bounds), ms(4));
    assert_eq!(adapted(ms(1), true, bounds), ms(1));
    assert_eq!(adapted(Duration::from_micros(1500), true, bounds), ms(1));
}
