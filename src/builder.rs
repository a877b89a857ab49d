//! [`SupervisorBuilder`]: the settings of a [`SessionSupervisor`].

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use crate::pool::DEFAULT_WARM_THREAD_TIMEOUT;
use crate::registry::DEFAULT_MAX_SESSIONS;
use crate::tree::DEFAULT_MAX_CHILDREN;
use crate::{AdmissionPolicy, ChildStrategy, RestartPolicy, SessionSupervisor};

/// The stop timeout of a default supervisor.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings for a [`SessionSupervisor`]: session limit, stop timeout, thread stack
/// size and default restart policy.
///
/// This struct is created by [`SessionSupervisor::builder`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use session_supervisor::{Restart, RestartPolicy, SessionSupervisor};
///
/// let sup = SessionSupervisor::builder()
///     .max_sessions(100)
///     .stop_timeout(Duration::from_secs(1))
///     .stack_size(256 * 1024)
///     .restart_policy(RestartPolicy::new(Restart::Permanent))
///     .build();
/// assert_eq!(sup.max_sessions(), 100);
/// assert_eq!(sup.stop_timeout(), Duration::from_secs(1));
/// ```
#[must_use = "a builder does nothing until .build() is called"]
pub struct SupervisorBuilder<M = ()> {
    pub(crate) max_sessions: usize,
    pub(crate) stop_timeout: Duration,
    pub(crate) stack_size: Option<usize>,
    pub(crate) mailbox_capacity: Option<usize>,
    pub(crate) policy: RestartPolicy,
    pub(crate) child_strategy: ChildStrategy,
    pub(crate) max_children: usize,
    pub(crate) warm_threads: usize,
    pub(crate) warm_thread_timeout: Duration,
    pub(crate) init_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) admission: AdmissionPolicy,
    /// `fn() -> M`: the builder holds no `M`, so it is `Send` and `Sync` whatever `M` is.
    messages: PhantomData<fn() -> M>,
}

impl SupervisorBuilder {
    pub(crate) fn new() -> SupervisorBuilder {
        SupervisorBuilder {
            max_sessions: DEFAULT_MAX_SESSIONS,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            stack_size: None,
            mailbox_capacity: None,
            policy: RestartPolicy::default(),
            child_strategy: ChildStrategy::default(),
            max_children: DEFAULT_MAX_CHILDREN,
            warm_threads: 0,
            warm_thread_timeout: DEFAULT_WARM_THREAD_TIMEOUT,
            init_timeout: None,
            idle_timeout: None,
            admission: AdmissionPolicy::Reject,
            messages: PhantomData,
        }
    }
}

impl<M> SupervisorBuilder<M> {
    /// Chooses the type of the messages the sessions receive (by default `()`: no
    /// messages). Every session of the supervisor has a mailbox of `N`.
    ///
    /// (`SessionSupervisor::new()` and `SessionSupervisor::builder()` need no type
    /// annotation because they always mean `()`; stable Rust cannot fall back to a
    /// default type parameter, so the message type is chosen here.)
    ///
    /// # Examples
    ///
    /// ```
    /// use session_supervisor::{Session, SessionSupervisor};
    ///
    /// enum Msg {
    ///     Refresh,
    /// }
    ///
    /// let sup = SessionSupervisor::builder().messages::<Msg>().build();
    /// let handle = sup.start_session(Session::new(std::env::temp_dir())?, |ctx| {
    ///     while let Some(Msg::Refresh) = ctx.recv() {}
    /// })?;
    /// handle.send(Msg::Refresh)?;
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn messages<N>(self) -> SupervisorBuilder<N> {
        SupervisorBuilder {
            max_sessions: self.max_sessions,
            stop_timeout: self.stop_timeout,
            stack_size: self.stack_size,
            mailbox_capacity: self.mailbox_capacity,
            policy: self.policy,
            child_strategy: self.child_strategy,
            max_children: self.max_children,
            warm_threads: self.warm_threads,
            warm_thread_timeout: self.warm_thread_timeout,
            init_timeout: self.init_timeout,
            idle_timeout: self.idle_timeout,
            admission: self.admission,
            messages: PhantomData,
        }
    }

    /// Bounds every session's mailbox to `capacity` messages (default: unbounded). A
    /// full mailbox makes `send` block and `try_send` fail with
    /// [`Error::MailboxFull`](crate::Error::MailboxFull); stop requests never wait
    /// behind it. A capacity of 0 is taken as 1: a stop must find a free slot to wake a
    /// body blocked on its mailbox.
    pub fn mailbox_capacity(mut self, capacity: usize) -> SupervisorBuilder<M> {
        self.mailbox_capacity = Some(capacity);
        self
    }

    /// The most sessions that may run at once (default 10). 0 admits none.
    pub fn max_sessions(mut self, max_sessions: usize) -> SupervisorBuilder<M> {
        self.max_sessions = max_sessions;
        self
    }

    /// How long a stop waits for a session to end (default 5 s).
    ///
    /// `Duration::ZERO` means "do not wait": a stop then requests the stop and reports
    /// [`Error::StopTimeout`](crate::Error::StopTimeout) unless the session had
    /// already ended.
    pub fn stop_timeout(mut self, timeout: Duration) -> SupervisorBuilder<M> {
        self.stop_timeout = timeout;
        self
    }

    /// The stack size of session threads, in bytes (default: the standard library's,
    /// 2 MiB unless `RUST_MIN_STACK` says otherwise). The system may round it up.
    pub fn stack_size(mut self, bytes: usize) -> SupervisorBuilder<M> {
        self.stack_size = Some(bytes);
        self
    }

    /// The restart policy of sessions started without one of their own (default
    /// [`Restart::Transient`](crate::Restart::Transient), 3 restarts in 5 s).
    pub fn restart_policy(mut self, policy: RestartPolicy) -> SupervisorBuilder<M> {
        self.policy = policy;
        self
    }

    /// How the children of each session are restarted when one crashes (default
    /// [`ChildStrategy::OneForAll`]); a start may choose another with
    /// [`Start::child_strategy`](crate::Start::child_strategy).
    pub fn child_strategy(mut self, strategy: ChildStrategy) -> SupervisorBuilder<M> {
        self.child_strategy = strategy;
        self
    }

    /// How many children one session may run at once (default
    /// [`DEFAULT_MAX_CHILDREN`](crate::DEFAULT_MAX_CHILDREN), 16); one more fails with
    /// [`Error::ChildLimitReached`](crate::Error::ChildLimitReached). Children also
    /// count against the process's thread budget.
    pub fn max_children(mut self, max_children: usize) -> SupervisorBuilder<M> {
        self.max_children = max_children;
        self
    }

    /// Keeps up to `n` session threads parked after their session ended (default 0:
    /// every session spawns a thread of its own and the thread ends with it).
    ///
    /// A start then hands its session to a parked thread instead of spawning one,
    /// which is many times cheaper (see BENCHMARKS.md); a start with no thread parked
    /// spawns a new one, as without the pool. [`SessionSupervisor::warm_up`] fills the
    /// pool ahead of the first starts, and [`SessionSupervisor::idle_threads`] tells
    /// how many are parked. A parked thread ends after
    /// [`warm_thread_timeout`](Self::warm_thread_timeout) without work; shutdown and
    /// drop join every thread, parked ones too. Parked threads count against the
    /// process's thread budget like running ones.
    ///
    /// What stays the same: every guarantee of a start, a stop, a restart and a
    /// shutdown. What differs:
    ///
    /// - A thread goes back to the pool only after a clean end (the session returned or
    ///   was stopped, and every child stopped in time). A session that crashed past its
    ///   restarts, failed its `init`, or whose stop gave up waiting never gives its
    ///   thread to another session.
    /// - Warm threads are named [`WARM_THREAD_NAME`](crate::WARM_THREAD_NAME), not after
    ///   a session (a running thread cannot be renamed); a body finds its session
    ///   through `ctx.session()`, and every log line of the crate names the session id.
    /// - Thread-locals a body sets outlive its session on a warm thread and are seen
    ///   by the next session there; they are the program's business. Children run on
    ///   threads of their own, as without the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_supervisor::{stub, Session, SessionSupervisor};
    ///
    /// let sup = SessionSupervisor::builder().warm_threads(2).build();
    /// assert_eq!(sup.warm_up()?, 2);
    /// let handle = sup.start_session(Session::new(std::env::temp_dir())?, stub::idle())?;
    /// assert_eq!(sup.idle_threads(), 1);
    /// handle.stop()?;
    /// assert_eq!(sup.idle_threads(), 2, "the thread is parked again");
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn warm_threads(mut self, n: usize) -> SupervisorBuilder<M> {
        self.warm_threads = n;
        self
    }

    /// How long a warm thread stays parked without work before it ends (default
    /// [`DEFAULT_WARM_THREAD_TIMEOUT`](crate::DEFAULT_WARM_THREAD_TIMEOUT), 5 s).
    /// `Duration::MAX` keeps parked threads until shutdown. Only matters with
    /// [`warm_threads`](Self::warm_threads).
    pub fn warm_thread_timeout(mut self, timeout: Duration) -> SupervisorBuilder<M> {
        self.warm_thread_timeout = timeout;
        self
    }

    /// How long a start waits for the body's first `init` (default: as long as it
    /// takes). A start whose `init` takes longer returns
    /// [`Error::InitTimeout`](crate::Error::InitTimeout) at once; the session is asked to stop and never
    /// runs, and its entry (and path) stay reserved until its thread really ends, as
    /// for a stop that timed out. No event is published for it. `Duration::MAX` means
    /// no timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_supervisor::{Error, Session, SessionSupervisor};
    ///
    /// let sup = SessionSupervisor::builder()
    ///     .init_timeout(Duration::from_millis(50))
    ///     .build();
    /// let slow = sup
    ///     .start(Session::new(std::env::temp_dir())?)
    ///     .init(|ctx| {
    ///         // Slow, but it gives up as soon as it is asked to stop.
    ///         ctx.wait_for_stop_timeout(Duration::from_secs(5));
    ///         Ok(())
    ///     })
    ///     .run(|ctx| ctx.wait_for_stop());
    /// assert!(matches!(slow, Err(Error::InitTimeout { .. })));
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn init_timeout(mut self, timeout: Duration) -> SupervisorBuilder<M> {
        self.init_timeout = Some(timeout);
        self
    }

    /// Stops a session once it had no activity for `timeout` (default: never), with
    /// [`ExitReason::Idle`](crate::ExitReason::Idle), reported and evented like any
    /// stop. Activity is a message or call its body takes, or a
    /// [`touch`](crate::SessionContext::touch) (see
    /// [`SessionStats::last_activity`](crate::SessionStats::last_activity)). A start can
    /// choose its own with [`Start::idle_timeout`](crate::Start::idle_timeout).
    ///
    /// One thread per supervisor, started with the first session that has an idle
    /// timeout, watches them all; it sleeps until the earliest moment one could be idle.
    /// A zero timeout stops a session as soon as the watcher sees it started;
    /// `Duration::MAX` (or anything past the clock's range) means never.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_supervisor::{stub, ExitReason, Session, SessionSupervisor};
    ///
    /// let sup = SessionSupervisor::builder()
    ///     .idle_timeout(Duration::from_millis(20))
    ///     .build();
    /// let handle = sup.start_session(Session::new(std::env::temp_dir())?, stub::idle())?;
    /// let report = handle.wait_timeout(Duration::from_secs(10)).expect("stopped when idle");
    /// assert_eq!(report.reason(), &ExitReason::Idle { timeout: Duration::from_millis(20) });
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn idle_timeout(mut self, timeout: Duration) -> SupervisorBuilder<M> {
        self.idle_timeout = Some(timeout).filter(|t| *t != Duration::MAX);
        self
    }

    /// What a start does when the supervisor is full: refuse (the default), or evict a
    /// running session to make room. See [`AdmissionPolicy`].
    pub fn admission(mut self, policy: AdmissionPolicy) -> SupervisorBuilder<M> {
        self.admission = policy;
        self
    }

    /// Builds the supervisor.
    pub fn build(self) -> SessionSupervisor<M> {
        SessionSupervisor::from_builder(self)
    }
}

impl<M> Clone for SupervisorBuilder<M> {
    fn clone(&self) -> Self {
        SupervisorBuilder { ..*self }
    }
}

impl<M> fmt::Debug for SupervisorBuilder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorBuilder")
            .field("max_sessions", &self.max_sessions)
            .field("stop_timeout", &self.stop_timeout)
            .field("stack_size", &self.stack_size)
            .field("mailbox_capacity", &self.mailbox_capacity)
            .field("policy", &self.policy)
            .field("child_strategy", &self.child_strategy)
            .field("max_children", &self.max_children)
            .field("warm_threads", &self.warm_threads)
            .field("warm_thread_timeout", &self.warm_thread_timeout)
            .field("init_timeout", &self.init_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("admission", &self.admission)
            .finish()
    }
}

impl Default for SupervisorBuilder {
    fn default() -> SupervisorBuilder {
        SupervisorBuilder::new()
    }
}
