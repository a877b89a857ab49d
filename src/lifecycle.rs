//! A session thread's whole life: spawn, the start handshake, the end guard
//! (unregister, report, event, wake), waiting for the end, joining and reaping.
//!
//! The end guard is the one place a session ends. It is armed first thing on the
//! session thread, as a thread-local value, so it runs whether the thread's work
//! returns or unwinds, and after the destructors of every thread-local that user code
//! set (thread-locals are destroyed newest first). So a session stays registered, and
//! its path reserved, until nothing of user code runs on its thread any more; whoever
//! waits for the end is woken by the guard's last act, and a wait never depends on the
//! thread reaching some line after user code.

use std::any::Any;
use std::cell::RefCell;
use std::convert::Infallible;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender};
use parking_lot::Mutex;

use crate::attribution::in_session_span;
use crate::boundary::{catch, drop_quietly, quietly};
use crate::cell::{Ended, SessionCell};
use crate::event::Subscribers;
use crate::idle::{IdleWatch, Watched};
use crate::mailbox::{mailbox, Inbox};
use crate::pool::{Pool, Seat, HAND_OVER_SPIN};
use crate::registry::{Admission, Registry};
use crate::restart::{first_init, supervise, Bodies};
use crate::tree::{set_owner, ChildStrategy, Tree};
use crate::wait::Wait;
use crate::{
    AdmissionPolicy, Error, ExitReason, ExitReport, RestartPolicy, Result, Session, SessionContext,
    SessionEvent,
};

/// What a supervisor shares with its session threads.
pub(crate) struct Shared<M> {
    pub(crate) registry: Registry<Arc<SessionCell<M>>>,
    /// Sessions whose end guard ran and whose thread may still need a join.
    pub(crate) ended: Mutex<Vec<Arc<SessionCell<M>>>>,
    pub(crate) events: Subscribers,
    pub(crate) next_seq: AtomicU64,
    pub(crate) stop_timeout: Duration,
    pub(crate) stack_size: Option<usize>,
    pub(crate) mailbox_capacity: Option<usize>,
    pub(crate) policy: RestartPolicy,
    pub(crate) child_strategy: ChildStrategy,
    pub(crate) max_children: usize,
    /// How long a start waits for `init`; `None`: as long as it takes.
    pub(crate) init_timeout: Option<Duration>,
    /// Warm threads, if the supervisor keeps any.
    pub(crate) pool: Option<Arc<Pool>>,
    /// What a start does at the limit.
    pub(crate) admission: AdmissionPolicy,
    /// Stops sessions that are idle for their idle timeout.
    pub(crate) idle: IdleWatch,
    /// The idle timeout of a start that chose none.
    pub(crate) idle_timeout: Option<Duration>,
}

/// The choices of one start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Options {
    pub(crate) policy: RestartPolicy,
    pub(crate) strategy: ChildStrategy,
    /// Stopped after this long without activity, if set.
    pub(crate) idle_timeout: Option<Duration>,
}

/// How the first `init` went, told to the start by the session thread.
type StartAnswer = Result<(), String>;

impl<M: Send + 'static> Shared<M> {
    /// Registers `session`, spawns its thread, and waits until its first `init` ended.
    /// On any failure the entry is gone before this returns.
    pub(crate) fn start<S: Bodies<M>>(
        self: &Arc<Self>,
        session: Session,
        bodies: S,
        options: Options,
    ) -> Result<Arc<SessionCell<M>>> {
        let Options {
            policy,
            strategy,
            idle_timeout,
        } = options;
        let id = session.id();
        policy.check(id)?;
        self.reap_finished();
        // On a warm thread the waits of the hand-over (this start's for `init`, the
        // body's for its stop, a stop's for the end) spin briefly: see `HAND_OVER_SPIN`.
        let spin = match self.pool {
            Some(_) => HAND_OVER_SPIN,
            None => Duration::ZERO,
        };
        let (postbox, inbox) = mailbox(self.mailbox_capacity, spin);
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let tree = Tree::new(id, strategy, self.max_children, policy);
        let order = (seq, self.stop_timeout, idle_timeout);
        let (cell, done) = SessionCell::new(session.clone(), order, postbox, tree);
        let cell = Arc::new(cell);
        if idle_timeout.is_some() {
            let started = self.idle.start(self.stop_timeout);
            started.map_err(|source| Error::Spawn { id, source })?;
        }
        let session = self.admit(session, &cell)?;
        let (answer_tx, answer_rx) = crossbeam_channel::bounded(1);
        let thread = SessionThread {
            shared: Arc::clone(self),
            cell: Arc::clone(&cell),
            session: session.clone(),
            inbox,
            answer: answer_tx,
        };
        self.spawn(thread, done, bodies)?;
        // Answered by the session thread after init, or by its end guard once the
        // entry is gone.
        let wait = self.init_timeout.map_or(Wait::Forever, Wait::at_most);
        let answer = match wait.recv_after_spin(&answer_rx, spin) {
            Err(RecvTimeoutError::Timeout) if cell.give_up_start() => {
                // It will not run; its entry goes when its thread ends.
                cell.request_stop();
                let timeout = self.init_timeout.unwrap_or(Duration::MAX);
                return Err(Error::InitTimeout { id, timeout });
            }
            // It began as the wait ran out: its answer is on the way.
            Err(RecvTimeoutError::Timeout) => answer_rx.recv().map_err(|_| ()),
            other => other.map_err(|_| ()),
        };
        let reason = match answer {
            Ok(Ok(())) => {
                if idle_timeout.is_some() {
                    self.idle.watch(Arc::downgrade(&cell) as Weak<dyn Watched>);
                }
                return Ok(cell);
            }
            Ok(Err(reason)) => reason,
            Err(()) => "the session thread ended before init finished".to_owned(),
        };
        cell.await_end(Wait::at_most(self.stop_timeout));
        Err(Error::StartFailed { id, reason })
    }

    /// Registers a session, as the admission policy says: at the limit, an evicting
    /// policy stops a running session and registers this one in its place.
    fn admit(&self, session: Session, cell: &Arc<SessionCell<M>>) -> Result<Session> {
        if !self.admission.evicts() {
            return self.registry.insert(session, Arc::clone(cell));
        }
        let id = session.id();
        let policy = self.admission;
        let slot = Arc::clone(cell);
        let admitted = self
            .registry
            .insert_or_claim(session, slot, |cells| policy.claim(cells))?;
        let (victim, place) = match admitted {
            Admission::Inserted(session) => return Ok(session),
            Admission::Claimed { victim, place } => (victim, place),
        };
        let victim_id = victim.id();
        quietly(|| log::info!("session {id}: evicting session {victim_id} to make room"));
        victim.request_stop();
        match victim.await_end(Wait::at_most(self.stop_timeout)) {
            Ended::Yes => place.insert(),
            Ended::TimedOut => {
                victim.abandon();
                let timeout = self.stop_timeout;
                quietly(|| {
                    log::warn!("session {id}: not started, evicted session {victim_id} did not stop within {timeout:?}")
                });
                Err(Error::EvictionTimeout {
                    id,
                    victim: victim_id,
                    timeout,
                })
            }
        }
    }

    /// Spawns the session thread; unregisters the session if that fails, even if
    /// dropping the unspawned body panics (it is user code).
    fn spawn<S: Bodies<M>>(
        &self,
        thread: SessionThread<M>,
        done: Sender<Infallible>,
        bodies: S,
    ) -> Result<()> {
        let cell = Arc::clone(&thread.cell);
        let stack_size = self.stack_size;
        let pool = self.pool.clone();
        let spawn = move || match pool {
            Some(pool) => thread.run_warm(&pool, done, bodies),
            None => thread.spawn(stack_size, done, bodies),
        };
        match catch_unwind(AssertUnwindSafe(spawn)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => {
                self.unregister(&cell);
                let id = cell.id();
                Err(Error::Spawn { id, source })
            }
            Err(payload) => {
                self.unregister(&cell);
                resume_unwind(payload)
            }
        }
    }
}

impl<M> Shared<M> {
    /// Removes this incarnation's entry, if it is still the registered one.
    pub(crate) fn unregister(&self, cell: &Arc<SessionCell<M>>) {
        self.registry
            .remove_if(cell.id(), |slot| Arc::ptr_eq(slot, cell));
    }

    /// Joins the threads of sessions that ended, whose end guard ran. Never blocks on
    /// a thread still at work: the list is taken out of its lock before any join.
    pub(crate) fn reap_finished(&self) {
        let ended = std::mem::take(&mut *self.ended.lock());
        if ended.is_empty() {
            return;
        }
        let left: Vec<_> = ended.into_iter().filter(|cell| !cell.try_join()).collect();
        self.ended.lock().extend(left);
    }

    /// Joins every ended thread, waiting for each at most as `wait` allows.
    pub(crate) fn reap_until(&self, wait: Wait) {
        let ended = std::mem::take(&mut *self.ended.lock());
        let left: Vec<_> = ended
            .into_iter()
            .filter(|cell| cell.await_end(wait) == Ended::TimedOut)
            .collect();
        self.ended.lock().extend(left);
    }

    /// The end of a session: queue for a join, unregister (with its `Exited` event, if
    /// it began), log. Returns the report.
    fn finish(&self, cell: &Arc<SessionCell<M>>) -> ExitReport {
        // Queued for a join before it leaves the registry, so a shutdown running
        // meanwhile finds it in one place or the other, never in neither.
        self.ended.lock().push(Arc::clone(cell));
        if cell.has_begun() {
            // Published with the removal, so no subscriber sees the next owner of the
            // path start before this session's end.
            self.events.publish_with(|| {
                self.unregister(cell);
                let ExitReport {
                    session, reason, ..
                } = cell.exit_report();
                SessionEvent::Exited { session, reason }
            });
        } else {
            self.unregister(cell);
        }
        let report = cell.exit_report();
        quietly(|| log_exit(&report));
        report
    }
}

fn log_exit(report: &ExitReport) {
    let (id, reason) = (report.id(), report.reason());
    match reason {
        ExitReason::Normal
        | ExitReason::Stopped
        | ExitReason::Idle { .. }
        | ExitReason::Evicted => {
            log::info!("session {id} ended: {reason}");
        }
        ExitReason::Panicked { .. } => log::warn!("session {id} ended: {reason}"),
        _ => log::error!("session {id} ended: {reason}"),
    }
}

/// Everything a session thread needs, moved into it.
struct SessionThread<M> {
    shared: Arc<Shared<M>>,
    cell: Arc<SessionCell<M>>,
    session: Session,
    inbox: Inbox<M>,
    answer: Sender<StartAnswer>,
}

impl<M: Send + 'static> SessionThread<M> {
    /// Spawns the thread, named after the session, if the process has room for it.
    fn spawn<S: Bodies<M>>(
        self,
        stack_size: Option<usize>,
        done: Sender<Infallible>,
        bodies: S,
    ) -> std::io::Result<()> {
        crate::limits::take_thread()?;
        let mut builder = thread::Builder::new().name(self.session.name().to_owned());
        if let Some(bytes) = stack_size {
            builder = builder.stack_size(bytes);
        }
        let cell = Arc::clone(&self.cell);
        let handle = builder.spawn(move || self.main(done, bodies, None))?;
        cell.set_join_handle(handle);
        Ok(())
    }

    /// Hands the session to a warm thread (a new one if none is parked). The pool
    /// joins its threads, so the session has none to join.
    fn run_warm<S: Bodies<M>>(
        self,
        pool: &Arc<Pool>,
        done: Sender<Infallible>,
        bodies: S,
    ) -> std::io::Result<()> {
        let cell = Arc::clone(&self.cell);
        cell.set_joined_by_pool();
        let job = Box::new(move |seat| self.main(done, bodies, Some(seat)));
        pool.run(job).map_err(|(error, job)| {
            // Dropped here, in the start's panic boundary: it holds the bodies.
            drop(job);
            error
        })
    }

    /// The session's work, from the first to the last instruction on its thread. On a
    /// warm thread (`seat` is there) the end guard runs when this returns; on a thread
    /// of its own, when the thread ends.
    fn main<S: Bodies<M>>(self, done: Sender<Infallible>, bodies: S, seat: Option<Seat>) {
        let began = Instant::now();
        crate::panics::mark_session_thread();
        set_owner(self.cell.owner());
        self.cell.set_thread();
        let guard = EndGuard {
            shared: Arc::clone(&self.shared),
            cell: Arc::clone(&self.cell),
            answer: self.answer.clone(),
            done: Some(done),
            seat,
        };
        let _guard = if guard.seat.is_some() {
            Some(guard)
        } else {
            arm(guard)
        };
        let cell = Arc::clone(&self.cell);
        let session = self.session.clone();
        let live = || in_session_span(&session, None, || self.live(bodies));
        let (reason, restarts) = catch(live).unwrap_or_else(|message| {
            let message = format!("the session thread failed: {message}");
            (ExitReason::Panicked { message }, 0)
        });
        cell.set_exit(ExitReport {
            session: cell.session(),
            reason: cell.exit_reason(reason),
            restarts,
            run_time: began.elapsed(),
            children: cell.tree().ends(),
        });
    }

    /// Starts the body, runs it until it ends for good, stops its children, and drops
    /// the body and the mailbox, each inside a panic boundary.
    fn live<S: Bodies<M>>(self, mut bodies: S) -> (ExitReason, u32) {
        let shared = Arc::clone(&self.shared);
        let cell = Arc::clone(&self.cell);
        let mut ctx = SessionContext::for_session(self.session, self.inbox, shared, cell);
        let tree = self.cell.tree();
        let (reason, body) = match first_init(&mut bodies, &ctx) {
            Err((reason, body)) => {
                tree.stop_children();
                (ExitReason::InitFailed { reason }, body)
            }
            Ok(body) => {
                if began(&self.shared.events, &self.cell, &self.answer, ctx.session()) {
                    supervise(&mut bodies, body, &mut ctx, tree, &self.shared.events)
                } else {
                    let reason = "init finished after the start gave up waiting".to_owned();
                    (ExitReason::InitFailed { reason }, Some(body))
                }
            }
        };
        tree.stop_children();
        let restarts = ctx.restarts();
        // The mailbox goes first: later sends fail and hand their message back, and
        // queued calls learn at once that no reply will come.
        self.cell.close_mailbox();
        ctx.discard_messages();
        drop_quietly(ctx);
        drop_quietly(body);
        drop_quietly(bodies);
        (reason, restarts)
    }
}

/// The first `init` went well: the session runs, and its start may return; `false` if
/// the start gave up waiting first (the session then ends without running).
fn began<M>(
    events: &Subscribers,
    cell: &SessionCell<M>,
    answer: &Sender<StartAnswer>,
    session: &Session,
) -> bool {
    // Decided with the publish: a child's event, published only once its session
    // began, never comes before `Started`. A start that gave up waiting decided first.
    let mut begins = false;
    events.publish_if(|| {
        begins = cell.try_begin();
        begins.then(|| SessionEvent::Started {
            session: session.clone(),
        })
    });
    if !begins {
        return false;
    }
    cell.tracker().began();
    let (id, path) = (session.id(), session.project_path().display());
    quietly(|| log::info!("session {id} started: {:?} at {path}", session.name()));
    // The start waits on the other end.
    let _ = answer.send(Ok(()));
    true
}

thread_local! {
    /// The end guard of the session this thread runs.
    static END_GUARD: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Arms the end guard as this thread's first thread-local, so that it is destroyed
/// last. Returns it if there is no thread-local storage to arm it in (which a new
/// thread always has): the caller then keeps it until its own end.
pub(crate) fn arm<G: 'static>(guard: G) -> Option<G> {
    let mut guard = Some(guard);
    let _ = END_GUARD.try_with(|slot| {
        let guard = guard.take().map(|g| Box::new(g) as Box<dyn Any>);
        *slot.borrow_mut() = guard;
    });
    guard
}

/// Ends the session when dropped: on the session thread, after all of its work and
/// user code's thread-local destructors, whether they returned or unwound.
struct EndGuard<M> {
    shared: Arc<Shared<M>>,
    cell: Arc<SessionCell<M>>,
    answer: Sender<StartAnswer>,
    /// Dropped as the guard's last act: wakes everyone waiting for the end.
    done: Option<Sender<Infallible>>,
    /// On a warm thread: gives the thread back to the pool after a clean end.
    seat: Option<Seat>,
}

impl<M> Drop for EndGuard<M> {
    fn drop(&mut self) {
        quietly(|| self.cell.close_mailbox());
        // Done already unless the thread's own work failed: no child outlives its
        // session's entry.
        quietly(|| self.cell.tree().stop_children());
        let report = self.shared.finish(&self.cell);
        if !self.cell.has_begun() {
            // Answered only now, so the start never sees a half-registered entry.
            let _ = self.answer.try_send(Err(start_failure(&report.reason)));
        }
        if let Some(seat) = self.seat.take() {
            // Before the wake: a start right after this stop finds the thread parked.
            set_owner(0);
            if self.cell.may_reuse_thread() {
                seat.give_back();
            }
        }
        drop(self.done.take());
    }
}

/// Why a first start failed, for `Error::StartFailed`.
fn start_failure(reason: &ExitReason) -> String {
    match reason {
        ExitReason::InitFailed { reason } => reason.clone(),
        other => other.to_string(),
    }
}
