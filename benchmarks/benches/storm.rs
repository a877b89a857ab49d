//! `storm`: supervisor lookups (`lookup` by id, `lookup_by_path`) among 10 running
//! sessions, `idle` with nothing else going on, and under a `storm`: a second thread
//! starting and stopping another session on a warm thread back to back, without pause,
//! so that the registry is written (a register and an unregister) every few
//! microseconds. The ratio `storm / idle` is what a start/stop storm costs a reader.
//!
//! The storm thread prints its cycles per second after each bench.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use session_supervisor::{stub, Session, SessionId, SessionSupervisor};

use common::TempDirs;

/// Sessions the readers look up.
const RESIDENT: usize = 10;

/// Warm start + stop cycles on `session`, back to back, until dropped.
struct Storm {
    stop: Arc<AtomicBool>,
    cycles: Arc<AtomicU64>,
    began: Instant,
    thread: Option<JoinHandle<()>>,
}

impl Storm {
    fn start(sup: &Arc<SessionSupervisor>, session: Session) -> Storm {
        let stop = Arc::new(AtomicBool::new(false));
        let cycles = Arc::new(AtomicU64::new(0));
        let (flag, count, sup) = (Arc::clone(&stop), Arc::clone(&cycles), Arc::clone(sup));
        let thread = thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let handle = sup.start_session(session.clone(), stub::idle()).unwrap();
                handle.stop().unwrap();
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        Storm {
            stop,
            cycles,
            began: Instant::now(),
            thread: Some(thread),
        }
    }
}

impl Drop for Storm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        let rate = self.cycles.load(Ordering::Relaxed) as f64 / self.began.elapsed().as_secs_f64();
        println!("storm: {rate:.0} warm start + stop cycles/s");
    }
}

fn lookups(c: &mut Criterion) {
    let dirs = TempDirs::new("storm", RESIDENT + 1);
    let mut sessions = dirs.sessions();
    let spare = sessions.pop().unwrap();
    let sup = Arc::new(
        SessionSupervisor::builder()
            .max_sessions(RESIDENT + 1)
            .warm_threads(1)
            .build(),
    );
    sup.warm_up().unwrap();
    let ids: Vec<SessionId> = sessions.iter().map(Session::id).collect();
    let paths: Vec<_> = sessions
        .iter()
        .map(|s| s.project_path().to_owned())
        .collect();
    for session in sessions {
        sup.start_session(session, stub::idle()).unwrap();
    }

    let mut group = c.benchmark_group("storm");
    for storm in [false, true] {
        let name = if storm { "storm" } else { "idle" };
        let _storm = storm.then(|| Storm::start(&sup, spare.clone()));
        let mut next = ids.iter().cycle();
        group.bench_function(format!("by_id/{name}"), |b| {
            b.iter(|| sup.lookup(*next.next().unwrap()).unwrap())
        });
        let mut next = paths.iter().cycle();
        group.bench_function(format!("by_path/{name}"), |b| {
            b.iter(|| sup.lookup_by_path(next.next().unwrap()).unwrap())
        });
    }
    group.finish();
    assert!(sup.shutdown().is_complete());
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = lookups
}
criterion_main!(benches);
