//! Starting sessions: admission, handles, cleanup after a failed start, `create_session`,
//! and sessions that end by themselves.

mod common;

use std::sync::Barrier;
use std::thread;

use common::{guard, recv_within, Projects, TIMEOUT};
use crossbeam_channel::{unbounded, Sender, TryRecvError};
use session_supervisor::{
    stub, Error, ExitReason, InitError, Restart, RestartPolicy, Session, SessionBody,
    SessionContext, SessionId, SessionKey, SessionSupervisor, WARM_THREAD_NAME,
};

/// A body whose `init` tells the test the name of the thread it runs on.
struct ReportsInit(Sender<Option<String>>);

impl SessionBody for ReportsInit {
    fn init(&mut self, _: &SessionContext) -> Result<(), InitError> {
        let name = thread::current().name().map(str::to_owned);
        self.0.send(name)?;
        Ok(())
    }

    fn run(&mut self, ctx: &SessionContext) {
        ctx.wait_for_stop();
    }
}

/// How [`FailingInit`] fails.
#[derive(Clone, Copy, Debug)]
enum InitFailure {
    Error,
    Panic,
}

/// A body whose `init` fails with this message, as an error or as a panic.
struct FailingInit(InitFailure, &'static str);

impl SessionBody for FailingInit {
    fn init(&mut self, _: &SessionContext) -> Result<(), InitError> {
        match self.0 {
            InitFailure::Error => Err(self.1.into()),
            InitFailure::Panic => panic!("{}", self.1),
        }
    }

    fn run(&mut self, _: &SessionContext) {
        panic!("run must not be called after a failed init");
    }
}

/// Whether a lookup by this path finds nothing.
fn path_is_free(sup: &SessionSupervisor, path: impl AsRef<std::path::Path>) -> bool {
    matches!(sup.lookup_by_path(path), Err(Error::NotFound { .. }))
}

/// `guard!` names the watchdog, and the thread the test runs on, after the test
/// function it is called in.
#[test]
fn the_guard_is_named_after_its_test() {
    guard!(|| {
        let thread = std::thread::current();
        assert_eq!(thread.name(), Some("the_guard_is_named_after_its_test"));
    });
}

#[test]
fn start_session_registers_the_session() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let session = projects.session(0);

        sup.start_session(session.clone(), |ctx| ctx.wait_for_stop())
            .unwrap();

        assert_eq!(sup.count(), 1);
        assert_eq!(sup.lookup(session.id()).unwrap(), session);
        assert_eq!(sup.lookup_by_path(projects.path(0)).unwrap(), session);
        assert_eq!(sup.list_ids(), vec![session.id()]);
        assert!(sup.session_running(session.id()));
    });
}

#[test]
fn start_session_returns_a_handle_to_the_running_session() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let session = projects.session(0);
        let (ran_tx, ran_rx) = unbounded();

        let handle = sup
            .start_session(session.clone(), stub::reports(ran_tx))
            .unwrap();

        assert_eq!(handle.id(), session.id());
        // The body runs with this very session.
        assert_eq!(recv_within(&ran_rx, "the body to run"), (session.id(), 0));
        assert!(handle.is_running());
        assert!(!handle.stop_requested());
        assert_eq!(sup.find_session(session.id()).unwrap().id(), handle.id());
        assert!(format!("{handle:?}").contains(&session.id().to_string()));
    });
}

#[test]
fn start_returns_after_init_ran_on_a_thread_named_after_the_session_or_the_pool() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let session = Session::builder(projects.path(0))
            .name("indexer")
            .build()
            .unwrap();
        let (init_tx, init_rx) = unbounded();

        sup.start(session).body(ReportsInit(init_tx)).unwrap();

        // Not recv_within: init must already have run when start_session returned.
        let thread_name = init_rx.try_recv().expect("init ran before start returned");
        // A warm thread runs many sessions, so it carries the pool's name instead.
        let expected = match common::warm_threads() {
            0 => "indexer",
            _ => WARM_THREAD_NAME,
        };
        assert_eq!(thread_name.as_deref(), Some(expected));
    });
}

#[test]
fn start_fails_at_the_limit_and_admits_again_after_a_stop() {
    guard!(move || {
        let projects = Projects::new(3);
        let sup = common::builder().max_sessions(2).build();
        let first = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        sup.start_session(projects.session(1), stub::idle())
            .unwrap();
        let third = projects.session(2);
        let (ran_tx, ran_rx) = unbounded();

        let err = sup
            .start_session(third.clone(), stub::reports(ran_tx))
            .unwrap_err();

        assert!(
            matches!(err, Error::SessionLimitReached { max: 2 }),
            "{err:?}"
        );
        assert_eq!(sup.count(), 2);
        assert!(!sup.session_running(third.id()));
        assert!(path_is_free(&sup, projects.path(2)));
        // The refused body was dropped without ever running.
        assert_eq!(ran_rx.try_recv(), Err(TryRecvError::Disconnected));

        first.stop().unwrap();
        let admitted = sup.start_session(third, stub::idle()).unwrap();
        assert!(sup.session_running(admitted.id()));
    });
}

#[test]
fn start_fails_for_a_duplicate_id() {
    guard!(move || {
        let projects = Projects::new(2);
        let sup = common::supervisor();
        let first = projects.session(0);
        sup.start_session(first.clone(), stub::idle()).unwrap();
        let same_id = Session::builder(projects.path(1))
            .id(first.id())
            .build()
            .unwrap();

        let err = sup.start_session(same_id, stub::idle()).unwrap_err();

        assert!(
            matches!(&err, Error::SessionExists { id } if *id == first.id()),
            "{err:?}"
        );
        assert_eq!(sup.count(), 1);
        assert_eq!(sup.lookup(first.id()).unwrap(), first);
        assert!(path_is_free(&sup, projects.path(1)));
    });
}

#[test]
fn start_fails_for_a_duplicate_path() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let first = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        let second = projects.session(0);

        let err = sup.start_session(second.clone(), stub::idle()).unwrap_err();

        assert!(
            matches!(&err, Error::ProjectAlreadyOpen { path, id }
                if *path == projects.path(0) && *id == first.id()),
            "{err:?}"
        );
        assert_eq!(sup.count(), 1);
        assert!(!sup.session_running(second.id()));
    });
}

#[test]
fn start_fails_for_the_same_path_spelled_differently() {
    guard!(move || {
        let projects = Projects::new(2);
        let sup = common::supervisor();
        let first = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        let canonical = projects.path(0);
        let mut spellings = vec![
            canonical.join("."),
            projects.path(1).join("..").join("0"),
            projects.base().join(".").join("0").join(""),
        ];
        #[cfg(unix)]
        {
            let link = projects.base().join("link-to-0");
            std::os::unix::fs::symlink(&canonical, &link).unwrap();
            spellings.push(link);
        }

        for spelling in spellings {
            let err = sup
                .start_session(Session::new(&spelling).unwrap(), stub::idle())
                .unwrap_err();
            assert!(
                matches!(&err, Error::ProjectAlreadyOpen { path, id }
                    if *path == canonical && *id == first.id()),
                "{spelling:?} gave {err:?}"
            );
        }
        assert_eq!(sup.count(), 1);
    });
}

/// Each way a first `init` fails: the rows of the tests `failing_init_leaves_nothing_registered`
/// and `panicking_init_leaves_nothing_registered`, with the text the reason must contain.
const FAILED_INITS: [(InitFailure, &str, &str); 2] = [
    (InitFailure::Error, "no config file", "no config file"),
    (InitFailure::Panic, "init exploded", "init exploded"),
];

/// Starts a session whose `init` fails, for each row of [`FAILED_INITS`], and checks
/// that the start failed saying so and that nothing stayed registered.
#[test]
fn a_failed_init_leaves_nothing_registered() {
    guard!(move || {
        for (failure, message, reason_part) in FAILED_INITS {
            let case = format!("init {failure:?} {message:?}");
            let projects = Projects::new(1);
            let sup = common::supervisor();
            let session = projects.session(0);

            let err = sup
                .start(session.clone())
                .body(FailingInit(failure, message))
                .unwrap_err();

            assert!(
                matches!(&err, Error::StartFailed { id, reason }
                    if *id == session.id() && reason.contains(reason_part)),
                "{case}: {err:?}"
            );
            assert_eq!(sup.count(), 0, "{case}: count");
            assert!(!sup.session_running(session.id()), "{case}: running");
            // Freed before start returned: the very next start on the path succeeds.
            assert!(path_is_free(&sup, projects.path(0)), "{case}: path free");
            sup.start_session(projects.session(0), stub::idle())
                .unwrap_or_else(|err| panic!("{case}: start again: {err}"));
        }
    });
}

// A thread the OS refuses to create must not leave a registered session behind.
#[cfg(target_os = "linux")]
#[test]
fn failed_spawn_leaves_nothing_registered() {
    guard!(move || {
        let projects = Projects::new(1);
        // A stack far larger than the address space: the OS refuses the thread.
        let sup = common::builder().stack_size(1 << 50).build();
        let session = projects.session(0);

        let err = sup
            .start_session(session.clone(), stub::idle())
            .unwrap_err();

        assert!(
            matches!(&err, Error::Spawn { id, .. } if *id == session.id()),
            "{err:?}"
        );
        assert_eq!(sup.count(), 0);
        assert!(path_is_free(&sup, projects.path(0)));
    });
}

#[test]
fn find_running_and_list_follow_a_session_until_it_is_stopped() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let handle = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        let id = handle.id();

        assert_eq!(sup.find_session(id).unwrap().id(), id);
        assert!(sup.session_running(id));
        let listed: Vec<SessionId> = sup.list_sessions().iter().map(|h| h.id()).collect();
        assert_eq!(listed, vec![id]);

        sup.stop_session(id).unwrap();

        let err = sup.find_session(id).unwrap_err();
        assert!(
            matches!(&err, Error::NotFound { key: SessionKey::Id(got) } if *got == id),
            "{err:?}"
        );
        assert!(!sup.session_running(id));
        assert!(sup.list_sessions().is_empty());
        assert!(!handle.is_running());
    });
}

#[test]
fn create_session_starts_a_session_named_after_its_folder() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let (ran_tx, ran_rx) = unbounded();

        let session = sup
            .create_session(projects.base().join("0"), stub::reports(ran_tx))
            .unwrap();

        let folder = projects.path(0);
        assert_eq!(Some(session.name()), folder.file_name().unwrap().to_str());
        assert_eq!(session.project_path(), folder);
        assert_eq!(
            recv_within(&ran_rx, "the created session to run").0,
            session.id()
        );
        assert_eq!(sup.lookup(session.id()).unwrap(), session);
        assert_eq!(sup.count(), 1);
    });
}

#[test]
fn a_custom_name_is_trimmed_and_found_by_name() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let session = Session::builder(projects.path(0))
            .name("  my project ")
            .build()
            .unwrap();

        let handle = sup.start_session(session, stub::idle()).unwrap();

        let found = sup.lookup_by_name("my project").unwrap();
        assert_eq!(found.id(), handle.id());
        assert_eq!(found.name(), "my project");
    });
}

#[test]
fn create_session_of_a_missing_path_is_invalid_path() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let missing = projects.base().join("missing");

        let err = sup.create_session(&missing, stub::idle()).unwrap_err();

        assert!(
            matches!(&err, Error::InvalidPath { path, .. } if *path == missing),
            "{err:?}"
        );
        assert_eq!(sup.count(), 0);
    });
}

#[test]
fn create_session_of_a_file_path_is_invalid_path() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let file = projects.path(0).join("notes.txt");
        std::fs::write(&file, "not a directory").unwrap();

        let err = sup.create_session(&file, stub::idle()).unwrap_err();

        assert!(
            matches!(&err, Error::InvalidPath { path, .. } if *path == file),
            "{err:?}"
        );
        assert_eq!(sup.count(), 0);
    });
}

#[test]
fn create_session_fails_at_the_limit() {
    guard!(move || {
        let projects = Projects::new(2);
        let sup = common::builder().max_sessions(1).build();
        sup.create_session(projects.path(0), stub::idle()).unwrap();

        let err = sup
            .create_session(projects.path(1), stub::idle())
            .unwrap_err();

        assert!(
            matches!(err, Error::SessionLimitReached { max: 1 }),
            "{err:?}"
        );
        assert_eq!(sup.count(), 1);
        assert!(path_is_free(&sup, projects.path(1)));
    });
}

#[test]
fn create_session_fails_for_an_open_project() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let first = sup.create_session(projects.path(0), stub::idle()).unwrap();

        let err = sup
            .create_session(projects.path(0).join("."), stub::idle())
            .unwrap_err();

        assert!(
            matches!(&err, Error::ProjectAlreadyOpen { id, .. } if *id == first.id()),
            "{err:?}"
        );
        assert_eq!(sup.list_all(), vec![first]);
    });
}

#[test]
fn body_that_returns_is_unregistered_and_frees_its_path() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let handle = sup
            .start_session(projects.session(0), stub::returns())
            .unwrap();

        let report = handle.wait_timeout(TIMEOUT).expect("the body returns");

        assert_eq!(report.id(), handle.id());
        assert_eq!(report.reason(), &ExitReason::Normal);
        assert!(!handle.is_running());
        assert!(!sup.session_running(handle.id()));
        assert_eq!(sup.count(), 0);
        assert!(path_is_free(&sup, projects.path(0)));
        sup.start_session(projects.session(0), stub::idle())
            .unwrap();
    });
}

#[test]
fn panicking_body_is_unregistered_and_other_sessions_live_on() {
    guard!(move || {
        let projects = Projects::new(2);
        let sup = common::supervisor();
        let (ran_tx, ran_rx) = unbounded();
        let other = sup
            .start_session(projects.session(1), stub::reports(ran_tx))
            .unwrap();
        recv_within(&ran_rx, "the other session to run");

        let crashing = sup
            .start_session(projects.session(0), stub::panics("boom"))
            .unwrap();
        let report = crashing
            .wait_timeout(TIMEOUT)
            .expect("the crashing session ends");

        // The default policy restarts a few times, then gives up with the last panic.
        assert!(
            matches!(report.reason(), ExitReason::RestartLimit { last_panic: Some(m), .. } if m == "boom"),
            "{report:?}"
        );
        assert!(!sup.session_running(crashing.id()));
        assert!(path_is_free(&sup, projects.path(0)));
        // The other session never restarted and still answers a stop.
        assert_eq!(ran_rx.try_recv(), Err(TryRecvError::Empty));
        assert!(other.is_running());
        let stopped = other.stop().unwrap();
        assert_eq!(stopped.reason(), &ExitReason::Stopped);
        assert_eq!(stopped.restarts(), 0);
    });
}

#[test]
fn panicking_body_without_restarts_ends_with_its_panic_message() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder()
            .restart_policy(RestartPolicy::new(Restart::Temporary))
            .build();

        let handle = sup
            .start_session(projects.session(0), stub::panics("boom"))
            .unwrap();
        let report = handle.wait_timeout(TIMEOUT).expect("the session ends");

        let expected = ExitReason::Panicked {
            message: "boom".into(),
        };
        assert_eq!(report.reason(), &expected);
        assert_eq!(sup.count(), 0);
        assert!(path_is_free(&sup, projects.path(0)));
    });
}

// Removal is by incarnation: the old thread's exit must never remove the new entry,
// however the two interleave.
#[test]
fn late_exit_never_removes_a_newer_session_with_the_same_id() {
    guard!(move || {
        const ROUNDS: usize = 50;
        let projects = Projects::new(2);
        let sup = common::supervisor();
        let id = SessionId::new();
        for round in 0..ROUNDS {
            let (gate_tx, gate_rx) = unbounded::<()>();
            let old_session = Session::builder(projects.path(0)).id(id).build().unwrap();
            let old = sup
                .start_session(old_session, stub::gated(gate_rx))
                .unwrap();
            let new_session = Session::builder(projects.path(1)).id(id).build().unwrap();

            let barrier = Barrier::new(2);
            let raced = thread::scope(|s| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    drop(gate_tx);
                });
                barrier.wait();
                sup.start_session(new_session.clone(), stub::idle())
            });
            let old_report = old.wait_timeout(TIMEOUT).expect("the released body ends");
            let new = match raced {
                Ok(new) => new,
                Err(Error::SessionExists { .. }) => sup
                    .start_session(new_session, stub::idle())
                    .expect("the id is free once the old session ended"),
                Err(other) => panic!("round {round}: {other:?}"),
            };

            assert_eq!(old_report.reason(), &ExitReason::Normal);
            assert!(!old.is_running());
            assert!(new.is_running(), "round {round}");
            assert!(sup.session_running(id), "round {round}: new entry removed");
            assert_eq!(sup.lookup(id).unwrap().project_path(), projects.path(1));
            assert!(path_is_free(&sup, projects.path(0)));
            let stopped = sup.stop_session(id).unwrap();
            assert_eq!(stopped.reason(), &ExitReason::Stopped, "round {round}");
            assert!(!new.is_running());
        }
    });
}
