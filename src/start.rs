//! [`Start`]: the choices of one start, made before the session runs.

use std::fmt;

use crate::restart::{Fresh, Reused};
use crate::{
    RestartPolicy, Result, Session, SessionBody, SessionContext, SessionHandle, SessionSupervisor,
};

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
    policy: RestartPolicy,
}

impl<'a, M> Start<'a, M> {
    pub(crate) fn new(
        supervisor: &'a SessionSupervisor<M>,
        session: Session,
        policy: RestartPolicy,
    ) -> Start<'a, M> {
        Start {
            supervisor,
            session,
            policy,
        }
    }

    /// Uses this restart policy instead of the supervisor's.
    pub fn policy(mut self, policy: RestartPolicy) -> Start<'a, M> {
        self.policy = policy;
        self
    }
}

impl<M: Send + 'static> Start<'_, M> {
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
        let bodies = Reused(Some(body));
        self.supervisor
            .start_with(self.session, bodies, self.policy)
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
    pub fn factory<F, B>(self, make: F) -> Result<SessionHandle<M>>
    where
        F: FnMut() -> B + Send + 'static,
        B: SessionBody<M>,
    {
        self.supervisor
            .start_with(self.session, Fresh(make), self.policy)
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
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}
