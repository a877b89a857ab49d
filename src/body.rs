//! What runs on a session thread: the [`SessionBody`] trait, the [`SessionContext`] it
//! is given, and the [`Control`] messages of the control channel.

use std::cell::Cell;
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::runtime::Runtime;
use crate::{Session, SessionId};

/// The error type `init` may return; its text becomes the reason of
/// [`Error::StartFailed`](crate::Error::StartFailed).
pub type InitError = Box<dyn StdError + Send + Sync>;

/// The work of a session, run on the session's own thread.
///
/// `init` runs first (again on every restart); the supervisor's `start_session` returns
/// only after the first `init` finished, and fails with
/// [`Error::StartFailed`](crate::Error::StartFailed) if it returns an error or panics.
/// Then `run` runs until it returns; a body that returns ends its session (unless its
/// [`RestartPolicy`](crate::RestartPolicy) runs it again). A long-running body should
/// block on [`SessionContext::wait_for_shutdown`] or select on
/// [`SessionContext::control`], and return once a stop is requested.
///
/// Any `FnMut(&SessionContext) + Send + 'static` closure is a body whose `run` is the
/// closure.
///
/// # Examples
///
/// ```
/// use session_supervisor::{InitError, Session, SessionBody, SessionContext, SessionSupervisor};
///
/// struct Indexer {
///     files: usize,
/// }
///
/// impl SessionBody for Indexer {
///     fn init(&mut self, ctx: &SessionContext) -> Result<(), InitError> {
///         self.files = std::fs::read_dir(ctx.session().project_path())?.count();
///         Ok(())
///     }
///
///     fn run(&mut self, ctx: &SessionContext) {
///         ctx.wait_for_shutdown();
///     }
/// }
///
/// let sup = SessionSupervisor::new();
/// let session = Session::new(std::env::temp_dir())?;
/// let handle = sup.start_session_with(session, Indexer { files: 0 })?;
/// assert!(handle.is_running());
/// sup.stop_session(handle.id())?;
/// # Ok::<(), session_supervisor::Error>(())
/// ```
pub trait SessionBody: Send + 'static {
    /// Prepares the session; runs on the session thread before `run`.
    ///
    /// # Errors
    ///
    /// An error fails the start (or, on a restart, ends the session with
    /// [`ExitReason::InitFailed`](crate::ExitReason::InitFailed)).
    fn init(&mut self, ctx: &SessionContext) -> Result<(), InitError> {
        let _ = ctx;
        Ok(())
    }

    /// Does the session's work; the session ends (or restarts) when it returns.
    fn run(&mut self, ctx: &SessionContext);
}

impl<F> SessionBody for F
where
    F: FnMut(&SessionContext) + Send + 'static,
{
    fn run(&mut self, ctx: &SessionContext) {
        self(ctx)
    }
}

/// Turns a closure into a [`SessionBody`], so the closure's argument type is inferred
/// where a method takes any `impl SessionBody`.
///
/// # Examples
///
/// ```
/// use session_supervisor::{body_fn, RestartPolicy, Session, SessionSupervisor};
///
/// let sup = SessionSupervisor::new();
/// let session = Session::new(std::env::temp_dir())?;
/// let body = body_fn(|ctx| ctx.wait_for_shutdown());
/// let handle = sup.start_session_with_policy(session, body, RestartPolicy::default())?;
/// sup.stop_session(handle.id())?;
/// # Ok::<(), session_supervisor::Error>(())
/// ```
pub fn body_fn<F>(run: F) -> F
where
    F: FnMut(&SessionContext) + Send + 'static,
{
    run
}

/// A message on a session's control channel.
///
/// Bodies that select on [`SessionContext::control`] receive these; any of them means
/// the body should look at [`SessionContext::shutdown_requested`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control {
    /// A stop was requested: the body should return.
    Shutdown,
}

/// What a session body can see of its session: its metadata, its restart count and its
/// control channel.
///
/// This struct is created by the supervisor and lent to [`SessionBody::init`] and
/// [`SessionBody::run`]; it lives on the session thread.
#[derive(Debug)]
pub struct SessionContext {
    session: Session,
    runtime: Arc<Runtime>,
    control: Receiver<Control>,
    restarts: Cell<u32>,
}

impl SessionContext {
    pub(crate) fn new(session: Session, runtime: Arc<Runtime>, control: Receiver<Control>) -> Self {
        SessionContext {
            session,
            runtime,
            control,
            restarts: Cell::new(0),
        }
    }

    /// The session's metadata as it was when the session started.
    #[must_use]
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session's id.
    #[must_use]
    pub fn id(&self) -> &SessionId {
        self.session.id()
    }

    /// How many restarts came before this run of the body.
    #[must_use]
    pub fn restarts(&self) -> u32 {
        self.restarts.get()
    }

    pub(crate) fn set_restarts(&self, restarts: u32) {
        self.restarts.set(restarts);
    }

    /// Whether a stop was requested. Once `true`, it stays `true`.
    #[must_use]
    pub fn shutdown_requested(&self) -> bool {
        self.runtime.shutdown_requested()
    }

    /// Blocks until a stop is requested (woken by the control channel, no polling).
    pub fn wait_for_shutdown(&self) {
        while !self.shutdown_requested() {
            if self.control.recv().is_err() {
                return;
            }
        }
    }

    /// Blocks until a stop is requested or `timeout` passes; returns whether a stop was
    /// requested. Handy for bodies that do periodic work.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_supervisor::{Session, SessionSupervisor};
    ///
    /// let sup = SessionSupervisor::new();
    /// let handle = sup.start_session(Session::new(std::env::temp_dir())?, |ctx| {
    ///     while !ctx.wait_for_shutdown_timeout(Duration::from_millis(10)) {
    ///         // periodic work
    ///     }
    /// })?;
    /// sup.stop_session(handle.id())?;
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn wait_for_shutdown_timeout(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while !self.shutdown_requested() {
            match self.control.recv_deadline(deadline) {
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => return false,
                Err(RecvTimeoutError::Disconnected) => return true,
            }
        }
        true
    }

    /// The control channel, for bodies that wait on their own channels too.
    ///
    /// Each message is a [`Control`]; after receiving one, check
    /// [`shutdown_requested`](Self::shutdown_requested).
    ///
    /// # Examples
    ///
    /// ```
    /// use crossbeam_channel::{select, unbounded};
    /// use session_supervisor::{Session, SessionSupervisor};
    ///
    /// let (jobs_tx, jobs_rx) = unbounded::<u32>();
    /// let (done_tx, done_rx) = unbounded::<u32>();
    /// let sup = SessionSupervisor::new();
    /// let handle = sup.start_session(Session::new(std::env::temp_dir())?, move |ctx| loop {
    ///     select! {
    ///         recv(ctx.control()) -> _ => if ctx.shutdown_requested() { return },
    ///         recv(jobs_rx) -> job => done_tx.send(job.unwrap() * 2).unwrap(),
    ///     }
    /// })?;
    /// jobs_tx.send(21).unwrap();
    /// assert_eq!(done_rx.recv().unwrap(), 42);
    /// sup.stop_session(handle.id())?;
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    #[must_use]
    pub fn control(&self) -> &Receiver<Control> {
        &self.control
    }
}
