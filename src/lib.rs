//! Long-lived, per-project sessions on plain OS threads, supervised.
//!
//! This crate gives a blocking Rust program what an Erlang/OTP application gets from a
//! `DynamicSupervisor` plus a `Registry`: start and stop *sessions*, each bound to one
//! project directory and running its body on its own thread; look them up by id, path
//! or name; restart them when they crash; and never lose track of one. No async
//! runtime is involved.
//!
//! If your program already runs on an async runtime and its sessions mostly wait on
//! I/O, an async actor crate fits better: tasks are cheaper than threads. This crate is
//! for sync code, for bodies that block, and for tests that want a real thread.
//!
//! # Quick start
//!
//! ```
//! use session_supervisor::{Error, ExitReason, Session, SessionSupervisor};
//!
//! let project = std::env::temp_dir();
//! let sup = SessionSupervisor::new(); // at most 10 sessions, 5 s stop timeout
//!
//! // A session is metadata (id, name, canonical path) plus a body run on its own thread.
//! let session = Session::new(&project)?;
//! let handle = sup.start_session(session, |ctx| {
//!     // ... do the session's work, then block until asked to stop:
//!     ctx.wait_for_stop();
//! })?;
//!
//! // Look it up by id, by path (any spelling), or by name.
//! assert_eq!(sup.lookup_by_path(&project)?.id(), handle.id());
//!
//! // Stop it: request the stop, wait for the thread, join it, unregister it.
//! let report = sup.stop_session(handle.id())?;
//! assert_eq!(report.reason(), &ExitReason::Stopped);
//! assert_eq!(sup.count(), 0);
//! # Ok::<(), Error>(())
//! ```
//!
//! # Lifecycle
//!
//! 1. [`Session::new`] validates: the path is made canonical and must be an existing
//!    UTF-8 directory; the name (the directory's name unless given) is trimmed and must
//!    be 1 to 50 characters without control characters and without invisible or
//!    layout-changing ones (Unicode format characters, line and paragraph separators).
//! 2. [`SessionSupervisor::start_session`] registers the session (the limit, then the
//!    id, then the path are checked and the entry inserted under one write lock), then
//!    spawns its thread. The thread runs [`SessionBody::init`]; `start_session` returns
//!    once `init` finished. If the spawn or `init` fails, the entry is removed before
//!    the error is returned: nothing is left half-registered, and no event published.
//! 3. The body runs. When it returns or panics, its [`RestartPolicy`] decides whether
//!    it runs again on the same thread, with the same id and entry.
//! 4. The session ends: once the body, its `Drop`, the `Drop` of queued messages and
//!    the destructors of the thread-locals it set have finished (returned or panicked;
//!    on a [warm thread](#warm-threads), thread-locals stay for the next session),
//!    and its children (see [Supervision trees](#supervision-trees)) have ended, an end
//!    guard on its thread unregisters it, records an [`ExitReport`], publishes
//!    `Exited` and wakes whoever waits for it. [`SessionSupervisor::stop_session`] asks
//!    for that end and waits for it (bounded by the stop timeout); a body that
//!    returns by itself gets there too. Dropping the supervisor, or
//!    [`SessionSupervisor::shutdown`], stops all sessions at once.
//!
//! Every timeout of the crate (the stop timeout, a call's, a wait's, a backoff)
//! may be `Duration::MAX`, or anything too large for a deadline: it then means "no
//! deadline".
//!
//! # Limits and duplicates
//!
//! ```
//! use session_supervisor::{stub, Error, Session, SessionSupervisor};
//!
//! let dir = std::env::temp_dir();
//! let sup = SessionSupervisor::builder().max_sessions(1).build();
//! let first = sup.start_session(Session::new(&dir)?, stub::idle())?;
//!
//! let full = sup.start_session(Session::new(&dir)?, stub::idle());
//! assert!(matches!(full, Err(Error::SessionLimitReached { max: 1 })));
//!
//! let other_dir = std::env::temp_dir().join(".");
//! let same_project = sup.lookup_by_path(&other_dir)?;
//! assert_eq!(same_project.id(), first.id());
//!
//! sup.stop_session(first.id())?;
//! let again = sup.start_session(Session::new(&other_dir)?, stub::idle())?;
//! assert!(sup.session_running(again.id()));
//! # Ok::<(), Error>(())
//! ```
//!
//! # Crashes and restarts
//!
//! A panicking body never affects the caller, the supervisor or other sessions. With
//! the default [`Restart::Transient`] policy it is run again, at most 3 times in 5
//! seconds; one more crash inside that window and the session gives up with
//! [`ExitReason::RestartLimit`]. See [`RestartPolicy`] (and [`Backoff`] for a wait
//! before each restart) and [`SessionSupervisor::start`] for a policy per session.
//!
//! A restart runs the same body value again by default; a factory
//! ([`Start::factory`], [`Start::run_factory`]) makes a fresh one for each restart, so
//! nothing a crash left broken carries over, as OTP restarts a child from its spec.
//!
//! ```
//! use std::time::Duration;
//! use session_supervisor::{ExitReason, Restart, RestartPolicy, Session, SessionSupervisor};
//!
//! session_supervisor::quiet_session_panics(); // crashes are expected here
//! let sup = SessionSupervisor::new();
//! let policy = RestartPolicy::new(Restart::Transient).intensity(2, Duration::from_secs(60));
//! let handle = sup
//!     .start(Session::new(std::env::temp_dir())?)
//!     .policy(policy)
//!     .run_factory(|| {
//!         let mut attempts = Vec::new(); // fresh for every run
//!         move |ctx| {
//!             attempts.push(ctx.restarts());
//!             assert_eq!(attempts.len(), 1);
//!             panic!("crash {}", ctx.restarts());
//!         }
//!     })?;
//! let report = handle.wait_timeout(Duration::from_secs(5)).expect("gave up");
//! let gave_up = ExitReason::RestartLimit { restarts: 2, last_panic: Some("crash 2".into()) };
//! assert_eq!(report.reason(), &gave_up);
//! # Ok::<(), session_supervisor::Error>(())
//! ```
//!
//! The standard panic hook prints each panic on stderr; the crate logs the restart
//! (warn) or the end (warn or error) through the `log` crate.
//! [`quiet_session_panics`] keeps session threads' panics off stderr, opt-in.
//!
//! # Messages and calls
//!
//! A supervisor carries one message type for all its sessions, chosen on the builder.
//! A session's messages and its stop signal come through one channel, its mailbox, so a
//! body blocks on a single receive; a stop takes priority over queued messages and never
//! waits for room in a full mailbox (it closes the mailbox, and closing needs no room).
//!
//! ```
//! use std::time::Duration;
//! use session_supervisor::{ReplyTo, Session, SessionSupervisor};
//!
//! enum Msg {
//!     Add(u64),
//!     Total(ReplyTo<u64>),
//! }
//!
//! let sup = SessionSupervisor::builder().messages::<Msg>().build();
//! let handle = sup.start_session(Session::new(std::env::temp_dir())?, |ctx| {
//!     let mut total = 0;
//!     while let Some(msg) = ctx.recv() {
//!         match msg {
//!             Msg::Add(n) => total += n,
//!             Msg::Total(reply) => reply.send(total),
//!         }
//!     }
//! })?;
//! handle.send(Msg::Add(40))?;
//! sup.send(handle.id(), Msg::Add(2))?;
//! assert_eq!(handle.call(Msg::Total, Duration::from_secs(5))?, 42);
//!
//! // After the session ended, a message comes back to its sender.
//! sup.stop_session(handle.id())?;
//! let undelivered = handle.send(Msg::Add(1)).unwrap_err();
//! assert!(matches!(undelivered.into_message(), Msg::Add(1)));
//! # Ok::<(), session_supervisor::Error>(())
//! ```
//!
//! # Lifecycle events
//!
//! [`SessionSupervisor::subscribe`] gives a [`Subscription`] to every `Started`,
//! `Restarting`, `Restarted` and `Exited` event from then on, each session's in order: a
//! session that started gets exactly one `Started` first and one `Exited` last, and a
//! start that failed gets none. Each restart is told twice: `Restarting` (with its
//! backoff delay) when the wait begins, so a crash loop shows as it happens, and
//! `Restarted` when the body runs again; a stop during the wait ends the session after
//! a `Restarting` alone. The events of a session's children (`ChildRestarted`,
//! `ChildExited`) come between its `Started` and its `Exited`. A directory's next
//! session starts only after the last one's `Exited` was published. A subscriber that
//! does not read never slows the sessions: its queue is bounded and drops the oldest
//! events, counting them.
//!
//! ```
//! use std::time::Duration;
//! use session_supervisor::{stub, ExitReason, Session, SessionEvent, SessionSupervisor};
//!
//! let sup = SessionSupervisor::new();
//! let events = sup.subscribe();
//! let session = Session::builder(std::env::temp_dir()).name("quick").build()?;
//! sup.start_session(session.clone(), stub::returns())?;
//! let exited = events.wait_for(|e| matches!(e, SessionEvent::Exited { .. }), Duration::from_secs(5));
//! // Every event carries the session: an observer can tell which one ended, by name too.
//! assert_eq!(exited, Some(SessionEvent::Exited { session, reason: ExitReason::Normal }));
//! # Ok::<(), session_supervisor::Error>(())
//! ```
//!
//! # Supervision trees
//!
//! A session's body may start *children*: named workers, each on a thread of its own,
//! run with a [`SessionContext`] of the session's message type
//! ([`SessionContext::child_name`] says which child). The session supervises them as an
//! OTP supervisor does its workers: it restarts them when they crash, and stops them
//! before it stops itself.
//!
//! - **Start** with [`SessionContext::spawn_child`] (a closure) or
//!   [`SessionContext::start_child`] (a [`SessionBody`] value or a factory, see
//!   [`ChildStart`]); each returns a [`ChildHandle`] once the child's `init` finished.
//!   Start them in the body's `init` ([`SessionBody::init`], or [`Start::init`] for a
//!   closure body): they then run by the time the start returns, and a restart of the
//!   whole session starts them again.
//! - **Talk** through a [`ChildHandle`]: `send`, `try_send` and `call`, as to a session;
//!   each child has a mailbox of its own. Children talk to each other through the
//!   handles the body gives them.
//! - **Find** a child with [`SessionSupervisor::find_child`] (by session id and name),
//!   [`SessionHandle::child`], or all of them, in start order, with
//!   [`SessionHandle::children`].
//! - **Restart**: the session's [`ChildStrategy`] says what a crashing child takes
//!   with it. [`OneForAll`](ChildStrategy::OneForAll), the default: the whole session
//!   (its other children stop, newest first, and its body restarts, whose `init` starts
//!   them again). [`OneForOne`](ChildStrategy::OneForOne): that child alone, restarted
//!   in place (its handle and mailbox kept). [`RestForOne`](ChildStrategy::RestForOne):
//!   that child and those started after it. Every restart, of a child or of the body,
//!   counts against the session's one restart intensity; past it, the session stops its
//!   children and gives up with [`ExitReason::RestartLimit`]. A child returns or crashes
//!   under its session's [`Restart`] (a temporary child is never restarted). A crash of
//!   the body stops all its children before the body restarts.
//! - **Stop**: a stop (or a shutdown) stops the children newest first, each one after
//!   the one before it ended, then ends the body's run: in a session with children,
//!   [`SessionContext::stop_requested`] turns `true` once they have stopped. A lingering
//!   child keeps its session registered (and its directory reserved) until it ends, and
//!   the stop's error names it: [`Error::Child`] with [`Error::StopTimeout`] inside.
//! - **Report**: `ChildRestarted` and `ChildExited` events, before the session's
//!   `Exited`; [`ExitReport::children`] tells how each child of the body's last run
//!   ended, in the order they ended ([`ChildExit`]).
//! - **Limits**: at most [`DEFAULT_MAX_CHILDREN`] (16) children per session, or
//!   [`SupervisorBuilder::max_children`] ([`Error::ChildLimitReached`]); each is a
//!   thread of the process's thread budget. A name is checked as a session name and
//!   unique among the session's running children ([`Error::ChildExists`]). Only a
//!   session's body starts children: a tree is one level deep ([`Error::NestedChild`]).
//!
//! ```
//! use std::time::Duration;
//! use session_supervisor::{
//!     ChildStrategy, InitError, ReplyTo, Session, SessionBody, SessionContext, SessionEvent,
//!     SessionSupervisor,
//! };
//!
//! /// Starts the tree in `init`: it runs once the start returns.
//! struct Project;
//!
//! impl SessionBody<ReplyTo<usize>> for Project {
//!     fn init(&mut self, ctx: &SessionContext<ReplyTo<usize>>) -> Result<(), InitError> {
//!         ctx.spawn_child("watcher", |child| child.wait_for_stop())?;
//!         ctx.spawn_child("indexer", |child| {
//!             while let Some(reply) = child.recv() {
//!                 assert!(child.restarts() > 0, "the first run crashes");
//!                 reply.send(42);
//!             }
//!         })?;
//!         Ok(())
//!     }
//!
//!     fn run(&mut self, ctx: &SessionContext<ReplyTo<usize>>) {
//!         ctx.wait_for_stop();
//!     }
//! }
//!
//! session_supervisor::quiet_session_panics(); // the crash is on purpose
//! let timeout = Duration::from_secs(5);
//! let sup = SessionSupervisor::builder().messages::<ReplyTo<usize>>().build();
//! let events = sup.subscribe();
//! let handle = sup
//!     .start(Session::new(std::env::temp_dir())?)
//!     .child_strategy(ChildStrategy::OneForOne)
//!     .body(Project)?;
//! let indexer = sup.find_child(handle.id(), "indexer")?;
//!
//! // The first call crashes the indexer: it alone restarts, in place.
//! assert!(indexer.call(|reply| reply, timeout).is_err());
//! let restarted = |e: &SessionEvent| matches!(e, SessionEvent::ChildRestarted { .. });
//! assert!(events.wait_for(restarted, timeout).is_some());
//! assert_eq!(indexer.call(|reply| reply, timeout)?, 42);
//! assert_eq!(indexer.restarts(), 1);
//! assert_eq!(handle.child("watcher")?.restarts(), 0);
//!
//! // The stop stops the children newest first, then the body.
//! let report = handle.stop()?;
//! let stopped: Vec<&str> = report.children().iter().map(|child| child.name()).collect();
//! assert_eq!(stopped, ["indexer", "watcher"]);
//! # Ok::<(), session_supervisor::Error>(())
//! ```
//!
//! The `session_tree` example runs such a tree per project directory, restarted whole
//! after a crash.
//!
//! # Warm threads
//!
//! A start spawns a thread and a stop joins it, which the kernel makes the largest
//! part of a session's cost. [`SupervisorBuilder::warm_threads`] keeps threads parked
//! after their session ended instead, and a start takes one: many times cheaper for a
//! program that opens and closes sessions often (an editor, a test suite). Every
//! guarantee holds unchanged; a thread is reused only after a clean end, parked ones end
//! after [`SupervisorBuilder::warm_thread_timeout`], and shutdown joins them all.
//!
//! ```
//! use session_supervisor::{stub, Session, SessionSupervisor};
//!
//! let sup = SessionSupervisor::builder().warm_threads(2).build();
//! sup.warm_up()?;
//! let handle = sup.start_session(Session::new(std::env::temp_dir())?, stub::idle())?;
//! assert_eq!(sup.idle_threads(), 1);
//! handle.stop()?;
//! assert_eq!(sup.idle_threads(), 2);
//! # Ok::<(), session_supervisor::Error>(())
//! ```
//!
//! The `warm_threads` example compares the two on the same projects.
//!
//! # Running many projects
//!
//! A program that keeps a session per open project (an editor, an agent host) has a
//! limit, and needs to see what its sessions do without asking each one (a stuck one
//! never answers). [`SessionHandle::stats`] reads a session's [`SessionState`]
//! (starting, running, restarting until a deadline, stopping, ended), uptime,
//! restarts, last crash, mailbox depth, message counts and last activity from its own
//! counters; [`SessionSupervisor::snapshot`] takes them for every session under one
//! read lock. An idle timeout stops a session that had no activity (a message or call
//! its body took, or a [`SessionContext::touch`]) for that long, with
//! [`ExitReason::Idle`]; an evicting [`AdmissionPolicy`] lets a start at the limit stop
//! the least recently active (or the oldest) running session and take its place, with
//! [`ExitReason::Evicted`], as one atomic decision.
//!
//! ```
//! use std::time::Duration;
//! use session_supervisor::{stub, AdmissionPolicy, ExitReason, Session, SessionSupervisor};
//!
//! let base = std::env::temp_dir().join(format!("many-doc-{}", std::process::id()));
//! let dirs: Vec<_> = (0..3).map(|i| base.join(i.to_string())).collect();
//! dirs.iter().for_each(|dir| std::fs::create_dir_all(dir).unwrap());
//!
//! let sup = SessionSupervisor::builder()
//!     .max_sessions(2)
//!     .admission(AdmissionPolicy::EvictIdlest)
//!     .idle_timeout(Duration::from_secs(30 * 60)) // closed after half an hour unused
//!     .build();
//! let first = sup.start_session(Session::new(&dirs[0])?, stub::idle())?;
//! let second = sup.start_session(Session::new(&dirs[1])?, |ctx| {
//!     while ctx.recv().is_some() {} // each message taken is activity
//! })?;
//! second.send(())?;
//!
//! // Full: the third project evicts the least recently active one, the first.
//! let third = sup.start_session(Session::new(&dirs[2])?, stub::idle())?;
//! let report = first.wait_timeout(Duration::from_secs(5)).expect("evicted");
//! assert_eq!(report.reason(), &ExitReason::Evicted);
//!
//! let snapshot = sup.snapshot();
//! assert_eq!(snapshot.count(), 2);
//! for stats in snapshot.sessions() {
//!     println!("{} {:?}, idle for {:?}", stats.session().name(), stats.state(), stats.idle_for());
//! }
//! # drop((sup, third));
//! # std::fs::remove_dir_all(base).unwrap();
//! # Ok::<(), session_supervisor::Error>(())
//! ```
//!
//! # Shutdown
//!
//! [`SessionSupervisor::shutdown`] (or dropping the supervisor) asks every session to
//! stop at once, then joins them newest first, all within one stop timeout, and
//! reports how each ended (each session's children too: [`ExitReport::children`]).
//! Starts fail with [`Error::ShuttingDown`] from then on.
//!
//! # Testing with stub bodies
//!
//! [`stub`] has ready bodies: [`stub::idle`], [`stub::returns`], [`stub::panics`],
//! [`stub::echo`] (answers every message through a channel), [`stub::reports`] (tells a
//! channel each time it runs), [`stub::gated`] (ignores stop requests until
//! released), and [`stub::tree`] (starts idle children with the names given, in its
//! `init`: a whole tree in one line). They report to `std::sync::mpsc` or
//! crossbeam senders alike. Wait on channels, on [`SessionHandle::wait_timeout`] or on
//! [`Subscription::wait_for`], never on sleeps.
//!
//! ```
//! use std::sync::mpsc;
//! use std::time::Duration;
//! use session_supervisor::{stub, Session, SessionSupervisor};
//!
//! let sup = SessionSupervisor::builder().messages::<u32>().build();
//! let (answers_tx, answers) = mpsc::channel();
//! let session = Session::new(std::env::temp_dir())?;
//! let handle = sup.start_session(session, stub::echo(answers_tx, |n: u32| n * 2))?;
//! handle.send(21)?;
//! assert_eq!(answers.recv_timeout(Duration::from_secs(5)), Ok(42));
//! handle.stop()?;
//! # Ok::<(), session_supervisor::Error>(())
//! ```
//!
//! # Locking
//!
//! One `parking_lot::RwLock` guards the registry: both maps (id to entry, path to id)
//! and the admission flag. It is held only for map work: never across a thread spawn, a
//! join, a channel send that can block, filesystem access, or user code. A stop takes
//! what it needs under the lock, releases it, signals the session, waits for the thread
//! and joins it; the thread removes its own entry. So a body may call back into its
//! supervisor (look up, start or stop other sessions) without deadlock.
//!
//! Each session's children are listed in a table with a lock of its own, held for
//! table work alone: a child's start, stop or restart waits for the child outside it.
//!
//! The list of subscribers has a mutex of its own. A session's end removes its entry
//! while holding it, so that its `Exited` event is delivered before any event of the
//! next session to take its directory; the order is always the subscriber list, then
//! the registry, and neither is held across user code or a blocking send.
//!
//! A session cannot wait for itself. On its own thread, or one of its children's,
//! [`SessionSupervisor::stop_session`] requests the stop and returns
//! [`Error::StopFromOwnThread`]; a call to itself (or a child's to itself) fails with
//! [`Error::CallFromOwnThread`];
//! a send into its own full mailbox fails with [`Error::MailboxFull`]; waits for its own
//! end return at once. Dropping the last owner of a supervisor on one of its session
//! threads stops the others and leaves that thread to finish on its own.
//!
//! # Errors
//!
//! Every fallible call returns [`Error`], one `#[non_exhaustive]` enum whose variants
//! carry the id, path or name concerned. A failed call changes nothing.
//!
//! # Feature flags
//!
//! - `serde`: `Serialize` and `Deserialize` for [`SessionId`] and [`Session`], to save
//!   a session list and restore it. A restored session is validated again: its
//!   directory must still exist.
//! - `tracing`: each session thread runs (every run and restart of its body) inside a
//!   `tracing` span named `session` with the fields `id`, `name` and `path`, and each
//!   child's thread inside one with `child` as well, so the body's own `tracing`
//!   events are attributed to their session. The crate's own output stays on `log`.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![warn(rust_2018_idioms)]
#![forbid(unsafe_code)]

mod admission;
mod attribution;
mod body;
mod boundary;
mod builder;
mod cell;
mod child;
mod child_handle;
mod error;
mod event;
mod exit;
mod handle;
mod id;
mod idle;
mod lifecycle;
mod limits;
mod mailbox;
mod message;
mod panics;
mod policy;
mod pool;
mod registry;
mod restart;
#[cfg(feature = "serde")]
mod serde_impls;
mod session;
mod start;
mod stats;
pub mod stub;
mod supervisor;
mod tree;
mod wait;

pub use crate::admission::AdmissionPolicy;
pub use crate::body::{InitError, SessionBody, SessionContext};
pub use crate::builder::{SupervisorBuilder, DEFAULT_STOP_TIMEOUT};
pub use crate::child_handle::ChildHandle;
pub use crate::error::{Error, Result, SessionKey};
pub use crate::event::{SessionEvent, Subscription, SubscriptionIter, EVENT_QUEUE_CAPACITY};
pub use crate::exit::{ChildExit, ExitReason, ExitReport, ShutdownReport};
pub use crate::handle::SessionHandle;
pub use crate::id::SessionId;
pub use crate::mailbox::Control;
pub use crate::message::{RecvTimeoutError, ReplyTo, SendError, TryRecvError};
pub use crate::panics::quiet_session_panics;
pub use crate::policy::{Backoff, Restart, RestartPolicy};
pub use crate::pool::{DEFAULT_WARM_THREAD_TIMEOUT, WARM_THREAD_NAME};
pub use crate::registry::{SessionRegistry, DEFAULT_MAX_SESSIONS};
pub use crate::session::{Session, SessionBuilder, MAX_NAME_CHARS};
pub use crate::start::{ChildStart, Start};
pub use crate::stats::{SessionState, SessionStats, Snapshot};
pub use crate::supervisor::SessionSupervisor;
pub use crate::tree::{ChildStrategy, DEFAULT_MAX_CHILDREN};

/// The README's examples, run as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

/// The channel crate of [`SessionContext::control`], re-exported so that `select!` and
/// the channel types match the crate's own version.
pub use crossbeam_channel;
