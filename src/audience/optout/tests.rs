//! The opt-out store: requests recorded, marked, looked up; soft bounces and inbox
//! messages remembered. What a click and a join ask is answered without an index of every
//! request ever made (see `drop_key_index`).

use super::watch::LOOK_EVERY;
use super::*;

#[test]
fn a_request_is_seen_by_a_running_watch_within_a_look() {
    let dir = tempfile::tempdir().unwrap();
    let mut watch = Watch::open(dir.path()).unwrap();
    assert!(!watch.has_left("jo@example.org").unwrap());
    let store = Optouts::open(dir.path(), Clock::system()).unwrap();
    store
        .record("jo@example.org", Status::Unsubscribed, "web")
        .unwrap();
    std::thread::sleep(LOOK_EVERY);
    assert!(watch.has_left("jo@example.org").unwrap());
    assert!(!watch.has_left("ana@example.org").unwrap());
    let pending = store.pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].source, "web");
}

#[test]
fn marking_in_chunks_marks_every_request_read_and_none_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Optouts::open(dir.path(), Clock::system()).unwrap();
    let requests: Vec<_> = (0..2 * MARK_CHUNK + 7)
        .map(|i| {
            (
                format!("r{i}@example.org"),
                Status::Unsubscribed,
                "web".into(),
            )
        })
        .collect();
    store.record_many(&requests, &[]).unwrap();
    let pending = store.pending().unwrap();
    // A click committed after the fold read what waits: not written in, not marked.
    store
        .record("late@example.org", Status::Unsubscribed, "web")
        .unwrap();
    let (first, last) = (pending[0].id, pending[pending.len() - 1].id);
    store.mark_applied(first, last).unwrap();
    let left: Vec<String> = store
        .pending()
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(left, ["late@example.org"]);
}

#[test]
fn soft_bounces_count_distinct_messages_until_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let store = Optouts::open(dir.path(), Clock::system()).unwrap();
    assert_eq!(store.soft_bounce("jo@example.org", "<a@x>", 8).unwrap(), 1);
    assert_eq!(store.soft_bounce("jo@example.org", "<a@x>", 8).unwrap(), 1);
    assert_eq!(store.soft_bounce("jo@example.org", "<b@x>", 8).unwrap(), 2);
    store.clear_soft_bounces("jo@example.org").unwrap();
    assert_eq!(store.soft_bounce("jo@example.org", "<c@x>", 8).unwrap(), 1);
}

#[test]
fn soft_bounces_older_than_the_window_no_longer_count() {
    let dir = tempfile::tempdir().unwrap();
    let at = |day: &str| {
        let origin = format!("2026-{day}T10:00:00Z").parse().unwrap();
        Optouts::open(dir.path(), Clock::starting_at(origin)).unwrap()
    };
    assert_eq!(at("01-05").soft_bounce("jo@x.org", "<w1@x>", 8).unwrap(), 1);
    assert_eq!(at("02-02").soft_bounce("jo@x.org", "<w5@x>", 8).unwrap(), 2);
    // Nine weeks after the first: it has decayed, the second still counts.
    assert_eq!(
        at("03-09").soft_bounce("jo@x.org", "<w10@x>", 8).unwrap(),
        2
    );
}

#[test]
fn inbox_messages_are_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let store = Optouts::open(dir.path(), Clock::system()).unwrap();
    assert_eq!(store.seen("abc").unwrap(), None);
    store.mark_seen("abc", "bounced").unwrap();
    store.mark_seen("abc", "other").unwrap();
    assert_eq!(store.seen("abc").unwrap().as_deref(), Some("bounced"));
}

/// SQLite's plan for `sql`, one line per step.
fn plan(store: &Optouts, sql: &str) -> String {
    let mut stmt = store
        .conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap();
    let steps = stmt
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap();
    steps.join("\n")
}

#[test]
fn a_click_and_a_join_are_answered_by_row_and_by_the_index_of_complaints() {
    let dir = tempfile::tempdir().unwrap();
    let store = Optouts::open(dir.path(), Clock::system()).unwrap();
    let names: Vec<String> = store
        .conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'optouts'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(!names.contains(&"optouts_key".to_string()), "{names:?}");
    assert!(plan(&store, &WAITS.replace("?1", "7").replace("?2", "'a'"))
        .contains("USING INTEGER PRIMARY KEY"));
    let complained = joins::complained_sql().replace("?1", "'a'");
    assert!(plan(&store, &complained).contains("USING COVERING INDEX optouts_complaints"));
    let first = "SELECT min(id) FROM optouts WHERE applied_at IS NULL";
    assert!(plan(&store, first).contains("optouts_pending"));
}

#[test]
fn a_known_request_is_recorded_again_only_once_written_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Optouts::open(dir.path(), Clock::system()).unwrap();
    let leave = |key: &str| (key.to_string(), Status::Unsubscribed, "web".to_string());
    let ids = store
        .record_many(&[leave("jo@x.org"), leave("ana@x.org")], &[])
        .unwrap();
    let (jo, ana) = (ids[0].unwrap(), ids[1].unwrap());
    assert_eq!(store.first_waiting().unwrap(), Some(jo));
    store.mark_applied(jo, jo).unwrap();
    assert_eq!(store.first_waiting().unwrap(), Some(ana));
    let again = store
        .record_many(
            &[leave("jo@x.org"), leave("ana@x.org")],
            &[Some(jo), Some(ana)],
        )
        .unwrap();
    // Jo's request is written in: a new one is recorded; Ana's still waits.
    assert!(again[0].is_some_and(|id| id > ana));
    assert_eq!(again[1], None);
    assert!(!store.waits(jo, "jo@x.org").unwrap() && store.waits(ana, "ana@x.org").unwrap());
    // A row is another reader's: not theirs to wait on.
    assert!(!store.waits(ana, "jo@x.org").unwrap());
    let other = store
        .record_many(&[leave("bo@x.org")], &[Some(ana)])
        .unwrap();
    assert!(
        other[0].is_some(),
        "a known row of another reader is no repeat"
    );
    store
        .record("bo@x.org", Status::Unsubscribed, joins::COMPLAINT_SOURCE)
        .unwrap();
    assert!(store.complained("bo@x.org").unwrap());
    assert!(!store.complained("jo@x.org").unwrap());
}
