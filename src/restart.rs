//! The restart loop of a session thread: run the body, then, per its [`RestartPolicy`]
//! and restart intensity, run it again or end. The start (the first `init`) is the
//! lifecycle's business, not this loop's.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::boundary::{catch, describe, drop_quietly};
use crate::child::child_panicked;
use crate::event::Subscribers;
use crate::tree::{Failure, Tree};
use crate::{ExitReason, Restart, RestartPolicy, SessionBody, SessionContext, SessionEvent};

/// How one run of the body ended.
pub(crate) enum Ending {
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
pub(crate) fn make<M, S: Bodies<M>>(
    bodies: &mut S,
    ended: Option<S::Body>,
) -> Result<S::Body, String> {
    match catch(|| bodies.next(ended)) {
        Ok(Some(body)) => Ok(body),
        Ok(None) => Err("no body to run".to_owned()),
        Err(message) => Err(format!("making the body panicked: {message}")),
    }
}

/// Runs `body` (its first `init` done) until the session ends for good, restarting it
/// as its policy says; returns why it ended, and the last body, to drop. After every
/// run the session's children are stopped (a restarted body starts them again).
pub(crate) fn supervise<M, S: Bodies<M>>(
    bodies: &mut S,
    mut body: S::Body,
    ctx: &mut SessionContext<M>,
    tree: &Tree<M>,
    events: &Subscribers,
) -> (ExitReason, Option<S::Body>) {
    let mut ending = run(&mut body, ctx);
    loop {
        tree.stop_children();
        let ending_now = match tree.take_failure() {
            Some(Failure::GaveUp(reason)) => return (reason, Some(body)),
            Some(Failure::ChildCrashed { child, last_panic }) if !ctx.stopping() => {
                match last_panic {
                    Some(message) => Ending::Panicked(child_panicked(&child, &message)),
                    // A permanent child returned: the policy, the same, restarts.
                    None => Ending::Returned,
                }
            }
            _ => ending,
        };
        let previous = ending_now.as_reason();
        if let Ending::Panicked(message) = &ending_now {
            ctx.tracker().crashed(message);
        }
        if let Next::End(reason) = next(ending_now, ctx, tree, (events, &previous)) {
            return (reason, Some(body));
        }
        let restarts = ctx.restarts() + 1;
        ctx.set_restarts(restarts);
        tree.clear_ends();
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
            Ok(()) if ctx.stopping() => Ending::Returned,
            Ok(()) => {
                ctx.tracker().running();
                run(&mut body, ctx)
            }
        };
    }
}

pub(crate) fn init<M, B: SessionBody<M>>(
    body: &mut B,
    ctx: &SessionContext<M>,
) -> Result<(), Ending> {
    match catch(|| body.init(ctx)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(Ending::InitFailed(describe(err))),
        Err(message) => Err(Ending::Panicked(format!("init panicked: {message}"))),
    }
}

pub(crate) fn run<M, B: SessionBody<M>>(body: &mut B, ctx: &SessionContext<M>) -> Ending {
    match catch(|| body.run(ctx)) {
        Ok(()) => Ending::Returned,
        Err(message) => Ending::Panicked(message),
    }
}

/// Decides what follows an ending: a stop and the policy first, then the intensity.
fn next<M>(ending: Ending, ctx: &mut SessionContext<M>, tree: &Tree<M>, told: Told<'_>) -> Next {
    let stopped = ctx.stopping();
    let policy = tree.policy();
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
    restart_or_give_up(last_panic, ctx, tree, told)
}

/// Where a restart's wait is told, and how the run before it ended.
type Told<'a> = (&'a Subscribers, &'a ExitReason);

/// Restarts after the backoff if the intensity allows; gives up (logged once, at the
/// session's end) if not.
fn restart_or_give_up<M>(
    last_panic: Option<String>,
    ctx: &mut SessionContext<M>,
    tree: &Tree<M>,
    (events, previous): Told<'_>,
) -> Next {
    if !tree.admit_restart() {
        let restarts = tree.restarts();
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
    let backoff = tree
        .policy()
        .backoff_rule()
        .delay(tree.restarts_in_window(), seed);
    let until = Instant::now().checked_add(backoff);
    ctx.tracker().restarting(restart, until);
    events.publish(SessionEvent::Restarting {
        session: ctx.session().clone(),
        restarts: restart,
        delay: backoff,
        reason: previous.clone(),
    });
    // An interrupt ended the last run: the wait and the next run get a fresh signal.
    ctx.renew_run();
    if !backoff.is_zero() {
        ctx.wait_for_stop_timeout(backoff);
    }
    if ctx.stopping() {
        Next::End(ExitReason::Stopped)
    } else {
        Next::Restart
    }
}

/// Restart intensity: at most `max` restarts within any `window`.
#[derive(Debug)]
pub(crate) struct Intensity {
    max: usize,
    window: Duration,
    recent: VecDeque<Instant>,
}

impl Intensity {
    pub(crate) fn new(policy: &RestartPolicy) -> Intensity {
        Intensity {
            max: policy.max_restarts() as usize,
            window: policy.max_window(),
            recent: VecDeque::new(),
        }
    }

    /// How many restarts the window holds, the last one admitted included.
    pub(crate) fn in_window(&self) -> u32 {
        u32::try_from(self.recent.len()).unwrap_or(u32::MAX)
    }

    /// Records a restart at `now` if the window has room for it.
    pub(crate) fn admit(&mut self, now: Instant) -> bool {
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
