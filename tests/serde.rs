//! The `serde` feature: sessions and ids survive a save and restore.
#![cfg(feature = "serde")]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Projects;
use serde_json::{json, Value};
use session_supervisor::{Session, SessionId};

/// The latest time `SystemTime` holds on this platform, found with `checked_add`.
fn latest_system_time() -> SystemTime {
    let mut time = UNIX_EPOCH;
    let mut step = Duration::MAX;
    while !step.is_zero() {
        match time.checked_add(step) {
            Some(later) => time = later,
            None => step /= 2,
        }
    }
    time
}

/// Serde's form of a `SystemTime`.
fn time_json(secs: u64, nanos: u32) -> Value {
    json!({ "secs_since_epoch": secs, "nanos_since_epoch": nanos })
}

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

#[test]
fn restoring_a_time_at_the_system_time_maximum_is_refused() {
    let max = serde_json::to_value(latest_system_time()).unwrap();
    // Serde itself takes it: the refusal below is the crate's own.
    let taken: SystemTime = serde_json::from_value(max.clone()).unwrap();
    assert_eq!(taken, latest_system_time());
    #[cfg(unix)]
    assert_eq!(max, time_json(i64::MAX as u64, 999_999_999));

    let projects = Projects::new(1);
    let good = serde_json::to_value(projects.session(0)).unwrap();
    let mut value = good.clone();
    value["updated_at"] = max.clone();
    let err = serde_json::from_value::<Session>(value).unwrap_err();
    assert!(
        err.to_string()
            .contains("updated_at is after the year 9999"),
        "{err}"
    );

    let mut value = good;
    value["created_at"] = max.clone();
    value["updated_at"] = max;
    let err = serde_json::from_value::<Session>(value).unwrap_err();
    assert!(
        err.to_string()
            .contains("created_at is after the year 9999"),
        "{err}"
    );
}

#[test]
fn restoring_takes_times_up_to_the_end_of_the_year_9999_only() {
    const END_OF_9999: u64 = 253_402_300_799;
    let projects = Projects::new(1);
    let mut value = serde_json::to_value(projects.session(0)).unwrap();

    value["updated_at"] = time_json(END_OF_9999 + 1, 0);
    let err = serde_json::from_value::<Session>(value.clone()).unwrap_err();
    assert!(
        err.to_string()
            .contains("updated_at is after the year 9999"),
        "{err}"
    );

    value["updated_at"] = time_json(END_OF_9999, 999_999_999);
    let mut restored = serde_json::from_value::<Session>(value).unwrap();
    let last = UNIX_EPOCH + Duration::new(END_OF_9999, 999_999_999);
    assert_eq!(restored.updated_at(), last);
    // Renaming still moves the time forward, without overflow.
    restored.rename("later").unwrap();
    assert!(restored.updated_at() > last);
}
