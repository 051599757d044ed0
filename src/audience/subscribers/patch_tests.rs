//! Tests of [`super`]: searched edits agree with the whole edit.
use super::*;

const LIST: &str = "# Veille: readers\n\n# Camille asked by mail\n[[subscriber]]\nemail = \"camille@example.org\" # since 2011\nname = \"Camille\"\n\n[[subscriber]]\nemail = \"broken\"\n\n[[subscriber]]\nemail = \"sam@EXAMPLE.com\"\nstatus = \"bounced\"\n";

fn with_known<T>(f: impl FnOnce(&Known<'_>) -> T) -> T {
    let languages = |_: &str| true;
    f(&Known {
        categories: &[],
        languages: &languages,
    })
}

fn keys(list: &[&str]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

#[test]
fn someone_new_is_appended_and_someone_listed_is_left_to_the_whole_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("subscribers.toml");
    let list = LIST.trim_end_matches('\n');
    std::fs::write(&path, list).unwrap();
    let entry = "[[subscriber]]\nemail = \"new@example.org\"\n";
    with_known(|known| {
        assert!(append_new(&path, known, "new@example.org", entry).unwrap());
        assert!(!append_new(&path, known, "camille@example.org", entry).unwrap());
    });
    let now = std::fs::read_to_string(&path).unwrap();
    assert_eq!(now, format!("{list}\n\n{entry}"));
    assert_eq!(std::fs::read_to_string(backup_path(&path)).unwrap(), list);
}

#[test]
fn one_entry_changes_in_place_past_a_broken_one_and_the_old_file_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("subscribers.toml");
    std::fs::write(&path, LIST).unwrap();
    let changes = HashMap::from([
        ("camille@example.org".to_string(), Status::Unsubscribed),
        ("sam@example.com".to_string(), Status::Unsubscribed),
    ]);
    let keep = |current: Status, asked: Status| current == asked || current == Status::Bounced;
    let changed = with_known(|k| set_statuses(&path, k, &changes, &keep))
        .unwrap()
        .unwrap();
    assert_eq!(
        changed,
        [("camille@example.org".to_string(), Status::Unsubscribed)],
        "a bounced reader stays bounced"
    );
    let expected = LIST.replace(
        "name = \"Camille\"\n",
        "name = \"Camille\"\nstatus = \"unsubscribed\"\n",
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
    assert_eq!(
        std::fs::read_to_string(backup_path(&path)).unwrap(),
        LIST,
        "the previous version is kept as .bak"
    );
    let found = with_known(|k| lookup(&path, k, &keys(&["camille@example.org"])))
        .unwrap()
        .unwrap();
    assert_eq!(
        found["camille@example.org"],
        ("camille@example.org".to_string(), Status::Unsubscribed)
    );
}

#[test]
fn removing_in_place_leaves_the_file_as_the_whole_edit_does() {
    // Valid lists: the whole edit refuses one with a mistake (the in-place removal,
    // like an unsubscribe, goes past it).
    let fixed = LIST.replace("\"broken\"", "\"b2@example.org\"");
    let lists = [
        fixed.as_str(),
        "[[subscriber]]\nemail = \"camille@example.org\"\n",
        "# header\n\n[[subscriber]]\nemail = \"a@example.org\"\n\n# about camille\n# more\n[[subscriber]]\nemail = \"camille@example.org\" # x\nname = \"C\"\n\n\n# about b\n[[subscriber]]\nemail = \"b@example.org\"\n",
        "[[subscriber]]\nemail = \"a@example.org\"\n[[subscriber]]\nemail = \"camille@example.org\"\n# trailing note\n",
    ];
    let dir = tempfile::tempdir().unwrap();
    for list in lists {
        let (patched, whole) = (dir.path().join("p.toml"), dir.path().join("w.toml"));
        std::fs::write(&patched, list).unwrap();
        std::fs::write(&whole, list).unwrap();
        with_known(|k| {
            let removed = remove(&patched, k, "camille@example.org").unwrap();
            assert_eq!(removed, Some(true));
            let mut editor = super::super::Editor::open(&whole, k).unwrap();
            assert!(editor.remove(&"camille@example.org".parse().unwrap()));
            editor.save().unwrap();
            assert_eq!(
                remove(&patched, k, "camille@example.org").unwrap(),
                Some(false)
            );
        });
        // The same entries and comments; the whole edit may leave one more blank line.
        let squeeze = |text: String| {
            let mut text = text;
            while text.contains("\n\n\n") {
                text = text.replace("\n\n\n", "\n\n");
            }
            text
        };
        let patched = std::fs::read_to_string(&patched).unwrap();
        assert!(!patched.contains("\n\n\n"), "{patched:?}");
        assert_eq!(
            squeeze(patched),
            squeeze(std::fs::read_to_string(&whole).unwrap()),
            "{list}"
        );
    }
}

#[test]
fn a_miss_is_trusted_only_when_no_escape_could_hide_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("subscribers.toml");
    std::fs::write(&path, LIST).unwrap();
    let nobody = keys(&["nobody@example.org"]);
    let found = with_known(|k| lookup(&path, k, &nobody)).unwrap();
    assert_eq!(found.map(|f| f.len()), Some(0), "a true miss");
    // "jo" spelled with an escape: the local part is not in the text as such.
    std::fs::write(&path, "[[subscriber]]\nemail = \"j\\u006F@example.org\"\n").unwrap();
    let jo = keys(&["jo@example.org"]);
    assert!(with_known(|k| lookup(&path, k, &jo)).unwrap().is_none());
    // Nor can a file that is not cut into plain entries be read this way.
    std::fs::write(
        &path,
        "[[subscriber]]\nemail = \"jo@example.org\"\nname = \"\"\"Jo\"\"\"\n",
    )
    .unwrap();
    assert!(with_known(|k| lookup(&path, k, &jo)).unwrap().is_none());
    let changes = HashMap::from([("jo@example.org".to_string(), Status::Unsubscribed)]);
    let before = std::fs::read(&path).unwrap();
    let never = |_: Status, _: Status| false;
    assert!(with_known(|k| set_statuses(&path, k, &changes, &never))
        .unwrap()
        .is_none());
    assert_eq!(std::fs::read(&path).unwrap(), before, "nothing written");
}
