//! Ready-made session bodies for tests and examples.
//!
//! - [`idle`]: does nothing until a stop is requested.
//! - [`returns`]: returns at once, ending its session (unless restarted).
//! - [`panics`]: panics each time it runs.
//! - [`echo`]: answers every message through a channel, until stopped.
//! - [`reports`]: tells a channel its id and restart count each time it runs.
//! - [`gated`]: ignores stop requests until released: a stuck body.
//! - [`tree`]: starts idle children with the given names, in order, then waits for the
//!   stop: a whole supervision tree in one line.
//! - [`tree_reports`]: as [`tree`], and tells a channel each time its children are up.
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

use crate::{Error, SessionContext, SessionId};

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

/// A body that starts one idle child per name, in the order given, then waits for the
/// stop: a session with a whole supervision tree, for tests of children, their lookups,
/// their stop order and their reports. Each run starts the children again (a restart
/// of the whole session stopped them).
///
/// The children are started by the body's run, which begins just after
/// [`start_session`](crate::SessionSupervisor::start_session) returned: a test that
/// looks them up waits for them first, with [`tree_reports`].
///
/// # Panics
///
/// The body panics with the error of a child that could not be started (a name that
/// is invalid, used twice or past
/// [`max_children`](crate::SupervisorBuilder::max_children), a thread that could not be
/// spawned), so the session's restart policy handles it as a crash and its
/// [`ExitReport`](crate::ExitReport) ends up naming the error. A stop that comes while
/// the children are starting is no failure: the body then returns without starting the
/// rest.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use session_supervisor::{stub, ExitReason, Restart, RestartPolicy, Session, SessionSupervisor};
///
/// session_supervisor::quiet_session_panics();
/// let sup = SessionSupervisor::builder()
///     .max_children(2)
///     .restart_policy(RestartPolicy::new(Restart::Temporary))
///     .build();
/// let handle = sup.start_session(
///     Session::new(std::env::temp_dir())?,
///     stub::tree(["watcher", "indexer", "agent"]),
/// )?;
/// // The third child is one too many: the body panics with the error.
/// let report = handle.wait_timeout(Duration::from_secs(5)).expect("ended");
/// let ExitReason::Panicked { message } = report.reason() else { panic!("{report:?}") };
/// assert!(message.contains("runs its limit of 2 children"), "{message}");
/// // Its two children were stopped with it, newest first.
/// let stopped: Vec<&str> = report.children().iter().map(|child| child.name()).collect();
/// assert_eq!(stopped, ["indexer", "watcher"]);
/// # Ok::<(), session_supervisor::Error>(())
/// ```
///
/// Children numbered `child-0`, `child-1`, ...:
///
/// ```
/// # use session_supervisor::{stub, Session, SessionSupervisor};
/// let sup = SessionSupervisor::new();
/// let numbered = (0..3).map(|i| format!("child-{i}"));
/// let handle = sup.start_session(Session::new(std::env::temp_dir())?, stub::tree(numbered))?;
/// handle.stop()?;
/// # Ok::<(), session_supervisor::Error>(())
/// ```
pub fn tree<M, I>(names: I) -> impl FnMut(&SessionContext<M>) + Send + 'static
where
    M: Send + 'static,
    I: IntoIterator,
    I::Item: Into<String>,
{
    let names: Vec<String> = names.into_iter().map(Into::into).collect();
    move |ctx: &SessionContext<M>| {
        if start_children(ctx, &names) {
            ctx.wait_for_stop();
        }
    }
}

/// A body that starts its children as [`tree`] does, then sends its id and restart
/// count, then waits for the stop: lets a test wait until the tree is up, after the
/// start and after each restart of the whole session.
///
/// # Panics
///
/// As [`tree`]: with the error of a child that could not be started.
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
/// use session_supervisor::{stub, ExitReason, Session, SessionSupervisor};
///
/// let sup = SessionSupervisor::new();
/// let (up_tx, up) = mpsc::channel();
/// let tree = stub::tree_reports(["watcher", "indexer", "agent"], up_tx);
/// let handle = sup.start_session(Session::new(std::env::temp_dir())?, tree)?;
/// assert_eq!(up.recv_timeout(Duration::from_secs(5)), Ok((handle.id(), 0)));
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
pub fn tree_reports<M, I>(
    names: I,
    to: impl Sink<(SessionId, u32)>,
) -> impl FnMut(&SessionContext<M>) + Send + 'static
where
    M: Send + 'static,
    I: IntoIterator,
    I::Item: Into<String>,
{
    let names: Vec<String> = names.into_iter().map(Into::into).collect();
    move |ctx: &SessionContext<M>| {
        if start_children(ctx, &names) {
            to.put((ctx.id(), ctx.restarts()));
            ctx.wait_for_stop();
        }
    }
}

/// Starts an idle child per name, in order; returns `false` if a stop came first.
/// Panics with the error of a child that could not be started.
fn start_children<M: Send + 'static>(ctx: &SessionContext<M>, names: &[String]) -> bool {
    for name in names {
        match ctx.spawn_child(name.as_str(), idle()) {
            Ok(_) => {}
            // The session is stopping: the stop wins, nothing failed.
            Err(Error::SessionGone { .. }) => return false,
            Err(err) => panic!("{err}"),
        }
    }
    true
}
