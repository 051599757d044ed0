//! Retries, deferral, refusals, the circuit breaker, unknown outcomes and concurrency.

use super::crashes::run_until_it_dies;
use super::*;

#[test]
fn temporary_failures_are_retried_then_sent() {
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 2);
    let script = Script::new(&[(&reader(0), &[Reply::Busy, Reply::Busy])]);
    let stats = run(dir.path(), &script, &DEFAULTS).unwrap();
    assert_eq!(stats.messages, 2);
    assert_eq!(states(dir.path()), [State::Sent, State::Sent]);
    assert_eq!(*script.attempts.lock().unwrap(), 4);
}

#[test]
fn a_reader_still_busy_after_every_attempt_is_deferred_to_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 2);
    let script = Script::new(&[(&reader(0), &[Reply::Busy; 3])]);
    run(dir.path(), &script, &DEFAULTS).unwrap();
    assert_eq!(states(dir.path()), [State::Deferred, State::Sent]);
    run(dir.path(), &script, &DEFAULTS).unwrap();
    assert_eq!(states(dir.path()), [State::Sent, State::Sent]);
    assert_eq!(
        (script.copies(&reader(0)), script.copies(&reader(1))),
        (1, 1)
    );
}

#[test]
fn a_refused_address_fails_and_the_list_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 8);
    // Refusals at RCPT never trip the breaker: they are about one address each.
    let refused: Vec<(String, [Reply; 1])> =
        (0..6).map(|i| (reader(i), [Reply::NoSuchUser])).collect();
    let refused: Vec<(&str, &[Reply])> =
        refused.iter().map(|(r, l)| (r.as_str(), &l[..])).collect();
    let script = Script::new(&refused);
    let stats = run(dir.path(), &script, &DEFAULTS).unwrap();
    assert_eq!(stats.stopped, None);
    assert_eq!(count(dir.path(), State::Failed), 6);
    assert_eq!(count(dir.path(), State::Sent), 2);
}

#[test]
fn five_refusals_after_the_data_in_a_row_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 10);
    let script = Arc::new(Script::default());
    for i in 0..10 {
        script
            .replies
            .lock()
            .unwrap()
            .insert(reader(i), VecDeque::from([Reply::Refuse]));
    }
    let stats = run(dir.path(), &script, &DEFAULTS).unwrap();
    assert!(stats
        .stopped
        .unwrap()
        .starts_with("stopped after 5 messages in a row"));
    assert_eq!(count(dir.path(), State::Failed), 5);
    assert_eq!(count(dir.path(), State::Pending), 5);
}

#[test]
fn an_unknown_outcome_is_resent_once_over_all_runs() {
    // Regression (#11): a server that takes the final dot and never answers got every
    // message 4 times per run, and again on every rerun.
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 2);
    let script = Script::new(&[(&reader(0), &[Reply::Silence; 10])]);
    run(dir.path(), &script, &DEFAULTS).unwrap();
    assert_eq!(script.copies(&reader(0)), 1, "never retried within the run");
    assert_eq!(states(dir.path()), [State::Deferred, State::Sent]);
    run(dir.path(), &script, &DEFAULTS).unwrap();
    assert_eq!(script.copies(&reader(0)), 2, "resent once by the next run");
    assert_eq!(states(dir.path()), [State::Unknown, State::Sent]);
    run(dir.path(), &script, &DEFAULTS).unwrap();
    assert_eq!(script.copies(&reader(0)), 2, "and never again");
    assert_eq!(possible_duplicates(dir.path()), 1);
    let ledger = Ledger::open(dir.path(), Clock::system()).unwrap();
    let problem = &ledger.problems(week(), &Kind::Real).unwrap()[0];
    assert_eq!(
        problem.last_error.as_deref(),
        Some("no reply after end of data within 2 s")
    );
}

#[test]
fn resend_unknown_zero_never_sends_twice() {
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 1);
    let script = Script::new(&[(&reader(0), &[Reply::Silence; 10])]);
    let setup = Setup {
        resend_unknown: 0,
        ..DEFAULTS
    };
    run(dir.path(), &script, &setup).unwrap();
    run(dir.path(), &script, &setup).unwrap();
    assert_eq!(script.copies(&reader(0)), 1);
    assert_eq!(states(dir.path()), [State::Unknown]);
}

#[test]
fn an_unreachable_server_stops_the_run_and_leaves_the_rest_pending() {
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 5);
    let script = Script::new(&[(&reader(0), &[Reply::Down; 3])]);
    let stats = run(dir.path(), &script, &DEFAULTS).unwrap();
    assert!(stats.unreachable.unwrap().contains("connection refused"));
    assert_eq!(
        *script.attempts.lock().unwrap(),
        3,
        "one message's retries, no more"
    );
    assert_eq!(count(dir.path(), State::Deferred), 1);
    assert_eq!(count(dir.path(), State::Pending), 4);
}

#[test]
fn a_fatal_error_stops_at_once_and_marks_nothing_sent() {
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 3);
    let script = Script::new(&[(&reader(0), &[Reply::Fatal])]);
    let err = run(dir.path(), &script, &DEFAULTS).unwrap_err();
    assert_eq!(
        err.to_string(),
        "SMTP server test:25: authentication failed"
    );
    assert_eq!(count(dir.path(), State::Pending), 3);
    assert_eq!(script.copies(&reader(0)), 0);
}

#[test]
fn concurrent_workers_send_each_reader_once() {
    for full_sync in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        // More than one journal segment, so folds happen during the run.
        let n = 1500;
        frozen(dir.path(), n);
        let script = Script::new(&[(&reader(7), &[Reply::NoSuchUser])]);
        let setup = Setup {
            concurrency: 4,
            full_sync,
            ..DEFAULTS
        };
        let stats = run(dir.path(), &script, &setup).unwrap();
        assert_eq!(stats.messages, n - 1, "full_sync = {full_sync}");
        assert!((0..n).all(|i| script.copies(&reader(i)) == usize::from(i != 7)));
        assert_eq!(count(dir.path(), State::Sent), n - 1);
        assert_eq!(count(dir.path(), State::Failed), 1);
        assert!(
            crate::delivery::ledger::journal::leftovers(dir.path())
                .unwrap()
                .is_empty(),
            "every segment folded and removed"
        );
    }
}

#[test]
fn with_full_sync_the_messages_prepared_ahead_go_back_to_the_queue_when_the_run_stops() {
    let dir = tempfile::tempdir().unwrap();
    // More readers than the worker prepares ahead.
    let n = PREPARED_AHEAD + 12;
    frozen(dir.path(), n);
    let setup = Setup {
        full_sync: true,
        ..DEFAULTS
    };
    let script = Script::new(&[(&reader(2), &[Reply::Fatal])]);
    run(dir.path(), &script, &setup).unwrap_err();
    assert_eq!(count(dir.path(), State::Sent), 2);
    assert_eq!(
        count(dir.path(), State::Sending),
        0,
        "readers 3 to 10 were marked sending ahead, then put back"
    );
    assert_eq!(count(dir.path(), State::Pending), n - 2);
    let script = Script::new(&[]);
    run(dir.path(), &script, &setup).unwrap();
    assert_eq!(count(dir.path(), State::Sent), n);
    assert_eq!(possible_duplicates(dir.path()), 0);
    assert!((2..n).all(|i| script.copies(&reader(i)) == 1));
}

#[test]
fn every_outcome_is_recorded_before_the_next_end_of_data_even_when_nothing_is_left_to_take() {
    for full_sync in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        // Fewer readers than a worker takes ahead: the queue is dry from the start.
        let n = PREPARED_AHEAD;
        frozen(dir.path(), n);
        let script = Script::new(&[(&reader(n - 1), &[Reply::Crash])]);
        run_until_it_dies(dir.path(), &script, full_sync);
        assert_eq!(
            count(dir.path(), State::Sent),
            n - 1,
            "full_sync = {full_sync}: every message before the crash is known sent"
        );
        assert_eq!(count(dir.path(), State::Sending), 1);
    }
}

#[test]
fn a_reader_who_leaves_after_being_taken_ahead_is_not_mailed() {
    // Issue 24, item 5: the leave check is just before each reader's message, not when
    // the reader is taken into the queue ahead (8 ahead with full sync).
    let dir = tempfile::tempdir().unwrap();
    frozen(dir.path(), 6);
    let mut script = Script::default();
    script
        .replies
        .lock()
        .unwrap()
        .insert(reader(0), [Reply::AcceptWhileOneLeaves].into());
    script.leaver = Some((dir.path().to_path_buf(), reader(2)));
    let script = Arc::new(script);
    let setup = Setup {
        full_sync: true,
        ..DEFAULTS
    };
    run(dir.path(), &script, &setup).unwrap();
    assert_eq!(script.copies(&reader(2)), 0, "mailed after they left");
    assert_eq!(count(dir.path(), State::Unsubscribed), 1);
    assert_eq!(count(dir.path(), State::Sent), 5);
}
