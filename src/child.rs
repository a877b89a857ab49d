//! A child of a session: a named worker on a thread of its own, started by the
//! session's body, restarted by the session's [`ChildStrategy`], stopped with the
//! session.
//!
//! A child thread has the same shape as a session thread: an end guard armed first
//! (it takes the child out of its tree, records its end, publishes `ChildExited`,
//! wakes whoever waits and lets the session's stop go on), and a restart loop whose
//! every call into user code sits inside a panic boundary.

use std::convert::Infallible;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use parking_lot::Mutex;

use crate::attribution::in_session_span;
use crate::boundary::{catch, drop_quietly, quietly};
use crate::cell::SessionCell;
use crate::lifecycle::{arm, Shared};
use crate::mailbox::{mailbox, Inbox, Postbox, Refused};
use crate::restart::{first_init, init, make, run, Bodies, Ending};
use crate::tree::{set_owner, ChildStrategy, Failure, Tree};
use crate::wait::{hung_up, Wait};
use crate::{
    ChildExit, ChildHandle, Error, ExitReason, Restart, Result, SendError, SessionContext,
    SessionEvent, SessionId,
};

/// One child, shared by its thread, its handles and its session's tree.
#[derive(Debug)]
pub(crate) struct ChildCell<M> {
    name: String,
    session: SessionId,
    /// Start order within the session.
    index: u64,
    stop_timeout: Duration,
    postbox: Postbox<M>,
    thread_id: OnceLock<ThreadId>,
    restarts: AtomicU32,
    began: AtomicBool,
    /// Disconnected by the child's end guard, as its last act.
    done: Receiver<Infallible>,
    join: Mutex<Option<JoinHandle<()>>>,
    /// When its session's stop was requested, and then its own: a child asked before
    /// the session's stop timeout ran out and still running after it lingered (the
    /// children asked after it did not: they waited for it).
    stop_asked: Mutex<Option<(Instant, Instant)>>,
    exit: Mutex<Option<ChildExit>>,
    /// Orders of a rest-for-one restart, from the child that drives it.
    orders: (Sender<Order>, Receiver<Order>),
    /// This child's answers to those orders.
    acks: (Sender<Ack>, Receiver<Ack>),
}

/// An order of a rest-for-one restart.
#[derive(Debug)]
enum Order {
    /// End the current run and wait for `Go`.
    Park,
    /// Restart: run `init` again, then the body.
    Go,
}

/// A child's answer to an [`Order`].
#[derive(Debug)]
enum Ack {
    Parked,
    /// Restarted; `false` if its `init` failed.
    Ready(bool),
}

impl<M> ChildCell<M> {
    fn new(
        name: String,
        (session, index): (SessionId, u64),
        stop_timeout: Duration,
        postbox: Postbox<M>,
    ) -> (ChildCell<M>, Sender<Infallible>) {
        let (done_tx, done) = crossbeam_channel::bounded(0);
        let cell = ChildCell {
            name,
            session,
            index,
            stop_timeout,
            postbox,
            thread_id: OnceLock::new(),
            restarts: AtomicU32::new(0),
            began: AtomicBool::new(false),
            done,
            join: Mutex::new(None),
            stop_asked: Mutex::new(None),
            exit: Mutex::new(None),
            orders: crossbeam_channel::unbounded(),
            acks: crossbeam_channel::unbounded(),
        };
        (cell, done_tx)
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn session_id(&self) -> SessionId {
        self.session
    }

    pub(crate) fn index(&self) -> u64 {
        self.index
    }

    pub(crate) fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::Relaxed)
    }

    pub(crate) fn is_running(&self) -> bool {
        !self.is_finished()
    }

    fn is_finished(&self) -> bool {
        hung_up(&self.done)
    }

    pub(crate) fn is_current_thread(&self) -> bool {
        self.thread_id.get() == Some(&thread::current().id())
    }

    /// Stops the child: no restart from now on, and its current run ends. Never
    /// blocks; idempotent. Its stop timeout counts from `asked` (its session's stop).
    pub(crate) fn request_stop_since(&self, asked: Instant) {
        if self.postbox.request_stop() {
            *self.stop_asked.lock() = Some((asked, Instant::now()));
        }
        self.postbox.end_run();
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.postbox.stop_requested()
    }

    /// Waits (as `wait` allows) for the child's end guard; returns whether it ran.
    pub(crate) fn wait_end(&self, wait: Wait) -> bool {
        if self.is_current_thread() {
            return false;
        }
        matches!(
            wait.recv(&self.done),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected)
        )
    }

    /// Joins the thread once it ended (call after [`wait_end`](Self::wait_end)).
    pub(crate) fn join(&self) {
        let handle = self.join.lock().take();
        if let Some(handle) = handle {
            // Every panic on the child thread is caught, so the result is `Ok`.
            drop(handle.join());
        }
    }

    /// Joins the thread if it ended; returns whether nothing is left to join.
    pub(crate) fn try_join(&self) -> bool {
        if !self.is_finished() {
            return false;
        }
        self.join();
        true
    }

    /// Queues a message; see [`SessionCell::send`]. The error is the session's, not yet
    /// said of the child (see [`error`](Self::error)).
    pub(crate) fn send(&self, message: M, wait: Wait) -> std::result::Result<(), SendError<M>> {
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
                let id = self.session;
                let error = match refused {
                    Refused::Full => Error::MailboxFull { id },
                    Refused::Closed => Error::SessionGone { id },
                };
                SendError { message, error }
            })
    }

    /// `error`, said of this child.
    pub(crate) fn error(&self, error: Error) -> Error {
        Error::Child {
            id: self.session,
            child: self.name.clone(),
            error: Box::new(error),
        }
    }

    /// How the child ended (or that it is still running, if it did not).
    pub(crate) fn exit(&self) -> Option<ChildExit> {
        self.exit.lock().clone()
    }

    fn report(&self, reason: ExitReason) -> ChildExit {
        let lingered = self.stop_asked.lock().is_some_and(|(session, own)| {
            let late = |at: Instant| at.saturating_duration_since(session) > self.stop_timeout;
            !late(own) && late(Instant::now())
        });
        ChildExit {
            name: self.name.clone(),
            reason,
            restarts: self.restarts(),
            lingered,
        }
    }
}

/// How a child's first `init` went, told to its spawner.
type StartAnswer = std::result::Result<(), String>;

/// Starts a child of the session whose cell is `session`, from its body's context:
/// admits it to the tree, spawns its thread, and waits until its first `init` ended.
/// On any failure the child is gone (out of the tree, its thread joined) before this
/// returns.
pub(crate) fn spawn<M: Send + 'static, S: Bodies<M>>(
    shared: &Arc<Shared<M>>,
    session: &Arc<SessionCell<M>>,
    name: String,
    bodies: S,
) -> Result<ChildHandle<M>> {
    let id = session.id();
    let name = crate::session::validate_name(name)?;
    if session.stop_requested() {
        return Err(Error::SessionGone { id });
    }
    let tree = session.tree();
    tree.reap();
    let (postbox, inbox) = mailbox(shared.mailbox_capacity, Duration::ZERO);
    let order = (id, tree.next_index());
    let (cell, done) = ChildCell::new(name, order, shared.stop_timeout, postbox);
    let cell = Arc::new(cell);
    tree.insert(&cell)?;
    let (answer_tx, answer_rx) = crossbeam_channel::bounded(1);
    let thread = ChildThread {
        shared: Arc::clone(shared),
        session: Arc::clone(session),
        cell: Arc::clone(&cell),
        inbox: Some(inbox),
        answer: answer_tx,
    };
    let stack_size = shared.stack_size;
    let spawned = catch_unwind(AssertUnwindSafe(move || {
        thread.spawn(stack_size, done, bodies)
    }));
    match spawned {
        Ok(Ok(handle)) => *cell.join.lock() = Some(handle),
        Ok(Err(source)) => {
            tree.remove(&cell);
            return Err(cell.error(Error::Spawn { id, source }));
        }
        Err(payload) => {
            tree.remove(&cell);
            resume_unwind(payload)
        }
    }
    // Answered by the child after init, or by its end guard once it is out of the tree.
    let reason = match answer_rx.recv() {
        Ok(Ok(())) => return Ok(ChildHandle::new(cell)),
        Ok(Err(reason)) => reason,
        Err(_) => "the child thread ended before init finished".to_owned(),
    };
    cell.wait_end(Wait::Forever);
    cell.join();
    Err(cell.error(Error::StartFailed { id, reason }))
}

/// Everything a child thread needs, moved into it.
struct ChildThread<M> {
    shared: Arc<Shared<M>>,
    session: Arc<SessionCell<M>>,
    cell: Arc<ChildCell<M>>,
    /// Taken by the child's context when it starts.
    inbox: Option<Inbox<M>>,
    answer: Sender<StartAnswer>,
}

impl<M: Send + 'static> ChildThread<M> {
    fn spawn<S: Bodies<M>>(
        self,
        stack_size: Option<usize>,
        done: Sender<Infallible>,
        bodies: S,
    ) -> std::io::Result<JoinHandle<()>> {
        crate::limits::take_thread()?;
        let name = format!("{}/{}", self.session.session().name(), self.cell.name);
        let mut builder = thread::Builder::new().name(name);
        if let Some(bytes) = stack_size {
            builder = builder.stack_size(bytes);
        }
        builder.spawn(move || self.main(done, bodies))
    }

    fn main<S: Bodies<M>>(self, done: Sender<Infallible>, bodies: S) {
        crate::panics::mark_session_thread();
        set_owner(self.session.owner());
        let _ = self.cell.thread_id.set(thread::current().id());
        let _fallback = arm(ChildEndGuard {
            shared: Arc::clone(&self.shared),
            session: Arc::clone(&self.session),
            cell: Arc::clone(&self.cell),
            answer: self.answer.clone(),
            done: Some(done),
        });
        let cell = Arc::clone(&self.cell);
        let session = self.session.session();
        let live = || in_session_span(&session, Some(&cell.name), || self.live(bodies));
        let reason = catch(live).unwrap_or_else(|message| {
            let message = format!("the child thread failed: {message}");
            ExitReason::Panicked { message }
        });
        *cell.exit.lock() = Some(cell.report(reason));
    }
}

impl<M> ChildThread<M> {
    /// Starts the child's body, runs it until it ends for good, and drops it and the
    /// mailbox, each inside a panic boundary.
    fn live<S: Bodies<M>>(mut self, mut bodies: S) -> ExitReason {
        let session = self.session.session();
        let inbox = self.inbox.take().expect("the inbox is taken once");
        let mut ctx = SessionContext::for_child(
            session,
            inbox,
            self.cell.name.clone(),
            Arc::clone(&self.session),
        );
        let (reason, body) = match first_init(&mut bodies, &ctx) {
            Err((reason, body)) => (ExitReason::InitFailed { reason }, body),
            Ok(body) => {
                self.cell.began.store(true, Ordering::Release);
                let _ = self.answer.send(Ok(()));
                let mut restarts = Restarts {
                    child: &self,
                    bodies: &mut bodies,
                };
                restarts.supervise(body, &mut ctx)
            }
        };
        self.cell.postbox.close();
        ctx.discard_messages();
        drop_quietly(ctx);
        drop_quietly(body);
        drop_quietly(bodies);
        reason
    }

    fn tree(&self) -> &Tree<M> {
        self.session.tree()
    }

    fn publish_restart(&self, reason: ExitReason) {
        let restarts = self.cell.restarts.fetch_add(1, Ordering::Relaxed) + 1;
        let (id, name) = (self.cell.session, &self.cell.name);
        quietly(|| log::warn!("session {id}: restarting child {name:?} ({reason})"));
        self.publish(|| SessionEvent::ChildRestarted {
            session: self.session.session(),
            child: name.clone(),
            restarts,
            reason,
        });
    }

    /// Publishes a child's event if its session began: a start that fails has no
    /// events, and a child's events come after its session's `Started`.
    fn publish(&self, event: impl FnOnce() -> SessionEvent) {
        publish(&self.shared, &self.session, event);
    }

    /// The tree gives up: the session stops, and ends with `reason`.
    fn give_up(&self, reason: ExitReason) {
        self.tree().fail(Failure::GaveUp(reason));
        self.session.request_stop();
    }
}

/// A child's restart loop, with its source of bodies.
struct Restarts<'a, M, S> {
    child: &'a ChildThread<M>,
    bodies: &'a mut S,
}

impl<M, S: Bodies<M>> Restarts<'_, M, S> {
    /// Runs the body until the child ends for good; returns why, and the last body.
    fn supervise(
        &mut self,
        mut body: S::Body,
        ctx: &mut SessionContext<M>,
    ) -> (ExitReason, Option<S::Body>) {
        loop {
            let ending = run(&mut body, ctx);
            let cell = &self.child.cell;
            if cell.stop_requested() {
                return (stopped(ending), Some(body));
            }
            if matches!(cell.orders.1.try_recv(), Ok(Order::Park)) {
                // Another child's rest-for-one restart ended this run.
                match self.park(body, ctx) {
                    Ok(next) => body = next,
                    Err(end) => return end,
                }
                continue;
            }
            let restart = self.child.tree().policy().restart();
            let last_panic = match ending {
                Ending::Returned if restart != Restart::Permanent => {
                    return (ExitReason::Normal, Some(body))
                }
                Ending::Panicked(message) if restart == Restart::Temporary => {
                    return (ExitReason::Panicked { message }, Some(body))
                }
                Ending::Returned => None,
                Ending::Panicked(message) | Ending::InitFailed(message) => Some(message),
            };
            match self.restart(body, ctx, last_panic) {
                Ok(next) => body = next,
                Err(end) => return end,
            }
        }
    }

    /// After a crash (or a permanent child's return): restarts as the strategy says.
    fn restart(
        &mut self,
        body: S::Body,
        ctx: &mut SessionContext<M>,
        last_panic: Option<String>,
    ) -> std::result::Result<S::Body, (ExitReason, Option<S::Body>)> {
        let child = self.child;
        let tree = child.tree();
        let crashed = ended(last_panic.as_deref());
        match tree.strategy() {
            ChildStrategy::OneForAll => {
                let name = child.cell.name.clone();
                tree.fail(Failure::ChildCrashed {
                    child: name,
                    last_panic,
                });
                child.session.interrupt();
                Err((crashed, Some(body)))
            }
            ChildStrategy::OneForOne => {
                if !tree.admit_restart() {
                    return Err(self.gave_up(crashed, last_panic, body));
                }
                if self.back_off(ctx) {
                    return Err((crashed, Some(body)));
                }
                child.publish_restart(crashed);
                self.reinit(body, ctx)
            }
            ChildStrategy::RestForOne => self.restart_rest(body, ctx, last_panic),
        }
    }

    /// Rest-for-one: stops the children started after this one (newest first), restarts
    /// this one, then them (in start order). One such restart at a time per session;
    /// a child waiting for its turn obeys the one in progress instead, if it is asked.
    fn restart_rest(
        &mut self,
        body: S::Body,
        ctx: &mut SessionContext<M>,
        last_panic: Option<String>,
    ) -> std::result::Result<S::Body, (ExitReason, Option<S::Body>)> {
        let child = self.child;
        let tree = child.tree();
        let crashed = ended(last_panic.as_deref());
        let cell = &child.cell;
        let stop = cell.postbox.signals().stop().woken().clone();
        let token = tree.token();
        select! {
            recv(token) -> _ => {}
            recv(cell.orders.1) -> order => {
                // A restart of an earlier child includes this one: obey it.
                debug_assert!(matches!(order, Ok(Order::Park)));
                return self.park(body, ctx);
            }
            recv(stop) -> _ => return Err((crashed, Some(body))),
        }
        let _token = TokenGuard(tree);
        if !tree.admit_restart() {
            return Err(self.gave_up(crashed, last_panic, body));
        }
        let later = tree.started_after(cell.index);
        for other in later.iter().rev() {
            if let Err(reason) = park(other, cell.stop_timeout) {
                child.give_up(ExitReason::Panicked { message: reason });
                return Err((crashed, Some(body)));
            }
        }
        if self.back_off(ctx) {
            return Err((crashed, Some(body)));
        }
        child.publish_restart(crashed);
        let body = self.reinit(body, ctx)?;
        for other in &later {
            if !go(other, cell) {
                let reason = format!("child {:?} could not be restarted", other.name);
                child.give_up(ExitReason::Panicked { message: reason });
                break;
            }
        }
        Ok(body)
    }

    /// Ends this run for another child's rest-for-one restart: tells the driver it
    /// parked, waits for its go (or a stop), then restarts.
    fn park(
        &mut self,
        body: S::Body,
        ctx: &mut SessionContext<M>,
    ) -> std::result::Result<S::Body, (ExitReason, Option<S::Body>)> {
        let cell = &self.child.cell;
        let _ = cell.acks.0.send(Ack::Parked);
        let stop = cell.postbox.signals().stop().woken().clone();
        loop {
            select! {
                recv(cell.orders.1) -> order => match order {
                    Ok(Order::Go) => break,
                    // Parked already; a second park order changes nothing.
                    _ => continue,
                },
                recv(stop) -> _ => return Err((ExitReason::Stopped, Some(body))),
            }
        }
        self.child.publish_restart(ExitReason::Stopped);
        let restarted = self.reinit(body, ctx);
        let _ = cell.acks.0.send(Ack::Ready(restarted.is_ok()));
        restarted
    }

    /// Makes the next body and runs its `init`; a failure ends the child, and the
    /// session with it (a tree that cannot restart a child gives up).
    fn reinit(
        &mut self,
        body: S::Body,
        ctx: &mut SessionContext<M>,
    ) -> std::result::Result<S::Body, (ExitReason, Option<S::Body>)> {
        ctx.set_restarts(self.child.cell.restarts());
        ctx.renew_run();
        let mut body = match make(self.bodies, Some(body)) {
            Ok(body) => body,
            Err(message) => {
                self.child.give_up(ExitReason::Panicked {
                    message: format!("child {:?}: {message}", self.child.cell.name),
                });
                return Err((ExitReason::Panicked { message }, None));
            }
        };
        match init(&mut body, ctx) {
            Ok(()) => Ok(body),
            Err(Ending::InitFailed(reason) | Ending::Panicked(reason)) => {
                let name = &self.child.cell.name;
                self.child.give_up(ExitReason::InitFailed {
                    reason: format!("child {name:?}: {reason}"),
                });
                Err((ExitReason::InitFailed { reason }, Some(body)))
            }
            Err(Ending::Returned) => unreachable!("init does not end with a return"),
        }
    }

    /// Waits the policy's backoff before a restart; returns whether a stop came.
    fn back_off(&self, ctx: &mut SessionContext<M>) -> bool {
        let tree = self.child.tree();
        let seed = self.child.cell.index ^ u64::from(self.child.cell.restarts() + 1);
        let delay = tree
            .policy()
            .backoff_rule()
            .delay(tree.restarts_in_window(), seed);
        if !delay.is_zero() {
            ctx.renew_run();
            ctx.wait_for_stop_timeout(delay);
        }
        self.child.cell.stop_requested()
    }

    /// The restart intensity is spent: the session gives up.
    fn gave_up(
        &self,
        crashed: ExitReason,
        last_panic: Option<String>,
        body: S::Body,
    ) -> (ExitReason, Option<S::Body>) {
        let restarts = self.child.tree().restarts();
        let name = &self.child.cell.name;
        let last_panic = last_panic.map(|message| child_panicked(name, &message));
        self.child.give_up(ExitReason::RestartLimit {
            restarts,
            last_panic,
        });
        (crashed, Some(body))
    }
}

/// Publishes a child's event if its session began (see [`ChildThread::publish`]).
fn publish<M>(shared: &Shared<M>, session: &SessionCell<M>, event: impl FnOnce() -> SessionEvent) {
    let events = &shared.events;
    events.publish_if(|| session.has_begun().then(event));
}

/// How a child's run ended, for its events: a panic, or a return.
fn ended(last_panic: Option<&str>) -> ExitReason {
    match last_panic {
        Some(message) => ExitReason::Panicked {
            message: message.to_owned(),
        },
        None => ExitReason::Normal,
    }
}

/// A child's panic, as its session reports it.
pub(crate) fn child_panicked(name: &str, message: &str) -> String {
    format!("child {name:?} panicked: {message}")
}

/// How a run ended once a stop was requested.
fn stopped(ending: Ending) -> ExitReason {
    match ending {
        Ending::Panicked(message) => ExitReason::Panicked { message },
        _ => ExitReason::Stopped,
    }
}

/// Orders `other` to park and waits, up to `timeout`, until it did (or ended).
fn park<M>(other: &ChildCell<M>, timeout: Duration) -> std::result::Result<(), String> {
    let _ = other.orders.0.send(Order::Park);
    other.postbox.signals().raise_run();
    let wait = Wait::at_most(timeout);
    let parked = match wait {
        Wait::No => false,
        Wait::Forever => select! {
            recv(other.acks.1) -> _ => true,
            recv(other.done) -> _ => true,
        },
        Wait::Until(deadline) => select! {
            recv(other.acks.1) -> _ => true,
            recv(other.done) -> _ => true,
            default(deadline.saturating_duration_since(Instant::now())) => false,
        },
    };
    if parked {
        Ok(())
    } else {
        Err(format!(
            "child {:?} did not stop for a restart within {timeout:?}",
            other.name
        ))
    }
}

/// Tells a parked child to restart and waits until its `init` ended (or it ended, or
/// the driver `me` is stopped); returns whether it restarted.
fn go<M>(other: &ChildCell<M>, me: &ChildCell<M>) -> bool {
    let _ = other.orders.0.send(Order::Go);
    let stop = me.postbox.signals().stop().woken();
    select! {
        recv(other.acks.1) -> ack => matches!(ack, Ok(Ack::Ready(true))),
        recv(other.done) -> _ => false,
        recv(stop) -> _ => true,
    }
}

/// Gives the restart token back, on every way out.
struct TokenGuard<'a, M>(&'a Tree<M>);

impl<M> Drop for TokenGuard<'_, M> {
    fn drop(&mut self) {
        self.0.give_back_token();
    }
}

/// Ends the child when dropped: on its thread, after all of its work and user code's
/// thread-local destructors.
struct ChildEndGuard<M> {
    shared: Arc<Shared<M>>,
    session: Arc<SessionCell<M>>,
    cell: Arc<ChildCell<M>>,
    answer: Sender<StartAnswer>,
    done: Option<Sender<Infallible>>,
}

impl<M> Drop for ChildEndGuard<M> {
    fn drop(&mut self) {
        let cell = &self.cell;
        quietly(|| cell.postbox.close());
        let exit = cell.exit().unwrap_or_else(|| {
            cell.report(ExitReason::Panicked {
                message: "the child thread ended without a report".into(),
            })
        });
        let tree = self.session.tree();
        tree.remove(cell);
        let (id, name) = (cell.session, &cell.name);
        if cell.began.load(Ordering::Acquire) {
            tree.record_end(exit.clone());
            publish(&self.shared, &self.session, || SessionEvent::ChildExited {
                session: self.session.session(),
                child: name.clone(),
                reason: exit.reason.clone(),
            });
            quietly(|| log::info!("session {id}: child {name:?} ended: {}", exit.reason));
        } else {
            let reason = match &exit.reason {
                ExitReason::InitFailed { reason } => reason.clone(),
                other => other.to_string(),
            };
            let _ = self.answer.try_send(Err(reason));
        }
        drop(self.done.take());
        // The session's stop goes on with the next child, or its body.
        if self.session.stop_requested() {
            self.session.advance_stop();
        }
    }
}
