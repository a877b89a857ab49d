//! Opens one session per project directory, asks each to count its files, looks the
//! sessions up by name and by path, then stops them and prints how each ended.
//!
//! Run with `cargo run --example project_sessions -- DIR...` (without directories it
//! uses this crate's own `src`, `tests` and `examples`).

use std::path::PathBuf;
use std::time::Duration;

use session_supervisor::{Error, ReplyTo, Session, SessionContext, SessionSupervisor};

/// The one request these sessions answer.
enum Msg {
    CountFiles(ReplyTo<std::io::Result<usize>>),
}

fn count_files(ctx: &SessionContext<Msg>) {
    while let Some(Msg::CountFiles(reply)) = ctx.recv() {
        let dir = ctx.session().project_path();
        reply.send(std::fs::read_dir(dir).map(|entries| entries.count()));
    }
}

fn main() {
    let mut dirs: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if dirs.is_empty() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        dirs = ["src", "tests", "examples"]
            .iter()
            .map(|d| root.join(d))
            .collect();
    }
    if let Err(err) = run(&dirs) {
        eprintln!("project_sessions: {err}");
        std::process::exit(1);
    }
}

fn run(dirs: &[PathBuf]) -> Result<(), Error> {
    let sup = SessionSupervisor::builder()
        .messages::<Msg>()
        .max_sessions(dirs.len())
        .build();
    for dir in dirs {
        match sup.start_session(Session::new(dir)?, count_files) {
            Ok(handle) => println!("opened  {} as {}", dir.display(), handle.session().name()),
            // Two spellings of one directory: the second is refused, the rest go on.
            Err(err @ Error::ProjectAlreadyOpen { .. }) => println!("skipped {err}"),
            Err(err) => return Err(err),
        }
    }

    for handle in sup.list_sessions() {
        let name = handle.session().name().to_owned();
        match handle.call(Msg::CountFiles, Duration::from_secs(5))? {
            Ok(files) => println!("{name:<20} {files} files"),
            Err(err) => println!("{name:<20} cannot list: {err}"),
        }
    }

    // Found by name or by path, a session is a handle to talk to, or to stop.
    if let Some(first) = sup.list_all().first() {
        let by_name = sup.find_by_name(first.name())?;
        let by_path = sup.find_by_path(first.project_path())?;
        assert_eq!(by_name.id(), by_path.id());
        let files = by_path.call(Msg::CountFiles, Duration::from_secs(5))?;
        println!(
            "{:?} found by name and by path: {files:?} files",
            first.name()
        );
    }

    for handle in sup.list_sessions() {
        let report = handle.stop()?;
        let name = report.session().name().to_owned();
        println!(
            "stopped {name}: {} (ran {:?})",
            report.reason(),
            report.run_time()
        );
    }
    Ok(())
}
