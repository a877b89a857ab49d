//! Lifecycle events: what every subscriber sees and in which order, bounded queues for
//! subscribers that do not read, unsubscribing by drop, and the waits built on them.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{guard, recv_within, Projects, TIMEOUT};
use session_supervisor::crossbeam_channel::{unbounded, Receiver, Sender, TryRecvError};
use session_supervisor::{
    stub, ExitReason, Restart, RestartPolicy, Session, SessionContext, SessionEvent, SessionId,
    Subscription, EVENT_QUEUE_CAPACITY,
};

/// How many sessions the never-read subscriber test starts and stops.
const CYCLES: usize = 10_000;

/// The `Started` event of `session`, once checked that it runs in directory `path`.
fn started(session: Session, path: PathBuf) -> SessionEvent {
    assert_eq!(session.project_path(), path, "{session:?}");
    SessionEvent::Started { session }
}

fn exited(session: Session, reason: ExitReason) -> SessionEvent {
    SessionEvent::Exited { session, reason }
}

/// The next `n` events of `subscription`, failing if any takes longer than [`TIMEOUT`].
fn next_events(subscription: &Subscription, n: usize) -> Vec<SessionEvent> {
    (0..n)
        .map(|i| match subscription.recv_timeout(TIMEOUT) {
            Some(event) => event,
            None => panic!("waited {TIMEOUT:?} for event {i} of {n}"),
        })
        .collect()
}

/// Every event waiting in `subscription`, without blocking.
fn waiting_events(subscription: &Subscription) -> Vec<SessionEvent> {
    std::iter::from_fn(|| subscription.try_recv()).collect()
}

#[test]
fn every_subscriber_sees_started_then_exited_for_each_session_in_order() {
    guard!(move || {
        let projects = Projects::new(3);
        let sup = common::supervisor();
        let subscribers: Vec<_> = (0..3).map(|_| sup.subscribe()).collect();
        let handles: Vec<_> = (0..3)
            .map(|i| {
                sup.start_session(projects.session(i), stub::idle())
                    .unwrap()
            })
            .collect();
        for handle in handles.iter().rev() {
            handle.stop().unwrap();
        }

        // A start returns after its Started and a stop after its Exited, so
        // the order across sessions is fixed too.
        let mut expected: Vec<_> = (0..3)
            .map(|i| started(handles[i].session(), projects.path(i)))
            .collect();
        expected.extend(
            handles
                .iter()
                .rev()
                .map(|h| exited(h.session(), ExitReason::Stopped)),
        );
        for (n, subscriber) in subscribers.iter().enumerate() {
            assert_eq!(next_events(subscriber, 6), expected, "subscriber {n}");
            assert_eq!(subscriber.try_recv(), None, "subscriber {n}: extra events");
            assert_eq!(subscriber.dropped(), 0);
        }
    });
}

/// A body that panics on its first run, returns on its second, and on the third tells
/// `third_run` and idles until stopped.
fn panics_then_returns_then_idles(
    third_run: Sender<()>,
) -> impl FnMut(&SessionContext) + Send + 'static {
    move |ctx: &SessionContext| match ctx.restarts() {
        0 => panic!("first run"),
        1 => {}
        _ => {
            third_run.send(()).unwrap();
            ctx.wait_for_stop();
        }
    }
}

/// The fixed backoff of the restart tests: told in each `Restarting` event.
const BACKOFF: Duration = Duration::from_millis(1);

#[test]
fn every_subscriber_sees_each_restart_between_started_and_exited() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let subscribers = [sup.subscribe(), sup.subscribe()];
        let (third_tx, third_rx) = unbounded();
        let handle = sup
            .start(projects.session(0))
            .policy(RestartPolicy::new(Restart::Permanent).backoff(BACKOFF))
            .run(panics_then_returns_then_idles(third_tx))
            .unwrap();
        recv_within(&third_rx, "the third run");
        handle.stop().unwrap();

        let session = handle.session();
        let restart = |restarts, reason: ExitReason| {
            [
                SessionEvent::Restarting {
                    session: session.clone(),
                    restarts,
                    delay: BACKOFF,
                    reason: reason.clone(),
                },
                SessionEvent::Restarted {
                    session: session.clone(),
                    restarts,
                    reason,
                },
            ]
        };
        let first_run = ExitReason::Panicked {
            message: "first run".into(),
        };
        let mut expected = vec![started(session.clone(), projects.path(0))];
        expected.extend(restart(1, first_run));
        expected.extend(restart(2, ExitReason::Normal));
        expected.push(exited(session.clone(), ExitReason::Stopped));
        for (n, subscriber) in subscribers.iter().enumerate() {
            assert_eq!(next_events(subscriber, 6), expected, "subscriber {n}");
            assert_eq!(subscriber.try_recv(), None, "subscriber {n}: extra events");
        }
    });
}

#[test]
fn exited_carries_the_reason_of_a_session_that_ended_by_itself() {
    guard!(move || {
        let projects = Projects::new(2);
        let sup = common::supervisor();
        let events = sup.subscribe();
        let returned = sup
            .start_session(projects.session(0), stub::returns())
            .unwrap();
        let policy = RestartPolicy::new(Restart::Temporary);
        let panicked = sup
            .start(projects.session(1))
            .policy(policy)
            .run(stub::panics("boom"))
            .unwrap();
        // wait_timeout returns once the thread is done, after its Exited event.
        returned.wait_timeout(TIMEOUT).expect("the first ended");
        panicked.wait_timeout(TIMEOUT).expect("the second ended");

        let seen = waiting_events(&events);

        let of =
            |id: SessionId| -> Vec<_> { seen.iter().filter(|e| e.id() == id).cloned().collect() };
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert_eq!(
            of(returned.id()),
            [
                started(returned.session(), projects.path(0)),
                exited(returned.session(), ExitReason::Normal)
            ]
        );
        let boom = ExitReason::Panicked {
            message: "boom".into(),
        };
        assert_eq!(
            of(panicked.id()),
            [
                started(panicked.session(), projects.path(1)),
                exited(panicked.session(), boom)
            ]
        );
    });
}

#[test]
fn a_subscriber_sees_only_events_after_it_subscribed() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let handle = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();

        let late = sup.subscribe();
        handle.stop().unwrap();

        assert_eq!(
            waiting_events(&late),
            [exited(handle.session(), ExitReason::Stopped)]
        );
    });
}

#[test]
fn a_never_read_subscriber_does_not_block_10_000_start_stop_cycles_and_stays_bounded() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let never_read = sup.subscribe();

        let sessions: Vec<Session> = (0..CYCLES)
            .map(|_| {
                let handle = sup
                    .start_session(projects.session(0), stub::idle())
                    .unwrap();
                handle.stop().unwrap();
                handle.session()
            })
            .collect();

        let total = 2 * CYCLES;
        assert_eq!(never_read.receiver().len(), EVENT_QUEUE_CAPACITY);
        assert_eq!(never_read.dropped(), (total - EVENT_QUEUE_CAPACITY) as u64);
        // What is left are the newest events: those of the last sessions, in order.
        let path = projects.path(0);
        let newest = sessions[CYCLES - EVENT_QUEUE_CAPACITY / 2..]
            .iter()
            .flat_map(|session| {
                [
                    started(session.clone(), path.clone()),
                    exited(session.clone(), ExitReason::Stopped),
                ]
            });
        assert!(
            waiting_events(&never_read).into_iter().eq(newest),
            "the queue does not hold the newest events in order"
        );
    });
}

#[test]
fn a_dropped_subscription_is_pruned_at_the_next_event() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let kept = sup.subscribe();
        let dropped: Vec<Subscription> = (0..100).map(|_| sup.subscribe()).collect();
        // Copies of the receiving ends outlive the subscriptions: each disconnects once
        // the supervisor lets go of its sending end, and only if nothing is queued.
        let queues: Vec<Receiver<SessionEvent>> =
            dropped.iter().map(|s| s.receiver().clone()).collect();
        drop(dropped);

        let handle = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();

        for (n, queue) in queues.iter().enumerate() {
            assert_eq!(
                queue.try_recv(),
                Err(TryRecvError::Disconnected),
                "dropped subscription {n} is still fed"
            );
        }
        assert_eq!(
            kept.try_recv(),
            Some(started(handle.session(), projects.path(0)))
        );
    });
}

#[test]
fn a_subscription_ends_once_the_supervisor_is_dropped() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let events = sup.subscribe();
        let handle = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();

        drop(sup);

        assert_eq!(
            events.recv(),
            Some(started(handle.session(), projects.path(0)))
        );
        assert_eq!(
            events.recv(),
            Some(exited(handle.session(), ExitReason::Stopped))
        );
        // recv, not recv_timeout: it must not block once nobody can publish.
        assert_eq!(events.recv(), None);
    });
}

#[test]
fn wait_for_skips_other_events_until_one_matches() {
    guard!(move || {
        let projects = Projects::new(2);
        let sup = common::supervisor();
        let events = sup.subscribe();
        let other = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        let ends = sup
            .start_session(projects.session(1), stub::returns())
            .unwrap();

        let found = events.wait_for(
            |e| matches!(e, SessionEvent::Exited { session, .. } if session.id() == ends.id()),
            TIMEOUT,
        );

        assert_eq!(found, Some(exited(ends.session(), ExitReason::Normal)));
        assert!(!sup.session_running(ends.id()));
        assert!(sup.session_running(other.id()));
    });
}

#[test]
fn wait_for_gives_none_after_the_timeout_when_nothing_matches() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let events = sup.subscribe();
        let handle = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        let timeout = Duration::from_millis(100);

        let began = Instant::now();
        let found = events.wait_for(|e| matches!(e, SessionEvent::Exited { .. }), timeout);

        assert_eq!(found, None);
        assert!(began.elapsed() >= timeout, "gave up before the timeout");
        // The Started event it skipped was consumed.
        assert_eq!(events.try_recv(), None);
        assert!(sup.session_running(handle.id()));
    });
}

#[test]
fn wait_until_stopped_waits_for_the_end_of_a_session() {
    guard!(move || {
        let projects = Projects::new(2);
        let sup = common::supervisor();
        let (gate_tx, gate_rx) = unbounded::<()>();
        let gated = sup
            .start_session(projects.session(0), stub::gated(gate_rx))
            .unwrap();
        let idle = sup
            .start_session(projects.session(1), stub::idle())
            .unwrap();

        assert!(!sup.wait_until_stopped(gated.id(), Duration::from_millis(50)));
        drop(gate_tx);
        assert!(sup.wait_until_stopped(gated.id(), TIMEOUT));

        assert!(!sup.session_running(gated.id()));
        assert!(sup.session_running(idle.id()));
        assert!(sup.wait_until_stopped(SessionId::new(), Duration::ZERO));
    });
}
