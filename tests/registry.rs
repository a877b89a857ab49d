//! Lookups, listing order, updates, renames, unregister and clear: on a standalone
//! `SessionRegistry` and through the supervisor's read-only queries.

mod common;

use std::path::Path;

use common::{guard, recv_within, Projects};
use crossbeam_channel::unbounded;
use session_supervisor::{stub, Error, Session, SessionId, SessionKey, SessionRegistry};

/// Sessions named `name` on directories `dirs`, created (so aged) in that order.
fn named_sessions(projects: &Projects, dirs: &[usize], name: &str) -> Vec<Session> {
    let sessions: Vec<Session> = dirs
        .iter()
        .map(|&i| {
            Session::builder(projects.path(i))
                .name(name)
                .build()
                .unwrap()
        })
        .collect();
    for pair in sessions.windows(2) {
        assert!(
            pair[0].created_at() < pair[1].created_at(),
            "the clock must tell the sessions apart"
        );
    }
    sessions
}

fn ids(sessions: &[Session]) -> Vec<SessionId> {
    sessions.iter().map(|s| s.id()).collect()
}

fn assert_path_not_found(result: Result<Session, Error>, given: &Path) {
    match result {
        Err(Error::NotFound {
            key: SessionKey::Path(path),
        }) => assert_eq!(path, given),
        other => panic!("{given:?}: expected NotFound by path, got {other:?}"),
    }
}

#[test]
fn register_makes_the_session_findable_by_id_and_path() {
    guard!(move || {
        let projects = Projects::new(1);
        let registry = SessionRegistry::new(3);
        let session = projects.session(0);

        let stored = registry.register(session.clone()).unwrap();

        assert_eq!(stored, session);
        assert_eq!(registry.max_sessions(), 3);
        assert_eq!(registry.count(), 1);
        assert!(registry.contains(session.id()));
        assert_eq!(registry.lookup(session.id()).unwrap(), session);
        assert_eq!(registry.lookup_by_path(projects.path(0)).unwrap(), session);
    });
}

#[test]
fn register_checks_the_limit_then_the_id_then_the_path() {
    guard!(move || {
        let projects = Projects::new(3);
        let registry = SessionRegistry::new(2);
        let first = registry.register(projects.session(0)).unwrap();

        // Same id and same path: the id is reported.
        let err = registry.register(first.clone()).unwrap_err();
        assert!(
            matches!(&err, Error::SessionExists { id } if *id == first.id()),
            "{err:?}"
        );
        let err = registry.register(projects.session(0)).unwrap_err();
        assert!(
            matches!(&err, Error::ProjectAlreadyOpen { id, .. } if *id == first.id()),
            "{err:?}"
        );
        assert_eq!(registry.count(), 1);

        registry.register(projects.session(1)).unwrap();
        // Full, and a duplicate too: the limit is reported.
        let err = registry.register(first.clone()).unwrap_err();
        assert!(
            matches!(err, Error::SessionLimitReached { max: 2 }),
            "{err:?}"
        );
        let err = registry.register(projects.session(2)).unwrap_err();
        assert!(
            matches!(err, Error::SessionLimitReached { max: 2 }),
            "{err:?}"
        );
        assert_eq!(registry.count(), 2);
    });
}

#[test]
fn lookup_by_path_accepts_any_spelling_of_the_directory() {
    guard!(move || {
        let projects = Projects::new(2);
        let registry = SessionRegistry::new(5);
        let session = registry.register(projects.session(0)).unwrap();
        let mut spellings = vec![
            projects.path(0),
            projects.path(0).join("."),
            projects.path(1).join("..").join("0"),
            projects.base().join("0"),
        ];
        #[cfg(unix)]
        {
            let link = projects.base().join("link-to-0");
            std::os::unix::fs::symlink(projects.path(0), &link).unwrap();
            spellings.push(link);
        }

        for spelling in spellings {
            let found = registry.lookup_by_path(&spelling);
            assert_eq!(found.ok().as_ref(), Some(&session), "{spelling:?}");
        }
    });
}

// The stored canonical path is the hot path: it is matched without the filesystem, so
// it still answers once the directory is gone, while other spellings no longer resolve.
#[test]
fn lookup_by_the_stored_path_does_not_need_the_directory() {
    guard!(move || {
        let projects = Projects::new(1);
        let registry = SessionRegistry::new(5);
        let session = registry.register(projects.session(0)).unwrap();
        std::fs::remove_dir(projects.path(0)).unwrap();

        assert_eq!(
            registry.lookup_by_path(session.project_path()).unwrap(),
            session
        );
        let spelled = session.project_path().join("..").join("0");
        assert_path_not_found(registry.lookup_by_path(&spelled), &spelled);
    });
}

#[test]
fn lookup_by_path_of_an_unresolvable_path_is_not_found() {
    guard!(move || {
        let projects = Projects::new(1);
        let registry = SessionRegistry::new(5);
        registry.register(projects.session(0)).unwrap();
        let file = projects.path(0).join("file.txt");
        std::fs::write(&file, "x").unwrap();

        for given in [
            projects.path(0).join("missing"),
            file,
            Path::new("").to_path_buf(),
        ] {
            assert_path_not_found(registry.lookup_by_path(&given), &given);
        }
        assert_eq!(registry.count(), 1);
    });
}

#[test]
fn lookup_of_an_unknown_id_is_not_found() {
    guard!(move || {
        let projects = Projects::new(1);
        let registry = SessionRegistry::new(5);
        registry.register(projects.session(0)).unwrap();
        let unknown = SessionId::new();

        let err = registry.lookup(unknown).unwrap_err();

        assert!(
            matches!(&err, Error::NotFound { key: SessionKey::Id(id) } if *id == unknown),
            "{err:?}"
        );
        assert!(!registry.contains(unknown));
    });
}

#[test]
fn lookup_by_name_returns_the_oldest_session_with_that_name() {
    guard!(move || {
        let projects = Projects::new(4);
        let registry = SessionRegistry::new(5);
        let shared = named_sessions(&projects, &[0, 1, 2], "shared");
        let other = Session::builder(projects.path(3))
            .name("other")
            .build()
            .unwrap();
        // Registered newest first, so insertion order cannot pass for age.
        registry.register(other.clone()).unwrap();
        for session in shared.iter().rev() {
            registry.register(session.clone()).unwrap();
        }

        assert_eq!(registry.lookup_by_name("shared").unwrap(), shared[0]);
        assert_eq!(registry.lookup_by_name("other").unwrap(), other);
        registry.unregister(shared[0].id());
        assert_eq!(registry.lookup_by_name("shared").unwrap(), shared[1]);

        let err = registry.lookup_by_name("nobody").unwrap_err();
        assert!(
            matches!(&err, Error::NotFound { key: SessionKey::Name(n) } if n == "nobody"),
            "{err:?}"
        );
    });
}

#[test]
fn list_all_and_list_ids_are_oldest_first_whatever_the_register_order() {
    guard!(move || {
        let projects = Projects::new(4);
        let registry = SessionRegistry::new(5);
        let sessions = named_sessions(&projects, &[0, 1, 2, 3], "s");
        for i in [2, 0, 3, 1] {
            registry.register(sessions[i].clone()).unwrap();
        }

        assert_eq!(registry.list_all(), sessions);
        assert_eq!(registry.list_ids(), ids(&sessions));
    });
}

#[test]
fn update_with_a_renamed_session_keeps_both_indexes_right() {
    guard!(move || {
        let projects = Projects::new(1);
        let registry = SessionRegistry::new(5);
        let original = registry.register(projects.session(0)).unwrap();
        let mut renamed = original.clone();
        renamed.rename("renamed").unwrap();
        assert!(renamed.updated_at() > original.updated_at());

        let stored = registry.update(renamed.clone()).unwrap();

        assert_eq!(stored, renamed);
        assert_eq!(registry.lookup(original.id()).unwrap(), renamed);
        assert_eq!(registry.lookup_by_path(projects.path(0)).unwrap(), renamed);
        assert_eq!(registry.lookup_by_name("renamed").unwrap(), renamed);
        assert!(registry.lookup_by_name(original.name()).is_err());
        assert_eq!(registry.count(), 1);
    });
}

#[test]
fn update_to_a_new_path_moves_the_path_index() {
    guard!(move || {
        let projects = Projects::new(2);
        let registry = SessionRegistry::new(5);
        let original = registry.register(projects.session(0)).unwrap();
        let moved = Session::builder(projects.path(1))
            .id(original.id())
            .build()
            .unwrap();

        registry.update(moved.clone()).unwrap();

        assert_eq!(registry.lookup(original.id()).unwrap(), moved);
        assert_eq!(registry.lookup_by_path(projects.path(1)).unwrap(), moved);
        assert_path_not_found(registry.lookup_by_path(projects.path(0)), &projects.path(0));
        assert_eq!(registry.count(), 1);
        // The old path is really free: a new session may take it.
        registry.register(projects.session(0)).unwrap();
    });
}

#[test]
fn update_onto_another_sessions_path_is_refused_and_changes_nothing() {
    guard!(move || {
        let projects = Projects::new(2);
        let registry = SessionRegistry::new(5);
        let a = registry.register(projects.session(0)).unwrap();
        let b = registry.register(projects.session(1)).unwrap();
        let before = registry.list_all();
        let clash = Session::builder(projects.path(1))
            .id(a.id())
            .build()
            .unwrap();

        let err = registry.update(clash).unwrap_err();

        assert!(
            matches!(&err, Error::ProjectAlreadyOpen { id, path }
                    if *id == b.id() && *path == projects.path(1)),
            "{err:?}"
        );
        assert_eq!(registry.list_all(), before);
        assert_eq!(registry.lookup_by_path(projects.path(0)).unwrap(), a);
        assert_eq!(registry.lookup_by_path(projects.path(1)).unwrap(), b);
    });
}

#[test]
fn update_of_an_unknown_session_is_not_found_and_adds_nothing() {
    guard!(move || {
        let projects = Projects::new(2);
        let registry = SessionRegistry::new(5);
        let before = vec![registry.register(projects.session(0)).unwrap()];
        let stranger = projects.session(1);

        let err = registry.update(stranger.clone()).unwrap_err();

        assert!(
            matches!(&err, Error::NotFound { key: SessionKey::Id(id) } if *id == stranger.id()),
            "{err:?}"
        );
        assert_eq!(registry.list_all(), before);
        assert_path_not_found(registry.lookup_by_path(projects.path(1)), &projects.path(1));
    });
}

#[test]
fn unregister_returns_the_entry_and_frees_id_and_path() {
    guard!(move || {
        let projects = Projects::new(2);
        let registry = SessionRegistry::new(5);
        let gone = registry.register(projects.session(0)).unwrap();
        let kept = registry.register(projects.session(1)).unwrap();

        assert_eq!(registry.unregister(gone.id()), Some(gone.clone()));

        assert!(!registry.contains(gone.id()));
        assert!(registry.lookup(gone.id()).is_err());
        assert_path_not_found(registry.lookup_by_path(projects.path(0)), &projects.path(0));
        assert_eq!(registry.list_all(), vec![kept]);
        assert_eq!(registry.unregister(gone.id()), None);
        // Both the id and the path may be registered again.
        registry.register(gone).unwrap();
    });
}

#[test]
fn clear_removes_every_session_and_frees_every_path() {
    guard!(move || {
        let projects = Projects::new(3);
        let registry = SessionRegistry::new(3);
        let sessions: Vec<Session> = (0..3)
            .map(|i| registry.register(projects.session(i)).unwrap())
            .collect();

        registry.clear();

        assert_eq!(registry.count(), 0);
        assert!(registry.list_all().is_empty());
        for (i, session) in sessions.iter().enumerate() {
            assert!(!registry.contains(session.id()));
            assert_path_not_found(registry.lookup_by_path(projects.path(i)), &projects.path(i));
        }
        // The limit counts from zero again.
        for i in 0..3 {
            registry.register(projects.session(i)).unwrap();
        }
    });
}

#[test]
fn rename_session_moves_updated_at_and_keeps_lookups_right() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let (name_tx, name_rx) = unbounded();
        let original = projects.session(0);
        let handle = sup
            .start_session(original.clone(), move |ctx| {
                ctx.wait_for_stop();
                let _ = name_tx.send(ctx.session().name().to_owned());
            })
            .unwrap();

        let renamed = sup.rename_session(handle.id(), "  renamed  ").unwrap();

        assert_eq!(renamed.name(), "renamed");
        assert!(renamed.updated_at() > original.updated_at());
        assert_eq!(renamed.created_at(), original.created_at());
        assert_eq!(sup.lookup(handle.id()).unwrap(), renamed);
        assert_eq!(sup.lookup_by_path(projects.path(0)).unwrap(), renamed);
        assert_eq!(sup.lookup_by_name("renamed").unwrap(), renamed);
        assert!(sup.lookup_by_name(original.name()).is_err());
        // The body keeps the metadata it started with.
        handle.stop().unwrap();
        let seen = recv_within(&name_rx, "the body's view of its name");
        assert_eq!(seen, original.name());
    });
}

#[test]
fn supervisor_lookup_by_name_returns_the_oldest_session() {
    guard!(move || {
        let projects = Projects::new(3);
        let sup = common::supervisor();
        let sessions = named_sessions(&projects, &[0, 1, 2], "twin");
        for session in sessions.iter().rev() {
            sup.start_session(session.clone(), stub::idle()).unwrap();
        }

        assert_eq!(sup.lookup_by_name("twin").unwrap(), sessions[0]);
        sup.stop_session(sessions[0].id()).unwrap();
        assert_eq!(sup.lookup_by_name("twin").unwrap(), sessions[1]);
    });
}

#[test]
fn list_sessions_is_in_start_order_and_list_all_oldest_first() {
    guard!(move || {
        let projects = Projects::new(3);
        let sup = common::supervisor();
        let sessions = named_sessions(&projects, &[0, 1, 2], "s");
        let start_order = [2, 0, 1];
        for i in start_order {
            sup.start_session(sessions[i].clone(), stub::idle())
                .unwrap();
        }

        let started: Vec<SessionId> = sup.list_sessions().iter().map(|h| h.id()).collect();
        let expected: Vec<SessionId> = start_order.iter().map(|&i| sessions[i].id()).collect();
        assert_eq!(started, expected);
        assert_eq!(sup.list_all(), sessions);
        assert_eq!(sup.list_ids(), ids(&sessions));
        assert_eq!(sup.count(), sessions.len());
    });
}
