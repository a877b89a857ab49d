//! The guarantees hold when user code misbehaves: panics in drops, in panic payloads and
//! in error formatting, durations past the clock's range, full mailboxes, a session that
//! waits on itself, thread-local destructors that linger. One test (or one row of a
//! table) per way found to break them.

mod common;

use std::cell::RefCell;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use common::{guard, recv_within, BadDisplay, Bomb, Projects, EXPECTED, TIMEOUT};
use crossbeam_channel::{bounded, select, unbounded, Receiver, Sender};
use session_supervisor::{
    Control, Error, ExitReason, InitError, ReplyTo, Restart, RestartPolicy, SessionBody,
    SessionContext, SessionEvent, SessionSupervisor, Subscription,
};

/// What a wait bounded by a timeout may take beyond it on a loaded machine.
const MARGIN: Duration = Duration::from_secs(2);

fn quiet_expected_panics() {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| {
        let print = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let text = payload.downcast_ref::<&str>().copied();
            let text = text.or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            let bomb = payload.downcast_ref::<Bomb>().is_some();
            if !bomb && text != Some(EXPECTED) {
                print(info);
            }
        }));
    });
}

/// A body whose `init` fails as `fail` says, and whose `run` idles.
struct FailingInit(fn() -> Result<(), InitError>);

impl SessionBody for FailingInit {
    fn init(&mut self, _: &SessionContext) -> Result<(), InitError> {
        (self.0)()
    }

    fn run(&mut self, ctx: &SessionContext) {
        ctx.wait_for_stop();
    }
}

/// The events of one session so far, waiting for each at most `TIMEOUT`.
fn events_of(events: &Subscription, n: usize) -> Vec<SessionEvent> {
    (0..n)
        .map(|i| {
            events
                .recv_timeout(TIMEOUT)
                .unwrap_or_else(|| panic!("event {i}"))
        })
        .collect()
}

fn is_exited(event: &SessionEvent, reason: &ExitReason) -> bool {
    matches!(event, SessionEvent::Exited { reason: r, .. } if r == reason)
}

/// Stops a session and checks that nothing of it is left: entry, path, event.
fn assert_stops_clean<M>(sup: &SessionSupervisor<M>, events: &Subscription, projects: &Projects) {
    let id = sup.list_ids()[0];
    let report = sup.stop_session(id).expect("stopped");
    assert_eq!(report.reason(), &ExitReason::Stopped);
    assert_eq!(sup.count(), 0);
    let seen = events_of(events, 2);
    assert!(matches!(seen[0], SessionEvent::Started { .. }), "{seen:?}");
    assert!(is_exited(&seen[1], &ExitReason::Stopped), "{seen:?}");
    assert!(sup.lookup_by_path(projects.path(0)).is_err(), "path freed");
}

#[test]
fn a_body_whose_drop_panics_still_ends_its_session_cleanly() {
    guard!(|| {
        quiet_expected_panics();
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let events = sup.subscribe();
        let bomb = Bomb(true);
        sup.start_session(projects.session(0), move |ctx| {
            let _held = &bomb;
            ctx.wait_for_stop();
        })
        .expect("start");
        assert_stops_clean(&sup, &events, &projects);
    });
}

#[test]
fn queued_messages_whose_drop_panics_are_dropped_without_leaving_the_entry() {
    guard!(|| {
        quiet_expected_panics();
        let projects = Projects::new(1);
        let sup = common::builder().messages::<Bomb>().build();
        let events = sup.subscribe();
        let handle = sup
            .start_session(projects.session(0), |ctx| ctx.wait_for_stop())
            .expect("start");
        for _ in 0..3 {
            handle
                .send(Bomb(true))
                .map_err(|e| e.into_message().0 = false)
                .unwrap();
        }
        assert_stops_clean(&sup, &events, &projects);
    });
}

/// One way a first `init` fails, and what the reason of the failed start must contain.
struct FailedStart {
    /// The name of the test this row was.
    name: &'static str,
    init: fn() -> Result<(), InitError>,
    reason_has: &'static str,
}

/// Each way found for a failing first `init` to break the cleanup of its start.
const FAILED_STARTS: [FailedStart; 3] = [
    FailedStart {
        name: "an_init_panic_whose_payload_panics_on_drop_fails_the_start_cleanly",
        init: || std::panic::panic_any(Bomb(true)),
        reason_has: "init panicked: non-string panic payload",
    },
    FailedStart {
        name: "an_init_error_whose_display_panics_fails_the_start_cleanly",
        init: || Err(Box::new(BadDisplay) as InitError),
        reason_has: "formatting the error panicked",
    },
    FailedStart {
        name: "an_init_error_fails_the_start_with_its_text_and_publishes_nothing",
        init: || Err("no config".into()),
        reason_has: "no config",
    },
];

/// A failed start leaves nothing: no entry, a free path, and no event at all (a start
/// that failed never began, so it has no `Started` and no `Exited`).
#[test]
fn a_failed_first_init_fails_the_start_cleanly_and_publishes_nothing() {
    guard!(|| {
        quiet_expected_panics();
        for row in FAILED_STARTS {
            let case = row.name;
            let projects = Projects::new(1);
            let sup = common::supervisor();
            let events = sup.subscribe();
            match sup.start(projects.session(0)).body(FailingInit(row.init)) {
                Err(Error::StartFailed { reason, .. }) => {
                    assert!(reason.contains(row.reason_has), "{case}: {reason}")
                }
                other => panic!("{case}: expected StartFailed, got {other:?}"),
            }
            assert_eq!(sup.count(), 0, "{case}: count");
            assert!(
                events.try_recv().is_none(),
                "{case}: no event for a start that failed"
            );
            sup.start_session(projects.session(0), |_| {})
                .unwrap_or_else(|err| panic!("{case}: path free: {err}"));
        }
    });
}

/// A backoff past the clock's range waits for the stop instead of overflowing.
#[test]
fn a_backoff_too_long_for_a_deadline_waits_for_the_stop() {
    guard!(|| {
        for backoff in [Duration::MAX, Duration::from_secs(u64::MAX / 2)] {
            let projects = Projects::new(1);
            let sup = common::supervisor();
            let events = sup.subscribe();
            let (ran_tx, ran) = unbounded();
            let policy = RestartPolicy::new(Restart::Permanent).backoff(backoff);
            sup.start(projects.session(0))
                .policy(policy)
                .run(move |_| ran_tx.send(()).unwrap())
                .expect("start");
            recv_within(&ran, "the first run");
            // Told before the wait begins: the stop below comes during the wait.
            let seen = events_of(&events, 2);
            assert!(matches!(seen[0], SessionEvent::Started { .. }), "{seen:?}");
            let waits = |e: &SessionEvent| matches!(e, SessionEvent::Restarting { delay, restarts: 1, .. } if *delay == backoff);
            assert!(waits(&seen[1]), "{seen:?}");
            let id = sup.list_ids()[0];
            let report = sup.stop_session(id).expect("stopped during the backoff");
            assert_eq!(report.reason(), &ExitReason::Stopped);
            assert!(is_exited(&events_of(&events, 1)[0], &ExitReason::Stopped));
            assert!(sup.lookup_by_path(projects.path(0)).is_err(), "path freed");
            assert!(ran.try_recv().is_err(), "no second run: {backoff:?}");
        }
    });
}

#[test]
fn a_stop_timeout_of_duration_max_means_no_deadline() {
    guard!(|| {
        let projects = Projects::new(3);
        let sup = common::builder().stop_timeout(Duration::MAX).build();
        let events = sup.subscribe();
        sup.start_session(projects.session(0), |ctx| ctx.wait_for_stop())
            .expect("start");
        assert_stops_clean(&sup, &events, &projects);
        sup.start_session(projects.session(1), |ctx| ctx.wait_for_stop())
            .expect("start");
        assert!(sup.shutdown().is_complete());
        let dropped = common::builder().stop_timeout(Duration::MAX).build();
        let handle = dropped
            .start_session(projects.session(2), |ctx| ctx.wait_for_stop())
            .expect("start");
        drop(dropped);
        assert!(!handle.is_running(), "drop joined the session");
    });
}

enum Ask {
    Echo(u32, ReplyTo<u32>),
}

#[test]
fn waits_of_duration_max_mean_no_deadline() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::builder().messages::<Ask>().build();
        let events = sup.subscribe();
        let (stopped_tx, stopped) = unbounded();
        let handle = sup
            .start_session(projects.session(0), move |ctx| {
                let Ok(Ask::Echo(n, reply)) = ctx.recv_timeout(Duration::MAX) else {
                    return;
                };
                reply.send(n);
                stopped_tx
                    .send(ctx.wait_for_stop_timeout(Duration::MAX))
                    .unwrap();
            })
            .expect("start");
        let started = |e: &SessionEvent| matches!(e, SessionEvent::Started { .. });
        assert!(events.wait_for(started, Duration::MAX).is_some());
        assert_eq!(handle.call(|r| Ask::Echo(7, r), Duration::MAX).unwrap(), 7);
        let stopper = std::thread::spawn({
            let handle = handle.clone();
            move || handle.wait_timeout(Duration::MAX)
        });
        handle.stop().expect("stop");
        assert!(recv_within(&stopped, "the body saw its stop"));
        let report = stopper.join().unwrap().expect("ended");
        assert_eq!(report.reason(), &ExitReason::Stopped);
        assert!(sup.wait_until_stopped(handle.id(), Duration::MAX));
    });
}

thread_local! {
    /// Set by a body: its destructor runs when the session thread exits.
    static LINGER: RefCell<Option<Linger>> = const { RefCell::new(None) };
}

/// Blocks in its destructor until released.
struct Linger(Receiver<()>);

impl Drop for Linger {
    fn drop(&mut self) {
        let _ = self.0.recv();
    }
}

/// A thread-local destructor that lingers is user code still running on the session
/// thread: the stop gives up at its timeout, and the entry stays until it finished.
///
/// Only on a thread of its own: a warm thread does not end with its session, so its
/// thread-locals outlive it (as documented; `tests/warm.rs` checks that side).
#[test]
fn a_lingering_thread_local_destructor_keeps_the_entry_and_the_stop_bounded() {
    guard!(|| {
        let timeout = Duration::from_millis(300);
        let projects = Projects::new(1);
        let sup = SessionSupervisor::builder()
            .warm_threads(0)
            .stop_timeout(timeout)
            .build();
        let events = sup.subscribe();
        let (release, gate) = bounded::<()>(0);
        let handle = sup
            .start_session(projects.session(0), move |ctx| {
                LINGER.with(|slot| *slot.borrow_mut() = Some(Linger(gate.clone())));
                ctx.wait_for_stop();
            })
            .expect("start");
        let asked = Instant::now();
        let stop = sup.stop_session(handle.id());
        assert!(matches!(stop, Err(Error::StopTimeout { .. })), "{stop:?}");
        assert!(asked.elapsed() < timeout + MARGIN, "{:?}", asked.elapsed());
        assert!(sup.session_running(handle.id()));
        let again = sup.start_session(projects.session(0), |_| {});
        assert!(matches!(again, Err(Error::ProjectAlreadyOpen { .. })));
        drop(release);
        let report = handle.wait_timeout(TIMEOUT).expect("ended once released");
        assert_eq!(report.reason(), &ExitReason::Stopped);
        assert_eq!(sup.count(), 0);
        let seen = events_of(&events, 2);
        assert!(is_exited(&seen[1], &ExitReason::Stopped), "{seen:?}");
    });
}

/// A body that selects on its control channel, as the docs show, after waiting for
/// `gate`: while it waits, its bounded mailbox fills up.
fn selecting_body(gate: Receiver<()>) -> impl FnMut(&SessionContext<u32>) + Send + 'static {
    move |ctx| {
        let _ = gate.recv();
        loop {
            select! {
                recv(ctx.control()) -> item => match item {
                    Ok(Control::Message(_)) => {}
                    _ => return,
                },
            }
        }
    }
}

#[test]
fn a_full_mailbox_does_not_lose_the_stop() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::builder()
            .messages::<u32>()
            .mailbox_capacity(2)
            .stop_timeout(Duration::ZERO)
            .build();
        let (release, gate) = bounded(0);
        let handle = sup
            .start_session(projects.session(0), selecting_body(gate))
            .expect("start");
        handle.try_send(1).unwrap();
        handle.try_send(2).unwrap();
        let full = handle.try_send(3).unwrap_err();
        assert!(matches!(full.error(), Error::MailboxFull { .. }));
        // A zero timeout: the stop is requested and not waited for.
        let stop = sup.stop_session(handle.id());
        assert!(matches!(stop, Err(Error::StopTimeout { .. })), "{stop:?}");
        drop(release);
        let report = handle.wait_timeout(TIMEOUT).expect("the body saw its stop");
        assert_eq!(report.reason(), &ExitReason::Stopped);
    });
}

#[test]
fn a_sender_blocked_on_a_full_mailbox_is_released_by_the_stop() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::builder()
            .messages::<u32>()
            .mailbox_capacity(1)
            .build();
        let handle = sup
            .start_session(projects.session(0), |ctx| ctx.wait_for_stop())
            .expect("start");
        handle.send(1).unwrap();
        let blocked = std::thread::spawn({
            let handle = handle.clone();
            move || handle.send(2)
        });
        handle.stop().expect("stop");
        let err = blocked.join().unwrap().unwrap_err();
        assert!(matches!(err.error(), Error::SessionGone { .. }), "{err:?}");
        assert_eq!(err.into_message(), 2);
    });
}

enum Own {
    /// Never answered: the call fails before it is sent.
    Ping(#[allow(dead_code)] ReplyTo<()>),
    Fill,
}

/// What a session sees when it waits on itself, each step reported on `to`.
fn self_waits(
    sup: Arc<SessionSupervisor<Own>>,
    to: Sender<String>,
) -> impl FnMut(&SessionContext<Own>) + Send + 'static {
    move |ctx| {
        let me = sup.find_session(ctx.id()).expect("registered");
        let call = me.call(Own::Ping, Duration::MAX);
        to.send(format!("call: {call:?}")).unwrap();
        me.send(Own::Fill).map_err(|_| ()).expect("one slot free");
        let full = me.send(Own::Fill).map(|_| ()).map_err(|e| e.into_parts().0);
        to.send(format!("send: {full:?}")).unwrap();
        let waited = me.wait_timeout(Duration::MAX).is_some();
        let until = sup.wait_until_stopped(ctx.id(), Duration::MAX);
        to.send(format!("waits: {waited} {until}")).unwrap();
        ctx.wait_for_stop();
    }
}

#[test]
fn a_session_waiting_on_itself_fails_at_once() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::builder()
            .messages::<Own>()
            .mailbox_capacity(1)
            .build();
        let sup = Arc::new(sup);
        let (to, seen) = unbounded();
        let handle = sup
            .start_session(projects.session(0), self_waits(Arc::clone(&sup), to))
            .expect("start");
        let id = handle.id();
        let call = recv_within(&seen, "the call");
        assert_eq!(
            call,
            format!("call: Err(CallFromOwnThread {{ id: {id:?} }})")
        );
        let send = recv_within(&seen, "the send");
        assert_eq!(send, format!("send: Err(MailboxFull {{ id: {id:?} }})"));
        assert_eq!(recv_within(&seen, "the waits"), "waits: false false");
        sup.stop_session(id).expect("stop");
    });
}

#[test]
fn a_policy_with_restarts_in_a_zero_window_is_refused() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let bad = RestartPolicy::default().intensity(3, Duration::ZERO);
        let session = projects.session(0);
        let id = session.id();
        let refused = sup.start(session).policy(bad).run(|_| {});
        match refused {
            Err(Error::InvalidPolicy { id: refused, .. }) => assert_eq!(refused, id),
            other => panic!("expected InvalidPolicy, got {other:?}"),
        }
        assert_eq!(sup.count(), 0);
        let never = RestartPolicy::default().intensity(0, Duration::ZERO);
        sup.start(projects.session(0))
            .policy(never)
            .run(|ctx| ctx.wait_for_stop())
            .expect("no restarts in no window is fine");
    });
}
