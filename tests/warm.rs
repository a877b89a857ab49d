//! Warm threads: a stopped session parks its thread, the next start takes it, a thread
//! that ran a session that ended badly is never reused, parked threads end after their
//! idle timeout, and shutdown joins them all.
//!
//! A thread's end is observed with `signal_on_thread_exit`, set from the body: the
//! signal comes from a thread-local's destructor, so it arrives only once the thread
//! really ends, never while it is parked.

mod common;

use std::thread::{self, ThreadId};
use std::time::Duration;

use common::{guard, recv_within, signal_on_thread_exit, Projects, EXPECTED, TIMEOUT};
use session_supervisor::crossbeam_channel::{unbounded, Receiver, Sender};
use session_supervisor::{
    stub, Error, ExitReason, Restart, RestartPolicy, SessionContext, SessionHandle,
    SessionSupervisor, WARM_THREAD_NAME,
};

/// A body that tells which thread it runs on, arranges a signal for that thread's end,
/// and waits for its stop.
fn reporting(
    threads: Sender<ThreadId>,
    exits: Sender<()>,
) -> impl FnMut(&SessionContext) + Send + 'static {
    move |ctx| {
        signal_on_thread_exit(exits.clone());
        threads.send(thread::current().id()).unwrap();
        ctx.wait_for_stop();
    }
}

/// Starts a [`reporting`] session on project `i`; returns its handle and its thread.
fn start_reporting(
    sup: &SessionSupervisor,
    projects: &Projects,
    i: usize,
    exits: &Sender<()>,
) -> (SessionHandle, ThreadId) {
    let (threads, thread_rx) = unbounded();
    let handle = sup
        .start_session(projects.session(i), reporting(threads, exits.clone()))
        .expect("start");
    (handle, recv_within(&thread_rx, "the session's thread"))
}

fn assert_still_parked(exits: &Receiver<()>) {
    assert!(exits.try_recv().is_err(), "a parked thread has not ended");
}

#[test]
fn a_stopped_session_parks_its_thread_and_the_next_start_takes_it() {
    guard!(|| {
        let projects = Projects::new(2);
        let sup = SessionSupervisor::builder().warm_threads(1).build();
        let (exits, exit_rx) = unbounded();
        let (first, thread) = start_reporting(&sup, &projects, 0, &exits);
        assert_eq!(sup.idle_threads(), 0, "the only thread runs the session");
        first.stop().expect("stop");
        assert_eq!(sup.idle_threads(), 1, "parked once its session ended");
        assert_still_parked(&exit_rx);

        // The second session's signal replaces the first one's (which fires then).
        let (exits, exit_rx) = unbounded();
        let (second, again) = start_reporting(&sup, &projects, 1, &exits);
        assert_eq!(
            again, thread,
            "the second session runs on the first one's thread"
        );
        assert_eq!(sup.idle_threads(), 0);
        assert_eq!(second.stop().expect("stop").reason(), &ExitReason::Stopped);
        assert_still_parked(&exit_rx);

        assert!(sup.shutdown().is_complete());
        assert_eq!(sup.idle_threads(), 0);
        exit_rx
            .try_recv()
            .expect("shutdown joined the parked thread, so it ended before shutdown returned");
    });
}

#[test]
fn warm_up_fills_the_pool_and_the_first_start_is_warm() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::builder().warm_threads(3).build();
        assert_eq!(sup.idle_threads(), 0, "nothing is spawned before warm_up");
        assert_eq!(sup.warm_up().expect("warm up"), 3);
        assert_eq!(sup.idle_threads(), 3);
        assert_eq!(
            sup.warm_up().expect("again"),
            3,
            "a full pool spawns no more"
        );

        let (names, name_rx) = unbounded();
        let handle = sup
            .start_session(projects.session(0), move |ctx| {
                let name = thread::current().name().map(str::to_owned);
                names.send((name, ctx.session().name().to_owned())).unwrap();
                ctx.wait_for_stop();
            })
            .expect("start");
        assert_eq!(sup.idle_threads(), 2, "the start took a parked thread");
        let (thread_name, session_name) = recv_within(&name_rx, "the names");
        assert_eq!(thread_name.as_deref(), Some(WARM_THREAD_NAME));
        assert_eq!(
            session_name,
            handle.session().name(),
            "ctx names the session"
        );
        handle.stop().expect("stop");
        assert_eq!(sup.idle_threads(), 3);
    });
}

#[test]
fn the_pool_keeps_at_most_its_size_parked() {
    guard!(|| {
        let projects = Projects::new(3);
        let sup = SessionSupervisor::builder().warm_threads(2).build();
        let (exits, exit_rx) = unbounded();
        let started: Vec<_> = (0..3)
            .map(|i| start_reporting(&sup, &projects, i, &exits))
            .collect();
        for (handle, _) in &started {
            handle.stop().expect("stop");
        }
        assert_eq!(sup.idle_threads(), 2);
        recv_within(&exit_rx, "the end of the thread that found the pool full");
        assert_still_parked(&exit_rx);
    });
}

#[test]
fn a_parked_thread_ends_after_the_idle_timeout() {
    guard!(|| {
        let projects = Projects::new(2);
        let sup = SessionSupervisor::builder()
            .warm_threads(1)
            .warm_thread_timeout(Duration::from_millis(20))
            .build();
        let (exits, exit_rx) = unbounded();
        let (handle, thread) = start_reporting(&sup, &projects, 0, &exits);
        handle.stop().expect("stop");
        recv_within(&exit_rx, "the parked thread's end after its idle timeout");
        assert_eq!(sup.idle_threads(), 0, "it left the pool before it ended");

        let (handle, next) = start_reporting(&sup, &projects, 1, &exits);
        assert_ne!(next, thread, "a new thread runs the next session");
        handle.stop().expect("stop");
    });
}

#[test]
fn without_warm_threads_nothing_is_parked() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::builder().warm_threads(0).build();
        assert_eq!(sup.warm_up().expect("nothing to warm up"), 0);
        let (exits, exit_rx) = unbounded();
        let (handle, _) = start_reporting(&sup, &projects, 0, &exits);
        handle.stop().expect("stop");
        exit_rx
            .try_recv()
            .expect("the stop joined the session's own thread");
        assert_eq!(sup.idle_threads(), 0);
    });
}

#[test]
fn warm_up_after_shutdown_is_refused() {
    guard!(|| {
        let sup = SessionSupervisor::builder().warm_threads(2).build();
        sup.warm_up().expect("warm up");
        assert!(sup.shutdown().is_complete());
        assert_eq!(sup.idle_threads(), 0, "shutdown ended the parked threads");
        assert!(matches!(sup.warm_up(), Err(Error::ShuttingDown)));
    });
}

/// Checks that the thread a session of `sup` (one warm thread) ran on ended instead of
/// being parked.
fn assert_thread_not_reused(sup: &SessionSupervisor, exit_rx: &Receiver<()>) {
    recv_within(exit_rx, "the end of a thread that may not be reused");
    assert_eq!(sup.idle_threads(), 0, "nothing parked");
}

#[test]
fn a_session_that_crashed_past_its_restarts_does_not_give_its_thread_back() {
    guard!(|| {
        let projects = Projects::new(1);
        let policy = RestartPolicy::new(Restart::Permanent).intensity(1, TIMEOUT);
        let sup = SessionSupervisor::builder()
            .warm_threads(1)
            .restart_policy(policy)
            .build();
        let (exits, exit_rx) = unbounded();
        let (go, go_rx) = unbounded::<()>();
        let handle = sup
            .start_session(projects.session(0), move |_ctx| {
                signal_on_thread_exit(exits.clone());
                if go_rx.recv().is_ok() {
                    panic!("{EXPECTED}");
                }
            })
            .expect("start");
        go.send(()).unwrap();
        go.send(()).unwrap();
        let report = handle.wait_timeout(TIMEOUT).expect("it gives up");
        assert!(matches!(report.reason(), ExitReason::RestartLimit { .. }));
        assert_thread_not_reused(&sup, &exit_rx);
    });
}

#[test]
fn a_session_whose_stop_timed_out_does_not_give_its_thread_back() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::builder()
            .warm_threads(1)
            .stop_timeout(Duration::ZERO)
            .build();
        let (exits, exit_rx) = unbounded();
        let (gate, gate_rx) = unbounded::<()>();
        let handle = sup
            .start_session(projects.session(0), move |_ctx| {
                signal_on_thread_exit(exits.clone());
                // Ignores the stop until released.
                let _ = gate_rx.recv();
            })
            .expect("start");
        assert!(matches!(handle.stop(), Err(Error::StopTimeout { .. })));
        drop(gate);
        let report = handle.wait_timeout(TIMEOUT).expect("released, it ends");
        assert_eq!(report.reason(), &ExitReason::Stopped);
        assert_thread_not_reused(&sup, &exit_rx);
    });
}

#[test]
fn a_session_whose_init_failed_does_not_give_its_thread_back() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::builder().warm_threads(1).build();
        let (exits, exit_rx) = unbounded();
        let started = sup
            .start(projects.session(0))
            .init(move |_ctx| {
                signal_on_thread_exit(exits.clone());
                Err("no config".into())
            })
            .body(stub::idle());
        assert!(matches!(started, Err(Error::StartFailed { .. })));
        assert_thread_not_reused(&sup, &exit_rx);
    });
}

#[test]
fn a_thread_local_a_body_set_is_seen_by_the_next_session_on_its_thread() {
    thread_local! {
        static LEFT_BEHIND: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    guard!(|| {
        let projects = Projects::new(2);
        let sup = SessionSupervisor::builder().warm_threads(1).build();
        let (seen, seen_rx) = unbounded();
        for i in 0..2 {
            let seen = seen.clone();
            let handle = sup
                .start_session(projects.session(i), move |_ctx| {
                    seen.send(LEFT_BEHIND.get()).unwrap();
                    LEFT_BEHIND.set(LEFT_BEHIND.get() + 1);
                })
                .expect("start");
            assert_eq!(recv_within(&seen_rx, "the thread-local"), i);
            // It returns on its own; its thread is parked again before the wait ends.
            let report = handle.wait_timeout(TIMEOUT).expect("it returns");
            assert_eq!(report.reason(), &ExitReason::Normal);
            assert_eq!(sup.idle_threads(), 1);
        }
    });
}
