//! `start_stop`: one idle session started and stopped, against a bare thread doing the
//! same work.
//!
//! The bare baseline gives the caller the same guarantees `start_session` and
//! `stop_session` give, and nothing more: spawn a thread, wait until it runs (it
//! signals on a channel, as a session thread signals once `init` finished), send it a
//! shutdown on a crossbeam channel it is blocked on, and join it. What the crate adds
//! on top (registry insert and remove, the runtime state, the named thread, the exit
//! report, the wait for the end before the join) is the ratio.
//!
//! `start/*` and `stop/*` time the two halves of the same cycle separately.
//!
//! `evict`: a start at the limit that evicts the running session (see
//! `evicting_cycle`), against `session`.
//!
//! `warm`: the same cycle on a supervisor with one warm thread, parked before the
//! clock starts and again after every stop: the start hands the session to it instead
//! of spawning, the stop waits for the end as always, and the thread parks again. The
//! ratio against `bare` is what warm threads buy; the Erlang/OTP cycle of the design
//! this crate ports (`start_child` + `terminate_child`, 58.5 us on this machine with
//! Elixir 1.14 / OTP 25) is printed beside it.

mod common;

use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use crossbeam_channel::{bounded, unbounded, Sender};
use session_supervisor::{stub, AdmissionPolicy, Session, SessionSupervisor};

use common::TempDirs;

/// A bare thread that runs until it is sent a shutdown.
struct Bare {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Bare {
    /// Spawns the thread and returns once it runs.
    fn start(name: Option<&str>) -> Bare {
        let (ready_tx, ready_rx) = bounded(1);
        let (stop, stop_rx) = unbounded::<()>();
        let mut builder = thread::Builder::new();
        if let Some(name) = name {
            builder = builder.name(name.to_owned());
        }
        let thread = builder
            .spawn(move || {
                ready_tx.send(()).unwrap();
                let _ = stop_rx.recv();
            })
            .expect("spawn a bare thread");
        ready_rx.recv().unwrap();
        Bare { stop, thread }
    }

    /// Sends the shutdown and joins.
    fn stop(self) {
        self.stop.send(()).unwrap();
        self.thread.join().unwrap();
    }
}

fn whole_cycle(c: &mut Criterion, sup: &SessionSupervisor, session: &Session) {
    let mut group = c.benchmark_group("start_stop");
    group.bench_function("session", |b| {
        b.iter(|| {
            let handle = sup.start_session(session.clone(), stub::idle()).unwrap();
            sup.stop_session(handle.id()).unwrap()
        })
    });
    group.bench_function("bare", |b| b.iter(|| Bare::start(None).stop()));
    let warm = SessionSupervisor::builder().warm_threads(1).build();
    assert_eq!(warm.warm_up().unwrap(), 1);
    group.bench_function("warm", |b| {
        b.iter(|| {
            let handle = warm.start_session(session.clone(), stub::idle()).unwrap();
            handle.stop().unwrap()
        })
    });
    assert_eq!(
        warm.idle_threads(),
        1,
        "every cycle ran on the parked thread"
    );
    evicting_cycle(&mut group, session);
    // The crate names each thread after its session; this shows what naming costs.
    group.bench_function("bare_named", |b| {
        b.iter(|| Bare::start(Some(session.name())).stop())
    });
    group.finish();
}

/// `evict`: a start at the limit (1) that evicts the running session: the victim's stop
/// and join, then the new session's registration and start, in one call. Two sessions
/// on two directories take turns; the target is at most 2.5x `session`.
fn evicting_cycle(group: &mut BenchmarkGroup<'_, WallTime>, session: &Session) {
    let dirs = TempDirs::new("start-stop-evict", 1);
    let sessions = [session.clone(), common::session(&dirs.dirs()[0])];
    let sup = SessionSupervisor::builder()
        .max_sessions(1)
        .admission(AdmissionPolicy::EvictOldest)
        .build();
    sup.start_session(sessions[0].clone(), stub::idle())
        .unwrap();
    let mut next = 1;
    group.bench_function("evict", |b| {
        b.iter(|| {
            let handle = sup.start_session(sessions[next].clone(), stub::idle());
            next = 1 - next;
            handle.unwrap()
        })
    });
    assert_eq!(
        sup.count(),
        1,
        "each start took the place of the one before"
    );
}

fn halves(c: &mut Criterion, sup: &SessionSupervisor, session: &Session) {
    let mut group = c.benchmark_group("start_stop");
    group.bench_function("start/session", |b| {
        b.iter_custom(|iters| {
            split(iters, || {
                let handle = sup.start_session(session.clone(), stub::idle()).unwrap();
                move || drop(sup.stop_session(handle.id()).unwrap())
            })
            .0
        })
    });
    group.bench_function("start/bare", |b| {
        b.iter_custom(|iters| split(iters, bare_halves).0)
    });
    group.bench_function("stop/session", |b| {
        b.iter_custom(|iters| {
            split(iters, || {
                let handle = sup.start_session(session.clone(), stub::idle()).unwrap();
                move || drop(sup.stop_session(handle.id()).unwrap())
            })
            .1
        })
    });
    group.bench_function("stop/bare", |b| {
        b.iter_custom(|iters| split(iters, bare_halves).1)
    });
    group.finish();
}

fn bare_halves() -> impl FnOnce() {
    let bare = Bare::start(None);
    move || bare.stop()
}

/// Runs `iters` cycles; returns the total time of the starts and of the stops.
fn split<S: FnOnce()>(iters: u64, mut start: impl FnMut() -> S) -> (Duration, Duration) {
    let (mut started, mut stopped) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..iters {
        let t0 = Instant::now();
        let stop = start();
        let t1 = Instant::now();
        stop();
        stopped += t1.elapsed();
        started += t1 - t0;
    }
    (started, stopped)
}

fn start_stop(c: &mut Criterion) {
    let dirs = TempDirs::new("start-stop", 1);
    // Built once: `Session::new` resolves the path, which is not part of a start.
    let session = common::session(&dirs.dirs()[0]);
    let sup = SessionSupervisor::new();
    whole_cycle(c, &sup, &session);
    halves(c, &sup, &session);
    assert_eq!(sup.count(), 0, "every session was stopped");
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = start_stop
}
criterion_main!(benches);
