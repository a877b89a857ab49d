//! `admission`: `register` + `unregister` of one session in a `SessionRegistry` that
//! holds 1,000 others, alone (`1_thread`) and while a second thread does the same
//! without pause on its own session (`2_threads`), against a bare
//! `parking_lot::RwLock<HashMap>` insert + remove under the same load.
//!
//! Both sides clone a prepared `Session` per cycle (the registry takes it by value).
//! On top, the registry checks the limit, the id and the path, inserts into two maps
//! (copying the path for the path index) and returns a copy of the session; that is the
//! ratio.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use parking_lot::RwLock;
use session_supervisor::{Session, SessionId, SessionRegistry};

use common::TempDirs;

/// Sessions registered before the bench, so the maps are not trivially small.
const RESIDENT: usize = 1_000;

type BareMap = RwLock<HashMap<SessionId, Session>>;

fn register_unregister(registry: &SessionRegistry, session: &Session) {
    let copy = registry.register(session.clone()).unwrap();
    registry.unregister(copy.id()).unwrap();
}

fn insert_remove(map: &BareMap, session: &Session) {
    map.write().insert(session.id(), session.clone());
    map.write().remove(&session.id()).unwrap();
}

/// A thread running the same kind of cycle on its own session, until dropped.
struct Contender {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Contender {
    /// Starts `cycle` on another thread; returns once that thread runs.
    fn start(cycle: impl Fn() + Send + 'static) -> Contender {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let thread = thread::spawn(move || {
            ready_tx.send(()).unwrap();
            while !flag.load(Ordering::Relaxed) {
                cycle();
            }
        });
        ready_rx.recv().unwrap();
        Contender {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Contender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
    }
}

fn admission(c: &mut Criterion) {
    let dirs = TempDirs::new("admission", RESIDENT + 2);
    let mut sessions = dirs.sessions();
    let theirs = sessions.pop().unwrap();
    let mine = sessions.pop().unwrap();
    let registry = Arc::new(SessionRegistry::new(RESIDENT + 2));
    let bare = Arc::new(BareMap::default());
    for session in sessions {
        bare.write().insert(session.id(), session.clone());
        registry.register(session).unwrap();
    }

    let mut group = c.benchmark_group("admission");
    for threads in [1, 2] {
        let param = if threads == 1 {
            "1_thread"
        } else {
            "2_threads"
        };
        let id = |name: &str| BenchmarkId::new(name, param);
        let contender = (threads == 2).then(|| {
            let (registry, theirs) = (Arc::clone(&registry), theirs.clone());
            Contender::start(move || register_unregister(&registry, &theirs))
        });
        group.bench_function(id("session"), |b| {
            b.iter(|| register_unregister(&registry, &mine))
        });
        drop(contender);

        let contender = (threads == 2).then(|| {
            let (bare, theirs) = (Arc::clone(&bare), theirs.clone());
            Contender::start(move || insert_remove(&bare, &theirs))
        });
        group.bench_function(id("bare"), |b| b.iter(|| insert_remove(&bare, &mine)));
        drop(contender);
    }
    group.finish();
    assert_eq!(registry.count(), RESIDENT);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = admission
}
criterion_main!(benches);
