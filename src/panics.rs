//! [`quiet_session_panics`]: keeping the panics of session threads off stderr, opt-in.

use std::cell::Cell;
use std::sync::Once;

thread_local! {
    /// Set first thing on every session thread.
    static ON_SESSION_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as a session thread.
pub(crate) fn mark_session_thread() {
    let _ = ON_SESSION_THREAD.try_with(|on| on.set(true));
}

fn on_session_thread() -> bool {
    ON_SESSION_THREAD.try_with(Cell::get).unwrap_or(false)
}

/// Keeps the panics of session threads off stderr from now on.
///
/// A crashing session is expected: the supervisor catches the panic, logs it through
/// `log` (a warning when the session restarts, a warning or an error when it ends,
/// each with the panic message) and restarts or ends the session. The standard panic
/// hook prints it on stderr as well, with a backtrace where `RUST_BACKTRACE` is set;
/// this installs a panic hook that says nothing for a panic on a session thread of any
/// supervisor, and hands every other panic (the program's own threads, the main thread)
/// to the hook that was installed before.
///
/// The panic hook belongs to the whole process, so this is opt-in: call it once, early
/// in `main` (or at the start of a test binary). Calling it again does nothing. A hook
/// set later with `std::panic::set_hook` replaces this one.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use session_supervisor::{Session, SessionSupervisor};
///
/// session_supervisor::quiet_session_panics();
/// let sup = SessionSupervisor::new();
/// let handle = sup.start_session(Session::new(std::env::temp_dir())?, |_| panic!("expected"))?;
/// // Restarted three times, then given up: nothing printed on stderr.
/// assert!(handle.wait_timeout(Duration::from_secs(5)).is_some());
/// # Ok::<(), session_supervisor::Error>(())
/// ```
pub fn quiet_session_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !on_session_thread() {
                previous(info);
            }
        }));
    });
}
