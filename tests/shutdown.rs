//! Shutdown of the whole supervisor, by `shutdown()` and by drop: every session asked to
//! stop, joined, reported; no start afterwards.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier, Weak};
use std::thread;
use std::time::Duration;

use common::{guard, recv_within, Projects, TIMEOUT};
use crossbeam_channel::{unbounded, Sender, TryRecvError};
use session_supervisor::{
    stub, Error, ExitReason, Restart, RestartPolicy, SessionContext, SessionHandle, SessionId,
    SessionSupervisor,
};

/// An intensity window no test outlasts.
const HOUR: Duration = Duration::from_secs(3600);

/// A body that arranges a message on `exits` when its thread ends, tells `running` it
/// runs, then idles until stopped.
fn signals_thread_exit(
    exits: Sender<()>,
    running: Sender<()>,
) -> impl FnMut(&SessionContext) + Send {
    move |ctx: &SessionContext| {
        common::signal_on_thread_exit(exits.clone());
        let _ = running.send(());
        ctx.wait_for_stop();
    }
}

/// Starts one idle session per project and returns their handles, in start order.
fn start_idle(sup: &SessionSupervisor, projects: &Projects, n: usize) -> Vec<SessionHandle> {
    (0..n)
        .map(|i| {
            sup.start_session(projects.session(i), stub::idle())
                .expect("start")
        })
        .collect()
}

fn ids(handles: &[SessionHandle]) -> Vec<SessionId> {
    handles.iter().map(|h| h.id()).collect()
}

#[test]
fn shutdown_stops_every_session_and_reports_each_newest_first() {
    guard!(move || {
        let projects = Projects::new(5);
        let sup = common::supervisor();
        let handles = start_idle(&sup, &projects, 5);
        let report = sup.shutdown();

        assert!(report.is_complete());
        assert!(report.timed_out().is_empty());
        let reported: Vec<_> = report.exited().iter().map(|r| r.id()).collect();
        let mut newest_first = ids(&handles);
        newest_first.reverse();
        assert_eq!(reported, newest_first);
        for exit in report.exited() {
            assert_eq!(exit.reason(), &ExitReason::Stopped);
            assert_eq!(exit.restarts(), 0);
        }
        assert!(sup.is_shut_down());
        assert_eq!(sup.count(), 0);
        assert!(sup.list_all().is_empty());
        for (i, handle) in handles.iter().enumerate() {
            assert!(!handle.is_running());
            assert!(sup.lookup_by_path(projects.path(i)).is_err());
        }
    });
}

#[test]
fn shutdown_reports_each_exit_reason_and_panic_message() {
    guard!(move || {
        let projects = Projects::new(3);
        let sup = common::supervisor();
        let (runs_tx, runs) = unbounded();
        let idle = sup
            .start_session(projects.session(0), stub::idle())
            .expect("start the idle session");
        let panicking = sup
            .start_session(projects.session(1), |ctx: &SessionContext| {
                ctx.wait_for_stop();
                panic!("lost {} unsaved edits", 2);
            })
            .expect("start the session that panics when stopped");
        // Restarted twice before the shutdown: the report carries the count.
        let policy = RestartPolicy::new(Restart::Permanent).intensity(5, HOUR);
        let restarted = sup
            .start(projects.session(2))
            .policy(policy)
            .run(returns_twice(runs_tx))
            .expect("start the restarted session");
        for run in 0..3 {
            assert_eq!(recv_within(&runs, "the next run"), run);
        }

        let report = sup.shutdown();
        assert!(report.is_complete());
        let exited = |handle: &SessionHandle| {
            report
                .exited()
                .iter()
                .find(|r| r.id() == handle.id())
                .cloned()
                .expect("reported")
        };
        assert_eq!(exited(&idle).reason(), &ExitReason::Stopped);
        let panicked = ExitReason::Panicked {
            message: "lost 2 unsaved edits".into(),
        };
        assert_eq!(exited(&panicking).reason(), &panicked);
        assert_eq!(exited(&restarted).reason(), &ExitReason::Stopped);
        assert_eq!(exited(&restarted).restarts(), 2);
        assert_eq!(report.exited().len(), 3);
    });
}

/// A body that sends its restart count each run, returns on its first two runs and
/// idles on the third.
fn returns_twice(runs: Sender<u32>) -> impl FnMut(&SessionContext) + Send {
    move |ctx: &SessionContext| {
        let _ = runs.send(ctx.restarts());
        if ctx.restarts() == 2 {
            ctx.wait_for_stop();
        }
    }
}

#[test]
fn shutdown_reports_the_same_end_as_the_handles() {
    guard!(move || {
        let projects = Projects::new(3);
        let sup = common::supervisor();
        let handles = start_idle(&sup, &projects, 3);
        let report = sup.shutdown();
        for handle in &handles {
            let seen = handle.wait_timeout(Duration::ZERO).expect("ended");
            assert!(report.exited().contains(&seen), "{seen:?}");
        }
    });
}

#[test]
fn shutdown_does_not_report_sessions_that_ended_before_it() {
    guard!(move || {
        let projects = Projects::new(2);
        let sup = common::supervisor();
        let ended = sup
            .start_session(projects.session(0), stub::returns())
            .expect("start");
        let report = ended.wait_timeout(TIMEOUT).expect("returned by itself");
        assert_eq!(report.reason(), &ExitReason::Normal);
        let running = sup
            .start_session(projects.session(1), stub::idle())
            .expect("start");

        let report = sup.shutdown();
        let reported: Vec<_> = report.exited().iter().map(|r| r.id()).collect();
        assert_eq!(reported, [running.id()]);
    });
}

#[test]
fn shutdown_with_no_sessions_returns_an_empty_complete_report() {
    guard!(move || {
        let sup = common::supervisor();
        let report = sup.shutdown();
        assert!(report.is_complete());
        assert!(report.exited().is_empty());
        assert!(sup.is_shut_down());
        // Calling it again is harmless.
        assert_eq!(sup.shutdown(), report);
    });
}

#[test]
fn start_after_shutdown_fails_with_shutting_down_and_never_runs_the_body() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        assert!(!sup.is_shut_down());
        sup.shutdown();
        let (ran_tx, ran) = unbounded::<()>();
        let tx = ran_tx.clone();
        let started = sup.start_session(projects.session(0), move |_: &SessionContext| {
            let _ = tx.send(());
        });
        assert!(matches!(started, Err(Error::ShuttingDown)), "{started:?}");
        let tx = ran_tx.clone();
        let with_policy = sup
            .start(projects.session(0))
            .policy(RestartPolicy::default())
            .run(move |_| {
                let _ = tx.send(());
            });
        assert!(
            matches!(with_policy, Err(Error::ShuttingDown)),
            "{with_policy:?}"
        );
        let tx = ran_tx.clone();
        let created = sup.create_session(projects.path(0), move |_: &SessionContext| {
            let _ = tx.send(());
        });
        assert!(matches!(created, Err(Error::ShuttingDown)), "{created:?}");
        drop(ran_tx);
        // Every body was dropped unrun: the channel is empty and closed.
        assert_eq!(ran.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(sup.count(), 0);
        assert!(sup.lookup_by_path(projects.path(0)).is_err());
    });
}

#[test]
fn a_body_starting_a_session_during_shutdown_is_refused() {
    guard!(move || {
        let projects = Projects::new(2);
        let sup = Arc::new(common::supervisor());
        let (refused_tx, refused) = unbounded();
        let weak: Weak<SessionSupervisor> = Arc::downgrade(&sup);
        let spare = projects.session(1);
        // Once asked to stop, the body tries to start another session.
        let body = move |ctx: &SessionContext| {
            ctx.wait_for_stop();
            let sup = weak.upgrade().expect("the test holds the supervisor");
            let _ = refused_tx.send(sup.start_session(spare.clone(), stub::idle()));
        };
        sup.start_session(projects.session(0), body).expect("start");
        let report = sup.shutdown();
        assert!(report.is_complete());
        let started = recv_within(&refused, "the start from the body");
        assert!(matches!(started, Err(Error::ShuttingDown)), "{started:?}");
        assert_eq!(sup.count(), 0);
    });
}

#[test]
fn stop_after_shutdown_finds_no_session() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let handle = sup
            .start_session(projects.session(0), stub::idle())
            .expect("start");
        sup.shutdown();
        let stopped = sup.stop_session(handle.id());
        assert!(
            matches!(stopped, Err(Error::NotFound { .. })),
            "{stopped:?}"
        );
    });
}

#[test]
fn shutdown_joins_every_session_thread_before_it_returns() {
    guard!(move || {
        const SESSIONS: usize = 10;
        let projects = Projects::new(SESSIONS);
        let sup = common::builder().max_sessions(SESSIONS).build();
        let (exits_tx, exits) = unbounded();
        let (running_tx, running) = unbounded();
        for i in 0..SESSIONS {
            let body = signals_thread_exit(exits_tx.clone(), running_tx.clone());
            sup.start_session(projects.session(i), body).expect("start");
            recv_within(&running, "the session running");
        }
        assert!(exits.try_recv().is_err());
        let report = sup.shutdown();
        assert_eq!(report.exited().len(), SESSIONS);
        // No waiting: each thread was joined, so its exit message is already in.
        assert_eq!(exits.try_iter().count(), SESSIONS);
    });
}

#[test]
fn dropping_the_supervisor_joins_every_running_session() {
    guard!(move || {
        const SESSIONS: usize = 10;
        let projects = Projects::new(SESSIONS);
        let sup = common::builder().max_sessions(SESSIONS).build();
        let (exits_tx, exits) = unbounded();
        let (running_tx, running) = unbounded();
        let handles: Vec<_> = (0..SESSIONS)
            .map(|i| {
                let body = signals_thread_exit(exits_tx.clone(), running_tx.clone());
                sup.start_session(projects.session(i), body).expect("start")
            })
            .collect();
        for _ in 0..SESSIONS {
            recv_within(&running, "every session running");
        }
        drop(sup);
        // No waiting: each thread was joined, so its exit message is already in.
        assert_eq!(exits.try_iter().count(), SESSIONS);
        for handle in &handles {
            let report = handle.wait_timeout(Duration::ZERO).expect("ended");
            assert_eq!(report.reason(), &ExitReason::Stopped);
        }
    });
}

#[test]
fn shutdown_during_crash_loops_ends_every_session() {
    guard!(move || {
        const SESSIONS: usize = 8;
        let projects = Projects::new(SESSIONS);
        let sup = common::builder().max_sessions(SESSIONS).build();
        let policy = RestartPolicy::new(Restart::Permanent).intensity(u32::MAX, HOUR);
        let (crashing_tx, crashing) = unbounded();
        let handles: Vec<_> = (0..SESSIONS)
            .map(|i| {
                let tx = crashing_tx.clone();
                sup.start(projects.session(i))
                    .policy(policy)
                    .run(move |ctx| {
                        if ctx.restarts() == 3 {
                            let _ = tx.send(());
                        }
                        panic!("crash {}", ctx.restarts());
                    })
                    .expect("start")
            })
            .collect();
        for _ in 0..SESSIONS {
            recv_within(&crashing, "every session crash-looping");
        }
        let report = sup.shutdown();

        assert!(report.is_complete());
        let reported: BTreeSet<_> = report.exited().iter().map(|r| r.id()).collect();
        assert_eq!(reported, ids(&handles).into_iter().collect());
        for exit in report.exited() {
            let crashed_or_stopped = match exit.reason() {
                ExitReason::Stopped => true,
                ExitReason::Panicked { message } => message.starts_with("crash "),
                _ => false,
            };
            assert!(crashed_or_stopped, "{exit:?}");
        }
        assert_eq!(sup.count(), 0);
    });
}

#[test]
fn concurrent_shutdowns_each_return_with_every_session_ended() {
    guard!(move || {
        const SESSIONS: usize = 6;
        const CALLERS: usize = 4;
        let projects = Projects::new(SESSIONS);
        let sup = Arc::new(common::builder().max_sessions(SESSIONS).build());
        let handles = start_idle(&sup, &projects, SESSIONS);
        let barrier = Arc::new(Barrier::new(CALLERS));
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                let (sup, barrier) = (Arc::clone(&sup), Arc::clone(&barrier));
                thread::spawn(move || {
                    barrier.wait();
                    sup.shutdown()
                })
            })
            .collect();
        let mut reported = BTreeSet::new();
        for caller in callers {
            let report = caller.join().expect("shutdown");
            assert!(report.is_complete());
            reported.extend(report.exited().iter().map(|r| r.id()));
        }
        assert_eq!(reported, ids(&handles).into_iter().collect());
        assert!(handles.iter().all(|h| !h.is_running()));
        assert_eq!(sup.count(), 0);
    });
}
