//! The lifecycle is logged through `log`: info for starts and stops, warn for crashes
//! and restarts, error for giving up, once each. The logger is this test binary's own.

mod common;

use std::sync::{Mutex, Once};
use std::time::Duration;

use common::{guard, Projects, TIMEOUT};
use log::{Level, Log, Metadata, Record};
use session_supervisor::{
    body_fn, ExitReason, Restart, RestartPolicy, SessionId, SessionSupervisor,
};

/// Every record logged in this process, as (level, text).
static RECORDS: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());

/// The message of the bodies' crashes.
const CRASH: &str = "crash";

struct Capture;

impl Log for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        let text = record.args().to_string();
        RECORDS.lock().unwrap().push((record.level(), text));
    }

    fn flush(&self) {}
}

fn capture() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&Capture).expect("the only logger of this binary");
        log::set_max_level(log::LevelFilter::Trace);
        // The bodies' crashes are expected; every other panic is printed.
        let print = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&CRASH) {
                print(info);
            }
        }));
    });
}

/// The levels of the records that name `id`, in order.
fn levels_of(id: &SessionId) -> Vec<Level> {
    let id = id.to_string();
    let records = RECORDS.lock().unwrap();
    let of_id = records.iter().filter(|(_, text)| text.contains(&id));
    of_id.map(|(level, _)| *level).collect()
}

#[test]
fn giving_up_after_the_restart_limit_is_one_error() {
    guard("giving_up_after_the_restart_limit_is_one_error", || {
        capture();
        let projects = Projects::new(1);
        let sup = SessionSupervisor::new();
        let policy = RestartPolicy::new(Restart::Transient).intensity(2, Duration::from_secs(60));
        let body = body_fn(|_| std::panic::panic_any(CRASH));
        let handle = sup
            .start_session_with_policy(projects.session(0), body, policy)
            .expect("start");
        let report = handle.wait_timeout(TIMEOUT).expect("gave up");
        assert!(matches!(
            report.reason(),
            ExitReason::RestartLimit { restarts: 2, .. }
        ));
        let levels = levels_of(handle.id());
        // Started, two restarts, then the end: given up.
        assert_eq!(
            levels,
            [Level::Info, Level::Warn, Level::Warn, Level::Error]
        );
    });
}

#[test]
fn a_start_and_a_stop_are_one_info_each() {
    guard("a_start_and_a_stop_are_one_info_each", || {
        capture();
        let projects = Projects::new(1);
        let sup = SessionSupervisor::new();
        let handle = sup
            .start_session(projects.session(0), |ctx| ctx.wait_for_shutdown())
            .expect("start");
        sup.stop_session(handle.id()).expect("stop");
        assert_eq!(levels_of(handle.id()), [Level::Info, Level::Info]);
    });
}
