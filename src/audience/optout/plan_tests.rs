//! The store's lookups by reader go through its small indexes, not through every request
//! ever recorded (see `index_waiting_keys`).

use super::*;

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

fn indexes(store: &Optouts) -> Vec<String> {
    let mut stmt = store
        .conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'optouts'")
        .unwrap();
    let names = stmt.query_map([], |r| r.get(0)).unwrap();
    names.collect::<rusqlite::Result<Vec<_>>>().unwrap()
}

#[test]
fn a_click_and_a_join_look_readers_up_in_the_small_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Optouts::open(dir.path(), Clock::system()).unwrap();
    let waiting = "SELECT 1 FROM optouts WHERE key = 'a' AND applied_at IS NULL";
    assert!(plan(&store, waiting).contains("USING COVERING INDEX optouts_waiting"));
    let same = format!("{waiting} AND status = 'unsubscribed'");
    assert!(plan(&store, &same).contains("USING COVERING INDEX optouts_waiting"));
    let complained = joins::complained_sql().replace("?1", "'a'");
    assert!(plan(&store, &complained).contains("USING COVERING INDEX optouts_complaints"));
    let pending = "SELECT id, key FROM optouts WHERE applied_at IS NULL ORDER BY id";
    assert!(plan(&store, pending).contains("optouts_pending"));
}

#[test]
fn the_index_of_every_request_is_gone_and_what_waits_is_still_found() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Optouts::open(dir.path(), Clock::system()).unwrap();
    assert!(!indexes(&store).contains(&"optouts_key".to_string()));
    let leave = |key: &str| (key.to_string(), Status::Unsubscribed, "web".to_string());
    let first = store.record_many(&[leave("jo@x.org"), leave("ana@x.org")]);
    assert_eq!(first.unwrap(), [true, true]);
    let pending = store.pending().unwrap();
    store.mark_applied(pending[0].id, pending[0].id).unwrap();
    // Jo's request is written in: a new one is new; Ana's still waits.
    let again = store.record_many(&[leave("jo@x.org"), leave("ana@x.org")]);
    assert_eq!(again.unwrap(), [true, false]);
    assert!(store.waits_to_leave("jo@x.org").unwrap());
    store
        .record("bo@x.org", Status::Unsubscribed, joins::COMPLAINT_SOURCE)
        .unwrap();
    assert!(store.complained("bo@x.org").unwrap());
    assert!(!store.complained("jo@x.org").unwrap());
}
