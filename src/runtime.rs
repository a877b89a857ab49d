//! The state one session's thread shares with its handles and its supervisor.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError};
use parking_lot::{Mutex, RwLock};

use crate::body::Control;
use crate::{Error, ExitReason, ExitReport, SendError, SessionId};

/// Nothing is ever sent on the done channel: its sender is dropped when the session
/// thread finishes, which wakes every waiter at once.
pub(crate) enum Never {}

/// One incarnation of a session: compared by address, so a late exit of an old thread
/// never touches a newer session that reuses the id.
pub(crate) struct Runtime<M> {
    id: SessionId,
    /// Start order within the supervisor; shutdown joins the newest first.
    seq: u64,
    control: Sender<Control>,
    /// Taken when the session ends: a bounded channel keeps queued messages until its
    /// last sender is gone, so the runtime (kept alive by handles) must not hold one.
    mailbox: RwLock<Option<Sender<M>>>,
    shutdown: AtomicBool,
    thread_id: OnceLock<ThreadId>,
    /// The right to join: taken by exactly one of a stopper or the reaper.
    join: Mutex<JoinState>,
    done: Receiver<Never>,
    exit: Mutex<Option<ExitReport>>,
}

impl std::fmt::Debug for Never {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {}
    }
}

/// Who may join the thread. `Spawning` until `start_session` stores the handle, so a
/// reaper that comes early knows to come back rather than forget the thread.
#[derive(Debug)]
enum JoinState {
    Spawning,
    Running(JoinHandle<()>),
    Joined,
}

/// What the session thread holds; dropping it marks the session as finished.
pub(crate) struct DoneGuard(#[allow(dead_code)] Sender<Never>);

/// How a bounded wait for a session's end turned out.
pub(crate) enum Ended {
    Yes,
    TimedOut,
}

impl<M> std::fmt::Debug for Runtime<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("id", &self.id)
            .field("seq", &self.seq)
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

impl<M> Runtime<M> {
    pub(crate) fn new(
        id: SessionId,
        seq: u64,
        control: Sender<Control>,
        mailbox: Sender<M>,
    ) -> (Runtime<M>, DoneGuard) {
        let (done_tx, done) = crossbeam_channel::bounded(0);
        let runtime = Runtime {
            id,
            seq,
            control,
            mailbox: RwLock::new(Some(mailbox)),
            shutdown: AtomicBool::new(false),
            thread_id: OnceLock::new(),
            join: Mutex::new(JoinState::Spawning),
            done,
            exit: Mutex::new(None),
        };
        (runtime, DoneGuard(done_tx))
    }

    pub(crate) fn id(&self) -> &SessionId {
        &self.id
    }

    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// Queues a message, blocking while a bounded mailbox is full.
    pub(crate) fn send(&self, message: M) -> Result<(), SendError<M>> {
        match self.mailbox() {
            Some(mailbox) => mailbox.send(message).map_err(|e| self.gone(e.into_inner())),
            None => Err(self.gone(message)),
        }
    }

    /// Queues a message, blocking until `deadline` at most while the mailbox is full.
    pub(crate) fn send_deadline(&self, message: M, deadline: Instant) -> Result<(), SendError<M>> {
        let Some(mailbox) = self.mailbox() else {
            return Err(self.gone(message));
        };
        mailbox
            .send_deadline(message, deadline)
            .map_err(|e| match e {
                SendTimeoutError::Timeout(message) => self.full(message),
                SendTimeoutError::Disconnected(message) => self.gone(message),
            })
    }

    /// Queues a message if the mailbox has room, without blocking.
    pub(crate) fn try_send(&self, message: M) -> Result<(), SendError<M>> {
        let Some(mailbox) = self.mailbox() else {
            return Err(self.gone(message));
        };
        mailbox.try_send(message).map_err(|e| match e {
            TrySendError::Full(message) => self.full(message),
            TrySendError::Disconnected(message) => self.gone(message),
        })
    }

    /// A sender of the mailbox, cloned out so no lock is held while a send blocks.
    fn mailbox(&self) -> Option<Sender<M>> {
        self.mailbox.read().clone()
    }

    /// Lets go of the mailbox: once the session's receiver is gone too, queued messages
    /// are dropped (and the callers of queued calls learn no reply will come).
    pub(crate) fn close_mailbox(&self) {
        let sender = self.mailbox.write().take();
        drop(sender);
    }

    fn gone(&self, message: M) -> SendError<M> {
        let error = Error::SessionGone { id: self.id };
        SendError { message, error }
    }

    fn full(&self, message: M) -> SendError<M> {
        let error = Error::MailboxFull { id: self.id };
        SendError { message, error }
    }

    /// Sets the stop flag and wakes the body; idempotent, never blocks.
    pub(crate) fn request_shutdown(&self) {
        if !self.shutdown.swap(true, Ordering::AcqRel) {
            // The channel is unbounded; a body that already ended simply never reads it.
            let _ = self.control.send(Control::Shutdown);
        }
    }

    pub(crate) fn shutdown_requested(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Records the session thread; called first thing on that thread.
    pub(crate) fn set_thread(&self) {
        let _ = self.thread_id.set(std::thread::current().id());
    }

    pub(crate) fn is_current_thread(&self) -> bool {
        self.thread_id.get() == Some(&std::thread::current().id())
    }

    pub(crate) fn set_join_handle(&self, handle: JoinHandle<()>) {
        *self.join.lock() = JoinState::Running(handle);
    }

    pub(crate) fn is_finished(&self) -> bool {
        matches!(
            self.done.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        )
    }

    /// Waits until the session thread has finished its work, or `timeout` passes.
    pub(crate) fn wait(&self, timeout: Duration) -> Ended {
        match self.done.recv_timeout(timeout) {
            Ok(never) => match never {},
            Err(RecvTimeoutError::Disconnected) => Ended::Yes,
            Err(RecvTimeoutError::Timeout) => Ended::TimedOut,
        }
    }

    /// Joins the thread if nobody has yet. Call only once the thread finished its work
    /// (after [`wait`](Self::wait) said so): the join then only waits for the thread's
    /// last instructions.
    pub(crate) fn join(&self) {
        let mut state = self.join.lock();
        match std::mem::replace(&mut *state, JoinState::Joined) {
            JoinState::Running(handle) => {
                drop(state);
                // The thread catches every panic of the body, so it cannot end in one.
                drop(handle.join());
            }
            // Not stored yet: `start_session` stores it, and the reaper joins it later.
            JoinState::Spawning => *state = JoinState::Spawning,
            JoinState::Joined => {}
        }
    }

    /// Joins the thread if it has already exited, without blocking; returns whether
    /// nothing is left to join.
    pub(crate) fn try_join(&self) -> bool {
        let mut state = self.join.lock();
        match &*state {
            JoinState::Running(handle) if handle.is_finished() => {
                let JoinState::Running(handle) = std::mem::replace(&mut *state, JoinState::Joined)
                else {
                    unreachable!("matched Running above")
                };
                drop(state);
                drop(handle.join());
                true
            }
            JoinState::Joined => true,
            _ => false,
        }
    }

    pub(crate) fn set_exit(&self, report: ExitReport) {
        *self.exit.lock() = Some(report);
    }

    /// How the session ended. Call only once [`wait`](Self::wait) said it did.
    pub(crate) fn exit_report(&self) -> ExitReport {
        self.exit.lock().clone().unwrap_or_else(|| ExitReport {
            // Only if the crate's own code panicked on the session thread before the
            // report was made.
            id: self.id,
            reason: ExitReason::Panicked {
                message: "the session thread ended without a report".into(),
            },
            restarts: 0,
            run_time: Duration::ZERO,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> (Runtime<()>, DoneGuard) {
        let (control, _) = crossbeam_channel::unbounded();
        let (mailbox, _) = crossbeam_channel::unbounded();
        Runtime::new(SessionId::new(), 0, control, mailbox)
    }

    /// A stopper may find the thread ended before `start_session` stored its handle;
    /// the handle stored afterwards must still be joined (and `join` swaps the state
    /// under one lock, so a handle stored meanwhile is never overwritten).
    #[test]
    fn join_before_the_handle_is_stored_leaves_the_join_to_the_reaper() {
        let (runtime, done) = runtime();
        runtime.join();
        assert!(!runtime.try_join(), "nothing stored yet: nothing joined");
        let thread = std::thread::spawn(move || drop(done));
        runtime.set_join_handle(thread);
        assert!(matches!(runtime.wait(Duration::from_secs(10)), Ended::Yes));
        runtime.join();
        assert!(runtime.try_join(), "joined once stored");
    }
}
