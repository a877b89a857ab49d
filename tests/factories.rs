//! Restarts from a factory: each run gets a fresh body, the ended one is dropped first,
//! and a factory that panics fails the start or ends the session, leaving nothing.
//! Also the backoff between restarts, and every start form inferring its types.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{guard, recv_within, Projects, TIMEOUT};
use crossbeam_channel::{unbounded, Sender};
use session_supervisor::{
    Backoff, Error, ExitReason, InitError, Restart, RestartPolicy, SessionBody, SessionContext,
    SessionEvent,
};

/// What a run saw: its restart count, and what its body had counted before it.
type Seen = (u32, u32);

/// A body with state: counts its own runs, and tells `made` when it is dropped.
struct Counter {
    runs: u32,
    seen: Sender<Seen>,
    dropped: Arc<AtomicU32>,
}

impl SessionBody for Counter {
    fn run(&mut self, ctx: &SessionContext) {
        self.seen.send((ctx.restarts(), self.runs)).unwrap();
        self.runs += 1;
        if ctx.restarts() < 2 {
            panic!("crash");
        }
        ctx.wait_for_stop();
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

fn permanent() -> RestartPolicy {
    RestartPolicy::new(Restart::Permanent).intensity(5, Duration::from_secs(60))
}

/// A value body keeps its state across restarts; a factory's bodies start afresh, and
/// each ended one is dropped before the next is made.
#[test]
fn a_factory_restarts_from_a_fresh_body_a_value_from_the_same_one() {
    guard!(|| {
        session_supervisor::quiet_session_panics();
        let projects = Projects::new(2);
        let sup = common::supervisor();
        let (seen_tx, seen) = unbounded();
        let dropped = Arc::new(AtomicU32::new(0));
        let counter = |seen: &Sender<Seen>, dropped: &Arc<AtomicU32>| Counter {
            runs: 0,
            seen: seen.clone(),
            dropped: Arc::clone(dropped),
        };
        let value = counter(&seen_tx, &dropped);
        let reused = sup
            .start(projects.session(0))
            .policy(permanent())
            .body(value)
            .unwrap();
        let runs: Vec<Seen> = (0..3).map(|_| recv_within(&seen, "a run")).collect();
        assert_eq!(
            runs,
            [(0, 0), (1, 1), (2, 2)],
            "one value, its count carried over"
        );
        reused.stop().unwrap();
        assert_eq!(
            dropped.swap(0, Ordering::SeqCst),
            1,
            "dropped once, at the end"
        );

        let (tx, d) = (seen_tx.clone(), Arc::clone(&dropped));
        let fresh = sup
            .start(projects.session(1))
            .policy(permanent())
            .factory(move || counter(&tx, &d))
            .unwrap();
        let runs: Vec<Seen> = (0..3).map(|_| recv_within(&seen, "a run")).collect();
        assert_eq!(runs, [(0, 0), (1, 0), (2, 0)], "a fresh body each run");
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            2,
            "each crashed body dropped"
        );
        fresh.stop().unwrap();
        assert_eq!(dropped.load(Ordering::SeqCst), 3);
    });
}

#[test]
fn a_closure_factory_captures_afresh_for_each_run() {
    guard!(|| {
        session_supervisor::quiet_session_panics();
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let (seen_tx, seen) = unbounded();
        let handle = sup
            .start(projects.session(0))
            .policy(permanent())
            .run_factory(move || {
                let seen = seen_tx.clone();
                let mut runs = 0;
                move |ctx| {
                    runs += 1;
                    seen.send(runs).unwrap();
                    if ctx.restarts() == 0 {
                        panic!("crash");
                    }
                    ctx.wait_for_stop();
                }
            })
            .unwrap();
        assert_eq!(recv_within(&seen, "the first run"), 1);
        assert_eq!(
            recv_within(&seen, "the restart"),
            1,
            "the restart's count is fresh"
        );
        handle.stop().unwrap();
    });
}

#[test]
fn a_factory_that_panics_first_fails_the_start_and_leaves_nothing() {
    guard!(|| {
        session_supervisor::quiet_session_panics();
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let events = sup.subscribe();
        let start = sup
            .start(projects.session(0))
            .run_factory(|| -> fn(&SessionContext) { panic!("no body today") });
        match start {
            Err(Error::StartFailed { reason, .. }) => {
                assert_eq!(reason, "making the body panicked: no body today");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(sup.count(), 0);
        assert!(events.try_recv().is_none());
    });
}

#[test]
fn a_factory_that_panics_on_a_restart_ends_the_session_as_panicked() {
    guard!(|| {
        session_supervisor::quiet_session_panics();
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let made = AtomicU32::new(0);
        let handle = sup
            .start(projects.session(0))
            .policy(permanent())
            .run_factory(move || {
                if made.fetch_add(1, Ordering::SeqCst) > 0 {
                    panic!("out of bodies");
                }
                |_: &SessionContext| panic!("crash")
            })
            .unwrap();
        let report = handle.wait_timeout(TIMEOUT).expect("ended");
        let message = "making the body panicked: out of bodies".to_owned();
        assert_eq!(report.reason(), &ExitReason::Panicked { message });
        assert_eq!(sup.count(), 0);
    });
}

/// Every start form infers the closure's argument: no annotation, no helper.
#[test]
fn every_start_form_infers() {
    guard!(|| {
        struct Idle;
        impl SessionBody<u8> for Idle {
            fn init(&mut self, _: &SessionContext<u8>) -> Result<(), InitError> {
                Ok(())
            }
            fn run(&mut self, ctx: &SessionContext<u8>) {
                ctx.wait_for_stop();
            }
        }
        let projects = Projects::new(5);
        let sup = common::builder().messages::<u8>().build();
        let policy = RestartPolicy::new(Restart::Temporary);
        let handles = [
            sup.start_session(projects.session(0), |ctx| ctx.wait_for_stop()),
            sup.start(projects.session(1))
                .policy(policy)
                .run(|ctx| ctx.wait_for_stop()),
            sup.start(projects.session(2)).body(Idle),
            sup.start(projects.session(3)).factory(|| Idle),
            sup.start(projects.session(4))
                .run_factory(|| |ctx| ctx.wait_for_stop()),
        ];
        for handle in handles {
            assert_eq!(
                handle.unwrap().stop().unwrap().reason(),
                &ExitReason::Stopped
            );
        }
    });
}

/// A session in a crash loop waits longer before each restart; a stop cuts the wait
/// short, however long it is.
#[test]
fn an_exponential_backoff_grows_and_a_stop_cuts_it_short() {
    guard!(|| {
        session_supervisor::quiet_session_panics();
        let projects = Projects::new(2);
        let sup = common::supervisor();
        let events = sup.subscribe();
        let backoff = Backoff::exponential(Duration::from_millis(40), Duration::from_secs(3600));
        let policy = RestartPolicy::new(Restart::Permanent)
            .intensity(100, Duration::from_secs(3600))
            .backoff(backoff);
        let handle = sup
            .start(projects.session(0))
            .policy(policy)
            .run(|_| panic!("crash"))
            .unwrap();
        // Restart n waits at least 40 ms * 2^(n-1) / 2 after crash n.
        let began = Instant::now();
        let restarted = |e: &SessionEvent| matches!(e, SessionEvent::Restarted { restarts: 3, .. });
        assert!(
            events.wait_for(restarted, TIMEOUT).is_some(),
            "three restarts"
        );
        let least = Duration::from_millis(20 + 40 + 80);
        assert!(
            began.elapsed() >= least,
            "{:?} < {least:?}",
            began.elapsed()
        );
        drop(handle);
        // A first wait of an hour: the stop ends it (else the stop would time out after
        // the 5 s stop timeout). The stop may also come before the run's crash, which
        // then ends the session as panicked: either way, no hour-long wait.
        let hour = Backoff::exponential(Duration::from_secs(3600), Duration::MAX);
        let policy = RestartPolicy::new(Restart::Permanent).backoff(hour);
        let (ran_tx, ran) = unbounded();
        let body = move |_: &SessionContext| {
            ran_tx.send(()).unwrap();
            panic!("crash")
        };
        let handle = sup
            .start(projects.session(1))
            .policy(policy)
            .run(body)
            .unwrap();
        recv_within(&ran, "the first run");
        let report = handle.stop().expect("stopped within the stop timeout");
        let crashed = ExitReason::Panicked {
            message: "crash".into(),
        };
        assert!(
            [ExitReason::Stopped, crashed].contains(report.reason()),
            "{report:?}"
        );
        assert_eq!(report.restarts(), 0);
    });
}
