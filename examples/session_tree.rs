//! A supervision tree per project: each session runs an indexer, a watcher that reports
//! the project's files to it and an agent that asks it for a count. One indexer chokes
//! on a file, once: its whole tree restarts (one-for-all, the default), told by events.
//! Then a clean shutdown reports how each session and each child ended.
//!
//! Run with `cargo run --example session_tree`.

use std::collections::BTreeSet;
use std::time::Duration;

use session_supervisor::{
    ChildHandle, Error, ExitReason, InitError, ReplyTo, Session, SessionBody, SessionContext,
    SessionEvent, SessionId, SessionSupervisor, ShutdownReport, Subscription,
};

const TIMEOUT: Duration = Duration::from_secs(5);

/// What the session and its children understand; each ignores what is not for it.
enum Msg {
    /// To the watcher: report every file of the project to the indexer; reply how many.
    Scan(ReplyTo<usize>),
    /// To the indexer: a file to index.
    Changed(String),
    /// To the indexer: reply how many files it has indexed.
    Count(ReplyTo<usize>),
    /// To the session, which hands it to its agent: reply how the project is doing.
    Ask(ReplyTo<String>),
}

/// The session's own body: `init` starts the tree (again on every restart of the
/// session), `run` hands questions to the agent.
#[derive(Default)]
struct Project {
    agent: Option<ChildHandle<Msg>>,
}

impl SessionBody<Msg> for Project {
    fn init(&mut self, ctx: &SessionContext<Msg>) -> Result<(), InitError> {
        // The indexer first: the others talk to it, and children stop newest first.
        let indexer = ctx.spawn_child("indexer", index)?;
        let to_indexer = indexer.clone();
        ctx.spawn_child("watcher", move |child| watch(child, &to_indexer))?;
        self.agent = Some(ctx.spawn_child("agent", move |child| answer(child, &indexer))?);
        Ok(())
    }

    fn run(&mut self, ctx: &SessionContext<Msg>) {
        while let Some(msg) = ctx.recv() {
            if let (Msg::Ask(reply), Some(agent)) = (msg, &self.agent) {
                let _ = agent.send(Msg::Ask(reply)); // the agent replies to the caller
            }
        }
    }
}

/// The indexer: keeps the names it was told of; a `.bin` file makes it panic.
fn index(ctx: &SessionContext<Msg>) {
    let mut files = BTreeSet::new();
    while let Some(msg) = ctx.recv() {
        match msg {
            Msg::Changed(file) if file.ends_with(".bin") => panic!("cannot index {file}"),
            Msg::Changed(file) => drop(files.insert(file)),
            Msg::Count(reply) => reply.send(files.len()),
            _ => {}
        }
    }
}

/// The watcher: on a scan, tells the indexer of every file, in name order.
fn watch(ctx: &SessionContext<Msg>, indexer: &ChildHandle<Msg>) {
    while let Some(msg) = ctx.recv() {
        if let Msg::Scan(reply) = msg {
            let entries = std::fs::read_dir(ctx.session().project_path()).expect("list");
            let files: BTreeSet<String> = entries
                .map(|entry| entry.expect("entry").file_name().to_string_lossy().into())
                .collect();
            for file in &files {
                let _ = indexer.send(Msg::Changed(file.clone())); // fails once it crashed
            }
            reply.send(files.len());
        }
    }
}

/// The agent: answers a question with a call to the indexer.
fn answer(ctx: &SessionContext<Msg>, indexer: &ChildHandle<Msg>) {
    while let Some(msg) = ctx.recv() {
        if let Msg::Ask(reply) = msg {
            match indexer.call(Msg::Count, TIMEOUT) {
                Ok(files) => reply.send(format!("{files} files indexed")),
                Err(err) => reply.send(format!("no count: {err}")),
            }
        }
    }
}

/// The projects: a directory name and the files in it.
const PROJECTS: [(&str, &[&str]); 3] = [
    ("alpha", &["main.rs", "lib.rs", "README.md"]),
    ("beta", &["app.py", "setup.cfg"]),
    ("gamma", &["index.html", "style.css", "app.js", "logo.svg"]),
];

fn main() -> Result<(), Error> {
    let base = std::env::temp_dir().join(format!("session-tree-{}", SessionId::new()));
    for (name, files) in PROJECTS {
        std::fs::create_dir_all(base.join(name)).expect("create a project directory");
        for file in files {
            std::fs::write(base.join(name).join(file), file).expect("write a file");
        }
    }
    session_supervisor::quiet_session_panics(); // the crash below is on purpose

    let sup = SessionSupervisor::builder().messages::<Msg>().build();
    let events = sup.subscribe();
    let mut handles = Vec::new();
    for (name, _) in PROJECTS {
        // `init` started the tree before the start returns: the children are running.
        let handle = sup
            .start(Session::new(base.join(name))?)
            .factory(Project::default)?;
        let children: Vec<String> = handle.children().iter().map(|c| c.name().into()).collect();
        println!("{name:<6} started, children {}", children.join(", "));
        handles.push(handle);
    }
    for (handle, (name, _)) in handles.iter().zip(PROJECTS) {
        let watcher = sup.find_child(handle.id(), "watcher")?;
        let scanned = watcher.call(Msg::Scan, TIMEOUT)?;
        let said = handle.call(Msg::Ask, TIMEOUT)?;
        println!("{name:<6} watcher reported {scanned} files; agent: {said}");
    }

    // A file the indexer cannot take: beta's indexer panics, and its tree restarts.
    let beta = &handles[1];
    let bad_file = base.join("beta").join("core.bin");
    std::fs::write(&bad_file, "?").expect("write a file");
    let old_watcher = beta.child("watcher")?;
    old_watcher.call(Msg::Scan, TIMEOUT)?;
    print_restart(&events, beta.id());

    // The call waits in the session's mailbox for the new run, which starts after
    // `init` started the new tree; the old handles are of children that ended.
    println!("beta   agent (new tree): {}", beta.call(Msg::Ask, TIMEOUT)?);
    println!("beta   old watcher running: {}", old_watcher.is_running());
    std::fs::remove_file(&bad_file).expect("remove the file");
    let scanned = beta.child("watcher")?.call(Msg::Scan, TIMEOUT)?;
    let said = beta.call(Msg::Ask, TIMEOUT)?;
    println!("beta   rescanned {scanned} files; agent: {said}");

    print_shutdown(&sup.shutdown());
    std::fs::remove_dir_all(&base).expect("remove the temp directories");
    Ok(())
}

/// Waits for the session's restart, printing the ends of its children that came first.
fn print_restart(events: &Subscription, id: SessionId) {
    let mut ended = Vec::new();
    let restarted = loop {
        match events.recv_timeout(TIMEOUT).expect("the tree restarts") {
            event if event.id() != id => {}
            SessionEvent::ChildExited { child, reason, .. } => ended.push((child, reason)),
            SessionEvent::Restarted { reason, .. } => break reason,
            _ => {}
        }
    };
    // The crashed child ends on its own thread while the session stops the others:
    // its event may come first or not. The crash first, then the stops, newest first.
    ended.sort_by_key(|(_, reason)| *reason == ExitReason::Stopped);
    for (child, reason) in &ended {
        println!("beta   event: child {child} exited: {reason}");
    }
    println!("beta   event: restarted after: {restarted}");
}

/// How each session ended (newest first), and each of its children (newest first).
fn print_shutdown(report: &ShutdownReport) {
    assert!(report.is_complete());
    for exit in report.exited() {
        let (name, reason) = (exit.session().name(), exit.reason());
        println!("{name:<6} {reason}, restarts: {}", exit.restarts());
        for child in exit.children() {
            println!("         {:<8} {}", child.name(), child.reason());
        }
    }
}
