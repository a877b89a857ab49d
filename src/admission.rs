//! [`AdmissionPolicy`]: what a start does when the supervisor is full.

use std::sync::Arc;

use crate::cell::{Cause, SessionCell};

/// What a start does when the supervisor already runs
/// [`max_sessions`](crate::SupervisorBuilder::max_sessions) sessions.
///
/// With an evicting policy, the start chooses a running session (never one that is
/// starting or already stopping, nor the one it is called from), stops it, and once it
/// ended admits the new session in its place. Choosing the victim and reserving its
/// place are one decision under the registry's write lock: however many starts run at
/// once, the count never exceeds the limit and no two starts evict the same session.
/// The victim ends with [`ExitReason::Evicted`](crate::ExitReason::Evicted); if it does
/// not stop within the stop timeout, the start fails with
/// [`Error::EvictionTimeout`](crate::Error::EvictionTimeout).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use session_supervisor::{stub, AdmissionPolicy, ExitReason, Session, SessionSupervisor};
///
/// let base = std::env::temp_dir().join(format!("admission-doc-{}", std::process::id()));
/// let dirs = ["a", "b"].map(|name| base.join(name));
/// dirs.iter().for_each(|dir| std::fs::create_dir_all(dir).unwrap());
///
/// let sup = SessionSupervisor::builder()
///     .max_sessions(1)
///     .admission(AdmissionPolicy::EvictOldest)
///     .build();
/// let old = sup.start_session(Session::new(&dirs[0])?, stub::idle())?;
/// let new = sup.start_session(Session::new(&dirs[1])?, stub::idle())?;
///
/// let report = old.wait_timeout(Duration::from_secs(5)).expect("ended");
/// assert_eq!(report.reason(), &ExitReason::Evicted);
/// assert_eq!(sup.list_ids(), vec![new.id()]);
/// # drop(sup);
/// # std::fs::remove_dir_all(base).unwrap();
/// # Ok::<(), session_supervisor::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AdmissionPolicy {
    /// Refuse the start with [`Error::SessionLimitReached`](crate::Error::SessionLimitReached).
    #[default]
    Reject,
    /// Evict the least recently active session (see
    /// [`SessionStats::last_activity`](crate::SessionStats::last_activity)); of equally
    /// active ones, the one started first.
    EvictIdlest,
    /// Evict the session started first.
    EvictOldest,
}

impl AdmissionPolicy {
    /// Whether a start at the limit evicts.
    pub(crate) fn evicts(self) -> bool {
        self != AdmissionPolicy::Reject
    }

    /// Chooses the victim among `cells` and claims it for eviction; `None` if none may
    /// be evicted. Called under the registry's write lock: reads counters only.
    pub(crate) fn claim<'a, M: 'a>(
        self,
        cells: impl Iterator<Item = &'a Arc<SessionCell<M>>>,
    ) -> Option<Arc<SessionCell<M>>> {
        let candidates: Vec<&Arc<SessionCell<M>>> = cells.collect();
        // A claim fails only if a stop was decided since the filter: that one is no
        // candidate any more, so the next round takes another.
        loop {
            let eligible = candidates.iter().filter(|cell| may_evict(cell));
            let victim = match self {
                AdmissionPolicy::EvictIdlest => {
                    eligible.min_by_key(|cell| (cell.tracker().last_activity(), cell.seq()))?
                }
                _ => eligible.min_by_key(|cell| cell.seq())?,
            };
            if victim.claim(Cause::Evicted) {
                return Some(Arc::clone(victim));
            }
        }
    }
}

/// Running (past its first `init`; a registered session has not ended), not
/// stopping, and not the session (or a child of the session) whose thread starts the
/// new one: a session never waits for itself.
fn may_evict<M>(cell: &SessionCell<M>) -> bool {
    cell.has_begun() && !cell.is_stopping() && !cell.is_within()
}
