//! Per-session supervision trees: children on threads of their own, restarted as their
//! session's strategy says (one-for-all, one-for-one, rest-for-one), stopped newest
//! first before their session's body, found by name, talked to, and refused when a
//! start breaks a rule.
//!
//! Every test names its sessions with a tag of its own ([`Tagged`]) and counts the
//! threads that carry it: the crate names a session's thread after the session and a
//! child's `session/child`, so a test sees its own threads come and go while the other
//! tests of this binary run beside it, which the process's thread count cannot show.
//! `tests/tree_threads.rs`, alone in its binary, checks that count.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::{guard, recv_within, settled_count, threads_named, Projects, EXPECTED, TIMEOUT};
use crossbeam_channel::{unbounded, Receiver, Sender, TryRecvError};
use session_supervisor::{
    stub, ChildHandle, ChildStrategy, Error, ExitReason, ExitReport, InitError, ReplyTo, Restart,
    RestartPolicy, Session, SessionBody, SessionContext, SessionEvent, SessionHandle, SessionId,
    SessionKey, SessionSupervisor, Subscription, SupervisorBuilder, DEFAULT_MAX_CHILDREN,
    MAX_NAME_CHARS,
};

/// An intensity window no test outlasts: every crash of a test falls inside it.
const HOUR: Duration = Duration::from_secs(3600);
/// The stop timeout of the tests with a child that ignores its stop.
const SHORT: Duration = Duration::from_millis(200);
/// The children most tests start, in this order.
const ABC: [&str; 3] = ["a", "b", "c"];

// ---- what the tests send, and what bodies and children tell them ----

/// What the tests send to a session's body and to its children.
enum Msg {
    /// Panics with "NAME crashed" (NAME the child's name, or "body").
    Crash,
    /// Recorded as [`Seen::Note`].
    Note(u32),
    /// Answered with [`identify`].
    Who(ReplyTo<Who>),
    /// Dropped without an answer.
    Silent(ReplyTo<Who>),
    /// Ends the run: the body or child returns.
    Quit,
    /// Starts a child of this name and kind, and answers how that went.
    Spawn(String, Kind, ReplyTo<Result<(), Error>>),
}

/// Who answers a [`Msg::Who`]: the child's name (`None` for the body), the session's id,
/// and how many restarts came before the answering run.
type Who = (Option<String>, SessionId, u32);

/// The children the tests start.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A [`Worker`].
    Worker,
    /// A child whose `init` fails with "no config".
    FailsInit,
    /// A child whose `init` panics with [`EXPECTED`].
    PanicsInInit,
    /// A child made by a factory that panics with [`EXPECTED`].
    FactoryPanics,
}

/// What bodies and children tell the test, in the order they do it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    /// A worker's `init`, or the start of a body's run, with its restart count.
    Init(String, u32),
    /// A run returned: a stop, a rest-for-one park, a one-for-all interrupt or `Quit`.
    Ended(String),
    /// A [`Msg::Note`], with who got it.
    Note(String, u32),
}

fn init(name: &str, restarts: u32) -> Seen {
    Seen::Init(name.to_owned(), restarts)
}

fn ended(name: &str) -> Seen {
    Seen::Ended(name.to_owned())
}

/// The name a body or child records under: the child's name, or "body".
fn me<M>(ctx: &SessionContext<M>) -> &str {
    ctx.child_name().unwrap_or("body")
}

fn identify<M>(ctx: &SessionContext<M>) -> Who {
    let name = ctx.child_name().map(str::to_owned);
    (name, ctx.id(), ctx.restarts())
}

/// A child that records its `init` and the end of each run, and serves messages.
struct Worker {
    seen: Sender<Seen>,
}

impl SessionBody<Msg> for Worker {
    fn init(&mut self, ctx: &SessionContext<Msg>) -> Result<(), InitError> {
        let _ = self.seen.send(init(me(ctx), ctx.restarts()));
        Ok(())
    }

    fn run(&mut self, ctx: &SessionContext<Msg>) {
        serve(ctx, &self.seen);
        let _ = self.seen.send(ended(me(ctx)));
    }
}

struct FailsInit;

impl SessionBody<Msg> for FailsInit {
    fn init(&mut self, _: &SessionContext<Msg>) -> Result<(), InitError> {
        Err("no config".into())
    }

    fn run(&mut self, _: &SessionContext<Msg>) {}
}

struct PanicsInInit;

impl SessionBody<Msg> for PanicsInInit {
    fn init(&mut self, _: &SessionContext<Msg>) -> Result<(), InitError> {
        panic!("{EXPECTED}")
    }

    fn run(&mut self, _: &SessionContext<Msg>) {}
}

/// Starts a child of `kind` from a body's (or, to be refused, a child's) context.
fn spawn(
    ctx: &SessionContext<Msg>,
    name: String,
    kind: Kind,
    seen: &Sender<Seen>,
) -> Result<ChildHandle<Msg>, Error> {
    let child = ctx.start_child(name);
    match kind {
        Kind::Worker => child.body(Worker { seen: seen.clone() }),
        Kind::FailsInit => child.body(FailsInit),
        Kind::PanicsInInit => child.body(PanicsInInit),
        Kind::FactoryPanics => child.factory(|| -> Worker { panic!("{EXPECTED}") }),
    }
}

/// Serves messages until the run ends (a stop, a restart of the tree) or a `Quit`.
fn serve(ctx: &SessionContext<Msg>, seen: &Sender<Seen>) {
    while let Some(message) = ctx.recv() {
        match message {
            Msg::Crash => panic!("{} crashed", me(ctx)),
            Msg::Note(n) => {
                let _ = seen.send(Seen::Note(me(ctx).to_owned(), n));
            }
            Msg::Who(reply) => reply.send(identify(ctx)),
            Msg::Silent(reply) => drop(reply),
            Msg::Quit => return,
            Msg::Spawn(name, kind, reply) => reply.send(spawn(ctx, name, kind, seen).map(drop)),
        }
    }
}

/// A session body that starts a [`Worker`] for each of `children`, in order, records
/// the start of its run, serves messages, and records its end.
fn tree_body(
    children: &'static [&'static str],
    seen: Sender<Seen>,
) -> impl FnMut(&SessionContext<Msg>) + Send + 'static {
    move |ctx: &SessionContext<Msg>| {
        for name in children {
            spawn(ctx, (*name).to_owned(), Kind::Worker, &seen).expect("a worker starts");
        }
        let _ = seen.send(init("body", ctx.restarts()));
        serve(ctx, &seen);
        let _ = seen.send(ended("body"));
    }
}

/// The request that makes a body (or, to be refused, a child) start a child.
fn spawn_request(name: &str, kind: Kind) -> impl FnOnce(ReplyTo<Result<(), Error>>) -> Msg {
    let name = name.to_owned();
    move |reply| Msg::Spawn(name, kind, reply)
}

// ---- fixtures ----

/// Tags handed out so far in this binary.
static TAGS: AtomicUsize = AtomicUsize::new(0);

/// A test's projects, and the tag its sessions are named with (`T007-0`, `T007-1`, ...):
/// its session threads and child threads (`T007-0/a`) carry it, no other test's do.
struct Tagged {
    projects: Projects,
    tag: String,
}

impl Tagged {
    fn new(n: usize) -> Tagged {
        let tag = format!("T{:03}-", TAGS.fetch_add(1, Ordering::Relaxed));
        Tagged {
            projects: Projects::new(n),
            tag,
        }
    }

    /// A new session for project `i`.
    fn session(&self, i: usize) -> Session {
        Session::builder(self.projects.path(i))
            .name(format!("{}{i}", self.tag))
            .build()
            .expect("a valid session")
    }

    /// Asserts that `n` threads carry the tag, where the OS tells (see
    /// [`settled_count`] for why it may read more than once).
    ///
    /// `n` counts the session's own thread (when it runs) and its children's. A warm
    /// thread carries the pool's name instead of the session's: with warm threads on,
    /// only the children's threads carry the tag.
    fn assert_threads(&self, n: usize, when: &str) {
        let n = match common::warm_threads() {
            0 => n,
            _ => n.saturating_sub(1),
        };
        let count = settled_count(|| threads_named(&self.tag), n);
        if let Some(count) = count {
            assert_eq!(count, n, "threads named {}* {when}", self.tag);
        }
    }
}

/// The supervisor of most tests: restarts after a crash, ten times an hour.
fn builder() -> SupervisorBuilder<Msg> {
    let policy = RestartPolicy::new(Restart::Transient).intensity(10, HOUR);
    common::builder().messages::<Msg>().restart_policy(policy)
}

/// A running session of [`tree_body`], with what a test watches it through.
struct Running {
    tagged: Tagged,
    sup: SessionSupervisor<Msg>,
    handle: SessionHandle<Msg>,
    seen: Receiver<Seen>,
    /// Subscribed before the start; its `Started` already read.
    events: Subscription,
}

impl Running {
    /// Starts a session whose body starts `children`, under `strategy` if given (else the
    /// supervisor's), and waits until all of them and the body run.
    fn start(
        builder: SupervisorBuilder<Msg>,
        strategy: Option<ChildStrategy>,
        children: &'static [&'static str],
    ) -> Running {
        let tagged = Tagged::new(1);
        let sup = builder.build();
        let events = sup.subscribe();
        let (seen_tx, seen) = unbounded();
        let start = sup.start(tagged.session(0));
        let start = match strategy {
            Some(strategy) => start.child_strategy(strategy),
            None => start,
        };
        let handle = start
            .run(tree_body(children, seen_tx))
            .expect("the session starts");
        let mut expected: Vec<Seen> = children.iter().map(|c| init(c, 0)).collect();
        expected.push(init("body", 0));
        assert_eq!(next_records(&seen, expected.len()), expected);
        assert!(matches!(
            events.try_recv(),
            Some(SessionEvent::Started { .. })
        ));
        tagged.assert_threads(1 + children.len(), "while the session runs");
        Running {
            tagged,
            sup,
            handle,
            seen,
            events,
        }
    }

    fn id(&self) -> SessionId {
        self.handle.id()
    }

    /// Stops the session and checks that its children ended newest first, then the
    /// body, and that no thread of it is left.
    fn stop(&self) -> ExitReport {
        let children = names(&self.handle.children());
        let report = self.handle.stop().expect("the session stops");
        let mut expected: Vec<Seen> = children.iter().rev().map(|c| ended(c)).collect();
        expected.push(ended("body"));
        let records = next_records(&self.seen, expected.len());
        assert_eq!(records, expected, "children newest first, then the body");
        assert_eq!(report.reason(), &ExitReason::Stopped);
        self.tagged.assert_threads(0, "after the stop");
        report
    }

    /// What a refused start must leave as it was: each child (name, restarts, running),
    /// in start order.
    fn state(&self) -> Vec<(String, u32, bool)> {
        let children = self.handle.children();
        children
            .iter()
            .map(|c| (c.name().to_owned(), c.restarts(), c.is_running()))
            .collect()
    }

    /// Asserts that the children are as `before` said and no thread came or went.
    fn assert_unchanged(&self, before: &[(String, u32, bool)], what: &str) {
        assert_eq!(self.state(), before, "{what}");
        self.tagged.assert_threads(1 + before.len(), what);
    }

    /// Asks the body to start a child and returns its answer.
    fn spawn(&self, name: &str, kind: Kind) -> Result<(), Error> {
        let request = spawn_request(name, kind);
        self.handle
            .call(request, TIMEOUT)
            .expect("the body answers")
    }
}

// ---- small helpers ----

/// The next `n` records, failing if one takes longer than [`TIMEOUT`].
fn next_records(seen: &Receiver<Seen>, n: usize) -> Vec<Seen> {
    (0..n)
        .map(|i| recv_within(seen, &format!("record {} of {n}", i + 1)))
        .collect()
}

/// Skips records until `wanted`.
fn await_record(seen: &Receiver<Seen>, wanted: &Seen) {
    while recv_within(seen, &format!("{wanted:?}")) != *wanted {}
}

fn assert_no_more_records(seen: &Receiver<Seen>) {
    assert_eq!(seen.try_recv(), Err(TryRecvError::Empty));
}

fn names(children: &[ChildHandle<Msg>]) -> Vec<String> {
    children.iter().map(|c| c.name().to_owned()).collect()
}

/// The child of this name among `children`.
fn named<'a>(children: &'a [ChildHandle<Msg>], name: &str) -> &'a ChildHandle<Msg> {
    children
        .iter()
        .find(|c| c.name() == name)
        .unwrap_or_else(|| panic!("no child {name:?}"))
}

/// An event in a line, without the session (each test's supervisor has its own).
fn describe(event: &SessionEvent) -> String {
    match event {
        SessionEvent::Started { .. } => "started".to_owned(),
        SessionEvent::Restarting {
            restarts, reason, ..
        } => format!("restarting {restarts}: {reason}"),
        SessionEvent::Restarted {
            restarts, reason, ..
        } => format!("restarted {restarts}: {reason}"),
        SessionEvent::ChildRestarted {
            child,
            restarts,
            reason,
            ..
        } => format!("{child} restarted {restarts}: {reason}"),
        SessionEvent::ChildExited { child, reason, .. } => format!("{child} exited: {reason}"),
        SessionEvent::Exited { reason, .. } => format!("exited: {reason}"),
        other => format!("{other:?}"),
    }
}

/// Every event published so far, described, without waiting.
fn published(events: &Subscription) -> Vec<String> {
    std::iter::from_fn(|| events.try_recv())
        .map(|event| describe(&event))
        .collect()
}

fn panicked(message: &str) -> ExitReason {
    ExitReason::Panicked {
        message: message.to_owned(),
    }
}

fn assert_child_not_found<T: std::fmt::Debug>(found: Result<T, Error>, id: SessionId, name: &str) {
    match found {
        Err(Error::ChildNotFound { id: of, child }) => assert_eq!((of, child.as_str()), (id, name)),
        other => panic!("expected ChildNotFound for {name:?}, got {other:?}"),
    }
}

fn assert_session_not_found<T: std::fmt::Debug>(found: Result<T, Error>, id: SessionId) {
    match found {
        Err(Error::NotFound {
            key: SessionKey::Id(of),
        }) => assert_eq!(of, id),
        other => panic!("expected NotFound for {id}, got {other:?}"),
    }
}

// ---- strategies: a crash of the first, middle and last of three children ----

/// Crashes the first of `restarted` among three children under an in-place strategy
/// and checks that exactly `restarted` were restarted, in place (same handle, restart
/// counted, a `ChildRestarted` each), and nobody else: not the body, not the others.
fn crash_in_place(strategy: ChildStrategy, restarted: &[&str]) {
    let crashed = restarted[0];
    let tree = Running::start(builder(), Some(strategy), &ABC);
    let before = tree.handle.children();
    named(&before, crashed)
        .send(Msg::Crash)
        .expect("it takes messages");

    // The later ones park newest first; the crashed one restarts, then they do, in order.
    let mut expected: Vec<Seen> = restarted[1..].iter().rev().map(|c| ended(c)).collect();
    expected.extend(restarted.iter().map(|c| init(c, 1)));
    let what = format!("{strategy:?}, {crashed} crashed");
    assert_eq!(next_records(&tree.seen, expected.len()), expected, "{what}");
    let mut events = vec![format!(
        "{crashed} restarted 1: panicked: {crashed} crashed"
    )];
    events.extend(
        restarted[1..]
            .iter()
            .map(|c| format!("{c} restarted 1: stopped on request")),
    );
    assert_eq!(published(&tree.events), events, "{what}");

    for child in &before {
        let restarts = u32::from(restarted.contains(&child.name()));
        let name = child.name().to_owned();
        assert!(child.is_running(), "{what}: {name} runs");
        assert_eq!(child.restarts(), restarts, "{what}: {name}");
        let who = child.call(Msg::Who, TIMEOUT).expect("it answers");
        assert_eq!(who, (Some(name), tree.id(), restarts), "{what}");
    }
    assert_eq!(names(&tree.handle.children()), ABC);
    let body = tree
        .handle
        .call(Msg::Who, TIMEOUT)
        .expect("the body answers");
    assert_eq!(
        body,
        (None, tree.id(), 0),
        "{what}: the body was not restarted"
    );
    tree.tagged.assert_threads(4, "after the restart");
    assert_no_more_records(&tree.seen);
    tree.stop();
}

/// One-for-one: whichever of three children crashes, it alone restarts, in place.
#[test]
fn one_for_one_restarts_only_the_crashed_child_in_place() {
    guard!(|| {
        session_supervisor::quiet_session_panics();
        for restarted in [["a"], ["b"], ["c"]] {
            crash_in_place(ChildStrategy::OneForOne, &restarted);
        }
    });
}

/// Rest-for-one: the crashed child restarts with those started after it (they park
/// newest first and restart in start order after it); those started before run on.
#[test]
fn rest_for_one_restarts_the_crashed_child_then_those_started_after_it() {
    guard!(|| {
        session_supervisor::quiet_session_panics();
        for restarted in [&["a", "b", "c"][..], &["b", "c"], &["c"]] {
            crash_in_place(ChildStrategy::RestForOne, restarted);
        }
    });
}

/// One-for-all, the default: a crashing child ends the body's run and stops the other
/// children newest first; the session restarts, and its body starts new children.
#[test]
fn one_for_all_restarts_the_session_and_starts_all_its_children_anew() {
    guard!(|| {
        session_supervisor::quiet_session_panics();
        for crashed in ABC {
            let tree = Running::start(builder(), None, &ABC);
            let before = tree.handle.children();
            named(&before, crashed)
                .send(Msg::Crash)
                .expect("it takes messages");

            let others: Vec<&str> = ABC.into_iter().rev().filter(|c| *c != crashed).collect();
            let mut expected = vec![ended("body")];
            expected.extend(others.iter().map(|c| ended(c)));
            expected.extend(ABC.iter().map(|c| init(c, 0)));
            expected.push(init("body", 1));
            assert_eq!(
                next_records(&tree.seen, expected.len()),
                expected,
                "{crashed}"
            );
            assert_one_for_all_events(&tree.events, crashed, &others);

            for old in &before {
                let reason = if old.name() == crashed {
                    panicked(&format!("{crashed} crashed"))
                } else {
                    ExitReason::Stopped
                };
                assert!(!old.is_running(), "{crashed}: the old {} ended", old.name());
                let exit = old.exit().expect("it ended");
                assert_eq!((exit.reason(), exit.restarts()), (&reason, 0));
            }
            for name in ABC {
                let new = tree.handle.child(name).expect("started again");
                assert!(new.is_running() && new.restarts() == 0, "{new:?}");
                let who = new.call(Msg::Who, TIMEOUT).expect("it answers");
                assert_eq!(who, (Some(name.to_owned()), tree.id(), 0));
            }
            let body = tree
                .handle
                .call(Msg::Who, TIMEOUT)
                .expect("the body answers");
            assert_eq!(body, (None, tree.id(), 1));
            tree.tagged.assert_threads(4, "after the restart");
            assert_no_more_records(&tree.seen);
            tree.stop();
        }
    });
}

/// The events of a one-for-all restart after `crashed` crashed: each child's end (the
/// others newest first), then the session's restart, its reason naming the child.
fn assert_one_for_all_events(events: &Subscription, crashed: &str, others: &[&str]) {
    let mut events = published(events);
    // The crashed child ends on its own thread, racing the stop of the others.
    let crash = format!("{crashed} exited: panicked: {crashed} crashed");
    let at = events.iter().position(|e| *e == crash);
    let at = at.unwrap_or_else(|| panic!("no {crash:?} in {events:?}"));
    events.remove(at);
    let mut expected: Vec<String> = others
        .iter()
        .map(|c| format!("{c} exited: stopped on request"))
        .collect();
    let why = format!("child {crashed:?} panicked: {crashed} crashed");
    expected.push(format!("restarting 1: panicked: {why}"));
    expected.push(format!("restarted 1: panicked: {why}"));
    assert_eq!(events, expected);
}

/// A crash of the body itself stops its children newest first and restarts the body,
/// whose run starts them again, whatever the strategy.
#[test]
fn a_crash_of_the_body_stops_its_children_and_restarts_it_under_every_strategy() {
    guard!(|| {
        session_supervisor::quiet_session_panics();
        for strategy in [
            ChildStrategy::OneForAll,
            ChildStrategy::OneForOne,
            ChildStrategy::RestForOne,
        ] {
            let tree = Running::start(builder(), Some(strategy), &ABC);
            let before = tree.handle.children();
            tree.handle
                .send(Msg::Crash)
                .expect("the body takes messages");

            let mut expected = vec![ended("c"), ended("b"), ended("a")];
            expected.extend(ABC.iter().map(|c| init(c, 0)));
            expected.push(init("body", 1));
            assert_eq!(next_records(&tree.seen, 7), expected, "{strategy:?}");
            let events = [
                "c exited: stopped on request",
                "b exited: stopped on request",
                "a exited: stopped on request",
                "restarting 1: panicked: body crashed",
                "restarted 1: panicked: body crashed",
            ];
            assert_eq!(published(&tree.events), events, "{strategy:?}");
            for old in &before {
                let exit = old.exit().expect("it ended");
                assert_eq!(exit.reason(), &ExitReason::Stopped, "{strategy:?}");
                assert!(!old.is_running());
            }
            for new in tree.handle.children() {
                assert!(new.is_running() && new.restarts() == 0, "{new:?}");
            }
            tree.tagged.assert_threads(4, "after the restart");
            tree.stop();
        }
    });
}

/// Every restart of a child counts against its session's intensity, as a restart of
/// the body does: past it the session gives up with `RestartLimit`, its children
/// stopped and its entry gone.
#[test]
fn children_crashing_past_the_intensity_end_the_session_with_restart_limit() {
    guard!(|| {
        session_supervisor::quiet_session_panics();
        for strategy in [
            ChildStrategy::OneForAll,
            ChildStrategy::OneForOne,
            ChildStrategy::RestForOne,
        ] {
            let policy = RestartPolicy::new(Restart::Transient).intensity(2, HOUR);
            let builder = builder().restart_policy(policy).child_strategy(strategy);
            let tree = Running::start(builder, None, &ABC);
            let restarts_the_body = strategy == ChildStrategy::OneForAll;
            for restart in 1..=2 {
                let b = tree.handle.child("b").expect("b runs");
                b.send(Msg::Crash).expect("it takes messages");
                let restarted = if restarts_the_body { "body" } else { "b" };
                await_record(&tree.seen, &init(restarted, restart));
            }
            let last = tree.handle.children();
            named(&last, "b")
                .send(Msg::Crash)
                .expect("it takes messages");

            let report = tree
                .handle
                .wait_timeout(TIMEOUT)
                .expect("the session gave up");
            assert_gave_up(&report, strategy);
            assert_eq!(report.restarts(), if restarts_the_body { 2 } else { 0 });
            assert!(
                last.iter().all(|c| !c.is_running()),
                "{strategy:?}: {last:?}"
            );
            assert_entry_gone(&tree);
            assert_eq!(tree.handle.stop().expect("its report, again"), report);
            tree.tagged.assert_threads(0, "after the session gave up");
        }
    });
}

/// The session ended with `RestartLimit` after two restarts, the last panic b's, and
/// each of its children ended: b crashed, the others stopped newest first.
fn assert_gave_up(report: &ExitReport, strategy: ChildStrategy) {
    match report.reason() {
        ExitReason::RestartLimit {
            restarts: 2,
            last_panic: Some(last),
        } => assert!(
            last.contains("\"b\"") && last.contains("b crashed"),
            "{strategy:?}: {last}"
        ),
        other => panic!("{strategy:?}: expected RestartLimit after 2 restarts, got {other:?}"),
    }
    let children = report.children();
    let ends: Vec<(&str, &ExitReason)> = children.iter().map(|c| (c.name(), c.reason())).collect();
    let stopped: Vec<&str> = ends
        .iter()
        .filter(|(_, reason)| **reason == ExitReason::Stopped)
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(stopped, ["c", "a"], "{strategy:?}: {ends:?}");
    let crashed = panicked("b crashed");
    assert!(ends.contains(&("b", &crashed)), "{strategy:?}: {ends:?}");
    assert_eq!(ends.len(), 3, "{strategy:?}: {ends:?}");
}

/// The session that ended is unregistered: by id, by path, its children, and its
/// last events are each child's end, then its own.
fn assert_entry_gone(tree: &Running) {
    let id = tree.id();
    assert_eq!(tree.sup.count(), 0);
    assert_session_not_found(tree.sup.find_session(id), id);
    assert!(tree
        .sup
        .lookup_by_path(tree.tagged.projects.path(0))
        .is_err());
    assert_session_not_found(tree.sup.find_child(id, "a"), id);
    assert_child_not_found(tree.handle.child("a"), id, "a");
    assert!(tree.handle.children().is_empty());
    let events = published(&tree.events);
    let (exited, children) = events.split_last().expect("events");
    assert!(
        exited.starts_with("exited: gave up after 2 restarts"),
        "{events:?}"
    );
    let ends: Vec<&String> = children.iter().rev().take(3).collect();
    for name in ABC {
        let prefix = format!("{name} exited: ");
        assert!(ends.iter().any(|e| e.starts_with(&prefix)), "{events:?}");
    }
}

/// The restarts of the body and of its children count against one intensity.
#[test]
fn the_body_and_its_children_share_one_restart_intensity() {
    guard!(|| {
        session_supervisor::quiet_session_panics();
        let policy = RestartPolicy::new(Restart::Transient).intensity(2, HOUR);
        let builder = builder().restart_policy(policy);
        let tree = Running::start(builder, Some(ChildStrategy::OneForOne), &ABC);
        tree.handle
            .send(Msg::Crash)
            .expect("the body takes messages");
        await_record(&tree.seen, &init("body", 1));
        let b = tree.handle.child("b").expect("b runs");
        b.send(Msg::Crash).expect("it takes messages");
        await_record(&tree.seen, &init("b", 1));
        b.send(Msg::Crash).expect("it takes messages");

        let report = tree
            .handle
            .wait_timeout(TIMEOUT)
            .expect("the session gave up");
        match report.reason() {
            ExitReason::RestartLimit {
                restarts: 2,
                last_panic: Some(last),
            } => assert!(last.contains("b crashed"), "{last}"),
            other => panic!("expected RestartLimit after 2 restarts, got {other:?}"),
        }
        assert_eq!(report.restarts(), 1, "the body was restarted once");
        tree.handle.stop().expect("its report, again");
        tree.tagged.assert_threads(0, "after the session gave up");
    });
}

/// A child restarted in place keeps its mailbox: a message queued behind the crash is
/// read by its next run.
#[test]
fn a_child_restarted_in_place_keeps_its_mailbox() {
    guard!(|| {
        session_supervisor::quiet_session_panics();
        for strategy in [ChildStrategy::OneForOne, ChildStrategy::RestForOne] {
            let tree = Running::start(builder(), Some(strategy), &ABC);
            let b = tree.handle.child("b").expect("b runs");
            b.send(Msg::Crash).expect("it takes messages");
            b.send(Msg::Note(7)).expect("it takes messages");
            let expected = match strategy {
                ChildStrategy::OneForOne => vec![init("b", 1), Seen::Note("b".into(), 7)],
                // b runs again once c, parked for b's restart, is restarted too.
                _ => vec![
                    ended("c"),
                    init("b", 1),
                    init("c", 1),
                    Seen::Note("b".into(), 7),
                ],
            };
            let records = next_records(&tree.seen, expected.len());
            assert_eq!(records, expected, "{strategy:?}");
            tree.stop();
        }
    });
}

/// A temporary child is never restarted, and its crash touches nobody else, even under
/// one-for-all: it just ends.
#[test]
fn a_temporary_child_that_crashes_just_ends_even_under_one_for_all() {
    guard!(|| {
        session_supervisor::quiet_session_panics();
        let policy = RestartPolicy::new(Restart::Temporary);
        let tree = Running::start(builder().restart_policy(policy), None, &ABC);
        let b = tree.handle.child("b").expect("b runs");
        b.send(Msg::Crash).expect("it takes messages");
        let b_ended =
            |e: &SessionEvent| matches!(e, SessionEvent::ChildExited { child, .. } if child == "b");
        let exited = tree.events.wait_for(b_ended, TIMEOUT).expect("b ended");
        assert_eq!(describe(&exited), "b exited: panicked: b crashed");

        assert_eq!(names(&tree.handle.children()), ["a", "c"]);
        for name in ["a", "c"] {
            let child = tree.handle.child(name).expect("runs on");
            let who = child.call(Msg::Who, TIMEOUT).expect("it answers");
            assert_eq!(who, (Some(name.to_owned()), tree.id(), 0));
        }
        let body = tree
            .handle
            .call(Msg::Who, TIMEOUT)
            .expect("the body answers");
        assert_eq!(body, (None, tree.id(), 0), "the session was not restarted");
        assert_eq!(published(&tree.events), Vec::<String>::new());
        assert_no_more_records(&tree.seen);
        tree.stop();
    });
}

/// A permanent child that returns is restarted in place, and its `ChildRestarted` says
/// how its run ended: it returned.
#[test]
fn a_permanent_child_that_returns_is_restarted_and_said_to_have_returned() {
    guard!(|| {
        let policy = RestartPolicy::new(Restart::Permanent).intensity(10, HOUR);
        let builder = builder().restart_policy(policy);
        let tree = Running::start(builder, Some(ChildStrategy::OneForOne), &ABC);
        let b = tree.handle.child("b").expect("b runs");
        b.send(Msg::Quit).expect("it takes messages");
        assert_eq!(next_records(&tree.seen, 2), [ended("b"), init("b", 1)]);
        assert_eq!(b.restarts(), 1);
        assert_eq!(
            published(&tree.events),
            ["b restarted 1: returned normally"]
        );
        tree.stop();
    });
}

// ---- stops ----

/// How a test stops its session.
#[derive(Clone, Copy, Debug)]
enum StopBy {
    Handle,
    Supervisor,
    Shutdown,
    Drop,
}

/// A body that starts children `a` to `d` (each records its end once stopped), records
/// the start of its run, waits for its stop, then records how many of those children
/// still run and how a start of one more went.
fn counts_children_at_end(seen: Sender<Seen>) -> impl FnMut(&SessionContext<Msg>) + Send {
    move |ctx: &SessionContext<Msg>| {
        let children: Vec<_> = ["a", "b", "c", "d"]
            .into_iter()
            .map(|name| {
                let seen = seen.clone();
                ctx.spawn_child(name, move |child| {
                    child.wait_for_stop();
                    let _ = seen.send(ended(me(child)));
                })
                .expect("a child starts")
            })
            .collect();
        let _ = seen.send(init("body", 0));
        ctx.wait_for_stop();
        let running = children.iter().filter(|c| c.is_running()).count();
        let late = match ctx.spawn_child("late", |_| {}) {
            Err(Error::SessionGone { .. }) => "refused".to_owned(),
            other => format!("{other:?}"),
        };
        let at_end = format!("body: {running} children running, a late start {late}");
        let _ = seen.send(ended(&at_end));
    }
}

/// However a stop comes, the children stop newest first, each once the one started
/// after it ended, and only then does the body's run end: it sees none of them running,
/// and can start no more.
#[test]
fn a_stop_ends_the_children_newest_first_then_the_body() {
    guard!(|| {
        for way in [
            StopBy::Handle,
            StopBy::Supervisor,
            StopBy::Shutdown,
            StopBy::Drop,
        ] {
            let tagged = Tagged::new(1);
            let sup = builder().build();
            let events = sup.subscribe();
            let (seen_tx, seen) = unbounded();
            let handle = sup
                .start_session(tagged.session(0), counts_children_at_end(seen_tx))
                .expect("the session starts");
            assert_eq!(next_records(&seen, 1), [init("body", 0)]);
            tagged.assert_threads(5, "while the session runs");

            let report = stop(sup, &handle, way);
            let expected = [
                ended("d"),
                ended("c"),
                ended("b"),
                ended("a"),
                ended("body: 0 children running, a late start refused"),
            ];
            assert_eq!(next_records(&seen, 5), expected, "{way:?}");
            if let Some(report) = report {
                let children = report.children();
                let ends: Vec<_> = children
                    .iter()
                    .map(|c| (c.name(), c.reason(), c.restarts(), c.lingered()))
                    .collect();
                let stopped = |name| (name, &ExitReason::Stopped, 0, false);
                let expected = ["d", "c", "b", "a"].map(stopped);
                assert_eq!(ends, expected, "{way:?}");
            }
            let expected = [
                "started",
                "d exited: stopped on request",
                "c exited: stopped on request",
                "b exited: stopped on request",
                "a exited: stopped on request",
                "exited: stopped on request",
            ];
            assert_eq!(published(&events), expected, "{way:?}");
            tagged.assert_threads(0, &format!("after the stop by {way:?}"));
        }
    });
}

/// Stops the session as `way` says, then drops the supervisor; the report, if that way
/// gives one.
fn stop(
    sup: SessionSupervisor<Msg>,
    handle: &SessionHandle<Msg>,
    way: StopBy,
) -> Option<ExitReport> {
    match way {
        StopBy::Handle => Some(handle.stop().expect("stopped")),
        StopBy::Supervisor => Some(sup.stop_session(handle.id()).expect("stopped")),
        StopBy::Shutdown => {
            let shutdown = sup.shutdown();
            assert!(shutdown.is_complete(), "{shutdown:?}");
            assert_eq!(shutdown.exited().len(), 1, "{shutdown:?}");
            shutdown.exited().first().cloned()
        }
        // Dropping the supervisor shuts it down and joins every thread.
        StopBy::Drop => None,
    }
}

/// A body that starts worker `a`, then `stuck` (which ignores its stop: it returns only
/// once `gate` is released or dropped), then worker `c`, and serves messages.
fn with_stuck_child(gate: Receiver<()>, seen: Sender<Seen>) -> impl FnMut(&SessionContext<Msg>) {
    move |ctx: &SessionContext<Msg>| {
        spawn(ctx, "a".into(), Kind::Worker, &seen).expect("a starts");
        let (gate, stuck_seen) = (gate.clone(), seen.clone());
        ctx.spawn_child("stuck", move |_| {
            let _ = gate.recv();
            let _ = stuck_seen.send(ended("stuck"));
        })
        .expect("stuck starts");
        spawn(ctx, "c".into(), Kind::Worker, &seen).expect("c starts");
        serve(ctx, &seen);
        let _ = seen.send(ended("body"));
    }
}

fn assert_stop_timeout_of_stuck(stopped: Result<ExitReport, Error>, id: SessionId) {
    match stopped {
        Err(Error::Child {
            id: of,
            child,
            error,
        }) => {
            assert_eq!((of, child.as_str()), (id, "stuck"));
            assert!(
                matches!(*error, Error::StopTimeout { id: of, timeout } if of == id && timeout == SHORT),
                "{error:?}"
            );
        }
        other => panic!("expected the stuck child's StopTimeout, got {other:?}"),
    }
}

/// A child that ignores its stop keeps its session, and the session's directory, past
/// the stop timeout: the stop fails naming it, the children before it keep running
/// until it ends, and its end is reported as lingered.
#[test]
fn a_lingering_child_keeps_its_session_until_it_ends() {
    guard!(|| {
        let tagged = Tagged::new(1);
        let sup = builder().stop_timeout(SHORT).build();
        let (gate_tx, gate) = unbounded::<()>();
        let (seen_tx, seen) = unbounded();
        let body = with_stuck_child(gate, seen_tx);
        let handle = sup.start_session(tagged.session(0), body).expect("starts");
        let id = handle.id();
        assert_eq!(next_records(&seen, 2), [init("a", 0), init("c", 0)]);
        let children = handle.children();

        assert_stop_timeout_of_stuck(handle.stop(), id);
        // c, the newest, stopped; stuck ignores its stop, so a is not asked yet.
        assert_eq!(next_records(&seen, 1), [ended("c")]);
        let running: Vec<bool> = children.iter().map(ChildHandle::is_running).collect();
        assert_eq!(running, [true, true, false]);
        assert_eq!(names(&handle.children()), ["a", "stuck"]);
        assert!(handle.is_running() && handle.stop_requested());
        assert_eq!(sup.find_session(id).expect("still registered").id(), id);
        let path = tagged.projects.path(0);
        assert_eq!(
            sup.lookup_by_path(&path).expect("still registered").id(),
            id
        );
        match sup.start_session(tagged.session(0), stub::idle()) {
            Err(Error::ProjectAlreadyOpen { id: of, .. }) => assert_eq!(of, id),
            other => panic!("expected ProjectAlreadyOpen, got {other:?}"),
        }
        // A second stop times out the same way; by its end, stuck has outlasted a
        // whole stop timeout since its own stop was asked.
        assert_stop_timeout_of_stuck(sup.stop_session(id), id);
        tagged.assert_threads(3, "while stuck lingers");
        assert_no_more_records(&seen);

        drop(gate_tx);
        let report = handle
            .wait_timeout(TIMEOUT)
            .expect("ends once stuck is released");
        assert_eq!(
            next_records(&seen, 3),
            [ended("stuck"), ended("a"), ended("body")]
        );
        assert_eq!(report.reason(), &ExitReason::Stopped);
        let ends: Vec<_> = report
            .children()
            .iter()
            .map(|c| (c.name(), c.reason(), c.lingered()))
            .collect();
        let stopped = &ExitReason::Stopped;
        let expected = [
            ("c", stopped, false),
            ("stuck", stopped, true),
            ("a", stopped, false),
        ];
        assert_eq!(ends, expected);
        assert!(children[1].exit().expect("it ended").lingered());
        assert_eq!(handle.stop().expect("its report, again"), report);

        let again = sup.start_session(tagged.session(0), stub::idle());
        let again = again.expect("the directory is free again");
        again.stop().expect("stops");
        tagged.assert_threads(0, "after the end");
    });
}

// ---- a child's start failing inside init ----

/// What a [`FailsAfterChildren`] body's `init` saw: the first child, and how the start
/// of the second went.
type Starts = (ChildHandle<Msg>, Result<ChildHandle<Msg>, Error>);

/// A body whose `init` starts worker `a`, then tries to start `second`, reports both
/// outcomes, and fails with the second's error (or says it started).
struct FailsAfterChildren {
    second: (&'static str, Kind),
    seen: Sender<Seen>,
    out: Sender<Starts>,
}

impl SessionBody<Msg> for FailsAfterChildren {
    fn init(&mut self, ctx: &SessionContext<Msg>) -> Result<(), InitError> {
        let first = spawn(ctx, "a".into(), Kind::Worker, &self.seen)?;
        let (name, kind) = self.second;
        let second = spawn(ctx, name.into(), kind, &self.seen);
        let reason = match &second {
            Err(err) => err.to_string(),
            Ok(_) => "the second child started".to_owned(),
        };
        let _ = self.out.send((first, second));
        Err(reason.into())
    }

    fn run(&mut self, _: &SessionContext<Msg>) {}
}

/// One way a second child's start fails in `init`.
struct FailedSpawn {
    second: (&'static str, Kind),
    max_children: usize,
    fits: fn(&Error) -> bool,
}

fn failed_spawns() -> [FailedSpawn; 5] {
    fn failed_start(err: &Error, why: fn(&str) -> bool) -> bool {
        match err {
            Error::Child { child, error, .. } if child == "b" => {
                matches!(&**error, Error::StartFailed { reason, .. } if why(reason))
            }
            _ => false,
        }
    }
    fn row(second: (&'static str, Kind), fits: fn(&Error) -> bool) -> FailedSpawn {
        FailedSpawn {
            second,
            max_children: DEFAULT_MAX_CHILDREN,
            fits,
        }
    }
    [
        row(("b", Kind::FailsInit), |e| {
            failed_start(e, |r| r == "no config")
        }),
        row(("b", Kind::PanicsInInit), |e| {
            failed_start(e, |r| r.contains(EXPECTED))
        }),
        row(("b", Kind::FactoryPanics), |e| {
            failed_start(e, |r| r.contains(EXPECTED))
        }),
        row(
            ("a", Kind::Worker),
            |e| matches!(e, Error::ChildExists { child, .. } if child == "a"),
        ),
        FailedSpawn {
            second: ("b", Kind::Worker),
            max_children: 1,
            fits: |e| matches!(e, Error::ChildLimitReached { max: 1, .. }),
        },
    ]
}

/// Starts a session whose `init` starts a child, fails to start a second, and fails:
/// the start fails; the child that started was stopped and joined before it returned.
fn start_failing_after_a_child(
    tagged: &Tagged,
    sup: &SessionSupervisor<Msg>,
    second: (&'static str, Kind),
) -> (ChildHandle<Msg>, Error, Receiver<Seen>) {
    let (seen_tx, seen) = unbounded();
    let (out_tx, out) = unbounded();
    let body = FailsAfterChildren {
        second,
        seen: seen_tx,
        out: out_tx,
    };
    let failed = sup.start(tagged.session(0)).body(body);
    let (first, refused) = recv_within(&out, "what init saw");
    let refused = refused.expect_err("the second child is refused");
    match failed {
        Err(Error::StartFailed { reason, .. }) => assert_eq!(reason, refused.to_string()),
        other => panic!("expected StartFailed, got {other:?}"),
    }
    (first, refused, seen)
}

/// A session's `init` that fails after starting a child (its second child's start
/// failed: its `init` failed or panicked, its factory panicked, its name was taken, the
/// limit was reached) fails the start, and the start returns only once the child that
/// did start was stopped and its thread joined: nothing of the session is left.
#[test]
fn a_child_failing_to_start_in_init_leaves_no_child_and_no_thread() {
    guard!(|| {
        session_supervisor::quiet_session_panics();
        for row in failed_spawns() {
            let tagged = Tagged::new(1);
            let sup = builder().max_children(row.max_children).build();
            let (first, refused, seen) = start_failing_after_a_child(&tagged, &sup, row.second);
            let what = format!("{:?}", row.second);
            assert!((row.fits)(&refused), "{what}: {refused:?}");
            assert!(!first.is_running(), "{what}");
            let exit = first.exit().expect("a ended");
            assert_eq!(exit.reason(), &ExitReason::Stopped, "{what}");
            assert_eq!(next_records(&seen, 2), [init("a", 0), ended("a")], "{what}");
            // Nothing more can come: every body and child that could tell is gone.
            assert_eq!(seen.try_recv(), Err(TryRecvError::Disconnected), "{what}");
            tagged.assert_threads(0, &format!("after the failed start, {what}"));
            assert_eq!(sup.count(), 0);
            let again = sup.start_session(tagged.session(0), stub::idle());
            again.expect("the directory is free").stop().expect("stops");
        }
    });
}

/// A start that fails publishes no event (as `SessionEvent` documents), not even for the
/// children its `init` started before failing.
#[test]
fn a_failed_start_publishes_no_event_for_the_children_it_started() {
    guard!(|| {
        let tagged = Tagged::new(1);
        let sup = builder().build();
        let events = sup.subscribe();
        let second = ("b", Kind::FailsInit);
        let _ = start_failing_after_a_child(&tagged, &sup, second);
        assert_eq!(published(&events), Vec::<String>::new());
        tagged.assert_threads(0, "after the failed start");
    });
}

// ---- finding children ----

/// Children are found by name from outside the session, by the supervisor and by the
/// session's handle, and listed in start order; a child that ended is not found, and
/// a child started later comes last.
#[test]
fn children_are_found_by_name_and_listed_in_start_order() {
    guard!(|| {
        let tree = Running::start(builder(), None, &ABC);
        let id = tree.id();
        assert_eq!(names(&tree.handle.children()), ABC);
        for name in ABC {
            for found in [tree.sup.find_child(id, name), tree.handle.child(name)] {
                let found = found.expect("found");
                assert_eq!((found.name(), found.session_id()), (name, id));
                assert!(found.is_running() && found.restarts() == 0, "{found:?}");
                let who = found.call(Msg::Who, TIMEOUT).expect("it answers");
                assert_eq!(who, (Some(name.to_owned()), id, 0));
            }
        }
        assert_child_not_found(tree.sup.find_child(id, "nobody"), id, "nobody");
        assert_child_not_found(tree.handle.child("nobody"), id, "nobody");
        let stranger = SessionId::new();
        assert_session_not_found(tree.sup.find_child(stranger, "a"), stranger);

        // b returns: under the default policy a child that returns just ends.
        let b = tree.handle.child("b").expect("found");
        b.send(Msg::Quit).expect("it takes messages");
        let b_ended =
            |e: &SessionEvent| matches!(e, SessionEvent::ChildExited { child, .. } if child == "b");
        let exited = tree.events.wait_for(b_ended, TIMEOUT).expect("b ended");
        assert_eq!(describe(&exited), "b exited: returned normally");
        assert_eq!(next_records(&tree.seen, 1), [ended("b")]);
        assert_child_not_found(tree.sup.find_child(id, "b"), id, "b");
        assert_child_not_found(tree.handle.child("b"), id, "b");
        assert_eq!(names(&tree.handle.children()), ["a", "c"]);

        tree.spawn("b", Kind::Worker)
            .expect("the name is free again");
        assert_eq!(next_records(&tree.seen, 1), [init("b", 0)]);
        assert_eq!(names(&tree.handle.children()), ["a", "c", "b"]);
        assert_eq!(
            b.exit().expect("the old b ended").reason(),
            &ExitReason::Normal
        );

        tree.stop();
        assert_session_not_found(tree.sup.find_child(id, "a"), id);
        assert_child_not_found(tree.handle.child("a"), id, "a");
        assert!(tree.handle.children().is_empty());
    });
}

// ---- messages and calls ----

/// A child has a mailbox of its own, apart from its session's: sends, try-sends and
/// calls reach it, and its context says whose it is. Once it ended, each fails naming
/// it, handing the message back.
#[test]
fn messages_and_calls_reach_a_child_and_fail_naming_it_once_it_ended() {
    guard!(|| {
        let tree = Running::start(builder(), None, &["a", "b"]);
        let id = tree.id();
        let a = tree.handle.child("a").expect("found");
        a.send(Msg::Note(1)).expect("sent");
        a.try_send(Msg::Note(2)).expect("sent");
        tree.handle.send(Msg::Note(3)).expect("sent to the body");
        let mut notes = next_records(&tree.seen, 3);
        notes.sort_by_key(|seen| format!("{seen:?}"));
        let note = |name: &str, n| Seen::Note(name.to_owned(), n);
        assert_eq!(notes, [note("a", 1), note("a", 2), note("body", 3)]);

        assert_eq!(
            a.call(Msg::Who, TIMEOUT).unwrap(),
            (Some("a".into()), id, 0)
        );
        let b = tree.sup.find_child(id, "b").expect("found");
        assert_eq!(
            b.call(Msg::Who, TIMEOUT).unwrap(),
            (Some("b".into()), id, 0)
        );
        assert_eq!(tree.handle.call(Msg::Who, TIMEOUT).unwrap(), (None, id, 0));
        assert_child_error(a.call(Msg::Silent, TIMEOUT), id, "a", |e| {
            matches!(e, Error::NoReply { .. })
        });

        a.send(Msg::Quit).expect("it takes messages");
        let a_ended =
            |e: &SessionEvent| matches!(e, SessionEvent::ChildExited { child, .. } if child == "a");
        tree.events.wait_for(a_ended, TIMEOUT).expect("a ended");
        let gone = |e: &Error| matches!(e, Error::SessionGone { .. });
        let refused = a.send(Msg::Note(4)).expect_err("a ended");
        assert!(
            is_child_error(refused.error(), id, "a", gone),
            "{refused:?}"
        );
        assert!(matches!(refused.into_message(), Msg::Note(4)));
        let (error, message) = a.try_send(Msg::Note(5)).expect_err("a ended").into_parts();
        assert!(is_child_error(&error, id, "a", gone), "{error:?}");
        assert!(matches!(message, Msg::Note(5)));
        assert_child_error(a.call(Msg::Who, TIMEOUT), id, "a", gone);
        let exit = a.exit().expect("a ended");
        let exit = (exit.name(), exit.reason(), exit.restarts(), exit.lingered());
        assert_eq!(exit, ("a", &ExitReason::Normal, 0, false));

        assert_eq!(
            b.call(Msg::Who, TIMEOUT).unwrap(),
            (Some("b".into()), id, 0)
        );
        assert_eq!(next_records(&tree.seen, 1), [ended("a")]);
        tree.stop();
        let refused = b.send(Msg::Note(6)).expect_err("b was stopped");
        assert!(
            is_child_error(refused.error(), id, "b", gone),
            "{refused:?}"
        );
    });
}

fn is_child_error(err: &Error, id: SessionId, name: &str, inner: fn(&Error) -> bool) -> bool {
    matches!(err, Error::Child { id: of, child, error } if *of == id && child == name && inner(error))
}

fn assert_child_error<T: std::fmt::Debug>(
    result: Result<T, Error>,
    id: SessionId,
    name: &str,
    inner: fn(&Error) -> bool,
) {
    match result {
        Err(err) if is_child_error(&err, id, name, inner) => {}
        other => panic!("expected an error of child {name:?}, got {other:?}"),
    }
}

/// A child's bounded mailbox fills on its own, apart from its session's: a try-send then
/// fails naming the child and hands the message back, and a call finds no room in time.
#[test]
fn a_full_child_mailbox_refuses_messages_naming_the_child() {
    guard!(|| {
        let tagged = Tagged::new(1);
        let sup = builder().mailbox_capacity(1).build();
        let (gate_tx, gate) = unbounded::<()>();
        let (seen_tx, seen) = unbounded();
        let body = move |ctx: &SessionContext<Msg>| {
            let (gate, child_seen) = (gate.clone(), seen_tx.clone());
            ctx.spawn_child("slow", move |child| {
                // Reads nothing until released.
                let _ = gate.recv();
                serve(child, &child_seen);
            })
            .expect("slow starts");
            let _ = seen_tx.send(init("body", 0));
            serve(ctx, &seen_tx);
        };
        let handle = sup.start_session(tagged.session(0), body).expect("starts");
        let id = handle.id();
        assert_eq!(next_records(&seen, 1), [init("body", 0)]);
        let slow = handle.child("slow").expect("found");

        slow.try_send(Msg::Note(1)).expect("room for one");
        let (error, message) = slow.try_send(Msg::Note(2)).expect_err("full").into_parts();
        let full = |e: &Error| matches!(e, Error::MailboxFull { .. });
        assert!(is_child_error(&error, id, "slow", full), "{error:?}");
        assert!(matches!(message, Msg::Note(2)));
        let timed_out = |e: &Error| matches!(e, Error::CallTimeout { .. });
        let call = slow.call(Msg::Who, Duration::from_millis(20));
        assert_child_error(call, id, "slow", timed_out);
        handle
            .try_send(Msg::Note(3))
            .expect("the body's mailbox has room");

        gate_tx.send(()).expect("slow waits");
        let mut notes = next_records(&seen, 2);
        notes.sort_by_key(|seen| format!("{seen:?}"));
        let expected = [Seen::Note("body".into(), 3), Seen::Note("slow".into(), 1)];
        assert_eq!(notes, expected);
        handle.stop().expect("stops");
        tagged.assert_threads(0, "after the stop");
    });
}

// ---- lookups racing crashes ----

/// Threads looking children up while they crash and restart.
const LOOKERS: usize = 64;
/// Crashes during the race, spread over the three children.
const RACE_CRASHES: usize = 24;
/// The names looked up in the race: the children, and one no child has.
const LOOKED_UP: [&str; 4] = ["a", "b", "c", "nobody"];

/// What the racing threads share.
struct Race {
    sup: SessionSupervisor<Msg>,
    handle: SessionHandle<Msg>,
    strategy: ChildStrategy,
    /// Set before the session's stop is requested. A lookup that still reads it unset
    /// after it returned saw nothing of the stop.
    stopping: AtomicBool,
    done: AtomicBool,
    start: Barrier,
}

/// How the lookups of one thread went.
#[derive(Debug, Default)]
struct Tally {
    found: usize,
    not_found: usize,
}

impl Race {
    /// Looks children up, by the supervisor and by the handle in turn, until `done`.
    fn look_up(&self, first: usize) -> Tally {
        self.start.wait();
        let mut tally = Tally::default();
        let mut n = first;
        while !self.done.load(Ordering::SeqCst) {
            let name = LOOKED_UP[n % LOOKED_UP.len()];
            let by_supervisor = (n / LOOKED_UP.len()) % 2 == 0;
            let found = if by_supervisor {
                self.sup.find_child(self.handle.id(), name)
            } else {
                self.handle.child(name)
            };
            let running = found.as_ref().is_ok_and(ChildHandle::is_running);
            let stopping = self.stopping.load(Ordering::SeqCst);
            self.check(name, found, running, stopping, &mut tally);
            n += 1;
            if n % 4 == 0 {
                // Sixty-four threads on a few cores: let the crashes and restarts run too.
                thread::yield_now();
            }
        }
        tally
    }

    /// A lookup finds the child of that name, or none (a one-for-all restart or the
    /// stop took it out); a child restarted in place is found throughout, running.
    fn check(
        &self,
        name: &str,
        found: Result<ChildHandle<Msg>, Error>,
        running: bool,
        stopping: bool,
        tally: &mut Tally,
    ) {
        let id = self.handle.id();
        let in_place = self.strategy != ChildStrategy::OneForAll && !stopping;
        match found {
            Ok(child) => {
                assert_eq!((child.name(), child.session_id()), (name, id));
                assert!(running || !in_place, "{name} found but ended");
                assert!(
                    running || child.exit().is_some(),
                    "{name} neither runs nor ended"
                );
                tally.found += 1;
            }
            Err(Error::ChildNotFound { id: of, child }) => {
                assert_eq!((of, child.as_str()), (id, name));
                assert!(name == "nobody" || !in_place, "{name} not found");
                tally.not_found += 1;
            }
            Err(Error::NotFound {
                key: SessionKey::Id(of),
            }) if stopping => {
                assert_eq!(of, id);
                tally.not_found += 1;
            }
            Err(other) => panic!("looking up {name}: {other:?}"),
        }
    }
}

/// Crashes the children in turn, each crash once the last one's restart is done.
fn crash_in_turn(race: &Race, seen: &Receiver<Seen>) {
    let mut restarts = [0; 3];
    for k in 0..RACE_CRASHES {
        let i = k % 3;
        let child = race.handle.child(ABC[i]).expect("it runs between crashes");
        child.send(Msg::Crash).expect("it takes messages");
        let done = match race.strategy {
            ChildStrategy::OneForOne => {
                restarts[i] += 1;
                init(ABC[i], restarts[i])
            }
            ChildStrategy::RestForOne => {
                restarts[i..].iter_mut().for_each(|r| *r += 1);
                init("c", restarts[2])
            }
            _ => init("body", u32::try_from(k + 1).expect("few")),
        };
        await_record(seen, &done);
    }
}

/// Lookups from 64 threads race crashes and restarts of the children, then the
/// session's stop: none panics, and each finds a running child or none.
#[test]
fn lookups_racing_crashes_and_restarts_find_a_running_child_or_none() {
    guard!(|| {
        session_supervisor::quiet_session_panics();
        for strategy in [
            ChildStrategy::OneForOne,
            ChildStrategy::RestForOne,
            ChildStrategy::OneForAll,
        ] {
            let tagged = Tagged::new(1);
            let policy = RestartPolicy::new(Restart::Transient).intensity(100, HOUR);
            let sup = builder().restart_policy(policy).build();
            let (seen_tx, seen) = unbounded();
            let start = sup.start(tagged.session(0)).child_strategy(strategy);
            let handle = start.run(tree_body(&ABC, seen_tx)).expect("starts");
            await_record(&seen, &init("body", 0));
            let race = Arc::new(Race {
                sup,
                handle,
                strategy,
                stopping: AtomicBool::new(false),
                done: AtomicBool::new(false),
                start: Barrier::new(LOOKERS + 1),
            });
            let lookers: Vec<_> = (0..LOOKERS)
                .map(|i| {
                    let race = Arc::clone(&race);
                    thread::spawn(move || race.look_up(i))
                })
                .collect();

            race.start.wait();
            crash_in_turn(&race, &seen);
            race.stopping.store(true, Ordering::SeqCst);
            race.handle.stop().expect("stops");
            race.done.store(true, Ordering::SeqCst);
            let tallies: Vec<Tally> = lookers
                .into_iter()
                .map(|looker| {
                    looker
                        .join()
                        .unwrap_or_else(|p| std::panic::resume_unwind(p))
                })
                .collect();
            let found: usize = tallies.iter().map(|t| t.found).sum();
            let not_found: usize = tallies.iter().map(|t| t.not_found).sum();
            assert!(found > 0 && not_found > 0, "{strategy:?}: {tallies:?}");
            tagged.assert_threads(0, &format!("after the race, {strategy:?}"));
        }
    });
}

// ---- starts refused: each changes nothing ----

/// A name a running child has is refused, trimmed as session names are; the child that
/// has it runs on, untouched.
#[test]
fn a_duplicate_child_name_is_refused_and_changes_nothing() {
    guard!(|| {
        let tree = Running::start(builder(), None, &["a"]);
        let before = tree.state();
        for name in ["a", "  a "] {
            match tree.spawn(name, Kind::Worker) {
                Err(Error::ChildExists { id, child }) => {
                    assert_eq!((id, child.as_str()), (tree.id(), "a"))
                }
                other => panic!("{name:?}: expected ChildExists, got {other:?}"),
            }
            tree.assert_unchanged(&before, &format!("{name:?}"));
        }
        let a = tree.handle.child("a").expect("found");
        assert_eq!(
            a.call(Msg::Who, TIMEOUT).unwrap(),
            (Some("a".into()), tree.id(), 0)
        );
        assert_no_more_records(&tree.seen);
        assert_eq!(published(&tree.events), Vec::<String>::new());
        tree.stop();
    });
}

/// Past the limit of running children a start is refused; a child that ended makes
/// room again.
#[test]
fn a_child_past_the_limit_is_refused_and_changes_nothing() {
    guard!(|| {
        for (max, builder) in [
            (2, builder().max_children(2)),
            (DEFAULT_MAX_CHILDREN, builder()),
        ] {
            let tree = Running::start(builder, None, &[]);
            for i in 0..max {
                tree.spawn(&format!("w{i}"), Kind::Worker)
                    .expect("below the limit");
                assert_eq!(next_records(&tree.seen, 1), [init(&format!("w{i}"), 0)]);
            }
            let before = tree.state();
            tree.tagged.assert_threads(1 + max, "at the limit");
            match tree.spawn("one more", Kind::Worker) {
                Err(Error::ChildLimitReached { id, max: limit }) => {
                    assert_eq!((id, limit), (tree.id(), max));
                }
                other => panic!("expected ChildLimitReached, got {other:?}"),
            }
            tree.assert_unchanged(&before, "after the refusal");
            assert_eq!(published(&tree.events), Vec::<String>::new());

            let w0 = tree.handle.child("w0").expect("found");
            w0.send(Msg::Quit).expect("it takes messages");
            let w0_ended = |e: &SessionEvent| matches!(e, SessionEvent::ChildExited { child, .. } if child == "w0");
            tree.events.wait_for(w0_ended, TIMEOUT).expect("w0 ended");
            assert_eq!(next_records(&tree.seen, 1), [ended("w0")]);
            tree.spawn("one more", Kind::Worker).expect("room again");
            assert_eq!(next_records(&tree.seen, 1), [init("one more", 0)]);
            let last = tree.handle.children().last().map(|c| c.name().to_owned());
            assert_eq!(last.as_deref(), Some("one more"));
            tree.stop();
        }
    });
}

/// Only a session's body starts children: a child that tries is refused.
#[test]
fn a_child_starting_a_child_is_refused_and_changes_nothing() {
    guard!(|| {
        let tree = Running::start(builder(), None, &["a"]);
        let before = tree.state();
        let a = tree.handle.child("a").expect("found");
        let refused = a.call(spawn_request("grandchild", Kind::Worker), TIMEOUT);
        match refused.expect("a answers") {
            Err(Error::NestedChild { id, child }) => {
                assert_eq!((id, child.as_str()), (tree.id(), "a"))
            }
            other => panic!("expected NestedChild, got {other:?}"),
        }
        tree.assert_unchanged(&before, "after the refusal");
        assert_no_more_records(&tree.seen);
        assert_eq!(published(&tree.events), Vec::<String>::new());
        tree.stop();
    });
}

/// Child names follow the rules of session names; a name that breaks one is refused.
#[test]
fn an_invalid_child_name_is_refused_and_changes_nothing() {
    guard!(|| {
        let tree = Running::start(builder(), None, &["a"]);
        let before = tree.state();
        let control = "contains control characters";
        let invisible = "contains invisible or layout-changing characters";
        let rows = [
            (String::new(), "empty"),
            ("   ".to_owned(), "empty"),
            ("x".repeat(MAX_NAME_CHARS + 1), "longer than 50 characters"),
            ("a\nb".to_owned(), control),
            ("bell\u{7}".to_owned(), control),
            ("zero\u{200b}width".to_owned(), invisible),
            ("\u{202e}reversed".to_owned(), invisible),
            ("line\u{2028}separator".to_owned(), invisible),
        ];
        for (name, why) in rows {
            match tree.spawn(&name, Kind::Worker) {
                Err(Error::InvalidName {
                    name: given,
                    reason,
                }) => {
                    assert_eq!((given.as_str(), reason), (name.as_str(), why));
                }
                other => panic!("{name:?}: expected InvalidName, got {other:?}"),
            }
            tree.assert_unchanged(&before, &format!("{name:?}"));
        }
        assert_no_more_records(&tree.seen);
        assert_eq!(published(&tree.events), Vec::<String>::new());
        let longest = "y".repeat(MAX_NAME_CHARS);
        tree.spawn(&longest, Kind::Worker)
            .expect("the longest name allowed");
        assert_eq!(next_records(&tree.seen, 1), [init(&longest, 0)]);
        tree.stop();
    });
}

/// A child whose start fails (its `init` fails or panics, its factory panics) is gone
/// when the start returns: its thread joined, its name free, no event of it.
#[test]
fn a_child_failing_to_start_leaves_nothing_and_its_name_free() {
    guard!(|| {
        session_supervisor::quiet_session_panics();
        for kind in [Kind::FailsInit, Kind::PanicsInInit, Kind::FactoryPanics] {
            let tree = Running::start(builder(), None, &["a"]);
            let before = tree.state();
            match tree.spawn("b", kind) {
                Err(Error::Child { id, child, error }) => {
                    assert_eq!((id, child.as_str()), (tree.id(), "b"), "{kind:?}");
                    assert!(
                        matches!(*error, Error::StartFailed { .. }),
                        "{kind:?}: {error:?}"
                    );
                }
                other => panic!("{kind:?}: expected a failed start of b, got {other:?}"),
            }
            tree.assert_unchanged(&before, &format!("{kind:?}"));
            assert_eq!(published(&tree.events), Vec::<String>::new(), "{kind:?}");
            tree.spawn("b", Kind::Worker).expect("the name is free");
            assert_eq!(next_records(&tree.seen, 1), [init("b", 0)]);
            assert_eq!(names(&tree.handle.children()), ["a", "b"]);
            tree.stop();
        }
    });
}
