//! Lifecycle events: [`SessionEvent`] and the [`Subscription`] that receives them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;

use crate::wait::Wait;
use crate::{ExitReason, SessionId};

/// How many events a subscriber's queue holds before the oldest are dropped.
pub const EVENT_QUEUE_CAPACITY: usize = 1024;

/// Something that happened to a session. Each session's events come in order:
/// `Started`, any `Restarted`, then `Exited`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The session's first `init` finished: it runs.
    Started {
        /// The session.
        id: SessionId,
        /// Its canonical project path.
        path: PathBuf,
    },
    /// The body ended and is run again.
    Restarted {
        /// The session.
        id: SessionId,
        /// How many restarts there have been, this one included.
        restarts: u32,
        /// How the previous run ended.
        reason: ExitReason,
    },
    /// The session ended and was unregistered.
    Exited {
        /// The session.
        id: SessionId,
        /// Why it ended.
        reason: ExitReason,
    },
}

impl SessionEvent {
    /// The session the event is about.
    #[must_use]
    pub fn id(&self) -> &SessionId {
        match self {
            SessionEvent::Started { id, .. }
            | SessionEvent::Restarted { id, .. }
            | SessionEvent::Exited { id, .. } => id,
        }
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
}

#[derive(Debug)]
struct SubscriberState {
    /// Cleared when the subscription drops; the publisher then forgets it.
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
    ///     |event| matches!(event, SessionEvent::Exited { id, .. } if id == handle.id()),
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

impl Drop for Subscription {
    fn drop(&mut self) {
        self.state.alive.store(false, Ordering::Release);
    }
}

/// The publishing side: every live subscription's queue.
#[derive(Debug, Default)]
pub(crate) struct Subscribers {
    list: Mutex<Vec<Subscriber>>,
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
        self.list.lock().push(subscriber);
        Subscription {
            events: receiver,
            state,
        }
    }

    /// Delivers to every live subscriber, dropping dropped ones. Never blocks: the
    /// queues are bounded and full ones lose their oldest event.
    pub(crate) fn publish(&self, event: SessionEvent) {
        let mut list = self.list.lock();
        list.retain(|s| s.state.alive.load(Ordering::Acquire));
        for subscriber in list.iter() {
            subscriber.deliver(event.clone());
        }
    }

    /// Runs `before`, then delivers `event`, with no other publish in between: what
    /// `before` changes is seen by anyone who reacts to the event, and no event
    /// published because of that change can overtake this one.
    pub(crate) fn publish_with(&self, event: SessionEvent, before: impl FnOnce()) {
        let mut list = self.list.lock();
        before();
        list.retain(|s| s.state.alive.load(Ordering::Acquire));
        for subscriber in list.iter() {
            subscriber.deliver(event.clone());
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.list.lock().len()
    }
}

impl Subscriber {
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
    use super::*;

    fn exited(n: u32) -> SessionEvent {
        SessionEvent::Restarted {
            id: SessionId::new(),
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
            subscribers.publish(exited(n));
        }
        assert_eq!(subscription.dropped(), 10);
        let first = subscription.try_recv().unwrap();
        assert!(matches!(
            first,
            SessionEvent::Restarted { restarts: 10, .. }
        ));
    }

    #[test]
    fn a_dropped_subscription_is_pruned() {
        let subscribers = Subscribers::default();
        let kept = subscribers.subscribe();
        drop(subscribers.subscribe());
        subscribers.publish(exited(0));
        assert_eq!(subscribers.len(), 1);
        assert!(kept.try_recv().is_some());
    }
}
