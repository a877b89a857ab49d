//! The init timeout: a start whose `init` takes too long fails at once with a typed
//! error; the session never runs, publishes nothing, and keeps its entry and path until
//! its thread really ends.

mod common;

use std::time::{Duration, Instant};

use common::{guard, recv_within, Projects, TIMEOUT};
use session_supervisor::crossbeam_channel::unbounded;
use session_supervisor::{Error, SessionEvent};

/// What a wait bounded by a timeout may take beyond it on a loaded machine.
const MARGIN: Duration = Duration::from_secs(2);

#[test]
fn a_slow_init_fails_the_start_in_time_and_keeps_the_path_until_its_thread_ends() {
    guard!(|| {
        let timeout = Duration::from_millis(100);
        let projects = Projects::new(1);
        let sup = common::builder().init_timeout(timeout).build();
        let events = sup.subscribe();
        let (release, gate) = unbounded::<()>();
        let (ran_tx, ran) = unbounded::<()>();
        let session = projects.session(0);
        let id = session.id();

        let asked = Instant::now();
        let started = sup
            .start(session)
            .init(move |_ctx| {
                // Ignores the stop until released.
                let _ = gate.recv();
                Ok(())
            })
            .run(move |_ctx| ran_tx.send(()).unwrap());
        let took = asked.elapsed();
        match started {
            Err(Error::InitTimeout { id: of, timeout: t }) => assert_eq!((of, t), (id, timeout)),
            other => panic!("expected InitTimeout, got {other:?}"),
        }
        assert!(took >= timeout && took < timeout + MARGIN, "{took:?}");

        assert!(sup.session_running(id), "reserved while init still runs");
        let again = sup.start_session(projects.session(0), |_| {});
        assert!(matches!(again, Err(Error::ProjectAlreadyOpen { .. })));

        drop(release);
        assert!(
            sup.wait_until_stopped(id, TIMEOUT),
            "gone once init returned"
        );
        assert!(sup.lookup_by_path(projects.path(0)).is_err(), "path freed");
        assert!(ran.try_recv().is_err(), "the body never ran");
        assert_eq!(events.try_recv(), None, "no event for a start that failed");

        let next = sup.start_session(projects.session(0), |ctx| ctx.wait_for_stop());
        next.expect("the path is free again").stop().expect("stop");
    });
}

#[test]
fn an_init_within_the_timeout_starts_as_usual() {
    guard!(|| {
        let projects = Projects::new(2);
        for timeout in [Duration::from_secs(60), Duration::MAX] {
            let sup = common::builder().init_timeout(timeout).build();
            let events = sup.subscribe();
            let (ran_tx, ran) = unbounded();
            let handle = sup
                .start(projects.session(0))
                .init(|_ctx| Ok(()))
                .run(move |ctx| {
                    ran_tx.send(()).unwrap();
                    ctx.wait_for_stop();
                })
                .expect("started within the timeout");
            recv_within(&ran, "the run");
            let started = events.try_recv().expect("Started");
            assert!(
                matches!(started, SessionEvent::Started { .. }),
                "{timeout:?}"
            );
            handle.stop().expect("stop");
        }
    });
}

#[test]
fn an_init_that_sees_the_stop_ends_its_session_soon_after_the_timeout() {
    guard!(|| {
        let timeout = Duration::from_millis(50);
        let projects = Projects::new(1);
        let sup = common::builder().init_timeout(timeout).build();
        let (saw_tx, saw) = unbounded();
        let session = projects.session(0);
        let id = session.id();
        let started = sup
            .start(session)
            .init(move |ctx| {
                saw_tx.send(ctx.wait_for_stop_timeout(TIMEOUT)).unwrap();
                Ok(())
            })
            .run(|ctx| ctx.wait_for_stop());
        assert!(matches!(started, Err(Error::InitTimeout { .. })));
        assert!(recv_within(&saw, "init's wait"), "init saw the stop");
        assert!(sup.wait_until_stopped(id, TIMEOUT));
        assert_eq!(sup.count(), 0);
    });
}
