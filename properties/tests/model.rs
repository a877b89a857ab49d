//! Model-based tests: random sequences of operations on a `SessionRegistry` and on a
//! `SessionSupervisor`, each checked after every step against a plain model built on
//! `BTreeMap`s.
//!
//! Every case works over 4 fixed ids and 4 project directories with a limit of 3
//! sessions, so duplicate ids, taken directories and a full table all happen often.
//! A failing case shrinks to a short list of operations, printed with the failing step.
//!
//! Each property runs 256 cases by default; `PROPTEST_CASES=10000 cargo test --test
//! model` runs the long version.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

use common::{with_watchdog, Projects, GUARD_LIMIT, TIMEOUT};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestCaseResult, TestError, TestRunner};
use session_supervisor::crossbeam_channel::{
    select, unbounded, Receiver, RecvTimeoutError, Sender,
};
use session_supervisor::{
    AdmissionPolicy, Error, ExitReason, ExitReport, Restart, RestartPolicy, Session,
    SessionContext, SessionHandle, SessionId, SessionKey, SessionRegistry, SessionSupervisor,
    MAX_NAME_CHARS,
};

const IDS: usize = 4;
const PATHS: usize = 4;
/// The ids and paths of a case with an evicting policy: more than the limit by more, so
/// that a start with an id and a path of its own often finds the supervisor full.
const SPREAD: usize = 6;
const MAX_SESSIONS: usize = 3;
/// Restarts allowed per session; the window is long enough to hold every restart of a case.
const MAX_RESTARTS: u32 = 2;
const PANIC_MESSAGE: &str = "commanded panic";
/// The idle timeout of a session started to be stopped for idleness: the harness waits
/// for that stop right after the start.
const IDLE_OUT: Duration = Duration::from_millis(1);

/// Names given to sessions: valid ones (one needs a trim, one is 30 two-byte characters,
/// one is exactly 50 characters) and invalid ones (empty, blank, a control character,
/// 51 characters). Every one is also looked up by name after each step.
const NAMES: [&str; 9] = [
    "alpha",
    "beta",
    " beta\t",
    "éééééééééééééééééééééééééééééé",
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwx",
    "",
    "   ",
    "a\nb",
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxy",
];

// ---------------------------------------------------------------------------------
// The world every case shares: ids, directories, and how to spell them.
// ---------------------------------------------------------------------------------

/// A way to write a project directory; all of them name the same project.
#[derive(Clone, Copy, Debug)]
enum Spelling {
    Canonical,
    /// `<dir>/.`
    Dotted,
    /// `<dir>/../<name>`
    Roundabout,
}

/// What a lookup op asks for.
#[derive(Clone, Copy, Debug)]
enum Query {
    Id(usize),
    Path(usize, Spelling),
    /// A directory that does not exist.
    MissingPath,
    Name(usize),
}

struct World {
    ids: Vec<SessionId>,
    /// The canonical path of each project directory.
    paths: Vec<PathBuf>,
    projects: Projects,
}

impl World {
    fn new() -> World {
        let projects = Projects::new(SPREAD);
        World {
            ids: (0..SPREAD).map(|_| SessionId::new()).collect(),
            paths: (0..SPREAD).map(|i| projects.path(i)).collect(),
            projects,
        }
    }

    fn spell(&self, path: usize, spelling: Spelling) -> PathBuf {
        let canonical = &self.paths[path];
        match spelling {
            Spelling::Canonical => canonical.clone(),
            Spelling::Dotted => canonical.join("."),
            Spelling::Roundabout => canonical.join("..").join(path.to_string()),
        }
    }

    fn missing_path(&self) -> PathBuf {
        self.projects.base().join("missing")
    }

    /// Builds a session, checking the builder against the model: `None` if the name is
    /// invalid (and the builder said so).
    fn build(&self, id: usize, path: usize, spelling: Spelling, name: usize) -> Built {
        let given = NAMES[name];
        let built = Session::builder(self.spell(path, spelling))
            .id(self.ids[id])
            .name(given)
            .build();
        let Some(trimmed) = valid_name(given) else {
            let expected = Err(Failure::InvalidName(given.to_owned()));
            prop_assert_eq!(seen(built).map(drop), expected);
            return Ok(None);
        };
        let session = built.map_err(|err| TestCaseError::fail(format!("build: {err}")))?;
        prop_assert_eq!(session.id(), self.ids[id]);
        prop_assert_eq!(session.name(), trimmed);
        prop_assert_eq!(session.project_path(), self.paths[path].as_path());
        prop_assert_eq!(session.created_at(), session.updated_at());
        Ok(Some(session))
    }
}

type Built = Result<Option<Session>, TestCaseError>;

/// The documented name rule: trimmed, 1 to `MAX_NAME_CHARS` characters, no control
/// characters.
fn valid_name(given: &str) -> Option<&str> {
    let trimmed = given.trim();
    let fits = (1..=MAX_NAME_CHARS).contains(&trimmed.chars().count());
    (fits && !trimmed.chars().any(char::is_control)).then_some(trimmed)
}

// ---------------------------------------------------------------------------------
// Errors, made comparable.
// ---------------------------------------------------------------------------------

/// The part of an [`Error`] the model predicts.
#[derive(Clone, Debug, PartialEq)]
enum Failure {
    LimitReached { max: usize },
    Exists(SessionId),
    AlreadyOpen { path: PathBuf, id: SessionId },
    NotFound(SessionKey),
    InvalidName(String),
    ShuttingDown,
    Other(String),
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        match err {
            Error::SessionLimitReached { max } => Failure::LimitReached { max },
            Error::SessionExists { id } => Failure::Exists(id),
            Error::ProjectAlreadyOpen { path, id } => Failure::AlreadyOpen { path, id },
            Error::NotFound { key } => Failure::NotFound(key),
            Error::InvalidName { name, .. } => Failure::InvalidName(name),
            Error::ShuttingDown => Failure::ShuttingDown,
            other => Failure::Other(other.to_string()),
        }
    }
}

fn seen<T>(result: session_supervisor::Result<T>) -> Result<T, Failure> {
    result.map_err(Failure::from)
}

fn not_found_id(id: SessionId) -> Failure {
    Failure::NotFound(SessionKey::Id(id))
}

// ---------------------------------------------------------------------------------
// The model of the table both the registry and the supervisor keep.
// ---------------------------------------------------------------------------------

struct Table {
    max: usize,
    by_id: BTreeMap<SessionId, Session>,
    by_path: BTreeMap<PathBuf, SessionId>,
}

impl Table {
    fn new(max: usize) -> Table {
        Table {
            max,
            by_id: BTreeMap::new(),
            by_path: BTreeMap::new(),
        }
    }

    /// Admission: the limit, then the id, then the path.
    fn admit(&self, session: &Session) -> Result<(), Failure> {
        if self.by_id.len() >= self.max {
            return Err(Failure::LimitReached { max: self.max });
        }
        self.unique(session)
    }

    /// The id, then the path.
    fn unique(&self, session: &Session) -> Result<(), Failure> {
        let path = session.project_path();
        if self.by_id.contains_key(&session.id()) {
            Err(Failure::Exists(session.id()))
        } else if let Some(owner) = self.by_path.get(path) {
            let (path, id) = (path.to_path_buf(), *owner);
            Err(Failure::AlreadyOpen { path, id })
        } else {
            Ok(())
        }
    }

    fn insert(&mut self, session: Session) {
        let path = session.project_path().to_path_buf();
        self.by_path.insert(path, session.id());
        self.by_id.insert(session.id(), session);
    }

    fn remove(&mut self, id: SessionId) -> Option<Session> {
        let session = self.by_id.remove(&id)?;
        self.by_path.remove(session.project_path());
        Some(session)
    }

    /// `update`: the id must be there, the new path must not belong to another session.
    fn update(&mut self, session: Session) -> Result<Session, Failure> {
        let id = session.id();
        if !self.by_id.contains_key(&id) {
            return Err(not_found_id(id));
        }
        let path = session.project_path();
        match self.by_path.get(path) {
            Some(owner) if *owner != id => Err(Failure::AlreadyOpen {
                path: path.to_path_buf(),
                id: *owner,
            }),
            _ => {
                self.remove(id);
                self.insert(session.clone());
                Ok(session)
            }
        }
    }

    fn lookup(&self, id: SessionId) -> Result<Session, Failure> {
        self.by_id.get(&id).cloned().ok_or(not_found_id(id))
    }

    fn lookup_by_path(&self, given: &Path, canonical: Option<&Path>) -> Result<Session, Failure> {
        canonical
            .and_then(|path| self.by_path.get(path))
            .map(|id| self.by_id[id].clone())
            .ok_or_else(|| Failure::NotFound(SessionKey::Path(given.to_path_buf())))
    }

    fn lookup_by_name(&self, name: &str) -> Result<Session, Failure> {
        let found = self.ordered().into_iter().find(|s| s.name() == name);
        found.ok_or_else(|| Failure::NotFound(SessionKey::Name(name.to_owned())))
    }

    /// Oldest first, ties broken by id.
    fn ordered(&self) -> Vec<Session> {
        let mut all: Vec<Session> = self.by_id.values().cloned().collect();
        all.sort_by_key(|s| (s.created_at(), s.id()));
        all
    }
}

/// The lookups the registry and the supervisor share.
trait Lookups {
    fn find(&self, id: SessionId) -> session_supervisor::Result<Session>;
    fn find_path(&self, path: &Path) -> session_supervisor::Result<Session>;
    fn find_name(&self, name: &str) -> session_supervisor::Result<Session>;
    fn all(&self) -> Vec<Session>;
    fn ids(&self) -> Vec<SessionId>;
    fn len(&self) -> usize;
    fn has(&self, id: SessionId) -> bool;
}

impl Lookups for SessionRegistry {
    fn find(&self, id: SessionId) -> session_supervisor::Result<Session> {
        self.lookup(id)
    }
    fn find_path(&self, path: &Path) -> session_supervisor::Result<Session> {
        self.lookup_by_path(path)
    }
    fn find_name(&self, name: &str) -> session_supervisor::Result<Session> {
        self.lookup_by_name(name)
    }
    fn all(&self) -> Vec<Session> {
        self.list_all()
    }
    fn ids(&self) -> Vec<SessionId> {
        self.list_ids()
    }
    fn len(&self) -> usize {
        self.count()
    }
    fn has(&self, id: SessionId) -> bool {
        self.contains(id)
    }
}

impl Lookups for SessionSupervisor {
    fn find(&self, id: SessionId) -> session_supervisor::Result<Session> {
        self.lookup(id)
    }
    fn find_path(&self, path: &Path) -> session_supervisor::Result<Session> {
        self.lookup_by_path(path)
    }
    fn find_name(&self, name: &str) -> session_supervisor::Result<Session> {
        self.lookup_by_name(name)
    }
    fn all(&self) -> Vec<Session> {
        self.list_all()
    }
    fn ids(&self) -> Vec<SessionId> {
        self.list_ids()
    }
    fn len(&self) -> usize {
        self.count()
    }
    fn has(&self, id: SessionId) -> bool {
        self.session_running(id)
    }
}

/// Everything a table answers, against the model: count, both list orders, and a
/// lookup of every id, every directory and every name.
fn check_table(real: &impl Lookups, model: &Table, world: &World) -> TestCaseResult {
    let expected = model.ordered();
    prop_assert_eq!(real.len(), expected.len(), "count");
    let ids: Vec<SessionId> = expected.iter().map(|s| s.id()).collect();
    prop_assert_eq!(real.all(), expected, "list_all");
    prop_assert_eq!(real.ids(), ids, "list_ids");
    for &id in &world.ids {
        let has = model.by_id.contains_key(&id);
        prop_assert_eq!(real.has(id), has, "contains / session_running({})", id);
        prop_assert_eq!(seen(real.find(id)), model.lookup(id), "lookup({})", id);
    }
    for path in &world.paths {
        let expected = model.lookup_by_path(path, Some(path));
        let found = seen(real.find_path(path));
        prop_assert_eq!(found, expected, "lookup_by_path({})", path.display());
    }
    for name in NAMES {
        let found = seen(real.find_name(name));
        prop_assert_eq!(
            found,
            model.lookup_by_name(name),
            "lookup_by_name({:?})",
            name
        );
    }
    Ok(())
}

/// One lookup op, with the spellings and the missing directory the step checks skip.
fn check_query(real: &impl Lookups, model: &Table, world: &World, query: Query) -> TestCaseResult {
    match query {
        Query::Id(id) => {
            let id = world.ids[id];
            prop_assert_eq!(seen(real.find(id)), model.lookup(id));
        }
        Query::Path(path, spelling) => {
            let given = world.spell(path, spelling);
            let expected = model.lookup_by_path(&given, Some(&world.paths[path]));
            prop_assert_eq!(seen(real.find_path(&given)), expected);
        }
        Query::MissingPath => {
            let given = world.missing_path();
            let expected = model.lookup_by_path(&given, None);
            prop_assert_eq!(seen(real.find_path(&given)), expected);
        }
        Query::Name(name) => {
            let name = NAMES[name];
            prop_assert_eq!(seen(real.find_name(name)), model.lookup_by_name(name));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------------

fn id() -> impl Strategy<Value = usize> {
    0..IDS
}

fn path() -> impl Strategy<Value = usize> {
    0..PATHS
}

fn name() -> impl Strategy<Value = usize> {
    0..NAMES.len()
}

fn spelling() -> impl Strategy<Value = Spelling> {
    prop_oneof![
        Just(Spelling::Canonical),
        Just(Spelling::Dotted),
        Just(Spelling::Roundabout),
    ]
}

fn query() -> impl Strategy<Value = Query> {
    prop_oneof![
        id().prop_map(Query::Id),
        (path(), spelling()).prop_map(|(path, spelling)| Query::Path(path, spelling)),
        Just(Query::MissingPath),
        name().prop_map(Query::Name),
    ]
}

// ---------------------------------------------------------------------------------
// Running a property.
// ---------------------------------------------------------------------------------

/// How long a failure may be shrunk, by proptest and then by [`fewest_ops`]: a case
/// that fails by waiting out `TIMEOUT` takes seconds per run.
const SHRINK_BUDGET: Duration = Duration::from_secs(30);

/// 256 cases unless `PROPTEST_CASES` says otherwise (`Config::default` reads it, and
/// `PROPTEST_MAX_SHRINK_TIME`), and no regression files: a failure prints its minimal
/// sequence instead.
fn config() -> Config {
    let default = Config::default();
    let shrink_ms = match default.max_shrink_time {
        0 => SHRINK_BUDGET.as_millis() as u32,
        set => set,
    };
    Config {
        failure_persistence: None,
        max_shrink_time: shrink_ms,
        ..default
    }
}

/// A property over a parameter (the registry's limit, the supervisor's restart rule)
/// and a sequence of ops.
type Property<P, O> = fn(&World, &P, &[O]) -> TestCaseResult;

/// Runs `property` under a watchdog that grows with the case count. On failure, the
/// case proptest shrank is shrunk further (no op can be left out) and printed one op a
/// line, with the ids and paths the indexes stand for.
fn run<P, O, S>(name: &'static str, strategy: fn() -> S, property: Property<P, O>)
where
    S: Strategy<Value = (P, Vec<O>)> + 'static,
    P: Debug + 'static,
    O: Clone + Debug + 'static,
{
    let config = config();
    // Room for the cases (about 10 ms each), then for shrinking a failure.
    let cases = Duration::from_millis(100) * config.cases;
    let limit = GUARD_LIMIT.max(cases) + 3 * SHRINK_BUDGET;
    quiet_commanded_panics();
    with_watchdog(name, limit, move || {
        let world = World::new();
        let mut runner = TestRunner::new(config);
        let result = runner.run(&strategy(), |(param, ops)| property(&world, &param, &ops));
        match result {
            Ok(()) => {}
            Err(TestError::Fail(_, (param, ops))) => {
                let fails = |ops: &[O]| failure(&world, property, &param, ops);
                let ops = fewest_ops(ops, |ops| fails(ops).is_some());
                let why = fails(&ops).unwrap_or_else(|| "passed when run again: flaky".into());
                panic!("{name} failed: {why}\n{}", listing(&world, &param, &ops));
            }
            Err(err) => panic!("{name}: {err}"),
        }
    });
}

/// Keeps the bodies' own panics, thousands per run, off stderr, so that a failure's
/// report stays readable; every other panic is printed as usual.
fn quiet_commanded_panics() {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| {
        let print = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if panic_text(info.payload()) != Some(PANIC_MESSAGE) {
                print(info);
            }
        }));
    });
}

fn panic_text(payload: &(dyn Any + Send)) -> Option<&str> {
    let text = payload.downcast_ref::<&str>().copied();
    text.or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// Runs one case outside proptest: why it fails, or `None` if it passes.
fn failure<P, O>(world: &World, property: Property<P, O>, param: &P, ops: &[O]) -> Option<String> {
    let run = std::panic::catch_unwind(AssertUnwindSafe(|| property(world, param, ops)));
    match run {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(reason(&err)),
        Err(payload) => Some(format!(
            "panicked: {}",
            panic_text(&*payload).unwrap_or("?")
        )),
    }
}

/// Leaves out ops one at a time, as long as the case still fails (and the shrink budget
/// lasts): proptest removes each op at most once, before shrinking the others, which
/// can leave needless ops behind.
fn fewest_ops<O: Clone>(mut ops: Vec<O>, fails: impl Fn(&[O]) -> bool) -> Vec<O> {
    let deadline = Instant::now() + SHRINK_BUDGET;
    let mut i = 0;
    while i < ops.len() && Instant::now() < deadline {
        let mut fewer = ops.clone();
        fewer.remove(i);
        if fails(&fewer) {
            ops = fewer;
            i = 0;
        } else {
            i += 1;
        }
    }
    ops
}

fn listing<P: Debug, O: Debug>(world: &World, param: &P, ops: &[O]) -> String {
    let mut text = format!("minimal failing case: {param:?}, then\n");
    for (i, op) in ops.iter().enumerate() {
        text += &format!("  step {i}: {op:?}\n");
    }
    for (i, id) in world.ids.iter().enumerate() {
        text += &format!("id {i} = {id}\n");
    }
    for (i, path) in world.paths.iter().enumerate() {
        text += &format!("path {i} = {}\n", path.display());
    }
    text
}

/// Runs the ops one by one, checking after each; a failure or a panic names the step
/// and its op.
fn run_steps<O: Debug>(
    ops: &[O],
    mut step: impl FnMut(&O) -> TestCaseResult,
    check: impl Fn() -> TestCaseResult,
) -> TestCaseResult {
    named("before any step", &check)?;
    for (i, op) in ops.iter().enumerate() {
        named(&format!("step {i}, {op:?}"), || step(op))?;
        named(&format!("check after step {i}, {op:?}"), &check)?;
    }
    Ok(())
}

/// Runs `part`, and puts `when` in front of its failure or panic.
fn named(when: &str, part: impl FnOnce() -> TestCaseResult) -> TestCaseResult {
    let why = match std::panic::catch_unwind(AssertUnwindSafe(part)) {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(err)) => reason(&err),
        Err(payload) => format!("panicked: {}", panic_text(&*payload).unwrap_or("?")),
    };
    Err(TestCaseError::fail(format!("{when}: {why}")))
}

/// The message of a failure, without proptest's "Case failed" prefix.
fn reason(err: &TestCaseError) -> String {
    match err {
        TestCaseError::Fail(reason) | TestCaseError::Reject(reason) => reason.message().to_owned(),
    }
}

// ---------------------------------------------------------------------------------
// The registry.
// ---------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum RegistryOp {
    Register {
        id: usize,
        path: usize,
        spelling: Spelling,
        name: usize,
    },
    /// Replaces the session with this id by a freshly built one (new path, name and
    /// creation time).
    Update {
        id: usize,
        path: usize,
        name: usize,
    },
    Unregister {
        id: usize,
    },
    Lookup(Query),
    Clear,
}

fn registry_op() -> impl Strategy<Value = RegistryOp> {
    prop_oneof![
        8 => (id(), path(), spelling(), name()).prop_map(|(id, path, spelling, name)| {
            RegistryOp::Register { id, path, spelling, name }
        }),
        3 => (id(), path(), name()).prop_map(|(id, path, name)| RegistryOp::Update { id, path, name }),
        4 => id().prop_map(|id| RegistryOp::Unregister { id }),
        3 => query().prop_map(RegistryOp::Lookup),
        1 => Just(RegistryOp::Clear),
    ]
}

/// A limit (mostly 3, sometimes anything from 0, which admits nothing, to 4) and the ops.
fn registry_case() -> impl Strategy<Value = (usize, Vec<RegistryOp>)> {
    let max = prop_oneof![3 => Just(MAX_SESSIONS), 1 => 0..=IDS];
    (max, vec(registry_op(), 1..48))
}

fn registry_step(
    registry: &SessionRegistry,
    model: &mut Table,
    world: &World,
    op: &RegistryOp,
) -> TestCaseResult {
    match *op {
        RegistryOp::Register {
            id,
            path,
            spelling,
            name,
        } => {
            let Some(session) = world.build(id, path, spelling, name)? else {
                return Ok(());
            };
            let expected = model.admit(&session).map(|()| session.clone());
            let registered = seen(registry.register(session.clone()));
            prop_assert_eq!(registered, expected.clone(), "register");
            if expected.is_ok() {
                model.insert(session);
            }
        }
        RegistryOp::Update { id, path, name } => {
            let Some(session) = world.build(id, path, Spelling::Canonical, name)? else {
                return Ok(());
            };
            let updated = seen(registry.update(session.clone()));
            prop_assert_eq!(updated, model.update(session), "update");
        }
        RegistryOp::Unregister { id } => {
            let id = world.ids[id];
            prop_assert_eq!(registry.unregister(id), model.remove(id), "unregister");
        }
        RegistryOp::Lookup(query) => check_query(registry, model, world, query)?,
        RegistryOp::Clear => {
            registry.clear();
            *model = Table::new(model.max);
        }
    }
    Ok(())
}

fn registry_property(world: &World, max: &usize, ops: &[RegistryOp]) -> TestCaseResult {
    let max = *max;
    let registry = SessionRegistry::new(max);
    // Shared by the step and the check.
    let model = RefCell::new(Table::new(max));
    run_steps(
        ops,
        |op| registry_step(&registry, &mut model.borrow_mut(), world, op),
        || {
            prop_assert_eq!(registry.max_sessions(), max);
            check_table(&registry, &model.borrow(), world)
        },
    )
}

#[test]
fn registry_matches_its_model() {
    run(
        "registry_matches_its_model",
        registry_case,
        registry_property,
    );
}

// ---------------------------------------------------------------------------------
// The supervisor.
// ---------------------------------------------------------------------------------

/// How a session's body treats commands from the test.
#[derive(Clone, Copy, Debug)]
enum Body {
    /// Acknowledges every command and carries on until stopped.
    Idle,
    /// Returns on `Exit`, panics on `Panic`.
    Obedient,
}

#[derive(Clone, Copy, Debug)]
enum Command {
    Exit,
    Panic,
    /// Marks the session active (`ctx.touch()`).
    Touch,
}

/// What a body tells the test, so that the test waits for events, never for time.
#[derive(Debug, PartialEq)]
enum Ack {
    /// A run of the body began, after this many restarts.
    Running(u32),
    /// An idle body received a command and ignored it.
    Ignored,
    /// The body marked its session active.
    Touched,
}

fn body(
    kind: Body,
    commands: Receiver<Command>,
    acks: Sender<Ack>,
) -> impl FnMut(&SessionContext) + Send + 'static {
    move |ctx: &SessionContext| {
        let _ = acks.send(Ack::Running(ctx.restarts()));
        loop {
            select! {
                recv(ctx.control()) -> _ => if ctx.stop_requested() { return },
                recv(commands) -> command => match (kind, command) {
                    // The test is done with this session: wait for the supervisor's stop.
                    (_, Err(_)) => return ctx.wait_for_stop(),
                    (_, Ok(Command::Touch)) => {
                        ctx.touch();
                        drop(acks.send(Ack::Touched));
                    }
                    (Body::Idle, Ok(_)) => drop(acks.send(Ack::Ignored)),
                    (Body::Obedient, Ok(Command::Exit)) => return,
                    (Body::Obedient, Ok(Command::Panic)) => panic!("{PANIC_MESSAGE}"),
                },
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Start {
        id: usize,
        path: usize,
        spelling: Spelling,
        name: usize,
        body: Body,
        /// Started with a tiny idle timeout: it ends as idle right away.
        idle_out: bool,
    },
    Stop {
        id: usize,
    },
    /// Tells the body to return.
    Exit {
        id: usize,
    },
    /// Tells the body to panic.
    Panic {
        id: usize,
    },
    /// Tells the body to mark its session active.
    Touch {
        id: usize,
    },
    Rename {
        id: usize,
        name: usize,
    },
    Lookup(Query),
    Shutdown,
}

fn body_kind() -> impl Strategy<Value = Body> {
    prop_oneof![1 => Just(Body::Idle), 3 => Just(Body::Obedient)]
}

/// An op; `commands` weighs exits and panics against starts (40) and stops (12).
/// Shutdown is rare: the ops after it only check that nothing starts any more.
fn op(commands: u32, spread: usize) -> impl Strategy<Value = Op> {
    let (id, path) = (0..spread, 0..spread);
    let start = (
        id.clone(),
        path,
        spelling(),
        name(),
        body_kind(),
        prop::bool::weighted(0.15),
    );
    prop_oneof![
        40 => start.prop_map(|(id, path, spelling, name, body, idle_out)| {
            Op::Start { id, path, spelling, name, body, idle_out }
        }),
        24 => id.clone().prop_map(|id| Op::Touch { id }),
        12 => id.clone().prop_map(|id| Op::Stop { id }),
        commands => id.clone().prop_map(|id| Op::Exit { id }),
        commands => id.clone().prop_map(|id| Op::Panic { id }),
        12 => (id, name()).prop_map(|(id, name)| Op::Rename { id, name }),
        8 => query().prop_map(Op::Lookup),
        1 => Just(Op::Shutdown),
    ]
}

/// What the model knows of a running session beyond its metadata.
struct Live {
    /// Start order within the case: `list_sessions` and `shutdown` follow it.
    seq: u64,
    body: Body,
    restarts: u32,
    /// When it was last active, in the order of the case's activities.
    active: u64,
}

/// What a session does next, as the model predicts it and as the test sees it.
#[derive(Debug, PartialEq)]
enum Event {
    Ack(Ack),
    /// The session ended, with this report.
    Ended(Option<(SessionId, ExitReason, u32)>),
    /// Nothing happened within `TIMEOUT`.
    Nothing,
}

/// The supervisor as a plain value.
struct Model {
    table: Table,
    live: BTreeMap<SessionId, Live>,
    next_seq: u64,
    shut_down: bool,
    restart: Restart,
    admission: AdmissionPolicy,
}

impl Model {
    fn new((restart, admission): Param) -> Model {
        Model {
            table: Table::new(limit(admission)),
            live: BTreeMap::new(),
            next_seq: 0,
            shut_down: false,
            restart,
            admission,
        }
    }

    /// Admission: `Ok(Some(victim))` if the start evicts `victim` to make room. An
    /// evicting policy checks the id and the path before the limit.
    fn admit(&self, session: &Session) -> Result<Option<SessionId>, Failure> {
        if self.shut_down {
            return Err(Failure::ShuttingDown);
        }
        if self.admission == AdmissionPolicy::Reject {
            return self.table.admit(session).map(|()| None);
        }
        self.table.unique(session)?;
        if self.table.by_id.len() < self.table.max {
            return Ok(None);
        }
        let victim = match self.admission {
            AdmissionPolicy::EvictIdlest => self
                .live
                .iter()
                .min_by_key(|(_, live)| (live.active, live.seq)),
            _ => self.live.iter().min_by_key(|(_, live)| live.seq),
        };
        let victim = victim.map(|(id, _)| *id);
        victim.map(Some).ok_or(Failure::LimitReached {
            max: self.table.max,
        })
    }

    fn start(&mut self, session: Session, body: Body) {
        let (seq, restarts) = (self.next_seq, 0);
        self.next_seq += 1;
        self.live.insert(
            session.id(),
            Live {
                seq,
                body,
                restarts,
                active: seq,
            },
        );
        self.table.insert(session);
    }

    fn end(&mut self, id: SessionId) {
        self.live.remove(&id);
        self.table.remove(id);
    }

    /// The ids in start order.
    fn started(&self) -> Vec<SessionId> {
        let mut live: Vec<(&SessionId, &Live)> = self.live.iter().collect();
        live.sort_by_key(|(_, live)| live.seq);
        live.into_iter().map(|(id, _)| *id).collect()
    }

    /// What a command to a running session leads to, as its restart policy says.
    fn command(&mut self, id: SessionId, command: Command) -> Event {
        let live = self
            .live
            .get_mut(&id)
            .expect("only running sessions get commands");
        let last_panic = match (live.body, command) {
            (_, Command::Touch) => {
                // After every start and every touch so far.
                live.active = self.next_seq;
                self.next_seq += 1;
                return Event::Ack(Ack::Touched);
            }
            (Body::Idle, _) => return Event::Ack(Ack::Ignored),
            (Body::Obedient, Command::Exit) => None,
            (Body::Obedient, Command::Panic) => Some(PANIC_MESSAGE.to_owned()),
        };
        let restarts = live.restarts;
        let reason = match (self.restart, last_panic) {
            (Restart::Temporary, Some(message)) => ExitReason::Panicked { message },
            (Restart::Temporary | Restart::Transient, None) => ExitReason::Normal,
            (_, last_panic) if restarts == MAX_RESTARTS => ExitReason::RestartLimit {
                restarts,
                last_panic,
            },
            _ => {
                live.restarts += 1;
                return Event::Ack(Ack::Running(live.restarts));
            }
        };
        Event::Ended(Some((id, reason, restarts)))
    }
}

/// The test's ends of one running session.
struct Wires {
    handle: SessionHandle,
    commands: Sender<Command>,
    acks: Receiver<Ack>,
}

impl Wires {
    /// Waits for the session's next ack or its end: the body holds the only ack sender,
    /// and the session thread drops the body once it will not run it again.
    fn next_event(&self) -> Event {
        match self.acks.recv_timeout(TIMEOUT) {
            Ok(ack) => Event::Ack(ack),
            Err(RecvTimeoutError::Disconnected) => {
                let report = self.handle.wait_timeout(TIMEOUT);
                Event::Ended(report.map(|report| summary(&report)))
            }
            Err(RecvTimeoutError::Timeout) => Event::Nothing,
        }
    }
}

/// The real supervisor, the model, and the wires to each running session.
struct Harness<'w> {
    world: &'w World,
    sup: SessionSupervisor,
    model: Model,
    wires: BTreeMap<SessionId, Wires>,
}

/// An exit report, reduced to what the model predicts.
fn summary(report: &ExitReport) -> (SessionId, ExitReason, u32) {
    (report.id(), report.reason().clone(), report.restarts())
}

impl<'w> Harness<'w> {
    fn new(world: &'w World, param: Param) -> Harness<'w> {
        let (restart, admission) = param;
        let policy = RestartPolicy::new(restart).intensity(MAX_RESTARTS, Duration::from_secs(3600));
        let sup = common::builder()
            .max_sessions(limit(admission))
            .stop_timeout(TIMEOUT)
            .restart_policy(policy)
            .admission(admission)
            .build();
        Harness {
            world,
            sup,
            model: Model::new(param),
            wires: BTreeMap::new(),
        }
    }

    fn step(&mut self, op: &Op) -> TestCaseResult {
        match *op {
            Op::Start {
                id,
                path,
                spelling,
                name,
                body,
                idle_out,
            } => self.start(id, path, spelling, name, (body, idle_out)),
            Op::Stop { id } => self.stop(self.world.ids[id]),
            Op::Exit { id } => self.command(self.world.ids[id], Command::Exit),
            Op::Panic { id } => self.command(self.world.ids[id], Command::Panic),
            Op::Touch { id } => self.command(self.world.ids[id], Command::Touch),
            Op::Rename { id, name } => self.rename(self.world.ids[id], NAMES[name]),
            Op::Lookup(query) => check_query(&self.sup, &self.model.table, self.world, query),
            Op::Shutdown => self.shutdown(),
        }
    }

    fn start(
        &mut self,
        id: usize,
        path: usize,
        spelling: Spelling,
        name: usize,
        (kind, idle_out): (Body, bool),
    ) -> TestCaseResult {
        let Some(session) = self.world.build(id, path, spelling, name)? else {
            return Ok(());
        };
        let (commands, command_rx) = unbounded();
        let (ack_tx, acks) = unbounded();
        let mut start = self.sup.start(session.clone());
        if idle_out {
            start = start.idle_timeout(IDLE_OUT);
        }
        let started = seen(start.run(body(kind, command_rx, ack_tx)));
        let expected = self.model.admit(&session);
        let got = started.as_ref().map(|h| h.id()).map_err(Clone::clone);
        let expected_id = expected.clone().map(|_| session.id());
        prop_assert_eq!(got, expected_id, "start_session");
        let Ok(handle) = started else {
            return Ok(());
        };
        if let Ok(Some(victim)) = expected {
            // Evicted before the start returned.
            let wires = &self.wires[&victim];
            let restarts = self.model.live[&victim].restarts;
            let evicted = Event::Ended(Some((victim, ExitReason::Evicted, restarts)));
            prop_assert_eq!(wires.next_event(), evicted, "the victim of the eviction");
            self.ended(victim, (victim, ExitReason::Evicted, restarts))?;
        }
        let wires = Wires {
            handle,
            commands,
            acks,
        };
        prop_assert_eq!(wires.next_event(), Event::Ack(Ack::Running(0)), "first run");
        self.wires.insert(session.id(), wires);
        self.model.start(session.clone(), kind);
        if idle_out {
            let id = session.id();
            let idle = ExitReason::Idle { timeout: IDLE_OUT };
            let event = self.wires[&id].next_event();
            prop_assert_eq!(&event, &Event::Ended(Some((id, idle.clone(), 0))), "idle");
            self.ended(id, (id, idle, 0))?;
        }
        Ok(())
    }

    fn stop(&mut self, id: SessionId) -> TestCaseResult {
        let stopped = seen(self.sup.stop_session(id)).map(|report| summary(&report));
        let expected = match self.model.live.get(&id) {
            Some(live) => Ok((id, ExitReason::Stopped, live.restarts)),
            None => Err(not_found_id(id)),
        };
        prop_assert_eq!(&stopped, &expected, "stop_session");
        if let Ok(report) = stopped {
            self.ended(id, report)?;
        }
        Ok(())
    }

    /// Sends a command to the body, then waits for what the model says follows.
    fn command(&mut self, id: SessionId, command: Command) -> TestCaseResult {
        let Some(wires) = self.wires.get(&id) else {
            prop_assert!(!self.model.live.contains_key(&id));
            return Ok(());
        };
        wires
            .commands
            .send(command)
            .expect("the body holds the receiver");
        let expected = self.model.command(id, command);
        let event = wires.next_event();
        prop_assert_eq!(&event, &expected, "what the session did");
        if let Event::Ended(Some(report)) = event {
            self.ended(id, report)?;
        }
        Ok(())
    }

    /// The session ended with `report`: its handle says so, and the model forgets it.
    fn ended(&mut self, id: SessionId, report: (SessionId, ExitReason, u32)) -> TestCaseResult {
        let wires = self
            .wires
            .remove(&id)
            .expect("an ended session was running");
        prop_assert!(!wires.handle.is_running());
        let again = wires
            .handle
            .wait_timeout(Duration::ZERO)
            .map(|r| summary(&r));
        prop_assert_eq!(again, Some(report));
        self.model.end(id);
        Ok(())
    }

    fn rename(&mut self, id: SessionId, given: &str) -> TestCaseResult {
        let renamed = seen(self.sup.rename_session(id, given));
        let Some(old) = self.model.table.by_id.get(&id).cloned() else {
            prop_assert_eq!(renamed, Err(not_found_id(id)), "rename_session");
            return Ok(());
        };
        let Some(trimmed) = valid_name(given) else {
            let expected = Err(Failure::InvalidName(given.to_owned()));
            prop_assert_eq!(renamed, expected, "rename_session");
            return Ok(());
        };
        let new = renamed.map_err(|err| TestCaseError::fail(format!("rename: {err:?}")))?;
        prop_assert_eq!(
            (new.id(), new.project_path()),
            (old.id(), old.project_path())
        );
        prop_assert_eq!((new.name(), new.created_at()), (trimmed, old.created_at()));
        prop_assert!(new.updated_at() > old.updated_at());
        self.model.table.by_id.insert(id, new);
        Ok(())
    }

    fn shutdown(&mut self) -> TestCaseResult {
        let report = self.sup.shutdown();
        prop_assert_eq!(report.timed_out(), &[] as &[SessionId]);
        let exited: Vec<_> = report.exited().iter().map(summary).collect();
        let newest_first = self.model.started().into_iter().rev();
        let expected: Vec<_> = newest_first
            .map(|id| (id, ExitReason::Stopped, self.model.live[&id].restarts))
            .collect();
        prop_assert_eq!(&exited, &expected, "shutdown: exited, newest first");
        for report in exited {
            let id = report.0;
            self.ended(id, report)?;
        }
        self.model.shut_down = true;
        Ok(())
    }

    fn check(&self) -> TestCaseResult {
        check_table(&self.sup, &self.model.table, self.world)?;
        prop_assert_eq!(
            self.sup.is_shut_down(),
            self.model.shut_down,
            "is_shut_down"
        );
        prop_assert_eq!(self.sup.max_sessions(), self.model.table.max);
        let started: Vec<SessionId> = self.sup.list_sessions().iter().map(|h| h.id()).collect();
        prop_assert_eq!(started, self.model.started(), "list_sessions (start order)");
        for (&id, wires) in &self.wires {
            prop_assert!(wires.handle.is_running(), "session {} should run", id);
            let found = self.sup.find_session(id).map(|h| h.id());
            prop_assert_eq!(seen(found), Ok(id), "find_session({})", id);
        }
        Ok(())
    }
}

/// A case's restart rule and admission policy.
type Param = (Restart, AdmissionPolicy);

/// The session limit of a case: one less with an evicting policy (see [`SPREAD`]).
fn limit(admission: AdmissionPolicy) -> usize {
    match admission {
        AdmissionPolicy::Reject => MAX_SESSIONS,
        _ => MAX_SESSIONS - 1,
    }
}

fn supervisor_property(world: &World, param: &Param, ops: &[Op]) -> TestCaseResult {
    let harness = RefCell::new(Harness::new(world, *param));
    run_steps(
        ops,
        |op| harness.borrow_mut().step(op),
        || harness.borrow().check(),
    )
}

/// Mostly refusing at the limit, as by default; an evicting policy in half the cases.
fn admission() -> impl Strategy<Value = AdmissionPolicy> {
    prop_oneof![
        2 => Just(AdmissionPolicy::Reject),
        1 => Just(AdmissionPolicy::EvictOldest),
        1 => Just(AdmissionPolicy::EvictIdlest),
    ]
}

/// The ops of a case with this admission policy: over more ids and paths if it evicts.
fn ops(commands: u32, admission: AdmissionPolicy) -> impl Strategy<Value = Vec<Op>> {
    let spread = match admission {
        AdmissionPolicy::Reject => IDS,
        _ => SPREAD,
    };
    vec(op(commands, spread), 1..48)
}

fn temporary_case() -> impl Strategy<Value = (Param, Vec<Op>)> {
    let param = (Just(Restart::Temporary), admission());
    param.prop_flat_map(|param| (Just(param), ops(16, param.1)))
}

fn restarting_case() -> impl Strategy<Value = (Param, Vec<Op>)> {
    let restart = prop_oneof![Just(Restart::Transient), Just(Restart::Permanent)];
    // Enough commands that sessions run into their restart limit.
    let param = (restart, admission());
    param.prop_flat_map(|param| (Just(param), ops(40, param.1)))
}

/// Temporary sessions: an exit or a panic of the body ends the session for good. In
/// every property, some starts carry a tiny idle timeout and end as idle, and half the
/// cases evict the oldest or the idlest session when a start finds the supervisor full.
#[test]
fn supervisor_matches_its_model() {
    run(
        "supervisor_matches_its_model",
        temporary_case,
        supervisor_property,
    );
}

/// Transient and permanent sessions: restarts counted up to the limit, then the session
/// gives up with `RestartLimit`.
#[test]
fn restarting_supervisor_matches_its_model() {
    run(
        "restarting_supervisor_matches_its_model",
        restarting_case,
        supervisor_property,
    );
}
