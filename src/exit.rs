//! How sessions end: [`ExitReason`], [`ExitReport`] and [`ShutdownReport`].

use std::fmt;
use std::time::Duration;

use crate::{Session, SessionId};

/// Why a session ended.
///
/// # Examples
///
/// ```
/// use session_supervisor::{ExitReason, Session, SessionSupervisor};
///
/// let sup = SessionSupervisor::new();
/// let handle = sup.start_session(Session::new(std::env::temp_dir())?, |ctx| {
///     ctx.wait_for_stop();
/// })?;
/// let report = sup.stop_session(handle.id())?;
/// assert_eq!(report.reason(), &ExitReason::Stopped);
/// # Ok::<(), session_supervisor::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitReason {
    /// The body returned by itself and was not restarted.
    Normal,
    /// A stop was requested (by `stop_session`, `shutdown` or drop of the supervisor).
    Stopped,
    /// The body panicked and was not restarted.
    Panicked {
        /// The panic message.
        message: String,
    },
    /// The body (or its children) ended more often than the restart intensity allows,
    /// and the session gave up.
    RestartLimit {
        /// How many restarts there were before giving up: the body's and its
        /// children's together, as the intensity counts them (the report's
        /// [`ExitReport::restarts`] counts the body's alone).
        restarts: u32,
        /// The message of the last panic (`child "name" panicked: message` for a
        /// child's), or `None` if the body (or a permanent child) last returned.
        last_panic: Option<String>,
    },
    /// `init` returned an error on a restart.
    InitFailed {
        /// The error `init` returned.
        reason: String,
    },
    /// It had no activity (see
    /// [`SessionStats::last_activity`](crate::SessionStats::last_activity)) for its
    /// idle timeout, and was stopped.
    Idle {
        /// The idle timeout that ran out.
        timeout: Duration,
    },
    /// A start at the session limit stopped it to make room (see
    /// [`AdmissionPolicy`](crate::AdmissionPolicy)).
    Evicted,
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("returned normally"),
            ExitReason::Stopped => f.write_str("stopped on request"),
            ExitReason::Panicked { message } => write!(f, "panicked: {message}"),
            ExitReason::RestartLimit {
                restarts,
                last_panic: Some(message),
            } => write!(
                f,
                "gave up after {restarts} restarts, last panic: {message}"
            ),
            ExitReason::RestartLimit { restarts, .. } => {
                write!(f, "gave up after {restarts} restarts")
            }
            ExitReason::InitFailed { reason } => write!(f, "init failed: {reason}"),
            ExitReason::Idle { timeout } => write!(f, "stopped after {timeout:?} idle"),
            ExitReason::Evicted => f.write_str("evicted to make room for another session"),
        }
    }
}

/// How one session ended: its reason, how often it was restarted and how long it ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitReport {
    pub(crate) session: Session,
    pub(crate) reason: ExitReason,
    pub(crate) restarts: u32,
    pub(crate) run_time: Duration,
    pub(crate) children: Vec<ChildExit>,
}

impl ExitReport {
    /// The id of the session that ended.
    #[must_use]
    pub fn id(&self) -> SessionId {
        self.session.id()
    }

    /// The session that ended: its metadata as it was registered last (a rename
    /// included).
    #[must_use]
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Why it ended.
    #[must_use]
    pub fn reason(&self) -> &ExitReason {
        &self.reason
    }

    /// How many times the body was restarted (its children's restarts in place are in
    /// [`children`](Self::children) and the [`ChildHandle`](crate::ChildHandle)s).
    #[must_use]
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// The time from the start of the session thread to its end.
    #[must_use]
    pub fn run_time(&self) -> Duration {
        self.run_time
    }

    /// How the session's children ended (those of the body's last run), in the order
    /// they ended: newest first when the session stopped them.
    #[must_use]
    pub fn children(&self) -> &[ChildExit] {
        &self.children
    }
}

/// How one child of a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildExit {
    pub(crate) name: String,
    pub(crate) reason: ExitReason,
    pub(crate) restarts: u32,
    pub(crate) lingered: bool,
}

impl ChildExit {
    /// The child's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Why it ended.
    #[must_use]
    pub fn reason(&self) -> &ExitReason {
        &self.reason
    }

    /// How many times it was restarted in place.
    #[must_use]
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Whether it held up its session's stop: asked to stop before the session's stop
    /// timeout ran out (counted from the session's stop request), it was still running
    /// after it. The children asked after it, which waited for it, did not linger.
    #[must_use]
    pub fn lingered(&self) -> bool {
        self.lingered
    }
}

/// What [`SessionSupervisor::shutdown`](crate::SessionSupervisor::shutdown) did: how each
/// session ended, and which did not end within the stop timeout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    pub(crate) exited: Vec<ExitReport>,
    pub(crate) timed_out: Vec<SessionId>,
}

impl ShutdownReport {
    /// The sessions that ended, in the order they were joined (newest start first).
    #[must_use]
    pub fn exited(&self) -> &[ExitReport] {
        &self.exited
    }

    /// The sessions still running when their wait timed out. They were asked to stop,
    /// stay registered until they do, and then unregister themselves.
    #[must_use]
    pub fn timed_out(&self) -> &[SessionId] {
        &self.timed_out
    }

    /// Whether every session ended in time.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.timed_out.is_empty()
    }
}
