//! Bad input, one row per test: each gives the exact error and changes nothing.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{guard, recv_within, Projects, TIMEOUT};
use crossbeam_channel::{unbounded, TryRecvError};
use session_supervisor::{
    stub, Error, ExitReason, Session, SessionHandle, SessionId, SessionKey, SessionSupervisor,
};

/// A supervisor running one session on project 0, and what it held before the bad call.
struct Fixture {
    projects: Projects,
    sup: SessionSupervisor,
    running: SessionHandle,
    before: Vec<Session>,
}

impl Fixture {
    fn new() -> Fixture {
        let projects = Projects::new(2);
        let sup = common::supervisor();
        let running = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        let before = sup.list_all();
        Fixture {
            projects,
            sup,
            running,
            before,
        }
    }

    /// Nothing changed: same sessions with the same metadata, still running, not stopped.
    fn assert_unchanged(&self) {
        assert_eq!(self.sup.list_all(), self.before, "the registry changed");
        assert_eq!(self.sup.count(), self.before.len());
        let found = self.sup.lookup_by_path(self.projects.path(0)).unwrap();
        assert_eq!(found, self.before[0]);
        assert!(self.running.is_running());
        assert!(!self.running.stop_requested());
        assert!(matches!(
            self.sup.lookup_by_path(self.projects.path(1)),
            Err(Error::NotFound { .. })
        ));
    }

    /// `create_session` on a bad path: the error, once checked that the body never ran.
    fn create_refused(&self, path: &Path) -> Error {
        let (ran_tx, ran_rx) = unbounded();
        let err = self
            .sup
            .create_session(path, stub::reports(ran_tx))
            .expect_err("a bad path is refused");
        // Dropped without running: no thread was started for it.
        assert_eq!(ran_rx.try_recv(), Err(TryRecvError::Disconnected));
        self.assert_unchanged();
        err
    }

    /// A bad name, both for a new session and for renaming the running one: returns the
    /// reasons given, once checked that the name was echoed and nothing changed.
    fn name_refused(&self, name: &str) -> [&'static str; 2] {
        let built = Session::builder(self.projects.path(1)).name(name).build();
        let renamed = self.sup.rename_session(self.running.id(), name);
        self.assert_unchanged();
        [
            invalid_name_reason(built, name),
            invalid_name_reason(renamed, name),
        ]
    }
}

fn invalid_name_reason(result: Result<Session, Error>, given: &str) -> &'static str {
    match result {
        Err(Error::InvalidName { name, reason }) => {
            assert_eq!(name, given, "the name is echoed as given");
            reason
        }
        other => panic!("{given:?}: expected InvalidName, got {other:?}"),
    }
}

/// Checks `err` is `InvalidPath` for `given`, and returns its reason.
fn invalid_path_reason(err: Error, given: &Path) -> String {
    match err {
        Error::InvalidPath { path, reason } => {
            assert_eq!(path, given, "the path is echoed as given");
            assert!(!reason.is_empty());
            reason
        }
        other => panic!("{given:?}: expected InvalidPath, got {other:?}"),
    }
}

#[test]
fn relative_path_to_a_missing_dir_is_invalid_path() {
    guard!(move || {
        let fixture = Fixture::new();
        let given = PathBuf::from(format!("missing-{}", SessionId::new())).join("project");
        assert!(given.is_relative());

        let reason = invalid_path_reason(fixture.create_refused(&given), &given);

        assert!(reason.contains("does not exist"), "{reason}");
    });
}

#[test]
fn file_path_is_invalid_path() {
    guard!(move || {
        let fixture = Fixture::new();
        let given = fixture.projects.path(1).join("notes.txt");
        std::fs::write(&given, "a file, not a project").unwrap();

        let reason = invalid_path_reason(fixture.create_refused(&given), &given);

        assert!(reason.contains("not a directory"), "{reason}");
    });
}

#[test]
fn empty_path_is_invalid_path() {
    guard!(move || {
        let fixture = Fixture::new();
        let given = Path::new("");

        let reason = invalid_path_reason(fixture.create_refused(given), given);

        assert!(reason.contains("empty"), "{reason}");
    });
}

#[test]
fn path_with_a_nul_byte_is_invalid_path() {
    guard!(move || {
        let fixture = Fixture::new();
        // An existing directory with a NUL appended: no OS call can take it.
        let mut text = fixture.projects.path(1).into_os_string();
        text.push("\0");
        let given = PathBuf::from(text);

        invalid_path_reason(fixture.create_refused(&given), &given);
    });
}

#[cfg(unix)]
#[test]
fn non_utf8_path_is_invalid_path() {
    guard!(move || {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;

        let fixture = Fixture::new();
        let given = fixture.projects.base().join(OsStr::from_bytes(b"caf\xe9"));
        assert!(given.to_str().is_none());
        std::fs::create_dir(&given).expect("a directory with a non-UTF-8 name");

        let reason = invalid_path_reason(fixture.create_refused(&given), &given);

        assert!(reason.contains("UTF-8"), "{reason}");
    });
}

#[cfg(unix)]
#[test]
fn dangling_symlink_is_invalid_path() {
    guard!(move || {
        let fixture = Fixture::new();
        let given = fixture.projects.base().join("dangling");
        std::os::unix::fs::symlink(fixture.projects.base().join("gone"), &given).unwrap();
        assert!(given.symlink_metadata().is_ok(), "the link itself exists");

        let reason = invalid_path_reason(fixture.create_refused(&given), &given);

        assert!(reason.contains("does not exist"), "{reason}");
    });
}

#[test]
fn empty_name_is_invalid_name() {
    guard!(move || {
        let fixture = Fixture::new();

        for reason in fixture.name_refused("") {
            assert!(reason.contains("empty"), "{reason}");
        }
    });
}

#[test]
fn whitespace_name_is_invalid_name() {
    guard!(move || {
        let fixture = Fixture::new();

        for reason in fixture.name_refused(" \t  ") {
            assert!(reason.contains("empty"), "{reason}");
        }
    });
}

// Counted in characters, not bytes: 50 two-byte characters pass, 51 do not.
#[test]
fn name_of_51_characters_is_invalid_name() {
    guard!(move || {
        let fixture = Fixture::new();
        let fifty = "é".repeat(50);
        let built = Session::builder(fixture.projects.path(1))
            .name(fifty.as_str())
            .build();
        assert_eq!(built.unwrap().name(), fifty);

        for reason in fixture.name_refused(&"é".repeat(51)) {
            assert!(reason.contains("50"), "{reason}");
        }
    });
}

#[test]
fn name_with_a_newline_is_invalid_name() {
    guard!(move || {
        let fixture = Fixture::new();

        for reason in fixture.name_refused("two\nlines") {
            assert!(reason.contains("control"), "{reason}");
        }
    });
}

#[test]
fn name_with_invisible_or_layout_changing_characters_is_invalid_name() {
    guard!(move || {
        let fixture = Fixture::new();
        let mut session = fixture.projects.session(1);
        let before = session.clone();
        // A bidi override, an isolate, zero-width characters, a byte order mark, a
        // line separator, and a zero-width space alone (not whitespace to `trim`).
        for name in [
            "invoice\u{202E}fdp.exe",
            "a\u{2066}b\u{2069}",
            "zero\u{200B}width",
            "join\u{200D}er",
            "\u{FEFF}bom",
            "two\u{2028}lines",
            "\u{200B}",
        ] {
            for reason in fixture.name_refused(name) {
                assert_eq!(reason, "contains invisible or layout-changing characters");
            }
            let renamed = session.rename(name).map(|()| session.clone());
            let reason = invalid_name_reason(renamed, name);
            assert_eq!(reason, "contains invisible or layout-changing characters");
            assert_eq!(session, before, "a refused rename changes nothing");
        }
    });
}

#[test]
fn bad_id_string_is_invalid_id() {
    guard!(move || {
        let fixture = Fixture::new();
        let real = fixture.running.id().to_string();
        // A typo in a real id must not resolve to that session.
        for text in ["not-an-id".to_owned(), real[..real.len() - 1].to_owned()] {
            match text.parse::<SessionId>() {
                Err(Error::InvalidId { input, .. }) => assert_eq!(input, text),
                other => panic!("{text:?}: expected InvalidId, got {other:?}"),
            }
        }
        assert_eq!(real.parse::<SessionId>().unwrap(), fixture.running.id());
        // Version 4 in form, but of the Microsoft variant: not an id this crate makes.
        let microsoft = "123e4567-e89b-42d3-c456-426614174000";
        match microsoft.parse::<SessionId>() {
            Err(Error::InvalidId { reason, .. }) => assert!(reason.contains("variant"), "{reason}"),
            other => panic!("{microsoft:?}: expected InvalidId, got {other:?}"),
        }
        fixture.assert_unchanged();
    });
}

// The crate's decision: a limit of 0 builds and admits nothing.
#[test]
fn max_sessions_zero_builds_and_admits_nothing() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder().max_sessions(0).build();
        assert_eq!(sup.max_sessions(), 0);
        let (ran_tx, ran_rx) = unbounded();

        let err = sup
            .start_session(projects.session(0), stub::reports(ran_tx))
            .unwrap_err();

        assert!(
            matches!(err, Error::SessionLimitReached { max: 0 }),
            "{err:?}"
        );
        assert_eq!(ran_rx.try_recv(), Err(TryRecvError::Disconnected));
        let err = sup
            .create_session(projects.path(0), stub::idle())
            .unwrap_err();
        assert!(
            matches!(err, Error::SessionLimitReached { max: 0 }),
            "{err:?}"
        );
        assert_eq!(sup.count(), 0);
        assert!(sup.lookup_by_path(projects.path(0)).is_err());
    });
}

// The crate's decision: a zero timeout means "do not wait"; the stop still happens.
#[test]
fn zero_stop_timeout_stop_requests_the_stop_without_waiting() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder().stop_timeout(Duration::ZERO).build();
        let (observed_tx, observed_rx) = unbounded();
        let (gate_tx, gate_rx) = unbounded::<()>();
        // Sees the stop, then cannot end before the test lets it.
        let handle = sup
            .start_session(projects.session(0), move |ctx| {
                ctx.wait_for_stop();
                let _ = observed_tx.send(());
                let _ = gate_rx.recv();
            })
            .unwrap();
        let id = handle.id();

        let err = sup.stop_session(id).unwrap_err();

        assert!(
            matches!(err, Error::StopTimeout { id: got, timeout } if got == id && timeout.is_zero()),
            "{err:?}"
        );
        recv_within(&observed_rx, "the body to see the stop request");
        assert!(sup.session_running(id), "registered until the body ends");
        assert_eq!(sup.lookup_by_path(projects.path(0)).unwrap().id(), id);

        drop(gate_tx);
        let report = handle.wait_timeout(TIMEOUT).expect("the session ends");
        assert_eq!(report.reason(), &ExitReason::Stopped);
        assert!(!sup.session_running(id));
        assert!(sup.lookup_by_path(projects.path(0)).is_err());
    });
}

#[test]
fn zero_stop_timeout_drop_does_not_wait_and_sessions_still_end() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder().stop_timeout(Duration::ZERO).build();
        let (gate_tx, gate_rx) = unbounded::<()>();
        let handle = sup
            .start_session(projects.session(0), stub::gated(gate_rx))
            .unwrap();

        // Returns although the body cannot have ended: it is still gated.
        drop(sup);

        assert!(handle.is_running() && handle.stop_requested());
        drop(gate_tx);
        let report = handle.wait_timeout(TIMEOUT).expect("the session ends");
        assert_eq!(report.reason(), &ExitReason::Stopped);
    });
}

#[test]
fn stop_of_an_unknown_id_is_not_found() {
    guard!(move || {
        let fixture = Fixture::new();
        let unknown = SessionId::new();

        let err = fixture.sup.stop_session(unknown).unwrap_err();

        assert!(
            matches!(&err, Error::NotFound { key: SessionKey::Id(id) } if *id == unknown),
            "{err:?}"
        );
        fixture.assert_unchanged();
    });
}

#[test]
fn rename_of_an_unknown_id_is_not_found() {
    guard!(move || {
        let fixture = Fixture::new();
        let unknown = SessionId::new();

        let err = fixture
            .sup
            .rename_session(unknown, "a fine name")
            .unwrap_err();

        assert!(
            matches!(&err, Error::NotFound { key: SessionKey::Id(id) } if *id == unknown),
            "{err:?}"
        );
        fixture.assert_unchanged();
        assert!(fixture.sup.lookup_by_name("a fine name").is_err());
    });
}

#[test]
fn send_to_an_unknown_id_is_not_found_and_hands_the_message_back() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder().messages::<String>().build();
        let (seen_tx, seen_rx) = unbounded();
        let running = sup
            .start_session(projects.session(0), move |ctx| {
                while let Some(message) = ctx.recv() {
                    let _ = seen_tx.send(message);
                }
            })
            .unwrap();
        let before = sup.list_all();
        let unknown = SessionId::new();

        let sent = sup.send(unknown, "hello".to_owned());
        let tried = sup.try_send(unknown, "again".to_owned());

        for (result, text) in [(sent, "hello"), (tried, "again")] {
            let (err, message) = result.expect_err("nobody to send to").into_parts();
            assert!(
                matches!(&err, Error::NotFound { key: SessionKey::Id(id) } if *id == unknown),
                "{err:?}"
            );
            assert_eq!(message, text, "the message is handed back");
        }
        assert_eq!(sup.list_all(), before);
        // Nothing reached the one running session either.
        sup.stop_session(running.id()).unwrap();
        assert_eq!(seen_rx.try_iter().count(), 0);
    });
}
