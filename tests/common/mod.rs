//! Helpers shared by the integration tests. Each test binary uses part of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;

use session_supervisor::crossbeam_channel::{bounded, Receiver, Sender};
use session_supervisor::{stub, Result, Session, SessionId, SessionSupervisor, SupervisorBuilder};

/// The longest any test waits for one event before failing.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The variable that turns warm threads on in every supervisor the tests build: CI runs
/// the whole suite once without warm threads and once with them.
pub const WARM_THREADS_VAR: &str = "SESSION_SUPERVISOR_TEST_WARM_THREADS";

/// How many warm threads the tests' supervisors keep: the number in
/// [`WARM_THREADS_VAR`], 0 (none, the crate's default) if it is not set.
///
/// # Panics
///
/// If the variable is set to something other than a number.
pub fn warm_threads() -> usize {
    match std::env::var(WARM_THREADS_VAR) {
        Ok(n) => n
            .parse()
            .expect("SESSION_SUPERVISOR_TEST_WARM_THREADS is a number"),
        Err(_) => 0,
    }
}

/// The builder every test starts from: the crate's defaults, with [`warm_threads`].
pub fn builder() -> SupervisorBuilder {
    SessionSupervisor::builder().warm_threads(warm_threads())
}

/// A supervisor with the defaults, with [`warm_threads`].
pub fn supervisor() -> SessionSupervisor {
    builder().build()
}

/// Receives one message, or fails the test naming what it waited for.
pub fn recv_within<T>(rx: &Receiver<T>, what: &str) -> T {
    match rx.recv_timeout(TIMEOUT) {
        Ok(value) => value,
        Err(err) => panic!("waited {TIMEOUT:?} for {what}: {err}"),
    }
}

/// Runs `work(i)` on `n` threads at once (they start together at a barrier) and returns
/// what each returned, in order. A panic on any of them is resumed on the caller.
pub fn race<T, F>(n: usize, work: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> T + Send + Sync + 'static,
{
    let work = Arc::new(work);
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (work, barrier) = (Arc::clone(&work), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                work(i)
            })
        })
        .collect();
    let joined = threads.into_iter().map(JoinHandle::join);
    joined
        .map(|result| result.unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        .collect()
}

/// A start whose `init` waits until released, so the session stays `Starting`.
pub struct HeldStart {
    /// The thread running the start: joins with its result once released.
    pub start: JoinHandle<Result<SessionId>>,
    /// Dropped (or sent on) to let `init` return.
    pub release: Sender<()>,
}

/// Starts `session` on another thread with an `init` that waits for
/// [`HeldStart::release`]; returns once `init` runs.
pub fn start_held_in_init(sup: &Arc<SessionSupervisor>, session: Session) -> HeldStart {
    let (in_init_tx, in_init) = bounded::<()>(1);
    let (release, gate) = bounded::<()>(0);
    let sup = Arc::clone(sup);
    let start = std::thread::spawn(move || {
        sup.start(session)
            .init(move |_| {
                in_init_tx.send(()).unwrap();
                let _ = gate.recv();
                Ok(())
            })
            .run(stub::idle())
            .map(|handle| handle.id())
    });
    recv_within(&in_init, "init to begin");
    HeldStart { start, release }
}

/// Fresh project directories under the system temp dir, removed on drop.
pub struct Projects {
    base: PathBuf,
    dirs: Vec<PathBuf>,
}

impl Projects {
    /// `n` new directories named `0`, `1`, ... in a directory of their own.
    pub fn new(n: usize) -> Projects {
        let base =
            std::env::temp_dir().join(format!("session-supervisor-test-{}", SessionId::new()));
        let dirs: Vec<PathBuf> = (0..n).map(|i| base.join(i.to_string())).collect();
        for dir in &dirs {
            std::fs::create_dir_all(dir).expect("create a project directory");
        }
        Projects { base, dirs }
    }

    /// The canonical path of directory `i`.
    pub fn path(&self, i: usize) -> PathBuf {
        self.dirs[i]
            .canonicalize()
            .expect("project directory exists")
    }

    /// The directory holding all the projects.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// A new session for directory `i`.
    pub fn session(&self, i: usize) -> Session {
        Session::new(&self.dirs[i]).expect("valid project directory")
    }
}

impl Drop for Projects {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// The number of threads of this process, where the OS tells (Linux); `None` elsewhere.
pub fn thread_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/task")
        .ok()
        .map(|tasks| tasks.count())
}

/// The number of threads of this process whose name starts with `prefix`, where the OS
/// tells (Linux); `None` elsewhere.
///
/// A session's thread is named after the session and a child's `session/child`, cut to
/// 15 bytes by Linux. A test whose sessions carry a name no other test uses counts its
/// own threads with this, unlike [`thread_count`], while other tests run beside it.
pub fn threads_named(prefix: &str) -> Option<usize> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let named = tasks
        .filter_map(Result::ok)
        // A thread that ended since the listing has no name to read: it is not counted.
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count();
    Some(named)
}

/// Reads a thread count (of [`thread_count`] or [`threads_named`]) until it says `n`,
/// for up to [`TIMEOUT`]; returns the last reading (`None` where the OS does not tell).
///
/// A thread that was joined stays listed a moment longer: the kernel wakes the joiner
/// before the thread has finished its exit. A listing taken while other threads of the
/// process start or end may miss one. Neither has an event to wait for, so this reads
/// again, yielding in between, until the count is right or the time is up: a thread
/// that really stays (or never comes) still fails the test, after [`TIMEOUT`].
pub fn settled_count(count: impl Fn() -> Option<usize>, n: usize) -> Option<usize> {
    let began = std::time::Instant::now();
    loop {
        let now = count();
        if now.is_none_or(|c| c == n) || began.elapsed() >= TIMEOUT {
            return now;
        }
        std::thread::yield_now();
    }
}

/// Runs `test` on its own thread and fails, naming it, if it takes longer than `limit`:
/// a deadlock fails the test instead of hanging the run.
pub fn with_watchdog<F>(name: &str, limit: Duration, test: F)
where
    F: FnOnce() + Send + 'static,
{
    let (done_tx, done_rx) = session_supervisor::crossbeam_channel::bounded::<()>(0);
    let worker = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            test();
            drop(done_tx);
        })
        .expect("spawn the test thread");
    match done_rx.recv_timeout(limit) {
        Err(session_supervisor::crossbeam_channel::RecvTimeoutError::Timeout) => {
            panic!("{name} did not finish within {limit:?}: deadlock?")
        }
        _ => {
            if let Err(payload) = worker.join() {
                std::panic::resume_unwind(payload);
            }
        }
    }
}

/// The limit of [`guard`]: far above what any test needs on a loaded 2-core machine.
pub const GUARD_LIMIT: Duration = Duration::from_secs(60);

/// Runs a whole test under [`with_watchdog`] with [`GUARD_LIMIT`]. Tests call it
/// through the [`guard!`] macro, which names the watchdog after them.
pub fn guard<F>(name: &str, test: F)
where
    F: FnOnce() + Send + 'static,
{
    with_watchdog(name, GUARD_LIMIT, test);
}

/// Runs the enclosing test under the watchdog ([`guard`]), named after the test
/// function: `guard!(|| { ... })` in `fn my_test()` watches a thread named `my_test`.
///
/// Call it directly in the test function's body: inside a closure, the name would be
/// the closure's.
#[allow(unused_macros)] // Not every test binary uses it.
macro_rules! guard_test {
    ($test:expr $(,)?) => {{
        fn here() {}
        let name = $crate::common::function_name(::std::any::type_name_of_val(&here));
        $crate::common::guard(name, $test)
    }};
}
// Re-exported by path under the name of the function it calls, so that test files
// import both with `use common::guard;` and call `guard!(...)`.
#[allow(unused_imports)]
pub(crate) use guard_test as guard;

/// The name of the function whose local item `here` has this type name: the last
/// path segment before `::here` (`"faults::my_test::here"` gives `"my_test"`).
pub fn function_name(here: &'static str) -> &'static str {
    let path = here.strip_suffix("::here").unwrap_or(here);
    path.rsplit("::").next().unwrap_or(path)
}

/// Sends on its channel when dropped.
struct OnThreadExit(session_supervisor::crossbeam_channel::Sender<()>);

impl Drop for OnThreadExit {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

thread_local! {
    static ON_EXIT: std::cell::RefCell<Option<OnThreadExit>> =
        const { std::cell::RefCell::new(None) };
}

/// Makes the current thread send on `exited` when it ends: thread-locals drop after
/// every other instruction of the thread, so once the message is there the thread has
/// finished (and a join that returned has really joined it).
pub fn signal_on_thread_exit(exited: session_supervisor::crossbeam_channel::Sender<()>) {
    ON_EXIT.with(|slot| *slot.borrow_mut() = Some(OnThreadExit(exited)));
}

/// The text of every panic the misbehaving helpers below cause on purpose.
pub const EXPECTED: &str = "expected panic";

/// Panics with [`EXPECTED`] when dropped, while armed: user code that misbehaves in
/// `Drop`.
pub struct Bomb(pub bool);

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.0 {
            panic!("{EXPECTED}");
        }
    }
}

/// An error whose `Display` panics with [`EXPECTED`].
#[derive(Debug)]
pub struct BadDisplay;

impl std::fmt::Display for BadDisplay {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("{EXPECTED}")
    }
}

impl std::error::Error for BadDisplay {}
