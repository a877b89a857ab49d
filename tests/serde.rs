//! The `serde` feature: sessions and ids survive a save and restore.
#![cfg(feature = "serde")]

mod common;

use common::Projects;
use session_supervisor::{Session, SessionId};

#[test]
fn a_session_list_round_trips_through_json() {
    let projects = Projects::new(3);
    let mut sessions: Vec<Session> = (0..3).map(|i| projects.session(i)).collect();
    sessions[1].rename("renamed").unwrap();
    let json = serde_json::to_string(&sessions).unwrap();
    let restored: Vec<Session> = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, sessions);
}

#[test]
fn an_id_is_stored_as_its_text() {
    let id = SessionId::new();
    let json = serde_json::to_string(&id).unwrap();
    assert_eq!(json, format!("\"{id}\""));
    assert_eq!(serde_json::from_str::<SessionId>(&json).unwrap(), id);
    assert!(serde_json::from_str::<SessionId>("\"not-an-id\"").is_err());
}

#[test]
fn restoring_a_session_whose_directory_is_gone_fails() {
    let projects = Projects::new(1);
    let json = serde_json::to_string(&projects.session(0)).unwrap();
    std::fs::remove_dir(projects.path(0)).unwrap();
    let err = serde_json::from_str::<Session>(&json).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn restoring_checks_the_name_and_the_times() {
    let projects = Projects::new(1);
    let mut value = serde_json::to_value(projects.session(0)).unwrap();
    let good = value.clone();
    value["name"] = "bad\nname".into();
    let err = serde_json::from_value::<Session>(value).unwrap_err();
    assert!(err.to_string().contains("control characters"), "{err}");

    let mut value = good.clone();
    value["updated_at"]["secs_since_epoch"] = 0.into();
    let err = serde_json::from_value::<Session>(value).unwrap_err();
    assert!(err.to_string().contains("precedes"), "{err}");
    assert!(serde_json::from_value::<Session>(good).is_ok());
}
