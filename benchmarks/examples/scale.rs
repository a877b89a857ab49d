//! Starts N idle sessions, looks them up, stops them all, and does the same with N bare
//! threads, printing a table with the ratios.
//!
//! Run from the repository's root with
//! `cargo run --release -p session-supervisor-benchmarks --example scale -- [N]`
//! (default 10,000).
//!
//! Each session gets its own fresh temp directory and a 64 KiB stack. The bare side does
//! the same work without the crate: spawn a thread with the same stack, wait until it
//! runs (as `start_session` waits for `init`), keep it in a `parking_lot::RwLock<HashMap>`
//! by id and by path for the lookups, then send every thread a shutdown and join them
//! all, newest first (as `shutdown` does).
//!
//! A third side, `warm`, starts the same sessions on a supervisor with N warm threads,
//! all spawned and parked by `warm_up` before the clock starts (its time is shown apart):
//! what a program that prestarts its pool pays per start.
//!
//! Each side runs in a fresh child process (this program, with `--side sessions` or
//! `--side bare`): glibc keeps freed thread stacks for reuse and the heap stays grown,
//! so whichever side ran second in the same process would start faster and seem to use
//! less memory. The parent removes a child's directories even if the child dies (near
//! the thread limit a process can abort: see BENCHMARKS.md).
//!
//! Checks, each failing the run with a message and a non-zero exit: every start
//! succeeds, the thread count rises by N, `shutdown` reports N exited and none timed
//! out, the thread count (from `/proc/self/task`) falls back to where it started, and
//! the temp directories are removed. Memory and thread counts are read from `/proc` and
//! shown as `n/a` elsewhere than on Linux.

use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Sender};
use parking_lot::RwLock;
use session_supervisor::{stub, ExitReason, Session, SessionId, SessionSupervisor, ShutdownReport};

const DEFAULT_N: usize = 10_000;
const STACK: usize = 64 * 1024;
/// Lookups per kind, spread over all N keys; the average is reported.
const LOOKUPS: u32 = 1_000_000;
/// How long the thread count may take to fall back after the last join: the kernel
/// removes a thread from `/proc` just after waking its joiner.
const SETTLE: Duration = Duration::from_secs(10);

type Result<T, E = String> = std::result::Result<T, E>;

fn main() -> ExitCode {
    match parse_args().and_then(|(n, side)| run(n, side)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("scale: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Which side a child process measures.
#[derive(Clone, Copy)]
enum Side {
    Sessions,
    Bare,
    Warm,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Sessions => "sessions",
            Side::Bare => "bare",
            Side::Warm => "warm",
        }
    }
}

/// `[N] [--side sessions|bare]`.
fn parse_args() -> Result<(usize, Option<Side>)> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (n, side) = match args.as_slice() {
        [] => return Ok((DEFAULT_N, None)),
        [n] => (n, None),
        [n, flag, side] if flag == "--side" => (n, Some(side.as_str())),
        _ => return Err("usage: scale [N] [--side sessions|bare|warm]".into()),
    };
    let n = match n.replace(['_', ','], "").parse::<usize>() {
        Ok(n) if n > 0 => n,
        _ => return Err(format!("N must be a positive number, got {n:?}")),
    };
    let side = match side {
        None => None,
        Some("sessions") => Some(Side::Sessions),
        Some("bare") => Some(Side::Bare),
        Some("warm") => Some(Side::Warm),
        Some(other) => return Err(format!("unknown side {other:?}")),
    };
    Ok((n, side))
}

fn run(n: usize, side: Option<Side>) -> Result<()> {
    let Some(side) = side else {
        let sessions = measure_in_child(n, Side::Sessions)?;
        let bare = measure_in_child(n, Side::Bare)?;
        let warm = measure_in_child(n, Side::Warm)?;
        print_table(n, &sessions, &bare);
        print_warm(n, &warm, &bare);
        return Ok(());
    };
    let threads_at_start = proc::threads();
    let dirs = Dirs::create(n)?;
    let began = Instant::now();
    let sessions = dirs.sessions()?;
    let prepared = began.elapsed();
    let mut measured = match side {
        Side::Sessions => sessions_side(sessions, threads_at_start)?,
        Side::Bare => bare_side(sessions, threads_at_start)?,
        Side::Warm => warm_side(sessions, threads_at_start)?,
    };
    measured.prepared = prepared;
    dirs.remove()?;
    println!("{}", measured.to_line());
    Ok(())
}

/// Runs this program again for one side and reads what it measured. The child works in
/// a directory named here, so that it is removed even if the child dies.
fn measure_in_child(n: usize, side: Side) -> Result<Measured> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let base = fresh_base();
    let output = std::process::Command::new(exe)
        .args([n.to_string().as_str(), "--side", side.name()])
        .env(BASE_VAR, &base)
        .stderr(std::process::Stdio::inherit())
        .output();
    if base.exists() {
        std::fs::remove_dir_all(&base).map_err(|e| cannot("remove", &base, &e))?;
    }
    let output = output.map_err(|e| format!("cannot run the {} side: {e}", side.name()))?;
    if !output.status.success() {
        return Err(format!(
            "the {} side failed ({})",
            side.name(),
            output.status
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    Measured::from_line(line).ok_or_else(|| format!("the {} side printed {line:?}", side.name()))
}

/// Where a child puts its project directories, if its parent chose.
const BASE_VAR: &str = "SCALE_EXAMPLE_DIR";

fn fresh_base() -> PathBuf {
    std::env::temp_dir().join(format!("scale-{}", SessionId::new()))
}

/// What one side measured.
#[derive(Default)]
struct Measured {
    /// `Session::new` for the N directories (not part of the start).
    prepared: Duration,
    /// `warm_up` of N warm threads (the warm side only; not part of the start).
    warm_up: Duration,
    start_all: Duration,
    rss_before_kib: Option<u64>,
    rss_after_kib: Option<u64>,
    /// The average of one lookup.
    by_id: Duration,
    by_path: Duration,
    stop_all: Duration,
}

impl Measured {
    /// One line of numbers, from a child to its parent: nanoseconds and KiB, `-` for
    /// unknown.
    fn to_line(&self) -> String {
        let kib = |v: Option<u64>| v.map_or_else(|| "-".into(), |v| v.to_string());
        let times = [
            self.prepared,
            self.warm_up,
            self.start_all,
            self.by_id,
            self.by_path,
            self.stop_all,
        ];
        let times = times.map(|t| t.as_nanos().to_string()).join(" ");
        let (before, after) = (kib(self.rss_before_kib), kib(self.rss_after_kib));
        format!("measured {times} {before} {after}")
    }

    fn from_line(line: &str) -> Option<Measured> {
        let fields: Vec<&str> = line.strip_prefix("measured ")?.split(' ').collect();
        let [prepared, warm_up, start_all, by_id, by_path, stop_all, before, after] = fields[..]
        else {
            return None;
        };
        let time = |field: &str| field.parse().ok().map(Duration::from_nanos);
        Some(Measured {
            prepared: time(prepared)?,
            warm_up: time(warm_up)?,
            start_all: time(start_all)?,
            rss_before_kib: before.parse().ok(),
            rss_after_kib: after.parse().ok(),
            by_id: time(by_id)?,
            by_path: time(by_path)?,
            stop_all: time(stop_all)?,
        })
    }

    fn rss_per_thread_kib(&self, n: usize) -> Option<f64> {
        let grown = self.rss_after_kib?.saturating_sub(self.rss_before_kib?);
        Some(grown as f64 / n as f64)
    }
}

/// The keys of every lookup, in start order.
struct Keys {
    ids: Vec<SessionId>,
    paths: Vec<PathBuf>,
}

impl Keys {
    fn of(sessions: &[Session]) -> Keys {
        Keys {
            ids: sessions.iter().map(|s| s.id()).collect(),
            paths: sessions.iter().map(|s| s.project_path().into()).collect(),
        }
    }
}

/// Times `start` and reads the RSS before and after it.
fn timed_start(start: impl FnOnce() -> Result<()>) -> Result<Measured> {
    let rss_before_kib = proc::rss_kib();
    let began = Instant::now();
    start()?;
    Ok(Measured {
        start_all: began.elapsed(),
        rss_before_kib,
        rss_after_kib: proc::rss_kib(),
        ..Measured::default()
    })
}

fn sessions_side(sessions: Vec<Session>, threads_at_start: Option<usize>) -> Result<Measured> {
    let (n, keys) = (sessions.len(), Keys::of(&sessions));
    let sup = SessionSupervisor::builder()
        .stack_size(STACK)
        .max_sessions(n)
        .build();
    let measured = start_all(&sup, sessions, "session")?;
    check_threads("after starting the sessions", threads_at_start, n)?;
    look_up_then_shut_down(&sup, &keys, measured, threads_at_start)
}

/// The sessions side on a supervisor whose N warm threads were all parked before the
/// clock started.
fn warm_side(sessions: Vec<Session>, threads_at_start: Option<usize>) -> Result<Measured> {
    let (n, keys) = (sessions.len(), Keys::of(&sessions));
    let sup = SessionSupervisor::builder()
        .stack_size(STACK)
        .max_sessions(n)
        .warm_threads(n)
        .warm_thread_timeout(Duration::MAX)
        .build();
    let began = Instant::now();
    let parked = sup.warm_up().map_err(|e| format!("warm_up failed: {e}"))?;
    let warm_up = began.elapsed();
    if parked != n {
        return Err(format!("warm_up parked {parked} threads, not {n}"));
    }
    check_threads("after warm_up", threads_at_start, n)?;
    let mut measured = start_all(&sup, sessions, "warm session")?;
    measured.warm_up = warm_up;
    let parked = sup.idle_threads();
    if parked != 0 {
        return Err(format!("{parked} threads still parked after N starts"));
    }
    check_threads("after starting the warm sessions", threads_at_start, n)?;
    look_up_then_shut_down(&sup, &keys, measured, threads_at_start)
}

/// Starts every session with `stub::idle()`, timed; `what` names them in an error.
fn start_all(sup: &SessionSupervisor, sessions: Vec<Session>, what: &str) -> Result<Measured> {
    let n = sessions.len();
    timed_start(|| {
        for (i, session) in sessions.into_iter().enumerate() {
            sup.start_session(session, stub::idle())
                .map_err(|e| format!("{what} start {} of {n} failed: {e}", i + 1))?;
        }
        Ok(())
    })
}

/// Times the lookups and the shutdown, and checks that every session and thread ended.
fn look_up_then_shut_down(
    sup: &SessionSupervisor,
    keys: &Keys,
    mut measured: Measured,
    threads_at_start: Option<usize>,
) -> Result<Measured> {
    measured.by_id = average(&keys.ids, |id| sup.lookup(*id).is_ok())?;
    measured.by_path = average(&keys.paths, |path| sup.lookup_by_path(path).is_ok())?;
    let began = Instant::now();
    let report = sup.shutdown();
    measured.stop_all = began.elapsed();
    check_report(keys.ids.len(), &report)?;
    settle("after shutdown", threads_at_start)?;
    Ok(measured)
}

/// A bare thread and what stops it.
struct BareThread {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

/// What a bare registry would hold: the sessions by id and by path.
#[derive(Default)]
struct BareMaps {
    by_id: RwLock<HashMap<SessionId, Session>>,
    by_path: RwLock<HashMap<PathBuf, Session>>,
}

impl BareMaps {
    fn insert(&self, session: Session) {
        let path = session.project_path().to_path_buf();
        self.by_path.write().insert(path, session.clone());
        self.by_id.write().insert(session.id(), session);
    }
}

fn bare_side(sessions: Vec<Session>, threads_at_start: Option<usize>) -> Result<Measured> {
    let (n, keys) = (sessions.len(), Keys::of(&sessions));
    let maps = BareMaps::default();
    let mut threads = Vec::with_capacity(n);
    let mut measured = timed_start(|| {
        for (i, session) in sessions.into_iter().enumerate() {
            let spawned = spawn_bare();
            threads.push(spawned.map_err(|e| format!("bare spawn {} of {n} failed: {e}", i + 1))?);
            maps.insert(session);
        }
        Ok(())
    })?;
    check_threads("after starting the bare threads", threads_at_start, n)?;
    measured.by_id = average(&keys.ids, |id| maps.by_id.read().get(id).cloned().is_some())?;
    measured.by_path = average(&keys.paths, |p| {
        maps.by_path.read().get(p).cloned().is_some()
    })?;

    let began = Instant::now();
    stop_bare(threads)?;
    measured.stop_all = began.elapsed();
    settle("after joining the bare threads", threads_at_start)?;
    Ok(measured)
}

/// Spawns a thread that idles until told to stop; returns once it runs.
fn spawn_bare() -> std::io::Result<BareThread> {
    let (ready_tx, ready_rx) = bounded(1);
    let (stop, stop_rx) = unbounded::<()>();
    let thread = thread::Builder::new().stack_size(STACK).spawn(move || {
        let _ = ready_tx.send(());
        let _ = stop_rx.recv();
    })?;
    let _ = ready_rx.recv();
    Ok(BareThread { stop, thread })
}

/// Signals every thread, then joins them, newest first (as `shutdown` does).
fn stop_bare(threads: Vec<BareThread>) -> Result<()> {
    for bare in &threads {
        let _ = bare.stop.send(());
    }
    for bare in threads.into_iter().rev() {
        bare.thread.join().map_err(|_| "a bare thread panicked")?;
    }
    Ok(())
}

/// The average time of `LOOKUPS` calls of `found`, each with the next key in turn.
fn average<K>(keys: &[K], found: impl Fn(&K) -> bool) -> Result<Duration> {
    let began = Instant::now();
    for (_, key) in (0..LOOKUPS).zip(keys.iter().cycle()) {
        if !black_box(found(black_box(key))) {
            return Err("a registered key was not found".into());
        }
    }
    Ok(began.elapsed() / LOOKUPS)
}

/// Checks that `shutdown` stopped all `n` sessions, each on request.
fn check_report(n: usize, report: &ShutdownReport) -> Result<()> {
    let (exited, timed_out) = (report.exited().len(), report.timed_out().len());
    if exited != n || timed_out != 0 {
        return Err(format!(
            "shutdown: {exited} of {n} sessions exited, {timed_out} timed out"
        ));
    }
    match report
        .exited()
        .iter()
        .find(|r| r.reason() != &ExitReason::Stopped)
    {
        Some(bad) => Err(format!("session {} ended with: {}", bad.id(), bad.reason())),
        None => Ok(()),
    }
}

/// Checks that `added` threads run on top of the ones at the start.
fn check_threads(when: &str, at_start: Option<usize>, added: usize) -> Result<()> {
    let (Some(at_start), Some(now)) = (at_start, proc::threads()) else {
        return Ok(());
    };
    if now != at_start + added {
        return Err(format!(
            "{when}: {now} threads, expected {at_start} + {added}"
        ));
    }
    Ok(())
}

/// Waits (bounded by `SETTLE`) until the thread count is back where it started.
fn settle(when: &str, at_start: Option<usize>) -> Result<()> {
    let Some(at_start) = at_start else {
        return Ok(());
    };
    let deadline = Instant::now() + SETTLE;
    loop {
        let now = proc::threads().unwrap_or(at_start);
        if now == at_start {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{when}: {now} threads still alive after {SETTLE:?}, expected {at_start}"
            ));
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// N fresh project directories under one temp base; removed on drop if not before.
struct Dirs {
    base: PathBuf,
    dirs: Vec<PathBuf>,
}

impl Dirs {
    fn create(n: usize) -> Result<Dirs> {
        let base = std::env::var_os(BASE_VAR).map_or_else(fresh_base, PathBuf::from);
        let dirs: Vec<PathBuf> = (0..n).map(|i| base.join(format!("p{i}"))).collect();
        let created = Dirs { base, dirs };
        for dir in &created.dirs {
            std::fs::create_dir_all(dir).map_err(|e| cannot("create", dir, &e))?;
        }
        Ok(created)
    }

    fn sessions(&self) -> Result<Vec<Session>> {
        let session = |dir: &PathBuf| Session::new(dir).map_err(|e| e.to_string());
        self.dirs.iter().map(session).collect()
    }

    fn remove(mut self) -> Result<()> {
        let base = std::mem::take(&mut self.base);
        std::fs::remove_dir_all(&base).map_err(|e| cannot("remove", &base, &e))
    }
}

impl Drop for Dirs {
    /// Cleans up after a failed run; a successful one removed the base already.
    fn drop(&mut self) {
        if !self.base.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }
}

fn cannot(what: &str, path: &Path, err: &std::io::Error) -> String {
    format!("cannot {what} {}: {err}", path.display())
}

fn print_table(n: usize, sessions: &Measured, bare: &Measured) {
    let cpus = thread::available_parallelism().map_or(0, |c| c.get());
    let stack_kib = STACK / 1024;
    println!("scale: {n} idle sessions vs {n} bare threads, {stack_kib} KiB stacks, {cpus} CPUs");
    let prepared = ms(sessions.prepared);
    println!("(Session::new for the {n} directories took {prepared}, not counted below)");
    println!();
    println!(
        "{:<22} {:>12} {:>12} {:>7}",
        "", "sessions", "bare", "ratio"
    );
    print_rows(n, sessions, bare);
    println!();
    println!(
        "checks passed: {n} sessions exited, none timed out; every thread ended; temp dirs removed"
    );
}

fn print_warm(n: usize, warm: &Measured, bare: &Measured) {
    println!();
    let warm_up = ms(warm.warm_up);
    println!("warm: the same {n} sessions on {n} warm threads, parked by warm_up ({warm_up}, not counted)");
    println!();
    println!("{:<22} {:>12} {:>12} {:>7}", "", "warm", "bare", "ratio");
    let per = |d: Duration| d / n as u32;
    time_row(("start all", warm.start_all, bare.start_all, ms));
    time_row((
        "start, per thread",
        per(warm.start_all),
        per(bare.start_all),
        us,
    ));
    time_row(("lookup by id", warm.by_id, bare.by_id, ns));
    time_row(("lookup by path", warm.by_path, bare.by_path, ns));
    time_row(("stop all", warm.stop_all, bare.stop_all, ms));
    println!();
    println!("checks passed: {n} warm sessions exited, none timed out; every warm thread joined");
}

fn print_rows(n: usize, s: &Measured, b: &Measured) {
    let per = |d: Duration| d / n as u32;
    time_row(("start all", s.start_all, b.start_all, ms));
    time_row(("start, per thread", per(s.start_all), per(b.start_all), us));
    let (rss_s, rss_b) = (s.rss_per_thread_kib(n), b.rss_per_thread_kib(n));
    let ratio = rss_s.zip(rss_b).map(|(s, b)| s / b);
    row("RSS per thread", kib(rss_s), kib(rss_b), ratio);
    let (before_s, before_b) = (mib(s.rss_before_kib), mib(b.rss_before_kib));
    row("RSS before start", before_s, before_b, None);
    let (after_s, after_b) = (mib(s.rss_after_kib), mib(b.rss_after_kib));
    row("RSS after start", after_s, after_b, None);
    time_row(("lookup by id", s.by_id, b.by_id, ns));
    time_row(("lookup by path", s.by_path, b.by_path, ns));
    time_row(("stop all", s.stop_all, b.stop_all, ms));
    time_row(("stop, per thread", per(s.stop_all), per(b.stop_all), us));
}

/// A row of times: what, the sessions' time, the bare time, and how to print them.
type TimeRow = (&'static str, Duration, Duration, fn(Duration) -> String);

fn time_row((what, sessions, bare, unit): TimeRow) {
    row(what, unit(sessions), unit(bare), ratio_of(sessions, bare));
}

fn row(what: &str, sessions: String, bare: String, ratio: Option<f64>) {
    let ratio = ratio.map_or_else(String::new, |r| format!("{r:.2}x"));
    let line = format!("{what:<22} {sessions:>12} {bare:>12} {ratio:>7}");
    println!("{}", line.trim_end());
}

fn ratio_of(sessions: Duration, bare: Duration) -> Option<f64> {
    (!bare.is_zero()).then(|| sessions.as_secs_f64() / bare.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

fn ns(d: Duration) -> String {
    format!("{} ns", d.as_nanos())
}

fn kib(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{v:.1} KiB"))
}

fn mib(value: Option<u64>) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{:.1} MiB", v as f64 / 1024.0))
}

/// What `/proc` says about this process; `None` where there is no `/proc`.
mod proc {
    /// The number of threads of this process.
    pub fn threads() -> Option<usize> {
        Some(std::fs::read_dir("/proc/self/task").ok()?.count())
    }

    /// The resident set size, in KiB (`VmRSS` of `/proc/self/status`).
    pub fn rss_kib() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}
