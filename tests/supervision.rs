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
    stub, Error, ExitReason, InitError, Restart, RestartPolicy, Session, SessionBody,
    SessionContext, SessionHandle, SessionSupervisor,
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

    fn add(id: SessionId, word: &'static str, hold: Option<Receiver<()>>) -> Receiver<String> {
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
    pub fn listen(id: SessionId, word: &'static str) -> Receiver<String> {
        add(id, word, None)
    }

    /// As [`listen`], and holds the logging thread inside each such record until the
    /// returned sender sends or is dropped.
    pub fn hold(id: SessionId, word: &'static str) -> (Receiver<String>, Sender<()>) {
        let (release, hold) = unbounded();
        (add(id, word, Some(hold)), release)
    }
}

/// A body that sends its restart count each run, then panics with "crash N" (N = the
/// run's number, from 1) when the test sends on `crash`, or returns once stopped.
fn crash_on_command(
    runs: Sender<u32>,
    crash: Receiver<()>,
) -> impl FnMut(&SessionContext) + Send + 'static {
    move |ctx: &SessionContext| {
        let _ = runs.send(ctx.restarts());
        while !ctx.stop_requested() {
            select! {
                recv(crash) -> _ => panic!("crash {}", ctx.restarts() + 1),
                recv(ctx.control()) -> _ => {}
            }
        }
    }
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
    sup.start(session)
        .policy(policy)
        .run(|_| panic!("crash"))
        .expect("start")
}

// ---- each policy x each way a body ends ----

/// How a test body ends: each of its runs, and its `init` on each restart.
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// Every run returns.
    Returns,
    /// Every run panics with "run N failed", N its restart count.
    Panics,
    /// Every run panics with a payload that is not a string (a `u32`).
    PanicsWithoutAMessage,
    /// Every run panics ("run N failed"); `init` panics with "no config" on restarts.
    PanicsThenInitPanics,
    /// Every run panics ("run N failed"); `init` fails with "no config" on restarts.
    PanicsThenInitFails,
}

/// A body that sends its restart count each time it runs, then ends as `ending` says.
struct EndsEachRun {
    ending: Ending,
    runs: Sender<u32>,
}

impl SessionBody for EndsEachRun {
    fn init(&mut self, ctx: &SessionContext) -> Result<(), InitError> {
        match self.ending {
            _ if ctx.restarts() == 0 => Ok(()),
            Ending::PanicsThenInitPanics => panic!("no config"),
            Ending::PanicsThenInitFails => Err("no config".into()),
            _ => Ok(()),
        }
    }

    fn run(&mut self, ctx: &SessionContext) {
        let _ = self.runs.send(ctx.restarts());
        match self.ending {
            Ending::Returns => {}
            Ending::PanicsWithoutAMessage => std::panic::panic_any(42_u32),
            _ => panic!("run {} failed", ctx.restarts()),
        }
    }
}

/// An [`ExitReason`] as a table row holds it.
#[derive(Clone, Copy, Debug)]
enum Reason {
    Normal,
    Panicked(&'static str),
    /// The restarts, and the last panic.
    RestartLimit(u32, Option<&'static str>),
    InitFailed(&'static str),
}

impl Reason {
    fn exit_reason(self) -> ExitReason {
        match self {
            Reason::Normal => ExitReason::Normal,
            Reason::Panicked(message) => ExitReason::Panicked {
                message: message.into(),
            },
            Reason::RestartLimit(restarts, last_panic) => ExitReason::RestartLimit {
                restarts,
                last_panic: last_panic.map(Into::into),
            },
            Reason::InitFailed(reason) => ExitReason::InitFailed {
                reason: reason.into(),
            },
        }
    }
}

/// One row of the grid of restart policies against endings: a body that ends as
/// `ending` under `restart` (at most 2 restarts), and what its session must do.
struct EndsUnder {
    restart: Restart,
    ending: Ending,
    /// The restart count of each run, in order.
    runs: &'static [u32],
    reason: Reason,
    restarts: u32,
}

/// Each restart policy against each way a body ends. The rows of the tests this table
/// replaced are marked with their names:
///
/// - `permanent_body_that_returns_is_run_again`
/// - `permanent_body_that_panics_is_run_again`
/// - `transient_body_that_returns_ends_normally_without_a_restart`
/// - `transient_body_that_panics_is_run_again`
/// - `temporary_body_that_returns_ends_normally_without_a_restart`
/// - `temporary_body_that_panics_ends_with_its_panic_message`
/// - `a_non_string_panic_payload_is_reported_as_such`
/// - `a_panic_in_init_on_a_restart_counts_as_a_crash` (run crash, restart 1, init
///   crash, restart 2, init crash: the limit)
/// - `an_init_error_on_a_restart_ends_the_session_with_init_failed` (it had an
///   intensity of 10: the end came at the first restart all the same)
///
/// The other rows complete the grid.
#[rustfmt::skip]
const POLICY_X_ENDING: [EndsUnder; 15] = {
    use Ending::*;
    use Reason::*;
    use Restart::*;
    const fn row(restart: Restart, ending: Ending, runs: &'static [u32], reason: Reason, restarts: u32) -> EndsUnder {
        EndsUnder { restart, ending, runs, reason, restarts }
    }
    [
        // permanent_body_that_returns_is_run_again
        row(Permanent, Returns,               &[0, 1, 2], RestartLimit(2, None), 2),
        // permanent_body_that_panics_is_run_again
        row(Permanent, Panics,                &[0, 1, 2], RestartLimit(2, Some("run 2 failed")), 2),
        row(Permanent, PanicsWithoutAMessage, &[0, 1, 2], RestartLimit(2, Some("non-string panic payload")), 2),
        row(Permanent, PanicsThenInitPanics,  &[0],       RestartLimit(2, Some("init panicked: no config")), 2),
        // an_init_error_on_a_restart_ends_the_session_with_init_failed
        row(Permanent, PanicsThenInitFails,   &[0],       InitFailed("no config"), 1),
        // transient_body_that_returns_ends_normally_without_a_restart
        row(Transient, Returns,               &[0],       Normal, 0),
        // transient_body_that_panics_is_run_again
        row(Transient, Panics,                &[0, 1, 2], RestartLimit(2, Some("run 2 failed")), 2),
        row(Transient, PanicsWithoutAMessage, &[0, 1, 2], RestartLimit(2, Some("non-string panic payload")), 2),
        // a_panic_in_init_on_a_restart_counts_as_a_crash
        row(Transient, PanicsThenInitPanics,  &[0],       RestartLimit(2, Some("init panicked: no config")), 2),
        row(Transient, PanicsThenInitFails,   &[0],       InitFailed("no config"), 1),
        // temporary_body_that_returns_ends_normally_without_a_restart
        row(Temporary, Returns,               &[0],       Normal, 0),
        // temporary_body_that_panics_ends_with_its_panic_message
        row(Temporary, Panics,                &[0],       Panicked("run 0 failed"), 0),
        // a_non_string_panic_payload_is_reported_as_such
        row(Temporary, PanicsWithoutAMessage, &[0],       Panicked("non-string panic payload"), 0),
        row(Temporary, PanicsThenInitPanics,  &[0],       Panicked("run 0 failed"), 0),
        row(Temporary, PanicsThenInitFails,   &[0],       Panicked("run 0 failed"), 0),
    ]
};

/// Runs each row of [`POLICY_X_ENDING`] until its session ends.
#[test]
fn each_restart_policy_against_each_way_a_body_ends() {
    guard!(move || {
        for row in POLICY_X_ENDING {
            let case = format!("{:?} body, {:?}", row.restart, row.ending);
            let projects = Projects::new(1);
            let sup = common::supervisor();
            let (runs_tx, runs) = unbounded();
            let policy = RestartPolicy::new(row.restart).intensity(2, HOUR);
            let body = EndsEachRun {
                ending: row.ending,
                runs: runs_tx,
            };
            let handle = sup
                .start(projects.session(0))
                .policy(policy)
                .body(body)
                .unwrap_or_else(|err| panic!("{case}: start: {err}"));
            let report = handle
                .wait_timeout(TIMEOUT)
                .unwrap_or_else(|| panic!("{case}: the session ends"));
            assert!(
                !sup.session_running(handle.id()),
                "{case}: an ended session is unregistered"
            );
            assert_eq!(sup.count(), 0, "{case}: count");
            assert!(
                sup.lookup_by_path(projects.path(0)).is_err(),
                "{case}: its path is free"
            );
            // The body was dropped before the session ended: every run's message is in.
            let runs: Vec<u32> = runs.try_iter().collect();
            assert_eq!(runs, row.runs, "{case}: the restart count of each run");
            assert_eq!(report.reason(), &row.reason.exit_reason(), "{case}: reason");
            assert_eq!(report.restarts(), row.restarts, "{case}: restarts");
        }
    });
}

#[test]
fn the_supervisor_policy_applies_to_sessions_started_without_one() {
    guard!(move || {
        let projects = Projects::new(1);
        let temporary = RestartPolicy::new(Restart::Temporary);
        let sup = common::builder().restart_policy(temporary).build();
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

// ---- restart intensity ----

#[test]
fn three_crashes_restart_and_the_fourth_inside_the_window_gives_up() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let (runs_tx, runs) = unbounded();
        let (crash, crash_rx) = unbounded();
        let policy = RestartPolicy::new(Restart::Transient).intensity(3, HOUR);
        let body = crash_on_command(runs_tx, crash_rx);
        let handle = sup
            .start(projects.session(0))
            .policy(policy)
            .run(body)
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
        let sup = common::supervisor();
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
        let sup = common::supervisor();
        let (runs_tx, runs) = unbounded();
        let (crash, crash_rx) = unbounded();
        // One restart per nanosecond. Each crash waits for the test, which sends it only
        // after it saw the previous restart: crashes are always further apart.
        let policy = RestartPolicy::new(Restart::Transient).intensity(1, Duration::from_nanos(1));
        let body = crash_on_command(runs_tx, crash_rx);
        let handle = sup
            .start(projects.session(0))
            .policy(policy)
            .run(body)
            .expect("start");
        assert_eq!(recv_within(&runs, "the first run"), 0);
        for restart in 1..=10 {
            assert_eq!(crash_and_await_restart(&crash, &runs), restart);
        }
        let report = handle.stop().expect("stop");
        assert_eq!(report.reason(), &ExitReason::Stopped);
        assert_eq!(report.restarts(), 10);
    });
}

// ---- what a restart keeps ----

#[test]
fn a_restart_keeps_the_id_the_handle_the_path_and_the_registry_entry() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let (runs_tx, runs) = unbounded();
        let (crash, crash_rx) = unbounded();
        let body = crash_on_command(runs_tx, crash_rx);
        let handle = sup
            .start(projects.session(0))
            .policy(RestartPolicy::default())
            .run(body)
            .expect("start");
        let id = handle.id();
        recv_within(&runs, "the first run");
        // A rename changes the registry entry: it survives only if the entry does.
        sup.rename_session(id, "renamed").expect("rename");
        assert_eq!(crash_and_await_restart(&crash, &runs), 1);

        assert!(
            handle.is_running(),
            "the handle from before the crash still answers"
        );
        assert_eq!(handle.id(), id);
        assert_eq!(sup.find_session(id).expect("find").id(), id);
        assert_eq!(sup.lookup(id).expect("lookup").name(), "renamed");
        assert_eq!(sup.lookup_by_path(projects.path(0)).expect("path").id(), id);
        assert_eq!(sup.lookup_by_name("renamed").expect("name").id(), id);
        assert_eq!(sup.list_ids(), [id]);
        let report = sup
            .stop_session(id)
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
        let sup = common::supervisor();
        let (in_init_tx, in_init) = unbounded();
        let (go, go_rx) = unbounded();
        let body = SlowRestartInit {
            in_init: in_init_tx,
            go: go_rx,
        };
        let handle = sup.start(projects.session(0)).body(body).expect("start");
        assert_eq!(recv_within(&in_init, "the restart's init"), 1);

        let id = handle.id();
        assert!(sup.session_running(id));
        assert_eq!(sup.lookup_by_path(projects.path(0)).expect("path").id(), id);
        let taken = sup.start_session(projects.session(0), |_: &SessionContext| {});
        assert!(
            matches!(taken, Err(Error::ProjectAlreadyOpen { id: owner, .. }) if owner == id),
            "{taken:?}"
        );
        go.send(()).expect("init waits");
        let report = sup.stop_session(id).expect("stop");
        assert_eq!(report.reason(), &ExitReason::Stopped);
        assert_eq!(report.restarts(), 1);
    });
}

#[test]
fn restarts_tells_each_run_how_many_came_before() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let (runs_tx, runs) = unbounded();
        let policy = RestartPolicy::new(Restart::Permanent).intensity(10, HOUR);
        // Returns five times (permanent: each return restarts), then idles.
        let handle = sup
            .start(projects.session(0))
            .policy(policy)
            .run(move |ctx| {
                let _ = runs_tx.send(ctx.restarts());
                if ctx.restarts() == 5 {
                    ctx.wait_for_stop();
                }
            })
            .expect("start");
        for expected in 0..=5 {
            assert_eq!(recv_within(&runs, "the next run"), expected);
        }
        let report = handle.stop().expect("stop");
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
        let sup = Arc::new(common::supervisor());
        let start = Arc::new(Barrier::new(LOOKERS + 1));
        let (settled_tx, settled) = unbounded();
        let policy = RestartPolicy::new(Restart::Permanent).intensity(1000, HOUR);
        let gate = Arc::clone(&start);
        // Crashes 200 times once the lookers run, then idles.
        let handle = sup
            .start(projects.session(0))
            .policy(policy)
            .run(move |ctx| {
                if ctx.restarts() == 0 {
                    gate.wait();
                }
                if ctx.restarts() < 200 {
                    panic!("crash {}", ctx.restarts());
                }
                let _ = settled_tx.send(());
                ctx.wait_for_stop();
            })
            .expect("start");
        let id = handle.id();
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
                        let found = sup.lookup_by_path(&path).map(|s| s.id());
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
        assert_eq!(sup.stop_session(id).expect("stop").restarts(), 200);
    });
}

#[test]
fn a_crashing_session_does_not_disturb_another() {
    guard!(move || {
        let projects = Projects::new(2);
        let sup = common::supervisor();
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
        assert_eq!(sup.list_ids(), [calm.id()]);
        let calm_report = calm.stop().expect("stop");
        assert_eq!(calm_report.reason(), &ExitReason::Stopped);
        assert_eq!(calm_report.restarts(), 0);
    });
}

// ---- the first init ----

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

/// One row of the grid of restart policies against first `init`s that fail.
struct FirstInitUnder {
    restart: Restart,
    /// What `first_init` does, to name the row.
    ending: &'static str,
    first_init: fn() -> Result<(), InitError>,
    /// The reason of the `StartFailed` error.
    reason: &'static str,
}

/// Each restart policy against each way a first `init` fails: the start fails, and the
/// body is never restarted. The rows of the tests this table replaced (both permanent,
/// with an intensity of 10) are marked with their names:
///
/// - `a_first_init_error_fails_the_start_and_leaves_nothing_registered`
/// - `a_first_init_panic_fails_the_start_and_leaves_nothing_registered`
///
/// The other rows complete the grid.
#[rustfmt::skip]
const POLICY_X_FIRST_INIT: [FirstInitUnder; 6] = {
    use Restart::*;
    const fn row(restart: Restart, ending: &'static str, first_init: fn() -> Result<(), InitError>, reason: &'static str) -> FirstInitUnder {
        FirstInitUnder { restart, ending, first_init, reason }
    }
    [
        // a_first_init_error_fails_the_start_and_leaves_nothing_registered
        row(Permanent, "an init error", || Err("no config".into()), "no config"),
        // a_first_init_panic_fails_the_start_and_leaves_nothing_registered
        row(Permanent, "an init panic", || panic!("no config"),     "init panicked: no config"),
        row(Transient, "an init error", || Err("no config".into()), "no config"),
        row(Transient, "an init panic", || panic!("no config"),     "init panicked: no config"),
        row(Temporary, "an init error", || Err("no config".into()), "no config"),
        row(Temporary, "an init panic", || panic!("no config"),     "init panicked: no config"),
    ]
};

/// Starts each row of [`POLICY_X_FIRST_INIT`]: the start fails and leaves nothing
/// registered.
#[test]
fn a_first_init_failure_fails_the_start_and_leaves_nothing_registered_under_each_policy() {
    guard!(move || {
        for row in POLICY_X_FIRST_INIT {
            let case = format!("{:?} body, {}", row.restart, row.ending);
            let projects = Projects::new(1);
            let sup = common::supervisor();
            let (ran_tx, ran) = unbounded();
            let session = projects.session(0);
            let id = session.id();
            let body = FailingFirstInit {
                first_init: row.first_init,
                ran: ran_tx,
            };
            let policy = RestartPolicy::new(row.restart).intensity(10, HOUR);
            let started = sup.start(session).policy(policy).body(body);
            match started {
                Err(Error::StartFailed {
                    id: failed,
                    reason: why,
                }) => {
                    assert_eq!(failed, id, "{case}: the id");
                    assert_eq!(why, row.reason, "{case}: the reason");
                }
                other => panic!("{case}: expected StartFailed, got {other:?}"),
            }
            // Not restarted, even when permanent, and nothing left registered.
            assert!(ran.try_recv().is_err(), "{case}: the body ran");
            assert_eq!(sup.count(), 0, "{case}: count");
            assert!(
                sup.lookup_by_path(projects.path(0)).is_err(),
                "{case}: the path is free"
            );
            let again = sup.start_session(projects.session(0), |_: &SessionContext| {});
            assert!(again.is_ok(), "{case}: the path is free: {again:?}");
        }
    });
}

// ---- exit reasons through stop ----

#[test]
fn stop_reports_stopped_with_the_restart_count_and_run_time() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let (runs_tx, runs) = unbounded();
        let (crash, crash_rx) = unbounded();
        let began = Instant::now();
        let body = crash_on_command(runs_tx, crash_rx);
        let handle = sup
            .start(projects.session(0))
            .policy(RestartPolicy::default())
            .run(body)
            .expect("start");
        recv_within(&runs, "the first run");
        crash_and_await_restart(&crash, &runs);
        crash_and_await_restart(&crash, &runs);
        let report = handle.stop().expect("stop");
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
        let sup = common::supervisor();
        let (inits_tx, inits) = unbounded();
        let policy = RestartPolicy::new(Restart::Permanent).intensity(10, HOUR);
        let body = PanicsWhenStopped { inits: inits_tx };
        let handle = sup
            .start(projects.session(0))
            .policy(policy)
            .body(body)
            .expect("start");
        let report = handle.stop().expect("stop");
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
        let sup = common::builder().stop_timeout(TIMEOUT).build();
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
        let sup = common::builder().stop_timeout(TIMEOUT).build();
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
        let sup = common::builder().stop_timeout(Duration::ZERO).build();
        let session = projects.session(0);
        let (restarting, release) = log_tap::hold(session.id(), "restarting");
        let (inits_tx, inits) = unbounded();
        let handle = sup
            .start(session)
            .body(CountsInits { inits: inits_tx })
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
        let sup = common::supervisor();
        let (in_init_tx, in_init) = unbounded();
        let (runs_tx, runs) = unbounded();
        let body = StopArrivesInRestartInit {
            in_init: in_init_tx,
            runs: runs_tx,
        };
        let handle = sup.start(projects.session(0)).body(body).expect("start");
        recv_within(&in_init, "the restart's init");
        let report = handle.stop().expect("stop");
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
        let sup = common::supervisor();
        let session = projects.session(0);
        // Held in its end-of-session log call, after unregistering itself.
        let (ended, release) = log_tap::hold(session.id(), "ended");
        let (exit_tx, exit) = unbounded();
        let handle = sup
            .start_session(session, move |_| {
                common::signal_on_thread_exit(exit_tx.clone());
            })
            .expect("start");
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
        let sup = Arc::new(common::supervisor());
        let cell = Arc::new(std::sync::OnceLock::new());
        cell.set(Arc::downgrade(&sup)).expect("empty");
        let (ran_tx, ran_rx) = unbounded();
        let body = StopsItselfInInit {
            sup: cell,
            ran: ran_tx,
        };
        let handle = sup.start(projects.session(0)).body(body).unwrap();

        assert!(recv_within(&ran_rx, "run"), "run saw the stop request");
        let report = handle.wait_timeout(TIMEOUT).expect("the session ends");
        assert_eq!(report.reason(), &ExitReason::Stopped);
    });
}
