//! Idle timeouts: silence ends a session with `ExitReason::Idle`, reported and evented
//! like any stop; messages and `touch` keep it alive.

mod common;

use std::time::{Duration, Instant};

use common::{guard, recv_within, Projects, TIMEOUT};
use session_supervisor::crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use session_supervisor::{
    stub, Control, ExitReason, SessionContext, SessionEvent, SessionHandle, SessionState,
};

/// An idle timeout far above any pause of a loaded machine between two touches.
const IDLE: Duration = Duration::from_millis(500);

#[test]
fn silence_ends_a_session_as_idle_with_its_report_and_event() {
    guard!(|| {
        let projects = Projects::new(1);
        let timeout = Duration::from_millis(50);
        let sup = common::builder().idle_timeout(timeout).build();
        let events = sup.subscribe();
        let started = Instant::now();
        let handle = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();

        let report = handle.wait_timeout(TIMEOUT).expect("stopped when idle");
        assert!(started.elapsed() >= timeout, "not before its timeout");
        assert_eq!(report.reason(), &ExitReason::Idle { timeout });
        assert_eq!(handle.stats().state(), SessionState::Ended);
        let exited = events.wait_for(|e| matches!(e, SessionEvent::Exited { .. }), TIMEOUT);
        match exited {
            Some(SessionEvent::Exited { session, reason }) => {
                assert_eq!(session.id(), handle.id());
                assert_eq!(reason, ExitReason::Idle { timeout });
            }
            other => panic!("expected Exited, got {other:?}"),
        }
        assert_eq!(sup.count(), 0);
    });
}

#[test]
fn touch_keeps_a_session_alive_and_silence_then_ends_it() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let (done_tx, done) = bounded::<u32>(1);
        let began = Instant::now();
        let handle = sup
            .start(projects.session(0))
            .idle_timeout(IDLE)
            .run(move |ctx| {
                // Works without messages for three idle timeouts, touching as it goes.
                let mut touches = 0;
                while began.elapsed() < 3 * IDLE {
                    if ctx.wait_for_stop_timeout(Duration::from_millis(5)) {
                        break;
                    }
                    ctx.touch();
                    touches += 1;
                }
                let _ = done_tx.send(touches);
                ctx.wait_for_stop();
            })
            .unwrap();
        recv_within(&done, "the work to end");
        assert!(
            began.elapsed() >= 3 * IDLE,
            "the work ran to its end: not stopped while it touched"
        );
        let report = handle.wait_timeout(TIMEOUT).expect("stopped once silent");
        assert_eq!(report.reason(), &ExitReason::Idle { timeout: IDLE });
    });
}

/// Sends a message every few milliseconds for three idle timeouts, each taken by the
/// body (it echoes it on `took`) while the session keeps running; then is silent, and
/// the session ends as idle.
fn messages_for_three_idle_timeouts_then_silence(
    handle: &SessionHandle<u32>,
    took: &Receiver<u32>,
) {
    let began = Instant::now();
    let mut n = 0;
    while began.elapsed() < 3 * IDLE {
        handle.send(n).expect("still running");
        assert_eq!(recv_within(took, "the message"), n);
        // Paced by a wait for the stop of the session: it must not come.
        assert!(handle.wait_timeout(Duration::from_millis(5)).is_none());
        n += 1;
    }
    let report = handle.wait_timeout(TIMEOUT).expect("stopped once silent");
    assert_eq!(report.reason(), &ExitReason::Idle { timeout: IDLE });
}

/// A session with an idle timeout whose body `reads` its messages and echoes each on
/// the sender it is given: kept alive by messages, ended by silence.
fn kept_alive_by_messages(reads: fn(&SessionContext<u32>, &Sender<u32>)) {
    let projects = Projects::new(1);
    let sup = common::builder().messages::<u32>().build();
    let (took_tx, took) = unbounded::<u32>();
    let handle = sup
        .start(projects.session(0))
        .idle_timeout(IDLE)
        .run(move |ctx| reads(ctx, &took_tx))
        .unwrap();
    messages_for_three_idle_timeouts_then_silence(&handle, &took);
}

#[test]
fn messages_keep_a_session_alive() {
    guard!(|| kept_alive_by_messages(|ctx, took| {
        while let Some(n) = ctx.recv() {
            took.send(n).unwrap();
        }
    }));
}

#[test]
fn a_body_that_reads_its_mailbox_itself_is_kept_alive_by_its_messages() {
    // Reads the raw channel: no activity recorded by a receive.
    guard!(|| kept_alive_by_messages(|ctx, took| {
        for item in ctx.control() {
            match item {
                Control::Message(n) => took.send(n).unwrap(),
                Control::Stop => break,
            }
        }
    }));
}

#[test]
fn a_start_without_an_idle_timeout_is_not_stopped_for_idleness() {
    guard!(|| {
        let projects = Projects::new(2);
        let sup = common::supervisor();
        let quiet = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        let idle = sup
            .start(projects.session(1))
            .idle_timeout(Duration::from_millis(20))
            .run(stub::idle())
            .unwrap();
        let report = idle.wait_timeout(TIMEOUT).expect("the one with a timeout");
        assert!(matches!(report.reason(), ExitReason::Idle { .. }));
        // The quiet one was started first and has been silent longer.
        assert!(sup.session_running(quiet.id()));
        assert_eq!(quiet.stop().unwrap().reason(), &ExitReason::Stopped);
    });
}

#[test]
fn a_stop_before_the_idle_timeout_is_a_plain_stop() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::builder()
            .idle_timeout(Duration::from_secs(60))
            .build();
        let handle = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        assert_eq!(handle.stop().unwrap().reason(), &ExitReason::Stopped);
    });
}

#[test]
fn duration_max_means_never_and_zero_means_at_once() {
    guard!(|| {
        let projects = Projects::new(3);
        let short = Duration::from_millis(20);
        let sup = common::builder().idle_timeout(short).build();
        let never = sup
            .start(projects.session(0))
            .idle_timeout(Duration::MAX)
            .run(stub::idle())
            .unwrap();
        let at_once = sup
            .start(projects.session(1))
            .idle_timeout(Duration::ZERO)
            .run(stub::idle())
            .unwrap();
        let report = at_once.wait_timeout(TIMEOUT).expect("stopped at once");
        assert_eq!(
            report.reason(),
            &ExitReason::Idle {
                timeout: Duration::ZERO
            }
        );
        // Started after the one that never idles out, with the builder's timeout.
        let default = sup
            .start_session(projects.session(2), stub::idle())
            .unwrap();
        let report = default.wait_timeout(TIMEOUT).expect("stopped when idle");
        assert_eq!(report.reason(), &ExitReason::Idle { timeout: short });
        assert!(never.is_running(), "Duration::MAX: no idle timeout");
        assert_eq!(never.stop().unwrap().reason(), &ExitReason::Stopped);
    });
}
