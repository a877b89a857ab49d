//! Ready-made session bodies for tests and examples.
//!
//! # Examples
//!
//! ```
//! use session_supervisor::{stub, Session, SessionSupervisor};
//!
//! let sup = SessionSupervisor::new();
//! let handle = sup.start_session(Session::new(std::env::temp_dir())?, stub::idle())?;
//! assert!(handle.is_running());
//! sup.stop_session(handle.id())?;
//! # Ok::<(), session_supervisor::Error>(())
//! ```

use crossbeam_channel::{Receiver, Sender};

use crate::{SessionContext, SessionId};

/// A body that does nothing until a stop is requested.
pub fn idle() -> impl FnMut(&SessionContext) + Send + 'static {
    |ctx: &SessionContext| ctx.wait_for_shutdown()
}

/// A body that returns at once, ending its session (unless restarted).
pub fn returns() -> impl FnMut(&SessionContext) + Send + 'static {
    |_: &SessionContext| {}
}

/// A body that panics with `message` each time it runs.
pub fn panics(message: &'static str) -> impl FnMut(&SessionContext) + Send + 'static {
    move |_: &SessionContext| panic!("{message}")
}

/// A body that sends its id and restart count each time it runs, then idles until a
/// stop is requested. Lets a test wait until a session (re)started.
pub fn reports(to: Sender<(SessionId, u32)>) -> impl FnMut(&SessionContext) + Send + 'static {
    move |ctx: &SessionContext| {
        // The test may have stopped listening; the body still idles.
        let _ = to.send((*ctx.id(), ctx.restarts()));
        ctx.wait_for_shutdown();
    }
}

/// A body that blocks until `gate` receives a message or disconnects, ignoring stop
/// requests meanwhile: a stuck body, released by the test.
pub fn gated(gate: Receiver<()>) -> impl FnMut(&SessionContext) + Send + 'static {
    move |_: &SessionContext| {
        let _ = gate.recv();
    }
}
