//! The ledger's own rules, on a ledger in a temporary folder.

use super::*;
use crate::clock::Clock;
use crate::kind::Kind;
use crate::week::Week;
use std::path::Path;

fn week() -> Week {
    "2011-W52".parse().unwrap()
}

fn variant() -> Variant {
    Variant {
        id: 0,
        subject: "s".into(),
        html: None,
        text: "t".into(),
        greeting_named: "Hi {name},".into(),
        greeting_anonymous: "Hi,".into(),
    }
}

fn sending(ledger: &Ledger, seq: i64, message_id: &str) {
    let update = Update::Sending {
        seq,
        message_id: message_id.into(),
    };
    ledger.apply(week(), &Kind::Real, &[update]).unwrap();
}

fn outcome(ledger: &Ledger, seq: i64, state: State, detail: &str) {
    let update = Update::Outcome {
        seq,
        state,
        attempts: 1,
        detail: detail.into(),
    };
    ledger.apply(week(), &Kind::Real, &[update]).unwrap();
}

fn audience(n: usize) -> Vec<AudienceRow> {
    (0..n)
        .map(|i| AudienceRow {
            key: format!("r{i}@example.org"),
            email: format!("r{i}@example.org"),
            name: None,
            variant: (i != 1).then_some(0),
        })
        .collect()
}

#[test]
fn freeze_then_track_each_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), Clock::system()).unwrap();
    let mut freezer = ledger.freezer(week(), &Kind::Real).unwrap();
    for row in audience(3) {
        freezer.add(&row).unwrap();
    }
    freezer.finish("hash", &[variant()]).unwrap();
    assert!(ledger.is_frozen(week(), &Kind::Real).unwrap());
    let batch = ledger
        .next_batch(week(), &Kind::Real, -1, 10, false)
        .unwrap();
    assert_eq!(
        batch.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [0, 2],
        "the skipped one is not in the batch"
    );
    sending(&ledger, 0, "<id>");
    outcome(&ledger, 0, State::Sent, "250 ok");
    sending(&ledger, 2, "<id2>");
    // A crash here leaves r2 "sending": the next run settles it (a possible duplicate,
    // deferred for its one resend) before sending it again.
    assert_eq!(ledger.settle_interrupted(week(), &Kind::Real).unwrap(), 1);
    let again = ledger
        .next_batch(week(), &Kind::Real, -1, 10, false)
        .unwrap();
    assert_eq!(again.len(), 1);
    sending(&ledger, 2, "<id2>");
    outcome(&ledger, 2, State::Failed, "550 no such user");
    let counts = ledger.counts(week(), &Kind::Real).unwrap();
    let duplicates = counts.possible_duplicates;
    assert_eq!(
        (
            counts.of(State::Sent),
            counts.of(State::Failed),
            counts.of(State::Skipped),
            duplicates
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(ledger.real_weeks(false).unwrap(), [(week(), false)]);
    assert_eq!(ledger.real_weeks(true).unwrap(), [(week(), true)]);
    assert_eq!(
        ledger.problems(week(), &Kind::Real).unwrap()[0]
            .last_error
            .as_deref(),
        Some("550 no such user")
    );
    assert_eq!(
        ledger
            .next_batch(week(), &Kind::Real, -1, 10, true)
            .unwrap()
            .len(),
        1,
        "--retry-failed"
    );
}

/// A ledger with week 2011-W52 frozen for `n` readers, all to be sent.
fn frozen(dir: &Path, n: usize) -> Ledger {
    let mut ledger = Ledger::open(dir, Clock::system()).unwrap();
    let mut freezer = ledger.freezer(week(), &Kind::Real).unwrap();
    for i in 0..n {
        freezer
            .add(&AudienceRow {
                key: format!("r{i}@example.org"),
                email: format!("r{i}@example.org"),
                name: None,
                variant: Some(0),
            })
            .unwrap();
    }
    freezer.finish("hash", &[variant()]).unwrap();
    ledger
}

/// What a run records for reader `seq`: *sending*, then its outcome, in two appends.
fn journal_one(journal: &Journal, seq: i64, closed: &mut Vec<Closed>) {
    let sending = Update::Sending {
        seq,
        message_id: format!("<m{seq}@example.org>"),
    };
    let sent = Update::Outcome {
        seq,
        state: State::Sent,
        attempts: 1,
        detail: "250 ok".into(),
    };
    for update in [sending, sent] {
        let (receipt, full) = journal.append(&[update]).unwrap();
        journal.wait_durable(receipt).unwrap();
        closed.extend(full);
    }
}

#[test]
fn a_journal_is_folded_once_even_if_a_crash_comes_before_its_removal() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = frozen(dir.path(), 3);
    let journal =
        Journal::create(dir.path(), week(), &Kind::Real, false, chrono::Utc::now()).unwrap();
    let mut closed = Vec::new();
    for seq in 0..2 {
        journal_one(&journal, seq, &mut closed);
    }
    let unknown = Update::Unknown {
        seq: 2,
        attempts: 1,
        detail: "no reply".into(),
        resend_limit: 1,
    };
    journal.append(&[unknown]).unwrap();
    let Closed(path) = journal.finish().unwrap();
    let kept = std::fs::read(&path).unwrap();
    assert_eq!(ledger.fold(Closed(path.clone())).unwrap(), 5);
    // The crash: the fold committed, the segment was not removed.
    std::fs::write(&path, &kept).unwrap();
    drop(ledger);
    let ledger = Ledger::open(dir.path(), Clock::system()).unwrap();
    assert!(!path.exists(), "opening the ledger folds what is left");
    let counts = ledger.counts(week(), &Kind::Real).unwrap();
    let duplicates = counts.possible_duplicates;
    assert_eq!(
        (
            counts.of(State::Sent),
            counts.of(State::Deferred),
            duplicates
        ),
        (2, 1, 1)
    );
    let unknown: i64 = ledger
        .conn
        .query_row("SELECT unknown FROM recipients WHERE seq = 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(unknown, 1, "applied once");
}

#[test]
fn a_segment_being_written_is_not_folded_by_another_opening() {
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 1);
    let journal =
        Journal::create(dir.path(), week(), &Kind::Real, false, chrono::Utc::now()).unwrap();
    journal_one(&journal, 0, &mut Vec::new());
    let ledger = Ledger::open(dir.path(), Clock::system()).unwrap();
    assert_eq!(
        ledger.counts(week(), &Kind::Real).unwrap().of(State::Sent),
        0
    );
    assert_eq!(journal::leftovers(dir.path()).unwrap().len(), 1);
    ledger.fold(journal.finish().unwrap()).unwrap();
    assert_eq!(
        ledger.counts(week(), &Kind::Real).unwrap().of(State::Sent),
        1
    );
}

#[test]
fn a_power_loss_under_normal_sync_loses_at_most_the_lines_since_the_last_sync() {
    // Regression (#11): with ledger_sync = "normal", a power loss lost every outcome since
    // the last checkpoint. What survives one is what was synced: the folded segments (in
    // SQLite, synced at each commit) and the synced prefix of the segment being written.
    let dir = tempfile::tempdir().unwrap();
    let ledger = frozen(dir.path(), 1400);
    let journal =
        Journal::create(dir.path(), week(), &Kind::Real, false, chrono::Utc::now()).unwrap();
    let mut closed = Vec::new();
    for seq in 0..1349 {
        journal_one(&journal, seq, &mut closed);
        for c in closed.drain(..) {
            ledger.fold(c).unwrap();
        }
    }
    // The segment being written: the full ones were folded and removed.
    let [Closed(path)] = &journal::leftovers(dir.path()).unwrap()[..] else {
        panic!("one segment left")
    };
    let synced = journal::on_disk::len(path);
    drop(journal);
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(synced).unwrap();
    drop(file);
    drop(ledger);
    let ledger = Ledger::open(dir.path(), Clock::system()).unwrap();
    let sent = ledger.counts(week(), &Kind::Real).unwrap().of(State::Sent);
    let bound = (journal::SYNC_EVERY_LINES / 2) as usize;
    assert!(
        sent + bound >= 1349,
        "only {sent} of 1349 outcomes survived: more than {bound} lost"
    );
    assert!(sent < 1349, "the test must lose something to mean anything");
}

#[test]
fn every_row_is_updated_wherever_its_rowid_lies() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = frozen(dir.path(), 4);
    let later: Week = "2012-W01".parse().unwrap();
    let mut freezer = ledger.freezer(later, &Kind::Real).unwrap();
    for row in audience(3) {
        freezer.add(&row).unwrap();
    }
    freezer.finish("hash", &[variant()]).unwrap();
    // Row 1 moved to the table's end, where a rebuild of an older layout can leave rows.
    ledger
        .conn
        .execute_batch(
            "CREATE TEMP TABLE moved AS SELECT * FROM recipients WHERE week = '2011-W52' AND seq = 1;
             DELETE FROM recipients WHERE week = '2011-W52' AND seq = 1;
             INSERT INTO recipients SELECT * FROM moved;",
        )
        .unwrap();
    let sent = |seq: i64| Update::Outcome {
        seq,
        state: State::Sent,
        attempts: 1,
        detail: format!("250 ok {seq}"),
    };
    let updates: Vec<Update> = (0..4).map(sent).collect();
    ledger.apply(week(), &Kind::Real, &updates).unwrap();
    ledger.apply(later, &Kind::Real, &[sent(2)]).unwrap();
    let rows: Vec<(String, i64, Option<String>)> = ledger
        .conn
        .prepare("SELECT week, seq, reply FROM recipients ORDER BY week, seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected: Vec<(String, i64, Option<String>)> = (0..4)
        .map(|seq| ("2011-W52".into(), seq, Some(format!("250 ok {seq}"))))
        .chain((0..3).map(|seq| {
            let reply = (seq == 2).then(|| "250 ok 2".to_string());
            ("2012-W01".into(), seq, reply)
        }))
        .collect();
    assert_eq!(rows, expected);
}
