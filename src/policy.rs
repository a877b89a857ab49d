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
/// The default is [`Restart::Transient`], 3 restarts in 5 seconds, no backoff. See
/// [`Backoff`] for a wait before each restart that grows with a crash loop.
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
    backoff: Backoff,
}

/// How long a session waits before a restart.
///
/// A wait is cut short by a stop request; one too long for a deadline (such as
/// `Duration::MAX`) lasts until the stop.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use session_supervisor::{Backoff, Restart, RestartPolicy};
///
/// let second = Duration::from_secs(1);
/// let policy = RestartPolicy::new(Restart::Permanent)
///     .backoff(Backoff::exponential(Duration::from_millis(100), second));
/// assert!(matches!(policy.backoff_rule(), Backoff::Exponential { .. }));
/// // A plain duration is a fixed wait.
/// let fixed = RestartPolicy::default().backoff(second);
/// assert_eq!(fixed.backoff_rule(), Backoff::Fixed(second));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backoff {
    /// The same wait before every restart; `Duration::ZERO` for none.
    Fixed(Duration),
    /// `initial` before the first restart in the restart window, twice as long before
    /// each further one, at most `max`; each wait then jittered to a point between half
    /// of it and all of it, so that sessions that crashed together restart apart.
    Exponential {
        /// The wait before the first restart in the window, before jitter.
        initial: Duration,
        /// The longest wait, before jitter.
        max: Duration,
    },
}

impl Backoff {
    /// An exponential backoff from `initial` up to `max`, with jitter.
    #[must_use]
    pub fn exponential(initial: Duration, max: Duration) -> Backoff {
        Backoff::Exponential { initial, max }
    }

    /// The wait before a restart that is the `nth` (from 1) within the restart window;
    /// `seed` picks the jitter.
    pub(crate) fn delay(self, nth: u32, seed: u64) -> Duration {
        match self {
            Backoff::Fixed(wait) => wait,
            Backoff::Exponential { initial, max } => {
                let doublings = nth.saturating_sub(1).min(63);
                let full = initial.checked_mul(1 << doublings.min(31)).unwrap_or(max);
                let full = if doublings > 31 { max } else { full.min(max) };
                jitter(full, seed)
            }
        }
    }
}

impl From<Duration> for Backoff {
    /// A fixed wait.
    fn from(wait: Duration) -> Backoff {
        Backoff::Fixed(wait)
    }
}

/// A point between half of `full` and all of it, chosen by `seed`.
fn jitter(full: Duration, seed: u64) -> Duration {
    let nanos = full.as_nanos();
    let half = nanos / 2;
    let spread = (nanos - half) * u128::from(mix(seed) % 1024) / 1024;
    let total = half + spread;
    // At most `full`, so the seconds fit.
    Duration::new(
        (total / 1_000_000_000) as u64,
        (total % 1_000_000_000) as u32,
    )
}

/// Spreads a seed's bits (splitmix64's finaliser).
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl RestartPolicy {
    /// A policy with this restart rule and the default intensity and backoff.
    pub fn new(restart: Restart) -> RestartPolicy {
        RestartPolicy {
            restart,
            max_restarts: 3,
            max_window: Duration::from_secs(5),
            backoff: Backoff::Fixed(Duration::ZERO),
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

    /// Waits before each restart: a `Duration` for a fixed wait, or a [`Backoff`]. A
    /// wait is cut short by a stop request; one too long for a deadline (such as
    /// `Duration::MAX`) lasts until the stop.
    pub fn backoff(mut self, backoff: impl Into<Backoff>) -> RestartPolicy {
        self.backoff = backoff.into();
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
    pub fn backoff_rule(&self) -> Backoff {
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

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn an_exponential_backoff_doubles_up_to_its_cap_within_its_jitter() {
        let backoff = Backoff::exponential(100 * MS, 1000 * MS);
        for (nth, full) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (60, 1000),
        ] {
            for seed in 0..200 {
                let wait = backoff.delay(nth, seed);
                let full = full * MS;
                assert!(
                    wait >= full / 2 && wait <= full,
                    "{nth}: {wait:?} of {full:?}"
                );
            }
        }
    }

    #[test]
    fn jitter_spreads_the_waits() {
        let backoff = Backoff::exponential(1000 * MS, 1000 * MS);
        let waits: std::collections::BTreeSet<_> = (0..100).map(|s| backoff.delay(1, s)).collect();
        assert!(waits.len() > 50, "{} distinct waits of 100", waits.len());
    }

    #[test]
    fn extreme_backoffs_do_not_overflow() {
        let huge = Backoff::exponential(Duration::MAX, Duration::MAX);
        for nth in [0, 1, 2, 40, u32::MAX] {
            assert!(huge.delay(nth, u64::MAX) >= Duration::MAX / 2);
        }
        let capped = Backoff::exponential(Duration::from_secs(u64::MAX / 4), Duration::MAX);
        assert!(capped.delay(3, 7) <= Duration::MAX);
        assert_eq!(Backoff::Fixed(5 * MS).delay(9, 9), 5 * MS);
    }
}
