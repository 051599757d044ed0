//! The ledger's own rules, on a ledger in a temporary folder.

use super::*;

fn week() -> Week {
    "2011-W52".parse().unwrap()
}

fn variant() -> FrozenVariant {
    FrozenVariant {
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
    ledger.apply(week(), "real", &[update]).unwrap();
}

fn outcome(ledger: &Ledger, seq: i64, state: State, detail: &str) {
    let update = Update::Outcome {
        seq,
        state,
        attempts: 1,
        detail: detail.into(),
    };
    ledger.apply(week(), "real", &[update]).unwrap();
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
    let mut ledger = Ledger::open(dir.path(), false).unwrap();
    let mut freezer = ledger.freezer(week(), "real").unwrap();
    for row in audience(3) {
        assert_eq!(freezer.seen(&row.key, 1).unwrap(), None);
        freezer.add(&row).unwrap();
    }
    assert_eq!(
        freezer.seen("r0@example.org", 9).unwrap(),
        Some(1),
        "duplicates are found"
    );
    freezer.finish("hash", &[variant()]).unwrap();
    assert!(ledger.is_frozen(week(), "real").unwrap());
    let batch = ledger.next_batch(week(), "real", -1, 10, false).unwrap();
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
    assert_eq!(ledger.settle_interrupted(week(), "real").unwrap(), 1);
    let again = ledger.next_batch(week(), "real", -1, 10, false).unwrap();
    assert_eq!(again.len(), 1);
    sending(&ledger, 2, "<id2>");
    outcome(&ledger, 2, State::Failed, "550 no such user");
    let (counts, duplicates) = ledger.counts(week(), "real").unwrap();
    assert_eq!(
        (
            counts["sent"],
            counts["failed"],
            counts["skipped"],
            duplicates
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(ledger.real_weeks(false).unwrap(), [(week(), false)]);
    assert_eq!(ledger.real_weeks(true).unwrap(), [(week(), true)]);
    assert_eq!(
        ledger.problems(week(), "real").unwrap()[0]
            .last_error
            .as_deref(),
        Some("550 no such user")
    );
    assert_eq!(
        ledger
            .next_batch(week(), "real", -1, 10, true)
            .unwrap()
            .len(),
        1,
        "--retry-failed"
    );
}
