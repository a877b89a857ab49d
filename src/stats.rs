//! [`SessionStats`] and [`Snapshot`]: what a session is doing, read without a message
//! to it; and the [`Tracker`] each session keeps them in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

use crate::{Session, SessionId};

/// Where a session is in its life.
///
/// # Examples
///
/// ```
/// use session_supervisor::{stub, Session, SessionState, SessionSupervisor};
///
/// let sup = SessionSupervisor::new();
/// let handle = sup.start_session(Session::new(std::env::temp_dir())?, stub::idle())?;
/// assert_eq!(handle.stats().state(), SessionState::Running);
/// handle.stop()?;
/// assert_eq!(handle.stats().state(), SessionState::Ended);
/// # Ok::<(), session_supervisor::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionState {
    /// Registered, its first `init` not finished yet.
    Starting,
    /// Its body runs.
    Running,
    /// Its body ended and is about to run again: the backoff runs until `until`
    /// (`None`: a backoff with no end, cut short only by a stop), then `init` runs
    /// again.
    Restarting {
        /// When the backoff ends.
        until: Option<Instant>,
    },
    /// A stop was requested (by a caller, an idle timeout, an eviction or a
    /// shutdown); the session has not ended yet.
    Stopping,
    /// The session ended: it is no longer registered.
    Ended,
}

/// What a session is doing, read from the session's own counters without a message
/// to it, so a stuck or backed-up session answers as fast as an idle one.
///
/// Taken by [`SessionHandle::stats`](crate::SessionHandle::stats),
/// [`SessionSupervisor::stats`](crate::SessionSupervisor::stats) and, for every
/// session at once, [`SessionSupervisor::snapshot`](crate::SessionSupervisor::snapshot).
/// The values are read one after the other, not frozen together: a message sent
/// meanwhile may show in one count and not yet in another.
///
/// # Examples
///
/// ```
/// use session_supervisor::{Session, SessionSupervisor};
///
/// let sup = SessionSupervisor::builder().messages::<u32>().build();
/// let handle = sup.start_session(Session::new(std::env::temp_dir())?, |ctx| {
///     while let Some(n) = ctx.recv() {
///         assert!(n < 3);
///     }
/// })?;
/// for n in 0..3 {
///     handle.send(n)?;
/// }
/// let stats = handle.stats();
/// assert_eq!(stats.messages_received(), 3);
/// assert!(stats.messages_handled() <= 3); // the body may still be at work
/// assert_eq!(stats.restarts(), 0);
/// assert!(stats.last_crash().is_none());
/// # Ok::<(), session_supervisor::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionStats {
    pub(crate) session: Session,
    pub(crate) state: SessionState,
    pub(crate) started_at: Option<SystemTime>,
    pub(crate) uptime: Duration,
    pub(crate) restarts: u32,
    pub(crate) last_crash: Option<String>,
    pub(crate) mailbox_len: usize,
    pub(crate) messages: u64,
    pub(crate) calls: u64,
    pub(crate) last_activity: Instant,
    pub(crate) taken_at: Instant,
}

impl SessionStats {
    /// The session's metadata, as registered.
    #[must_use]
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session's id.
    #[must_use]
    pub fn id(&self) -> SessionId {
        self.session.id()
    }

    /// Where the session is in its life.
    #[must_use]
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// When its first `init` finished (`None` while it is starting).
    #[must_use]
    pub fn started_at(&self) -> Option<SystemTime> {
        self.started_at
    }

    /// How long it has run since its first `init` finished (zero while starting).
    #[must_use]
    pub fn uptime(&self) -> Duration {
        self.uptime
    }

    /// How many times its body was restarted.
    #[must_use]
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// The message of its last panic (of `init` or of a run), if it panicked.
    #[must_use]
    pub fn last_crash(&self) -> Option<&str> {
        self.last_crash.as_deref()
    }

    /// How many messages (calls included) wait in its mailbox.
    #[must_use]
    pub fn mailbox_len(&self) -> usize {
        self.mailbox_len
    }

    /// How many messages (calls included) reached its mailbox.
    #[must_use]
    pub fn messages_received(&self) -> u64 {
        self.messages
    }

    /// How many of the messages received the body took out of its mailbox.
    #[must_use]
    pub fn messages_handled(&self) -> u64 {
        self.messages.saturating_sub(self.mailbox_len as u64)
    }

    /// How many calls reached its mailbox (each is one of its messages).
    #[must_use]
    pub fn calls_received(&self) -> u64 {
        self.calls
    }

    /// Its last activity: when its body last took a message or call out of its mailbox
    /// with [`recv`](crate::SessionContext::recv),
    /// [`recv_timeout`](crate::SessionContext::recv_timeout) or
    /// [`try_recv`](crate::SessionContext::try_recv), or last called
    /// [`touch`](crate::SessionContext::touch); its start if neither happened yet.
    ///
    /// The clock is not read per message: a message the body waited for (its mailbox
    /// was empty) is recorded when it is taken, a backlog read back to back every 64
    /// messages and when the body next finds its mailbox empty. A body that works a
    /// long time on one message, or reads
    /// [`control`](crate::SessionContext::control) itself, calls `touch`.
    #[must_use]
    pub fn last_activity(&self) -> Instant {
        self.last_activity
    }

    /// How long since its last activity, when the stats were taken.
    #[must_use]
    pub fn idle_for(&self) -> Duration {
        self.taken_at.saturating_duration_since(self.last_activity)
    }
}

/// Every registered session with its stats, and their count, taken under one read
/// lock of the registry: no start or stop lands in the middle, so the count is the
/// list's length.
///
/// Taken by [`SessionSupervisor::snapshot`](crate::SessionSupervisor::snapshot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub(crate) sessions: Vec<SessionStats>,
    pub(crate) max_sessions: usize,
}

impl Snapshot {
    /// The sessions, oldest first, as [`list_all`](crate::SessionSupervisor::list_all)
    /// orders them.
    #[must_use]
    pub fn sessions(&self) -> &[SessionStats] {
        &self.sessions
    }

    /// How many sessions were registered.
    #[must_use]
    pub fn count(&self) -> usize {
        self.sessions.len()
    }

    /// The supervisor's session limit.
    #[must_use]
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }
}

/// The counters behind a session's stats, shared by its cell and its context.
#[derive(Debug)]
pub(crate) struct Tracker {
    /// The origin of `last_activity`.
    epoch: Instant,
    /// Nanoseconds from `epoch` to the last activity.
    last_activity: AtomicU64,
    calls: AtomicU64,
    progress: Mutex<Progress>,
}

/// What changes a few times in a session's life, under one uncontended lock.
#[derive(Debug, Default)]
struct Progress {
    started: Option<(Instant, SystemTime)>,
    restarting: Option<Option<Instant>>,
    restarts: u32,
    last_crash: Option<String>,
}

/// What the stats read from elsewhere in the session: its state, mailbox and count of
/// messages.
pub(crate) struct Outside {
    pub(crate) session: Session,
    pub(crate) ended: bool,
    pub(crate) stopping: bool,
    pub(crate) mailbox_len: usize,
    pub(crate) messages: u64,
    /// When the stats are taken (one clock reading for a whole snapshot).
    pub(crate) taken_at: Instant,
}

impl Tracker {
    pub(crate) fn new() -> Tracker {
        Tracker {
            epoch: Instant::now(),
            last_activity: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            progress: Mutex::new(Progress::default()),
        }
    }

    /// Marks the session active now.
    pub(crate) fn touch(&self) {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_activity.fetch_max(nanos, Ordering::Relaxed);
    }

    pub(crate) fn last_activity(&self) -> Instant {
        let nanos = self.last_activity.load(Ordering::Relaxed);
        let since = Duration::from_nanos(nanos);
        self.epoch.checked_add(since).unwrap_or(self.epoch)
    }

    pub(crate) fn called(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// The first `init` finished: the session runs.
    pub(crate) fn began(&self) {
        let mut progress = self.progress.lock();
        progress.started = Some((Instant::now(), SystemTime::now()));
        drop(progress);
        self.touch();
    }

    /// The backoff before restart number `restarts` begins (`until`: when it ends, if
    /// it does).
    pub(crate) fn restarting(&self, restarts: u32, until: Option<Instant>) {
        let mut progress = self.progress.lock();
        progress.restarting = Some(until);
        progress.restarts = restarts;
    }

    /// A run ended with a panic (which may or may not be restarted).
    pub(crate) fn crashed(&self, message: &str) {
        self.progress.lock().last_crash = Some(message.to_owned());
    }

    /// A restarted body runs.
    pub(crate) fn running(&self) {
        self.progress.lock().restarting = None;
    }

    /// The stats, from these counters and what the session's cell read elsewhere.
    pub(crate) fn stats(&self, outside: Outside) -> SessionStats {
        let taken_at = outside.taken_at;
        let progress = self.progress.lock();
        let state = if outside.ended {
            SessionState::Ended
        } else if outside.stopping {
            SessionState::Stopping
        } else if let Some(until) = progress.restarting {
            SessionState::Restarting { until }
        } else if progress.started.is_some() {
            SessionState::Running
        } else {
            SessionState::Starting
        };
        let (started, started_at) = progress.started.unzip();
        SessionStats {
            session: outside.session,
            state,
            started_at,
            uptime: started.map_or(Duration::ZERO, |at| taken_at.saturating_duration_since(at)),
            restarts: progress.restarts,
            last_crash: progress.last_crash.clone(),
            mailbox_len: outside.mailbox_len,
            messages: outside.messages,
            calls: self.calls.load(Ordering::Relaxed),
            last_activity: self.last_activity(),
            taken_at,
        }
    }
}
