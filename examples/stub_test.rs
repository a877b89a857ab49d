//! Testing code that drives a supervisor, with stub bodies in place of the real work:
//! no sleeps, every wait bounded and woken by the session itself.
//!
//! `cargo test --example stub_test` runs the checks as unit tests; `cargo run --example
//! stub_test` runs them as a program.

use std::sync::mpsc;
use std::time::Duration;

use session_supervisor::{
    stub, Error, Restart, RestartPolicy, Session, SessionHandle, SessionSupervisor,
};

const TIMEOUT: Duration = Duration::from_secs(5);

/// The code under test: a workspace that opens one session per directory and hands
/// back the one already open when a directory is opened again.
struct Workspace {
    sup: SessionSupervisor,
}

impl Workspace {
    fn open(
        &self,
        dir: &std::path::Path,
        body: impl FnMut(&session_supervisor::SessionContext) + Send + 'static,
    ) -> Result<SessionHandle, Error> {
        match self.sup.start_session(Session::new(dir)?, body) {
            Err(Error::ProjectAlreadyOpen { .. }) => self.sup.find_by_path(dir),
            started => started,
        }
    }
}

#[cfg_attr(test, test)]
fn opening_a_directory_twice_gives_the_same_session() {
    let dir = temp_dir("twice");
    let workspace = Workspace {
        sup: SessionSupervisor::new(),
    };
    let (runs_tx, runs) = mpsc::channel();
    let first = workspace.open(&dir, stub::reports(runs_tx)).unwrap();
    assert_eq!(runs.recv_timeout(TIMEOUT).unwrap(), (first.id(), 0));
    let again = workspace.open(&dir, stub::idle()).unwrap();
    assert_eq!(again.id(), first.id());
    assert_eq!(workspace.sup.count(), 1);
    first.stop().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg_attr(test, test)]
fn a_crashing_session_is_restarted_until_it_gives_up() {
    session_supervisor::quiet_session_panics();
    let dir = temp_dir("crash");
    let sup = SessionSupervisor::builder()
        .restart_policy(RestartPolicy::new(Restart::Transient).intensity(2, TIMEOUT))
        .build();
    let handle = sup
        .start_session(Session::new(&dir).unwrap(), stub::panics("boom"))
        .unwrap();
    let report = handle.wait_timeout(TIMEOUT).expect("gave up");
    assert_eq!(report.restarts(), 2);
    assert_eq!(sup.count(), 0);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A fresh directory for one check.
fn temp_dir(name: &str) -> std::path::PathBuf {
    let id = session_supervisor::SessionId::new();
    let dir = std::env::temp_dir().join(format!("stub-test-{name}-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn main() {
    opening_a_directory_twice_gives_the_same_session();
    a_crashing_session_is_restarted_until_it_gives_up();
    println!("stub_test: all checks passed");
}
