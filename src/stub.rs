//! Ready-made session bodies for tests and examples.
//!
//! - [`idle`]: does nothing until a stop is requested.
//! - [`returns`]: returns at once, ending its session (unless restarted).
//! - [`panics`]: panics each time it runs.
//! - [`echo`]: answers every message through a channel, until stopped.
//! - [`reports`]: tells a channel its id and restart count each time it runs.
//! - [`gated`]: ignores stop requests until released: a stuck body.
//! - [`tree`]: starts idle children with the given names, in order, in its `init`, then
//!   waits for the stop: a whole supervision tree in one line (a body value, for
//!   [`Start::body`](crate::Start::body)).
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

use crate::{InitError, SessionBody, SessionContext, SessionId};

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

/// A body that starts one idle child per name, in the order given, in its `init`, then
/// waits for the stop: a session with a whole supervision tree in one line, for tests
/// of children, their lookups, their stop order and their reports. The children run by
/// the time the start returns; each restart of the whole session starts them again.
///
/// A child that cannot be started (a name that is invalid or used twice, one past
/// [`max_children`](crate::SupervisorBuilder::max_children), a thread that could not be
/// spawned) fails the `init`: the start fails with
/// [`Error::StartFailed`](crate::Error::StartFailed) saying why, its children stopped.
///
/// # Examples
///
/// ```
/// use session_supervisor::{stub, ExitReason, Session, SessionSupervisor};
///
/// let sup = SessionSupervisor::new();
/// let tree = stub::tree(["watcher", "indexer", "agent"]);
/// let handle = sup.start(Session::new(std::env::temp_dir())?).body(tree)?;
///
/// let children: Vec<String> = handle.children().iter().map(|c| c.name().to_owned()).collect();
/// assert_eq!(children, ["watcher", "indexer", "agent"]); // in start order
/// assert!(sup.find_child(handle.id(), "indexer")?.is_running());
///
/// let report = handle.stop()?;
/// assert_eq!(report.reason(), &ExitReason::Stopped);
/// let stopped: Vec<&str> = report.children().iter().map(|child| child.name()).collect();
/// assert_eq!(stopped, ["agent", "indexer", "watcher"]); // newest first
/// # Ok::<(), session_supervisor::Error>(())
/// ```
///
/// One child too many, and numbered names:
///
/// ```
/// use session_supervisor::{stub, Error, Session, SessionSupervisor};
///
/// let sup = SessionSupervisor::builder().max_children(2).build();
/// let numbered = (0..3).map(|i| format!("child-{i}"));
/// let failed = sup.start(Session::new(std::env::temp_dir())?).body(stub::tree(numbered));
/// let Err(Error::StartFailed { reason, .. }) = failed else { panic!("{failed:?}") };
/// assert!(reason.contains("runs its limit of 2 children"), "{reason}");
/// assert_eq!(sup.count(), 0);
/// # Ok::<(), session_supervisor::Error>(())
/// ```
pub fn tree<M, I>(names: I) -> impl SessionBody<M>
where
    M: Send + 'static,
    I: IntoIterator,
    I::Item: Into<String>,
{
    Tree {
        names: names.into_iter().map(Into::into).collect(),
    }
}

/// The body of [`tree`].
struct Tree {
    names: Vec<String>,
}

impl<M: Send + 'static> SessionBody<M> for Tree {
    fn init(&mut self, ctx: &SessionContext<M>) -> Result<(), InitError> {
        for name in &self.names {
            ctx.spawn_child(name.as_str(), idle())?;
        }
        Ok(())
    }

    fn run(&mut self, ctx: &SessionContext<M>) {
        ctx.wait_for_stop();
    }
}
