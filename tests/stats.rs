//! Stats without a round trip: each state a session can be in, its counters, and the
//! snapshot of all sessions, consistent under concurrent starts and stops.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{guard, recv_within, Projects, TIMEOUT};
use session_supervisor::crossbeam_channel::{bounded, unbounded};
use session_supervisor::{
    stub, Error, Restart, RestartPolicy, SessionEvent, SessionState, SessionSupervisor,
};

#[test]
fn a_session_is_starting_until_its_init_finished_then_running_then_ended() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = Arc::new(common::supervisor());
        let session = projects.session(0);
        let id = session.id();
        let held = common::start_held_in_init(&sup, session);
        let starting = sup.stats(id).expect("registered while starting");
        assert_eq!(starting.state(), SessionState::Starting);
        assert_eq!(starting.started_at(), None);
        assert_eq!(starting.uptime(), Duration::ZERO);

        drop(held.release);
        assert_eq!(held.start.join().unwrap().unwrap(), id);
        let handle = sup.find_session(id).unwrap();
        let running = handle.stats();
        assert_eq!(running.state(), SessionState::Running);
        assert!(running.started_at().is_some());
        assert_eq!(running.id(), id);
        assert_eq!(running.session(), &handle.session());

        handle.stop().unwrap();
        assert_eq!(handle.stats().state(), SessionState::Ended);
        assert!(matches!(sup.stats(id), Err(Error::NotFound { .. })));
    });
}

#[test]
fn a_session_in_its_backoff_is_restarting_until_a_deadline_and_shows_its_last_crash() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let events = sup.subscribe();
        let backoff = Duration::from_secs(60);
        let policy = RestartPolicy::new(Restart::Permanent).backoff(backoff);
        let handle = sup
            .start(projects.session(0))
            .policy(policy)
            .run(stub::panics(common::EXPECTED))
            .unwrap();
        let began = Instant::now();
        events
            .wait_for(|e| matches!(e, SessionEvent::Restarting { .. }), TIMEOUT)
            .expect("a Restarting event");

        let stats = handle.stats();
        let SessionState::Restarting { until: Some(until) } = stats.state() else {
            panic!(
                "expected Restarting with a deadline, got {:?}",
                stats.state()
            );
        };
        assert!(
            until >= began + backoff - Duration::from_secs(1),
            "{until:?}"
        );
        assert_eq!(stats.last_crash(), Some(common::EXPECTED));
        assert_eq!(stats.restarts(), 1, "the restart being waited for");

        // A stop cuts the backoff short.
        let report = handle.stop().unwrap();
        assert_eq!(report.reason(), &session_supervisor::ExitReason::Stopped);
        assert_eq!(handle.stats().state(), SessionState::Ended);
    });
}

#[test]
fn a_restarted_session_runs_again_and_remembers_its_crash() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let (ran_tx, ran) = unbounded::<u32>();
        let policy = RestartPolicy::new(Restart::Permanent);
        let handle = sup
            .start(projects.session(0))
            .policy(policy)
            .run(move |ctx| {
                ran_tx.send(ctx.restarts()).unwrap();
                if ctx.restarts() == 0 {
                    panic!("{}", common::EXPECTED);
                }
                ctx.wait_for_stop();
            })
            .unwrap();
        assert_eq!(recv_within(&ran, "the first run"), 0);
        assert_eq!(recv_within(&ran, "the restarted run"), 1);
        let stats = handle.stats();
        assert_eq!(stats.state(), SessionState::Running);
        assert_eq!(stats.restarts(), 1);
        assert_eq!(stats.last_crash(), Some(common::EXPECTED));
        handle.stop().unwrap();
    });
}

#[test]
fn a_session_that_ignores_its_stop_is_stopping() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::builder()
            .stop_timeout(Duration::from_millis(10))
            .build();
        let (release, gate) = bounded::<()>(0);
        let handle = sup
            .start_session(projects.session(0), stub::gated(gate))
            .unwrap();
        assert!(matches!(handle.stop(), Err(Error::StopTimeout { .. })));
        assert_eq!(handle.stats().state(), SessionState::Stopping);
        drop(release);
        handle.wait_timeout(TIMEOUT).expect("ends once released");
        assert_eq!(handle.stats().state(), SessionState::Ended);
    });
}

#[test]
fn the_mailbox_and_message_counts_show_a_backed_up_session_without_asking_it() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::builder().messages::<u32>().build();
        let (release, gate) = bounded::<()>(0);
        let (took_tx, took) = unbounded::<u32>();
        let handle = sup
            .start_session(projects.session(0), move |ctx| {
                let _ = gate.recv();
                while let Some(n) = ctx.recv() {
                    took_tx.send(n).unwrap();
                }
            })
            .unwrap();
        for n in 0..5 {
            handle.send(n).unwrap();
        }
        let stats = handle.stats();
        assert_eq!(stats.mailbox_len(), 5);
        assert_eq!(stats.messages_received(), 5);
        assert_eq!(stats.messages_handled(), 0);
        assert_eq!(stats.calls_received(), 0);

        drop(release);
        for n in 0..5 {
            assert_eq!(recv_within(&took, "a message"), n);
        }
        let stats = handle.stats();
        assert_eq!((stats.mailbox_len(), stats.messages_handled()), (0, 5));
        handle.stop().unwrap();
    });
}

#[test]
fn calls_are_counted_and_taking_a_message_is_activity() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::builder()
            .messages::<session_supervisor::ReplyTo<u32>>()
            .build();
        let handle = sup
            .start_session(projects.session(0), |ctx| {
                while let Some(reply) = ctx.recv() {
                    reply.send(7);
                }
            })
            .unwrap();
        let before = handle.stats().last_activity();
        let asked = Instant::now();
        assert_eq!(handle.call(|reply| reply, TIMEOUT).unwrap(), 7);
        let stats = handle.stats();
        assert_eq!((stats.calls_received(), stats.messages_received()), (1, 1));
        assert!(
            stats.last_activity() >= asked,
            "taking the call was activity"
        );
        assert!(stats.last_activity() > before);
        assert!(stats.idle_for() <= asked.elapsed());
        handle.stop().unwrap();
    });
}

/// Messages the body finds queued (it did not wait for them) are activity too: the
/// first it ever takes, and a backlog once the body finds its mailbox empty again.
#[test]
fn messages_taken_without_waiting_are_activity() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::builder().messages::<u32>().build();
        let (release_tx, release) = bounded::<()>(0);
        let (took_tx, took) = unbounded::<Vec<u32>>();
        let handle = sup
            .start_session(projects.session(0), move |ctx| {
                // Busy elsewhere while messages queue up, twice.
                for _ in 0..2 {
                    let _ = release.recv();
                    let mut batch = vec![ctx.recv().unwrap()];
                    while let Ok(n) = ctx.try_recv() {
                        batch.push(n);
                    }
                    took_tx.send(batch).unwrap();
                }
                ctx.wait_for_stop();
            })
            .unwrap();
        for round in 0..2 {
            for n in 0..3 {
                handle.send(round * 10 + n).unwrap();
            }
            let released = Instant::now();
            release_tx.send(()).unwrap();
            let batch = recv_within(&took, "the batch");
            assert_eq!(batch, (0..3).map(|n| round * 10 + n).collect::<Vec<_>>());
            let stats = handle.stats();
            assert!(
                stats.last_activity() >= released,
                "round {round}: the batch taken was activity"
            );
            assert_eq!(stats.messages_handled(), u64::from(round + 1) * 3);
        }
        handle.stop().unwrap();
    });
}

#[test]
fn touch_marks_the_session_active() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let (touch_tx, touch) = bounded::<()>(0);
        let (touched_tx, touched) = bounded::<()>(0);
        let handle = sup
            .start_session(projects.session(0), move |ctx| {
                while touch.recv().is_ok() {
                    ctx.touch();
                    touched_tx.send(()).unwrap();
                }
            })
            .unwrap();
        let before = handle.stats().last_activity();
        let asked = Instant::now();
        touch_tx.send(()).unwrap();
        recv_within(&touched, "the touch");
        let after = handle.stats().last_activity();
        assert!(after >= asked && after > before);
        drop(touch_tx);
        handle.wait_timeout(TIMEOUT).expect("returns");
    });
}

/// 64 threads start and stop sessions while others take snapshots: every snapshot's
/// count is its length, within the limit, without duplicates, oldest first.
#[test]
fn every_snapshot_under_64_threads_of_starts_and_stops_is_consistent() {
    guard!(|| {
        const THREADS: usize = 64;
        const ROUNDS: usize = 5;
        let projects = Projects::new(THREADS);
        let sup = Arc::new(common::builder().max_sessions(16).build());
        let workers = {
            let sup = Arc::clone(&sup);
            common::race(THREADS, move |i| {
                let mut snapshots = 0;
                for _ in 0..ROUNDS {
                    if i % 2 == 0 {
                        assert_consistent(&sup.snapshot());
                        snapshots += 1;
                    } else if let Ok(handle) = sup.start_session(projects.session(i), stub::idle())
                    {
                        handle.stop().unwrap();
                    }
                }
                snapshots
            })
        };
        let taken: usize = workers.into_iter().sum();
        assert_eq!(taken, THREADS / 2 * ROUNDS);
        assert_eq!(sup.snapshot().count(), 0);
    });
}

fn assert_consistent(snapshot: &session_supervisor::Snapshot) {
    let sessions = snapshot.sessions();
    assert_eq!(snapshot.count(), sessions.len());
    assert!(snapshot.count() <= snapshot.max_sessions());
    let ids: HashSet<_> = sessions.iter().map(|s| s.id()).collect();
    assert_eq!(ids.len(), sessions.len(), "each session once");
    let ages: Vec<_> = sessions
        .iter()
        .map(|s| (s.session().created_at(), s.id()))
        .collect();
    assert!(ages.windows(2).all(|w| w[0] <= w[1]), "oldest first");
}

#[test]
fn a_snapshot_lists_every_session_with_its_stats() {
    guard!(|| {
        let projects = Projects::new(3);
        let sup: SessionSupervisor = common::supervisor();
        let handles: Vec<_> = (0..3)
            .map(|i| {
                sup.start_session(projects.session(i), stub::idle())
                    .unwrap()
            })
            .collect();
        let snapshot = sup.snapshot();
        assert_consistent(&snapshot);
        let listed: Vec<_> = snapshot.sessions().iter().map(|s| s.id()).collect();
        assert_eq!(listed, sup.list_ids());
        assert_eq!(snapshot.count(), 3);
        assert!(snapshot
            .sessions()
            .iter()
            .all(|s| s.state() == SessionState::Running));
        for handle in handles {
            handle.stop().unwrap();
        }
    });
}
