//! The restart loop of a session thread: run the body, then, per its [`RestartPolicy`]
//! and restart intensity, run it again or end. The start (the first `init`) is the
//! lifecycle's business, not this loop's.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::boundary::{catch, describe};
use crate::event::Subscribers;
use crate::{ExitReason, Restart, RestartPolicy, SessionBody, SessionContext, SessionEvent};

/// How one run of the body ended.
enum Ending {
    Returned,
    Panicked(String),
    InitFailed(String),
}

impl Ending {
    /// The reason this run ended, as a restart event reports it.
    fn as_reason(&self) -> ExitReason {
        match self {
            Ending::Returned => ExitReason::Normal,
            Ending::Panicked(message) => ExitReason::Panicked {
                message: message.clone(),
            },
            Ending::InitFailed(reason) => ExitReason::InitFailed {
                reason: reason.clone(),
            },
        }
    }
}

/// What follows an ending.
enum Next {
    Restart,
    End(ExitReason),
}

/// Runs `init`, panics caught: `Err` with the reason if it failed or panicked.
pub(crate) fn first_init<M, B: SessionBody<M>>(
    body: &mut B,
    ctx: &SessionContext<M>,
) -> Result<(), String> {
    init(body, ctx).map_err(|ending| match ending {
        Ending::InitFailed(reason) | Ending::Panicked(reason) => reason,
        Ending::Returned => unreachable!("init does not end with a return"),
    })
}

/// Runs the body (its first `init` done) until it ends for good, restarting it as
/// `policy` says; returns why it ended.
pub(crate) fn supervise<M, B: SessionBody<M>>(
    body: &mut B,
    ctx: &SessionContext<M>,
    policy: &RestartPolicy,
    events: &Subscribers,
) -> ExitReason {
    let mut intensity = Intensity::new(policy);
    let mut ending = run(body, ctx);
    loop {
        let previous = ending.as_reason();
        if let Next::End(reason) = next(ending, ctx, policy, &mut intensity) {
            return reason;
        }
        let restarts = ctx.restarts() + 1;
        ctx.set_restarts(restarts);
        events.publish(SessionEvent::Restarted {
            id: *ctx.id(),
            restarts,
            reason: previous,
        });
        ending = match init(body, ctx) {
            Err(ending) => ending,
            // A restart stopped during its init: no new run once a stop was requested.
            Ok(()) if ctx.stop_requested() => Ending::Returned,
            Ok(()) => run(body, ctx),
        };
    }
}

fn init<M, B: SessionBody<M>>(body: &mut B, ctx: &SessionContext<M>) -> Result<(), Ending> {
    match catch(|| body.init(ctx)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(Ending::InitFailed(describe(err))),
        Err(message) => Err(Ending::Panicked(format!("init panicked: {message}"))),
    }
}

fn run<M, B: SessionBody<M>>(body: &mut B, ctx: &SessionContext<M>) -> Ending {
    match catch(|| body.run(ctx)) {
        Ok(()) => Ending::Returned,
        Err(message) => Ending::Panicked(message),
    }
}

/// Decides what follows an ending: a stop and the policy first, then the intensity.
fn next<M>(
    ending: Ending,
    ctx: &SessionContext<M>,
    policy: &RestartPolicy,
    intensity: &mut Intensity,
) -> Next {
    let stopped = ctx.stop_requested();
    let last_panic = match ending {
        Ending::InitFailed(reason) => return Next::End(ExitReason::InitFailed { reason }),
        Ending::Returned if stopped => return Next::End(ExitReason::Stopped),
        Ending::Panicked(message) if stopped || policy.restart() == Restart::Temporary => {
            return Next::End(ExitReason::Panicked { message })
        }
        Ending::Returned if policy.restart() != Restart::Permanent => {
            return Next::End(ExitReason::Normal)
        }
        Ending::Returned => None,
        Ending::Panicked(message) => Some(message),
    };
    restart_or_give_up(last_panic, ctx, policy, intensity)
}

/// Restarts after the backoff if the intensity allows; gives up (logged once, at the
/// session's end) if not.
fn restart_or_give_up<M>(
    last_panic: Option<String>,
    ctx: &SessionContext<M>,
    policy: &RestartPolicy,
    intensity: &mut Intensity,
) -> Next {
    if !intensity.admit(Instant::now()) {
        let restarts = ctx.restarts();
        return Next::End(ExitReason::RestartLimit {
            restarts,
            last_panic,
        });
    }
    let why = last_panic.as_deref().unwrap_or("returned");
    let restart = ctx.restarts() + 1;
    log::warn!(
        "session {}: restarting ({why}), restart {restart}",
        ctx.id()
    );
    let backoff = policy.backoff_time();
    let stopped = if backoff.is_zero() {
        ctx.stop_requested()
    } else {
        ctx.wait_for_stop_timeout(backoff)
    };
    if stopped {
        Next::End(ExitReason::Stopped)
    } else {
        Next::Restart
    }
}

/// Restart intensity: at most `max` restarts within any `window`.
struct Intensity {
    max: usize,
    window: Duration,
    recent: VecDeque<Instant>,
}

impl Intensity {
    fn new(policy: &RestartPolicy) -> Intensity {
        Intensity {
            max: policy.max_restarts() as usize,
            window: policy.max_window(),
            recent: VecDeque::new(),
        }
    }

    /// Records a restart at `now` if the window has room for it.
    fn admit(&mut self, now: Instant) -> bool {
        while let Some(&oldest) = self.recent.front() {
            if now.saturating_duration_since(oldest) < self.window {
                break;
            }
            self.recent.pop_front();
        }
        if self.recent.len() >= self.max {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` seconds after `t0`, in a test's small range.
    fn at(t0: Instant, n: u64) -> Instant {
        t0.checked_add(Duration::from_secs(n)).expect("in range")
    }

    #[test]
    fn intensity_admits_max_within_the_window_then_refuses() {
        let policy = RestartPolicy::default().intensity(3, Duration::from_secs(5));
        let mut intensity = Intensity::new(&policy);
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(intensity.admit(at(t0, i)), "restart {i}");
        }
        assert!(!intensity.admit(at(t0, 3)));
    }

    #[test]
    fn restarts_spread_wider_than_the_window_keep_being_admitted() {
        let policy = RestartPolicy::default().intensity(3, Duration::from_secs(5));
        let mut intensity = Intensity::new(&policy);
        let t0 = Instant::now();
        for i in 0..20 {
            assert!(intensity.admit(at(t0, 2 * i)), "restart {i}");
        }
    }

    #[test]
    fn zero_restarts_admits_none() {
        let policy = RestartPolicy::default().intensity(0, Duration::from_secs(5));
        assert!(!Intensity::new(&policy).admit(Instant::now()));
    }

    #[test]
    fn a_window_of_duration_max_counts_every_restart() {
        let policy = RestartPolicy::default().intensity(2, Duration::MAX);
        let mut intensity = Intensity::new(&policy);
        let t0 = Instant::now();
        assert!(intensity.admit(t0));
        assert!(intensity.admit(at(t0, 1_000_000)));
        assert!(!intensity.admit(at(t0, 2_000_000)));
    }
}
