//! Ready-made session bodies for tests and examples.
//!
//! - [`idle`]: does nothing until a stop is requested.
//! - [`returns`]: returns at once, ending its session (unless restarted).
//! - [`panics`]: panics each time it runs.
//! - [`echo`]: answers every message through a channel, until stopped.
//! - [`reports`]: tells a channel its id and restart count each time it runs.
//! - [`gated`]: ignores stop requests until released: a stuck body.
//!
//! The channels may be `std::sync::mpsc` senders or crossbeam ones (see [`Sink`]).
//!
//! # Examples
//!
//! ```
//! use std::sync::mpsc;
//! use session_supervisor::{stub, Session, SessionSupervisor};
//!
//! let sup = SessionSupervisor::new();
//! let (runs_tx, runs) = mpsc::channel();
//! let handle = sup.start_session(Session::new(std::env::temp_dir())?, stub::reports(runs_tx))?;
//! assert_eq!(runs.recv().unwrap(), (handle.id(), 0)); // it runs, never restarted
//! handle.stop()?;
//! # Ok::<(), session_supervisor::Error>(())
//! ```

use crossbeam_channel::Receiver;

use crate::{SessionContext, SessionId};

/// Where a stub body sends what it reports: a channel's sending end.
///
/// Implemented for `std::sync::mpsc::Sender` and `SyncSender` and for crossbeam's
/// `Sender`. A send that fails (the receiver is gone) is ignored: the test stopped
/// listening.
pub trait Sink<T>: Send + 'static {
    /// Sends `value`, ignoring a receiver that is gone.
    fn put(&self, value: T);
}

impl<T: Send + 'static> Sink<T> for std::sync::mpsc::Sender<T> {
    fn put(&self, value: T) {
        let _ = self.send(value);
    }
}

impl<T: Send + 'static> Sink<T> for std::sync::mpsc::SyncSender<T> {
    fn put(&self, value: T) {
        let _ = self.send(value);
    }
}

impl<T: Send + 'static> Sink<T> for crossbeam_channel::Sender<T> {
    fn put(&self, value: T) {
        let _ = self.send(value);
    }
}

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
pub fn echo<M, R, F>(
    to: impl Sink<R>,
    mut reply: F,
) -> impl FnMut(&SessionContext<M>) + Send + 'static
where
    F: FnMut(M) -> R + Send + 'static,
{
    move |ctx: &SessionContext<M>| {
        while let Some(message) = ctx.recv() {
            to.put(reply(message));
        }
    }
}

/// A body that sends its id and restart count each time it runs, then idles until a
/// stop is requested. Lets a test wait until a session (re)started.
pub fn reports<M>(
    to: impl Sink<(SessionId, u32)>,
) -> impl FnMut(&SessionContext<M>) + Send + 'static {
    move |ctx: &SessionContext<M>| {
        to.put((ctx.id(), ctx.restarts()));
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
