//! Lifecycle events: [`SessionEvent`] and the [`Subscription`] that receives them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;

use crate::wait::Wait;
use crate::{ExitReason, Session, SessionId};

/// How many events a subscriber's queue holds before the oldest are dropped.
pub const EVENT_QUEUE_CAPACITY: usize = 1024;

/// Something that happened to a session. Each session's events come in order:
/// `Started`, any `Restarted` (and its children's `ChildRestarted` and `ChildExited`),
/// then `Exited`; a start that failed has none. A child's events come before the
/// `Exited` of its session.
///
/// Every event carries the session's metadata (a cheap copy), so an observer can tell
/// which session it is about by name and directory even after it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The session's first `init` finished: it runs.
    Started {
        /// The session, as started.
        session: Session,
    },
    /// The body ended and will run again after `delay` (the restart policy's backoff):
    /// published when the wait begins, so an observer sees a crash loop as it happens.
    /// [`Restarted`](Self::Restarted) follows once the body runs again, unless a stop
    /// comes during the wait (then [`Exited`](Self::Exited) follows).
    Restarting {
        /// The session, as started.
        session: Session,
        /// How many restarts there will have been, this one included.
        restarts: u32,
        /// How long the session waits before it runs the body again.
        delay: Duration,
        /// How the previous run ended.
        reason: ExitReason,
    },
    /// The body ended and is run again.
    Restarted {
        /// The session, as started.
        session: Session,
        /// How many restarts there have been, this one included.
        restarts: u32,
        /// How the previous run ended.
        reason: ExitReason,
    },
    /// A child of the session was restarted in place (one-for-one, rest-for-one).
    ChildRestarted {
        /// The session, as started.
        session: Session,
        /// The child's name.
        child: String,
        /// How many restarts the child has had, this one included.
        restarts: u32,
        /// How the child's previous run ended ([`ExitReason::Stopped`] for a child
        /// restarted because an earlier one crashed, rest-for-one).
        reason: ExitReason,
    },
    /// A child of the session ended for good (its session restarts or ends, it was
    /// not restarted, or its session stopped it).
    ChildExited {
        /// The session, as started.
        session: Session,
        /// The child's name.
        child: String,
        /// Why it ended.
        reason: ExitReason,
    },
    /// The session ended and was unregistered.
    Exited {
        /// The session, as it was registered last (a rename included).
        session: Session,
        /// Why it ended.
        reason: ExitReason,
    },
}

impl SessionEvent {
    /// The session the event is about.
    #[must_use]
    pub fn session(&self) -> &Session {
        match self {
            SessionEvent::Started { session }
            | SessionEvent::Restarting { session, .. }
            | SessionEvent::Restarted { session, .. }
            | SessionEvent::ChildRestarted { session, .. }
            | SessionEvent::ChildExited { session, .. }
            | SessionEvent::Exited { session, .. } => session,
        }
    }

    /// The id of the session the event is about.
    #[must_use]
    pub fn id(&self) -> SessionId {
        self.session().id()
    }
}

/// A stream of every [`SessionEvent`] of one supervisor from the moment of subscribing.
///
/// Each subscription has its own queue of [`EVENT_QUEUE_CAPACITY`] events. A subscriber
/// that falls behind never slows sessions down: when its queue is full, the oldest event
/// is dropped and counted in [`dropped`](Self::dropped). Dropping the subscription
/// unsubscribes.
///
/// This struct is created by [`SessionSupervisor::subscribe`](crate::SessionSupervisor::subscribe).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use session_supervisor::{stub, Session, SessionEvent, SessionSupervisor};
///
/// let sup = SessionSupervisor::new();
/// let events = sup.subscribe();
/// let handle = sup.start_session(Session::new(std::env::temp_dir())?, stub::idle())?;
/// sup.stop_session(handle.id())?;
///
/// let timeout = Duration::from_secs(5);
/// assert!(matches!(events.recv_timeout(timeout), Some(SessionEvent::Started { .. })));
/// assert!(matches!(events.recv_timeout(timeout), Some(SessionEvent::Exited { .. })));
/// assert_eq!(events.dropped(), 0);
/// # Ok::<(), session_supervisor::Error>(())
/// ```
#[derive(Debug)]
pub struct Subscription {
    events: Receiver<SessionEvent>,
    state: Arc<SubscriberState>,
    /// The list to leave on drop. Weak, so that the subscription keeps no sender of its
    /// own queue alive and `recv` ends once the supervisor is gone.
    list: Weak<List>,
}

#[derive(Debug)]
struct SubscriberState {
    /// Cleared when the subscription drops.
    alive: AtomicBool,
    dropped: AtomicU64,
}

impl Subscription {
    /// Waits for the next event; `None` once the supervisor and all its sessions are
    /// gone.
    pub fn recv(&self) -> Option<SessionEvent> {
        self.events.recv().ok()
    }

    /// Waits up to `timeout` for the next event.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<SessionEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Takes the next event if one is waiting.
    pub fn try_recv(&self) -> Option<SessionEvent> {
        self.events.try_recv().ok()
    }

    /// Waits up to `timeout` for an event that matches `wanted`, skipping the others:
    /// a way for tests to wait for a state instead of sleeping. A timeout too large for
    /// a deadline (such as `Duration::MAX`) waits without one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_supervisor::{stub, Session, SessionEvent, SessionSupervisor};
    ///
    /// let sup = SessionSupervisor::new();
    /// let events = sup.subscribe();
    /// let handle = sup.start_session(Session::new(std::env::temp_dir())?, stub::returns())?;
    /// let exited = events.wait_for(
    ///     |event| matches!(event, SessionEvent::Exited { .. }) && event.id() == handle.id(),
    ///     Duration::from_secs(5),
    /// );
    /// assert!(exited.is_some());
    /// assert!(!sup.session_running(handle.id()));
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn wait_for(
        &self,
        mut wanted: impl FnMut(&SessionEvent) -> bool,
        timeout: Duration,
    ) -> Option<SessionEvent> {
        let wait = Wait::at_most(timeout);
        loop {
            let event = wait.recv(&self.events).ok()?;
            if wanted(&event) {
                return Some(event);
            }
        }
    }

    /// The receiving end, for `select!`.
    #[must_use]
    pub fn receiver(&self) -> &Receiver<SessionEvent> {
        &self.events
    }

    /// How many events were dropped because this subscriber's queue was full.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.state.dropped.load(Ordering::Relaxed)
    }
}

/// Iterates over the events as they come, blocking for each; ends once the supervisor
/// and all its sessions are gone.
///
/// # Examples
///
/// ```
/// use session_supervisor::{stub, Session, SessionEvent, SessionSupervisor};
///
/// let sup = SessionSupervisor::new();
/// let events = sup.subscribe();
/// sup.start_session(Session::new(std::env::temp_dir())?, stub::returns())?;
/// for event in &events {
///     println!("{} {:?}", event.session().name(), event);
///     if matches!(event, SessionEvent::Exited { .. }) {
///         break;
///     }
/// }
/// # Ok::<(), session_supervisor::Error>(())
/// ```
impl<'a> IntoIterator for &'a Subscription {
    type Item = SessionEvent;
    type IntoIter = SubscriptionIter<'a>;

    fn into_iter(self) -> SubscriptionIter<'a> {
        SubscriptionIter { subscription: self }
    }
}

/// A blocking iterator over a [`Subscription`]'s events.
///
/// This struct is created by `for event in &subscription`.
#[derive(Debug)]
pub struct SubscriptionIter<'a> {
    subscription: &'a Subscription,
}

impl Iterator for SubscriptionIter<'_> {
    type Item = SessionEvent;

    fn next(&mut self) -> Option<SessionEvent> {
        self.subscription.recv()
    }
}

impl Drop for Subscription {
    /// Leaves the list at once, so that a subscription nobody publishes to does not
    /// keep its queue allocated.
    fn drop(&mut self) {
        self.state.alive.store(false, Ordering::Release);
        let Some(list) = self.list.upgrade() else {
            return;
        };
        let subscriber = leave(&list, &self.state);
        // Dropped only now, so that the list stays locked no longer than needed.
        drop(subscriber);
    }
}

/// Takes the subscriber with `state` out of `list`.
fn leave(list: &List, state: &Arc<SubscriberState>) -> Option<Subscriber> {
    let mut list = list.lock();
    let at = list.iter().position(|s| Arc::ptr_eq(&s.state, state))?;
    Some(list.swap_remove(at))
}

/// Every live subscription's queue. The lock is never held while taking another lock
/// of this crate; the channels' own locks, taken to deliver, are never held while
/// taking this one.
type List = Mutex<Vec<Subscriber>>;

/// The publishing side: every live subscription's queue.
#[derive(Debug, Default)]
pub(crate) struct Subscribers {
    list: Arc<List>,
}

#[derive(Debug)]
struct Subscriber {
    events: Sender<SessionEvent>,
    /// A second receiving end, to drop the oldest event when the queue is full.
    evict: Receiver<SessionEvent>,
    state: Arc<SubscriberState>,
}

impl Subscribers {
    pub(crate) fn subscribe(&self) -> Subscription {
        let (events, receiver) = crossbeam_channel::bounded(EVENT_QUEUE_CAPACITY);
        let state = Arc::new(SubscriberState {
            alive: AtomicBool::new(true),
            dropped: AtomicU64::new(0),
        });
        let subscriber = Subscriber {
            events,
            evict: receiver.clone(),
            state: Arc::clone(&state),
        };
        {
            let mut list = self.list.lock();
            // A dropped subscription leaves by itself; this only keeps the list clean
            // should one ever miss it.
            list.retain(Subscriber::is_alive);
            list.push(subscriber);
        }
        Subscription {
            events: receiver,
            state,
            list: Arc::downgrade(&self.list),
        }
    }

    /// Delivers to every live subscriber. Never blocks: the queues are bounded and full
    /// ones lose their oldest event.
    pub(crate) fn publish(&self, event: SessionEvent) {
        self.publish_with(|| event);
    }

    /// Runs `make` and delivers the event it returns, with no other publish in between:
    /// what `make` changes is seen by anyone who reacts to the event, and no event
    /// published because of that change can overtake this one.
    pub(crate) fn publish_with(&self, make: impl FnOnce() -> SessionEvent) {
        self.publish_if(|| Some(make()));
    }

    /// As [`publish_with`](Self::publish_with), for an event that `make` may decide
    /// against (`None`): the decision and the delivery are one step.
    pub(crate) fn publish_if(&self, make: impl FnOnce() -> Option<SessionEvent>) {
        let list = self.list.lock();
        let Some(event) = make() else {
            return;
        };
        for subscriber in list.iter().filter(|s| s.is_alive()) {
            subscriber.deliver(event.clone());
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.list.lock().len()
    }
}

impl Subscriber {
    fn is_alive(&self) -> bool {
        self.state.alive.load(Ordering::Acquire)
    }

    fn deliver(&self, mut event: SessionEvent) {
        loop {
            match self.events.try_send(event) {
                Ok(()) => return,
                Err(TrySendError::Full(back)) => {
                    if self.evict.try_recv().is_ok() {
                        self.state.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    event = back;
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;
    use std::thread;

    use super::*;

    fn restarted(n: u32) -> SessionEvent {
        SessionEvent::Restarted {
            session: Session::new(std::env::temp_dir()).unwrap(),
            restarts: n,
            reason: ExitReason::Normal,
        }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let subscribers = Subscribers::default();
        let subscription = subscribers.subscribe();
        let total = EVENT_QUEUE_CAPACITY as u32 + 10;
        for n in 0..total {
            subscribers.publish(restarted(n));
        }
        assert_eq!(subscription.dropped(), 10);
        let first = subscription.try_recv().unwrap();
        assert!(matches!(
            first,
            SessionEvent::Restarted { restarts: 10, .. }
        ));
    }

    #[test]
    fn dropping_one_of_two_subscriptions_leaves_the_other_receiving() {
        let subscribers = Subscribers::default();
        let first = subscribers.subscribe();
        let kept = subscribers.subscribe();
        drop(first);
        assert_eq!(subscribers.len(), 1);
        subscribers.publish(restarted(0));
        assert!(kept.try_recv().is_some());
    }

    #[test]
    fn dropped_subscriptions_leave_the_list_without_a_publish() {
        let subscribers = Subscribers::default();
        for _ in 0..4000 {
            drop(subscribers.subscribe());
        }
        assert_eq!(subscribers.len(), 0);
    }

    #[test]
    fn recv_ends_once_the_subscribers_are_gone() {
        let subscribers = Subscribers::default();
        let subscription = subscribers.subscribe();
        subscribers.publish(restarted(0));
        drop(subscribers);
        assert!(subscription.recv().is_some());
        let next = subscription.receiver().try_recv();
        assert_eq!(next, Err(crossbeam_channel::TryRecvError::Disconnected));
        assert_eq!(subscription.recv(), None);
    }

    #[test]
    fn a_subscription_dropped_during_a_publish_does_not_deadlock() {
        let subscribers = Arc::new(Subscribers::default());
        let subscriptions: Vec<_> = (0..100).map(|_| subscribers.subscribe()).collect();
        let start = Arc::new(Barrier::new(2));
        let (done, finished) = crossbeam_channel::bounded(2);
        let publisher = {
            let (subscribers, start, done) = (subscribers.clone(), start.clone(), done.clone());
            move || {
                start.wait();
                while subscribers.len() > 0 {
                    subscribers.publish(restarted(0));
                }
                done.send(()).unwrap();
            }
        };
        let dropper = move || {
            start.wait();
            subscriptions.into_iter().for_each(drop);
            done.send(()).unwrap();
        };
        // Not scoped: a deadlocked thread must not keep the test from failing.
        thread::spawn(publisher);
        thread::spawn(dropper);
        for _ in 0..2 {
            let ended = finished.recv_timeout(Duration::from_secs(30));
            assert!(ended.is_ok(), "publish and drop deadlocked");
        }
    }
}
