//! A session's tree: its children (named workers on threads of their own), the
//! [`ChildStrategy`] that restarts them, and the restart intensity they share with the
//! session's body.
//!
//! The tree is kept in the session's cell. Its lock guards only the table of running
//! children (start order and names) and is held for table work alone; every wait for a
//! child (its stop, its park for a restart) happens outside it.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Mutex, RwLock};

use crate::child::ChildCell;
use crate::mailbox::Postbox;
use crate::restart::Intensity;
use crate::wait::Wait;
use crate::{ChildExit, Error, ExitReason, RestartPolicy, Result, SessionId};

/// The default of [`SupervisorBuilder::max_children`](crate::SupervisorBuilder::max_children):
/// how many children one session may run at once.
pub const DEFAULT_MAX_CHILDREN: usize = 16;

/// How a session's children are restarted when one of them crashes, as OTP's
/// supervisor strategies.
///
/// Every child restart counts against the session's restart intensity (its
/// [`RestartPolicy`]), together with the restarts of the body; past it, the session
/// gives up: all its children are stopped and it ends with
/// [`ExitReason::RestartLimit`]. A child returns or crashes as its session's policy
/// says ([`Restart`](crate::Restart)): a temporary child is never restarted and its
/// end touches nobody else; a transient one that returns just ends.
///
/// A crash of the session's body itself stops all of its children (newest first) and
/// restarts the body as usual, whose `init` starts them again, whatever the strategy.
///
/// Chosen per supervisor with
/// [`SupervisorBuilder::child_strategy`](crate::SupervisorBuilder::child_strategy), per
/// session with [`Start::child_strategy`](crate::Start::child_strategy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChildStrategy {
    /// A crashing child ends the run of the session's body, whose children are then all
    /// stopped (newest first); then the session restarts: its `init` runs again and
    /// starts its children again. For children that only make sense together.
    #[default]
    OneForAll,
    /// Only the crashing child is restarted, on its own thread, with its mailbox kept.
    OneForOne,
    /// The crashing child and every child started after it: those are stopped newest
    /// first, the crashed one is restarted, then they are restarted in start order.
    /// For children that depend on the ones started before them.
    RestForOne,
}

/// Why the tree ended a run of the session's body.
#[derive(Clone, Debug)]
pub(crate) enum Failure {
    /// A child crashed (or, permanent, returned: `last_panic` is `None`) under
    /// [`ChildStrategy::OneForAll`]: the session restarts.
    ChildCrashed {
        child: String,
        last_panic: Option<String>,
    },
    /// The tree gave up (the restart intensity ran out, or a restart failed): the
    /// session ends with this reason.
    GaveUp(ExitReason),
}

/// The children of one session.
#[derive(Debug)]
pub(crate) struct Tree<M> {
    session: SessionId,
    strategy: ChildStrategy,
    max_children: usize,
    policy: RestartPolicy,
    live: RwLock<Live<M>>,
    intensity: Mutex<Intensity>,
    /// Restarts of the body and of the children, all told.
    restarts: AtomicU32,
    failure: Mutex<Option<Failure>>,
    /// Every child started since the body's last restart, ended or not: to join.
    spawned: Mutex<Vec<Arc<ChildCell<M>>>>,
    /// How the children ended since the body's last restart.
    ended: Mutex<Vec<ChildExit>>,
    /// One restart of several children at a time (rest-for-one): whoever holds the
    /// token drives it. Made for that strategy only.
    token: Option<(Sender<()>, Receiver<()>)>,
    next_index: AtomicU64,
    /// When the session's stop was requested: its children's stop timeout counts from
    /// then, as the stop's does.
    stop_asked: Mutex<Option<Instant>>,
}

/// The running children: in start order, and by name.
#[derive(Debug)]
struct Live<M> {
    order: Vec<Arc<ChildCell<M>>>,
    by_name: HashMap<String, Arc<ChildCell<M>>>,
}

impl<M> Tree<M> {
    pub(crate) fn new(
        session: SessionId,
        strategy: ChildStrategy,
        max_children: usize,
        policy: RestartPolicy,
    ) -> Tree<M> {
        let token = (strategy == ChildStrategy::RestForOne).then(|| {
            let (token_tx, token_rx) = crossbeam_channel::bounded(1);
            let _ = token_tx.send(());
            (token_tx, token_rx)
        });
        Tree {
            session,
            strategy,
            max_children,
            policy,
            live: RwLock::new(Live {
                order: Vec::new(),
                by_name: HashMap::new(),
            }),
            intensity: Mutex::new(Intensity::new(&policy)),
            restarts: AtomicU32::new(0),
            failure: Mutex::new(None),
            spawned: Mutex::new(Vec::new()),
            ended: Mutex::new(Vec::new()),
            token,
            next_index: AtomicU64::new(0),
            stop_asked: Mutex::new(None),
        }
    }

    pub(crate) fn strategy(&self) -> ChildStrategy {
        self.strategy
    }

    pub(crate) fn policy(&self) -> &RestartPolicy {
        &self.policy
    }

    /// The start order of the next child.
    pub(crate) fn next_index(&self) -> u64 {
        self.next_index.fetch_add(1, Ordering::Relaxed)
    }

    /// Admits a new child: its name unused, the limit not reached; in one write
    /// section. Also keeps it to join later.
    pub(crate) fn insert(&self, child: &Arc<ChildCell<M>>) -> Result<()> {
        let id = self.session;
        {
            let mut live = self.live.write();
            if live.by_name.contains_key(child.name()) {
                let child = child.name().to_owned();
                return Err(Error::ChildExists { id, child });
            }
            if live.order.len() >= self.max_children {
                let max = self.max_children;
                return Err(Error::ChildLimitReached { id, max });
            }
            live.order.push(Arc::clone(child));
            live.by_name
                .insert(child.name().to_owned(), Arc::clone(child));
        }
        self.spawned.lock().push(Arc::clone(child));
        Ok(())
    }

    /// Takes an ended child out of the table; returns whether it was there.
    pub(crate) fn remove(&self, child: &Arc<ChildCell<M>>) -> bool {
        let mut live = self.live.write();
        let Some(at) = live.order.iter().position(|c| Arc::ptr_eq(c, child)) else {
            return false;
        };
        live.order.remove(at);
        live.by_name.remove(child.name());
        true
    }

    /// The running child of this name.
    pub(crate) fn find(&self, name: &str) -> Option<Arc<ChildCell<M>>> {
        self.live.read().by_name.get(name).cloned()
    }

    /// The running children, in start order.
    pub(crate) fn children(&self) -> Vec<Arc<ChildCell<M>>> {
        self.live.read().order.clone()
    }

    /// The running children started after `index`, in start order.
    pub(crate) fn started_after(&self, index: u64) -> Vec<Arc<ChildCell<M>>> {
        let live = self.live.read();
        live.order
            .iter()
            .filter(|c| c.index() > index)
            .cloned()
            .collect()
    }

    /// The newest running child.
    pub(crate) fn newest(&self) -> Option<Arc<ChildCell<M>>> {
        self.live.read().order.last().cloned()
    }

    /// The next step of a session's stop: children stop newest first, one at a time,
    /// then the body's run ends. Called when the stop is requested and again at each
    /// child's end; never blocks.
    pub(crate) fn advance_stop(&self, session: &Postbox<M>) {
        let asked = *self.stop_asked.lock().get_or_insert_with(Instant::now);
        match self.newest() {
            Some(child) => child.request_stop_since(asked),
            None => session.end_run(),
        }
    }

    /// Stops every child, newest first, each waited for (woken by its end, however long
    /// it takes: a lingering child keeps its session), then joins them all. On the
    /// session thread, between runs of the body and at its end.
    pub(crate) fn stop_children(&self) {
        while let Some(child) = self.newest() {
            child.request_stop_since(Instant::now());
            child.wait_end(Wait::Forever);
            // Its end guard took it out of the table; if it never began, its start did.
            self.remove(&child);
        }
        let spawned = std::mem::take(&mut *self.spawned.lock());
        for child in spawned {
            child.join();
        }
    }

    /// Joins the children that ended, without waiting for any still at work: a session
    /// that starts many short-lived children does not keep their threads.
    pub(crate) fn reap(&self) {
        let mut spawned = self.spawned.lock();
        spawned.retain(|child| !child.try_join());
    }

    /// Counts a restart against the shared intensity; `false` if it is spent.
    pub(crate) fn admit_restart(&self) -> bool {
        let admitted = self.intensity.lock().admit(Instant::now());
        if admitted {
            self.restarts.fetch_add(1, Ordering::Relaxed);
        }
        admitted
    }

    /// How many restarts the intensity window holds now.
    pub(crate) fn restarts_in_window(&self) -> u32 {
        self.intensity.lock().in_window()
    }

    /// Restarts of the body and the children so far.
    pub(crate) fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Records why the tree ends the body's run; the first failure wins.
    pub(crate) fn fail(&self, failure: Failure) {
        let mut slot = self.failure.lock();
        if slot.is_none() {
            *slot = Some(failure);
        }
    }

    pub(crate) fn take_failure(&self) -> Option<Failure> {
        self.failure.lock().take()
    }

    pub(crate) fn record_end(&self, exit: ChildExit) {
        self.ended.lock().push(exit);
    }

    /// How the children ended since the body's last restart.
    pub(crate) fn ends(&self) -> Vec<ChildExit> {
        self.ended.lock().clone()
    }

    /// Forgets the ends of the last run's children: the body restarts.
    pub(crate) fn clear_ends(&self) {
        self.ended.lock().clear();
    }

    /// The rest-for-one restart token: received to take it, given back after.
    pub(crate) fn token(&self) -> Receiver<()> {
        match &self.token {
            Some((_, token)) => token.clone(),
            // Not rest-for-one: nobody waits for a token.
            None => crossbeam_channel::never(),
        }
    }

    pub(crate) fn give_back_token(&self) {
        if let Some((token, _)) = &self.token {
            let _ = token.try_send(());
        }
    }
}

thread_local! {
    /// The session this thread works for (its cell's address), on a session's thread
    /// and on its children's threads; 0 elsewhere.
    static OWNER: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as working for the session whose cell is at `owner`.
pub(crate) fn set_owner(owner: usize) {
    let _ = OWNER.try_with(|o| o.set(owner));
}

/// Whether the current thread works for the session whose cell is at `owner`: its own
/// thread or a child's. Such a thread cannot wait for the session's end. The address
/// stays the session's while the thread runs, which holds the cell.
pub(crate) fn is_owned_by(owner: usize) -> bool {
    OWNER.try_with(Cell::get).unwrap_or(0) == owner
}
