//! Talking to sessions: [`ReplyTo`] for calls, [`SendError`] handing an undelivered
//! message back, and the receive outcomes of a session's mailbox.

use std::fmt;

use crossbeam_channel::Sender;

use crate::Error;

/// The reply end of a [`call`](crate::SessionHandle::call): the session answers through it
/// once.
///
/// If the session drops it without answering (or ends first), the caller's `call`
/// returns [`Error::NoReply`] at once instead of waiting for its timeout.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use session_supervisor::{ReplyTo, Session, SessionSupervisor};
///
/// enum Msg {
///     Double(u32, ReplyTo<u32>),
/// }
///
/// let sup = SessionSupervisor::builder().messages::<Msg>().build();
/// let handle = sup.start_session(Session::new(std::env::temp_dir())?, |ctx| {
///     while let Some(Msg::Double(n, reply)) = ctx.recv() {
///         reply.send(n * 2);
///     }
/// })?;
/// let answer = handle.call(|reply| Msg::Double(21, reply), Duration::from_secs(5))?;
/// assert_eq!(answer, 42);
/// # Ok::<(), session_supervisor::Error>(())
/// ```
pub struct ReplyTo<R> {
    sender: Sender<R>,
}

impl<R> ReplyTo<R> {
    pub(crate) fn new(sender: Sender<R>) -> ReplyTo<R> {
        ReplyTo { sender }
    }

    /// Sends the reply. Never blocks; a caller that gave up (timed out) simply never
    /// reads it.
    pub fn send(self, reply: R) {
        // The reply channel has room for exactly this one value.
        let _ = self.sender.try_send(reply);
    }
}

impl<R> fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplyTo { .. }")
    }
}

/// A message that could not be delivered, handed back with the reason.
///
/// Converts into [`Error`] with `?` (dropping the message).
///
/// # Examples
///
/// ```
/// use session_supervisor::{Error, Session, SessionSupervisor};
///
/// let sup = SessionSupervisor::builder().messages::<String>().build();
/// let handle = sup.start_session(Session::new(std::env::temp_dir())?, |ctx| ctx.wait_for_stop())?;
/// sup.stop_session(handle.id())?;
///
/// let err = handle.send("hello".to_owned()).unwrap_err();
/// assert!(matches!(err.error(), Error::SessionGone { .. }));
/// assert_eq!(err.into_message(), "hello");
/// # Ok::<(), Error>(())
/// ```
pub struct SendError<M> {
    pub(crate) message: M,
    pub(crate) error: Error,
}

impl<M> SendError<M> {
    /// Why the message was not delivered: [`Error::SessionGone`], [`Error::MailboxFull`]
    /// or [`Error::NotFound`].
    #[must_use]
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The message, back to its sender.
    #[must_use]
    pub fn into_message(self) -> M {
        self.message
    }

    /// The reason and the message.
    #[must_use]
    pub fn into_parts(self) -> (Error, M) {
        (self.error, self.message)
    }
}

impl<M> fmt::Debug for SendError<M> {
    /// Shows the reason only, so `M` needs no `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<M> fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<M> std::error::Error for SendError<M> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<M> From<SendError<M>> for Error {
    fn from(err: SendError<M>) -> Error {
        err.error
    }
}

/// Why [`SessionContext::try_recv`](crate::SessionContext::try_recv) returned no message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// The mailbox is empty.
    Empty,
    /// A stop was requested: the body should return.
    Stopped,
}

/// Why [`SessionContext::recv_timeout`](crate::SessionContext::recv_timeout) returned no
/// message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// No message came in time.
    Timeout,
    /// A stop was requested: the body should return.
    Stopped,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "the mailbox is empty",
            TryRecvError::Stopped => "a stop was requested",
        })
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvTimeoutError::Timeout => "no message within the timeout",
            RecvTimeoutError::Stopped => "a stop was requested",
        })
    }
}

impl std::error::Error for TryRecvError {}
impl std::error::Error for RecvTimeoutError {}
