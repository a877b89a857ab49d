//! An editor-like loop: one session per project directory, opened and closed by
//! commands on standard input; on end of input (Ctrl-D, or input from a file or pipe)
//! every session is shut down cleanly, and the report printed.
//!
//! Run with `cargo run --example interactive -- [DIR...]`, then type commands:
//! `open DIR`, `close NAME`, `list`, `quit`.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use session_supervisor::{Error, Session, SessionSupervisor};

fn main() {
    let sup = SessionSupervisor::builder()
        .stop_timeout(Duration::from_secs(2))
        .build();
    for dir in std::env::args_os().skip(1) {
        run(&sup, &format!("open {}", PathBuf::from(dir).display()));
    }
    for line in std::io::stdin().lock().lines() {
        match line {
            Ok(line) if line.trim() == "quit" => break,
            Ok(line) => run(&sup, &line),
            Err(err) => {
                eprintln!("interactive: cannot read input: {err}");
                break;
            }
        }
    }
    // End of input: stop every session at once, each within the stop timeout.
    let report = sup.shutdown();
    for ended in report.exited() {
        println!("closed {}: {}", ended.session().name(), ended.reason());
    }
    for id in report.timed_out() {
        println!("still running after the stop timeout: {id}");
    }
    println!("shut down: {} sessions closed", report.exited().len());
}

/// Runs one command, printing what happened.
fn run(sup: &SessionSupervisor, line: &str) {
    let result = match line.trim().split_once(' ') {
        Some(("open", dir)) => open(sup, dir),
        Some(("close", name)) => close(sup, name),
        None if line.trim() == "list" => {
            for stats in sup.snapshot().sessions() {
                let session = stats.session();
                println!(
                    "{:<20} {:?}, idle for {:.1?}  {}",
                    session.name(),
                    stats.state(),
                    stats.idle_for(),
                    session.project_path().display()
                );
            }
            Ok(())
        }
        _ if line.trim().is_empty() => Ok(()),
        _ => {
            println!("commands: open DIR, close NAME, list, quit");
            Ok(())
        }
    };
    if let Err(err) = result {
        println!("error: {err}");
    }
}

fn open(sup: &SessionSupervisor, dir: &str) -> Result<(), Error> {
    // A real editor would watch and index the directory here.
    let handle = sup.start_session(Session::new(dir)?, |ctx| ctx.wait_for_stop())?;
    println!("opened {}", handle.session().name());
    Ok(())
}

fn close(sup: &SessionSupervisor, name: &str) -> Result<(), Error> {
    let report = sup.find_by_name(name)?.stop()?;
    println!("closed {name}: {}", report.reason());
    Ok(())
}
