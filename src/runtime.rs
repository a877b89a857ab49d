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
    /// Wakes `wait_for_shutdown`, which must not take messages from the mailbox.
    stop: Sender<()>,
    /// Messages and the stop signal, in one channel so a body blocks on one receive.
    /// Taken when the session ends: a bounded channel keeps queued messages until its
    /// last sender is gone, so the runtime (kept alive by handles) must not hold one.
    mailbox: OwnLine<RwLock<Option<Sender<Control<M>>>>>,
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

/// Keeps a value on cache lines of its own: every send takes the mailbox's read lock,
/// and the receiving thread should not see its own lines (the stop flag) bounce with it.
#[derive(Debug)]
#[repr(align(128))]
struct OwnLine<T>(T);

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
        stop: Sender<()>,
        mailbox: Sender<Control<M>>,
    ) -> (Runtime<M>, DoneGuard) {
        let (done_tx, done) = crossbeam_channel::bounded(0);
        let runtime = Runtime {
            id,
            seq,
            stop,
            mailbox: OwnLine(RwLock::new(Some(mailbox))),
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
        self.deliver(message, |mailbox, letter| {
            mailbox
                .send(letter)
                .map_err(|e| SendTimeoutError::Disconnected(e.0))
        })
    }

    /// Queues a message, blocking until `deadline` at most while the mailbox is full.
    pub(crate) fn send_deadline(&self, message: M, deadline: Instant) -> Result<(), SendError<M>> {
        self.deliver(message, |mailbox, letter| {
            mailbox.send_deadline(letter, deadline)
        })
    }

    /// Queues a message if the mailbox has room, without blocking.
    pub(crate) fn try_send(&self, message: M) -> Result<(), SendError<M>> {
        self.deliver(message, |_, letter| Err(SendTimeoutError::Timeout(letter)))
    }

    /// Queues `message` if the mailbox has room now (the common case, done under the
    /// read lock, never blocking); else hands it to `wait`, with a sender cloned out of
    /// the lock, so no lock is held while a send blocks. A full mailbox in the end is
    /// `MailboxFull`; a closed one `SessionGone`.
    fn deliver(
        &self,
        message: M,
        wait: impl FnOnce(Sender<Control<M>>, Control<M>) -> Result<(), SendTimeoutError<Control<M>>>,
    ) -> Result<(), SendError<M>> {
        let guard = self.mailbox.0.read();
        let failed = match guard.as_ref() {
            None => SendTimeoutError::Disconnected(Control::Message(message)),
            Some(mailbox) => match mailbox.try_send(Control::Message(message)) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(letter)) => SendTimeoutError::Disconnected(letter),
                Err(TrySendError::Full(letter)) => {
                    let mailbox = mailbox.clone();
                    drop(guard);
                    match wait(mailbox, letter) {
                        Ok(()) => return Ok(()),
                        Err(failed) => failed,
                    }
                }
            },
        };
        let id = self.id;
        let (error, letter) = match failed {
            SendTimeoutError::Timeout(letter) => (Error::MailboxFull { id }, letter),
            SendTimeoutError::Disconnected(letter) => (Error::SessionGone { id }, letter),
        };
        let Control::Message(message) = letter else {
            unreachable!("only messages are sent here")
        };
        Err(SendError { message, error })
    }

    /// Lets go of the mailbox: once the session's receiver is gone too, queued messages
    /// are dropped (and the callers of queued calls learn no reply will come).
    pub(crate) fn close_mailbox(&self) {
        let sender = self.mailbox.0.write().take();
        drop(sender);
    }

    /// Sets the stop flag and wakes the body, wherever it waits; idempotent, never
    /// blocks.
    pub(crate) fn request_shutdown(&self) {
        if self.shutdown.swap(true, Ordering::AcqRel) {
            return;
        }
        // Wakes `wait_for_shutdown`; the channel is unbounded.
        let _ = self.stop.send(());
        // Wakes a body blocked on its mailbox. If the mailbox is full, the body is not
        // blocked on it, and sees the flag before its next receive.
        if let Some(mailbox) = self.mailbox.0.read().as_ref() {
            let _ = mailbox.try_send(Control::Shutdown);
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
            JoinState::Joined => return true,
            JoinState::Running(handle) if handle.is_finished() => {}
            JoinState::Running(_) | JoinState::Spawning => return false,
        }
        if let JoinState::Running(handle) = std::mem::replace(&mut *state, JoinState::Joined) {
            drop(state);
            drop(handle.join());
        }
        true
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
        let (stop, _) = crossbeam_channel::unbounded();
        let (mailbox, _) = crossbeam_channel::unbounded();
        Runtime::new(SessionId::new(), 0, stop, mailbox)
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
