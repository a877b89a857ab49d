//! [`SupervisorBuilder`]: the settings of a [`SessionSupervisor`].

use std::time::Duration;

use crate::registry::DEFAULT_MAX_SESSIONS;
use crate::{RestartPolicy, SessionSupervisor};

/// The shutdown timeout of a default supervisor.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings for a [`SessionSupervisor`]: session limit, shutdown timeout, thread stack
/// size and default restart policy.
///
/// This struct is created by [`SessionSupervisor::builder`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use session_supervisor::{Restart, RestartPolicy, SessionSupervisor};
///
/// let sup = SessionSupervisor::builder()
///     .max_sessions(100)
///     .shutdown_timeout(Duration::from_secs(1))
///     .stack_size(256 * 1024)
///     .restart_policy(RestartPolicy::new(Restart::Permanent))
///     .build();
/// assert_eq!(sup.max_sessions(), 100);
/// assert_eq!(sup.shutdown_timeout(), Duration::from_secs(1));
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct SupervisorBuilder {
    pub(crate) max_sessions: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) stack_size: Option<usize>,
    pub(crate) policy: RestartPolicy,
}

impl SupervisorBuilder {
    pub(crate) fn new() -> SupervisorBuilder {
        SupervisorBuilder {
            max_sessions: DEFAULT_MAX_SESSIONS,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            stack_size: None,
            policy: RestartPolicy::default(),
        }
    }

    /// The most sessions that may run at once (default 10). 0 admits none.
    pub fn max_sessions(mut self, max_sessions: usize) -> SupervisorBuilder {
        self.max_sessions = max_sessions;
        self
    }

    /// How long a stop waits for a session to end (default 5 s).
    ///
    /// `Duration::ZERO` means "do not wait": a stop then requests shutdown and reports
    /// [`Error::ShutdownTimeout`](crate::Error::ShutdownTimeout) unless the session had
    /// already ended.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> SupervisorBuilder {
        self.shutdown_timeout = timeout;
        self
    }

    /// The stack size of session threads, in bytes (default: the standard library's,
    /// 2 MiB unless `RUST_MIN_STACK` says otherwise). The system may round it up.
    pub fn stack_size(mut self, bytes: usize) -> SupervisorBuilder {
        self.stack_size = Some(bytes);
        self
    }

    /// The restart policy of sessions started without one of their own (default
    /// [`Restart::Transient`](crate::Restart::Transient), 3 restarts in 5 s).
    pub fn restart_policy(mut self, policy: RestartPolicy) -> SupervisorBuilder {
        self.policy = policy;
        self
    }

    /// Builds the supervisor.
    pub fn build(self) -> SessionSupervisor {
        SessionSupervisor::from_builder(self)
    }
}

impl Default for SupervisorBuilder {
    fn default() -> SupervisorBuilder {
        SupervisorBuilder::new()
    }
}
