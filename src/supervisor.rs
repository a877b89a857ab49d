//! [`SessionSupervisor`]: starts, stops and supervises sessions; joins the registry and
//! the session threads, and does nothing else.

use std::cmp::Reverse;
use std::fmt;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::cell::{Ended, SessionCell};
use crate::event::Subscribers;
use crate::idle::IdleWatch;
use crate::lifecycle::{Options, Shared};
use crate::pool::Pool;
use crate::registry::Registry;
use crate::restart::Bodies;
use crate::wait::Wait;
use crate::{
    ChildHandle, Error, ExitReport, ReplyTo, Result, SendError, Session, SessionContext,
    SessionHandle, SessionId, SessionStats, ShutdownReport, Snapshot, Start, Subscription,
    SupervisorBuilder,
};

/// Starts sessions on their own threads, tracks them in a registry, restarts them when
/// they crash and stops them on request, on drop or on [`shutdown`](Self::shutdown).
///
/// Every method takes `&self`; share a supervisor between threads (or with the bodies
/// it runs) through an `Arc`. See the [crate docs](crate) for the lifecycle and the
/// locking rules.
///
/// # Examples
///
/// ```
/// use session_supervisor::{Error, Session, SessionSupervisor};
///
/// let dir = std::env::temp_dir();
/// let sup = SessionSupervisor::new();
/// let handle = sup.start_session(Session::new(&dir)?, |ctx| ctx.wait_for_stop())?;
///
/// assert!(sup.session_running(handle.id()));
/// assert_eq!(sup.lookup_by_path(&dir)?.id(), handle.id());
///
/// sup.stop_session(handle.id())?;
/// assert!(!sup.session_running(handle.id()));
/// assert!(matches!(sup.stop_session(handle.id()), Err(Error::NotFound { .. })));
/// # Ok::<(), Error>(())
/// ```
pub struct SessionSupervisor<M = ()> {
    shared: Arc<Shared<M>>,
}

impl SessionSupervisor {
    /// A supervisor with the defaults: 10 sessions, a 5 s stop timeout, transient
    /// restarts (3 in 5 s).
    #[must_use]
    pub fn new() -> SessionSupervisor {
        SessionSupervisor::builder().build()
    }

    /// A [`SupervisorBuilder`] to change the defaults, or to choose a message type with
    /// [`SupervisorBuilder::messages`].
    pub fn builder() -> SupervisorBuilder {
        SupervisorBuilder::new()
    }
}

impl<M> SessionSupervisor<M> {
    pub(crate) fn from_builder(builder: SupervisorBuilder<M>) -> SessionSupervisor<M> {
        let shared = Shared {
            registry: Registry::new(builder.max_sessions),
            ended: Mutex::new(Vec::new()),
            events: Subscribers::default(),
            next_seq: AtomicU64::new(0),
            stop_timeout: builder.stop_timeout,
            stack_size: builder.stack_size,
            mailbox_capacity: builder.mailbox_capacity,
            policy: builder.policy,
            child_strategy: builder.child_strategy,
            max_children: builder.max_children,
            init_timeout: builder.init_timeout,
            admission: builder.admission,
            idle: IdleWatch::default(),
            idle_timeout: builder.idle_timeout,
            pool: (builder.warm_threads > 0).then(|| {
                let timeout = builder.warm_thread_timeout;
                Arc::new(Pool::new(builder.warm_threads, timeout, builder.stack_size))
            }),
        };
        SessionSupervisor {
            shared: Arc::new(shared),
        }
    }

    /// Starts a session whose body is a closure, with the supervisor's restart policy.
    ///
    /// The session is registered first (the limit, the id and the path are checked
    /// atomically), then its thread is spawned, named after the session. This returns
    /// once the thread runs and the body's `init` finished.
    ///
    /// # Errors
    ///
    /// [`Error::SessionLimitReached`], [`Error::SessionExists`],
    /// [`Error::ProjectAlreadyOpen`], [`Error::ShuttingDown`]: nothing was started.
    /// [`Error::Spawn`] if the thread could not be created and [`Error::StartFailed`]
    /// if `init` failed or panicked: the session was unregistered before this returned.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_supervisor::{Error, Session, SessionSupervisor};
    ///
    /// let dir = std::env::temp_dir();
    /// let sup = SessionSupervisor::new();
    /// let handle = sup.start_session(Session::new(&dir)?, |ctx| ctx.wait_for_stop())?;
    /// // Another spelling of the same directory is the same project.
    /// let again = sup.start_session(Session::new(dir.join("."))?, |ctx| ctx.wait_for_stop());
    /// assert!(matches!(again, Err(Error::ProjectAlreadyOpen { id, .. }) if id == handle.id()));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn start_session<F>(&self, session: Session, body: F) -> Result<SessionHandle<M>>
    where
        F: FnMut(&SessionContext<M>) + Send + 'static,
        M: Send + 'static,
    {
        self.start(session).run(body)
    }

    /// Prepares a start with more choices than [`start_session`](Self::start_session):
    /// a restart policy of the session's own, a [`SessionBody`](crate::SessionBody) value, or a factory that
    /// makes a fresh body for each restart. Nothing happens until one of [`Start`]'s
    /// `run`, `body` or `factory` is called.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_supervisor::{ExitReason, Restart, RestartPolicy, Session, SessionSupervisor};
    ///
    /// let sup = SessionSupervisor::new();
    /// let policy = RestartPolicy::new(Restart::Transient).intensity(2, Duration::from_secs(60));
    /// let handle = sup
    ///     .start(Session::new(std::env::temp_dir())?)
    ///     .policy(policy)
    ///     .run(|ctx| panic!("crash number {}", ctx.restarts() + 1))?;
    ///
    /// let report = handle.wait_timeout(Duration::from_secs(5)).expect("gave up");
    /// assert_eq!(
    ///     report.reason(),
    ///     &ExitReason::RestartLimit { restarts: 2, last_panic: Some("crash number 3".into()) }
    /// );
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn start(&self, session: Session) -> Start<'_, M> {
        let options = Options {
            policy: self.shared.policy,
            strategy: self.shared.child_strategy,
            idle_timeout: self.shared.idle_timeout,
        };
        Start::new(self, session, options)
    }

    /// Starts a session from a source of bodies; the one place every start form ends.
    pub(crate) fn start_with<S>(
        &self,
        session: Session,
        bodies: S,
        options: Options,
    ) -> Result<SessionHandle<M>>
    where
        S: Bodies<M>,
        M: Send + 'static,
    {
        let cell = self.shared.start(session, bodies, options)?;
        Ok(SessionHandle::new(cell))
    }

    /// Creates a session for a directory (with the directory's name) and starts it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] or [`Error::InvalidName`] as for [`Session::new`], then
    /// as for [`start_session`](Self::start_session).
    pub fn create_session<F>(&self, project_path: impl AsRef<Path>, body: F) -> Result<Session>
    where
        F: FnMut(&SessionContext<M>) + Send + 'static,
        M: Send + 'static,
    {
        let session = Session::new(project_path)?;
        self.start_session(session.clone(), body)?;
        Ok(session)
    }

    /// Stops a session: requests the stop, waits for its thread to end (up to the
    /// stop timeout, woken by the thread, no polling), joins it, and returns how it
    /// ended. The session is unregistered by then.
    ///
    /// Several threads may stop one session at once: one joins, each returns once the
    /// session ended (or with [`Error::NotFound`] if it was already gone).
    ///
    /// # Errors
    ///
    /// - [`Error::NotFound`] if no session has this id.
    /// - [`Error::StopTimeout`] if the body did not return in time. The session stays
    ///   registered, its path reserved, until the body returns; it then unregisters
    ///   itself.
    /// - [`Error::StopFromOwnThread`] if called from the session's own thread (its
    ///   body), which cannot wait for itself: the stop is requested, and the session ends
    ///   when the body returns.
    pub fn stop_session(&self, id: SessionId) -> Result<ExitReport> {
        self.cell(id)?.stop()
    }

    /// Stops every session and refuses new ones from now on.
    ///
    /// All sessions are asked to stop at once, then waited for newest first, so N
    /// sessions stop in about the time of the slowest. Each wait is bounded by the
    /// stop timeout, counted from the moment all were asked. Starts during and after
    /// the shutdown fail with [`Error::ShuttingDown`]. Calling it again waits again for
    /// the sessions that had timed out.
    ///
    /// Called from a session's own thread, that session is asked to stop but not waited
    /// for; it is listed in [`ShutdownReport::timed_out`].
    ///
    /// # Examples
    ///
    /// ```
    /// use session_supervisor::{Error, ExitReason, Session, SessionSupervisor};
    ///
    /// let base = std::env::temp_dir().join(format!("shutdown-doc-{}", std::process::id()));
    /// let sup = SessionSupervisor::new();
    /// for name in ["a", "b"] {
    ///     std::fs::create_dir_all(base.join(name)).unwrap();
    ///     sup.create_session(base.join(name), |ctx| ctx.wait_for_stop())?;
    /// }
    /// let report = sup.shutdown();
    /// assert!(report.is_complete());
    /// assert_eq!(report.exited().len(), 2);
    /// assert!(report.exited().iter().all(|r| r.reason() == &ExitReason::Stopped));
    /// assert!(matches!(sup.create_session(&base, |_| {}), Err(Error::ShuttingDown)));
    /// # std::fs::remove_dir_all(base).unwrap();
    /// # Ok::<(), Error>(())
    /// ```
    pub fn shutdown(&self) -> ShutdownReport {
        let mut cells = self.shared.registry.close();
        if let Some(pool) = &self.shared.pool {
            pool.close();
        }
        cells.sort_by_key(|cell| Reverse(cell.seq()));
        for cell in &cells {
            cell.request_stop();
        }
        let wait = Wait::at_most(self.shared.stop_timeout);
        let mut report = ShutdownReport::default();
        for cell in cells {
            let ended = !cell.is_within() && cell.await_end(wait) == Ended::Yes;
            if ended {
                report.exited.push(cell.exit_report());
            } else {
                report.timed_out.push(cell.id());
            }
        }
        self.shared.reap_until(wait);
        if let Some(pool) = &self.shared.pool {
            pool.join_all(wait);
        }
        self.shared.idle.close(wait);
        report
    }

    /// Spawns warm threads until as many are parked as
    /// [`SupervisorBuilder::warm_threads`] keeps, so that the first starts are warm
    /// too; returns how many are parked. Without warm threads, does nothing and
    /// returns 0.
    ///
    /// # Errors
    ///
    /// [`Error::ShuttingDown`] after a shutdown; [`Error::WarmUp`] if a thread could
    /// not be spawned (the threads spawned before it stay parked).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_supervisor::SessionSupervisor;
    ///
    /// let sup = SessionSupervisor::builder().warm_threads(4).build();
    /// assert_eq!(sup.idle_threads(), 0);
    /// assert_eq!(sup.warm_up()?, 4);
    /// assert_eq!(sup.idle_threads(), 4);
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn warm_up(&self) -> Result<usize> {
        if self.is_shut_down() {
            return Err(Error::ShuttingDown);
        }
        match &self.shared.pool {
            Some(pool) => pool.fill().map_err(|source| Error::WarmUp { source }),
            None => Ok(0),
        }
    }

    /// How many warm threads are parked, waiting for a session (always 0 without
    /// [`SupervisorBuilder::warm_threads`]).
    #[must_use]
    pub fn idle_threads(&self) -> usize {
        self.shared.pool.as_ref().map_or(0, |pool| pool.idle())
    }

    /// Sends a message to a session by id. See [`SessionHandle::send`].
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] or [`Error::SessionGone`], handing the message back.
    pub fn send(&self, id: SessionId, message: M) -> std::result::Result<(), SendError<M>> {
        match self.cell(id) {
            Ok(cell) => cell.send(message, Wait::Forever),
            Err(error) => Err(SendError { message, error }),
        }
    }

    /// Sends a message to a session by id if its mailbox has room now. See
    /// [`SessionHandle::try_send`].
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::MailboxFull`] or [`Error::SessionGone`], handing
    /// the message back.
    pub fn try_send(&self, id: SessionId, message: M) -> std::result::Result<(), SendError<M>> {
        match self.cell(id) {
            Ok(cell) => cell.send(message, Wait::No),
            Err(error) => Err(SendError { message, error }),
        }
    }

    /// Calls a session by id and waits up to `timeout` for the reply. See
    /// [`SessionHandle::call`].
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], then as for [`SessionHandle::call`].
    pub fn call<R>(
        &self,
        id: SessionId,
        make: impl FnOnce(ReplyTo<R>) -> M,
        timeout: Duration,
    ) -> Result<R> {
        self.find_session(id)?.call(make, timeout)
    }

    /// Subscribes to the lifecycle events of every session from now on.
    ///
    /// Any number of subscriptions may exist; each gets every event. See
    /// [`Subscription`] for what happens when a subscriber does not keep up.
    #[must_use = "dropping the subscription unsubscribes"]
    pub fn subscribe(&self) -> Subscription {
        self.shared.events.subscribe()
    }

    /// Waits up to `timeout` until no session with this id runs any more; returns
    /// whether that is so. Returns `true` at once for an unknown id.
    ///
    /// Woken by the session's end, no polling: a way for tests to wait for a state.
    /// When it waited, the session's `Exited` event was published before this returns;
    /// for an id already unregistered it returns at once, and the event may still be on
    /// its way. To wait for the event itself, use [`Subscription::wait_for`]. On the
    /// session's own thread it returns `false` at once: a thread cannot wait for its
    /// own end.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_supervisor::{stub, Session, SessionSupervisor};
    ///
    /// let sup = SessionSupervisor::new();
    /// let handle = sup.start_session(Session::new(std::env::temp_dir())?, stub::returns())?;
    /// assert!(sup.wait_until_stopped(handle.id(), Duration::from_secs(5)));
    /// assert_eq!(sup.count(), 0);
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    #[must_use]
    pub fn wait_until_stopped(&self, id: SessionId, timeout: Duration) -> bool {
        match self.shared.registry.slot(id) {
            Some(cell) => cell.wait(Wait::at_most(timeout)) == Ended::Yes,
            None => true,
        }
    }

    /// A handle to a registered session.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if no session has this id.
    pub fn find_session(&self, id: SessionId) -> Result<SessionHandle<M>> {
        self.cell(id).map(SessionHandle::new)
    }

    /// A handle to the session of a project directory, in any spelling.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if no session has this directory.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_supervisor::{stub, Session, SessionSupervisor};
    ///
    /// let dir = std::env::temp_dir();
    /// let sup = SessionSupervisor::new();
    /// let started = sup.start_session(Session::new(&dir)?, stub::idle())?;
    /// let found = sup.find_by_path(dir.join("."))?;
    /// assert_eq!(found.id(), started.id());
    /// found.stop()?;
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn find_by_path(&self, path: impl AsRef<Path>) -> Result<SessionHandle<M>> {
        let cell = self.shared.registry.slot_by_path(path.as_ref())?;
        Ok(SessionHandle::new(cell))
    }

    /// A handle to the oldest session with this name.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if no session has this name.
    pub fn find_by_name(&self, name: &str) -> Result<SessionHandle<M>> {
        let cell = self.shared.registry.slot_by_name(name)?;
        Ok(SessionHandle::new(cell))
    }

    /// A handle to the running child `name` of session `id`: two read locks and two
    /// hash lookups, no write lock.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if no session has this id; [`Error::ChildNotFound`] if it
    /// runs no child of that name.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_supervisor::{stub, Session, SessionSupervisor};
    ///
    /// let sup = SessionSupervisor::new();
    /// let handle = sup
    ///     .start(Session::new(std::env::temp_dir())?)
    ///     .init(|ctx| {
    ///         ctx.spawn_child("agent", stub::idle())?;
    ///         Ok(())
    ///     })
    ///     .run(stub::idle())?;
    /// let agent = sup.find_child(handle.id(), "agent")?;
    /// assert!(agent.is_running());
    /// assert!(sup.find_child(handle.id(), "nobody").is_err());
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn find_child(&self, id: SessionId, name: &str) -> Result<ChildHandle<M>> {
        self.cell(id)?.child(name)
    }

    /// The stats of a session, read without a message to it. See
    /// [`SessionHandle::stats`].
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if no session has this id.
    pub fn stats(&self, id: SessionId) -> Result<SessionStats> {
        Ok(self.cell(id)?.stats())
    }

    /// Every registered session with its stats, and their count, taken under one read
    /// lock: the count is the list's length, whatever starts and stops meanwhile.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_supervisor::{stub, Session, SessionState, SessionSupervisor};
    ///
    /// let sup = SessionSupervisor::new();
    /// let handle = sup.start_session(Session::new(std::env::temp_dir())?, stub::idle())?;
    /// let snapshot = sup.snapshot();
    /// assert_eq!(snapshot.count(), 1);
    /// assert_eq!(snapshot.sessions()[0].id(), handle.id());
    /// assert_eq!(snapshot.sessions()[0].state(), SessionState::Running);
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        let registry = &self.shared.registry;
        // One clock reading for all: the idle times compare to one moment.
        let now = Instant::now();
        let sessions = registry.map_all(|session, cell| cell.stats_of(session.clone(), now));
        Snapshot {
            sessions,
            max_sessions: registry.max_sessions(),
        }
    }

    /// Whether a session with this id is registered (started and not yet ended).
    #[must_use]
    pub fn session_running(&self, id: SessionId) -> bool {
        self.shared.registry.contains(id)
    }

    /// Handles to every registered session, in start order.
    #[must_use]
    pub fn list_sessions(&self) -> Vec<SessionHandle<M>> {
        let mut cells = self.shared.registry.slots();
        cells.sort_by_key(|cell| cell.seq());
        cells.into_iter().map(SessionHandle::new).collect()
    }

    /// Renames a running session and returns its new metadata.
    ///
    /// The body's [`SessionContext::session`] keeps the metadata it started with.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if no session has this id; [`Error::InvalidName`] as for
    /// [`Session::rename`]. Nothing changes on error.
    pub fn rename_session(&self, id: SessionId, name: impl Into<String>) -> Result<Session> {
        let name = name.into();
        self.shared
            .registry
            .modify(id, |session| session.rename(name), SessionCell::renamed)
    }

    /// The metadata of a session. See [`SessionRegistry::lookup`](crate::SessionRegistry::lookup).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if no session has this id.
    pub fn lookup(&self, id: SessionId) -> Result<Session> {
        self.shared.registry.lookup(id)
    }

    /// The session of a project directory, in any spelling. See
    /// [`SessionRegistry::lookup_by_path`](crate::SessionRegistry::lookup_by_path).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if no session has this directory.
    pub fn lookup_by_path(&self, path: impl AsRef<Path>) -> Result<Session> {
        self.shared.registry.lookup_by_path(path.as_ref())
    }

    /// The oldest session with this name. See
    /// [`SessionRegistry::lookup_by_name`](crate::SessionRegistry::lookup_by_name).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if no session has this name.
    pub fn lookup_by_name(&self, name: &str) -> Result<Session> {
        self.shared.registry.lookup_by_name(name)
    }

    /// Every registered session, oldest first (ties broken by id).
    #[must_use]
    pub fn list_all(&self) -> Vec<Session> {
        self.shared.registry.list_all()
    }

    /// Every registered id, in the order of [`list_all`](Self::list_all).
    #[must_use]
    pub fn list_ids(&self) -> Vec<SessionId> {
        self.shared.registry.list_ids()
    }

    /// How many sessions are registered.
    #[must_use]
    pub fn count(&self) -> usize {
        self.shared.registry.count()
    }

    /// The most sessions that may run at once.
    #[must_use]
    pub fn max_sessions(&self) -> usize {
        self.shared.registry.max_sessions()
    }

    /// How long a stop waits for a session to end.
    #[must_use]
    pub fn stop_timeout(&self) -> Duration {
        self.shared.stop_timeout
    }

    /// Whether [`shutdown`](Self::shutdown) was called: no session starts any more.
    #[must_use]
    pub fn is_shut_down(&self) -> bool {
        self.shared.registry.is_closed()
    }

    fn cell(&self, id: SessionId) -> Result<Arc<SessionCell<M>>> {
        self.shared
            .registry
            .slot(id)
            .ok_or_else(|| Error::not_found(id))
    }
}

impl Default for SessionSupervisor {
    fn default() -> SessionSupervisor {
        SessionSupervisor::new()
    }
}

impl<M> fmt::Debug for SessionSupervisor<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSupervisor")
            .field("count", &self.count())
            .field("max_sessions", &self.max_sessions())
            .field("stop_timeout", &self.shared.stop_timeout)
            .field("shut_down", &self.is_shut_down())
            .finish_non_exhaustive()
    }
}

impl<M> Drop for SessionSupervisor<M> {
    /// Shuts down: every session is asked to stop, then joined, each wait bounded by
    /// the stop timeout. A session that does not stop in time is logged and left to
    /// end on its own; it unregisters itself then.
    fn drop(&mut self) {
        let report = self.shutdown();
        for id in report.timed_out() {
            log::error!("session {id} did not stop within the stop timeout; left running");
        }
    }
}
