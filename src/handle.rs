//! [`SessionHandle`]: a cheap reference to one running session.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;

use crate::cell::{Ended, SessionCell};
use crate::wait::Wait;
use crate::{
    ChildHandle, Error, ExitReport, ReplyTo, Result, SendError, Session, SessionId, SessionStats,
};

/// A cheap, cloneable reference to one session, as started.
///
/// A handle refers to one incarnation of a session: it does not own the session's
/// thread (the supervisor joins it), and it keeps answering after the session ended.
///
/// This struct is created by [`SessionSupervisor::start_session`] and friends,
/// [`find_session`] and [`list_sessions`].
///
/// [`SessionSupervisor::start_session`]: crate::SessionSupervisor::start_session
/// [`find_session`]: crate::SessionSupervisor::find_session
/// [`list_sessions`]: crate::SessionSupervisor::list_sessions
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use session_supervisor::{ExitReason, Session, SessionSupervisor};
///
/// let sup = SessionSupervisor::new();
/// let handle = sup.start_session(Session::new(std::env::temp_dir())?, |_ctx| {})?;
/// // The body returned at once: the session ends by itself.
/// let report = handle.wait_timeout(Duration::from_secs(5)).expect("ended");
/// assert_eq!(report.reason(), &ExitReason::Normal);
/// assert!(!handle.is_running());
/// assert!(!sup.session_running(handle.id()));
/// # Ok::<(), session_supervisor::Error>(())
/// ```
pub struct SessionHandle<M = ()> {
    cell: Arc<SessionCell<M>>,
}

impl<M> Clone for SessionHandle<M> {
    fn clone(&self) -> Self {
        SessionHandle {
            cell: Arc::clone(&self.cell),
        }
    }
}

impl<M> SessionHandle<M> {
    pub(crate) fn new(cell: Arc<SessionCell<M>>) -> SessionHandle<M> {
        SessionHandle { cell }
    }

    /// Queues a message in the session's mailbox. Messages from one sender arrive in
    /// the order sent. With a bounded mailbox
    /// ([`SupervisorBuilder::mailbox_capacity`](crate::SupervisorBuilder::mailbox_capacity))
    /// this blocks while the mailbox is full, until there is room or the session is
    /// asked to stop; on the session's own thread a full mailbox fails at once.
    ///
    /// `Ok` means the message was queued; messages still queued when the session ends
    /// are dropped with it.
    ///
    /// # Errors
    ///
    /// [`Error::SessionGone`] if the session has ended or was asked to stop;
    /// [`Error::MailboxFull`] on the session's own thread if its mailbox is full. The
    /// [`SendError`] hands the message back.
    pub fn send(&self, message: M) -> std::result::Result<(), SendError<M>> {
        self.cell.send(message, Wait::Forever)
    }

    /// Queues a message only if the mailbox has room now.
    ///
    /// # Errors
    ///
    /// [`Error::MailboxFull`] or [`Error::SessionGone`]; the [`SendError`] hands the
    /// message back.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_supervisor::{Error, Session, SessionSupervisor};
    ///
    /// let sup = SessionSupervisor::builder().messages::<u32>().mailbox_capacity(1).build();
    /// // A body that never reads its mailbox.
    /// let handle = sup.start_session(Session::new(std::env::temp_dir())?, |ctx| ctx.wait_for_stop())?;
    /// handle.try_send(1)?;
    /// let full = handle.try_send(2).unwrap_err();
    /// assert!(matches!(full.error(), Error::MailboxFull { .. }));
    /// assert_eq!(full.into_message(), 2);
    /// // A full mailbox never holds up a stop.
    /// sup.stop_session(handle.id())?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_send(&self, message: M) -> std::result::Result<(), SendError<M>> {
        self.cell.send(message, Wait::No)
    }

    /// Sends a request and waits up to `timeout` for its reply.
    ///
    /// `make` builds the message around the [`ReplyTo`] the session answers through.
    ///
    /// # Errors
    ///
    /// - [`Error::SessionGone`] if the session has ended before the request was queued.
    /// - [`Error::NoReply`] at once if the session drops the reply end without answering,
    ///   or ends before answering.
    /// - [`Error::CallTimeout`] if no reply came within `timeout` (including time spent
    ///   waiting for room in a bounded mailbox). A timeout too large for a deadline
    ///   (such as `Duration::MAX`) waits for the reply without one.
    /// - [`Error::CallFromOwnThread`] at once if called on the session's own thread,
    ///   which cannot answer while it waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_supervisor::{ReplyTo, Session, SessionSupervisor};
    ///
    /// enum Msg {
    ///     Name(ReplyTo<String>),
    /// }
    ///
    /// let sup = SessionSupervisor::builder().messages::<Msg>().build();
    /// let session = Session::builder(std::env::temp_dir()).name("scratch").build()?;
    /// let handle = sup.start_session(session, |ctx| {
    ///     while let Some(Msg::Name(reply)) = ctx.recv() {
    ///         reply.send(ctx.session().name().to_owned());
    ///     }
    /// })?;
    /// assert_eq!(handle.call(Msg::Name, Duration::from_secs(5))?, "scratch");
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn call<R>(&self, make: impl FnOnce(ReplyTo<R>) -> M, timeout: Duration) -> Result<R> {
        let id = self.id();
        if self.cell.is_current_thread() {
            return Err(Error::CallFromOwnThread { id });
        }
        call(id, make, timeout, |request, wait| {
            self.cell.send(request, wait)?;
            self.cell.tracker().called();
            Ok(())
        })
    }

    /// The session's id.
    #[must_use]
    pub fn id(&self) -> SessionId {
        self.cell.id()
    }

    /// The session's metadata as registered now (or last, once it ended): a rename
    /// through [`SessionSupervisor::rename_session`](crate::SessionSupervisor::rename_session)
    /// shows here.
    #[must_use]
    pub fn session(&self) -> Session {
        self.cell.session()
    }

    /// Stops the session, as
    /// [`SessionSupervisor::stop_session`](crate::SessionSupervisor::stop_session) does:
    /// requests the stop, waits up to the stop timeout for the end, joins the thread,
    /// and returns how the session ended. If it had already ended, returns that report
    /// at once.
    ///
    /// # Errors
    ///
    /// [`Error::StopTimeout`] and [`Error::StopFromOwnThread`], as for `stop_session`.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_supervisor::{stub, ExitReason, Session, SessionSupervisor};
    ///
    /// let sup = SessionSupervisor::new();
    /// let handle = sup.start_session(Session::new(std::env::temp_dir())?, stub::idle())?;
    /// let report = handle.stop()?;
    /// assert_eq!(report.reason(), &ExitReason::Stopped);
    /// assert_eq!(sup.count(), 0);
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn stop(&self) -> Result<ExitReport> {
        self.cell.stop()
    }

    /// A handle to the session's running child `name`.
    ///
    /// # Errors
    ///
    /// [`Error::ChildNotFound`] if the session runs no child of that name.
    pub fn child(&self, name: &str) -> Result<ChildHandle<M>> {
        self.cell.child(name)
    }

    /// Handles to the session's running children, in start order.
    #[must_use]
    pub fn children(&self) -> Vec<ChildHandle<M>> {
        let children = self.cell.tree().children();
        children.into_iter().map(ChildHandle::new).collect()
    }

    /// What the session is doing: its state, uptime, restarts, last crash, mailbox and
    /// activity, read from its own counters without a message to it, so a stuck or
    /// backed-up session answers at once. Works after the session ended too (its
    /// state is then [`SessionState::Ended`](crate::SessionState::Ended)).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_supervisor::{stub, Session, SessionState, SessionSupervisor};
    ///
    /// let sup = SessionSupervisor::new();
    /// let handle = sup.start_session(Session::new(std::env::temp_dir())?, stub::idle())?;
    /// let stats = handle.stats();
    /// assert_eq!(stats.state(), SessionState::Running);
    /// assert_eq!(stats.mailbox_len(), 0);
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    #[must_use]
    pub fn stats(&self) -> SessionStats {
        self.cell.stats()
    }

    /// Whether the session's thread is still at work. Once `false`, the session is
    /// no longer registered.
    #[must_use]
    pub fn is_running(&self) -> bool {
        !self.cell.is_finished()
    }

    /// Whether a stop of this session was requested.
    #[must_use]
    pub fn stop_requested(&self) -> bool {
        self.cell.stop_requested()
    }

    /// Waits up to `timeout` for the session to end, without asking it to; returns how
    /// it ended, or `None` if it is still running.
    ///
    /// Once this returns a report, the session is unregistered, its path is free and
    /// its `Exited` event was published. On the session's own thread it returns `None`
    /// at once: a thread cannot wait for its own end.
    #[must_use]
    pub fn wait_timeout(&self, timeout: Duration) -> Option<ExitReport> {
        match self.cell.wait(Wait::at_most(timeout)) {
            Ended::Yes => Some(self.cell.exit_report()),
            Ended::TimedOut => None,
        }
    }
}

impl<M> fmt::Debug for SessionHandle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionHandle")
            .field("id", &self.id())
            .field("running", &self.is_running())
            .finish()
    }
}

/// A call: sends the request `make` builds through `send` and waits up to `timeout` for
/// the reply. The errors are said of the session `id`.
pub(crate) fn call<M, R>(
    id: SessionId,
    make: impl FnOnce(ReplyTo<R>) -> M,
    timeout: Duration,
    send: impl FnOnce(M, Wait) -> std::result::Result<(), SendError<M>>,
) -> Result<R> {
    let wait = Wait::at_most(timeout);
    let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
    let request = make(ReplyTo::new(reply_tx));
    if let Err(err) = send(request, wait) {
        return Err(match err.error {
            Error::MailboxFull { .. } => Error::CallTimeout { id, timeout },
            other => other,
        });
    }
    match wait.recv(&reply_rx) {
        Ok(reply) => Ok(reply),
        Err(RecvTimeoutError::Timeout) => Err(Error::CallTimeout { id, timeout }),
        Err(RecvTimeoutError::Disconnected) => Err(Error::NoReply { id }),
    }
}
