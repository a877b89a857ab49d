//! A session whose body panics: restarted by its policy, then giving up.
//!
//! Run with `cargo run --example crash_restart`.

use std::time::Duration;

use session_supervisor::{
    body_fn, Restart, RestartPolicy, Session, SessionEvent, SessionId, SessionSupervisor,
};

fn main() -> Result<(), session_supervisor::Error> {
    let dir = std::env::temp_dir().join(format!("crash-restart-{}", SessionId::new()));
    std::fs::create_dir_all(&dir).expect("create a temp project directory");

    // A program may replace the standard panic message (with its backtrace) by one
    // line; the library never touches this process-wide hook itself.
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        eprintln!("panic on thread {:?}: {info}", thread.name().unwrap_or("?"));
    }));

    let sup = SessionSupervisor::new();
    let events = sup.subscribe();
    // Restart after each panic, at most 3 times within 10 seconds, 50 ms apart.
    let policy = RestartPolicy::new(Restart::Transient)
        .intensity(3, Duration::from_secs(10))
        .backoff(Duration::from_millis(50));
    let body = body_fn(|ctx| {
        println!(
            "run {}: working on {}",
            ctx.restarts() + 1,
            ctx.session().name()
        );
        panic!("simulated crash in run {}", ctx.restarts() + 1);
    });
    let handle = sup.start_session_with_policy(
        Session::builder(&dir).name("worker").build()?,
        body,
        policy,
    )?;

    // The events tell the story; the session's end closes it.
    while let Some(event) = events.recv_timeout(Duration::from_secs(10)) {
        match event {
            SessionEvent::Started { id, .. } => println!("started   {id}"),
            SessionEvent::Restarted {
                restarts, reason, ..
            } => {
                println!("restarted ({restarts}) after: {reason}")
            }
            SessionEvent::Exited { reason, .. } => {
                println!("exited:   {reason}");
                break;
            }
            other => println!("{other:?}"),
        }
    }
    let report = handle
        .wait_timeout(Duration::from_secs(10))
        .expect("the session gave up");
    println!(
        "report:   {} restarts, registered afterwards: {}",
        report.restarts(),
        sup.session_running(handle.id())
    );
    std::fs::remove_dir_all(&dir).expect("remove the temp directory");
    Ok(())
}
