//! The session thread's side: [`Launch`] carries what the thread needs into it, runs
//! the restart loop, and ends the session (queue for a join, unregister, report).

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crossbeam_channel::Receiver;

use crate::body::{Control, SessionContext};
use crate::runtime::{DoneGuard, Runtime};
use crate::supervise::{supervise, Outcome, Started};
use crate::supervisor::Shared;
use crate::{ExitReason, ExitReport, RestartPolicy, Session, SessionBody, SessionEvent};

impl<M> Shared<M> {
    /// The end of a session thread: queue for a join, unregister, record the report,
    /// tell subscribers.
    fn finish(&self, runtime: &Arc<Runtime<M>>, report: ExitReport) {
        // Queued for a join before it leaves the registry, so a shutdown running
        // meanwhile finds it in one place or the other, never in neither.
        self.ended.lock().push(Arc::clone(runtime));
        self.unregister(runtime);
        log_exit(&report);
        let id = report.id;
        let reason = report.reason.clone();
        runtime.set_exit(report);
        self.events.publish(SessionEvent::Exited { id, reason });
    }
}

fn log_exit(report: &ExitReport) {
    let (id, reason) = (report.id(), report.reason());
    match reason {
        ExitReason::Normal | ExitReason::Stopped => log::info!("session {id} ended: {reason}"),
        ExitReason::Panicked { .. } => log::warn!("session {id} ended: {reason}"),
        _ => log::error!("session {id} ended: {reason}"),
    }
}

/// Everything a session thread needs, moved into it.
pub(crate) struct Launch<M> {
    pub(crate) shared: Arc<Shared<M>>,
    pub(crate) runtime: Arc<Runtime<M>>,
    pub(crate) session: Session,
    pub(crate) channels: (Receiver<()>, Receiver<Control<M>>),
    pub(crate) done: DoneGuard,
    pub(crate) started: Started,
}

impl<M: Send + 'static> Launch<M> {
    pub(crate) fn spawn<B>(self, body: B, policy: RestartPolicy) -> std::io::Result<JoinHandle<()>>
    where
        B: SessionBody<M>,
    {
        self.shared.threads.take()?;
        let mut builder = thread::Builder::new().name(self.session.name().to_owned());
        if let Some(bytes) = self.shared.stack_size {
            builder = builder.stack_size(bytes);
        }
        builder.spawn(move || self.run(body, policy))
    }

    /// The session thread from first to last instruction.
    fn run<B: SessionBody<M>>(self, body: B, policy: RestartPolicy) {
        let began = Instant::now();
        self.runtime.set_thread();
        let id = *self.session.id();
        let ctx = SessionContext::new(self.session, Arc::clone(&self.runtime), self.channels);
        let Outcome {
            reason,
            restarts,
            unanswered,
        } = supervise(body, &ctx, policy, self.started, &self.shared.events);
        // The mailbox goes first: later sends fail and hand their message back, and
        // queued calls learn at once that no reply will come.
        self.runtime.close_mailbox();
        drop(ctx);
        let failed_start = unanswered.map(|started| (started, start_failure(&reason)));
        let report = ExitReport {
            id,
            reason,
            restarts,
            run_time: began.elapsed(),
        };
        self.shared.finish(&self.runtime, report);
        // Answered only now, so `start_session` never sees a half-registered entry.
        if let Some((started, reason)) = failed_start {
            let _ = started.send(Err(reason));
        }
        // Last: wakes every waiter, once the entry is gone and the report is set.
        drop(self.done);
    }
}

/// Why a first start failed, for `Error::StartFailed`.
fn start_failure(reason: &ExitReason) -> String {
    match reason {
        ExitReason::InitFailed { reason } => reason.clone(),
        other => other.to_string(),
    }
}
