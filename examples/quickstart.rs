//! Starts three sessions on fresh temp directories, shows the limit and duplicate
//! errors, looks the sessions up, and stops them.
//!
//! Run with `cargo run --example quickstart`.

use std::path::PathBuf;

use session_supervisor::{Error, Session, SessionId, SessionSupervisor};

fn main() -> Result<(), Error> {
    let base = std::env::temp_dir().join(format!("quickstart-{}", SessionId::new()));
    let dirs: Vec<PathBuf> = ["alpha", "beta", "gamma", "delta"]
        .iter()
        .map(|name| base.join(name))
        .collect();
    for dir in &dirs {
        std::fs::create_dir_all(dir).expect("create a temp project directory");
    }

    let sup = SessionSupervisor::builder().max_sessions(3).build();
    println!("supervisor ready: at most {} sessions", sup.max_sessions());

    // 1. Start three sessions; each body idles on its own thread until stopped.
    let mut ids = Vec::new();
    for dir in &dirs[..3] {
        let handle = sup.start_session(Session::new(dir)?, |ctx| {
            ctx.wait_for_shutdown();
        })?;
        let session = sup.lookup(handle.id())?;
        println!(
            "started  {:<6} {}  ({})",
            session.name(),
            handle.id(),
            dir.display()
        );
        ids.push(*handle.id());
    }

    // 2. A fourth session is over the limit.
    let over = sup.start_session(Session::new(&dirs[3])?, |ctx| ctx.wait_for_shutdown());
    println!("4th start: {}", over.unwrap_err());

    // 3. One directory, one session, however the path is spelled.
    sup.stop_session(&ids[2])?;
    let spelled = dirs[0].join("..").join("alpha");
    let duplicate = sup.start_session(Session::new(&spelled)?, |ctx| ctx.wait_for_shutdown());
    println!("duplicate: {}", duplicate.unwrap_err());
    println!("stopped  gamma, {} sessions left", sup.count());

    // 4. Lookups by id, by path and by name.
    let by_path = sup.lookup_by_path(&spelled)?;
    let by_name = sup.lookup_by_name("beta")?;
    println!("by path  {} -> {}", spelled.display(), by_path.name());
    println!("by name  beta -> {}", by_name.id());
    for session in sup.list_all() {
        println!(
            "listed   {:<6} running: {}",
            session.name(),
            sup.session_running(session.id())
        );
    }

    // 5. Stop the rest and report how each ended.
    for id in &ids[..2] {
        let report = sup.stop_session(id)?;
        println!(
            "stopped  {id}: {} after {:?}",
            report.reason(),
            report.run_time()
        );
    }
    println!("done: {} sessions running", sup.count());
    std::fs::remove_dir_all(&base).expect("remove the temp directories");
    Ok(())
}
