//! Starts three sessions on fresh temp directories, talks to them, shows the limit and
//! duplicate errors, looks the sessions up, reads their stats, and stops them.
//!
//! Run with `cargo run --example quickstart`.

use std::path::PathBuf;
use std::time::Duration;

use session_supervisor::{Error, ReplyTo, Session, SessionContext, SessionId, SessionSupervisor};

/// What the sessions understand.
enum Msg {
    /// Write a note into the project directory.
    Note(String),
    /// Reply with the number of files in the project directory.
    CountFiles(ReplyTo<usize>),
}

/// Every session runs this on its own thread until it is asked to stop.
fn project_body(ctx: &SessionContext<Msg>) {
    let dir = ctx.session().project_path().to_path_buf();
    while let Some(msg) = ctx.recv() {
        match msg {
            Msg::Note(text) => {
                let file = dir.join(format!("note-{}.txt", text.len()));
                std::fs::write(file, text).expect("write a note");
            }
            Msg::CountFiles(reply) => {
                reply.send(std::fs::read_dir(&dir).map_or(0, |entries| entries.count()));
            }
        }
    }
}

fn main() -> Result<(), Error> {
    let base = std::env::temp_dir().join(format!("quickstart-{}", SessionId::new()));
    let dirs: Vec<PathBuf> = ["alpha", "beta", "gamma", "delta"]
        .iter()
        .map(|name| base.join(name))
        .collect();
    for dir in &dirs {
        std::fs::create_dir_all(dir).expect("create a temp project directory");
    }

    let sup = SessionSupervisor::builder()
        .messages::<Msg>()
        .max_sessions(3)
        .build();
    let events = sup.subscribe();
    println!("supervisor ready: at most {} sessions", sup.max_sessions());

    // 1. Start three sessions, one per project directory.
    let mut handles = Vec::new();
    for dir in &dirs[..3] {
        let handle = sup.start_session(Session::new(dir)?, project_body)?;
        println!("started   {:<6} {}", handle.session().name(), handle.id());
        handles.push(handle);
    }

    // 2. Talk to them: a message, then a call that waits for the reply.
    handles[0].send(Msg::Note("hello from quickstart".into()))?;
    handles[0].send(Msg::Note("a second note".into()))?;
    let files = handles[0].call(Msg::CountFiles, Duration::from_secs(5))?;
    println!("alpha     has {files} files after two notes");

    // 3. A fourth session is over the limit.
    let over = sup.start_session(Session::new(&dirs[3])?, project_body);
    println!("4th start refused: {}", over.unwrap_err());

    // 4. One directory, one session, however the path is spelled (with room below the
    //    limit, so the duplicate is what is refused).
    let gamma = handles.pop().expect("three handles");
    let report = gamma.stop()?;
    println!(
        "stopped   gamma: {}, {} sessions left",
        report.reason(),
        sup.count()
    );
    let spelled = dirs[0].join("..").join("alpha");
    let duplicate = sup.start_session(Session::new(&spelled)?, project_body);
    println!("duplicate refused: {}", duplicate.unwrap_err());

    // 5. Lookups by id, by path and by name; a handle found by path can be talked to.
    let alpha = sup.find_by_path(&spelled)?;
    let files = alpha.call(Msg::CountFiles, Duration::from_secs(5))?;
    println!(
        "by path   {} -> {} ({files} files)",
        spelled.display(),
        alpha.session().name()
    );
    println!("by name   beta -> {}", sup.find_by_name("beta")?.id());
    println!(
        "by id     {} -> {}",
        handles[1].id(),
        sup.lookup(handles[1].id())?.name()
    );

    // 6. What each session is doing, read from its own counters, without a message.
    for stats in sup.snapshot().sessions() {
        println!(
            "stats     {:<6} {:?}, {} messages handled, idle for {:?}",
            stats.session().name(),
            stats.state(),
            stats.messages_handled(),
            stats.idle_for()
        );
    }

    // 7. Stop the rest and report how each ended.
    for handle in &handles {
        let report = handle.stop()?;
        println!(
            "stopped   {}: {} after {:?}",
            report.session().name(),
            report.reason(),
            report.run_time()
        );
    }
    let seen = std::iter::from_fn(|| events.try_recv()).count();
    println!(
        "done: {} sessions running, {seen} lifecycle events seen",
        sup.count()
    );
    std::fs::remove_dir_all(&base).expect("remove the temp directories");
    Ok(())
}
