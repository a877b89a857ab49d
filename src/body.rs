//! What runs on a session thread: the [`SessionBody`] trait and the [`SessionContext`]
//! it is given.

use std::cell::Cell;
use std::convert::Infallible;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{select, Receiver, RecvTimeoutError as ChannelTimeout};

use crate::boundary::drop_quietly;
use crate::cell::SessionCell;
use crate::lifecycle::Shared;
use crate::mailbox::{Inbox, StopSignal};
use crate::message::{RecvTimeoutError, TryRecvError};
use crate::stats::Tracker;
use crate::wait::Wait;
use crate::{ChildHandle, ChildStart, Control, Error, Result, Session, SessionId};

/// The error type `init` may return; its text becomes the reason of
/// [`Error::StartFailed`](crate::Error::StartFailed).
pub type InitError = Box<dyn StdError + Send + Sync>;

/// The work of a session, run on the session's own thread.
///
/// `init` runs first (again on every restart); the supervisor's `start_session` returns
/// only after the first `init` finished, and fails with
/// [`Error::StartFailed`](crate::Error::StartFailed) if it returns an error or panics.
/// Then `run` runs until it returns; a body that returns ends its session (unless its
/// [`RestartPolicy`](crate::RestartPolicy) runs it again). A long-running body should
/// block on [`SessionContext::recv`], [`SessionContext::wait_for_stop`] or a select
/// on [`SessionContext::control`], and return once a stop is requested.
///
/// Given as a value ([`Start::body`](crate::Start::body)), a restart runs `init` and
/// `run` again on the same value, which keeps whatever state the crashed run left in
/// it: reset what matters in `init`. Given as a factory
/// ([`Start::factory`](crate::Start::factory)), each restart runs a fresh value.
///
/// Any `FnMut(&SessionContext) + Send + 'static` closure is a body whose `run` is the
/// closure; [`SessionSupervisor::start_session`](crate::SessionSupervisor::start_session)
/// and [`Start::run`](crate::Start::run) take one.
///
/// # Examples
///
/// ```
/// use session_supervisor::{InitError, Session, SessionBody, SessionContext, SessionSupervisor};
///
/// struct Indexer {
///     files: usize,
/// }
///
/// impl SessionBody for Indexer {
///     fn init(&mut self, ctx: &SessionContext) -> Result<(), InitError> {
///         self.files = std::fs::read_dir(ctx.session().project_path())?.count();
///         Ok(())
///     }
///
///     fn run(&mut self, ctx: &SessionContext) {
///         ctx.wait_for_stop();
///     }
/// }
///
/// let sup = SessionSupervisor::new();
/// let session = Session::new(std::env::temp_dir())?;
/// let handle = sup.start(session).body(Indexer { files: 0 })?;
/// assert!(handle.is_running());
/// sup.stop_session(handle.id())?;
/// # Ok::<(), session_supervisor::Error>(())
/// ```
pub trait SessionBody<M = ()>: Send + 'static {
    /// Prepares the session; runs on the session thread before `run`.
    ///
    /// # Errors
    ///
    /// An error fails the start (or, on a restart, ends the session with
    /// [`ExitReason::InitFailed`](crate::ExitReason::InitFailed)).
    fn init(&mut self, ctx: &SessionContext<M>) -> Result<(), InitError> {
        let _ = ctx;
        Ok(())
    }

    /// Does the session's work; the session ends (or restarts) when it returns.
    fn run(&mut self, ctx: &SessionContext<M>);
}

impl<M, F> SessionBody<M> for F
where
    F: FnMut(&SessionContext<M>) + Send + 'static,
{
    fn run(&mut self, ctx: &SessionContext<M>) {
        self(ctx)
    }
}

/// What a session body can see of its session: its metadata, its restart count, and its
/// control channel of messages of type `M` and the stop signal.
///
/// This struct is created by the supervisor and lent to [`SessionBody::init`] and
/// [`SessionBody::run`]; it lives on the session thread. The mailbox outlives restarts:
/// messages queued while the body restarts are read by the next run.
pub struct SessionContext<M = ()> {
    session: Session,
    /// The messages and the stop signals; the stop can be waited for apart from the
    /// messages, so `wait_for_stop` leaves them alone.
    inbox: Inbox<M>,
    /// The signal that ends this run: a stop, or (with children) a restart of the tree.
    run: Arc<StopSignal>,
    restarts: Cell<u32>,
    role: Role<M>,
    /// Set once the body started a child: its tree may then end a run without a stop
    /// (one-for-all), so receives watch the run's signal too.
    has_children: Cell<bool>,
    /// Messages taken since the last activity was recorded.
    unrecorded: Cell<u32>,
    /// Whether a receive found the mailbox empty since the last message taken.
    drained: Cell<bool>,
}

/// Whose context it is: a session's body, which can start children, or a child's.
enum Role<M> {
    Session {
        shared: Arc<Shared<M>>,
        cell: Arc<SessionCell<M>>,
    },
    Child {
        name: String,
        /// The session the child works for.
        parent: Arc<SessionCell<M>>,
    },
}

impl<M> fmt::Debug for SessionContext<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionContext")
            .field("session", &self.session)
            .field("child_name", &self.child_name())
            .field("restarts", &self.restarts.get())
            .field("stop_requested", &self.stop_requested())
            .finish_non_exhaustive()
    }
}

impl<M> SessionContext<M> {
    pub(crate) fn for_session(
        session: Session,
        inbox: Inbox<M>,
        shared: Arc<Shared<M>>,
        cell: Arc<SessionCell<M>>,
    ) -> Self {
        SessionContext::new(session, inbox, Role::Session { shared, cell })
    }

    pub(crate) fn for_child(
        session: Session,
        inbox: Inbox<M>,
        name: String,
        parent: Arc<SessionCell<M>>,
    ) -> Self {
        SessionContext::new(session, inbox, Role::Child { name, parent })
    }

    fn new(session: Session, inbox: Inbox<M>, role: Role<M>) -> Self {
        let run = inbox.signals.run();
        SessionContext {
            session,
            inbox,
            run,
            restarts: Cell::new(0),
            role,
            has_children: Cell::new(false),
            unrecorded: Cell::new(0),
            // Nothing taken yet: the first message is recorded however it comes.
            drained: Cell::new(true),
        }
    }

    /// The name of the child this context belongs to; `None` in the session's own body.
    #[must_use]
    pub fn child_name(&self) -> Option<&str> {
        match &self.role {
            Role::Session { .. } => None,
            Role::Child { name, .. } => Some(name),
        }
    }

    /// Whether the worker itself is stopping (no restart, no new run); its current run
    /// may go on until its children stopped.
    pub(crate) fn stopping(&self) -> bool {
        self.inbox.signals.stop().is_raised()
    }

    /// Takes the signal of the next run (a fresh one after an interrupt).
    pub(crate) fn renew_run(&mut self) {
        self.run = self.inbox.signals.renew_run();
    }

    /// Whether a message just taken is handed to the body: unless a stop came
    /// meanwhile, which takes priority over messages. An interrupt (a restart of the
    /// tree) does not: the message is the body's to answer before its run ends.
    fn hands_over(&self) -> bool {
        !self.stop_requested() || !self.stopping()
    }

    /// Whether a run may end without the mailbox closing (an interrupt by the tree).
    fn interruptible(&self) -> bool {
        self.has_children.get() || matches!(self.role, Role::Child { .. })
    }

    /// Waits for the next item of the control channel, or for the end of the run.
    fn next_item(&self, wait: Wait) -> std::result::Result<Control<M>, ChannelTimeout> {
        if !self.interruptible() {
            return wait.recv(&self.inbox.control);
        }
        let (control, ended) = (&self.inbox.control, self.run.woken());
        let timeout = match wait {
            Wait::No => {
                return self
                    .inbox
                    .control
                    .try_recv()
                    .map_err(|_| ChannelTimeout::Timeout)
            }
            Wait::Forever => None,
            Wait::Until(deadline) => {
                Some(deadline.saturating_duration_since(std::time::Instant::now()))
            }
        };
        match timeout {
            None => select! {
                recv(control) -> item => item.map_err(|_| ChannelTimeout::Disconnected),
                recv(ended) -> _ => Err(ChannelTimeout::Disconnected),
            },
            Some(timeout) => select! {
                recv(control) -> item => item.map_err(|_| ChannelTimeout::Disconnected),
                recv(ended) -> _ => Err(ChannelTimeout::Disconnected),
                default(timeout) => Err(ChannelTimeout::Timeout),
            },
        }
    }

    /// Starts a child of this session: a named worker on a thread of its own, run with
    /// a context like this one, owned and supervised by the session. Returns once the
    /// child's `init` finished.
    ///
    /// The closure is the child's body; a restart runs it again (see
    /// [`start_child`](Self::start_child) for a body value or a factory). The session's
    /// [`ChildStrategy`](crate::ChildStrategy) says what a crash of a child restarts.
    /// Children stop with their session: newest first, then the session's body.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidName`] as for a session name;
    /// - [`Error::ChildExists`] if a running child of the session has the name;
    /// - [`Error::ChildLimitReached`] past the supervisor's
    ///   [`max_children`](crate::SupervisorBuilder::max_children);
    /// - [`Error::SessionGone`] if the session is stopping;
    /// - [`Error::NestedChild`] in a child's context: children have no children;
    /// - [`Error::Child`] with [`Error::Spawn`] or [`Error::StartFailed`] inside, if the
    ///   thread could not be spawned or the child's `init` failed; the child is gone by
    ///   then.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_supervisor::{ReplyTo, Session, SessionSupervisor};
    ///
    /// let sup = SessionSupervisor::builder().messages::<ReplyTo<String>>().build();
    /// let handle = sup
    ///     .start(Session::new(std::env::temp_dir())?)
    ///     // Children started in `init` run by the time the start returns.
    ///     .init(|ctx| {
    ///         ctx.spawn_child("indexer", |child| {
    ///             while let Some(reply) = child.recv() {
    ///                 reply.send(format!("{} here", child.child_name().unwrap_or("?")));
    ///             }
    ///         })?;
    ///         Ok(())
    ///     })
    ///     .run(|ctx| ctx.wait_for_stop())?;
    /// let indexer = sup.find_child(handle.id(), "indexer")?;
    /// assert_eq!(indexer.call(|reply| reply, Duration::from_secs(5))?, "indexer here");
    /// handle.stop()?;
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn spawn_child<F>(&self, name: impl Into<String>, body: F) -> Result<ChildHandle<M>>
    where
        F: FnMut(&SessionContext<M>) + Send + 'static,
        M: Send + 'static,
    {
        self.start_child(name).run(body)
    }

    /// Prepares the start of a child with more choices than
    /// [`spawn_child`](Self::spawn_child): a [`SessionBody`] value, or a factory that
    /// makes a fresh body for each restart. Nothing happens until one of
    /// [`ChildStart`]'s `run`, `body` or `factory` is called.
    pub fn start_child(&self, name: impl Into<String>) -> ChildStart<'_, M> {
        ChildStart::new(self, name.into())
    }

    /// Starts a child from a source of bodies: the one place every child start form
    /// ends.
    pub(crate) fn spawn_with<S>(&self, name: String, bodies: S) -> Result<ChildHandle<M>>
    where
        S: crate::restart::Bodies<M>,
        M: Send + 'static,
    {
        match &self.role {
            Role::Session { shared, cell } => {
                let child = crate::child::spawn(shared, cell, name, bodies)?;
                self.has_children.set(true);
                Ok(child)
            }
            Role::Child { name: parent, .. } => Err(Error::NestedChild {
                id: self.id(),
                child: parent.clone(),
            }),
        }
    }

    /// The session's metadata as it was when the session started.
    #[must_use]
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session's id.
    #[must_use]
    pub fn id(&self) -> SessionId {
        self.session.id()
    }

    /// How many restarts came before this run of the body.
    #[must_use]
    pub fn restarts(&self) -> u32 {
        self.restarts.get()
    }

    pub(crate) fn set_restarts(&self, restarts: u32) {
        self.restarts.set(restarts);
    }

    /// Whether a stop was requested: this run should end. Once `true`, it stays `true`
    /// for this run.
    ///
    /// In a session with children it turns `true` once the children have stopped
    /// (they stop first), and also when a crash of a child restarts the whole tree
    /// ([`ChildStrategy::OneForAll`](crate::ChildStrategy::OneForAll)); in a child, also
    /// when a crash of an earlier child restarts it
    /// ([`ChildStrategy::RestForOne`](crate::ChildStrategy::RestForOne)).
    #[must_use]
    pub fn stop_requested(&self) -> bool {
        self.run.is_raised()
    }

    /// A channel that is disconnected once this run should end (when
    /// [`stop_requested`](Self::stop_requested) turns `true`): for a body that selects
    /// on its own channels and [`control`](Self::control). Nothing is ever sent on it.
    ///
    /// Only a body whose run can end without a stop needs it: one with children (a
    /// one-for-all restart ends its run) or a child (a rest-for-one restart ends its
    /// run); a stop also closes [`control`](Self::control).
    #[must_use]
    pub fn stop_signal(&self) -> &Receiver<Infallible> {
        self.run.woken()
    }

    /// Blocks until a stop is requested (woken by the stop, no polling). Messages stay
    /// in the mailbox.
    pub fn wait_for_stop(&self) {
        self.run.wait(Wait::Forever);
    }

    /// Blocks until a stop is requested or `timeout` passes; returns whether a stop was
    /// requested. Handy for bodies that do periodic work. Messages stay in the mailbox.
    /// A timeout too large for a deadline (such as `Duration::MAX`) waits for the stop.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_supervisor::{Session, SessionSupervisor};
    ///
    /// let sup = SessionSupervisor::new();
    /// let handle = sup.start_session(Session::new(std::env::temp_dir())?, |ctx| {
    ///     while !ctx.wait_for_stop_timeout(Duration::from_millis(10)) {
    ///         // periodic work
    ///     }
    /// })?;
    /// sup.stop_session(handle.id())?;
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn wait_for_stop_timeout(&self, timeout: Duration) -> bool {
        self.run.wait(Wait::at_most(timeout))
    }

    /// Waits for the next message; `None` once a stop is requested.
    ///
    /// A stop takes priority over queued messages: once it is requested, `recv` returns
    /// `None` even if messages are waiting (they are dropped with the session).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use session_supervisor::{Session, SessionSupervisor};
    ///
    /// let (seen_tx, seen_rx) = mpsc::channel();
    /// let sup = SessionSupervisor::builder().messages::<u32>().build();
    /// let handle = sup.start_session(Session::new(std::env::temp_dir())?, move |ctx| {
    ///     while let Some(n) = ctx.recv() {
    ///         seen_tx.send(n).unwrap();
    ///     }
    /// })?;
    /// handle.send(1)?;
    /// handle.send(2)?;
    /// assert_eq!(seen_rx.recv().unwrap(), 1);
    /// assert_eq!(seen_rx.recv().unwrap(), 2);
    /// sup.stop_session(handle.id())?;
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn recv(&self) -> Option<M> {
        if self.stop_requested() {
            return None;
        }
        match self.take(Wait::Forever) {
            Ok(Control::Message(message)) if self.hands_over() => Some(self.took(message)),
            _ => None,
        }
    }

    /// Waits up to `timeout` for the next message.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Stopped`] once a stop is requested (it takes priority over
    /// queued messages); [`RecvTimeoutError::Timeout`] if no message came in time.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<M, RecvTimeoutError> {
        if self.stop_requested() {
            return Err(RecvTimeoutError::Stopped);
        }
        match self.take(Wait::at_most(timeout)) {
            Ok(Control::Message(message)) if self.hands_over() => Ok(self.took(message)),
            Err(ChannelTimeout::Timeout) => Err(RecvTimeoutError::Timeout),
            _ => Err(RecvTimeoutError::Stopped),
        }
    }

    /// Takes the next message if one is waiting, without blocking.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Stopped`] once a stop is requested; [`TryRecvError::Empty`] if no
    /// message is waiting.
    pub fn try_recv(&self) -> Result<M, TryRecvError> {
        if self.stop_requested() {
            return Err(TryRecvError::Stopped);
        }
        match self.inbox.control.try_recv() {
            Ok(Control::Message(message)) if self.hands_over() => Ok(self.took(message)),
            Err(crossbeam_channel::TryRecvError::Empty) => {
                self.found_empty();
                Err(TryRecvError::Empty)
            }
            _ => Err(TryRecvError::Stopped),
        }
    }

    /// Marks the session as active now, for its stats' [last
    /// activity](crate::SessionStats::last_activity) and its idle timeout (see
    /// [`Start::idle_timeout`](crate::Start::idle_timeout)). Taking a message with
    /// [`recv`](Self::recv), [`recv_timeout`](Self::recv_timeout) or
    /// [`try_recv`](Self::try_recv) does this already; call it while the body works
    /// without messages, or reads [`control`](Self::control) itself. A child's call
    /// marks its session.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_supervisor::{Session, SessionSupervisor};
    ///
    /// let sup = SessionSupervisor::new();
    /// let handle = sup
    ///     .start(Session::new(std::env::temp_dir())?)
    ///     .idle_timeout(Duration::from_secs(60))
    ///     .run(|ctx| {
    ///         // A long job without messages: it is not idle.
    ///         while !ctx.wait_for_stop_timeout(Duration::from_millis(1)) {
    ///             ctx.touch();
    ///             # break;
    ///         }
    ///         ctx.wait_for_stop();
    ///     })?;
    /// handle.stop()?;
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    pub fn touch(&self) {
        self.tracker().touch();
    }

    /// The counters of the session this context works for.
    pub(crate) fn tracker(&self) -> &Tracker {
        match &self.role {
            Role::Session { cell, .. } | Role::Child { parent: cell, .. } => cell.tracker(),
        }
    }

    /// The next item: at once if one is queued, else waited for as `wait` allows (and
    /// the mailbox is then known to have been empty).
    fn take(&self, wait: Wait) -> std::result::Result<Control<M>, ChannelTimeout> {
        match self.inbox.control.try_recv() {
            Ok(item) => return Ok(item),
            Err(crossbeam_channel::TryRecvError::Disconnected) => {
                return Err(ChannelTimeout::Disconnected)
            }
            Err(crossbeam_channel::TryRecvError::Empty) => self.found_empty(),
        }
        self.next_item(wait)
    }

    /// A receive found the mailbox empty: the messages taken since the last record
    /// were all handled, which is activity until now; the next message taken is one
    /// the body waited for.
    fn found_empty(&self) {
        self.drained.set(true);
        if self.unrecorded.replace(0) > 0 {
            self.touch();
        }
    }

    /// Records the activity of a message taken: the first taken after the mailbox was
    /// found empty (or the first of all), and every 64th of a backlog; the end of a
    /// backlog is recorded when the mailbox is next found empty. So the clock is read
    /// at most about once per message waited for, never per message of a backlog, and
    /// nothing the senders write is read to decide.
    fn took(&self, message: M) -> M {
        let taken = self.unrecorded.get() + 1;
        if self.drained.replace(false) || taken >= 64 {
            self.unrecorded.set(0);
            self.touch();
        } else {
            self.unrecorded.set(taken);
        }
        message
    }

    /// Drops every queued message, each inside a panic boundary (a message's `Drop` is
    /// user code). Called once the mailbox is closed, so the session thread, not the
    /// last sender, drops what is left.
    pub(crate) fn discard_messages(&self) {
        for item in self.inbox.control.try_iter() {
            drop_quietly(item);
        }
    }

    /// The control channel: the session's messages and the stop signal, for bodies that
    /// wait on their own channels too.
    ///
    /// Each item is a [`Control`]. A stop comes after the messages queued before it;
    /// check [`stop_requested`](Self::stop_requested) after each message if the
    /// stop should win, as [`recv`](Self::recv) does. A stop also closes the channel, so
    /// a receive error means the same as `Stop` (it is what a body sees if its
    /// mailbox was full when the stop came).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_supervisor::crossbeam_channel::{select, unbounded};
    /// use session_supervisor::{Control, Session, SessionSupervisor};
    ///
    /// let (jobs_tx, jobs_rx) = unbounded::<u32>();
    /// let (log_tx, log_rx) = unbounded::<String>();
    /// let sup = SessionSupervisor::builder().messages::<String>().build();
    /// let handle = sup.start_session(Session::new(std::env::temp_dir())?, move |ctx| loop {
    ///     select! {
    ///         recv(ctx.control()) -> item => match item {
    ///             Ok(Control::Message(text)) => log_tx.send(text).unwrap(),
    ///             _ => return, // Stop, or the channel closed by the stop
    ///         },
    ///         recv(jobs_rx) -> job => log_tx.send(format!("job {}", job.unwrap())).unwrap(),
    ///     }
    /// })?;
    /// handle.send("hello".into())?;
    /// assert_eq!(log_rx.recv().unwrap(), "hello");
    /// jobs_tx.send(7).unwrap();
    /// assert_eq!(log_rx.recv().unwrap(), "job 7");
    /// sup.stop_session(handle.id())?;
    /// # Ok::<(), session_supervisor::Error>(())
    /// ```
    #[must_use]
    pub fn control(&self) -> &Receiver<Control<M>> {
        &self.inbox.control
    }
}
