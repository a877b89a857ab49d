//! A session's mailbox and stop signal, made as one pair: the [`Postbox`] its handles
//! post into, the [`Inbox`] its body reads, and the [`Control`] items between them.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Select, Sender, TrySendError};
use parking_lot::{Mutex, RwLock};

use crate::boundary::drop_quietly;
use crate::wait::Wait;

/// What a session's control channel carries: its messages, and the stop signal.
///
/// Bodies that select on [`SessionContext::control`](crate::SessionContext::control)
/// receive these. Messages come in the order they were sent; `Stop` comes after the
/// messages queued before the stop, so a body that wants the stop to win checks
/// [`SessionContext::stop_requested`](crate::SessionContext::stop_requested)
/// after each message, as [`SessionContext::recv`](crate::SessionContext::recv) does.
///
/// A stop also closes the channel: once the queued messages are read, a receive fails
/// (`Err(RecvError)`). So a body learns of its stop even if the mailbox was full when
/// the stop came and `Stop` found no room; treat an error like `Stop`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control<M = ()> {
    /// A stop was requested: the body should return.
    Stop,
    /// A message sent with [`SessionHandle::send`](crate::SessionHandle::send) or a call.
    Message(M),
}

/// The stop of one session: a flag that is cheap to read, and a channel that is closed
/// when the flag is set, which wakes every thread waiting on it at once and never needs
/// room in any queue.
#[derive(Debug)]
pub(crate) struct StopSignal {
    requested: AtomicBool,
    /// How long a wait tries before it parks: nonzero on a warm thread, whose stop
    /// comes within microseconds in a start/stop storm (see `Wait::recv_after_spin`).
    spin: Duration,
    /// Dropped by [`raise`](Self::raise): nothing is ever sent.
    wake: Mutex<Option<Sender<Infallible>>>,
    woken: Receiver<Infallible>,
}

impl StopSignal {
    pub(crate) fn new(spin: Duration) -> StopSignal {
        let (wake, woken) = crossbeam_channel::bounded(0);
        StopSignal {
            requested: AtomicBool::new(false),
            spin,
            wake: Mutex::new(Some(wake)),
            woken,
        }
    }

    /// Sets the flag and wakes every waiter; returns whether this call set it.
    pub(crate) fn raise(&self) -> bool {
        if self.requested.swap(true, Ordering::AcqRel) {
            return false;
        }
        drop(self.wake.lock().take());
        true
    }

    /// Whether a stop was requested.
    pub(crate) fn is_raised(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }

    /// How long a wait for this signal tries before it parks.
    pub(crate) fn spin(&self) -> Duration {
        self.spin
    }

    /// Disconnected once the flag is set: for a select.
    pub(crate) fn woken(&self) -> &Receiver<Infallible> {
        &self.woken
    }

    /// Blocks until a stop is requested or `wait` runs out; returns whether one was.
    pub(crate) fn wait(&self, wait: Wait) -> bool {
        match wait.recv_after_spin(&self.woken, self.spin) {
            Ok(never) => match never {},
            Err(_) => self.is_raised(),
        }
    }
}

/// The stop signals of one worker (a session's body, or one of its children).
///
/// `stop` ends the worker: once raised, it stays raised. `run` ends the current run of
/// its body: a stop raises it (once the worker's children, if any, have stopped), and
/// the worker's tree may raise it alone, to end one run for a restart (an interrupt).
/// After an interrupt the next run gets a fresh `run` signal.
#[derive(Debug)]
pub(crate) struct Signals {
    stop: StopSignal,
    run: Mutex<Arc<StopSignal>>,
}

impl Signals {
    fn new(spin: Duration) -> Signals {
        Signals {
            stop: StopSignal::new(spin),
            run: Mutex::new(Arc::new(StopSignal::new(spin))),
        }
    }

    /// The worker's stop: raised once, never lowered.
    pub(crate) fn stop(&self) -> &StopSignal {
        &self.stop
    }

    /// The signal of the current run.
    pub(crate) fn run(&self) -> Arc<StopSignal> {
        Arc::clone(&self.run.lock())
    }

    /// Ends the current run (a stop, or an interrupt for a restart).
    pub(crate) fn raise_run(&self) {
        self.run.lock().raise();
    }

    /// A fresh signal for the next run if the last one was raised by an interrupt;
    /// the raised one if the worker is stopping (its next run must not begin). Under
    /// the lock `raise_run` takes, so a stop is never lost between the two.
    pub(crate) fn renew_run(&self) -> Arc<StopSignal> {
        let mut run = self.run.lock();
        if run.is_raised() && !self.stop.is_raised() {
            *run = Arc::new(StopSignal::new(run.spin));
        }
        Arc::clone(&run)
    }
}

/// Why a message was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No room within the wait allowed.
    Full,
    /// The session is stopping or has ended.
    Closed,
}

/// The sending half, kept by the session's cell and used by every handle.
#[derive(Debug)]
pub(crate) struct Postbox<M> {
    /// Taken when the session stops or ends. A bounded channel keeps queued messages
    /// until its last sender is gone, so the cell (kept alive by handles) must let go.
    letters: OwnLine<Letters<M>>,
    /// Disconnected when the letters are taken: wakes senders blocked on a full
    /// mailbox, so that none keeps it open once the session stops or ends.
    closing: Mutex<Option<Sender<Infallible>>>,
    closed: Receiver<Infallible>,
    signals: Arc<Signals>,
}

/// The receiving half, kept by the session's context on the session thread.
#[derive(Debug)]
pub(crate) struct Inbox<M> {
    pub(crate) control: Receiver<Control<M>>,
    pub(crate) signals: Arc<Signals>,
}

/// The sender of a mailbox, and how many messages went through it.
#[derive(Debug)]
struct Letters<M> {
    sender: RwLock<Option<Sender<Control<M>>>>,
    /// Counted next to the lock every send takes anyway: one more write to a line the
    /// sender holds already.
    posted: AtomicU64,
}

/// Keeps a value on cache lines of its own: every send takes the mailbox's read lock,
/// and the receiving thread should not see its own lines bounce with it.
#[derive(Debug)]
#[repr(align(128))]
struct OwnLine<T>(T);

/// A new mailbox, bounded to `capacity` messages (at least 1) if given.
pub(crate) fn mailbox<M>(capacity: Option<usize>, spin: Duration) -> (Postbox<M>, Inbox<M>) {
    let (sender, control) = match capacity {
        Some(capacity) => crossbeam_channel::bounded(capacity.max(1)),
        None => crossbeam_channel::unbounded(),
    };
    let signals = Arc::new(Signals::new(spin));
    let (closing, closed) = crossbeam_channel::bounded(0);
    let postbox = Postbox {
        letters: OwnLine(Letters {
            sender: RwLock::new(Some(sender)),
            posted: AtomicU64::new(0),
        }),
        closing: Mutex::new(Some(closing)),
        closed,
        signals: Arc::clone(&signals),
    };
    (postbox, Inbox { control, signals })
}

impl<M> Postbox<M> {
    /// Queues `message` if there is room now (the common case: under the read lock,
    /// never blocking); else waits for room as `wait()` says, with a sender cloned out
    /// of the lock, so no lock is held while a send blocks.
    pub(crate) fn post(&self, message: M, wait: impl FnOnce() -> Wait) -> Result<(), (Refused, M)> {
        let guard = self.letters.0.sender.read();
        let Some(letters) = guard.as_ref() else {
            return Err((Refused::Closed, message));
        };
        match letters.try_send(Control::Message(message)) {
            Ok(()) => {
                self.count_posted();
                Ok(())
            }
            Err(TrySendError::Disconnected(letter)) => Err((Refused::Closed, unwrap(letter))),
            Err(TrySendError::Full(letter)) => {
                let letters = letters.clone();
                drop(guard);
                let posted = self.wait_for_room(&letters, unwrap(letter), wait());
                // The last sender to go drops the messages still queued, user code.
                drop_quietly(letters);
                posted
            }
        }
    }

    /// Waits for room, or for the mailbox to close (at the stop or the end): a sender
    /// blocked on a full mailbox must not keep it open.
    fn wait_for_room(
        &self,
        letters: &Sender<Control<M>>,
        message: M,
        wait: Wait,
    ) -> Result<(), (Refused, M)> {
        let mut select = Select::new();
        let send = select.send(letters);
        let closed = select.recv(&self.closed);
        let ready = match wait {
            Wait::No => return Err((Refused::Full, message)),
            Wait::Forever => select.select(),
            Wait::Until(deadline) => match select.select_deadline(deadline) {
                Ok(ready) => ready,
                Err(_) => return Err((Refused::Full, message)),
            },
        };
        if ready.index() == send {
            ready
                .send(letters, Control::Message(message))
                .map_err(|err| (Refused::Closed, unwrap(err.0)))?;
            self.count_posted();
            return Ok(());
        }
        debug_assert_eq!(ready.index(), closed);
        let Err(_) = ready.recv(&self.closed);
        Err((Refused::Closed, message))
    }

    /// Requests the stop and ends the current run at once: [`request_stop`] then
    /// [`end_run`], as a stop does for a worker without children.
    ///
    /// [`request_stop`]: Self::request_stop
    /// [`end_run`]: Self::end_run
    #[cfg(test)]
    fn stop(&self) {
        self.request_stop();
        self.end_run();
    }

    /// Raises the worker's stop flag (no restart, no new run from now on) without
    /// ending the current run yet; returns whether this call raised it.
    pub(crate) fn request_stop(&self) -> bool {
        self.signals.stop.raise()
    }

    /// Ends the current run of a stopping worker: raises the run's signal, wakes every
    /// waiter, and closes the mailbox after a last `Stop` if it has room. Idempotent;
    /// never blocks.
    pub(crate) fn end_run(&self) {
        self.signals.raise_run();
        if let Some(letters) = self.take_letters() {
            // No room? The closed channel tells the body once it read the queue.
            let _ = letters.try_send(Control::Stop);
        }
    }

    /// The worker's signals.
    pub(crate) fn signals(&self) -> &Arc<Signals> {
        &self.signals
    }

    /// Lets go of the mailbox: later sends fail and hand their message back.
    pub(crate) fn close(&self) {
        drop(self.take_letters());
    }

    /// Counts a message queued, for the session's stats.
    fn count_posted(&self) {
        self.letters.0.posted.fetch_add(1, Ordering::Relaxed);
    }

    /// How many messages were queued, and how many of them wait still.
    pub(crate) fn counts(&self) -> (u64, usize) {
        let waiting = self.letters.0.sender.read().as_ref().map_or(0, Sender::len);
        (self.letters.0.posted.load(Ordering::Relaxed), waiting)
    }

    fn take_letters(&self) -> Option<Sender<Control<M>>> {
        let letters = self.letters.0.sender.write().take();
        drop(self.closing.lock().take());
        letters
    }

    /// Whether a stop was requested.
    pub(crate) fn stop_requested(&self) -> bool {
        self.signals.stop.is_raised()
    }
}

/// The message of a letter posted as a message.
fn unwrap<M>(letter: Control<M>) -> M {
    match letter {
        Control::Message(message) => message,
        Control::Stop => unreachable!("only messages are posted"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_stop_reaches_a_full_mailbox_as_its_closing() {
        let (postbox, inbox) = mailbox::<u32>(Some(1), Duration::ZERO);
        postbox.post(1, || Wait::No).unwrap();
        assert_eq!(postbox.post(2, || Wait::No), Err((Refused::Full, 2)));
        postbox.stop();
        assert_eq!(inbox.control.recv(), Ok(Control::Message(1)));
        assert!(inbox.control.recv().is_err(), "closed after the queue");
        assert_eq!(postbox.post(3, || Wait::No), Err((Refused::Closed, 3)));
    }

    #[test]
    fn a_stop_with_room_sends_stop_then_closes() {
        let (postbox, inbox) = mailbox::<u32>(None, Duration::ZERO);
        postbox.stop();
        postbox.stop();
        assert_eq!(inbox.control.recv(), Ok(Control::Stop));
        assert!(inbox.control.recv().is_err());
        assert!(inbox.signals.run().wait(Wait::Forever));
        assert!(inbox.signals.stop().is_raised());
    }

    #[test]
    fn a_sender_blocked_on_a_full_mailbox_is_released_by_the_stop() {
        let (postbox, inbox) = mailbox::<u32>(Some(1), Duration::ZERO);
        let postbox = Arc::new(postbox);
        postbox.post(1, || Wait::No).unwrap();
        let blocked = {
            let postbox = Arc::clone(&postbox);
            std::thread::spawn(move || postbox.post(2, || Wait::Forever))
        };
        postbox.stop();
        assert_eq!(blocked.join().unwrap(), Err((Refused::Closed, 2)));
        assert_eq!(inbox.control.recv(), Ok(Control::Message(1)));
        assert!(inbox.control.recv().is_err(), "no sender keeps it open");
    }

    #[test]
    fn a_sender_blocked_on_a_full_mailbox_is_released_by_the_end() {
        let (postbox, inbox) = mailbox::<u32>(Some(1), Duration::ZERO);
        let postbox = Arc::new(postbox);
        postbox.post(1, || Wait::No).unwrap();
        let blocked = {
            let postbox = Arc::clone(&postbox);
            std::thread::spawn(move || postbox.post(2, || Wait::Forever))
        };
        postbox.close();
        assert_eq!(blocked.join().unwrap(), Err((Refused::Closed, 2)));
        assert!(!postbox.stop_requested(), "an end is not a stop");
        assert_eq!(inbox.control.recv(), Ok(Control::Message(1)));
        assert!(inbox.control.recv().is_err());
    }

    #[test]
    fn a_wait_for_room_gives_up_at_its_deadline() {
        let (postbox, _inbox) = mailbox::<u32>(Some(1), Duration::ZERO);
        postbox.post(1, || Wait::No).unwrap();
        let past = Wait::Until(Instant::now());
        assert_eq!(postbox.post(2, || past), Err((Refused::Full, 2)));
        let soon = Wait::at_most(Duration::from_millis(1));
        assert_eq!(postbox.post(3, || soon), Err((Refused::Full, 3)));
    }

    #[test]
    fn an_interrupt_ends_the_run_but_not_the_worker_and_the_next_run_is_fresh() {
        let (postbox, inbox) = mailbox::<u32>(None, Duration::ZERO);
        let first = inbox.signals.run();
        inbox.signals.raise_run();
        assert!(first.is_raised());
        assert!(!postbox.stop_requested());
        postbox.post(1, || Wait::No).unwrap();
        let next = inbox.signals.renew_run();
        assert!(!next.is_raised(), "a fresh signal after an interrupt");
        assert_eq!(
            inbox.control.recv(),
            Ok(Control::Message(1)),
            "the mailbox is kept"
        );
        postbox.stop();
        assert!(
            next.is_raised(),
            "a stop ends the run that began after the interrupt"
        );
    }

    #[test]
    fn a_stopping_worker_gets_no_fresh_run() {
        let (postbox, inbox) = mailbox::<u32>(None, Duration::ZERO);
        assert!(postbox.request_stop());
        assert!(!postbox.request_stop(), "raised once");
        inbox.signals.raise_run();
        assert!(inbox.signals.renew_run().is_raised());
        assert!(
            postbox.post(1, || Wait::No).is_ok(),
            "open until the run ends"
        );
        postbox.end_run();
        assert_eq!(postbox.post(2, || Wait::No), Err((Refused::Closed, 2)));
    }
}
