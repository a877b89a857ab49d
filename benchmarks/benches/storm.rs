//! `storm`: supervisor lookups (`lookup` by id, `lookup_by_path`) among 10 running
//! sessions, `idle` with nothing else going on, and under a `storm`: a second thread
//! starting and stopping another session on a warm thread back to back, without pause,
//! so that the registry is written (a register and an unregister) every few
//! microseconds. The ratio `storm / idle` is what a start/stop storm costs a reader.
//!
//! The storm thread prints its cycles per second after each pair of benches.

mod common;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use session_supervisor::{stub, Session, SessionId, SessionSupervisor};

use common::{Churn, TempDirs};

/// Sessions the readers look up.
const RESIDENT: usize = 10;

/// Warm start + stop cycles on `session`, back to back, until dropped.
fn start_storm(sup: &Arc<SessionSupervisor>, session: Session) -> Churn {
    let sup = Arc::clone(sup);
    Churn::start("storm: warm start + stop", None, move || {
        let handle = sup.start_session(session.clone(), stub::idle()).unwrap();
        handle.stop().unwrap();
    })
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
        let _storm = storm.then(|| start_storm(&sup, spare.clone()));
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
