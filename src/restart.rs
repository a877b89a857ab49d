//! The restart loop of a session thread: run the body, then, per its [`RestartPolicy`]
//! and restart intensity, run it again or end. The start (the first `init`) is the
//! lifecycle's business, not this loop's.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::boundary::{catch, describe, drop_quietly};
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

/// Where a session's bodies come from: the first, and one for each restart.
pub(crate) trait Bodies<M>: Send + 'static {
    type Body: SessionBody<M>;

    /// The body for the next run, given the one whose run ended (`None` at first).
    /// `None` only if there is none to give, which the two kinds below rule out.
    fn next(&mut self, ended: Option<Self::Body>) -> Option<Self::Body>;
}

/// One body value, run again on each restart: it keeps what the last run left in it.
pub(crate) struct Reused<B>(pub(crate) Option<B>);

impl<M, B: SessionBody<M>> Bodies<M> for Reused<B> {
    type Body = B;

    fn next(&mut self, ended: Option<B>) -> Option<B> {
        ended.or_else(|| self.0.take())
    }
}

/// A factory: each run gets a fresh body, and the ended one is dropped first.
pub(crate) struct Fresh<F>(pub(crate) F);

impl<M, F, B> Bodies<M> for Fresh<F>
where
    F: FnMut() -> B + Send + 'static,
    B: SessionBody<M>,
{
    type Body = B;

    fn next(&mut self, ended: Option<B>) -> Option<B> {
        if let Some(ended) = ended {
            drop_quietly(ended);
        }
        Some((self.0)())
    }
}

/// Makes the first body and runs its `init`, panics caught: the body, or why it could
/// not start (with the body to drop, if one was made).
pub(crate) fn first_init<M, S: Bodies<M>>(
    bodies: &mut S,
    ctx: &SessionContext<M>,
) -> Result<S::Body, (String, Option<S::Body>)> {
    let mut body = make(bodies, None).map_err(|reason| (reason, None))?;
    match init(&mut body, ctx) {
        Ok(()) => Ok(body),
        Err(Ending::InitFailed(reason) | Ending::Panicked(reason)) => Err((reason, Some(body))),
        Err(Ending::Returned) => unreachable!("init does not end with a return"),
    }
}

/// The next body from `bodies`, panics of a factory caught.
fn make<M, S: Bodies<M>>(bodies: &mut S, ended: Option<S::Body>) -> Result<S::Body, String> {
    match catch(|| bodies.next(ended)) {
        Ok(Some(body)) => Ok(body),
        Ok(None) => Err("no body to run".to_owned()),
        Err(message) => Err(format!("making the body panicked: {message}")),
    }
}

/// Runs `body` (its first `init` done) until the session ends for good, restarting it
/// as `policy` says; returns why it ended, and the last body, to drop.
pub(crate) fn supervise<M, S: Bodies<M>>(
    bodies: &mut S,
    mut body: S::Body,
    ctx: &SessionContext<M>,
    policy: &RestartPolicy,
    events: &Subscribers,
) -> (ExitReason, Option<S::Body>) {
    let mut intensity = Intensity::new(policy);
    let mut ending = run(&mut body, ctx);
    loop {
        let previous = ending.as_reason();
        if let Next::End(reason) = next(ending, ctx, policy, &mut intensity) {
            return (reason, Some(body));
        }
        let restarts = ctx.restarts() + 1;
        ctx.set_restarts(restarts);
        events.publish(SessionEvent::Restarted {
            session: ctx.session().clone(),
            restarts,
            reason: previous,
        });
        body = match make(bodies, Some(body)) {
            Ok(body) => body,
            Err(message) => return (ExitReason::Panicked { message }, None),
        };
        ending = match init(&mut body, ctx) {
            Err(ending) => ending,
            // A restart stopped during its init: no new run once a stop was requested.
            Ok(()) if ctx.stop_requested() => Ending::Returned,
            Ok(()) => run(&mut body, ctx),
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
    // The jitter differs between sessions and between restarts.
    let seed = ctx.id().as_uuid().as_u64_pair().0 ^ u64::from(restart);
    let backoff = policy.backoff_rule().delay(intensity.in_window(), seed);
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

    /// How many restarts the window holds, the last one admitted included.
    fn in_window(&self) -> u32 {
        u32::try_from(self.recent.len()).unwrap_or(u32::MAX)
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
