//! The restart loop that runs on each session thread: init, run, and per the
//! [`RestartPolicy`], again.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::event::Subscribers;
use crate::exit::panic_message;
use crate::{ExitReason, Restart, RestartPolicy, SessionBody, SessionContext, SessionEvent};

/// Tells `start_session` how the first `init` went.
pub(crate) type Started = Sender<Result<(), String>>;

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

/// What the loop ends with.
pub(crate) struct Outcome {
    pub(crate) reason: ExitReason,
    pub(crate) restarts: u32,
    /// Still unanswered if the first `init` failed: the caller answers it once the
    /// session is unregistered, so `start_session` never sees a half-registered entry.
    pub(crate) unanswered: Option<Started>,
}

/// Runs the body until it ends for good, restarting it as `policy` says.
pub(crate) fn supervise<M, B: SessionBody<M>>(
    mut body: B,
    ctx: &SessionContext<M>,
    policy: RestartPolicy,
    started: Started,
    events: &Subscribers,
) -> Outcome {
    let mut started = Some(started);
    let mut intensity = Intensity::new(&policy);
    loop {
        let ending = run_once(&mut body, ctx, &mut started, events);
        if started.is_some() {
            let reason = match ending {
                Ending::InitFailed(reason) | Ending::Panicked(reason) => reason,
                Ending::Returned => unreachable!("run_once answers `started` before run"),
            };
            return outcome(ExitReason::InitFailed { reason }, ctx, started);
        }
        let previous = ending.as_reason();
        match next_step(ending, ctx, &policy, &mut intensity) {
            Some(reason) => return outcome(reason, ctx, None),
            None => {
                let restarts = ctx.restarts() + 1;
                ctx.set_restarts(restarts);
                let id = *ctx.id();
                let reason = previous;
                events.publish(SessionEvent::Restarted {
                    id,
                    restarts,
                    reason,
                });
            }
        }
    }
}

fn outcome<M>(reason: ExitReason, ctx: &SessionContext<M>, unanswered: Option<Started>) -> Outcome {
    Outcome {
        reason,
        restarts: ctx.restarts(),
        unanswered,
    }
}

/// One `init` + `run`, panics caught. Answers `started` after the first good `init`.
fn run_once<M, B: SessionBody<M>>(
    body: &mut B,
    ctx: &SessionContext<M>,
    started: &mut Option<Started>,
    events: &Subscribers,
) -> Ending {
    match catch_unwind(AssertUnwindSafe(|| body.init(ctx))) {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Ending::InitFailed(err.to_string()),
        Err(payload) => {
            return Ending::Panicked(format!("init panicked: {}", panic_message(&*payload)))
        }
    }
    match started.take() {
        Some(started) => {
            let path = ctx.session().project_path().to_path_buf();
            events.publish(SessionEvent::Started {
                id: *ctx.id(),
                path,
            });
            // start_session waits on the other end; it cannot have gone away.
            let _ = started.send(Ok(()));
        }
        // A restart stopped during its init: no new run starts once a stop was
        // requested. (The first run always starts: `start_session` said it runs.)
        None if ctx.shutdown_requested() => return Ending::Returned,
        None => {}
    }
    match catch_unwind(AssertUnwindSafe(|| body.run(ctx))) {
        Ok(()) => Ending::Returned,
        Err(payload) => Ending::Panicked(panic_message(&*payload)),
    }
}

/// Decides what follows an ending: `Some(reason)` to end the session, `None` to restart.
fn next_step<M>(
    ending: Ending,
    ctx: &SessionContext<M>,
    policy: &RestartPolicy,
    intensity: &mut Intensity,
) -> Option<ExitReason> {
    let last_panic = match ending {
        Ending::InitFailed(reason) => return Some(ExitReason::InitFailed { reason }),
        Ending::Returned if ctx.shutdown_requested() => return Some(ExitReason::Stopped),
        Ending::Panicked(message) if ctx.shutdown_requested() => {
            return Some(ExitReason::Panicked { message })
        }
        Ending::Returned if policy.restart() != Restart::Permanent => {
            return Some(ExitReason::Normal)
        }
        Ending::Panicked(message) if policy.restart() == Restart::Temporary => {
            return Some(ExitReason::Panicked { message })
        }
        Ending::Returned => None,
        Ending::Panicked(message) => Some(message),
    };
    restart_or_give_up(last_panic, ctx, policy, intensity)
}

fn restart_or_give_up<M>(
    last_panic: Option<String>,
    ctx: &SessionContext<M>,
    policy: &RestartPolicy,
    intensity: &mut Intensity,
) -> Option<ExitReason> {
    let why = last_panic.as_deref().unwrap_or("returned");
    if !intensity.admit(Instant::now()) {
        log::error!(
            "session {}: giving up after {} restarts ({why})",
            ctx.id(),
            ctx.restarts()
        );
        let restarts = ctx.restarts();
        return Some(ExitReason::RestartLimit {
            restarts,
            last_panic,
        });
    }
    log::warn!(
        "session {}: restarting ({why}), restart {}",
        ctx.id(),
        ctx.restarts() + 1
    );
    let backoff = policy.backoff_time();
    let stopped = if backoff.is_zero() {
        ctx.shutdown_requested()
    } else {
        ctx.wait_for_shutdown_timeout(backoff)
    };
    stopped.then_some(ExitReason::Stopped)
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
            if now.duration_since(oldest) < self.window {
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

    #[test]
    fn intensity_admits_max_within_the_window_then_refuses() {
        let policy = RestartPolicy::default().intensity(3, Duration::from_secs(5));
        let mut intensity = Intensity::new(&policy);
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(intensity.admit(t0 + Duration::from_secs(i)), "restart {i}");
        }
        assert!(!intensity.admit(t0 + Duration::from_secs(3)));
    }

    #[test]
    fn restarts_spread_wider_than_the_window_keep_being_admitted() {
        let policy = RestartPolicy::default().intensity(3, Duration::from_secs(5));
        let mut intensity = Intensity::new(&policy);
        let t0 = Instant::now();
        for i in 0..20 {
            assert!(
                intensity.admit(t0 + Duration::from_secs(2 * i)),
                "restart {i}"
            );
        }
    }

    #[test]
    fn zero_restarts_admits_none() {
        let policy = RestartPolicy::default().intensity(0, Duration::from_secs(5));
        assert!(!Intensity::new(&policy).admit(Instant::now()));
    }
}
