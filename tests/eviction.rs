//! Admission at the limit: an evicting policy stops the idlest or the oldest running
//! session and admits the new one in its place, as one atomic decision.

mod common;

use std::sync::{Arc, Weak};
use std::time::Duration;

use common::{guard, Projects, TIMEOUT};
use session_supervisor::crossbeam_channel::bounded;
use session_supervisor::{
    stub, AdmissionPolicy, Error, ExitReason, ReplyTo, SessionEvent, SessionHandle, SessionState,
    SessionSupervisor,
};

fn evicting(policy: AdmissionPolicy, max: usize) -> SessionSupervisor {
    common::builder()
        .max_sessions(max)
        .admission(policy)
        .build()
}

#[test]
fn evict_oldest_stops_the_session_started_first_and_admits_the_new_one() {
    guard!(|| {
        let projects = Projects::new(4);
        let sup = evicting(AdmissionPolicy::EvictOldest, 3);
        let events = sup.subscribe();
        let old: Vec<_> = (0..3)
            .map(|i| {
                sup.start_session(projects.session(i), stub::idle())
                    .unwrap()
            })
            .collect();
        let new = sup
            .start_session(projects.session(3), stub::idle())
            .unwrap();

        let report = old[0].wait_timeout(TIMEOUT).expect("evicted");
        assert_eq!(report.reason(), &ExitReason::Evicted);
        assert_eq!(sup.count(), 3);
        let ids = [old[1].id(), old[2].id(), new.id()];
        assert_eq!(sup.list_ids(), ids.to_vec());
        let exited = events.wait_for(|e| matches!(e, SessionEvent::Exited { .. }), TIMEOUT);
        assert!(matches!(
            exited,
            Some(SessionEvent::Exited { session, reason: ExitReason::Evicted })
                if session.id() == old[0].id()
        ));
    });
}

#[test]
fn evict_idlest_stops_the_least_recently_active_session() {
    guard!(|| {
        let projects = Projects::new(4);
        let sup = common::builder()
            .messages::<ReplyTo<()>>()
            .max_sessions(3)
            .admission(AdmissionPolicy::EvictIdlest)
            .build();
        let answering = |ctx: &session_supervisor::SessionContext<ReplyTo<()>>| {
            while let Some(reply) = ctx.recv() {
                reply.send(());
            }
        };
        let old: Vec<_> = (0..3)
            .map(|i| sup.start_session(projects.session(i), answering).unwrap())
            .collect();
        // The oldest is the most recently active; the second is the idlest.
        old[2].call(|reply| reply, TIMEOUT).unwrap();
        old[0].call(|reply| reply, TIMEOUT).unwrap();
        assert!(old[1].stats().last_activity() < old[2].stats().last_activity());

        let new = sup.start_session(projects.session(3), answering).unwrap();
        let report = old[1].wait_timeout(TIMEOUT).expect("evicted");
        assert_eq!(report.reason(), &ExitReason::Evicted);
        assert!(old[0].is_running() && old[2].is_running() && new.is_running());
        assert_eq!(sup.count(), 3);
    });
}

#[test]
fn reject_is_the_default_and_a_full_supervisor_refuses() {
    guard!(|| {
        let projects = Projects::new(2);
        let sup = common::builder().max_sessions(1).build();
        let first = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        let full = sup.start_session(projects.session(1), stub::idle());
        assert!(matches!(full, Err(Error::SessionLimitReached { max: 1 })));
        assert!(first.is_running());
    });
}

#[test]
fn a_start_that_would_fail_evicts_nothing() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = evicting(AdmissionPolicy::EvictOldest, 1);
        let first = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        let same_path = sup.start_session(projects.session(0), stub::idle());
        assert!(matches!(same_path, Err(Error::ProjectAlreadyOpen { id, .. }) if id == first.id()));
        let same_id = sup.start_session(first.session(), stub::idle());
        assert!(matches!(same_id, Err(Error::SessionExists { .. })));
        assert!(first.is_running());
        assert_eq!(first.stats().state(), SessionState::Running);
    });
}

#[test]
fn neither_a_starting_nor_a_stopping_session_is_evicted() {
    guard!(|| {
        let projects = Projects::new(3);
        let sup = Arc::new(
            common::builder()
                .max_sessions(1)
                .admission(AdmissionPolicy::EvictOldest)
                .stop_timeout(Duration::from_millis(10))
                .build(),
        );
        // Stopping: ignores its stop until released.
        let (release, gate) = bounded::<()>(0);
        let stopping = sup
            .start_session(projects.session(0), stub::gated(gate))
            .unwrap();
        assert!(matches!(stopping.stop(), Err(Error::StopTimeout { .. })));
        let refused = sup.start_session(projects.session(1), stub::idle());
        assert!(matches!(
            refused,
            Err(Error::SessionLimitReached { max: 1 })
        ));
        drop(release);
        let report = stopping.wait_timeout(TIMEOUT).expect("ends once released");
        assert_eq!(report.reason(), &ExitReason::Stopped);

        // Starting: its init waits.
        let held = common::start_held_in_init(&sup, projects.session(1));
        let refused = sup.start_session(projects.session(2), stub::idle());
        assert!(matches!(
            refused,
            Err(Error::SessionLimitReached { max: 1 })
        ));
        drop(held.release);
        let started = held.start.join().unwrap().expect("the first start went on");
        assert!(sup.session_running(started));
    });
}

#[test]
fn a_victim_that_ignores_its_stop_fails_the_start_and_changes_nothing_else() {
    guard!(|| {
        let projects = Projects::new(2);
        let timeout = Duration::from_millis(50);
        let sup = common::builder()
            .max_sessions(1)
            .admission(AdmissionPolicy::EvictOldest)
            .stop_timeout(timeout)
            .build();
        let (release, gate) = bounded::<()>(0);
        let victim = sup
            .start_session(projects.session(0), stub::gated(gate))
            .unwrap();
        let session = projects.session(1);
        let id = session.id();
        let started = sup.start_session(session, stub::idle());
        match started {
            Err(Error::EvictionTimeout {
                id: of,
                victim: v,
                timeout: t,
            }) => assert_eq!((of, v, t), (id, victim.id(), timeout)),
            other => panic!("expected EvictionTimeout, got {other:?}"),
        }
        assert!(!sup.session_running(id), "the new session was not started");
        assert_eq!(sup.list_ids(), vec![victim.id()]);
        assert_eq!(victim.stats().state(), SessionState::Stopping);

        drop(release);
        let report = victim.wait_timeout(TIMEOUT).expect("ends once released");
        assert_eq!(report.reason(), &ExitReason::Evicted);
        let next = sup.start_session(projects.session(1), stub::idle());
        assert!(next.is_ok(), "room once the victim ended: {next:?}");
    });
}

/// 64 starts at once on a full supervisor: every admission sees at most the limit, no
/// session is evicted twice, and each successful start evicted exactly one.
#[test]
fn a_64_thread_storm_at_the_limit_never_exceeds_it_nor_evicts_a_session_twice() {
    for policy in [AdmissionPolicy::EvictOldest, AdmissionPolicy::EvictIdlest] {
        guard!(move || storm(policy));
    }
}

fn storm(policy: AdmissionPolicy) {
    const MAX: usize = 10;
    const THREADS: usize = 64;
    let projects = Arc::new(Projects::new(MAX + THREADS));
    let sup = Arc::new(evicting(policy, MAX));
    let events = sup.subscribe();
    // Each body checks the count as it starts: the moment it was admitted.
    let checked = |sup: Weak<SessionSupervisor>| {
        move |_: &session_supervisor::SessionContext| -> Result<(), session_supervisor::InitError> {
            let sup = sup.upgrade().expect("the supervisor outlives its sessions");
            let count = sup.snapshot().count();
            assert!(count <= MAX, "{count} sessions with a limit of {MAX}");
            Ok(())
        }
    };
    let first: Vec<SessionHandle> = (0..MAX)
        .map(|i| {
            sup.start(projects.session(i))
                .init(checked(Arc::downgrade(&sup)))
                .run(stub::idle())
                .unwrap()
        })
        .collect();
    let starts = {
        let (sup, projects) = (Arc::clone(&sup), Arc::clone(&projects));
        common::race(THREADS, move |i| {
            let started = sup
                .start(projects.session(MAX + i))
                .init(checked(Arc::downgrade(&sup)))
                .run(stub::idle());
            match started {
                Ok(_) => true,
                // Every place was being started or evicted at that moment.
                Err(Error::SessionLimitReached { .. }) => false,
                Err(other) => panic!("unexpected {other:?}"),
            }
        })
    };
    let admitted = starts.into_iter().filter(|ok| *ok).count();
    assert!(admitted >= 1, "some starts got in");
    assert_eq!(sup.count(), MAX);

    // Each admitted start evicted one session, each session at most once.
    let mut evicted = std::collections::HashSet::new();
    while evicted.len() < admitted {
        match events.recv_timeout(TIMEOUT) {
            Some(SessionEvent::Exited { session, reason }) => {
                assert_eq!(reason, ExitReason::Evicted);
                assert!(evicted.insert(session.id()), "evicted twice");
            }
            Some(_) => {}
            None => panic!("{} evictions for {admitted} admissions", evicted.len()),
        }
    }
    assert_eq!(sup.count(), MAX, "nothing else ended");
    // The first sessions are both the oldest and the idlest: they go first.
    let survivors = first.iter().filter(|h| h.is_running()).count();
    assert_eq!(survivors, MAX.saturating_sub(admitted));
    drop(first);
    let report = sup.shutdown();
    assert_eq!(report.exited().len(), MAX);
}
