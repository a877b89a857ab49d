//! [`Restart`] and [`RestartPolicy`]: when a session's body is run again.

use std::time::Duration;

use crate::{Error, Result, SessionId};

/// When a session's body is run again after it ends, as in OTP child specs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Restart {
    /// Always: after the body returns and after it panics.
    Permanent,
    /// Only after a panic (or a panic in `init`); a body that returns ends the session.
    #[default]
    Transient,
    /// Never: the session ends however the body ends.
    Temporary,
}

/// When and how often a session is restarted.
///
/// A restart runs the body again (its `init` too) on the same session thread, with the
/// same id and registry entry. At most [`max_restarts`](Self::max_restarts) restarts may
/// happen within any [`max_window`](Self::max_window); one more ending inside the window
/// and the session gives up with [`ExitReason::RestartLimit`](crate::ExitReason). A stop
/// request always wins: no new run starts once a stop was requested, and a backoff
/// wait is cut short by it.
///
/// The default is [`Restart::Transient`], 3 restarts in 5 seconds, no backoff.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use session_supervisor::{Restart, RestartPolicy};
///
/// let policy = RestartPolicy::new(Restart::Permanent)
///     .intensity(5, Duration::from_secs(10))
///     .backoff(Duration::from_millis(100));
/// assert_eq!(policy.restart(), Restart::Permanent);
/// assert_eq!(policy.max_restarts(), 5);
/// assert_eq!(RestartPolicy::default().restart(), Restart::Transient);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use]
pub struct RestartPolicy {
    restart: Restart,
    max_restarts: u32,
    max_window: Duration,
    backoff: Duration,
}

impl RestartPolicy {
    /// A policy with this restart rule and the default intensity and backoff.
    pub fn new(restart: Restart) -> RestartPolicy {
        RestartPolicy {
            restart,
            max_restarts: 3,
            max_window: Duration::from_secs(5),
            backoff: Duration::ZERO,
        }
    }

    /// Allows at most `max_restarts` restarts within any `max_window`.
    ///
    /// A window of `Duration::MAX` counts every restart of the session's life. A zero
    /// window with restarts allowed would count no restart at all, so a start with such
    /// a policy fails with [`Error::InvalidPolicy`](crate::Error::InvalidPolicy);
    /// `intensity(0, _)` (never restart) is fine with any window.
    pub fn intensity(mut self, max_restarts: u32, max_window: Duration) -> RestartPolicy {
        self.max_restarts = max_restarts;
        self.max_window = max_window;
        self
    }

    /// Waits this long before each restart (cut short by a stop request). A backoff
    /// too long for a deadline (such as `Duration::MAX`) waits until the stop.
    pub fn backoff(mut self, backoff: Duration) -> RestartPolicy {
        self.backoff = backoff;
        self
    }

    /// The restart rule.
    #[must_use]
    pub fn restart(&self) -> Restart {
        self.restart
    }

    /// The most restarts allowed within [`max_window`](Self::max_window).
    #[must_use]
    pub fn max_restarts(&self) -> u32 {
        self.max_restarts
    }

    /// The window the restart intensity is counted in.
    #[must_use]
    pub fn max_window(&self) -> Duration {
        self.max_window
    }

    /// The wait before each restart.
    #[must_use]
    pub fn backoff_time(&self) -> Duration {
        self.backoff
    }

    /// Refuses a policy whose intensity cannot be counted.
    pub(crate) fn check(&self, id: SessionId) -> Result<()> {
        if self.max_restarts > 0 && self.max_window.is_zero() {
            return Err(Error::InvalidPolicy {
                id,
                reason: "a zero restart window would count no restart: the limit would never apply",
            });
        }
        Ok(())
    }
}

impl Default for RestartPolicy {
    fn default() -> RestartPolicy {
        RestartPolicy::new(Restart::default())
    }
}
