//! Supervision: each restart policy against each way a body ends, restart intensity,
//! what a restart keeps, exit reasons, and stops that land during a restart or a backoff.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{guard, recv_within, Projects, TIMEOUT};
use crossbeam_channel::{select, unbounded, Receiver, Sender};
use session_supervisor::{
    body_fn, stub, Error, ExitReason, ExitReport, InitError, Restart, RestartPolicy, Session,
    SessionBody, SessionContext, SessionHandle, SessionSupervisor,
};

/// An intensity window no test outlasts: every crash of a test falls inside it.
const HOUR: Duration = Duration::from_secs(3600);

/// Log records of the crate, forwarded to the tests that listen for them.
///
/// The crate logs each restart (warn) after deciding to restart and before its backoff,
/// and each end (info to error) after unregistering the session: the only outside signs
/// of those moments. A listener may also hold the logging session thread right there.
/// The tests match the words "restarting" and "ended" of those records.
mod log_tap {
    use std::sync::Once;

    use crossbeam_channel::{unbounded, Receiver, Sender};
    use log::{LevelFilter, Log, Metadata, Record};
    use parking_lot::Mutex;
    use session_supervisor::SessionId;

    struct Listener {
        id: String,
        word: &'static str,
        heard: Sender<String>,
        /// While set, the logging thread waits here until the test sends or hangs up.
        hold: Option<Receiver<()>>,
    }

    struct Tap(Mutex<Vec<Listener>>);

    static TAP: Tap = Tap(Mutex::new(Vec::new()));
    static INSTALL: Once = Once::new();

    impl Log for Tap {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }

        fn log(&self, record: &Record<'_>) {
            let text = record.args().to_string();
            let matching: Vec<_> = self
                .0
                .lock()
                .iter()
                .filter(|l| text.contains(&l.id) && text.contains(l.word))
                .map(|l| (l.heard.clone(), l.hold.clone()))
                .collect();
            // The lock is released: a held thread must not stop other sessions logging.
            for (heard, hold) in matching {
                let _ = heard.send(text.clone());
                if let Some(hold) = hold {
                    let _ = hold.recv();
                }
            }
        }

        fn flush(&self) {}
    }

    fn add(id: &SessionId, word: &'static str, hold: Option<Receiver<()>>) -> Receiver<String> {
        INSTALL.call_once(|| {
            log::set_logger(&TAP).expect("no other logger in this test binary");
            log::set_max_level(LevelFilter::Info);
        });
        let (heard, rx) = unbounded();
        let id = id.to_string();
        TAP.0.lock().push(Listener {
            id,
            word,
            heard,
            hold,
        });
        rx
    }

    /// Receives every record about session `id` that contains `word`.
    pub fn listen(id: &SessionId, word: &'static str) -> Receiver<String> {
        add(id, word, None)
    }

    /// As [`listen`], and holds the logging thread inside each such record until the
    /// returned sender sends or is dropped.
    pub fn hold(id: &SessionId, word: &'static str) -> (Receiver<String>, Sender<()>) {
        let (release, hold) = unbounded();
        (add(id, word, Some(hold)), release)
    }
}

/// How a test body ends each run.
#[derive(Clone, Copy, Debug)]
enum Ending {
    Return,
    Panic,
}

/// A body that sends its restart count each time it runs, then ends as `ending` says.
fn ends_each_run(ending: Ending, runs: Sender<u32>) -> impl SessionBody {
    body_fn(move |ctx| {
        let _ = runs.send(ctx.restarts());
        if let Ending::Panic = ending {
            panic!("run {} failed", ctx.restarts());
        }
    })
}

/// Runs a body that ends every run as `ending` says under `restart` (at most 2
/// restarts), until its session ends; returns the restart count of each run and the end.
fn run_to_the_end(restart: Restart, ending: Ending) -> (Vec<u32>, ExitReport) {
    let projects = Projects::new(1);
    let sup = SessionSupervisor::new();
    let (runs_tx, runs) = unbounded();
    let policy = RestartPolicy::new(restart).intensity(2, HOUR);
    let body = ends_each_run(ending, runs_tx);
    let handle = sup
        .start_session_with_policy(projects.session(0), body, policy)
        .expect("start");
    let report = handle.wait_timeout(TIMEOUT).expect("the session ends");
    assert!(
        !sup.session_running(handle.id()),
        "an ended session is unregistered"
    );
    assert!(
        sup.lookup_by_path(projects.path(0)).is_err(),
        "its path is free"
    );
    // The body was dropped before the session ended: every run's message is in.
    (runs.try_iter().collect(), report)
}

/// A body that sends its restart count each run, then panics with "crash N" (N = the
/// run's number, from 1) when the test sends on `crash`, or returns once stopped.
fn crash_on_command(runs: Sender<u32>, crash: Receiver<()>) -> impl SessionBody {
    body_fn(move |ctx| {
        let _ = runs.send(ctx.restarts());
        while !ctx.stop_requested() {
            select! {
                recv(crash) -> _ => panic!("crash {}", ctx.restarts() + 1),
                recv(ctx.control()) -> _ => {}
            }
        }
    })
}

/// Sends a crash command and waits until the body runs again.
fn crash_and_await_restart(crash: &Sender<()>, runs: &Receiver<u32>) -> u32 {
    crash.send(()).expect("the body listens");
    recv_within(runs, "the restarted run")
}

/// Starts a session whose body panics on every run with the message "crash".
fn start_crashing(
    sup: &SessionSupervisor,
    session: Session,
    policy: RestartPolicy,
) -> SessionHandle {
    sup.start_session_with_policy(session, body_fn(|_| panic!("crash")), policy)
        .expect("start")
}

// ---- each policy x {returns, panics} ----

#[test]
fn permanent_body_that_returns_is_run_again() {
    guard!(move || {
        let (runs, report) = run_to_the_end(Restart::Permanent, Ending::Return);
        assert_eq!(runs, [0, 1, 2]);
        let limit = ExitReason::RestartLimit {
            restarts: 2,
            last_panic: None,
        };
        assert_eq!(report.reason(), &limit);
        assert_eq!(report.restarts(), 2);
    });
}

#[test]
fn permanent_body_that_panics_is_run_again() {
    guard!(move || {
        let (runs, report) = run_to_the_end(Restart::Permanent, Ending::Panic);
        assert_eq!(runs, [0, 1, 2]);
        let limit = ExitReason::RestartLimit {
            restarts: 2,
            last_panic: Some("run 2 failed".into()),
        };
        assert_eq!(report.reason(), &limit);
    });
}

#[test]
fn transient_body_that_returns_ends_normally_without_a_restart() {
    guard!(move || {
        let (runs, report) = run_to_the_end(Restart::Transient, Ending::Return);
        assert_eq!(runs, [0]);
        assert_eq!(report.reason(), &ExitReason::Normal);
        assert_eq!(report.restarts(), 0);
    });
}

#[test]
fn transient_body_that_panics_is_run_again() {
    guard!(move || {
        let (runs, report) = run_to_the_end(Restart::Transient, Ending::Panic);
        assert_eq!(runs, [0, 1, 2]);
        let limit = ExitReason::RestartLimit {
            restarts: 2,
            last_panic: Some("run 2 failed".into()),
        };
        assert_eq!(report.reason(), &limit);
    });
}

#[test]
fn temporary_body_that_returns_ends_normally_without_a_restart() {
    guard!(move || {
        let (runs, report) = run_to_the_end(Restart::Temporary, Ending::Return);
        assert_eq!(runs, [0]);
        assert_eq!(report.reason(), &ExitReason::Normal);
    });
}

#[test]
fn temporary_body_that_panics_ends_with_its_panic_message() {
    guard!(move || {
        let (runs, report) = run_to_the_end(Restart::Temporary, Ending::Panic);
        assert_eq!(runs, [0]);
        let panicked = ExitReason::Panicked {
            message: "run 0 failed".into(),
        };
        assert_eq!(report.reason(), &panicked);
        assert_eq!(report.restarts(), 0);
    });
}

#[test]
fn the_supervisor_policy_applies_to_sessions_started_without_one() {
    guard!(move || {
        let projects = Projects::new(1);
        let temporary = RestartPolicy::new(Restart::Temporary);
        let sup = SessionSupervisor::builder()
            .restart_policy(temporary)
            .build();
        let handle = sup
            .start_session(projects.session(0), |_: &SessionContext| panic!("once"))
            .expect("start");
        let report = handle.wait_timeout(TIMEOUT).expect("the session ends");
        let panicked = ExitReason::Panicked {
            message: "once".into(),
        };
        // The default policy (transient) would have restarted it.
        assert_eq!(report.reason(), &panicked);
    });
}

#[test]
fn a_non_string_panic_payload_is_reported_as_such() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::new();
        let body = body_fn(|_| std::panic::panic_any(42_u32));
        let policy = RestartPolicy::new(Restart::Temporary);
        let handle = sup
            .start_session_with_policy(projects.session(0), body, policy)
            .expect("start");
        let report = handle.wait_timeout(TIMEOUT).expect("the session ends");
        let panicked = ExitReason::Panicked {
            message: "non-string panic payload".into(),
        };
        assert_eq!(report.reason(), &panicked);
    });
}

// ---- restart intensity ----

#[test]
fn three_crashes_restart_and_the_fourth_inside_the_window_gives_up() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::new();
        let (runs_tx, runs) = unbounded();
        let (crash, crash_rx) = unbounded();
        let policy = RestartPolicy::new(Restart::Transient).intensity(3, HOUR);
        let body = crash_on_command(runs_tx, crash_rx);
        let handle = sup
            .start_session_with_policy(projects.session(0), body, policy)
            .expect("start");
        assert_eq!(recv_within(&runs, "the first run"), 0);
        for restart in 1..=3 {
            assert_eq!(crash_and_await_restart(&crash, &runs), restart);
            assert!(sup.session_running(handle.id()), "restart {restart}");
        }
        crash.send(()).expect("the body listens");
        let report = handle.wait_timeout(TIMEOUT).expect("the session gives up");
        let limit = ExitReason::RestartLimit {
            restarts: 3,
            last_panic: Some("crash 4".into()),
        };
        assert_eq!(report.reason(), &limit);
        assert_eq!(report.restarts(), 3);
        assert!(runs.try_recv().is_err(), "no run after giving up");
        assert!(!sup.session_running(handle.id()));
        assert_eq!(sup.count(), 0);
        assert!(sup.lookup_by_path(projects.path(0)).is_err());
        let again = sup.start_session(projects.session(0), |ctx: &SessionContext| {
            ctx.wait_for_stop()
        });
        assert!(again.is_ok(), "the path is free again: {again:?}");
    });
}

#[test]
fn zero_max_restarts_gives_up_on_the_first_crash() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::new();
        let policy = RestartPolicy::new(Restart::Permanent).intensity(0, HOUR);
        let handle = start_crashing(&sup, projects.session(0), policy);
        let report = handle.wait_timeout(TIMEOUT).expect("the session gives up");
        let limit = ExitReason::RestartLimit {
            restarts: 0,
            last_panic: Some("crash".into()),
        };
        assert_eq!(report.reason(), &limit);
    });
}

#[test]
fn crashes_spread_wider_than_the_window_keep_restarting() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::new();
        let (runs_tx, runs) = unbounded();
        let (crash, crash_rx) = unbounded();
        // One restart per nanosecond. Each crash waits for the test, which sends it only
        // after it saw the previous restart: crashes are always further apart.
        let policy = RestartPolicy::new(Restart::Transient).intensity(1, Duration::from_nanos(1));
        let body = crash_on_command(runs_tx, crash_rx);
        let handle = sup
            .start_session_with_policy(projects.session(0), body, policy)
            .expect("start");
        assert_eq!(recv_within(&runs, "the first run"), 0);
        for restart in 1..=10 {
            assert_eq!(crash_and_await_restart(&crash, &runs), restart);
        }
        let report = sup.stop_session(handle.id()).expect("stop");
        assert_eq!(report.reason(), &ExitReason::Stopped);
        assert_eq!(report.restarts(), 10);
    });
}

// ---- what a restart keeps ----

#[test]
fn a_restart_keeps_the_id_the_handle_the_path_and_the_registry_entry() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::new();
        let (runs_tx, runs) = unbounded();
        let (crash, crash_rx) = unbounded();
        let body = crash_on_command(runs_tx, crash_rx);
        let handle = sup
            .start_session_with_policy(projects.session(0), body, RestartPolicy::default())
            .expect("start");
        let id = *handle.id();
        recv_within(&runs, "the first run");
        // A rename changes the registry entry: it survives only if the entry does.
        sup.rename_session(&id, "renamed").expect("rename");
        assert_eq!(crash_and_await_restart(&crash, &runs), 1);

        assert!(
            handle.is_running(),
            "the handle from before the crash still answers"
        );
        assert_eq!(handle.id(), &id);
        assert_eq!(sup.find_session(&id).expect("find").id(), &id);
        assert_eq!(sup.lookup(&id).expect("lookup").name(), "renamed");
        assert_eq!(
            sup.lookup_by_path(projects.path(0)).expect("path").id(),
            &id
        );
        assert_eq!(sup.lookup_by_name("renamed").expect("name").id(), &id);
        assert_eq!(sup.list_ids(), [id]);
        let report = sup
            .stop_session(&id)
            .expect("stop through the old handle's id");
        assert_eq!(report.restarts(), 1);
        assert_eq!(handle.wait_timeout(Duration::ZERO), Some(report));
    });
}

/// A body whose `init` on every restart waits for the test, so a restart can be caught
/// in the middle.
struct SlowRestartInit {
    in_init: Sender<u32>,
    go: Receiver<()>,
}

impl SessionBody for SlowRestartInit {
    fn init(&mut self, ctx: &SessionContext) -> Result<(), InitError> {
        if ctx.restarts() > 0 {
            let _ = self.in_init.send(ctx.restarts());
            let _ = self.go.recv();
        }
        Ok(())
    }

    fn run(&mut self, ctx: &SessionContext) {
        if ctx.restarts() == 0 {
            panic!("first run crashes");
        }
        ctx.wait_for_stop();
    }
}

#[test]
fn the_path_stays_reserved_while_a_restart_is_in_init() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::new();
        let (in_init_tx, in_init) = unbounded();
        let (go, go_rx) = unbounded();
        let body = SlowRestartInit {
            in_init: in_init_tx,
            go: go_rx,
        };
        let handle = sup
            .start_session_with(projects.session(0), body)
            .expect("start");
        assert_eq!(recv_within(&in_init, "the restart's init"), 1);

        let id = *handle.id();
        assert!(sup.session_running(&id));
        assert_eq!(
            sup.lookup_by_path(projects.path(0)).expect("path").id(),
            &id
        );
        let taken = sup.start_session(projects.session(0), |_: &SessionContext| {});
        assert!(
            matches!(taken, Err(Error::ProjectAlreadyOpen { id: owner, .. }) if owner == id),
            "{taken:?}"
        );
        go.send(()).expect("init waits");
        let report = sup.stop_session(&id).expect("stop");
        assert_eq!(report.reason(), &ExitReason::Stopped);
        assert_eq!(report.restarts(), 1);
    });
}

#[test]
fn restarts_tells_each_run_how_many_came_before() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::new();
        let (runs_tx, runs) = unbounded();
        let policy = RestartPolicy::new(Restart::Permanent).intensity(10, HOUR);
        // Returns five times (permanent: each return restarts), then idles.
        let body = body_fn(move |ctx| {
            let _ = runs_tx.send(ctx.restarts());
            if ctx.restarts() == 5 {
                ctx.wait_for_stop();
            }
        });
        let handle = sup
            .start_session_with_policy(projects.session(0), body, policy)
            .expect("start");
        for expected in 0..=5 {
            assert_eq!(recv_within(&runs, "the next run"), expected);
        }
        let report = sup.stop_session(handle.id()).expect("stop");
        assert_eq!(report.restarts(), 5);
        assert_eq!(report.reason(), &ExitReason::Stopped);
    });
}

/// Sets its flag when dropped: stops helper threads even when the test fails.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

#[test]
fn lookups_never_miss_a_session_while_it_restarts() {
    guard!(move || {
        const LOOKERS: usize = 4;
        let projects = Projects::new(1);
        let sup = Arc::new(SessionSupervisor::new());
        let start = Arc::new(Barrier::new(LOOKERS + 1));
        let (settled_tx, settled) = unbounded();
        let policy = RestartPolicy::new(Restart::Permanent).intensity(1000, HOUR);
        let gate = Arc::clone(&start);
        // Crashes 200 times once the lookers run, then idles.
        let body = body_fn(move |ctx| {
            if ctx.restarts() == 0 {
                gate.wait();
            }
            if ctx.restarts() < 200 {
                panic!("crash {}", ctx.restarts());
            }
            let _ = settled_tx.send(());
            ctx.wait_for_stop();
        });
        let handle = sup
            .start_session_with_policy(projects.session(0), body, policy)
            .expect("start");
        let id = *handle.id();
        let done = Arc::new(AtomicBool::new(false));
        let _stop_lookers = SetOnDrop(Arc::clone(&done));
        let path = projects.path(0);
        let lookers: Vec<_> = (0..LOOKERS)
            .map(|_| {
                let (sup, path) = (Arc::clone(&sup), path.clone());
                let (start, done) = (Arc::clone(&start), Arc::clone(&done));
                thread::spawn(move || {
                    start.wait();
                    let mut lookups = 0_u64;
                    while !done.load(Ordering::Acquire) {
                        let found = sup.lookup_by_path(&path).map(|s| *s.id());
                        assert_eq!(found.ok(), Some(id), "lookup {lookups} missed");
                        assert_eq!(sup.count(), 1);
                        lookups += 1;
                    }
                })
            })
            .collect();
        recv_within(&settled, "200 crashes and restarts");
        done.store(true, Ordering::Release);
        for looker in lookers {
            looker.join().expect("every lookup found the session");
        }
        assert_eq!(sup.stop_session(&id).expect("stop").restarts(), 200);
    });
}

#[test]
fn a_crashing_session_does_not_disturb_another() {
    guard!(move || {
        let projects = Projects::new(2);
        let sup = SessionSupervisor::new();
        let (runs_tx, runs) = unbounded();
        let calm = sup
            .start_session(projects.session(0), stub::reports(runs_tx))
            .expect("start the calm session");
        recv_within(&runs, "the calm session running");
        let policy = RestartPolicy::new(Restart::Permanent).intensity(20, HOUR);
        let crashing = start_crashing(&sup, projects.session(1), policy);
        let report = crashing
            .wait_timeout(TIMEOUT)
            .expect("the crashing session gives up");
        assert!(matches!(
            report.reason(),
            ExitReason::RestartLimit { restarts: 20, .. }
        ));
        assert!(runs.try_recv().is_err(), "the calm session never restarted");
        assert!(calm.is_running());
        assert_eq!(sup.list_ids(), [*calm.id()]);
        let calm_report = sup.stop_session(calm.id()).expect("stop");
        assert_eq!(calm_report.reason(), &ExitReason::Stopped);
        assert_eq!(calm_report.restarts(), 0);
    });
}

// ---- init on a restart, and the first init ----

/// A body whose `init` does as `restart_init` says on restarts; every run crashes.
struct InitOnRestart {
    restart_init: fn() -> Result<(), InitError>,
}

impl SessionBody for InitOnRestart {
    fn init(&mut self, ctx: &SessionContext) -> Result<(), InitError> {
        match ctx.restarts() {
            0 => Ok(()),
            _ => (self.restart_init)(),
        }
    }

    fn run(&mut self, _: &SessionContext) {
        panic!("run crashes");
    }
}

#[test]
fn a_panic_in_init_on_a_restart_counts_as_a_crash() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::new();
        let body = InitOnRestart {
            restart_init: || panic!("no config"),
        };
        let policy = RestartPolicy::new(Restart::Transient).intensity(2, HOUR);
        let handle = sup
            .start_session_with_policy(projects.session(0), body, policy)
            .expect("start");
        let report = handle.wait_timeout(TIMEOUT).expect("the session gives up");
        // Run crash, restart 1, init crash, restart 2, init crash: the limit.
        let limit = ExitReason::RestartLimit {
            restarts: 2,
            last_panic: Some("init panicked: no config".into()),
        };
        assert_eq!(report.reason(), &limit);
    });
}

#[test]
fn an_init_error_on_a_restart_ends_the_session_with_init_failed() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::new();
        let body = InitOnRestart {
            restart_init: || Err("no config".into()),
        };
        let policy = RestartPolicy::new(Restart::Permanent).intensity(10, HOUR);
        let handle = sup
            .start_session_with_policy(projects.session(0), body, policy)
            .expect("start");
        let report = handle.wait_timeout(TIMEOUT).expect("the session ends");
        let failed = ExitReason::InitFailed {
            reason: "no config".into(),
        };
        assert_eq!(report.reason(), &failed);
        assert_eq!(report.restarts(), 1);
        assert_eq!(sup.count(), 0);
    });
}

/// A body whose first `init` fails as `first_init` says.
struct FailingFirstInit {
    first_init: fn() -> Result<(), InitError>,
    ran: Sender<()>,
}

impl SessionBody for FailingFirstInit {
    fn init(&mut self, _: &SessionContext) -> Result<(), InitError> {
        (self.first_init)()
    }

    fn run(&mut self, _: &SessionContext) {
        let _ = self.ran.send(());
    }
}

fn assert_first_init_failure_fails_the_start(
    first_init: fn() -> Result<(), InitError>,
    reason: &str,
) {
    let projects = Projects::new(1);
    let sup = SessionSupervisor::new();
    let (ran_tx, ran) = unbounded();
    let session = projects.session(0);
    let id = *session.id();
    let body = FailingFirstInit {
        first_init,
        ran: ran_tx,
    };
    let policy = RestartPolicy::new(Restart::Permanent).intensity(10, HOUR);
    let started = sup.start_session_with_policy(session, body, policy);
    match started {
        Err(Error::StartFailed {
            id: failed,
            reason: why,
        }) => {
            assert_eq!(failed, id);
            assert_eq!(why, reason);
        }
        other => panic!("expected StartFailed, got {other:?}"),
    }
    // Not restarted although permanent, and nothing left registered.
    assert!(ran.try_recv().is_err());
    assert_eq!(sup.count(), 0);
    assert!(sup.lookup_by_path(projects.path(0)).is_err());
    let again = sup.start_session(projects.session(0), |_: &SessionContext| {});
    assert!(again.is_ok(), "the path is free: {again:?}");
}

#[test]
fn a_first_init_error_fails_the_start_and_leaves_nothing_registered() {
    guard!(move || assert_first_init_failure_fails_the_start(
        || Err("no config".into()),
        "no config"
    ));
}

#[test]
fn a_first_init_panic_fails_the_start_and_leaves_nothing_registered() {
    guard!(move || {
        assert_first_init_failure_fails_the_start(
            || panic!("no config"),
            "init panicked: no config",
        )
    });
}

// ---- exit reasons through stop ----

#[test]
fn stop_reports_stopped_with_the_restart_count_and_run_time() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::new();
        let (runs_tx, runs) = unbounded();
        let (crash, crash_rx) = unbounded();
        let began = Instant::now();
        let body = crash_on_command(runs_tx, crash_rx);
        let handle = sup
            .start_session_with_policy(projects.session(0), body, RestartPolicy::default())
            .expect("start");
        recv_within(&runs, "the first run");
        crash_and_await_restart(&crash, &runs);
        crash_and_await_restart(&crash, &runs);
        let report = sup.stop_session(handle.id()).expect("stop");
        let elapsed = began.elapsed();
        assert_eq!(report.id(), handle.id());
        assert_eq!(report.reason(), &ExitReason::Stopped);
        assert_eq!(report.restarts(), 2);
        assert!(
            report.run_time() <= elapsed,
            "{:?} > {elapsed:?}",
            report.run_time()
        );
    });
}

#[test]
fn stop_reports_the_panic_message_of_a_body_that_panics_when_stopped() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::new();
        let (inits_tx, inits) = unbounded();
        let policy = RestartPolicy::new(Restart::Permanent).intensity(10, HOUR);
        let body = PanicsWhenStopped { inits: inits_tx };
        let handle = sup
            .start_session_with_policy(projects.session(0), body, policy)
            .expect("start");
        let report = sup.stop_session(handle.id()).expect("stop");
        let panicked = ExitReason::Panicked {
            message: "flush failed: 3 bytes left".into(),
        };
        assert_eq!(report.reason(), &panicked);
        // A crash while a stop is requested is not restarted, even when permanent.
        assert_eq!(inits.try_iter().collect::<Vec<_>>(), [0]);
    });
}

/// A body that idles until stopped, then panics with a formatted message.
struct PanicsWhenStopped {
    inits: Sender<u32>,
}

impl SessionBody for PanicsWhenStopped {
    fn init(&mut self, ctx: &SessionContext) -> Result<(), InitError> {
        let _ = self.inits.send(ctx.restarts());
        Ok(())
    }

    fn run(&mut self, ctx: &SessionContext) {
        ctx.wait_for_stop();
        panic!("flush failed: {} bytes left", 3);
    }
}

// ---- stops during a backoff or a restart ----

#[test]
fn stop_during_a_backoff_ends_the_session_promptly() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::builder().stop_timeout(TIMEOUT).build();
        let session = projects.session(0);
        let restarting = log_tap::listen(session.id(), "restarting");
        let policy = RestartPolicy::default().backoff(Duration::from_secs(60));
        let handle = start_crashing(&sup, session, policy);
        recv_within(
            &restarting,
            "the restart decision, right before the backoff",
        );
        assert!(handle.is_running());
        assert_eq!(
            sup.lookup_by_path(projects.path(0))
                .expect("path reserved during the backoff")
                .id(),
            handle.id()
        );

        let asked = Instant::now();
        let report = sup
            .stop_session(handle.id())
            .expect("stopped before the timeout");
        let took = asked.elapsed();
        assert!(took < Duration::from_secs(5), "the stop took {took:?}");
        assert_eq!(report.reason(), &ExitReason::Stopped);
        assert_eq!(report.restarts(), 0, "the restart never happened");
    });
}

#[test]
fn shutdown_during_a_backoff_ends_the_session_promptly() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::builder().stop_timeout(TIMEOUT).build();
        let session = projects.session(0);
        let restarting = log_tap::listen(session.id(), "restarting");
        let policy = RestartPolicy::default().backoff(Duration::from_secs(60));
        let handle = start_crashing(&sup, session, policy);
        recv_within(
            &restarting,
            "the restart decision, right before the backoff",
        );

        let asked = Instant::now();
        let report = sup.shutdown();
        let took = asked.elapsed();
        assert!(took < Duration::from_secs(5), "the shutdown took {took:?}");
        assert!(report.is_complete());
        assert_eq!(report.exited().len(), 1);
        assert_eq!(report.exited()[0].id(), handle.id());
        assert_eq!(report.exited()[0].reason(), &ExitReason::Stopped);
    });
}

/// A body that counts its `init`s and crashes on its first run only.
struct CountsInits {
    inits: Sender<u32>,
}

impl SessionBody for CountsInits {
    fn init(&mut self, ctx: &SessionContext) -> Result<(), InitError> {
        let _ = self.inits.send(ctx.restarts());
        Ok(())
    }

    fn run(&mut self, ctx: &SessionContext) {
        if ctx.restarts() == 0 {
            panic!("first run crashes");
        }
        ctx.wait_for_stop();
    }
}

#[test]
fn a_stop_during_a_restart_runs_no_new_run() {
    guard!(move || {
        let projects = Projects::new(1);
        // A zero timeout: the stop only asks, so the test can let the restart go on.
        let sup = SessionSupervisor::builder()
            .stop_timeout(Duration::ZERO)
            .build();
        let session = projects.session(0);
        let (restarting, release) = log_tap::hold(session.id(), "restarting");
        let (inits_tx, inits) = unbounded();
        let handle = sup
            .start_session_with(session, CountsInits { inits: inits_tx })
            .expect("start");
        recv_within(&restarting, "the restart decision");
        // The session thread is held between the crash and the next run.
        let asked = sup.stop_session(handle.id());
        assert!(matches!(asked, Err(Error::StopTimeout { .. })), "{asked:?}");
        drop(release);

        let report = handle.wait_timeout(TIMEOUT).expect("the session ends");
        assert_eq!(report.reason(), &ExitReason::Stopped);
        assert_eq!(report.restarts(), 0);
        assert_eq!(
            inits.try_iter().collect::<Vec<_>>(),
            [0],
            "no init after the stop"
        );
    });
}

/// A body whose `init` on a restart waits until a stop is requested, then succeeds;
/// each `run` reports its restart count, and the first crashes.
struct StopArrivesInRestartInit {
    in_init: Sender<()>,
    runs: Sender<u32>,
}

impl SessionBody for StopArrivesInRestartInit {
    fn init(&mut self, ctx: &SessionContext) -> Result<(), InitError> {
        if ctx.restarts() > 0 {
            let _ = self.in_init.send(());
            ctx.wait_for_stop();
        }
        Ok(())
    }

    fn run(&mut self, ctx: &SessionContext) {
        let _ = self.runs.send(ctx.restarts());
        if ctx.restarts() == 0 {
            panic!("first run crashes");
        }
        ctx.wait_for_stop();
    }
}

#[test]
fn a_stop_during_a_restarts_init_runs_no_new_run() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::new();
        let (in_init_tx, in_init) = unbounded();
        let (runs_tx, runs) = unbounded();
        let body = StopArrivesInRestartInit {
            in_init: in_init_tx,
            runs: runs_tx,
        };
        let handle = sup
            .start_session_with(projects.session(0), body)
            .expect("start");
        recv_within(&in_init, "the restart's init");
        let report = sup.stop_session(handle.id()).expect("stop");
        assert_eq!(report.reason(), &ExitReason::Stopped);
        // "A stop request always wins: no new run starts once a stop was requested."
        assert_eq!(
            runs.try_iter().collect::<Vec<_>>(),
            [0],
            "run entered after the stop"
        );
    });
}

#[test]
fn dropping_the_supervisor_joins_a_session_that_is_ending_on_its_own() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = SessionSupervisor::new();
        let session = projects.session(0);
        // Held in its end-of-session log call, after unregistering itself.
        let (ended, release) = log_tap::hold(session.id(), "ended");
        let (exit_tx, exit) = unbounded();
        let body = body_fn(move |_| {
            common::signal_on_thread_exit(exit_tx.clone());
        });
        let handle = sup.start_session(session, body).expect("start");
        recv_within(&ended, "the session logging its end");
        assert!(handle.is_running(), "the thread is still at work");

        let (dropped_tx, dropped) = unbounded();
        let dropper = thread::spawn(move || {
            drop(sup);
            let _ = dropped_tx.send(exit.try_recv().is_ok());
        });
        // A drop that joins the thread cannot return while it is held.
        let early = dropped.recv_timeout(Duration::from_secs(1)).ok();
        drop(release);
        let joined = early.unwrap_or_else(|| recv_within(&dropped, "the drop"));
        dropper.join().expect("the dropper");
        assert!(joined, "drop returned while the session thread still ran");
    });
}

/// Stops its own session from inside its first `init`, then records whether `run` ran.
struct StopsItselfInInit {
    sup: Arc<std::sync::OnceLock<std::sync::Weak<SessionSupervisor>>>,
    ran: Sender<bool>,
}

impl SessionBody for StopsItselfInInit {
    fn init(&mut self, ctx: &SessionContext) -> Result<(), InitError> {
        let sup = self.sup.get().and_then(|weak| weak.upgrade()).expect("set");
        let own = sup.stop_session(ctx.id());
        assert!(
            matches!(own, Err(Error::StopFromOwnThread { .. })),
            "{own:?}"
        );
        Ok(())
    }

    fn run(&mut self, ctx: &SessionContext) {
        let _ = self.ran.send(ctx.stop_requested());
    }
}

/// Regression: a stop that came between the first `init` and `run` (here, from inside
/// `init`) skipped `run` although `start_session` had already said the session runs.
/// Only restarts skip their run once a stop was requested.
#[test]
fn the_first_run_starts_even_if_a_stop_came_during_init() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = Arc::new(SessionSupervisor::new());
        let cell = Arc::new(std::sync::OnceLock::new());
        cell.set(Arc::downgrade(&sup)).expect("empty");
        let (ran_tx, ran_rx) = unbounded();
        let body = StopsItselfInInit {
            sup: cell,
            ran: ran_tx,
        };
        let handle = sup.start_session_with(projects.session(0), body).unwrap();

        assert!(recv_within(&ran_rx, "run"), "run saw the stop request");
        let report = handle.wait_timeout(TIMEOUT).expect("the session ends");
        assert_eq!(report.reason(), &ExitReason::Stopped);
    });
}
