//! The lifecycle is logged through `log`: info for starts and stops, warn for crashes
//! and restarts, error for giving up, once each. The logger is this test binary's own,
//! and it is user code: one that blocks must not reorder a session's events.

mod common;

use std::sync::{Mutex, Once};
use std::time::Duration;

use common::{guard, recv_within, Projects, TIMEOUT};
use crossbeam_channel::{bounded, Receiver, Sender};
use log::{Level, Log, Metadata, Record};
use session_supervisor::{stub, ExitReason, Restart, RestartPolicy, SessionEvent, SessionId};

/// Every record logged in this process, as (level, text).
static RECORDS: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());

/// A record to hold up: the first one whose text has this, until the gate opens. The
/// logger tells `held` when it starts to wait.
static HOLD: Mutex<Option<Hold>> = Mutex::new(None);

struct Hold {
    text: String,
    held: Sender<()>,
    gate: Receiver<()>,
}

/// The message of the bodies' crashes.
const CRASH: &str = "crash";

struct Capture;

impl Log for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        let text = record.args().to_string();
        let hold = HOLD
            .lock()
            .unwrap()
            .take_if(|hold| text.contains(&hold.text));
        if let Some(hold) = hold {
            hold.held.send(()).unwrap();
            let _ = hold.gate.recv_timeout(TIMEOUT);
        }
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
fn levels_of(id: SessionId) -> Vec<Level> {
    let id = id.to_string();
    let records = RECORDS.lock().unwrap();
    let of_id = records.iter().filter(|(_, text)| text.contains(&id));
    of_id.map(|(level, _)| *level).collect()
}

#[test]
fn giving_up_after_the_restart_limit_is_one_error() {
    guard!(|| {
        capture();
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let policy = RestartPolicy::new(Restart::Transient).intensity(2, Duration::from_secs(60));
        let handle = sup
            .start(projects.session(0))
            .policy(policy)
            .run(|_| std::panic::panic_any(CRASH))
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
    guard!(|| {
        capture();
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let handle = sup
            .start_session(projects.session(0), |ctx| ctx.wait_for_stop())
            .expect("start");
        handle.stop().expect("stop");
        assert_eq!(levels_of(handle.id()), [Level::Info, Level::Info]);
    });
}

/// A session's end is logged after its `Exited` was published: a logger that blocks on
/// that line holds up nothing another session's events depend on, and the next session
/// on the same directory starts after the `Exited`, not before.
#[test]
fn a_directorys_next_session_starts_after_the_last_one_exited_even_if_logging_blocks() {
    guard!(|| {
        capture();
        let projects = Projects::new(1);
        let sup = common::supervisor();
        let events = sup.subscribe();
        let first = projects.session(0);
        let (held_tx, held) = bounded(1);
        let (release, gate) = bounded(0);
        let text = format!("session {} ended", first.id());
        *HOLD.lock().unwrap() = Some(Hold {
            text,
            held: held_tx,
            gate,
        });
        let first = sup.start_session(first, stub::returns()).expect("first");
        recv_within(&held, "the first session's end to be logged");
        let second = sup
            .start_session(projects.session(0), stub::idle())
            .expect("second");
        drop(release);
        let order: Vec<_> = (0..3)
            .map(|_| match events.recv_timeout(TIMEOUT).expect("an event") {
                SessionEvent::Started { session } => ("Started", session.id()),
                SessionEvent::Exited { session, .. } => ("Exited", session.id()),
                other => panic!("{other:?}"),
            })
            .collect();
        let (a, b) = (first.id(), second.id());
        assert_eq!(order, [("Started", a), ("Exited", a), ("Started", b)]);
    });
}
