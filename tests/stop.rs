//! Stopping sessions: one, several, concurrently, from their own thread, bodies that
//! ignore the request, and dropping the supervisor.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{guard, recv_within, Projects, TIMEOUT};
use crossbeam_channel::{unbounded, Receiver, Sender, TryRecvError};
use session_supervisor::{
    stub, Error, ExitReason, SessionContext, SessionHandle, SessionId, SessionKey,
    SessionSupervisor,
};

/// The stop timeout of tests with stuck bodies.
const SHORT: Duration = Duration::from_millis(200);

/// A body that idles until stopped, and whose thread tells `exited` when it exits.
fn idle_until_thread_exit(exited: Sender<()>) -> impl FnMut(&SessionContext) + Send + 'static {
    move |ctx: &SessionContext| {
        common::signal_on_thread_exit(exited.clone());
        ctx.wait_for_stop();
    }
}

/// A body that idles until stopped, then sends its id: proof it saw the stop.
fn reports_stop(observed: Sender<SessionId>) -> impl FnMut(&SessionContext) + Send + 'static {
    move |ctx: &SessionContext| {
        ctx.wait_for_stop();
        let _ = observed.send(ctx.id());
    }
}

fn assert_not_found_by_id(result: Result<impl std::fmt::Debug, Error>, expected: SessionId) {
    match result {
        Err(Error::NotFound {
            key: SessionKey::Id(id),
        }) => assert_eq!(id, expected),
        other => panic!("expected NotFound for {expected}, got {other:?}"),
    }
}

#[test]
fn stop_terminates_and_joins_the_session_thread() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let (exited_tx, exited_rx) = unbounded();
        let handle = sup
            .start_session(projects.session(0), idle_until_thread_exit(exited_tx))
            .unwrap();

        let report = sup.stop_session(handle.id()).unwrap();

        assert_eq!(report.id(), handle.id());
        assert_eq!(report.reason(), &ExitReason::Stopped);
        assert!(!handle.is_running());
        // Not recv_within: the thread must have exited (and been joined) already. A
        // warm thread is parked instead, and joined by the shutdown.
        if common::warm_threads() > 0 {
            assert!(exited_rx.try_recv().is_err(), "a warm thread is parked");
            assert!(sup.idle_threads() > 0);
            assert!(sup.shutdown().is_complete());
        }
        assert_eq!(
            exited_rx.try_recv(),
            Ok(()),
            "the session thread still exists"
        );
    });
}

#[test]
fn stop_unregisters_both_id_and_path() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let handle = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();

        sup.stop_session(handle.id()).unwrap();

        assert_eq!(sup.count(), 0);
        assert!(!sup.session_running(handle.id()));
        assert_not_found_by_id(sup.lookup(handle.id()), handle.id());
        assert!(matches!(
            sup.lookup_by_path(projects.path(0)),
            Err(Error::NotFound { .. })
        ));
        sup.start_session(projects.session(0), stub::idle())
            .unwrap();
    });
}

#[test]
fn second_stop_of_a_session_is_not_found() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let handle = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        sup.stop_session(handle.id()).unwrap();

        assert_not_found_by_id(sup.stop_session(handle.id()), handle.id());
    });
}

#[test]
fn stop_several_sessions_one_by_one_leaves_the_others_running() {
    guard!(move || {
        const SESSIONS: usize = 4;
        let projects = Projects::new(SESSIONS);
        let sup = common::supervisor();
        let (observed_tx, observed_rx) = unbounded();
        let handles: Vec<SessionHandle> = (0..SESSIONS)
            .map(|i| {
                let body = reports_stop(observed_tx.clone());
                sup.start_session(projects.session(i), body).unwrap()
            })
            .collect();

        for (stopped, handle) in handles.iter().enumerate() {
            let report = sup.stop_session(handle.id()).unwrap();
            assert_eq!(report.reason(), &ExitReason::Stopped);
            assert_eq!(observed_rx.try_recv(), Ok(handle.id()));
            assert_eq!(sup.count(), SESSIONS - stopped - 1);
            for later in &handles[stopped + 1..] {
                assert!(later.is_running() && !later.stop_requested());
            }
        }
    });
}

// A body may call back into its supervisor; stopping itself must not wait for itself.
#[test]
fn stop_from_the_sessions_own_thread_returns_at_once_and_the_session_ends() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = Arc::new(common::supervisor());
        let (sup_tx, sup_rx) = unbounded::<Arc<SessionSupervisor>>();
        let (result_tx, result_rx) = unbounded();
        let handle = sup
            .start_session(projects.session(0), move |ctx| {
                let sup = sup_rx.recv().expect("the supervisor is handed in");
                let result = sup.stop_session(ctx.id());
                let _ = result_tx.send((result, ctx.stop_requested()));
                ctx.wait_for_stop();
            })
            .unwrap();
        // The test keeps its own Arc: the body's is never the last one.
        sup_tx.send(Arc::clone(&sup)).unwrap();

        let (result, requested) = recv_within(&result_rx, "the body's own stop_session");

        assert!(
            matches!(&result, Err(Error::StopFromOwnThread { id }) if *id == handle.id()),
            "{result:?}"
        );
        assert!(requested, "the stop was requested all the same");
        let report = handle.wait_timeout(TIMEOUT).expect("the session ends");
        assert_eq!(report.reason(), &ExitReason::Stopped);
        assert!(!sup.session_running(handle.id()));
        assert!(sup.lookup_by_path(projects.path(0)).is_err());
    });
}

// Several stoppers of one session: one join, no panic, nobody returns before the end.
#[test]
fn concurrent_stops_of_one_session_each_return_after_it_ended() {
    guard!(move || {
        const STOPPERS: usize = 8;
        const ROUNDS: usize = 20;
        let projects = Projects::new(1);
        let sup = common::supervisor();
        for round in 0..ROUNDS {
            // Disconnected once the body (and so its run) is gone.
            let (alive_tx, alive_rx) = unbounded::<()>();
            let handle = sup
                .start_session(projects.session(0), move |ctx| {
                    let _alive = &alive_tx;
                    ctx.wait_for_stop();
                })
                .unwrap();

            let oks = race_stops(&sup, &handle, &alive_rx, STOPPERS, round);

            assert!(oks >= 1, "round {round}: no stop returned Ok");
            assert_eq!(sup.count(), 0);
        }
    });
}

/// Stops `handle` from `stoppers` threads at once; checks each result, returns the
/// number of `Ok`s.
fn race_stops(
    sup: &SessionSupervisor,
    handle: &SessionHandle,
    alive: &Receiver<()>,
    stoppers: usize,
    round: usize,
) -> usize {
    let barrier = Barrier::new(stoppers);
    let results: Vec<_> = thread::scope(|s| {
        let threads: Vec<_> = (0..stoppers)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let result = sup.stop_session(handle.id());
                    let body_gone = alive.try_recv() == Err(TryRecvError::Disconnected);
                    (result, body_gone, handle.is_running())
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut oks = 0;
    for (result, body_gone, running) in results {
        assert!(
            body_gone,
            "round {round}: a stop returned while the body ran"
        );
        match result {
            Ok(report) => {
                assert_eq!(report.reason(), &ExitReason::Stopped);
                assert!(!running, "round {round}: Ok before the session ended");
                oks += 1;
            }
            Err(Error::NotFound { .. }) => {}
            Err(other) => panic!("round {round}: {other:?}"),
        }
    }
    oks
}

#[test]
fn stop_of_a_body_ignoring_its_stop_times_out_and_keeps_its_path_until_it_ends() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder().stop_timeout(SHORT).build();
        let (gate_tx, gate_rx) = unbounded();
        let handle = sup
            .start_session(projects.session(0), stub::gated(gate_rx))
            .unwrap();
        let id = handle.id();

        let asked = Instant::now();
        let err = sup.stop_session(id).unwrap_err();
        let waited = asked.elapsed();

        assert!(
            matches!(err, Error::StopTimeout { id: got, timeout } if got == id && timeout == SHORT),
            "{err:?}"
        );
        assert!(waited >= SHORT, "gave up after {waited:?}");
        assert!(handle.stop_requested() && handle.is_running());
        assert_path_reserved(&sup, &projects, id);
        // Still stuck: another stop times out again and changes nothing.
        assert!(matches!(
            sup.stop_session(id),
            Err(Error::StopTimeout { .. })
        ));
        assert_path_reserved(&sup, &projects, id);

        gate_tx.send(()).unwrap();
        let report = handle
            .wait_timeout(TIMEOUT)
            .expect("the released body ends");

        assert_eq!(report.reason(), &ExitReason::Stopped);
        assert!(!sup.session_running(id));
        assert!(sup.lookup_by_path(projects.path(0)).is_err());
        let next = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        assert!(next.is_running());
    });
}

/// The stuck session `id` still owns project 0.
fn assert_path_reserved(sup: &SessionSupervisor, projects: &Projects, id: SessionId) {
    assert!(sup.session_running(id));
    assert_eq!(sup.lookup_by_path(projects.path(0)).unwrap().id(), id);
    let err = sup
        .start_session(projects.session(0), stub::idle())
        .unwrap_err();
    assert!(
        matches!(&err, Error::ProjectAlreadyOpen { id: owner, .. } if *owner == id),
        "{err:?}"
    );
}

#[test]
fn dropping_the_supervisor_stops_and_joins_every_session() {
    guard!(move || {
        const SESSIONS: usize = 3;
        let projects = Projects::new(SESSIONS);
        let sup = common::supervisor();
        let (observed_tx, observed_rx) = unbounded();
        let (exited_tx, exited_rx) = unbounded();
        let mut handles = Vec::new();
        for i in 0..SESSIONS {
            let (observed, exited) = (observed_tx.clone(), exited_tx.clone());
            let handle = sup
                .start_session(projects.session(i), move |ctx| {
                    common::signal_on_thread_exit(exited.clone());
                    ctx.wait_for_stop();
                    let _ = observed.send(ctx.id());
                })
                .unwrap();
            handles.push(handle);
        }
        drop((observed_tx, exited_tx));

        drop(sup);

        // Not recv_within: the drop returned only after every thread was joined.
        let mut observed: Vec<SessionId> = observed_rx.try_iter().collect();
        let mut expected: Vec<SessionId> = handles.iter().map(|h| h.id()).collect();
        observed.sort();
        expected.sort();
        assert_eq!(observed, expected, "every body saw the stop");
        assert_eq!(
            exited_rx.try_iter().count(),
            SESSIONS,
            "every thread exited"
        );
        for handle in &handles {
            assert!(!handle.is_running());
            let report = handle.wait_timeout(Duration::ZERO).unwrap();
            assert_eq!(report.reason(), &ExitReason::Stopped);
        }
    });
}

// Signal all, then wait against one deadline: N stuck sessions cost one timeout, not N.
#[test]
fn drop_waits_for_stuck_sessions_together_and_leaves_them_to_finish() {
    guard!(move || {
        const STUCK: usize = 5;
        let projects = Projects::new(STUCK);
        let sup = common::builder().stop_timeout(SHORT).build();
        let (gate_tx, gate_rx) = unbounded::<()>();
        let handles: Vec<SessionHandle> = (0..STUCK)
            .map(|i| {
                let body = stub::gated(gate_rx.clone());
                sup.start_session(projects.session(i), body).unwrap()
            })
            .collect();

        let asked = Instant::now();
        drop(sup);
        let took = asked.elapsed();

        assert!(took >= SHORT, "the drop did not wait: {took:?}");
        // One after the other would take STUCK * SHORT.
        assert!(
            took < SHORT * (STUCK as u32 - 1),
            "waits did not overlap: {took:?}"
        );
        for handle in &handles {
            assert!(handle.is_running() && handle.stop_requested());
        }

        drop(gate_tx);
        for handle in &handles {
            let report = handle.wait_timeout(TIMEOUT).expect("a released body ends");
            assert_eq!(report.reason(), &ExitReason::Stopped);
        }
    });
}

// The last owner may be a session body: the drop must not join its own thread.
#[test]
fn last_owner_dropped_on_a_session_thread_stops_the_others_without_joining_itself() {
    guard!(move || {
        let projects = Projects::new(2);
        let sup = Arc::new(common::supervisor());
        let (exited_tx, exited_rx) = unbounded();
        let other = sup
            .start_session(projects.session(1), idle_until_thread_exit(exited_tx))
            .unwrap();
        let (sup_tx, sup_rx) = unbounded::<Arc<SessionSupervisor>>();
        let (dropped_tx, dropped_rx) = unbounded();
        let owner = sup
            .start_session(projects.session(0), move |ctx| {
                let last = sup_rx.recv().expect("the supervisor is handed in");
                drop(last);
                let _ = dropped_tx.send(ctx.stop_requested());
            })
            .unwrap();

        sup_tx.send(sup).unwrap();

        let requested = recv_within(&dropped_rx, "the drop on the session thread");
        assert!(requested, "the dropping session was asked to stop too");
        // The drop joined the other session before it returned.
        assert!(!other.is_running());
        assert_eq!(exited_rx.try_recv(), Ok(()));
        let report = owner
            .wait_timeout(TIMEOUT)
            .expect("the owner's session ends");
        assert_eq!(report.reason(), &ExitReason::Stopped);
    });
}
