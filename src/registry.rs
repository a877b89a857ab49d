//! [`SessionRegistry`]: the sessions by id and by path, behind one lock.
//!
//! The registry knows nothing of threads. The supervisor keeps its per-session
//! runtime state in the same entries through the private generic [`Registry`], so that
//! admission and lookups of both happen under one lock; [`SessionRegistry`] is that
//! table with nothing attached.

use std::borrow::Borrow;
use std::collections::hash_map::Entry as HashEntry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::time::SystemTime;

use parking_lot::RwLock;

use crate::error::SessionKey;
use crate::session::canonical_dir;
use crate::{Error, Result, Session, SessionId};

/// The session limit of [`SessionRegistry::default`] and of a default supervisor.
pub const DEFAULT_MAX_SESSIONS: usize = 10;

/// A set of sessions, unique by id and by project path, with a size limit.
///
/// Lookups by id and by path are O(1) whatever the number of sessions; admission (the
/// limit, then the id, then the path, then the insert) happens under one write lock, so
/// it is exact under any number of concurrent callers. Every method takes `&self`: share
/// a registry between threads with an `Arc`.
///
/// A limit of 0 is allowed and admits nothing.
///
/// # Examples
///
/// ```
/// use session_supervisor::{Error, Session, SessionRegistry};
///
/// let dir = std::env::temp_dir();
/// let registry = SessionRegistry::new(10);
/// let session = registry.register(Session::new(&dir)?)?;
///
/// assert_eq!(registry.lookup(session.id())?, session);
/// assert_eq!(registry.lookup_by_path(&dir)?, session);
///
/// // One directory, one session.
/// let again = registry.register(Session::new(&dir)?);
/// assert!(matches!(again, Err(Error::ProjectAlreadyOpen { .. })));
///
/// assert_eq!(registry.unregister(session.id()), Some(session));
/// assert_eq!(registry.count(), 0);
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug)]
pub struct SessionRegistry {
    table: Registry<()>,
}

impl SessionRegistry {
    /// Creates an empty registry that admits at most `max_sessions` sessions.
    #[must_use]
    pub fn new(max_sessions: usize) -> SessionRegistry {
        SessionRegistry {
            table: Registry::new(max_sessions),
        }
    }

    /// The most sessions this registry admits.
    #[must_use]
    pub fn max_sessions(&self) -> usize {
        self.table.max_sessions()
    }

    /// Adds a session and returns a copy of it.
    ///
    /// # Errors
    ///
    /// Checked in this order, and nothing is added on error:
    /// [`Error::SessionLimitReached`], [`Error::SessionExists`] (same id),
    /// [`Error::ProjectAlreadyOpen`] (same project path).
    pub fn register(&self, session: Session) -> Result<Session> {
        self.table.insert(session, ())
    }

    /// Removes a session and returns it, or `None` if it was not registered.
    pub fn unregister(&self, id: SessionId) -> Option<Session> {
        self.table.remove(id).map(|(session, ())| session)
    }

    /// The session with this id.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if no session has this id.
    pub fn lookup(&self, id: SessionId) -> Result<Session> {
        self.table.lookup(id)
    }

    /// The session whose project is this directory, in any spelling.
    ///
    /// The stored canonical path is matched without touching the filesystem; any other
    /// spelling is resolved first.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if no session has this directory, or the path cannot be
    /// resolved.
    pub fn lookup_by_path(&self, path: impl AsRef<Path>) -> Result<Session> {
        self.table.lookup_by_path(path.as_ref())
    }

    /// The oldest session (by `created_at`, then id) with this name.
    ///
    /// Names are not unique; an index by name keeps this O(1) in the number of
    /// sessions.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if no session has this name.
    pub fn lookup_by_name(&self, name: &str) -> Result<Session> {
        self.table.lookup_by_name(name)
    }

    /// Whether a session with this id is registered.
    #[must_use]
    pub fn contains(&self, id: SessionId) -> bool {
        self.table.contains(id)
    }

    /// All sessions, oldest first (ties broken by id).
    #[must_use]
    pub fn list_all(&self) -> Vec<Session> {
        self.table.list_all()
    }

    /// All ids, in the order of [`list_all`](Self::list_all).
    #[must_use]
    pub fn list_ids(&self) -> Vec<SessionId> {
        self.table.list_ids()
    }

    /// How many sessions are registered.
    #[must_use]
    pub fn count(&self) -> usize {
        self.table.count()
    }

    /// Replaces the stored session that has `session`'s id, and returns the new value.
    ///
    /// If the project path changed, the path index moves with it.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if no session has this id; [`Error::ProjectAlreadyOpen`] if
    /// the new path belongs to another session. Nothing changes on error.
    pub fn update(&self, session: Session) -> Result<Session> {
        self.table.update(session)
    }

    /// Removes every session.
    pub fn clear(&self) {
        self.table.clear();
    }
}

impl Default for SessionRegistry {
    /// A registry with the default limit of [`DEFAULT_MAX_SESSIONS`] sessions.
    fn default() -> SessionRegistry {
        SessionRegistry::new(DEFAULT_MAX_SESSIONS)
    }
}

/// The table behind [`SessionRegistry`], with a value of type `T` attached to each
/// session (the supervisor attaches the session's runtime state).
#[derive(Debug)]
pub(crate) struct Registry<T> {
    max_sessions: usize,
    inner: RwLock<Inner<T>>,
}

/// The state behind the lock: the indexes and the admission flag change together.
#[derive(Debug)]
struct Inner<T> {
    /// Every session, with its attachment.
    by_id: HashMap<SessionId, Entry<T>>,
    /// The canonical project path of every session, to its id.
    by_path: HashMap<PathKey, SessionId>,
    /// Every name in use, to the sessions that have it, oldest first: a lookup by name
    /// takes the first.
    by_name: HashMap<NameKey, Vec<Age>>,
    /// Every session, oldest first: a list is copied out in order, not sorted.
    by_age: BTreeMap<Age, Session>,
    /// Set once admission is closed for good (the supervisor is shutting down).
    closed: bool,
    /// Places promised to starts that wait for an evicted session to end: counted
    /// against the limit like entries.
    reserved: usize,
}

#[derive(Debug)]
struct Entry<T> {
    session: Session,
    slot: T,
}

/// How [`Registry::insert_or_claim`] admitted a session.
#[derive(Debug)]
pub(crate) enum Admission<'a, T> {
    /// Inserted at once.
    Inserted(Session),
    /// The registry was full: `victim` was claimed to make room, and `place` holds the
    /// session until the victim is gone.
    Claimed {
        victim: T,
        place: Reservation<'a, T>,
    },
}

/// A place reserved under the limit for a session that waits for room: given up when
/// dropped unless the session was inserted.
#[derive(Debug)]
pub(crate) struct Reservation<'a, T> {
    registry: &'a Registry<T>,
    waiting: Option<(Session, T)>,
}

impl<T> Reservation<'_, T> {
    /// Inserts the waiting session in the reserved place: checked again are shutdown,
    /// id and path (another start may have taken the path meanwhile).
    pub(crate) fn insert(mut self) -> Result<Session> {
        let (session, slot) = self.waiting.take().expect("inserted once");
        let mut inner = self.registry.inner.write();
        inner.reserved -= 1;
        if inner.closed {
            return Err(Error::ShuttingDown);
        }
        inner.add(session, slot)
    }
}

impl<T> Drop for Reservation<'_, T> {
    fn drop(&mut self) {
        if let Some(waiting) = self.waiting.take() {
            self.registry.inner.write().reserved -= 1;
            drop(waiting);
        }
    }
}

/// The error of a start or a move onto `session`'s directory, which `owner` has.
fn already_open(session: &Session, owner: SessionId) -> Error {
    let path = session.project_path().to_path_buf();
    Error::ProjectAlreadyOpen { path, id: owner }
}

/// Where a session sorts among the others: oldest first, ties broken by id.
type Age = (SystemTime, SessionId);

fn age(session: &Session) -> Age {
    (session.created_at(), session.id())
}

impl<T> Inner<T> {
    /// Refuses a session whose id or path is registered.
    fn check_unique(&self, session: &Session) -> Result<()> {
        let id = session.id();
        if self.by_id.contains_key(&id) {
            return Err(Error::SessionExists { id });
        }
        if let Some(owner) = self.by_path.get(session.path_text()) {
            return Err(already_open(session, *owner));
        }
        Ok(())
    }

    /// Inserts a session unless its id or its path is registered.
    fn add(&mut self, session: Session, slot: T) -> Result<Session> {
        let id = session.id();
        let HashEntry::Vacant(id_slot) = self.by_id.entry(id) else {
            return Err(Error::SessionExists { id });
        };
        let path_slot = match self.by_path.entry(PathKey(session.clone())) {
            HashEntry::Vacant(free) => free,
            HashEntry::Occupied(taken) => return Err(already_open(&session, *taken.get())),
        };
        path_slot.insert(id);
        let copy = session.clone();
        id_slot.insert(Entry { session, slot });
        self.index(&copy);
        Ok(copy)
    }

    /// Adds `session` to the name and age indexes.
    fn index(&mut self, session: &Session) {
        let age = age(session);
        self.by_age.insert(age, session.clone());
        let ages = self.by_name.entry(NameKey(session.clone())).or_default();
        let at = ages.partition_point(|other| *other < age);
        ages.insert(at, age);
    }

    /// Takes `session` out of the name and age indexes.
    fn unindex(&mut self, session: &Session) {
        let age = age(session);
        self.by_age.remove(&age);
        if let Some(ages) = self.by_name.get_mut(session.name()) {
            ages.retain(|other| *other != age);
            if ages.is_empty() {
                self.by_name.remove(session.name());
            }
        }
    }
}

impl<T> Registry<T> {
    pub(crate) fn new(max_sessions: usize) -> Registry<T> {
        Registry {
            max_sessions,
            inner: RwLock::new(Inner {
                by_id: HashMap::new(),
                by_path: HashMap::new(),
                by_name: HashMap::new(),
                by_age: BTreeMap::new(),
                closed: false,
                reserved: 0,
            }),
        }
    }

    pub(crate) fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// Admits a session: limit, id, path, insert, all under one write lock.
    pub(crate) fn insert(&self, session: Session, slot: T) -> Result<Session> {
        let mut inner = self.inner.write();
        if inner.closed {
            return Err(Error::ShuttingDown);
        }
        self.check_room(&inner)?;
        inner.add(session, slot)
    }

    /// Admits a session as [`insert`](Self::insert) does, except at the limit: there
    /// the id and the path are checked first (nothing is evicted for a start that
    /// would fail), then `claim` may choose an entry to make room (and mark it as
    /// such), and the place is reserved for this session until it is inserted or
    /// given up.
    pub(crate) fn insert_or_claim(
        &self,
        session: Session,
        slot: T,
        claim: impl FnOnce(&mut dyn Iterator<Item = &T>) -> Option<T>,
    ) -> Result<Admission<'_, T>> {
        let mut inner = self.inner.write();
        if inner.closed {
            return Err(Error::ShuttingDown);
        }
        let Err(full) = self.check_room(&inner) else {
            return inner.add(session, slot).map(Admission::Inserted);
        };
        inner.check_unique(&session)?;
        let victim = claim(&mut inner.by_id.values().map(|entry| &entry.slot));
        let Some(victim) = victim else {
            return Err(full);
        };
        inner.reserved += 1;
        let place = Reservation {
            registry: self,
            waiting: Some((session, slot)),
        };
        Ok(Admission::Claimed { victim, place })
    }

    fn check_room(&self, inner: &Inner<T>) -> Result<()> {
        if inner.by_id.len() + inner.reserved >= self.max_sessions {
            return Err(Error::SessionLimitReached {
                max: self.max_sessions,
            });
        }
        Ok(())
    }

    pub(crate) fn remove(&self, id: SessionId) -> Option<(Session, T)> {
        self.remove_if(id, |_| true)
    }

    /// Removes the entry only if its attachment `matches`: removal by
    /// incarnation, so a late exit never removes a newer session with the same id.
    pub(crate) fn remove_if(
        &self,
        id: SessionId,
        matches: impl FnOnce(&T) -> bool,
    ) -> Option<(Session, T)> {
        let mut inner = self.inner.write();
        if !matches(&inner.by_id.get(&id)?.slot) {
            return None;
        }
        let entry = inner.by_id.remove(&id)?;
        inner.by_path.remove(entry.session.path_text());
        inner.unindex(&entry.session);
        Some((entry.session, entry.slot))
    }

    pub(crate) fn lookup(&self, id: SessionId) -> Result<Session> {
        let inner = self.inner.read();
        match inner.by_id.get(&id) {
            Some(entry) => Ok(entry.session.clone()),
            None => Err(Error::not_found(id)),
        }
    }

    pub(crate) fn lookup_by_path(&self, path: &Path) -> Result<Session> {
        self.find_by_path(path, |entry| entry.session.clone())
    }

    /// What `pick` takes from the entry of a project directory, in any spelling.
    fn find_by_path<R>(&self, path: &Path, pick: impl Fn(&Entry<T>) -> R) -> Result<R> {
        if let Some(found) = path
            .to_str()
            .and_then(|text| self.by_path_text(text, &pick))
        {
            return Ok(found);
        }
        // Another spelling: resolve it outside the lock, then try once more.
        let not_found = || Error::NotFound {
            key: SessionKey::Path(path.to_path_buf()),
        };
        let canonical = canonical_dir(path).map_err(|_| not_found())?;
        self.by_path_text(&canonical, &pick).ok_or_else(not_found)
    }

    fn by_path_text<R>(&self, key: &str, pick: impl Fn(&Entry<T>) -> R) -> Option<R> {
        let inner = self.inner.read();
        let id = inner.by_path.get(key)?;
        Some(pick(&inner.by_id[id]))
    }

    pub(crate) fn lookup_by_name(&self, name: &str) -> Result<Session> {
        self.find_by_name(name, |entry| entry.session.clone())
    }

    /// What `pick` takes from the oldest entry with this name.
    fn find_by_name<R>(&self, name: &str, pick: impl Fn(&Entry<T>) -> R) -> Result<R> {
        let inner = self.inner.read();
        let oldest = inner.by_name.get(name).and_then(|ages| ages.first());
        match oldest {
            Some((_, id)) => Ok(pick(&inner.by_id[id])),
            None => Err(Error::NotFound {
                key: SessionKey::Name(name.to_owned()),
            }),
        }
    }

    /// What `each` makes of every entry, oldest first, all under one read lock.
    pub(crate) fn map_all<R>(&self, mut each: impl FnMut(&Session, &T) -> R) -> Vec<R> {
        let inner = self.inner.read();
        let by_age = inner.by_age.iter();
        by_age
            .map(|((_, id), session)| each(session, &inner.by_id[id].slot))
            .collect()
    }

    pub(crate) fn contains(&self, id: SessionId) -> bool {
        self.inner.read().by_id.contains_key(&id)
    }

    pub(crate) fn list_all(&self) -> Vec<Session> {
        self.inner.read().by_age.values().cloned().collect()
    }

    pub(crate) fn list_ids(&self) -> Vec<SessionId> {
        self.inner.read().by_age.keys().map(|(_, id)| *id).collect()
    }

    pub(crate) fn count(&self) -> usize {
        self.inner.read().by_id.len()
    }

    pub(crate) fn update(&self, session: Session) -> Result<Session> {
        let id = session.id();
        let change = |stored: &mut Session| {
            *stored = session;
            Ok(())
        };
        self.modify(id, change, |_, _| {})
    }

    /// Changes the stored session in place with `change`, keeping the path index right,
    /// then shows the result to `then` with the attachment, still under the lock. If
    /// `change` fails, or the new path is taken, nothing changes.
    pub(crate) fn modify(
        &self,
        id: SessionId,
        change: impl FnOnce(&mut Session) -> Result<()>,
        then: impl FnOnce(&T, &Session),
    ) -> Result<Session> {
        let mut guard = self.inner.write();
        let inner = &mut *guard;
        let entry = inner
            .by_id
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(id))?;
        let mut changed = entry.session.clone();
        change(&mut changed)?;
        if changed.path_text() != entry.session.path_text() {
            if let Some(owner) = inner.by_path.get(changed.path_text()) {
                return Err(already_open(&changed, *owner));
            }
            inner.by_path.remove(entry.session.path_text());
            inner.by_path.insert(PathKey(changed.clone()), id);
        }
        then(&entry.slot, &changed);
        let old = std::mem::replace(&mut entry.session, changed.clone());
        inner.unindex(&old);
        inner.index(&changed);
        Ok(changed)
    }

    pub(crate) fn clear(&self) {
        let mut inner = self.inner.write();
        inner.by_id.clear();
        inner.by_path.clear();
        inner.by_name.clear();
        inner.by_age.clear();
    }
}

/// A key of the path index: the session itself (a reference count, not a copy of the
/// path), hashed and compared as its canonical path's text. Text hashes in one pass over
/// its bytes where a `Path` hashes component by component, and lookups by `&str` need
/// no allocation.
#[derive(Debug)]
struct PathKey(Session);

impl Hash for PathKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.path_text().hash(state);
    }
}

impl PartialEq for PathKey {
    fn eq(&self, other: &PathKey) -> bool {
        self.0.path_text() == other.0.path_text()
    }
}

impl Eq for PathKey {}

impl Borrow<str> for PathKey {
    fn borrow(&self) -> &str {
        self.0.path_text()
    }
}

/// A key of the name index: the session itself, hashed and compared as its name, so
/// that lookups by `&str` need no allocation (as [`PathKey`] does for paths).
#[derive(Debug)]
struct NameKey(Session);

impl Hash for NameKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.name().hash(state);
    }
}

impl PartialEq for NameKey {
    fn eq(&self, other: &NameKey) -> bool {
        self.0.name() == other.0.name()
    }
}

impl Eq for NameKey {}

impl Borrow<str> for NameKey {
    fn borrow(&self) -> &str {
        self.0.name()
    }
}

impl<T: Clone> Registry<T> {
    /// The attachment of one session.
    pub(crate) fn slot(&self, id: SessionId) -> Option<T> {
        self.inner.read().by_id.get(&id).map(|e| e.slot.clone())
    }

    /// The attachment of the session of a project directory, in any spelling.
    pub(crate) fn slot_by_path(&self, path: &Path) -> Result<T> {
        self.find_by_path(path, |entry| entry.slot.clone())
    }

    /// The attachment of the oldest session with this name.
    pub(crate) fn slot_by_name(&self, name: &str) -> Result<T> {
        self.find_by_name(name, |entry| entry.slot.clone())
    }

    /// Every attachment, in no particular order.
    pub(crate) fn slots(&self) -> Vec<T> {
        let inner = self.inner.read();
        inner.by_id.values().map(|e| e.slot.clone()).collect()
    }

    /// Closes admission for good and returns every attachment: from now on `insert`
    /// fails with [`Error::ShuttingDown`]. Entries stay until they are removed.
    pub(crate) fn close(&self) -> Vec<T> {
        let mut inner = self.inner.write();
        inner.closed = true;
        inner.by_id.values().map(|e| e.slot.clone()).collect()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.inner.read().closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Fresh directories, one per call, removed when the value drops.
    struct Dirs(Vec<PathBuf>);

    impl Dirs {
        fn new(n: usize) -> Dirs {
            let base = std::env::temp_dir().join(format!("registry-unit-{}", SessionId::new()));
            let dirs = (0..n).map(|i| base.join(i.to_string())).collect::<Vec<_>>();
            for dir in &dirs {
                std::fs::create_dir_all(dir).unwrap();
            }
            Dirs(dirs)
        }

        fn session(&self, i: usize) -> Session {
            Session::new(&self.0[i]).unwrap()
        }
    }

    impl Drop for Dirs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0[0].parent().unwrap());
        }
    }

    /// Every index agrees with `by_id`, checked against a scan of it.
    fn assert_consistent<T>(registry: &Registry<T>) {
        let inner = registry.inner.read();
        assert_eq!(inner.by_id.len(), inner.by_path.len());
        for (key, id) in &inner.by_path {
            assert_eq!(inner.by_id[id].session.path_text(), key.0.path_text());
        }
        let mut scanned: Vec<&Session> = inner.by_id.values().map(|e| &e.session).collect();
        scanned.sort_by_key(|s| age(s));
        let listed: Vec<&Session> = inner.by_age.values().collect();
        assert_eq!(
            listed, scanned,
            "the age index lists every session, oldest first"
        );
        let named: usize = inner.by_name.values().map(Vec::len).sum();
        assert_eq!(
            named,
            scanned.len(),
            "the name index holds every session once"
        );
        for session in scanned {
            let oldest = scanned_oldest(&inner, session.name());
            let found = registry.find_by_name_locked(&inner, session.name());
            assert_eq!(found, Some(oldest), "the oldest named {:?}", session.name());
        }
    }

    /// The id of the oldest session with this name, by a scan of every entry.
    fn scanned_oldest<T>(inner: &Inner<T>, name: &str) -> SessionId {
        let named = inner.by_id.values().map(|e| &e.session);
        let named = named.filter(|s| s.name() == name);
        named.min_by_key(|s| age(s)).expect("one has it").id()
    }

    impl<T> Registry<T> {
        fn find_by_name_locked(&self, inner: &Inner<T>, name: &str) -> Option<SessionId> {
            inner.by_name.get(name)?.first().map(|(_, id)| *id)
        }
    }

    #[test]
    fn the_name_and_age_indexes_follow_every_change() {
        let dirs = Dirs::new(6);
        let registry = SessionRegistry::new(6);
        let named = |i: usize, name: &str| {
            let session = Session::builder(&dirs.0[i]).name(name).build().unwrap();
            registry.register(session).unwrap()
        };
        let sessions: Vec<Session> = (0..6)
            .map(|i| named(i, if i % 2 == 0 { "even" } else { "odd" }))
            .collect();
        assert_consistent(&registry.table);
        assert_eq!(registry.lookup_by_name("even").unwrap(), sessions[0]);

        registry.unregister(sessions[0].id()).unwrap();
        assert_consistent(&registry.table);
        assert_eq!(registry.lookup_by_name("even").unwrap(), sessions[2]);

        let mut renamed = sessions[1].clone();
        renamed.rename("even").unwrap();
        registry.update(renamed.clone()).unwrap();
        assert_consistent(&registry.table);
        assert_eq!(registry.lookup_by_name("even").unwrap(), renamed);
        assert_eq!(registry.lookup_by_name("odd").unwrap(), sessions[3]);

        for session in &sessions[2..] {
            registry.unregister(session.id()).unwrap();
        }
        assert_consistent(&registry.table);
        assert!(registry.lookup_by_name("odd").is_err(), "no odd one left");
        assert_eq!(registry.list_all(), vec![renamed]);
        registry.clear();
        assert_consistent(&registry.table);
        assert!(registry.lookup_by_name("even").is_err());
    }

    #[test]
    fn limit_is_checked_before_duplicates() {
        let dirs = Dirs::new(2);
        let registry = SessionRegistry::new(1);
        let first = registry.register(dirs.session(0)).unwrap();
        // Same id and same path, but the limit is reported first.
        let err = registry.register(first.clone()).unwrap_err();
        assert!(matches!(err, Error::SessionLimitReached { max: 1 }));
    }

    #[test]
    fn duplicate_id_is_checked_before_duplicate_path() {
        let dirs = Dirs::new(1);
        let registry = SessionRegistry::new(5);
        let first = registry.register(dirs.session(0)).unwrap();
        let err = registry.register(first.clone()).unwrap_err();
        assert!(matches!(err, Error::SessionExists { id } if id == first.id()));
        assert_eq!(registry.count(), 1);
    }

    #[test]
    fn zero_limit_admits_nothing() {
        let dirs = Dirs::new(1);
        let registry = SessionRegistry::new(0);
        let err = registry.register(dirs.session(0)).unwrap_err();
        assert!(matches!(err, Error::SessionLimitReached { max: 0 }));
    }

    #[test]
    fn update_moves_the_path_index() {
        let dirs = Dirs::new(3);
        let registry = SessionRegistry::new(5);
        let a = registry.register(dirs.session(0)).unwrap();
        let b = registry.register(dirs.session(1)).unwrap();
        let moved = Session::builder(&dirs.0[2]).id(a.id()).build().unwrap();
        registry.update(moved.clone()).unwrap();
        assert_eq!(registry.lookup_by_path(&dirs.0[2]).unwrap(), moved);
        assert!(registry.lookup_by_path(&dirs.0[0]).is_err());
        // Moving onto b's directory is refused and changes nothing.
        let clash = Session::builder(&dirs.0[1]).id(a.id()).build().unwrap();
        let err = registry.update(clash).unwrap_err();
        assert!(matches!(err, Error::ProjectAlreadyOpen { id, .. } if id == b.id()));
        assert_eq!(registry.lookup(a.id()).unwrap(), moved);
        assert_consistent(&registry.table);
    }

    #[test]
    fn remove_if_spares_another_incarnation() {
        let dirs = Dirs::new(1);
        let registry: Registry<u32> = Registry::new(5);
        let s = registry.insert(dirs.session(0), 2).unwrap();
        assert!(registry.remove_if(s.id(), |n| *n == 1).is_none());
        assert!(registry.contains(s.id()));
        assert!(registry.remove_if(s.id(), |n| *n == 2).is_some());
        assert_consistent(&registry);
    }

    #[test]
    fn close_refuses_new_entries_and_keeps_old_ones() {
        let dirs = Dirs::new(2);
        let registry: Registry<u32> = Registry::new(5);
        registry.insert(dirs.session(0), 7).unwrap();
        assert_eq!(registry.close(), vec![7]);
        let err = registry.insert(dirs.session(1), 8).unwrap_err();
        assert!(matches!(err, Error::ShuttingDown));
        assert_eq!(registry.count(), 1);
    }

    #[test]
    fn clear_empties_both_indexes() {
        let dirs = Dirs::new(2);
        let registry = SessionRegistry::new(5);
        registry.register(dirs.session(0)).unwrap();
        registry.register(dirs.session(1)).unwrap();
        registry.clear();
        assert_eq!(registry.count(), 0);
        assert!(registry.lookup_by_path(&dirs.0[0]).is_err());
        registry.register(dirs.session(0)).unwrap();
        assert_consistent(&registry.table);
    }
}
