//! Shutdown of many sessions leaves no thread behind.
//!
//! Alone in its file: it counts the threads of the whole process, which other tests
//! running in parallel would change.

mod common;

use std::collections::BTreeSet;

use common::{guard, recv_within, thread_count, Projects, TIMEOUT};
use crossbeam_channel::unbounded;
use session_supervisor::{stub, ExitReason, SessionId, SessionSupervisor};

const RUNNING: usize = 100;
/// Sessions that end on their own before the shutdown: their threads must go too.
const ENDED: usize = 10;

/// Starts `RUNNING` idle sessions on projects `0..RUNNING` and waits until all run.
fn start_running(sup: &SessionSupervisor, projects: &Projects) -> BTreeSet<SessionId> {
    let (runs_tx, runs) = unbounded();
    let started = (0..RUNNING)
        .map(|i| {
            let body = stub::reports(runs_tx.clone());
            let handle = sup.start_session(projects.session(i), body).expect("start");
            handle.id()
        })
        .collect();
    for _ in 0..RUNNING {
        recv_within(&runs, "every session running");
    }
    started
}

/// Starts `ENDED` sessions whose bodies return at once and waits until each ended.
fn start_and_end(sup: &SessionSupervisor, projects: &Projects) {
    for i in RUNNING..RUNNING + ENDED {
        let handle = sup
            .start_session(projects.session(i), stub::returns())
            .expect("start");
        let report = handle.wait_timeout(TIMEOUT).expect("returned");
        assert_eq!(report.reason(), &ExitReason::Normal);
    }
}

#[test]
fn shutdown_of_100_sessions_reports_each_and_leaves_no_thread_running() {
    guard!(move || {
        let projects = Projects::new(RUNNING + ENDED);
        // Linux only: elsewhere the count is unknown and its checks are skipped.
        let before = thread_count();
        // One more: the sessions that end are started one at a time.
        let sup = common::builder().max_sessions(RUNNING + 1).build();
        let started = start_running(&sup, &projects);
        if let Some(before) = before {
            let during = thread_count().expect("counted before");
            assert_eq!(during, before + RUNNING, "one thread per session, no more");
        }
        start_and_end(&sup, &projects);

        let report = sup.shutdown();
        assert!(report.is_complete(), "{:?}", report.timed_out());
        assert_eq!(report.exited().len(), RUNNING);
        let reported: BTreeSet<_> = report.exited().iter().map(|r| r.id()).collect();
        assert_eq!(reported, started);
        assert!(report
            .exited()
            .iter()
            .all(|r| r.reason() == &ExitReason::Stopped));
        assert_eq!(sup.count(), 0);
        if let Some(before) = before {
            assert_eq!(thread_count(), Some(before), "threads left after shutdown");
        }
        drop(sup);
        if let Some(before) = before {
            assert_eq!(thread_count(), Some(before), "threads left after drop");
        }
    });
}
