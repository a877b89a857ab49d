//! Warm threads: session threads kept parked after their session ended, so that the
//! next start hands its session to one of them instead of spawning a thread.
//!
//! A start takes the most recently parked thread (its stack and caches are the
//! warmest), puts the session's work in the thread's slot and unparks it; with none
//! parked, it spawns a new pool thread. A thread goes back only when its session ended
//! cleanly (the session decides, in its end guard, before it wakes whoever waits for
//! its end, so a start right after a stop finds the thread parked again). A thread
//! parked longer than the idle timeout leaves; so does every thread once the pool is
//! closed.
//!
//! The hand-over is a slot under a mutex and `Thread::unpark`, called with no lock
//! held. A parked thread first watches its slot for a few microseconds (a start right
//! after a stop finds it there), then sleeps. Waking a sleeping thread costs its waker
//! about 20 µs on this virtual machine, several times a warm start; so a start that
//! takes a thread also nudges the next one parked, which wakes and watches its slot
//! for a while before it sleeps again: in a burst of starts each start then finds its
//! thread awake and pays for one wake instead of two (see BENCHMARKS.md).
//!
//! Every pool thread is joined: one that left is joined by a later start (it is past
//! its last line of work by then, or soon after), and closing the pool joins them all,
//! each wait bounded.

use std::cell::Cell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::thread::{self, JoinHandle, Thread as ThreadRef};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use parking_lot::Mutex;

use crate::lifecycle::arm;
use crate::wait::{hung_up, Wait};

/// The name of every warm thread: std cannot rename a thread that runs, and a warm
/// thread runs many sessions one after another.
pub const WARM_THREAD_NAME: &str = "warm-session";

/// How long a wait of a warm thread's hand-over (a thread waiting for its next session,
/// a start waiting for `init`, a stop waiting for the end, a warm body waiting for its
/// stop) tries before it parks: see [`Wait::recv_after_spin`]. Measured on the
/// `start_stop/warm` bench: 5 µs already catches most answers, 20 µs all of them.
pub(crate) const HAND_OVER_SPIN: Duration = Duration::from_micros(20);

/// How long a warm thread of a default pool stays parked before it ends.
pub const DEFAULT_WARM_THREAD_TIMEOUT: Duration = Duration::from_secs(5);

/// The work of one session, run on a pool thread. It catches every panic of what it
/// runs, and gives its thread back through the [`Seat`] if the thread may be reused.
pub(crate) type Job = Box<dyn FnOnce(Seat) + Send>;

/// A supervisor's warm threads.
#[derive(Debug)]
pub(crate) struct Pool {
    /// Most threads kept parked.
    capacity: usize,
    idle_timeout: Duration,
    stack_size: Option<usize>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Parked threads, the most recently parked last.
    idle: Vec<Parked>,
    /// Every pool thread not joined yet, by number.
    threads: HashMap<u64, PoolThread>,
    /// Numbers of threads that left (or are about to): joined by a later reap.
    left: Vec<u64>,
    next_number: u64,
    closed: bool,
}

/// A parked thread.
#[derive(Debug)]
struct Parked {
    slot: Arc<Slot>,
    /// Whether it was nudged since it parked: at most once per parking.
    nudged: bool,
}

/// A pool thread's handle, and what tells that it ran its last line.
#[derive(Debug)]
struct PoolThread {
    handle: JoinHandle<()>,
    ended: Receiver<Infallible>,
}

/// Where a pool thread receives its work.
struct Slot {
    number: u64,
    order: Mutex<Option<Order>>,
    thread: ThreadRef,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}

/// What a parked thread is told.
enum Order {
    Run(Job),
    /// The pool closed, or the thread was taken out of it: end.
    Leave,
}

impl Slot {
    /// Puts `order` in the slot and wakes the thread, with no lock held.
    fn give(&self, order: Order) {
        *self.order.lock() = Some(order);
        self.thread.unpark();
    }

    fn take(&self) -> Option<Order> {
        self.order.lock().take()
    }

    /// Waits for an order until `wait` runs out: watches the slot briefly after every
    /// wake (a nudge says work may come soon), and parks in between.
    fn wait(&self, wait: Wait) -> Option<Order> {
        loop {
            if let Some(order) = wait.spin(HAND_OVER_SPIN, || self.take()) {
                return Some(order);
            }
            match wait {
                Wait::No => return None,
                Wait::Forever => thread::park(),
                Wait::Until(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return self.take();
                    }
                    thread::park_timeout(left);
                }
            }
        }
    }
}

/// What a job needs to give its thread back to the pool.
pub(crate) struct Seat {
    pool: Arc<Pool>,
    slot: Arc<Slot>,
    given_back: Rc<Cell<bool>>,
}

impl Seat {
    /// Parks the thread again once the job returns, if the pool is open and has room.
    /// Called by a session's end guard, before it wakes whoever waits for the end.
    pub(crate) fn give_back(self) {
        let parked = self.pool.park(Parked {
            slot: self.slot,
            nudged: false,
        });
        self.given_back.set(parked);
    }
}

impl Pool {
    pub(crate) fn new(capacity: usize, idle_timeout: Duration, stack_size: Option<usize>) -> Pool {
        Pool {
            capacity,
            idle_timeout,
            stack_size,
            state: Mutex::new(State::default()),
        }
    }

    /// Runs `job` on a parked thread, or on a new one if none is parked.
    ///
    /// # Errors
    ///
    /// The spawn's error, or `OutOfMemory` from the thread budget; `job` is handed back.
    pub(crate) fn run(self: &Arc<Self>, job: Job) -> Result<(), (io::Error, Job)> {
        self.reap();
        let parked = self.state.lock().idle.pop();
        let slot = match parked {
            Some(parked) => parked.slot,
            None => match self.spawn() {
                Ok(slot) => slot,
                Err(error) => return Err((error, job)),
            },
        };
        slot.give(Order::Run(job));
        self.nudge_next();
        Ok(())
    }

    /// Wakes the thread the next start will take, unless it was nudged already since it
    /// parked; woken outside the lock.
    fn nudge_next(&self) {
        let next = {
            let mut state = self.state.lock();
            match state.idle.last_mut() {
                Some(parked) if !parked.nudged => {
                    parked.nudged = true;
                    Some(parked.slot.thread.clone())
                }
                _ => None,
            }
        };
        if let Some(thread) = next {
            thread.unpark();
        }
    }

    /// Spawns threads until `capacity` are parked; returns how many are.
    ///
    /// # Errors
    ///
    /// The spawn's error, or `OutOfMemory` from the thread budget; the threads spawned
    /// before it stay parked.
    pub(crate) fn fill(self: &Arc<Self>) -> io::Result<usize> {
        self.reap();
        while self.idle() < self.capacity {
            let slot = self.spawn()?;
            if !self.park(Parked {
                slot: Arc::clone(&slot),
                nudged: false,
            }) {
                slot.give(Order::Leave);
                break;
            }
        }
        Ok(self.idle())
    }

    /// How many threads are parked.
    pub(crate) fn idle(&self) -> usize {
        self.state.lock().idle.len()
    }

    /// Spawns a pool thread waiting for an order in its slot; returns the slot.
    fn spawn(self: &Arc<Self>) -> io::Result<Arc<Slot>> {
        crate::limits::take_thread()?;
        let (ended_tx, ended) = crossbeam_channel::bounded(0);
        let (slot_tx, slot_rx) = crossbeam_channel::bounded::<Arc<Slot>>(1);
        let number = {
            let mut state = self.state.lock();
            if state.closed {
                return Err(io::Error::other("the supervisor shut down"));
            }
            state.next_number += 1;
            state.next_number
        };
        let mut builder = thread::Builder::new().name(WARM_THREAD_NAME.to_owned());
        if let Some(bytes) = self.stack_size {
            builder = builder.stack_size(bytes);
        }
        let pool = Arc::clone(self);
        let handle = builder.spawn(move || {
            // Armed first, so dropped last, after every other thread-local: the join
            // that follows its drop waits for nothing else.
            let _ended = arm(ended_tx);
            // Sent right after the spawn returns; not at all only if the spawner failed.
            if let Ok(slot) = slot_rx.recv() {
                pool.work(&slot);
            }
        })?;
        let slot = Arc::new(Slot {
            number,
            order: Mutex::new(None),
            thread: handle.thread().clone(),
        });
        // The thread waits for it on a channel with room: never blocks.
        let _ = slot_tx.send(Arc::clone(&slot));
        let thread = PoolThread { handle, ended };
        self.state.lock().threads.insert(number, thread);
        Ok(slot)
    }

    /// A pool thread: runs orders until it is not given back, times out parked, or the
    /// pool closes.
    fn work(self: Arc<Self>, slot: &Arc<Slot>) {
        while let Some(job) = self.next_job(slot) {
            let given_back = Rc::new(Cell::new(false));
            let seat = Seat {
                pool: Arc::clone(&self),
                slot: Arc::clone(slot),
                given_back: Rc::clone(&given_back),
            };
            job(seat);
            if !given_back.get() {
                break;
            }
        }
        self.state.lock().left.push(slot.number);
    }

    /// Waits for the next work, at most the idle timeout while parked.
    fn next_job(&self, slot: &Slot) -> Option<Job> {
        let order = match slot.wait(Wait::at_most(self.idle_timeout)) {
            Some(order) => order,
            None if self.unpark(slot.number) => return None,
            // A start took this thread meanwhile and is about to give it its work.
            None => slot.wait(Wait::Forever)?,
        };
        match order {
            Order::Run(job) => Some(job),
            Order::Leave => None,
        }
    }

    /// Parks a thread if the pool is open and has room; returns whether it did.
    fn park(&self, parked: Parked) -> bool {
        let mut state = self.state.lock();
        if state.closed || state.idle.len() >= self.capacity {
            return false;
        }
        state.idle.push(parked);
        true
    }

    /// Takes a thread out of the idle list; `false` if a start took it first.
    fn unpark(&self, number: u64) -> bool {
        let mut state = self.state.lock();
        match state.idle.iter().position(|p| p.slot.number == number) {
            Some(at) => {
                state.idle.remove(at);
                true
            }
            None => false,
        }
    }

    /// Joins the threads that left and ran their last line; never waits for one.
    fn reap(&self) {
        let finished = {
            let mut state = self.state.lock();
            if state.left.is_empty() {
                return;
            }
            let State { left, threads, .. } = &mut *state;
            let mut finished = Vec::new();
            left.retain(|number| match threads.get(number) {
                Some(thread) if hung_up(&thread.ended) => {
                    finished.extend(threads.remove(number));
                    false
                }
                // Not inserted yet (its spawn has not returned), or still ending.
                _ => true,
            });
            finished
        };
        for thread in finished {
            // Its work catches every panic; a join error is nothing to act on.
            drop(thread.handle.join());
        }
    }

    /// Closes the pool: parked threads leave now, busy ones after their session
    /// (which then does not park its thread). Call before stopping the sessions, so
    /// that their threads end instead of parking only to be woken again.
    pub(crate) fn close(&self) {
        let idle = {
            let mut state = self.state.lock();
            state.closed = true;
            std::mem::take(&mut state.idle)
        };
        for parked in idle {
            parked.slot.give(Order::Leave);
        }
    }

    /// Joins every thread that ends as `wait` allows, after [`close`](Self::close).
    /// Those that do not (their session has not ended) are joined by a later call.
    pub(crate) fn join_all(&self, wait: Wait) {
        let threads = {
            let mut state = self.state.lock();
            state.left.clear();
            std::mem::take(&mut state.threads)
        };
        let mut running = HashMap::new();
        for (number, thread) in threads {
            if let Err(RecvTimeoutError::Disconnected) = wait.recv(&thread.ended) {
                drop(thread.handle.join());
            } else {
                running.insert(number, thread);
            }
        }
        self.state.lock().threads.extend(running);
    }
}
