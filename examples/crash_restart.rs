//! A worker that crashes, observed through lifecycle events: restarted from a fresh
//! body with an exponential backoff, then giving up.
//!
//! Run with `cargo run --example crash_restart`.

use std::time::Duration;

use session_supervisor::{Backoff, Restart, RestartPolicy, Session, SessionEvent, SessionId};
use session_supervisor::{ExitReason, SessionSupervisor};

fn main() -> Result<(), session_supervisor::Error> {
    let dir = std::env::temp_dir().join(format!("crash-restart-{}", SessionId::new()));
    std::fs::create_dir_all(&dir).expect("create a temp project directory");

    // The crashes are expected: keep them off stderr (they are still logged).
    session_supervisor::quiet_session_panics();

    let sup = SessionSupervisor::new();
    let events = sup.subscribe();
    // Restart after each panic, at most 3 times within 10 seconds, waiting 20 ms, then
    // 40, then 80 (each jittered down by up to a half).
    let backoff = Backoff::exponential(Duration::from_millis(20), Duration::from_secs(1));
    let policy = RestartPolicy::new(Restart::Transient)
        .intensity(3, Duration::from_secs(10))
        .backoff(backoff);
    let session = Session::builder(&dir).name("worker").build()?;
    sup.start(session).policy(policy).run_factory(|| {
        // A fresh body for every run: nothing of a crashed run carries over.
        let mut jobs_done = 0;
        move |ctx| {
            jobs_done += 1;
            println!("run {}: {jobs_done} job done", ctx.restarts() + 1);
            panic!("simulated crash in run {}", ctx.restarts() + 1);
        }
    })?;

    // The events tell the story, each naming its session; the end closes it.
    for event in &events {
        let name = event.session().name().to_owned();
        match event {
            SessionEvent::Started { .. } => println!("{name}: started"),
            SessionEvent::Restarting {
                restarts,
                delay,
                reason,
                ..
            } => println!("{name}: {reason}; restart {restarts} in {delay:.1?}"),
            SessionEvent::Restarted { restarts, .. } => {
                println!("{name}: restart {restarts} runs")
            }
            SessionEvent::Exited { reason, .. } => {
                println!("{name}: exited: {reason}");
                assert!(matches!(
                    reason,
                    ExitReason::RestartLimit { restarts: 3, .. }
                ));
                break;
            }
            other => println!("{other:?}"),
        }
    }
    println!("sessions left: {}", sup.count());
    std::fs::remove_dir_all(&dir).expect("remove the temp directory");
    Ok(())
}
