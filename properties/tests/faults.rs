//! Fault injection: random sessions misbehave in every way user code can (panics in
//! `init` and `run`, in the body's and in queued messages' `Drop`, in a panic payload's
//! `Drop`, in an init error's `Display`), under a random stop timeout (zero, short,
//! or `Duration::MAX`), with a backoff past the clock's range, and with stops racing
//! crashes. After every step:
//!
//! - a session whose thread finished is not registered, and a session that is not
//!   registered any more has no user code left running (its thread-locals are gone);
//! - a failed start left nothing registered.
//!
//! After every case: every started session got exactly one `Started` first and one
//! `Exited` last, a failed start got no event, and the supervisor is empty. After all
//! cases: no thread leaked (`/proc/self/task`).
//!
//! 256 cases by default; `PROPTEST_CASES=10000 cargo test --release --test faults` runs
//! the long version. This file holds one test, so that the thread count is its own.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Once;
use std::time::Duration;

use common::{thread_count, with_watchdog, BadDisplay, Bomb, Projects, EXPECTED, TIMEOUT};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseResult, TestRunner};
use session_supervisor::crossbeam_channel::{unbounded, Receiver, Sender};
use session_supervisor::{
    Error, InitError, ReplyTo, Restart, RestartPolicy, SessionBody, SessionContext, SessionEvent,
    SessionHandle, SessionId, SessionSupervisor,
};

const PATHS: usize = 3;

/// How a session's body misbehaves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    InitPanics,
    /// `init` panics with a payload whose `Drop` panics.
    InitPanicsWithABomb,
    InitFails,
    /// `init` fails with an error whose `Display` panics.
    InitFailsUnprintably,
    /// The first run panics.
    RunPanics,
    /// The body panics when dropped.
    DropPanics,
}

impl Fault {
    fn fails_init(self) -> bool {
        matches!(
            self,
            Fault::InitPanics
                | Fault::InitPanicsWithABomb
                | Fault::InitFails
                | Fault::InitFailsUnprintably
        )
    }
}

#[derive(Clone, Copy, Debug)]
enum Letter {
    Exit,
    Panic,
    /// A message that panics when dropped, by the body or with the mailbox.
    Bomb,
}

#[derive(Clone, Debug)]
enum Op {
    Start {
        path: usize,
        fault: Fault,
        restart: Restart,
        endless_backoff: bool,
    },
    Send {
        path: usize,
        letter: Letter,
    },
    Call {
        path: usize,
        zero_timeout: bool,
    },
    Stop {
        path: usize,
    },
    /// A stop from another thread while the body is told to panic.
    StopDuringCrash {
        path: usize,
    },
}

enum Msg {
    Exit,
    Panic,
    Bomb(#[allow(dead_code)] Bomb),
    Ping(ReplyTo<()>),
}

/// Tells its channel when dropped: with the thread's other thread-locals, when the
/// thread's user code is over.
struct OnExit(Sender<()>);

impl Drop for OnExit {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

thread_local! {
    static ON_EXIT: RefCell<Option<OnExit>> = const { RefCell::new(None) };
}

struct Faulty {
    fault: Fault,
    /// Set for `Fault::DropPanics` by `init`: the body then panics when dropped.
    armed: bool,
    /// Set by `init` on a warm thread: the body's drop then tells `on_exit`.
    tells_on_drop: bool,
    on_exit: Sender<()>,
}

impl Drop for Faulty {
    fn drop(&mut self) {
        if self.tells_on_drop {
            let _ = self.on_exit.send(());
        }
        if self.armed {
            panic!("{EXPECTED}");
        }
    }
}

impl SessionBody<Msg> for Faulty {
    fn init(&mut self, _: &SessionContext<Msg>) -> Result<(), InitError> {
        if common::warm_threads() > 0 {
            // A warm thread outlives its session, and its thread-locals with it (as
            // documented): the body's drop, the session's last user code, tells.
            self.tells_on_drop = true;
        } else {
            let on_exit = OnExit(self.on_exit.clone());
            // Once per thread: `init` runs again on each restart.
            ON_EXIT.with(|slot| {
                slot.borrow_mut().get_or_insert(on_exit);
            });
        }
        // Armed only once it runs: a body refused at admission is dropped by the test.
        self.armed = self.fault == Fault::DropPanics;
        match self.fault {
            Fault::InitPanics => panic!("{EXPECTED}"),
            Fault::InitPanicsWithABomb => std::panic::panic_any(Bomb(true)),
            Fault::InitFails => Err(EXPECTED.into()),
            Fault::InitFailsUnprintably => Err(Box::new(BadDisplay)),
            _ => Ok(()),
        }
    }

    fn run(&mut self, ctx: &SessionContext<Msg>) {
        if self.fault == Fault::RunPanics && ctx.restarts() == 0 {
            panic!("{EXPECTED}");
        }
        while let Some(msg) = ctx.recv() {
            match msg {
                Msg::Exit => return,
                Msg::Panic => panic!("{EXPECTED}"),
                Msg::Bomb(bomb) => drop(bomb),
                Msg::Ping(reply) => reply.send(()),
            }
        }
    }
}

/// The test's view of one session it started.
struct Tracked {
    handle: SessionHandle<Msg>,
    exited: Receiver<()>,
    /// Whether its thread's user code is known to be over.
    user_code_over: bool,
}

impl Tracked {
    fn note_exit(&mut self) -> bool {
        self.user_code_over |= self.exited.try_recv().is_ok();
        self.user_code_over
    }
}

struct Harness {
    projects: Projects,
    sup: SessionSupervisor<Msg>,
    events: session_supervisor::Subscription,
    started: BTreeMap<SessionId, Tracked>,
    failed: Vec<SessionId>,
    /// The newest session started on each path.
    newest: [Option<SessionId>; PATHS],
}

impl Harness {
    fn new(stop_timeout: Duration) -> Harness {
        let sup = common::builder()
            .messages::<Msg>()
            .mailbox_capacity(2)
            .stop_timeout(stop_timeout)
            .build();
        Harness {
            projects: Projects::new(PATHS),
            events: sup.subscribe(),
            sup,
            started: BTreeMap::new(),
            failed: Vec::new(),
            newest: [None; PATHS],
        }
    }

    fn handle(&self, path: usize) -> Option<&SessionHandle<Msg>> {
        self.newest[path].map(|id| &self.started[&id].handle)
    }

    fn step(&mut self, op: &Op) -> TestCaseResult {
        match *op {
            Op::Start {
                path,
                fault,
                restart,
                endless_backoff,
            } => self.start(path, fault, restart, endless_backoff),
            Op::Send { path, letter } => {
                if let Some(handle) = self.handle(path) {
                    send(handle, letter)?;
                }
                Ok(())
            }
            Op::Call { path, zero_timeout } => self.call(path, zero_timeout),
            Op::Stop { path } => self.stop(path),
            Op::StopDuringCrash { path } => self.stop_during_crash(path),
        }
    }

    fn start(
        &mut self,
        path: usize,
        fault: Fault,
        restart: Restart,
        endless: bool,
    ) -> TestCaseResult {
        let session = self.projects.session(path);
        let id = session.id();
        let (on_exit, exited) = unbounded();
        let body = Faulty {
            fault,
            armed: false,
            tells_on_drop: false,
            on_exit,
        };
        let backoff = if endless {
            Duration::MAX
        } else {
            Duration::ZERO
        };
        let policy = RestartPolicy::new(restart).backoff(backoff);
        match self.sup.start(session).policy(policy).body(body) {
            Ok(handle) => {
                prop_assert!(!fault.fails_init(), "{fault:?} started");
                let tracked = Tracked {
                    handle,
                    exited,
                    user_code_over: false,
                };
                self.started.insert(id, tracked);
                self.newest[path] = Some(id);
            }
            Err(Error::StartFailed { .. }) => {
                prop_assert!(fault.fails_init(), "{fault:?} failed to start");
                prop_assert!(
                    !self.sup.session_running(id),
                    "a failed start left its entry"
                );
                prop_assert!(
                    exited.try_recv().is_ok(),
                    "a failed start's user code still runs"
                );
                self.failed.push(id);
            }
            Err(Error::ProjectAlreadyOpen { id: owner, .. }) => {
                prop_assert!(self.started.contains_key(&owner), "unknown owner {owner}");
            }
            Err(other) => prop_assert!(false, "start: {other:?}"),
        }
        Ok(())
    }

    fn call(&self, path: usize, zero_timeout: bool) -> TestCaseResult {
        let Some(handle) = self.handle(path) else {
            return Ok(());
        };
        // Short: a body in a backoff of `Duration::MAX` answers nothing until stopped.
        let timeout = if zero_timeout {
            Duration::ZERO
        } else {
            Duration::from_millis(20)
        };
        match handle.call(Msg::Ping, timeout) {
            Ok(()) | Err(Error::NoReply { .. } | Error::SessionGone { .. }) => {}
            Err(Error::CallTimeout { .. }) => {}
            Err(other) => prop_assert!(false, "call: {other:?}"),
        }
        Ok(())
    }

    fn stop(&mut self, path: usize) -> TestCaseResult {
        let Some(id) = self.newest[path] else {
            return Ok(());
        };
        match self.sup.stop_session(id) {
            Ok(report) => {
                prop_assert_eq!(report.id(), id);
                prop_assert!(!self.sup.session_running(id), "stopped but registered");
                let tracked = self.started.get_mut(&id).expect("tracked");
                prop_assert!(tracked.note_exit(), "stopped but user code runs");
            }
            Err(Error::NotFound { .. }) => prop_assert!(!self.sup.session_running(id)),
            Err(Error::StopTimeout { .. }) => {
                prop_assert!(self.sup.stop_timeout() < TIMEOUT, "no short timeout")
            }
            Err(other) => prop_assert!(false, "stop: {other:?}"),
        }
        Ok(())
    }

    fn stop_during_crash(&mut self, path: usize) -> TestCaseResult {
        let Some(handle) = self.handle(path).cloned() else {
            return Ok(());
        };
        let crash = std::thread::spawn(move || {
            let _ = handle.try_send(Msg::Panic);
        });
        let stopped = self.stop(path);
        crash.join().expect("the crash sender");
        stopped
    }

    /// After every step: a finished thread has no entry, and a gone entry no user code.
    fn check(&mut self) -> TestCaseResult {
        for (&id, tracked) in &mut self.started {
            let finished = !tracked.handle.is_running();
            let registered = self.sup.session_running(id);
            prop_assert!(!(finished && registered), "{id}: finished but registered");
            if !registered {
                prop_assert!(
                    tracked.note_exit(),
                    "{id}: unregistered while user code runs"
                );
            }
        }
        prop_assert!(self.sup.count() <= PATHS);
        Ok(())
    }

    /// After the case: everything ends, and each session's events came in order.
    fn finish(mut self) -> TestCaseResult {
        let report = self.sup.shutdown();
        prop_assert!(report.is_complete() || self.sup.stop_timeout() < TIMEOUT);
        // Also those that ended by themselves: a handle's wait returns once the end
        // guard ran, the `Exited` event published.
        for (id, tracked) in &self.started {
            let ended = tracked.handle.wait_timeout(TIMEOUT);
            prop_assert!(ended.is_some(), "{id} never ended");
        }
        prop_assert_eq!(self.sup.count(), 0);
        for (id, tracked) in &mut self.started {
            prop_assert!(tracked.note_exit(), "{id}: user code runs after shutdown");
        }
        let mut seen: BTreeMap<SessionId, Vec<&'static str>> = BTreeMap::new();
        while let Some(event) = self.events.try_recv() {
            seen.entry(event.id()).or_default().push(kind(&event));
        }
        for id in &self.failed {
            prop_assert!(!seen.contains_key(id), "{id}: events of a failed start");
        }
        for id in self.started.keys() {
            let kinds = seen.remove(id).unwrap_or_default();
            // Each restart is told when its backoff begins and when the body runs
            // again; a stop during the last backoff leaves a `Restarting` alone.
            let restarts = kinds.len().saturating_sub(2) / 2;
            let waited_alone = kinds.len() % 2 == 1;
            let expected: Vec<_> = ["Started"]
                .into_iter()
                .chain(std::iter::repeat_n(["Restarting", "Restarted"], restarts).flatten())
                .chain(waited_alone.then_some("Restarting"))
                .chain(["Exited"])
                .collect();
            prop_assert_eq!(kinds, expected, "{}", id);
        }
        Ok(())
    }
}

fn kind(event: &SessionEvent) -> &'static str {
    match event {
        SessionEvent::Started { .. } => "Started",
        SessionEvent::Restarting { .. } => "Restarting",
        SessionEvent::Restarted { .. } => "Restarted",
        SessionEvent::Exited { .. } => "Exited",
        _ => "unknown",
    }
}

fn send(handle: &SessionHandle<Msg>, letter: Letter) -> TestCaseResult {
    let msg = match letter {
        Letter::Exit => Msg::Exit,
        Letter::Panic => Msg::Panic,
        Letter::Bomb => Msg::Bomb(Bomb(true)),
    };
    if let Err(err) = handle.try_send(msg) {
        let (error, msg) = err.into_parts();
        if let Msg::Bomb(mut bomb) = msg {
            bomb.0 = false;
        }
        let expected = matches!(error, Error::SessionGone { .. } | Error::MailboxFull { .. });
        prop_assert!(expected, "send: {error:?}");
    }
    Ok(())
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        4 => Just(Fault::None),
        1 => Just(Fault::InitPanics),
        1 => Just(Fault::InitPanicsWithABomb),
        1 => Just(Fault::InitFails),
        1 => Just(Fault::InitFailsUnprintably),
        2 => Just(Fault::RunPanics),
        2 => Just(Fault::DropPanics),
    ]
}

fn letter() -> impl Strategy<Value = Letter> {
    prop_oneof![Just(Letter::Exit), Just(Letter::Panic), Just(Letter::Bomb)]
}

fn op() -> impl Strategy<Value = Op> {
    let path = 0..PATHS;
    let restart = prop_oneof![
        Just(Restart::Permanent),
        Just(Restart::Transient),
        Just(Restart::Temporary)
    ];
    prop_oneof![
        4 => (path.clone(), fault(), restart, prop::bool::weighted(0.2)).prop_map(
            |(path, fault, restart, endless_backoff)| Op::Start { path, fault, restart, endless_backoff }
        ),
        4 => (path.clone(), letter()).prop_map(|(path, letter)| Op::Send { path, letter }),
        1 => (path.clone(), any::<bool>()).prop_map(|(path, zero_timeout)| Op::Call { path, zero_timeout }),
        2 => path.clone().prop_map(|path| Op::Stop { path }),
        1 => path.prop_map(|path| Op::StopDuringCrash { path }),
    ]
}

fn stop_timeout() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_millis(1)),
        Just(Duration::MAX)
    ]
}

fn case(timeout: Duration, ops: &[Op]) -> TestCaseResult {
    let mut harness = Harness::new(timeout);
    for op in ops {
        harness.step(op)?;
        harness.check()?;
    }
    harness.finish()
}

fn quiet_expected_panics() {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| {
        let print = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let text = payload.downcast_ref::<String>().map(String::as_str);
            let text = text.or_else(|| payload.downcast_ref::<&str>().copied());
            if text != Some(EXPECTED) && payload.downcast_ref::<Bomb>().is_none() {
                print(info);
            }
        }));
    });
}

#[test]
fn faults_leave_no_entry_no_thread_and_no_event_out_of_place() {
    quiet_expected_panics();
    // 256 cases unless PROPTEST_CASES says otherwise; no regression files.
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    let limit = Duration::from_secs(60).max(Duration::from_millis(50) * config.cases);
    with_watchdog("faults", limit, move || {
        let before = thread_count();
        let mut runner = TestRunner::new(config);
        let strategy = (stop_timeout(), vec(op(), 1..40));
        let result = runner.run(&strategy, |(timeout, ops)| case(timeout, &ops));
        if let Err(err) = result {
            panic!("{err}");
        }
        if let (Some(before), Some(after)) = (before, thread_count()) {
            // A few threads may still be leaving the kernel's list just after their join.
            assert!(
                after <= before + 4,
                "threads: {before} before, {after} after"
            );
        }
    });
}
