//! [`Start`]: the choices of one start, made before the session runs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::lifecycle::Options;
use crate::restart::{Bodies, Fresh, Reused};
use crate::{
    ChildHandle, ChildStrategy, InitError, RestartPolicy, Result, Session, SessionBody,
    SessionContext, SessionHandle, SessionSupervisor,
};

/// An init closure given to [`Start::init`], shared by the bodies of every run.
type InitFn<M> = Arc<Mutex<Box<dyn FnMut(&SessionContext<M>) -> InitResult + Send>>>;
type InitResult = std::result::Result<(), InitError>;

/// One start, prepared: the session, and the restart policy it will run under. Choose
/// how the body is given to start it:
///
/// - [`run`](Self::run): a closure, run again on each restart;
/// - [`body`](Self::body): a [`SessionBody`] value, whose `init` and `run` run again on
///   each restart, on the same value: state a crash left in it carries over, so reset
///   what matters in `init`;
/// - [`factory`](Self::factory) and [`run_factory`](Self::run_factory): a function that
///   makes a fresh body (a value or a closure) for the first run and for each restart,
///   as an OTP child spec does: nothing of a crashed run carries over but what the
///   factory itself keeps.
///
/// Each of these infers the body's types; none needs an annotation.
///
/// This struct is created by [`SessionSupervisor::start`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use session_supervisor::{
///     InitError, Restart, RestartPolicy, Session, SessionBody, SessionContext, SessionSupervisor,
/// };
///
/// #[derive(Default)]
/// struct Indexer {
///     files: Vec<String>,
/// }
///
/// impl SessionBody for Indexer {
///     fn init(&mut self, ctx: &SessionContext) -> Result<(), InitError> {
///         for entry in std::fs::read_dir(ctx.session().project_path())? {
///             self.files.push(entry?.file_name().to_string_lossy().into_owned());
///         }
///         Ok(())
///     }
///
///     fn run(&mut self, ctx: &SessionContext) {
///         ctx.wait_for_stop();
///     }
/// }
///
/// let sup = SessionSupervisor::new();
/// let handle = sup
///     .start(Session::new(std::env::temp_dir())?)
///     .policy(RestartPolicy::new(Restart::Permanent))
///     .factory(Indexer::default)?; // a fresh, empty index on every restart
/// handle.stop()?;
/// # Ok::<(), session_supervisor::Error>(())
/// ```
#[must_use = "a start does nothing until `run`, `body` or a factory is given"]
pub struct Start<'a, M> {
    supervisor: &'a SessionSupervisor<M>,
    session: Session,
    options: Options,
    init: Option<InitFn<M>>,
}

impl<'a, M> Start<'a, M> {
    pub(crate) fn new(
        supervisor: &'a SessionSupervisor<M>,
        session: Session,
        options: Options,
    ) -> Start<'a, M> {
        Start {
            supervisor,
            session,
            options,
            init: None,
        }
    }

    /// Stops this session once it had no activity for `timeout`, instead of the
    /// supervisor's [`SupervisorBuilder::idle_timeout`](crate::SupervisorBuilder::idle_timeout)
    /// (see there). `Duration::MAX` means never.
    pub fn idle_timeout(mut self, timeout: Duration) -> Start<'a, M> {
        self.options.idle_timeout = Some(timeout).filter(|t| *t != Duration::MAX);
        self
    }

    /// Uses this restart policy instead of the supervisor's.
    pub fn policy(mut self, policy: RestartPolicy) -> Start<'a, M> {
        self.options.policy = policy;
        self
    }

    /// How this session's children are restarted when one crashes, instead of the
    /// supervisor's [`SupervisorBuilder::child_strategy`](crate::SupervisorBuilder::child_strategy).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_supervisor::{ChildStrategy, Session, SessionEvent, SessionSupervisor};
    ///
    /// session_supervisor::quiet_session_panics();
    /// let sup = SessionSupervisor::new();
    /// let events = sup.subscribe();
    /// let handle = sup
    ///     .start(Session::new(std::env::temp_dir())?)
    ///     .child_strategy(ChildStrategy::OneForOne)
    ///     .run(|ctx| {
    ///         ctx.spawn_child("steady", |c| c.wait_for_stop()).expect("started");
    ///         ctx.spawn_child("flaky", |c| {
    ///             if c.restarts() == 0 {
    ///                 panic!("first run crashes");
    ///             }
    ///             c.wait_for_stop();
    ///         })
    ///         .expect("started");
    ///         ctx.wait_for_stop();
    ///     })?;
    /// let restarted = |e: &SessionEvent| matches!(e, SessionEvent::ChildRestarted { .. });
    /// assert!(events.wait_for(restarted, Duration::from_secs(5)).is_some());
    /// // Only the crashed child was restarted; the session and "steady" ran on.
    /// assert_eq!(handle.child("flaky")?.restarts(), 1);
    /// assert_eq!(handle.child("steady")?.restarts(), 0);
    /// handle.stop()?;
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn child_strategy(mut self, strategy: ChildStrategy) -> Start<'a, M> {
        self.options.strategy = strategy;
        self
    }
}

impl<'a, M: Send + 'static> Start<'a, M> {
    /// Runs `init` on the session thread before each run of the body (before the
    /// body's own [`SessionBody::init`]), the first time and after every restart: the
    /// start returns once it finished, and fails with
    /// [`Error::StartFailed`](crate::Error::StartFailed) if it returns an error or
    /// panics. The place to start children with a closure body, so that they run by
    /// the time the start returns.
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
    ///         ctx.spawn_child("watcher", stub::idle())?;
    ///         ctx.spawn_child("indexer", stub::idle())?;
    ///         Ok(())
    ///     })
    ///     .run(|ctx| ctx.wait_for_stop())?;
    /// // Both children run by the time the start returns.
    /// let names: Vec<_> = handle.children().iter().map(|c| c.name().to_owned()).collect();
    /// assert_eq!(names, ["watcher", "indexer"]);
    /// let report = handle.stop()?;
    /// assert_eq!(report.children().len(), 2);
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn init<F>(mut self, init: F) -> Start<'a, M>
    where
        F: FnMut(&SessionContext<M>) -> InitResult + Send + 'static,
    {
        self.init = Some(Arc::new(Mutex::new(Box::new(init))));
        self
    }

    /// Starts the session with a closure as its body.
    ///
    /// # Errors
    ///
    /// As for [`SessionSupervisor::start_session`], and [`Error::InvalidPolicy`] for a
    /// policy that cannot be applied.
    ///
    /// [`Error::InvalidPolicy`]: crate::Error::InvalidPolicy
    pub fn run<F>(self, body: F) -> Result<SessionHandle<M>>
    where
        F: FnMut(&SessionContext<M>) + Send + 'static,
    {
        self.body(body)
    }

    /// Starts the session with a [`SessionBody`] value.
    ///
    /// # Errors
    ///
    /// As for [`run`](Self::run).
    pub fn body<B: SessionBody<M>>(self, body: B) -> Result<SessionHandle<M>> {
        let Start {
            supervisor,
            session,
            options,
            init,
        } = self;
        match init {
            Some(init) => {
                let body = WithInit { init, body };
                supervisor.start_with(session, Reused(Some(body)), options)
            }
            None => supervisor.start_with(session, Reused(Some(body)), options),
        }
    }

    /// Starts the session with a factory of [`SessionBody`] values: each run, the first
    /// and every restart, gets a fresh one. A factory that panics fails the start (the
    /// first time) or ends the session with [`ExitReason::Panicked`].
    ///
    /// # Errors
    ///
    /// As for [`run`](Self::run).
    ///
    /// [`ExitReason::Panicked`]: crate::ExitReason::Panicked
    pub fn factory<F, B>(self, mut make: F) -> Result<SessionHandle<M>>
    where
        F: FnMut() -> B + Send + 'static,
        B: SessionBody<M>,
    {
        let Start {
            supervisor,
            session,
            options,
            init,
        } = self;
        match init {
            Some(init) => {
                let make = move || WithInit {
                    init: Arc::clone(&init),
                    body: make(),
                };
                supervisor.start_with(session, Fresh(make), options)
            }
            None => supervisor.start_with(session, Fresh(make), options),
        }
    }

    /// Starts the session with a factory of closures: each run, the first and every
    /// restart, gets a fresh one, with whatever it captures made anew.
    ///
    /// # Errors
    ///
    /// As for [`run`](Self::run).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_supervisor::{Restart, RestartPolicy, Session, SessionSupervisor};
    ///
    /// let sup = SessionSupervisor::builder().messages::<u32>().build();
    /// let handle = sup
    ///     .start(Session::new(std::env::temp_dir())?)
    ///     .run_factory(|| {
    ///         let mut total = 0; // starts at 0 again after a crash
    ///         move |ctx| {
    ///             while let Some(n) = ctx.recv() {
    ///                 total += n;
    ///             }
    ///         }
    ///     })?;
    /// handle.send(1)?;
    /// handle.stop()?;
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn run_factory<F, G>(self, mut make: F) -> Result<SessionHandle<M>>
    where
        F: FnMut() -> G + Send + 'static,
        G: FnMut(&SessionContext<M>) + Send + 'static,
    {
        self.factory(move || RunFn(make()))
    }
}

/// A body with the init closure of [`Start::init`] run before its own `init`.
struct WithInit<M, B> {
    init: InitFn<M>,
    body: B,
}

impl<M: Send + 'static, B: SessionBody<M>> SessionBody<M> for WithInit<M, B> {
    fn init(&mut self, ctx: &SessionContext<M>) -> InitResult {
        (self.init.lock())(ctx)?;
        self.body.init(ctx)
    }

    fn run(&mut self, ctx: &SessionContext<M>) {
        self.body.run(ctx);
    }
}

/// A closure made by a factory, as a body: names the closure's argument type, so the
/// factory's closure infers.
struct RunFn<G>(G);

impl<M, G> SessionBody<M> for RunFn<G>
where
    G: FnMut(&SessionContext<M>) + Send + 'static,
{
    fn run(&mut self, ctx: &SessionContext<M>) {
        (self.0)(ctx)
    }
}

impl<M> fmt::Debug for Start<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Start")
            .field("session", &self.session)
            .field("policy", &self.options.policy)
            .field("child_strategy", &self.options.strategy)
            .field("init", &self.init.is_some())
            .finish_non_exhaustive()
    }
}

/// The choices of one child's start, made before it runs: its body as a closure, a
/// [`SessionBody`] value, or a factory that makes a fresh body for each restart.
///
/// This struct is created by [`SessionContext::start_child`]. Each method starts the
/// child as [`SessionContext::spawn_child`] does, with the same errors.
///
/// # Examples
///
/// ```
/// use session_supervisor::{Session, SessionSupervisor};
///
/// let sup = SessionSupervisor::new();
/// let handle = sup
///     .start(Session::new(std::env::temp_dir())?)
///     .init(|ctx| {
///         ctx.start_child("indexer").run_factory(|| {
///             let mut seen = Vec::<String>::new(); // fresh on every restart
///             move |child| {
///                 seen.push("ran".to_owned());
///                 child.wait_for_stop();
///             }
///         })?;
///         Ok(())
///     })
///     .run(|ctx| ctx.wait_for_stop())?;
/// assert_eq!(handle.children().len(), 1);
/// handle.stop()?;
/// # Ok::<(), session_supervisor::Error>(())
/// ```
#[must_use = "a child start does nothing until `run`, `body` or a factory is given"]
pub struct ChildStart<'a, M> {
    ctx: &'a SessionContext<M>,
    name: String,
}

impl<'a, M> ChildStart<'a, M> {
    pub(crate) fn new(ctx: &'a SessionContext<M>, name: String) -> ChildStart<'a, M> {
        ChildStart { ctx, name }
    }
}

impl<M: Send + 'static> ChildStart<'_, M> {
    /// Starts the child with a closure as its body; a restart in place runs the same
    /// closure again.
    ///
    /// # Errors
    ///
    /// As for [`SessionContext::spawn_child`].
    pub fn run<F>(self, body: F) -> Result<ChildHandle<M>>
    where
        F: FnMut(&SessionContext<M>) + Send + 'static,
    {
        self.body(body)
    }

    /// Starts the child with a [`SessionBody`] value; a restart in place runs `init`
    /// and `run` again on the same value.
    ///
    /// # Errors
    ///
    /// As for [`SessionContext::spawn_child`].
    pub fn body<B: SessionBody<M>>(self, body: B) -> Result<ChildHandle<M>> {
        self.spawn(Reused(Some(body)))
    }

    /// Starts the child with a factory: every run (the first and each restart in place)
    /// gets a fresh body from `make`.
    ///
    /// # Errors
    ///
    /// As for [`SessionContext::spawn_child`].
    pub fn factory<F, B>(self, make: F) -> Result<ChildHandle<M>>
    where
        F: FnMut() -> B + Send + 'static,
        B: SessionBody<M>,
    {
        self.spawn(Fresh(make))
    }

    /// Starts the child with a factory of closures: every run gets a fresh closure.
    ///
    /// # Errors
    ///
    /// As for [`SessionContext::spawn_child`].
    pub fn run_factory<F, G>(self, mut make: F) -> Result<ChildHandle<M>>
    where
        F: FnMut() -> G + Send + 'static,
        G: FnMut(&SessionContext<M>) + Send + 'static,
    {
        self.factory(move || RunFn(make()))
    }

    fn spawn<S: Bodies<M>>(self, bodies: S) -> Result<ChildHandle<M>> {
        self.ctx.spawn_with(self.name, bodies)
    }
}

impl<M> fmt::Debug for ChildStart<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildStart")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
