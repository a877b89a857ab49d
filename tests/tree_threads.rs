//! Sessions with children leave no thread behind: after restarts under each strategy,
//! a session that gave up, a lingering child, a failed start and a drop of the
//! supervisor, the process has as many threads as before.
//!
//! Alone in its file: it counts the threads of the whole process, which other tests
//! running in parallel would change. (`tests/tree.rs` counts each test's own threads.)

mod common;

use std::time::Duration;

use common::{guard, recv_within, settled_count, thread_count, Projects, EXPECTED, TIMEOUT};
use crossbeam_channel::{unbounded, Receiver, Sender};
use session_supervisor::{
    ChildStrategy, ExitReason, InitError, Restart, RestartPolicy, SessionBody, SessionContext,
    SessionEvent, SessionId, SessionSupervisor,
};

/// The children of every session here, in start order.
const CHILDREN: [&str; 3] = ["a", "b", "c"];

/// A child that panics on its first message and returns once stopped.
fn crashes_on_message(ctx: &SessionContext) {
    if ctx.recv().is_some() {
        panic!("{EXPECTED}");
    }
}

/// A body that starts [`CHILDREN`], tells `runs` its restart count, and waits for its
/// stop (or for a one-for-all restart).
fn parent(runs: Sender<u32>) -> impl FnMut(&SessionContext) + Send + 'static {
    move |ctx: &SessionContext| {
        for name in CHILDREN {
            ctx.spawn_child(name, crashes_on_message)
                .expect("a child starts");
        }
        let _ = runs.send(ctx.restarts());
        ctx.wait_for_stop();
    }
}

/// A body whose `init` starts a child, then fails.
struct FailsAfterAChild;

impl SessionBody for FailsAfterAChild {
    fn init(&mut self, ctx: &SessionContext) -> Result<(), InitError> {
        ctx.spawn_child("a", crashes_on_message)?;
        Err("no config".into())
    }

    fn run(&mut self, _: &SessionContext) {}
}

/// Asserts the process runs `before + extra` threads, where the OS tells.
fn assert_threads(before: Option<usize>, extra: usize, when: &str) {
    if let Some(before) = before {
        let count = settled_count(thread_count, before + extra);
        assert_eq!(count, Some(before + extra), "threads {when}");
    }
}

fn intensity(max: u32) -> RestartPolicy {
    RestartPolicy::new(Restart::Transient).intensity(max, Duration::from_secs(3600))
}

/// Crashes child c and waits until the tree restarted what `strategy` restarts.
fn crash_c(sup: &SessionSupervisor, runs: &Receiver<u32>, strategy: ChildStrategy, id: SessionId) {
    let events = sup.subscribe();
    sup.find_child(id, "c")
        .expect("c runs")
        .send(())
        .expect("sent");
    if strategy == ChildStrategy::OneForAll {
        assert_eq!(recv_within(runs, "the restarted body"), 1);
    } else {
        let c_restarted = |e: &SessionEvent| matches!(e, SessionEvent::ChildRestarted { child, .. } if child == "c");
        events.wait_for(c_restarted, TIMEOUT).expect("c restarted");
    }
}

#[test]
fn sessions_with_children_leave_no_thread_behind() {
    guard!(|| {
        session_supervisor::quiet_session_panics();
        let projects = Projects::new(1);
        let before = thread_count();
        let sup = common::builder()
            .stop_timeout(Duration::from_millis(200))
            .restart_policy(intensity(10))
            .build();
        for strategy in [
            ChildStrategy::OneForAll,
            ChildStrategy::OneForOne,
            ChildStrategy::RestForOne,
        ] {
            let (runs_tx, runs) = unbounded();
            let start = sup.start(projects.session(0)).child_strategy(strategy);
            let handle = start.run(parent(runs_tx)).expect("starts");
            assert_eq!(recv_within(&runs, "the body"), 0);
            assert_threads(before, 4, &format!("while {strategy:?} runs"));
            crash_c(&sup, &runs, strategy, handle.id());
            assert_threads(before, 4, &format!("after a {strategy:?} restart"));
            handle.stop().expect("stops");
            assert_threads(before, 0, &format!("after the {strategy:?} stop"));
        }

        // Children crashing past the intensity: the session gives up.
        let (runs_tx, runs) = unbounded();
        let start = sup.start(projects.session(0)).policy(intensity(0));
        let handle = start
            .child_strategy(ChildStrategy::OneForOne)
            .run(parent(runs_tx))
            .expect("starts");
        recv_within(&runs, "the body");
        handle.child("b").expect("b runs").send(()).expect("sent");
        let report = handle.wait_timeout(TIMEOUT).expect("gave up");
        assert!(
            matches!(report.reason(), ExitReason::RestartLimit { .. }),
            "{report:?}"
        );
        handle.stop().expect("its report, and the join");
        assert_threads(before, 0, "after the session gave up");

        // A child that ignores its stop, released after the stop timed out.
        let (gate_tx, gate) = unbounded::<()>();
        let (runs_tx, runs) = unbounded();
        let handle = sup
            .start_session(projects.session(0), move |ctx| {
                let gate = gate.clone();
                let ignores_its_stop = move |_: &SessionContext| {
                    let _ = gate.recv();
                };
                ctx.spawn_child("stuck", ignores_its_stop).expect("starts");
                let _ = runs_tx.send(ctx.restarts());
                ctx.wait_for_stop();
            })
            .expect("starts");
        recv_within(&runs, "the body");
        handle.stop().expect_err("stuck ignores its stop");
        assert_threads(before, 2, "while stuck lingers");
        drop(gate_tx);
        handle.wait_timeout(TIMEOUT).expect("ends once released");
        handle.stop().expect("its report, and the join");
        assert_threads(before, 0, "after stuck was released");

        // A start whose init started a child, then failed.
        let failed = sup.start(projects.session(0)).body(FailsAfterAChild);
        assert!(failed.is_err(), "{failed:?}");
        assert_threads(before, 0, "after a failed start");

        // A drop of the supervisor stops and joins the session and its children.
        let (runs_tx, runs) = unbounded();
        sup.start_session(projects.session(0), parent(runs_tx))
            .expect("starts");
        recv_within(&runs, "the body");
        assert_threads(before, 4, "before the drop");
        drop(sup);
        assert_threads(before, 0, "after the drop");
    });
}
