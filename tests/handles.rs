//! Handles to act on: found by id, path or name, they name their session, stop it, and
//! keep answering after the end; reports and events name the session too.

mod common;

use std::sync::mpsc;

use common::{guard, Projects, TIMEOUT};
use session_supervisor::{stub, Error, ExitReason, ReplyTo, Session, SessionEvent, SessionKey};

enum Msg {
    Name(ReplyTo<String>),
}

#[test]
fn a_session_found_by_path_or_name_can_be_called_and_stopped() {
    guard!(|| {
        let projects = Projects::new(2);
        let sup = common::builder().messages::<Msg>().build();
        let session = Session::builder(projects.path(0))
            .name("alpha")
            .build()
            .unwrap();
        let started = sup
            .start_session(session, |ctx| {
                while let Some(Msg::Name(reply)) = ctx.recv() {
                    reply.send(ctx.session().name().to_owned());
                }
            })
            .unwrap();
        let spelled = projects.path(0).join("..").join("0");
        let by_path = sup.find_by_path(&spelled).unwrap();
        let by_name = sup.find_by_name("alpha").unwrap();
        assert_eq!((by_path.id(), by_name.id()), (started.id(), started.id()));
        assert_eq!(by_path.call(Msg::Name, TIMEOUT).unwrap(), "alpha");
        let report = by_name.stop().unwrap();
        assert_eq!(report.reason(), &ExitReason::Stopped);
        assert_eq!(report.session().name(), "alpha");
        assert_eq!(sup.count(), 0);
    });
}

#[test]
fn finding_what_is_not_there_is_not_found_naming_the_key() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        match sup.find_by_path(projects.path(0)) {
            Err(Error::NotFound {
                key: SessionKey::Path(path),
            }) => {
                assert_eq!(path, projects.path(0));
            }
            other => panic!("{other:?}"),
        }
        match sup.find_by_name("nobody") {
            Err(Error::NotFound {
                key: SessionKey::Name(name),
            }) => assert_eq!(name, "nobody"),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn stopping_an_ended_session_by_its_handle_returns_how_it_ended() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let handle = sup
            .start_session(projects.session(0), stub::returns())
            .unwrap();
        let ended = handle.wait_timeout(TIMEOUT).expect("ended by itself");
        assert_eq!(ended.reason(), &ExitReason::Normal);
        // The handle still answers; the supervisor no longer knows the id.
        assert_eq!(handle.stop().unwrap(), ended);
        let gone = sup.stop_session(handle.id());
        assert!(matches!(gone, Err(Error::NotFound { .. })), "{gone:?}");
    });
}

/// A rename shows in the handle, in the report and in the `Exited` event: an observer
/// can tell which session ended by the name it has when it ends.
#[test]
fn a_rename_shows_in_the_handle_the_report_and_the_exited_event() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let events = sup.subscribe();
        let handle = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        sup.rename_session(handle.id(), "renamed").unwrap();
        assert_eq!(handle.session().name(), "renamed");
        let report = handle.stop().unwrap();
        assert_eq!(report.session().name(), "renamed");
        let names: Vec<_> = (0..2)
            .map(|_| events.recv_timeout(TIMEOUT).expect("an event"))
            .map(|event| event.session().name().to_owned())
            .collect();
        assert_ne!(
            names[0], "renamed",
            "Started carries the name it started with"
        );
        assert_eq!(names[1], "renamed", "Exited carries the name it ended with");
    });
}

#[test]
fn a_subscription_iterates_over_the_events() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let events = sup.subscribe();
        let handle = sup
            .start_session(projects.session(0), stub::returns())
            .unwrap();
        let mut kinds = Vec::new();
        for event in &events {
            assert_eq!(event.id(), handle.id());
            let exited = matches!(event, SessionEvent::Exited { .. });
            kinds.push(exited);
            if exited {
                break;
            }
        }
        assert_eq!(kinds, [false, true]);
    });
}

/// The iteration ends once the supervisor and its sessions are gone.
#[test]
fn iterating_a_subscription_ends_with_the_supervisor() {
    guard!(|| {
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let events = sup.subscribe();
        sup.start_session(projects.session(0), stub::idle())
            .unwrap();
        drop(sup);
        assert_eq!((&events).into_iter().count(), 2, "Started and Exited");
    });
}

#[test]
fn stub_bodies_report_to_std_channels() {
    guard!(|| {
        let projects = Projects::new(2);
        let sup = common::builder().messages::<u32>().build();
        let (runs_tx, runs) = mpsc::channel();
        let reporting = sup
            .start_session(projects.session(0), stub::reports(runs_tx))
            .unwrap();
        let got = runs.recv_timeout(TIMEOUT).expect("a report");
        assert_eq!(got, (reporting.id(), 0));
        let (answers_tx, answers) = mpsc::sync_channel(1);
        let echoing = sup
            .start_session(projects.session(1), stub::echo(answers_tx, |n: u32| n + 1))
            .unwrap();
        echoing.send(41).unwrap();
        assert_eq!(answers.recv_timeout(TIMEOUT), Ok(42));
    });
}
