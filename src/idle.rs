//! Idle timeouts: one thread per supervisor, started with the first session that has
//! an idle timeout, stops each such session once it had no activity for its timeout.
//!
//! The thread sleeps until the earliest moment a watched session could be idle, woken
//! early only to watch a new session. It never runs user code: it reads counters and
//! requests stops, which never block.

use std::convert::Infallible;
use std::io;
use std::sync::Weak;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use crate::boundary::{catch, quietly};
use crate::cell::{Cause, SessionCell};
use crate::wait::Wait;

/// The name of the thread that watches a supervisor's idle timeouts.
const WATCHER_NAME: &str = "session-idle-watch";

/// What the watcher needs of a session, whatever its message type.
pub(crate) trait Watched: Send + Sync {
    fn idle_timeout(&self) -> Option<Duration>;
    fn last_activity(&self) -> Instant;
    /// How many messages reached its mailbox: a change counts as activity even if the
    /// body reads its mailbox without recording it.
    fn messages(&self) -> u64;
    /// Stopping or ended: nothing left to watch.
    fn is_over(&self) -> bool;
    fn stop_idle(&self);
}

impl<M: Send> Watched for SessionCell<M> {
    fn idle_timeout(&self) -> Option<Duration> {
        SessionCell::idle_timeout(self)
    }

    fn last_activity(&self) -> Instant {
        self.tracker().last_activity()
    }

    fn messages(&self) -> u64 {
        SessionCell::messages(self)
    }

    fn is_over(&self) -> bool {
        self.is_stopping() || self.is_finished()
    }

    fn stop_idle(&self) {
        if self.stop_for(Cause::Idle) {
            let id = self.id();
            quietly(|| log::info!("session {id}: idle for its timeout, stopping"));
        }
    }
}

/// A supervisor's idle watcher, started on first use.
#[derive(Debug, Default)]
pub(crate) struct IdleWatch {
    watcher: Mutex<State>,
}

#[derive(Debug, Default)]
enum State {
    #[default]
    NotStarted,
    Running(Watcher),
    /// Shut down: no watcher starts any more (nor would a session, to be watched).
    Closed,
}

#[derive(Debug)]
struct Watcher {
    /// Dropped to end the thread.
    sessions: Sender<Weak<dyn Watched>>,
    /// Disconnected as the thread's last act.
    done: Receiver<Infallible>,
    thread: JoinHandle<()>,
}

impl IdleWatch {
    /// Starts the watcher thread unless it runs (or the supervisor shut down). The
    /// thread is spawned outside the lock; if another start installed one meanwhile,
    /// this one is ended and joined, waiting at most `wait`.
    pub(crate) fn start(&self, wait: Duration) -> io::Result<()> {
        if !matches!(*self.watcher.lock(), State::NotStarted) {
            return Ok(());
        }
        let spawned = Watcher::spawn()?;
        let mut state = self.watcher.lock();
        if matches!(*state, State::NotStarted) {
            *state = State::Running(spawned);
            return Ok(());
        }
        drop(state);
        spawned.end(Wait::at_most(wait));
        Ok(())
    }

    /// Watches a session that has an idle timeout; the watcher runs (see `start`).
    pub(crate) fn watch(&self, session: Weak<dyn Watched>) {
        if let State::Running(watcher) = &*self.watcher.lock() {
            // Unbounded: never blocks.
            let _ = watcher.sessions.send(session);
        }
    }

    /// Ends the watcher thread for good and joins it, waiting at most as `wait` allows.
    pub(crate) fn close(&self, wait: Wait) {
        let closed = std::mem::replace(&mut *self.watcher.lock(), State::Closed);
        if let State::Running(watcher) = closed {
            watcher.end(wait);
        }
    }
}

impl Watcher {
    fn spawn() -> io::Result<Watcher> {
        crate::limits::take_thread()?;
        let (sessions, watched) = crossbeam_channel::unbounded();
        let (done_tx, done) = crossbeam_channel::bounded(0);
        let thread = thread::Builder::new()
            .name(WATCHER_NAME.to_owned())
            .spawn(move || watch(&watched, done_tx))?;
        Ok(Watcher {
            sessions,
            done,
            thread,
        })
    }

    /// Lets go of the thread, which then returns, and joins it once it did, waiting at
    /// most as `wait` allows.
    fn end(self, wait: Wait) {
        let Watcher {
            sessions,
            done,
            thread,
        } = self;
        drop(sessions);
        if let Err(RecvTimeoutError::Disconnected) = wait.recv(&done) {
            drop(thread.join());
        }
    }
}

/// The watcher thread's loop: until the supervisor lets go of it.
fn watch(sessions: &Receiver<Weak<dyn Watched>>, done: Sender<Infallible>) {
    let mut watched: Vec<Entry> = Vec::new();
    loop {
        let next = watched.iter().map(|entry| entry.due).min();
        let wait = next.map_or(Wait::Forever, Wait::Until);
        match wait.recv(sessions) {
            Ok(session) => watched.extend(Entry::new(session)),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        if next.is_none_or(|due| due > now) {
            // Woken to watch one more: nothing is due yet.
            continue;
        }
        watched.retain_mut(|entry| entry.due > now || catch(|| entry.check(now)).unwrap_or(false));
    }
    drop(done);
}

/// One watched session.
struct Entry {
    session: Weak<dyn Watched>,
    timeout: Duration,
    /// Its message count at the last check.
    messages: u64,
    /// Its last activity, as far as the checks know.
    active_at: Instant,
    /// When it is idle unless it is active before.
    due: Instant,
}

impl Entry {
    fn new(session: Weak<dyn Watched>) -> Option<Entry> {
        let watched = session.upgrade()?;
        let active_at = watched.last_activity();
        let timeout = watched.idle_timeout()?;
        // A timeout past the clock's range never runs out: nothing to watch.
        let due = active_at.checked_add(timeout)?;
        Some(Entry {
            messages: watched.messages(),
            due,
            session,
            timeout,
            active_at,
        })
    }

    /// Stops the session if it was idle for its timeout; returns whether to keep
    /// watching it.
    fn check(&mut self, now: Instant) -> bool {
        let Some(session) = self.session.upgrade() else {
            return false;
        };
        if session.is_over() {
            return false;
        }
        let recorded = session.last_activity();
        let messages = session.messages();
        if recorded > self.active_at {
            self.active_at = recorded;
        } else if messages != self.messages {
            // Messages came since the last check, and no activity was recorded: still
            // queued, or read without a record. Active by now, at the latest.
            self.active_at = now;
        }
        self.messages = messages;
        let Some(due) = self.active_at.checked_add(self.timeout) else {
            return false;
        };
        self.due = due;
        if due <= now {
            session.stop_idle();
        }
        due > now
    }
}
