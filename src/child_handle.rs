//! [`ChildHandle`]: a cheap reference to one child of a session.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::child::ChildCell;
use crate::handle::call;
use crate::wait::Wait;
use crate::{ChildExit, Error, ReplyTo, Result, SendError, SessionId};

/// A cheap, cloneable reference to one child of a session: a named worker the session's
/// body started with [`SessionContext::spawn_child`](crate::SessionContext::spawn_child).
///
/// A child restarted in place (one-for-one, rest-for-one) keeps its handle and its
/// mailbox; a child started again by a restart of its whole session (one-for-all, or a
/// crash of the body) is a new child: find it again by name, with
/// [`SessionSupervisor::find_child`](crate::SessionSupervisor::find_child) or
/// [`SessionHandle::child`](crate::SessionHandle::child).
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
/// use session_supervisor::{Session, SessionSupervisor};
///
/// let (seen_tx, seen) = mpsc::channel();
/// let sup = SessionSupervisor::builder().messages::<String>().build();
/// let handle = sup
///     .start(Session::new(std::env::temp_dir())?)
///     .init(move |ctx| {
///         let seen_tx = seen_tx.clone();
///         ctx.spawn_child("watcher", move |child| {
///             while let Some(path) = child.recv() {
///                 seen_tx.send(path).unwrap();
///             }
///         })?;
///         Ok(())
///     })
///     .run(|ctx| ctx.wait_for_stop())?;
/// let watcher = handle.child("watcher")?;
/// assert_eq!(watcher.name(), "watcher");
/// watcher.send("src/lib.rs".to_owned())?;
/// assert_eq!(seen.recv_timeout(Duration::from_secs(5)).unwrap(), "src/lib.rs");
/// handle.stop()?;
/// assert!(!watcher.is_running());
/// # Ok::<(), session_supervisor::Error>(())
/// ```
pub struct ChildHandle<M = ()> {
    cell: Arc<ChildCell<M>>,
}

impl<M> Clone for ChildHandle<M> {
    fn clone(&self) -> Self {
        ChildHandle {
            cell: Arc::clone(&self.cell),
        }
    }
}

impl<M> ChildHandle<M> {
    pub(crate) fn new(cell: Arc<ChildCell<M>>) -> ChildHandle<M> {
        ChildHandle { cell }
    }

    /// The child's name, unique among its session's running children.
    #[must_use]
    pub fn name(&self) -> &str {
        self.cell.name()
    }

    /// The id of the session the child belongs to.
    #[must_use]
    pub fn session_id(&self) -> SessionId {
        self.cell.session_id()
    }

    /// Whether the child's thread is still at work.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.cell.is_running()
    }

    /// How many times the child was restarted in place.
    #[must_use]
    pub fn restarts(&self) -> u32 {
        self.cell.restarts()
    }

    /// How the child ended; `None` while it runs.
    #[must_use]
    pub fn exit(&self) -> Option<ChildExit> {
        self.cell.exit()
    }

    /// Queues a message in the child's mailbox, as
    /// [`SessionHandle::send`](crate::SessionHandle::send) does for a session.
    ///
    /// # Errors
    ///
    /// [`Error::Child`] with [`Error::SessionGone`] inside if the child has ended or is
    /// stopping, or [`Error::MailboxFull`] on the child's own thread; the [`SendError`]
    /// hands the message back.
    pub fn send(&self, message: M) -> std::result::Result<(), SendError<M>> {
        self.post(message, Wait::Forever)
    }

    /// Queues a message only if the child's mailbox has room now.
    ///
    /// # Errors
    ///
    /// [`Error::Child`] with [`Error::MailboxFull`] or [`Error::SessionGone`] inside;
    /// the [`SendError`] hands the message back.
    pub fn try_send(&self, message: M) -> std::result::Result<(), SendError<M>> {
        self.post(message, Wait::No)
    }

    fn post(&self, message: M, wait: Wait) -> std::result::Result<(), SendError<M>> {
        self.cell
            .send(message, wait)
            .map_err(|SendError { message, error }| SendError {
                message,
                error: self.cell.error(error),
            })
    }

    /// Sends a request to the child and waits up to `timeout` for its reply, as
    /// [`SessionHandle::call`](crate::SessionHandle::call) does for a session.
    ///
    /// # Errors
    ///
    /// [`Error::Child`] with the error of a session's call inside
    /// ([`Error::SessionGone`], [`Error::NoReply`], [`Error::CallTimeout`], or
    /// [`Error::CallFromOwnThread`] on the child's own thread).
    pub fn call<R>(&self, make: impl FnOnce(ReplyTo<R>) -> M, timeout: Duration) -> Result<R> {
        let id = self.session_id();
        if self.cell.is_current_thread() {
            return Err(self.cell.error(Error::CallFromOwnThread { id }));
        }
        call(id, make, timeout, |request, wait| {
            self.cell.send(request, wait)
        })
        .map_err(|error| self.cell.error(error))
    }
}

impl<M> fmt::Debug for ChildHandle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildHandle")
            .field("session_id", &self.session_id())
            .field("name", &self.name())
            .field("running", &self.is_running())
            .field("restarts", &self.restarts())
            .finish()
    }
}
