//! Attribution of a body's own `tracing` events to its session: with the `tracing`
//! feature, a session thread's work (every run and restart of its body) and each
//! child's run inside a span that names the session. Without it, nothing.

use crate::Session;

/// Runs `work` inside the span of `session` (and of its child `child`, on a child's
/// thread).
#[cfg(feature = "tracing")]
pub(crate) fn in_session_span<R>(
    session: &Session,
    child: Option<&str>,
    work: impl FnOnce() -> R,
) -> R {
    let (id, name) = (session.id(), session.name());
    let path = session.project_path().display();
    let span = match child {
        None => tracing::info_span!("session", %id, name, %path),
        Some(child) => tracing::info_span!("session", %id, name, %path, child),
    };
    span.in_scope(work)
}

/// Runs `work`: without the `tracing` feature there is no span to enter.
#[cfg(not(feature = "tracing"))]
pub(crate) fn in_session_span<R>(
    session: &Session,
    child: Option<&str>,
    work: impl FnOnce() -> R,
) -> R {
    let _ = (session, child);
    work()
}
