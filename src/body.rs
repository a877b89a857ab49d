//! What runs on a session thread: the [`SessionBody`] trait and the [`SessionContext`]
//! it is given.

use std::cell::Cell;
use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError as ChannelTimeout};

use crate::boundary::drop_quietly;
use crate::mailbox::{Inbox, StopSignal};
use crate::message::{RecvTimeoutError, TryRecvError};
use crate::wait::Wait;
use crate::{Control, Session, SessionId};

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
/// block on [`SessionContext::recv`], [`SessionContext::wait_for_stop`] or a select
/// on [`SessionContext::control`], and return once a stop is requested.
///
/// Given as a value ([`Start::body`](crate::Start::body)), a restart runs `init` and
/// `run` again on the same value, which keeps whatever state the crashed run left in
/// it: reset what matters in `init`. Given as a factory
/// ([`Start::factory`](crate::Start::factory)), each restart runs a fresh value.
///
/// Any `FnMut(&SessionContext) + Send + 'static` closure is a body whose `run` is the
/// closure; [`SessionSupervisor::start_session`](crate::SessionSupervisor::start_session)
/// and [`Start::run`](crate::Start::run) take one.
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
///         ctx.wait_for_stop();
///     }
/// }
///
/// let sup = SessionSupervisor::new();
/// let session = Session::new(std::env::temp_dir())?;
/// let handle = sup.start(session).body(Indexer { files: 0 })?;
/// assert!(handle.is_running());
/// sup.stop_session(handle.id())?;
/// # Ok::<(), session_supervisor::Error>(())
/// ```
pub trait SessionBody<M = ()>: Send + 'static {
    /// Prepares the session; runs on the session thread before `run`.
    ///
    /// # Errors
    ///
    /// An error fails the start (or, on a restart, ends the session with
    /// [`ExitReason::InitFailed`](crate::ExitReason::InitFailed)).
    fn init(&mut self, ctx: &SessionContext<M>) -> Result<(), InitError> {
        let _ = ctx;
        Ok(())
    }

    /// Does the session's work; the session ends (or restarts) when it returns.
    fn run(&mut self, ctx: &SessionContext<M>);
}

impl<M, F> SessionBody<M> for F
where
    F: FnMut(&SessionContext<M>) + Send + 'static,
{
    fn run(&mut self, ctx: &SessionContext<M>) {
        self(ctx)
    }
}

/// What a session body can see of its session: its metadata, its restart count, and its
/// control channel of messages of type `M` and the stop signal.
///
/// This struct is created by the supervisor and lent to [`SessionBody::init`] and
/// [`SessionBody::run`]; it lives on the session thread. The mailbox outlives restarts:
/// messages queued while the body restarts are read by the next run.
pub struct SessionContext<M = ()> {
    session: Session,
    /// The messages and the stop signal; the stop can be waited for apart from the
    /// messages, so `wait_for_stop` leaves them alone.
    inbox: Inbox<M>,
    restarts: Cell<u32>,
}

impl<M> fmt::Debug for SessionContext<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionContext")
            .field("session", &self.session)
            .field("restarts", &self.restarts.get())
            .field("stop_requested", &self.stop_requested())
            .finish_non_exhaustive()
    }
}

impl<M> SessionContext<M> {
    pub(crate) fn new(session: Session, inbox: Inbox<M>) -> Self {
        SessionContext {
            session,
            inbox,
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
    pub fn id(&self) -> SessionId {
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
    pub fn stop_requested(&self) -> bool {
        self.stop().is_raised()
    }

    fn stop(&self) -> &StopSignal {
        &self.inbox.stop
    }

    /// Blocks until a stop is requested (woken by the stop, no polling). Messages stay
    /// in the mailbox.
    pub fn wait_for_stop(&self) {
        self.stop().wait(Wait::Forever);
    }

    /// Blocks until a stop is requested or `timeout` passes; returns whether a stop was
    /// requested. Handy for bodies that do periodic work. Messages stay in the mailbox.
    /// A timeout too large for a deadline (such as `Duration::MAX`) waits for the stop.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_supervisor::{Session, SessionSupervisor};
    ///
    /// let sup = SessionSupervisor::new();
    /// let handle = sup.start_session(Session::new(std::env::temp_dir())?, |ctx| {
    ///     while !ctx.wait_for_stop_timeout(Duration::from_millis(10)) {
    ///         // periodic work
    ///     }
    /// })?;
    /// sup.stop_session(handle.id())?;
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn wait_for_stop_timeout(&self, timeout: Duration) -> bool {
        self.stop().wait(Wait::at_most(timeout))
    }

    /// Waits for the next message; `None` once a stop is requested.
    ///
    /// A stop takes priority over queued messages: once it is requested, `recv` returns
    /// `None` even if messages are waiting (they are dropped with the session).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use session_supervisor::{Session, SessionSupervisor};
    ///
    /// let (seen_tx, seen_rx) = mpsc::channel();
    /// let sup = SessionSupervisor::builder().messages::<u32>().build();
    /// let handle = sup.start_session(Session::new(std::env::temp_dir())?, move |ctx| {
    ///     while let Some(n) = ctx.recv() {
    ///         seen_tx.send(n).unwrap();
    ///     }
    /// })?;
    /// handle.send(1)?;
    /// handle.send(2)?;
    /// assert_eq!(seen_rx.recv().unwrap(), 1);
    /// assert_eq!(seen_rx.recv().unwrap(), 2);
    /// sup.stop_session(handle.id())?;
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn recv(&self) -> Option<M> {
        if self.stop_requested() {
            return None;
        }
        match self.inbox.control.recv() {
            Ok(Control::Message(message)) if !self.stop_requested() => Some(message),
            _ => None,
        }
    }

    /// Waits up to `timeout` for the next message.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Stopped`] once a stop is requested (it takes priority over
    /// queued messages); [`RecvTimeoutError::Timeout`] if no message came in time.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<M, RecvTimeoutError> {
        if self.stop_requested() {
            return Err(RecvTimeoutError::Stopped);
        }
        match self.inbox.control.recv_timeout(timeout) {
            Ok(Control::Message(message)) if !self.stop_requested() => Ok(message),
            Err(ChannelTimeout::Timeout) => Err(RecvTimeoutError::Timeout),
            _ => Err(RecvTimeoutError::Stopped),
        }
    }

    /// Takes the next message if one is waiting, without blocking.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Stopped`] once a stop is requested; [`TryRecvError::Empty`] if no
    /// message is waiting.
    pub fn try_recv(&self) -> Result<M, TryRecvError> {
        if self.stop_requested() {
            return Err(TryRecvError::Stopped);
        }
        match self.inbox.control.try_recv() {
            Ok(Control::Message(message)) if !self.stop_requested() => Ok(message),
            Err(crossbeam_channel::TryRecvError::Empty) => Err(TryRecvError::Empty),
            _ => Err(TryRecvError::Stopped),
        }
    }

    /// Drops every queued message, each inside a panic boundary (a message's `Drop` is
    /// user code). Called once the mailbox is closed, so the session thread, not the
    /// last sender, drops what is left.
    pub(crate) fn discard_messages(&self) {
        for item in self.inbox.control.try_iter() {
            drop_quietly(item);
        }
    }

    /// The control channel: the session's messages and the stop signal, for bodies that
    /// wait on their own channels too.
    ///
    /// Each item is a [`Control`]. A stop comes after the messages queued before it;
    /// check [`stop_requested`](Self::stop_requested) after each message if the
    /// stop should win, as [`recv`](Self::recv) does. A stop also closes the channel, so
    /// a receive error means the same as `Stop` (it is what a body sees if its
    /// mailbox was full when the stop came).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_supervisor::crossbeam_channel::{select, unbounded};
    /// use session_supervisor::{Control, Session, SessionSupervisor};
    ///
    /// let (jobs_tx, jobs_rx) = unbounded::<u32>();
    /// let (log_tx, log_rx) = unbounded::<String>();
    /// let sup = SessionSupervisor::builder().messages::<String>().build();
    /// let handle = sup.start_session(Session::new(std::env::temp_dir())?, move |ctx| loop {
    ///     select! {
    ///         recv(ctx.control()) -> item => match item {
    ///             Ok(Control::Message(text)) => log_tx.send(text).unwrap(),
    ///             _ => return, // Stop, or the channel closed by the stop
    ///         },
    ///         recv(jobs_rx) -> job => log_tx.send(format!("job {}", job.unwrap())).unwrap(),
    ///     }
    /// })?;
    /// handle.send("hello".into())?;
    /// assert_eq!(log_rx.recv().unwrap(), "hello");
    /// jobs_tx.send(7).unwrap();
    /// assert_eq!(log_rx.recv().unwrap(), "job 7");
    /// sup.stop_session(handle.id())?;
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    #[must_use]
    pub fn control(&self) -> &Receiver<Control<M>> {
        &self.inbox.control
    }
}
