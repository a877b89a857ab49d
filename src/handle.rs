//! [`SessionHandle`]: a cheap reference to one running session.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::{Ended, Runtime};
use crate::{ExitReport, SessionId};

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
#[derive(Clone)]
pub struct SessionHandle {
    runtime: Arc<Runtime>,
}

impl SessionHandle {
    pub(crate) fn new(runtime: Arc<Runtime>) -> SessionHandle {
        SessionHandle { runtime }
    }

    /// The session's id.
    #[must_use]
    pub fn id(&self) -> &SessionId {
        self.runtime.id()
    }

    /// Whether the session's thread is still at work. Once `false`, the session is
    /// no longer registered.
    #[must_use]
    pub fn is_running(&self) -> bool {
        !self.runtime.is_finished()
    }

    /// Whether a stop of this session was requested.
    #[must_use]
    pub fn stop_requested(&self) -> bool {
        self.runtime.shutdown_requested()
    }

    /// Waits up to `timeout` for the session to end, without asking it to; returns how
    /// it ended, or `None` if it is still running.
    ///
    /// Once this returns a report, the session is unregistered and its path is free.
    #[must_use]
    pub fn wait_timeout(&self, timeout: Duration) -> Option<ExitReport> {
        match self.runtime.wait(timeout) {
            Ended::Yes => Some(self.runtime.exit_report()),
            Ended::TimedOut => None,
        }
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionHandle")
            .field("id", self.id())
            .field("running", &self.is_running())
            .finish()
    }
}
