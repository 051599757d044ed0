//! The reader index's tests, beside it.

use super::*;

const SECRET: &[u8] = b"0123456789abcdef-index-test";

fn secret() -> Secret {
    Secret::new(SECRET.to_vec()).unwrap()
}

/// A newsletter in `dir` with `list` as its subscribers file, and its index.
fn index_of(dir: &Path, list: &str) -> (Config, Arc<TokenIndex>) {
    let (config, catalog) = super::super::newsletter_in(dir, list);
    let index = Arc::new(TokenIndex::open(&config, &catalog, secret()).unwrap());
    (config, index)
}

fn entry(email: &str, status: &str) -> String {
    format!("[[subscriber]]\nemail = \"{email}\"\nstatus = \"{status}\"\n\n")
}

#[test]
fn tokens_of_both_formats_find_their_reader_and_forgeries_find_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let list = entry("Jo@Example.org", "active") + &entry("ana@example.org", "bounced");
    let (_, index) = index_of(dir.path(), &list);
    let s = secret();
    // The key: the domain lower-cased, the local part as written.
    let jo = index.find(&s.token("Jo@example.org")).unwrap().unwrap();
    assert_eq!(
        (jo.key.as_str(), jo.email.as_str(), jo.status),
        ("Jo@example.org", "Jo@Example.org", Status::Active)
    );
    let legacy = index.find(&s.sign_legacy("ana@example.org")).unwrap();
    assert_eq!(legacy.map(|r| r.status), Some(Status::Bounced));
    let other = Secret::new(b"another-secret-of-16".to_vec()).unwrap();
    assert_eq!(index.find(&other.token("Jo@example.org")).unwrap(), None);
    assert_eq!(index.find(&s.token("nobody@example.org")).unwrap(), None);
    assert_eq!(index.find("not a token").unwrap(), None);
    assert!(
        index.refresh(),
        "built once, fresh while the list is unchanged"
    );
}

#[test]
fn a_hand_edit_is_seen_and_our_own_fold_needs_no_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let (config, index) = index_of(dir.path(), &entry("jo@example.org", "active"));
    let s = secret();
    assert!(index.find(&s.token("jo@example.org")).unwrap().is_some());
    // Someone adds a reader by hand: their token waits for the rebuild, then works.
    let list = std::fs::read_to_string(&config.subscribers).unwrap();
    std::fs::write(
        &config.subscribers,
        list + &entry("new@example.org", "active"),
    )
    .unwrap();
    let new = index.find(&s.token("new@example.org")).unwrap();
    assert_eq!(new.map(|r| r.email), Some("new@example.org".to_string()));
    // A fold of ours: the index takes the change and the list's new stamp.
    let before = index.fold_begins();
    let text = std::fs::read_to_string(&config.subscribers).unwrap();
    std::fs::write(
        &config.subscribers,
        text.replacen("active", "unsubscribed", 1),
    )
    .unwrap();
    let changed = [("jo@example.org".to_string(), Status::Unsubscribed)];
    index.folded(before, &changed).unwrap();
    assert!(index.refresh(), "no rebuild after our own fold");
    let jo = index.find(&s.token("jo@example.org")).unwrap().unwrap();
    assert_eq!(jo.status, Status::Unsubscribed);
    // Opened again (a restart of `serve`), it is still fresh: no rebuild to start.
    let catalog = Catalog::from_posts(&config, &[]);
    let again = Arc::new(TokenIndex::open(&config, &catalog, secret()).unwrap());
    assert!(again.refresh());
}

#[test]
fn a_rebuild_starts_from_the_list_not_from_earlier_folds() {
    let dir = tempfile::tempdir().unwrap();
    let (config, index) = index_of(dir.path(), &entry("jo@example.org", "active"));
    let s = secret();
    assert!(index.find(&s.token("jo@example.org")).unwrap().is_some());
    // A fold of ours: jo leaves, ana joins.
    let before = index.fold_begins();
    let folded = entry("jo@example.org", "unsubscribed") + &entry("ana@example.org", "active");
    std::fs::write(&config.subscribers, &folded).unwrap();
    let changed = [
        ("jo@example.org".to_string(), Status::Unsubscribed),
        ("ana@example.org".to_string(), Status::Active),
    ];
    index.folded(before, &changed).unwrap();
    let status = |email: &str| index.find(&s.token(email)).unwrap().map(|r| r.status);
    assert_eq!(status("jo@example.org"), Some(Status::Unsubscribed));
    assert_eq!(status("ana@example.org"), Some(Status::Active));
    // The blogger takes jo back by hand: the rebuilt index says what the list says.
    let by_hand = entry("jo@example.org", "active") + &entry("ana@example.org", "active");
    std::fs::write(&config.subscribers, by_hand).unwrap();
    assert!(!index.refresh(), "the hand edit starts a rebuild");
    index.wait_for_rebuild().unwrap();
    assert_eq!(status("jo@example.org"), Some(Status::Active));
    assert_eq!(status("ana@example.org"), Some(Status::Active));
}

#[test]
fn other_commands_ask_the_index_only_while_it_is_that_of_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let (config, index) = index_of(dir.path(), &entry("jo@example.org", "active"));
    let s = secret();
    let jo = s.tag("jo@example.org");
    assert_eq!(keys_if_current(&config, &s, &[jo]), None, "not built yet");
    assert!(index.find(&s.token("jo@example.org")).unwrap().is_some());
    let found = keys_if_current(&config, &s, &[jo, s.tag("nobody@example.org")]).unwrap();
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        vec![(jo, "jo@example.org".to_string())]
    );
    let other = Secret::new(b"another-secret-of-16".to_vec()).unwrap();
    assert_eq!(
        keys_if_current(&config, &other, &[jo]),
        None,
        "another secret"
    );
    // A hand edit: the index is behind the list, and is not asked.
    let list = entry("jo@example.org", "active") + &entry("ana@example.org", "active");
    std::fs::write(&config.subscribers, list).unwrap();
    assert_eq!(keys_if_current(&config, &s, &[jo]), None, "behind the list");
}

#[test]
fn a_fold_on_a_list_changed_behind_the_index_is_not_taken_as_ours() {
    let dir = tempfile::tempdir().unwrap();
    let (config, index) = index_of(dir.path(), &entry("jo@example.org", "active"));
    let s = secret();
    assert!(index.find(&s.token("jo@example.org")).unwrap().is_some());
    // A send wrote the list; no lookup has seen it yet when our fold begins.
    std::fs::write(&config.subscribers, entry("jo@example.org", "bounced")).unwrap();
    let before = index.fold_begins();
    assert!(!index.refresh(), "the index is behind the list: a rebuild");
    index.wait_for_rebuild().unwrap();
    let jo = index.find(&s.token("jo@example.org")).unwrap().unwrap();
    assert_eq!(jo.status, Status::Bounced);
    index.folded(before, &[]).unwrap();
}

#[test]
fn waiting_for_a_fold_ends_once_the_index_has_its_readers() {
    let dir = tempfile::tempdir().unwrap();
    let (config, index) = index_of(dir.path(), &entry("jo@example.org", "active"));
    let s = secret();
    assert!(index.find(&s.token("jo@example.org")).unwrap().is_some());
    let before = index.fold_begins();
    // The fold has written the list; a lookup that knows jo's request was written in
    // waits for the index rather than read jo's old status from it.
    std::fs::write(&config.subscribers, entry("jo@example.org", "unsubscribed")).unwrap();
    let asker = {
        let index = Arc::clone(&index);
        let token = s.token("jo@example.org");
        std::thread::spawn(move || {
            index.wait_for_fold();
            index.find(&token).unwrap().unwrap().status
        })
    };
    let changed = [("jo@example.org".to_string(), Status::Unsubscribed)];
    index.folded(before, &changed).unwrap();
    assert_eq!(asker.join().unwrap(), Status::Unsubscribed);
}
