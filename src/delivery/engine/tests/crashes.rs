//! Kills and power cuts: what a crash at any point leaves, and what the next run makes of
//! it.

use super::*;

/// What a `kill -9` during reader 0's transaction leaves: the row committed *sending*.
fn crash_during(dir: &Path, seq: i64) {
    let ledger = Ledger::open(dir, Clock::system()).unwrap();
    let update = Update::Sending {
        seq,
        message_id: "<m@example.org>".into(),
    };
    ledger.apply(week(), &Kind::Real, &[update]).unwrap();
}

#[test]
fn a_reader_in_flight_at_a_kill_is_sent_again_however_often_it_happens() {
    // The ledger cannot tell whether the data went out before the kill: nobody is
    // skipped, and each kill costs at most one possible duplicate per worker.
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 2);
    crash_during(dir.path(), 0);
    Ledger::open(dir.path(), Clock::system())
        .unwrap()
        .settle_interrupted(week(), &Kind::Real)
        .unwrap();
    crash_during(dir.path(), 0);
    let script = Script::new(&[]);
    run(dir.path(), &script, &DEFAULTS).unwrap();
    assert_eq!(script.copies(&reader(0)), 1);
    assert_eq!(states(dir.path()), [State::Sent, State::Sent]);
    assert_eq!(possible_duplicates(dir.path()), 1);
}

/// Copy the state folder `from` as a power loss would leave it: journal segments cut to
/// what was synced (SQLite syncs its own commits) and read in another boot, SQLite's
/// shared-memory index left out.
pub(super) fn copy_as_on_disk(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_as_on_disk(&path, &target);
        } else if path.extension().is_some_and(|x| x == "log") {
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.truncate(crate::delivery::ledger::journal::on_disk::len(&path) as usize);
            let boot = crate::delivery::ledger::journal::boot_id().expect("a Linux boot id");
            let text = String::from_utf8_lossy(&bytes).replacen(&boot, &"0".repeat(boot.len()), 1);
            std::fs::write(target, text).unwrap();
        } else if !path.to_string_lossy().ends_with("-shm") {
            std::fs::copy(&path, target).unwrap();
        }
    }
}

/// Run one worker until `script` makes the process die (a panic).
pub(super) fn run_until_it_dies(dir: &Path, script: &Arc<Script>, full_sync: bool) {
    let setup = Setup {
        full_sync,
        concurrency: 1,
        ..DEFAULTS
    };
    let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(dir, script, &setup)));
    assert!(died.is_err(), "the scripted death did not happen");
}

/// Run with `ledger_sync = "full"` and one worker, cut the power as reader `cut`'s end of
/// data would go out, and return every reader's state as the next run finds it.
fn states_after_a_power_cut(n: usize, cut: usize) -> Vec<State> {
    let dir = tempfile::tempdir().unwrap();
    let disk = tempfile::tempdir().unwrap();
    frozen(dir.path(), n);
    let script = Arc::new(Script {
        power_cut: Some((dir.path().to_path_buf(), disk.path().join("state"))),
        replies: Mutex::new([(reader(cut), [Reply::PowerCut].into())].into()),
        ..Script::default()
    });
    run_until_it_dies(dir.path(), &script, true);
    assert!((0..cut).all(|i| script.copies(&reader(i)) == 1));
    let ledger = Ledger::open(&disk.path().join("state"), Clock::system()).unwrap();
    ledger.states_in_order(week(), &Kind::Real)
}

#[test]
fn a_power_loss_with_full_sync_resends_at_most_prepared_ahead_plus_one_per_worker() {
    // Past the first journal segment, so a fold happened before the cut; one cut at each
    // place of the cycle between two waits for a sync.
    let n = 800;
    let mut most = 0;
    for cut in 700..=701 + PREPARED_AHEAD {
        let states = states_after_a_power_cut(n, cut);
        assert_eq!(states.len(), n);
        // Delivered: known sent, or marked sending (resent, flagged); never pending,
        // which would resend them unflagged.
        assert!(
            states[..cut]
                .iter()
                .all(|s| matches!(s, State::Sent | State::Sending)),
            "cut at {cut}: {:?}",
            &states[..cut]
        );
        let resent = states[..cut]
            .iter()
            .filter(|s| **s == State::Sending)
            .count();
        assert!(
            resent <= PREPARED_AHEAD,
            "cut at {cut}: {resent} delivered messages would be resent, besides the one in flight"
        );
        most = most.max(resent);
        // The one in flight had its mark on disk before its end of data; nobody later is
        // known sent.
        assert_eq!(states[cut], State::Sending, "cut at {cut}");
        assert!(states[cut..]
            .iter()
            .all(|s| matches!(s, State::Pending | State::Sending)));
    }
    assert!(most > 0, "no cut lost an outcome: the bound went untested");
}

#[test]
fn after_a_kill_with_full_sync_only_the_message_in_flight_is_a_possible_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let n = 3 * PREPARED_AHEAD;
    frozen(dir.path(), n);
    let script = Script::new(&[(&reader(5), &[Reply::Crash])]);
    run_until_it_dies(dir.path(), &script, true);
    // The readers marked ahead of reader 5 never started: the same boot's journal is
    // whole, so their marks are left out and they stay pending.
    let states = Ledger::open(dir.path(), Clock::system())
        .unwrap()
        .states_in_order(week(), &Kind::Real);
    assert_eq!(&states[..5], [State::Sent; 5]);
    assert_eq!(states[5], State::Sending);
    assert!(
        states[6..].iter().all(|s| *s == State::Pending),
        "{states:?}"
    );
    let setup = Setup {
        full_sync: true,
        ..DEFAULTS
    };
    run(dir.path(), &Script::new(&[]), &setup).unwrap();
    assert_eq!(count(dir.path(), State::Sent), n);
    assert_eq!(possible_duplicates(dir.path()), 1);
}
