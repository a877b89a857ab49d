//! `tree`: a session with three children, against bare threads doing the same work.
//!
//! - `start_stop`: a session whose `init` starts three idle children (`stub::tree`), started
//!   and stopped, against four bare threads: each spawned and waited for until it runs (a
//!   session's start returns once `init` and so every child start returned), then each sent
//!   a shutdown and joined, newest first (a session stops its children in reverse start
//!   order, then its body). Target: at most 1.25x.
//! - `child_lookup`: a child found by name, through the supervisor (`find_child`: session
//!   by id, then child by name) and through a session handle (`child`), against a bare
//!   two-level `parking_lot::RwLock<HashMap>` (id -> session table -> name -> `Arc`) that
//!   clones the `Arc` it finds. Target: at most 100 ns.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use criterion::{criterion_group, criterion_main, Criterion};
use crossbeam_channel::{bounded, unbounded, Sender};
use parking_lot::RwLock;
use session_supervisor::{stub, SessionId, SessionSupervisor};

use common::TempDirs;

const CHILDREN: [&str; 3] = ["watcher", "indexer", "agent"];

/// A bare thread that runs until it is sent a shutdown.
struct Bare {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Bare {
    /// Spawns the thread and returns once it runs.
    fn start() -> Bare {
        let (ready_tx, ready_rx) = bounded(1);
        let (stop, stop_rx) = unbounded::<()>();
        let thread = thread::spawn(move || {
            ready_tx.send(()).unwrap();
            let _ = stop_rx.recv();
        });
        ready_rx.recv().unwrap();
        Bare { stop, thread }
    }

    /// Sends the shutdown and joins.
    fn stop(self) {
        self.stop.send(()).unwrap();
        self.thread.join().unwrap();
    }
}

/// The bare tree: a body thread and three children, started in order, stopped newest first.
fn bare_tree() {
    let threads: Vec<Bare> = (0..=CHILDREN.len()).map(|_| Bare::start()).collect();
    for bare in threads.into_iter().rev() {
        bare.stop();
    }
}

fn start_stop(c: &mut Criterion) {
    let dirs = TempDirs::new("tree", 1);
    // Built once: `Session::new` resolves the path, which is not part of a start.
    let session = common::session(&dirs.dirs()[0]);
    let sup = SessionSupervisor::<()>::new();
    let mut group = c.benchmark_group("tree/start_stop");
    group.bench_function("session", |b| {
        b.iter(|| {
            let handle = sup
                .start(session.clone())
                .body(stub::tree(CHILDREN))
                .unwrap();
            handle.stop().unwrap()
        })
    });
    group.bench_function("bare", |b| b.iter(bare_tree));
    group.finish();
    assert_eq!(sup.count(), 0, "every session was stopped");
}

/// The bare two-level table: session id -> (child name -> child).
type BareTable = RwLock<HashMap<SessionId, Arc<RwLock<HashMap<String, Arc<String>>>>>>;

fn child_lookup(c: &mut Criterion) {
    let dirs = TempDirs::new("tree-lookup", 1);
    let sup = SessionSupervisor::<()>::new();
    let handle = sup
        .start(dirs.sessions().remove(0))
        .body(stub::tree(CHILDREN))
        .unwrap();
    let id = handle.id();

    let bare: BareTable = RwLock::new(HashMap::new());
    let children = CHILDREN
        .iter()
        .map(|name| (name.to_string(), Arc::new(name.to_string())))
        .collect();
    bare.write().insert(id, Arc::new(RwLock::new(children)));

    let mut group = c.benchmark_group("tree/child_lookup");
    let mut next = CHILDREN.iter().cycle();
    group.bench_function("session", |b| {
        b.iter(|| sup.find_child(id, next.next().unwrap()).unwrap())
    });
    group.bench_function("handle", |b| {
        b.iter(|| handle.child(next.next().unwrap()).unwrap())
    });
    group.bench_function("bare", |b| {
        b.iter(|| {
            let table = bare.read().get(&id).cloned().unwrap();
            let child = table.read().get(*next.next().unwrap()).cloned();
            child.unwrap()
        })
    });
    group.finish();
    handle.stop().unwrap();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = start_stop, child_lookup
}
criterion_main!(benches);
