//! `status --repair` after the ledger is lost in the middle of a week (issue 24): the
//! journal proves who was served, so nobody gets the week twice and nobody misses it.

use std::collections::HashMap;

use crate::harness::{send, spawn_send, wait_for, Site};
use crate::send::crowd;
use crate::smtp::SmtpServer;

const READERS: usize = 500;
const CONCURRENCY: usize = 4;

/// A send killed (SIGKILL) after `served` messages, then its ledger deleted.
fn killed_then_ledger_lost(served: usize) -> (SmtpServer, Site) {
    let server = SmtpServer::start(&["--delay-ms", "5"]);
    let site = crowd(&server, CONCURRENCY, READERS);
    let mut child = spawn_send(&site);
    wait_for(&server, served);
    child.kill().unwrap();
    child.wait().unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(site.path(&format!("state/ledger.sqlite3{suffix}")));
    }
    (server, site)
}

/// Messages per reader at the server.
fn per_reader(server: &SmtpServer) -> HashMap<String, usize> {
    let mut got = HashMap::new();
    for m in server.messages() {
        *got.entry(m.rcpt[0].clone()).or_default() += 1;
    }
    got
}

fn repair_then_send(force: bool) {
    // Past the first journal segment (1,024 lines, about 340 messages): some of what
    // proves who was served is already folded into the lost ledger.
    let (server, site) = killed_then_ledger_lost(400);
    let before = server.count();
    assert!(before < READERS, "the kill must land mid-send ({before})");
    let refused = send(&site, &[]);
    assert_eq!(refused.code(), 2, "{}", refused.stderr());
    let mut args = vec!["status", "--repair"];
    if force {
        args.push("--force");
    }
    let repair = site.run(&args).success();
    repair.assert_stdout_contains("2011-W52: rebuilt from the journal: ");
    let served: usize = repair
        .stdout()
        .split("rebuilt from the journal: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a count of readers served");
    assert!(
        served + CONCURRENCY >= before && served <= before,
        "the journal proves {served} of the {before} the server took"
    );
    send(&site, &[]).success();
    let got = per_reader(&server);
    assert_eq!(got.len(), READERS, "everyone got the week");
    let twice: usize = got.values().map(|n| n - 1).sum();
    assert!(
        twice <= CONCURRENCY,
        "{twice} readers got it twice, at most {CONCURRENCY} may (in flight at the kill)"
    );
    send(&site, &[])
        .success()
        .assert_stdout_starts("nothing new to send");
    assert!(
        !site.path("state/journal/kept/2011-W52").exists(),
        "a week sent to everyone keeps no journal"
    );
}

#[test]
fn a_ledger_lost_mid_week_is_rebuilt_from_the_journal() {
    // Before (#24): the whole week was recorded as sent, and 100 readers never got it.
    repair_then_send(false);
}

#[test]
fn repair_force_never_mails_again_who_the_journal_proves_served() {
    // Before (#24): --force forgot the week, and 400 readers got it twice.
    repair_then_send(true);
}

fn journal_segments(site: &Site) -> usize {
    std::fs::read_dir(site.path("state/journal"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "log")
        })
        .count()
}

#[test]
fn status_right_after_a_kill_counts_what_only_the_journal_holds() {
    // Before (#24): "200 pending" while the server held about 100 of them: a killed
    // run's lines wait in the journal for the next send to fold them.
    let server = SmtpServer::start(&["--delay-ms", "5"]);
    let site = crowd(&server, CONCURRENCY, 200);
    let mut child = spawn_send(&site);
    wait_for(&server, 100);
    child.kill().unwrap();
    child.wait().unwrap();
    let delivered = server.count();
    let segments = journal_segments(&site);
    assert!(segments > 0, "the killed run left its journal");
    let out = site.run(&["status", "--json"]).success().stdout();
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let counts = &report[0]["counts"];
    let n = |state: &str| counts[state].as_u64().unwrap() as usize;
    assert!(
        n("sent") <= delivered && n("sent") + n("sending") + CONCURRENCY >= delivered,
        "{delivered} delivered, status says {counts}"
    );
    assert_eq!(n("pending") + n("sent") + n("sending"), 200, "{counts}");
    assert_eq!(journal_segments(&site), segments, "status only reads");
    send(&site, &[]).success();
    assert_eq!(per_reader(&server).len(), 200);
}
