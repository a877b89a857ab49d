//! Warm threads: session threads kept parked after their session ended, so that the
//! next start hands its session to one of them instead of spawning a thread.
//!
//! A start takes the most recently parked thread (its stack and caches are the
//! warmest) and sends it the session's work on the thread's own one-slot channel; with
//! none parked, it spawns a new pool thread. A thread goes back only when its session
//! ended cleanly (the session decides, in its end guard, before it wakes whoever waits
//! for its end, so a start right after a stop finds the thread parked again). A thread
//! parked longer than the idle timeout leaves; so does every thread once the pool is
//! closed.
//!
//! Every pool thread is joined: one that left is joined by a later start (it is past
//! its last line of work by then, or soon after), and closing the pool joins them all,
//! each wait bounded. The only sender of a parked thread's channel is its place in the
//! idle list, so dropping that place is how a thread is told to leave.

use std::cell::Cell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use crate::lifecycle::arm;
use crate::wait::Wait;

/// The name of every warm thread: std cannot rename a thread that runs, and a warm
/// thread runs many sessions one after another.
pub const WARM_THREAD_NAME: &str = "warm-session";

/// How long a wait of a warm thread's hand-over (a thread waiting for its next session,
/// a start waiting for `init`, a stop waiting for the end) tries before it parks: see
/// [`Wait::recv_after_spin`]. Measured on the `start_stop/warm` bench: 5 µs already
/// catches most answers, 20 µs all of them; longer only burns CPU.
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
    threads: HashMap<u64, Thread>,
    /// Numbers of threads that left (or are about to): joined by a later reap.
    left: Vec<u64>,
    next_number: u64,
    closed: bool,
}

/// A parked thread: the only sender of its channel.
#[derive(Debug)]
struct Parked {
    number: u64,
    orders: Sender<Order>,
}

/// A pool thread's handle, and what tells that it ran its last line.
#[derive(Debug)]
struct Thread {
    handle: JoinHandle<()>,
    ended: Receiver<Infallible>,
}

/// Work for a thread, with the sender its thread parks with afterwards.
struct Order {
    job: Job,
    orders: Sender<Order>,
}

/// What a job needs to give its thread back to the pool.
pub(crate) struct Seat {
    pool: Arc<Pool>,
    number: u64,
    orders: Sender<Order>,
    given_back: Rc<Cell<bool>>,
}

impl Seat {
    /// Parks the thread again once the job returns, if the pool is open and has room.
    /// Called by a session's end guard, before it wakes whoever waits for the end.
    pub(crate) fn give_back(self) {
        let parked = self.pool.park(Parked {
            number: self.number,
            orders: self.orders,
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
        let orders = match parked {
            Some(parked) => parked.orders,
            None => match self.spawn() {
                Ok((_, orders)) => orders,
                Err(error) => return Err((error, job)),
            },
        };
        let order = Order {
            job,
            orders: orders.clone(),
        };
        // The channel has one slot, empty while the thread is parked, and the thread
        // waits on it: this never blocks, and the thread is there to receive it.
        orders.try_send(order).map_err(|error| {
            let error_text = io::Error::other("a warm thread ended before it took its work");
            (error_text, error.into_inner().job)
        })
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
            let (number, orders) = self.spawn()?;
            if !self.park(Parked { number, orders }) {
                break;
            }
        }
        Ok(self.idle())
    }

    /// How many threads are parked.
    pub(crate) fn idle(&self) -> usize {
        self.state.lock().idle.len()
    }

    /// Spawns a pool thread waiting for orders; returns its number and its channel.
    fn spawn(self: &Arc<Self>) -> io::Result<(u64, Sender<Order>)> {
        crate::limits::take_thread()?;
        let (orders_tx, orders) = crossbeam_channel::bounded(1);
        let (ended_tx, ended) = crossbeam_channel::bounded(0);
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
        let handle = builder.spawn(move || pool.work(number, &orders, ended_tx))?;
        let thread = Thread { handle, ended };
        self.state.lock().threads.insert(number, thread);
        Ok((number, orders_tx))
    }

    /// A pool thread: runs orders until it is not given back, times out parked, or the
    /// pool closes.
    fn work(self: Arc<Self>, number: u64, orders: &Receiver<Order>, ended: Sender<Infallible>) {
        // Dropped as the thread's last act, after its thread-locals: the join that
        // follows waits for nothing else.
        let _ended = arm(ended);
        while let Some(Order {
            job,
            orders: sender,
        }) = self.next_order(number, orders)
        {
            let given_back = Rc::new(Cell::new(false));
            let seat = Seat {
                pool: Arc::clone(&self),
                number,
                orders: sender,
                given_back: Rc::clone(&given_back),
            };
            job(seat);
            if !given_back.get() {
                break;
            }
        }
        self.state.lock().left.push(number);
    }

    /// Waits for the next order, at most the idle timeout while parked.
    fn next_order(&self, number: u64, orders: &Receiver<Order>) -> Option<Order> {
        match Wait::at_most(self.idle_timeout).recv_after_spin(orders, HAND_OVER_SPIN) {
            Ok(order) => Some(order),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                if self.unpark(number) {
                    return None;
                }
                // A start took this thread meanwhile and is about to send its order.
                orders.recv().ok()
            }
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
        match state.idle.iter().position(|p| p.number == number) {
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
                Some(thread) if has_ended(&thread.ended) => {
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

    /// Closes the pool: parked threads leave, busy ones leave after their session;
    /// then joins every thread that ends as `wait` allows. Those that do not (their
    /// session has not ended) are joined by a later close.
    pub(crate) fn close(&self, wait: Wait) {
        let (idle, threads) = {
            let mut state = self.state.lock();
            state.closed = true;
            state.left.clear();
            (
                std::mem::take(&mut state.idle),
                std::mem::take(&mut state.threads),
            )
        };
        drop(idle);
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

/// Whether the thread behind `ended` ran its last line.
fn has_ended(ended: &Receiver<Infallible>) -> bool {
    matches!(
        ended.try_recv(),
        Err(crossbeam_channel::TryRecvError::Disconnected)
    )
}
