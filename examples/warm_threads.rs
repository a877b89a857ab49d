//! Warm threads: an editor that opens and closes projects all day, or a test suite that
//! starts a stub session per test, pays a thread spawn and a join per session. With
//! `warm_threads(n)`, a stopped session's thread stays parked and the next start takes
//! it.
//!
//! This opens and closes the same projects 500 times on two supervisors, one without
//! warm threads and one with two, and prints what each cycle cost and how many threads
//! the warm supervisor spawned in all.
//!
//! Run with `cargo run --example warm_threads`.

use std::collections::HashSet;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use session_supervisor::crossbeam_channel::{unbounded, Sender};
use session_supervisor::{Error, Session, SessionSupervisor, WARM_THREAD_NAME};

const CYCLES: u32 = 500;

fn main() -> Result<(), Error> {
    let base = std::env::temp_dir().join(format!("warm-threads-{}", std::process::id()));
    let projects: Vec<Session> = ["editor", "notes"]
        .iter()
        .map(|name| {
            let dir = base.join(name);
            std::fs::create_dir_all(&dir).expect("create a project directory");
            Session::new(dir)
        })
        .collect::<Result<_, _>>()?;

    let cold = SessionSupervisor::new();
    let (cold_time, _) = open_and_close(&cold, &projects)?;

    let warm = SessionSupervisor::builder()
        .warm_threads(2)
        .warm_thread_timeout(Duration::from_secs(1))
        .build();
    println!("warm_up: {} threads parked", warm.warm_up()?);
    let (warm_time, threads) = open_and_close(&warm, &projects)?;

    println!("without warm threads: {:>8.1?} per open + close", cold_time);
    println!("with 2 warm threads:  {:>8.1?} per open + close", warm_time);
    let (sessions, used) = (CYCLES as usize * projects.len(), threads.len());
    let threads_word = if used == 1 { "thread" } else { "threads" };
    println!(
        "the warm supervisor ran {sessions} sessions on {used} {threads_word}, named {WARM_THREAD_NAME:?}"
    );
    let parked = warm.idle_threads();
    let report = warm.shutdown();
    println!(
        "shutdown: {} sessions were running; parked threads {parked} -> {} (joined)",
        report.exited().len(),
        warm.idle_threads()
    );
    std::fs::remove_dir_all(&base).expect("remove the project directories");
    Ok(())
}

/// Opens every project and closes it again, `CYCLES` times; returns the mean time of
/// one open + close and the threads the sessions ran on.
fn open_and_close(
    sup: &SessionSupervisor,
    projects: &[Session],
) -> Result<(Duration, HashSet<ThreadId>), Error> {
    let (threads, thread_rx) = unbounded();
    let began = Instant::now();
    for _ in 0..CYCLES {
        for project in projects {
            let handle = sup.start_session(project.clone(), editor(threads.clone()))?;
            handle.stop()?;
        }
    }
    let per_cycle = began.elapsed() / (CYCLES * projects.len() as u32);
    drop(threads);
    Ok((per_cycle, thread_rx.iter().collect()))
}

/// A project's session: says which thread it runs on, then waits to be closed.
fn editor(threads: Sender<ThreadId>) -> impl FnMut(&session_supervisor::SessionContext) {
    move |ctx| {
        let _ = threads.send(thread::current().id());
        ctx.wait_for_stop();
    }
}
