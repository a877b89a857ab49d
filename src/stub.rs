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
pub fn idle<M>() -> impl FnMut(&SessionContext<M>) + Send + 'static {
    |ctx: &SessionContext<M>| ctx.wait_for_stop()
}

/// A body that returns at once, ending its session (unless restarted).
pub fn returns<M>() -> impl FnMut(&SessionContext<M>) + Send + 'static {
    |_: &SessionContext<M>| {}
}

/// A body that panics with `message` each time it runs.
pub fn panics<M>(message: &'static str) -> impl FnMut(&SessionContext<M>) + Send + 'static {
    move |_: &SessionContext<M>| panic!("{message}")
}

/// A body that answers every message with `reply(message)` on `to`, until a stop is
/// requested: an echo server for tests of messaging.
pub fn echo<M, R, F>(to: Sender<R>, mut reply: F) -> impl FnMut(&SessionContext<M>) + Send + 'static
where
    R: Send + 'static,
    F: FnMut(M) -> R + Send + 'static,
{
    move |ctx: &SessionContext<M>| {
        while let Some(message) = ctx.recv() {
            // The test may have stopped listening; keep draining all the same.
            let _ = to.send(reply(message));
        }
    }
}

/// A body that sends its id and restart count each time it runs, then idles until a
/// stop is requested. Lets a test wait until a session (re)started.
pub fn reports<M>(to: Sender<(SessionId, u32)>) -> impl FnMut(&SessionContext<M>) + Send + 'static {
    move |ctx: &SessionContext<M>| {
        // The test may have stopped listening; the body still idles.
        let _ = to.send((*ctx.id(), ctx.restarts()));
        ctx.wait_for_stop();
    }
}

/// A body that blocks until `gate` receives a message or disconnects, ignoring stop
/// requests meanwhile: a stuck body, released by the test.
pub fn gated<M>(gate: Receiver<()>) -> impl FnMut(&SessionContext<M>) + Send + 'static {
    move |_: &SessionContext<M>| {
        let _ = gate.recv();
    }
}
