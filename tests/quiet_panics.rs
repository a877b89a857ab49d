//! `quiet_session_panics`: session threads' panics stay off the panic hook chain, every
//! other thread's panic still reaches the hook installed before. The panic hook is the
//! process's, so this binary holds one test.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{guard, Projects, TIMEOUT};
use session_supervisor::ExitReason;

#[test]
fn session_panics_are_quiet_and_other_panics_reach_the_previous_hook() {
    guard!(|| {
        let reached = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&reached);
        let print = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            counted.fetch_add(1, Ordering::SeqCst);
            print(info);
        }));
        session_supervisor::quiet_session_panics();
        session_supervisor::quiet_session_panics(); // twice is once

        let projects = Projects::new(1);
        let sup = common::supervisor();
        let handle = sup
            .start_session(projects.session(0), |_| panic!("in a session"))
            .unwrap();
        let report = handle.wait_timeout(TIMEOUT).expect("gave up");
        assert!(matches!(
            report.reason(),
            ExitReason::RestartLimit { restarts: 3, .. }
        ));
        assert_eq!(
            reached.load(Ordering::SeqCst),
            0,
            "4 session panics, none passed on"
        );

        let plain = std::thread::spawn(|| panic!("on a thread of the program"));
        assert!(plain.join().is_err());
        assert_eq!(
            reached.load(Ordering::SeqCst),
            1,
            "the program's panic passed on"
        );
        let _ = std::panic::take_hook();
    });
}
