//! [`SessionCell`]: what one session's thread shares with its handles and its
//! supervisor.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Mutex, RwLock};

use crate::mailbox::{Postbox, Refused};
use crate::stats::{Outside, Tracker};
use crate::tree::{is_owned_by, Tree};
use crate::wait::{hung_up, Wait};
use crate::{
    ChildHandle, Error, ExitReason, ExitReport, SendError, Session, SessionId, SessionStats,
};

/// The outcomes of a session's start (see `SessionCell::start`), decided once.
const STARTING: u8 = 0;
const BEGAN: u8 = 1;
const GIVEN_UP: u8 = 2;

/// Why a session stops, decided once (see `SessionCell::claim`): the first cause wins.
/// The `cause` of a session that was not asked to stop is 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Cause {
    /// A stop, a shutdown or a failed start: the exit reason is the run's own.
    Asked = 1,
    /// Its idle timeout ran out.
    Idle = 2,
    /// A start at the limit chose it to make room.
    Evicted = 3,
}

/// Moves `decision` from 0 (undecided) to `outcome`, unless it was decided before;
/// returns whether this call decided it.
fn decide(decision: &AtomicU8, outcome: u8) -> bool {
    let decided = decision.compare_exchange(0, outcome, Ordering::AcqRel, Ordering::Acquire);
    decided.is_ok()
}

/// One incarnation of a session: compared by address, so a late end of an old thread
/// never touches a newer session that reuses the id.
#[derive(Debug)]
pub(crate) struct SessionCell<M> {
    id: SessionId,
    /// The metadata as registered: renames change it under the registry's lock.
    session: RwLock<Session>,
    /// Start order within the supervisor; shutdown joins the newest first.
    seq: u64,
    /// How long a stop waits for the end.
    stop_timeout: Duration,
    postbox: Postbox<M>,
    thread_id: OnceLock<ThreadId>,
    /// `BEGAN` once the first `init` succeeded and `Started` was published (only such a
    /// session gets an `Exited` event); `GIVEN_UP` if its start stopped waiting first.
    /// Decided once, by whichever comes first.
    start: AtomicU8,
    /// The right to join: taken by exactly one of a stopper or the reaper.
    join: Mutex<JoinState>,
    /// Disconnected by the session thread's end guard, as its very last act.
    done: Receiver<Infallible>,
    exit: Mutex<Option<ExitReport>>,
    /// Set when a stop gave up waiting: the thread is not reused, whenever it ends.
    abandoned: AtomicBool,
    /// The session's children.
    tree: Tree<M>,
    /// What its stats read.
    tracker: Tracker,
    /// Why it stops: 0 until a [`Cause`] is decided.
    cause: AtomicU8,
    /// Stopped after this long without activity, if set.
    idle_timeout: Option<Duration>,
}

/// Who may join the thread. `Spawning` until the start stores the handle, so a reaper
/// that comes early knows to come back rather than forget the thread.
#[derive(Debug)]
enum JoinState {
    Spawning,
    Running(JoinHandle<()>),
    Joined,
}

/// How a bounded wait for a session's end turned out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    Yes,
    TimedOut,
}

impl<M> SessionCell<M> {
    /// A cell, and the sender whose drop marks the session thread as finished.
    pub(crate) fn new(
        session: Session,
        (seq, stop_timeout, idle_timeout): (u64, Duration, Option<Duration>),
        postbox: Postbox<M>,
        tree: Tree<M>,
    ) -> (SessionCell<M>, Sender<Infallible>) {
        let (done_tx, done) = crossbeam_channel::bounded(0);
        let cell = SessionCell {
            id: session.id(),
            session: RwLock::new(session),
            seq,
            stop_timeout,
            postbox,
            thread_id: OnceLock::new(),
            start: AtomicU8::new(STARTING),
            join: Mutex::new(JoinState::Spawning),
            done,
            exit: Mutex::new(None),
            abandoned: AtomicBool::new(false),
            tree,
            tracker: Tracker::new(),
            cause: AtomicU8::new(0),
            idle_timeout,
        };
        (cell, done_tx)
    }

    pub(crate) fn id(&self) -> SessionId {
        self.id
    }

    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// The session's metadata as registered now (or last, once it ended).
    pub(crate) fn session(&self) -> Session {
        self.session.read().clone()
    }

    /// Takes the metadata of a rename; called under the registry's lock.
    pub(crate) fn renamed(cell: &Arc<SessionCell<M>>, session: &Session) {
        *cell.session.write() = session.clone();
    }

    /// Queues a message, waiting for room in a full mailbox as `wait` allows. On the
    /// session's own thread a full mailbox fails at once: the session would wait for
    /// itself to make room.
    pub(crate) fn send(&self, message: M, wait: Wait) -> Result<(), SendError<M>> {
        let wait = || {
            if self.is_current_thread() {
                Wait::No
            } else {
                wait
            }
        };
        self.postbox
            .post(message, wait)
            .map_err(|(refused, message)| {
                let id = self.id;
                let error = match refused {
                    Refused::Full => Error::MailboxFull { id },
                    Refused::Closed => Error::SessionGone { id },
                };
                SendError { message, error }
            })
    }

    pub(crate) fn tree(&self) -> &Tree<M> {
        &self.tree
    }

    /// A handle to the running child `name`.
    pub(crate) fn child(&self, name: &str) -> Result<ChildHandle<M>, Error> {
        match self.tree.find(name) {
            Some(child) => Ok(ChildHandle::new(child)),
            None => Err(Error::ChildNotFound {
                id: self.id,
                child: name.to_owned(),
            }),
        }
    }

    /// Identifies the session among the threads that work for it (see
    /// [`set_owner`](crate::tree::set_owner)).
    pub(crate) fn owner(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Whether the current thread works for this session: its own or a child's. Such a
    /// thread cannot wait for the session's end.
    pub(crate) fn is_within(&self) -> bool {
        self.is_current_thread() || is_owned_by(self.owner())
    }

    /// Requests the stop; idempotent, never blocks. The children stop first, newest
    /// first, then the body's run ends (each child's end takes the next step).
    pub(crate) fn request_stop(&self) {
        let _ = self.claim(Cause::Asked);
        if self.postbox.request_stop() {
            self.advance_stop();
        }
    }

    /// Requests the stop for `cause`, which becomes its exit reason, unless a stop was
    /// requested before; returns whether this call decided it.
    pub(crate) fn stop_for(&self, cause: Cause) -> bool {
        let decided = self.claim(cause);
        if decided {
            self.request_stop();
        }
        decided
    }

    /// Decides that the session stops for `cause` without requesting the stop yet (an
    /// eviction decides under the registry's lock, and stops outside it); `false` if a
    /// stop was decided before.
    pub(crate) fn claim(&self, cause: Cause) -> bool {
        decide(&self.cause, cause as u8)
    }

    /// Whether a stop was decided (requested, or claimed by an eviction): every stop
    /// of a session is requested through [`request_stop`](Self::request_stop), which
    /// decides one first.
    pub(crate) fn is_stopping(&self) -> bool {
        self.cause.load(Ordering::Acquire) != 0
    }

    /// The exit reason of a session whose run ended with `reason`: a stop for idleness
    /// or an eviction says so.
    pub(crate) fn exit_reason(&self, reason: ExitReason) -> ExitReason {
        if reason != ExitReason::Stopped {
            return reason;
        }
        let cause = self.cause.load(Ordering::Acquire);
        match self.idle_timeout {
            Some(timeout) if cause == Cause::Idle as u8 => ExitReason::Idle { timeout },
            _ if cause == Cause::Evicted as u8 => ExitReason::Evicted,
            _ => reason,
        }
    }

    pub(crate) fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    pub(crate) fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// How many messages reached the mailbox.
    pub(crate) fn messages(&self) -> u64 {
        self.postbox.counts().0
    }

    /// The session's stats, with `session` as its metadata.
    pub(crate) fn stats_of(&self, session: Session, taken_at: Instant) -> SessionStats {
        let (messages, mailbox_len) = self.postbox.counts();
        self.tracker.stats(Outside {
            session,
            ended: self.is_finished(),
            stopping: self.stop_requested(),
            mailbox_len,
            messages,
            taken_at,
        })
    }

    pub(crate) fn stats(&self) -> SessionStats {
        self.stats_of(self.session(), Instant::now())
    }

    /// The next step of a stop: see [`Tree::advance_stop`].
    pub(crate) fn advance_stop(&self) {
        self.tree.advance_stop(&self.postbox);
    }

    /// Ends the body's current run without stopping the session: its tree restarts it.
    pub(crate) fn interrupt(&self) {
        self.postbox.signals().raise_run();
    }

    /// Requests the stop and waits, up to the stop timeout, for the end; then joins.
    pub(crate) fn stop(&self) -> Result<ExitReport, Error> {
        self.request_stop();
        let id = self.id;
        if self.is_within() {
            return Err(Error::StopFromOwnThread { id });
        }
        match self.await_end(Wait::at_most(self.stop_timeout)) {
            Ended::Yes => Ok(self.exit_report()),
            Ended::TimedOut => {
                self.abandon();
                Err(self.timed_out())
            }
        }
    }

    /// A stop gave up waiting: whenever the session ends now, its thread is not reused.
    pub(crate) fn abandon(&self) {
        self.abandoned.store(true, Ordering::Release);
    }

    /// The error of a stop that timed out: names the child still running, if one is.
    pub(crate) fn timed_out(&self) -> Error {
        let (id, timeout) = (self.id, self.stop_timeout);
        let stop_timeout = Error::StopTimeout { id, timeout };
        match self.tree.newest() {
            Some(child) => child.error(stop_timeout),
            None => stop_timeout,
        }
    }

    /// Waits (as `wait` allows) for the end guard, then joins the thread.
    pub(crate) fn await_end(&self, wait: Wait) -> Ended {
        let ended = self.wait(wait);
        if ended == Ended::Yes {
            self.join();
        }
        ended
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.postbox.stop_requested()
    }

    /// Lets go of the mailbox: later sends fail and hand their message back.
    pub(crate) fn close_mailbox(&self) {
        self.postbox.close();
    }

    /// Records the session thread; called first thing on that thread.
    pub(crate) fn set_thread(&self) {
        let _ = self.thread_id.set(std::thread::current().id());
    }

    pub(crate) fn is_current_thread(&self) -> bool {
        self.thread_id.get() == Some(&std::thread::current().id())
    }

    /// Marks the session as begun, unless its start gave up waiting first; returns
    /// whether it begins.
    pub(crate) fn try_begin(&self) -> bool {
        self.decide_start(BEGAN)
    }

    /// Marks the start as given up (its init took too long), unless the session began
    /// first; returns whether it was given up.
    pub(crate) fn give_up_start(&self) -> bool {
        self.decide_start(GIVEN_UP)
    }

    fn decide_start(&self, outcome: u8) -> bool {
        decide(&self.start, outcome)
    }

    pub(crate) fn has_begun(&self) -> bool {
        self.start.load(Ordering::Acquire) == BEGAN
    }

    pub(crate) fn set_join_handle(&self, handle: JoinHandle<()>) {
        *self.join.lock() = JoinState::Running(handle);
    }

    /// The session runs on a warm thread, which its pool joins: nothing to join here.
    pub(crate) fn set_joined_by_pool(&self) {
        *self.join.lock() = JoinState::Joined;
    }

    /// Whether a warm thread may run another session after this one: only after a
    /// clean end (returned or stopped, no child left running past the stop, no stop
    /// that gave up waiting). Call from the end guard, once the report is set.
    pub(crate) fn may_reuse_thread(&self) -> bool {
        let clean = self.exit.lock().as_ref().is_some_and(|report| {
            let reason = &report.reason;
            matches!(
                reason,
                ExitReason::Normal
                    | ExitReason::Stopped
                    | ExitReason::Idle { .. }
                    | ExitReason::Evicted
            ) && report.children.iter().all(|child| !child.lingered)
        });
        clean && !self.abandoned.load(Ordering::Acquire)
    }

    /// Whether the session thread's end guard has run.
    pub(crate) fn is_finished(&self) -> bool {
        hung_up(&self.done)
    }

    /// Waits until the session thread's end guard has run, as `wait` allows. On the
    /// session's own thread it does not wait: the thread cannot end while it waits.
    pub(crate) fn wait(&self, wait: Wait) -> Ended {
        let wait = if self.is_within() { Wait::No } else { wait };
        // A warm session's end comes within microseconds of its stop: its signals spin.
        let spin = self.postbox.signals().stop().spin();
        match wait.recv_after_spin(&self.done, spin) {
            Ok(never) => match never {},
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Ended::Yes,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Ended::TimedOut,
        }
    }

    /// Joins the thread if nobody has yet. Call only once the end guard ran (after
    /// [`wait`](Self::wait) said so): the join then waits only for the thread's last
    /// instructions, after every thread-local destructor of user code.
    pub(crate) fn join(&self) {
        let mut state = self.join.lock();
        match std::mem::replace(&mut *state, JoinState::Joined) {
            JoinState::Running(handle) => {
                drop(state);
                // Every panic on the session thread is caught, so the result is `Ok`.
                drop(handle.join());
            }
            // Not stored yet: the start stores it, and the reaper joins it later.
            JoinState::Spawning => *state = JoinState::Spawning,
            JoinState::Joined => {}
        }
    }

    /// Joins the thread if its end guard ran, without waiting for that; returns whether
    /// nothing is left to join.
    pub(crate) fn try_join(&self) -> bool {
        if !self.is_finished() {
            return false;
        }
        self.join();
        matches!(*self.join.lock(), JoinState::Joined)
    }

    pub(crate) fn set_exit(&self, report: ExitReport) {
        *self.exit.lock() = Some(report);
    }

    /// How the session ended, with its metadata as it was registered last. Call only
    /// once [`wait`](Self::wait) said it did.
    pub(crate) fn exit_report(&self) -> ExitReport {
        let mut report = self.exit.lock().clone().unwrap_or_else(|| ExitReport {
            // Only if the session thread ended before its report was made, which the
            // panic boundaries around all its work rule out.
            session: self.session(),
            reason: ExitReason::Panicked {
                message: "the session thread ended without a report".into(),
            },
            restarts: 0,
            run_time: Duration::ZERO,
            children: Vec::new(),
        });
        report.session = self.session();
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::mailbox;

    fn cell() -> (SessionCell<()>, Sender<Infallible>) {
        let (postbox, _) = mailbox(None, Duration::ZERO);
        let session = Session::new(std::env::temp_dir()).unwrap();
        let tree = Tree::new(session.id(), Default::default(), 16, Default::default());
        SessionCell::new(session, (0, Duration::MAX, None), postbox, tree)
    }

    /// A stopper may find the thread ended before the start stored its handle; the
    /// handle stored afterwards must still be joined (and `join` swaps the state under
    /// one lock, so a handle stored meanwhile is never overwritten).
    #[test]
    fn join_before_the_handle_is_stored_leaves_the_join_to_the_reaper() {
        let (cell, done) = cell();
        cell.join();
        assert!(!cell.try_join(), "nothing stored yet: nothing joined");
        let thread = std::thread::spawn(move || drop(done));
        cell.set_join_handle(thread);
        assert_eq!(cell.wait(Wait::Forever), Ended::Yes);
        cell.join();
        assert!(cell.try_join(), "joined once stored");
    }

    #[test]
    fn a_thread_still_at_work_is_not_joined_by_the_reaper() {
        let (cell, done) = cell();
        let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::spawn(move || {
            let _ = release_rx.recv();
            drop(done);
        });
        cell.set_join_handle(thread);
        assert!(!cell.try_join());
        assert_eq!(cell.wait(Wait::No), Ended::TimedOut);
        drop(release_tx);
        assert_eq!(cell.wait(Wait::Forever), Ended::Yes);
        assert!(cell.try_join());
    }
}
