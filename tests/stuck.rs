//! Stuck bodies: bodies that ignore stop requests. Stops and shutdowns give up on them
//! after the stop timeout, their paths stay reserved, and once they finally return
//! they unregister and free their paths.

mod common;

use std::time::{Duration, Instant};

use common::{guard, recv_within, Projects, TIMEOUT};
use crossbeam_channel::{unbounded, Sender};
use session_supervisor::{
    stub, Error, ExitReason, Restart, RestartPolicy, SessionHandle, SessionId, SessionSupervisor,
};

/// What a wait bounded by the stop timeout may take beyond it on a loaded machine.
const MARGIN: Duration = Duration::from_secs(2);

/// Starts a session that ignores stop requests until `gate` sends or is dropped.
fn start_stuck(
    sup: &SessionSupervisor,
    projects: &Projects,
    i: usize,
) -> (SessionHandle, Sender<()>) {
    let (gate, gate_rx) = unbounded();
    // Permanent: a release must still not run it again, as the stop was requested.
    let policy = RestartPolicy::new(Restart::Permanent);
    let handle = sup
        .start(projects.session(i))
        .policy(policy)
        .run(stub::gated(gate_rx))
        .expect("start");
    (handle, gate)
}

fn assert_timed_out(result: Result<impl std::fmt::Debug, Error>, id: SessionId, after: Duration) {
    match result {
        Err(Error::StopTimeout { id: stuck, timeout }) => {
            assert_eq!(stuck, id);
            assert_eq!(timeout, after);
        }
        other => panic!("expected StopTimeout, got {other:?}"),
    }
}

/// Waits for a released stuck session and checks it ended as stopped, not restarted.
fn assert_ends_stopped(handle: &SessionHandle) {
    let report = handle
        .wait_timeout(TIMEOUT)
        .expect("the released body returns");
    assert_eq!(report.reason(), &ExitReason::Stopped);
    assert_eq!(report.restarts(), 0);
}

#[test]
fn stop_of_a_stuck_body_times_out_after_the_stop_timeout() {
    guard!(move || {
        let timeout = Duration::from_millis(300);
        let projects = Projects::new(1);
        let sup = common::builder().stop_timeout(timeout).build();
        let (handle, _gate) = start_stuck(&sup, &projects, 0);

        let asked = Instant::now();
        let stopped = sup.stop_session(handle.id());
        let took = asked.elapsed();
        assert_timed_out(stopped, handle.id(), timeout);
        assert!(took >= timeout, "gave up early, after {took:?}");
        assert!(took < timeout + MARGIN, "gave up late, after {took:?}");
        assert!(handle.is_running());
        assert!(handle.stop_requested());
        assert!(sup.session_running(handle.id()));
    });
}

#[test]
fn a_stuck_session_keeps_its_path_until_it_returns_and_then_frees_it() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder()
            .stop_timeout(Duration::from_millis(100))
            .build();
        let (handle, gate) = start_stuck(&sup, &projects, 0);
        let id = handle.id();
        assert!(sup.stop_session(id).is_err());

        assert_eq!(sup.lookup_by_path(projects.path(0)).expect("path").id(), id);
        assert_eq!(sup.count(), 1);
        let taken = sup.start_session(projects.session(0), stub::idle());
        assert!(
            matches!(taken, Err(Error::ProjectAlreadyOpen { id: owner, .. }) if owner == id),
            "{taken:?}"
        );

        drop(gate);
        assert_ends_stopped(&handle);
        assert!(!sup.session_running(id));
        assert!(sup.lookup_by_path(projects.path(0)).is_err());
        assert_eq!(sup.count(), 0);
        let again = sup
            .start_session(projects.session(0), stub::idle())
            .expect("the path is free again");
        assert_eq!(
            sup.stop_session(again.id()).expect("stop").reason(),
            &ExitReason::Stopped
        );
    });
}

#[test]
fn a_second_stop_of_a_stuck_session_times_out_again() {
    guard!(move || {
        let timeout = Duration::from_millis(100);
        let projects = Projects::new(1);
        let sup = common::builder().stop_timeout(timeout).build();
        let (handle, gate) = start_stuck(&sup, &projects, 0);
        assert_timed_out(sup.stop_session(handle.id()), handle.id(), timeout);
        assert_timed_out(sup.stop_session(handle.id()), handle.id(), timeout);
        gate.send(()).expect("the body waits on the gate");
        assert_ends_stopped(&handle);
        let gone = sup.stop_session(handle.id());
        assert!(matches!(gone, Err(Error::NotFound { .. })), "{gone:?}");
    });
}

#[test]
fn a_zero_stop_timeout_gives_up_on_a_stuck_session_at_once() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder().stop_timeout(Duration::ZERO).build();
        let (handle, gate) = start_stuck(&sup, &projects, 0);
        let asked = Instant::now();
        assert_timed_out(sup.stop_session(handle.id()), handle.id(), Duration::ZERO);
        assert!(asked.elapsed() < MARGIN);
        drop(gate);
        assert_ends_stopped(&handle);
    });
}

#[test]
fn shutdown_lists_stuck_sessions_as_timed_out_within_one_timeout_and_stops_the_rest() {
    guard!(move || {
        const STUCK: usize = 4;
        // Four stuck sessions waited for one after the other would take 3 s.
        let timeout = Duration::from_millis(750);
        let projects = Projects::new(STUCK * 2);
        let sup = common::builder().stop_timeout(timeout).build();
        let mut stuck = Vec::new();
        let mut idle = Vec::new();
        for i in 0..STUCK {
            stuck.push(start_stuck(&sup, &projects, 2 * i));
            let handle = sup
                .start_session(projects.session(2 * i + 1), stub::idle())
                .expect("start");
            idle.push(handle);
        }

        let asked = Instant::now();
        let report = sup.shutdown();
        let took = asked.elapsed();
        assert!(took >= timeout, "gave up early, after {took:?}");
        assert!(took < timeout + MARGIN, "gave up late, after {took:?}");

        assert!(!report.is_complete());
        let newest_first = |handles: Vec<&SessionHandle>| -> Vec<SessionId> {
            handles.iter().rev().map(|h| h.id()).collect()
        };
        let stuck_ids = newest_first(stuck.iter().map(|(h, _)| h).collect());
        assert_eq!(report.timed_out(), stuck_ids);
        let exited: Vec<_> = report.exited().iter().map(|r| r.id()).collect();
        assert_eq!(exited, newest_first(idle.iter().collect()));
        assert!(report
            .exited()
            .iter()
            .all(|r| r.reason() == &ExitReason::Stopped));

        // The stuck ones stay registered, their paths reserved.
        assert_eq!(sup.count(), STUCK);
        for (i, (handle, _)) in stuck.iter().enumerate() {
            let owner = sup.lookup_by_path(projects.path(2 * i)).expect("reserved");
            assert_eq!(owner.id(), handle.id());
        }
        let refused = sup.start_session(projects.session(1), stub::idle());
        assert!(matches!(refused, Err(Error::ShuttingDown)), "{refused:?}");

        for (handle, gate) in stuck {
            drop(gate);
            assert_ends_stopped(&handle);
        }
        assert_eq!(sup.count(), 0);
        for i in 0..STUCK * 2 {
            assert!(
                sup.lookup_by_path(projects.path(i)).is_err(),
                "path {i} freed"
            );
        }
    });
}

#[test]
fn a_second_shutdown_waits_again_for_sessions_still_stuck() {
    guard!(move || {
        let timeout = Duration::from_millis(200);
        let projects = Projects::new(1);
        let sup = common::builder().stop_timeout(timeout).build();
        let (handle, gate) = start_stuck(&sup, &projects, 0);
        assert_eq!(sup.shutdown().timed_out(), [handle.id()]);

        let asked = Instant::now();
        let again = sup.shutdown();
        let took = asked.elapsed();
        assert_eq!(again.timed_out(), [handle.id()]);
        assert!(took >= timeout, "did not wait again: {took:?}");

        drop(gate);
        assert_ends_stopped(&handle);
        let last = sup.shutdown();
        assert!(last.is_complete());
        assert!(last.exited().is_empty(), "it had unregistered itself");
    });
}

#[test]
fn dropping_a_supervisor_with_a_stuck_session_returns_after_the_stop_timeout() {
    guard!(move || {
        let timeout = Duration::from_millis(300);
        let projects = Projects::new(2);
        let sup = common::builder().stop_timeout(timeout).build();
        let (stuck, gate) = start_stuck(&sup, &projects, 0);
        let (runs_tx, runs) = unbounded();
        let idle = sup
            .start_session(projects.session(1), stub::reports(runs_tx))
            .expect("start");
        recv_within(&runs, "the idle session running");

        let asked = Instant::now();
        drop(sup);
        let took = asked.elapsed();
        assert!(took < timeout + MARGIN, "drop took {took:?}");
        let report = idle
            .wait_timeout(Duration::ZERO)
            .expect("stopped by the drop");
        assert_eq!(report.reason(), &ExitReason::Stopped);
        assert!(stuck.is_running(), "left to end on its own");
        assert!(stuck.stop_requested());

        drop(gate);
        assert_ends_stopped(&stuck);
    });
}
