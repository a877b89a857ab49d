//! [`Error`]: everything that can go wrong, in one enum.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::SessionId;

/// A `Result` whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, and with which session, path or name.
///
/// An operation that fails with an `Error` has changed nothing (the exceptions say so
/// in their own docs: [`Error::StopTimeout`] and [`Error::StopFromOwnThread`]).
/// New variants may be added, so a `match` needs a catch-all arm.
///
/// # Examples
///
/// ```
/// use session_supervisor::{Error, Session};
///
/// let err = Session::new("/this/path/does/not/exist").unwrap_err();
/// assert!(matches!(err, Error::InvalidPath { .. }));
/// assert!(err.to_string().starts_with("invalid project path"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The registry already holds its maximum number of sessions.
    #[error("session limit reached: at most {max} sessions")]
    SessionLimitReached {
        /// The limit in force.
        max: usize,
    },

    /// A session with this id is already registered.
    #[error("session {id} already exists")]
    SessionExists {
        /// The id that is taken.
        id: SessionId,
    },

    /// Another session already has this project directory.
    #[error("project {} is already open in session {id}", path.display())]
    ProjectAlreadyOpen {
        /// The canonical project path.
        path: PathBuf,
        /// The session that has it.
        id: SessionId,
    },

    /// No session matches the key.
    #[error("no session with {key}")]
    NotFound {
        /// What was looked for.
        key: SessionKey,
    },

    /// A project path that cannot be used: missing, not a directory, not UTF-8, ...
    #[error("invalid project path {}: {reason}", path.display())]
    InvalidPath {
        /// The path as given.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },

    /// A session name that is empty, too long or holds control, invisible or
    /// layout-changing characters.
    #[error("invalid session name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// Text that is not a session id (a UUID version 4 of the RFC 4122 variant).
    #[error("invalid session id {input:?}: {reason}")]
    InvalidId {
        /// The text as given.
        input: String,
        /// Why it was refused.
        reason: String,
    },

    /// The session's `init` step failed or panicked; the session was not started.
    #[error("session {id} failed to start: {reason}")]
    StartFailed {
        /// The session that failed.
        id: SessionId,
        /// The error or panic message of `init`.
        reason: String,
    },

    /// The session's `init` did not finish within the supervisor's
    /// [init timeout](crate::SupervisorBuilder::init_timeout). The session was asked to
    /// stop and will not run; its entry (and its path) stay reserved until its thread
    /// really ends, then disappear, with no event published for it.
    #[error("session {id} did not finish init within {timeout:?}")]
    InitTimeout {
        /// The session that was not started.
        id: SessionId,
        /// The init timeout.
        timeout: Duration,
    },

    /// A start at the session limit, under an evicting
    /// [`AdmissionPolicy`](crate::AdmissionPolicy), asked `victim` to stop to make room,
    /// and it did not end within the stop timeout. The new session was not started and
    /// nothing else changed: the victim stays registered, stopping, and ends with
    /// [`ExitReason::Evicted`](crate::ExitReason::Evicted) whenever its body returns.
    #[error("session {id} not started: session {victim}, evicted to make room, did not stop within {timeout:?}")]
    EvictionTimeout {
        /// The session that was not started.
        id: SessionId,
        /// The session chosen to make room.
        victim: SessionId,
        /// The stop timeout.
        timeout: Duration,
    },

    /// The session's thread could not be created: the operating system refused it, or
    /// (on Linux) the process is too close to `vm.max_map_count`, past which a new
    /// thread would abort the whole process (an `OutOfMemory` error saying so).
    #[error("could not spawn the thread of session {id}: {source}")]
    Spawn {
        /// The session that was not started.
        id: SessionId,
        /// The error from the operating system, or the mapping budget.
        #[source]
        source: io::Error,
    },

    /// [`SessionSupervisor::warm_up`](crate::SessionSupervisor::warm_up) could not
    /// spawn a warm thread: the operating system refused it, or the process is too
    /// close to `vm.max_map_count` (see [`Error::Spawn`]).
    #[error("could not spawn a warm thread: {source}")]
    WarmUp {
        /// The error from the operating system, or the mapping budget.
        #[source]
        source: io::Error,
    },

    /// The session did not end within the stop timeout.
    ///
    /// The stop stays requested, and the session stays registered (its path reserved)
    /// until its body returns, when it unregisters itself.
    #[error("session {id} did not stop within {timeout:?}")]
    StopTimeout {
        /// The session still running.
        id: SessionId,
        /// How long it was waited for.
        timeout: Duration,
    },

    /// The supervisor is shutting down (or has shut down) and starts no sessions.
    #[error("the supervisor is shutting down: no new sessions")]
    ShuttingDown,

    /// The session has ended, or was asked to stop: it takes no more messages.
    #[error("session {id} has ended or is stopping")]
    SessionGone {
        /// The session that ended.
        id: SessionId,
    },

    /// The session's bounded mailbox is full. On the session's own thread a send that
    /// would wait for room fails with this at once: the session would wait for itself.
    #[error("the mailbox of session {id} is full")]
    MailboxFull {
        /// The session whose mailbox is full.
        id: SessionId,
    },

    /// A call got no reply within its timeout.
    #[error("session {id} did not reply within {timeout:?}")]
    CallTimeout {
        /// The session called.
        id: SessionId,
        /// How long the caller waited.
        timeout: Duration,
    },

    /// The session dropped the reply end of a call without replying, or ended first.
    #[error("session {id} dropped the call without replying")]
    NoReply {
        /// The session called.
        id: SessionId,
    },

    /// A restart policy that cannot be applied; the session was not started.
    #[error("invalid restart policy for session {id}: {reason}")]
    InvalidPolicy {
        /// The session that was not started.
        id: SessionId,
        /// Why the policy was refused.
        reason: &'static str,
    },

    /// A session called itself ([`SessionHandle::call`](crate::SessionHandle::call) on
    /// its own thread): it cannot answer while it waits, so the call fails at once
    /// instead of waiting for its timeout. Nothing was sent.
    #[error("session {id} cannot call itself: it would wait for its own reply")]
    CallFromOwnThread {
        /// The session that called itself.
        id: SessionId,
    },

    /// A child of a session with this name is running already.
    #[error("session {id} already has a child named {child:?}")]
    ChildExists {
        /// The session.
        id: SessionId,
        /// The name asked for.
        child: String,
    },

    /// The session runs as many children as its supervisor allows.
    #[error("session {id} runs its limit of {max} children")]
    ChildLimitReached {
        /// The session.
        id: SessionId,
        /// The limit ([`SupervisorBuilder::max_children`](crate::SupervisorBuilder::max_children)).
        max: usize,
    },

    /// The session runs no child of this name.
    #[error("session {id} has no child named {child:?}")]
    ChildNotFound {
        /// The session.
        id: SessionId,
        /// The name looked for.
        child: String,
    },

    /// A child tried to start a child: only a session's body starts children.
    #[error("child {child:?} of session {id} cannot start children of its own")]
    NestedChild {
        /// The session.
        id: SessionId,
        /// The child that tried.
        child: String,
    },

    /// Something went wrong with one child of a session: `error` says what, as it would
    /// for a session ([`Error::SessionGone`], [`Error::MailboxFull`],
    /// [`Error::CallTimeout`], [`Error::NoReply`], [`Error::Spawn`],
    /// [`Error::StartFailed`], [`Error::StopTimeout`], ...).
    #[error("child {child:?} of session {id}: {error}")]
    Child {
        /// The session.
        id: SessionId,
        /// The child.
        child: String,
        /// What went wrong.
        #[source]
        error: Box<Error>,
    },

    /// `stop_session` was called on the session's own thread (or a child's), which
    /// cannot wait for the session to end.
    ///
    /// The stop has been requested all the same: the session ends once its body
    /// returns, and is not restarted.
    #[error("session {id} cannot wait for its own thread to stop; the stop was requested")]
    StopFromOwnThread {
        /// The session that asked to stop itself.
        id: SessionId,
    },
}

/// What a lookup was looking for: the key of [`Error::NotFound`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionKey {
    /// A session id.
    Id(SessionId),
    /// A project path, as given.
    Path(PathBuf),
    /// A session name.
    Name(String),
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionKey::Id(id) => write!(f, "id {id}"),
            SessionKey::Path(path) => write!(f, "path {}", path.display()),
            SessionKey::Name(name) => write!(f, "name {name:?}"),
        }
    }
}

impl Error {
    pub(crate) fn not_found(id: SessionId) -> Error {
        Error::NotFound {
            key: SessionKey::Id(id),
        }
    }
}
