//! The idle watcher is one thread per supervisor, started with the first session that
//! needs it and joined by the shutdown.
//!
//! Alone in its file: it counts the process's watcher threads, which other tests
//! running in parallel would start too.

mod common;

use std::time::Duration;

use common::{guard, settled_count, threads_named, Projects};
use session_supervisor::{stub, Error};

/// The watcher thread's name, as Linux keeps it (15 bytes).
const WATCHER: &str = "session-idle-wa";

#[test]
fn one_watcher_per_supervisor_started_on_first_need_and_joined_at_shutdown() {
    guard!(|| {
        let projects = Projects::new(3);
        let sup = common::supervisor();
        let plain = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        assert_eq!(threads_named(WATCHER).unwrap_or(0), 0, "not needed yet");
        for i in 1..3 {
            sup.start(projects.session(i))
                .idle_timeout(Duration::from_secs(60))
                .run(stub::idle())
                .unwrap();
        }
        // Linux only: elsewhere the count is unknown and the checks are skipped.
        let one = settled_count(|| threads_named(WATCHER), 1);
        assert!(
            one.is_none_or(|n| n == 1),
            "one watcher for two sessions: {one:?}"
        );
        plain.stop().unwrap();
        let report = sup.shutdown();
        assert_eq!(report.exited().len(), 2);
        let none = settled_count(|| threads_named(WATCHER), 0);
        assert!(none.is_none_or(|n| n == 0), "joined at shutdown: {none:?}");

        // After the shutdown, a start with an idle timeout starts no watcher.
        let late = sup
            .start(projects.session(0))
            .idle_timeout(Duration::from_secs(60))
            .run(stub::idle());
        assert!(matches!(late, Err(Error::ShuttingDown)), "{late:?}");
        assert_eq!(
            threads_named(WATCHER).unwrap_or(0),
            0,
            "no watcher after shutdown"
        );
    });
}
