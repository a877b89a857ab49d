//! `lookup`: a `SessionRegistry` lookup by id and by path with 10, 1,000 and 10,000
//! sessions, against a bare `parking_lot::RwLock<HashMap>` get that clones the value (the
//! registry hands out a clone of the `Session` too).
//!
//! - `by_id`, `by_path`: the hot paths. By path means with the stored canonical path;
//!   the registry then goes path -> id -> entry (two maps), the bare map path -> value.
//! - `by_name`: `lookup_by_name` (names are not unique: the oldest wins), against a bare
//!   map by name. `list_all`: every session, oldest first, against copying the bare
//!   map's values out in no order.
//! - `by_path_spelled`: another spelling of the path (`.../p1/../p1`), which must be
//!   resolved on the filesystem first; the bare baseline is `fs::canonicalize` + get.
//! - `churn_*`: the same lookups at 10 and 10,000 sessions while a second thread
//!   registers and unregisters other sessions without pause (the bare maps get a writer
//!   that inserts and removes without pause). `bare_std` is the same bare map behind
//!   `std::sync::RwLock`, to show what the lock's policy does to readers.
//! - `paced_churn_*`: the same with a writer that sleeps 100 us between cycles.
//!
//! Each lookup takes the next key in turn, so larger tables are not all in cache.

mod common;

use std::collections::HashMap;
use std::hash::Hash;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion};
use session_supervisor::{Session, SessionId, SessionRegistry};

use common::{Churn, TempDirs};

const SIZES: [usize; 3] = [10, 1_000, 10_000];
const CHURN_SIZES: [usize; 2] = [10, 10_000];
/// Sessions only the churning writer registers and unregisters.
const SPARE: usize = 16;
/// The pause of the paced writer.
const PACE: Duration = Duration::from_micros(100);
/// How the churn benches' writer reports its rate.
const WRITER: &str = "writer: register+unregister";

/// A map of sessions behind a lock, keyed by id or by path.
trait Map<K>: Send + Sync + 'static {
    fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<Session>
    where
        K: std::borrow::Borrow<Q>;
    fn insert(&self, key: K, session: Session);
    fn remove(&self, key: &K);
}

type ParkingMap<K> = parking_lot::RwLock<HashMap<K, Session>>;
type StdMap<K> = std::sync::RwLock<HashMap<K, Session>>;

impl<K: Hash + Eq + Send + Sync + 'static> Map<K> for ParkingMap<K> {
    fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<Session>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.read().get(key).cloned()
    }
    fn insert(&self, key: K, session: Session) {
        self.write().insert(key, session);
    }
    fn remove(&self, key: &K) {
        self.write().remove(key);
    }
}

impl<K: Hash + Eq + Send + Sync + 'static> Map<K> for StdMap<K> {
    fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<Session>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.read().unwrap().get(key).cloned()
    }
    fn insert(&self, key: K, session: Session) {
        self.write().unwrap().insert(key, session);
    }
    fn remove(&self, key: &K) {
        self.write().unwrap().remove(key);
    }
}

/// `n` registered sessions, `SPARE` unregistered ones, and their directories.
struct Fixture {
    registry: Arc<SessionRegistry>,
    sessions: Vec<Session>,
    spare: Vec<Session>,
    _dirs: TempDirs,
}

impl Fixture {
    fn new(n: usize) -> Fixture {
        let dirs = TempDirs::new("lookup", n + SPARE);
        let mut sessions = dirs.sessions();
        let spare = sessions.split_off(n);
        let registry = Arc::new(SessionRegistry::new(n + SPARE));
        for session in &sessions {
            registry.register(session.clone()).unwrap();
        }
        Fixture {
            registry,
            sessions,
            spare,
            _dirs: dirs,
        }
    }

    fn ids(&self) -> Vec<SessionId> {
        self.sessions.iter().map(|s| s.id()).collect()
    }

    fn names(&self) -> Vec<String> {
        self.sessions.iter().map(|s| s.name().to_owned()).collect()
    }

    fn paths(&self) -> Vec<PathBuf> {
        let paths = self.sessions.iter().map(|s| s.project_path().to_owned());
        paths.collect()
    }

    /// A map of the same sessions, keyed by `key`.
    fn bare<K, M>(&self, key: impl Fn(&Session) -> K) -> Arc<M>
    where
        M: Map<K> + Default,
    {
        let map = M::default();
        for session in &self.sessions {
            map.insert(key(session), session.clone());
        }
        Arc::new(map)
    }

    /// A writer that registers and unregisters the spare sessions.
    fn churn_registry(&self, pace: Option<Duration>) -> Churn {
        let registry = Arc::clone(&self.registry);
        let mut spare = self.spare.clone().into_iter().cycle();
        Churn::start(WRITER, pace, move || {
            let session = spare.next().unwrap();
            let id = session.id();
            registry.register(session).unwrap();
            registry.unregister(id).unwrap();
        })
    }

    /// A writer that inserts and removes the spare sessions in a bare map.
    fn churn_bare<K, M>(
        &self,
        map: &Arc<M>,
        key: fn(&Session) -> K,
        pace: Option<Duration>,
    ) -> Churn
    where
        K: Send + 'static,
        M: Map<K>,
    {
        let map = Arc::clone(map);
        let mut spare = self.spare.clone().into_iter().cycle();
        Churn::start(WRITER, pace, move || {
            let session = spare.next().unwrap();
            let (inserted, removed) = (key(&session), key(&session));
            map.insert(inserted, session);
            map.remove(&removed);
        })
    }
}

/// Benches `get` over every key in turn.
fn bench_keys<K>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    keys: &[K],
    get: impl Fn(&K) -> Option<Session>,
) {
    group.bench_function(id, |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            if i == keys.len() {
                i = 0;
            }
            get(&keys[i]).expect("registered")
        })
    });
}

fn hot_paths(c: &mut Criterion) {
    for n in SIZES {
        let fixture = Fixture::new(n);
        let (ids, paths) = (fixture.ids(), fixture.paths());
        let registry = &fixture.registry;
        let bare_ids: Arc<ParkingMap<SessionId>> = fixture.bare(|s| s.id());
        let bare_paths: Arc<ParkingMap<PathBuf>> = fixture.bare(|s| s.project_path().into());
        let bare_names: Arc<ParkingMap<String>> = fixture.bare(|s| s.name().to_owned());
        let names = fixture.names();

        let mut group = c.benchmark_group("lookup");
        let id = |name: &str| BenchmarkId::new(name, n);
        bench_keys(&mut group, id("by_id/session"), &ids, |k| {
            registry.lookup(*k).ok()
        });
        bench_keys(&mut group, id("by_id/bare"), &ids, |k| bare_ids.get(k));
        let by_path = |k: &PathBuf| registry.lookup_by_path(k).ok();
        bench_keys(&mut group, id("by_path/session"), &paths, by_path);
        let bare_by_path = |k: &PathBuf| bare_paths.get(k.as_path());
        bench_keys(&mut group, id("by_path/bare"), &paths, bare_by_path);
        let by_name = |k: &String| registry.lookup_by_name(k).ok();
        bench_keys(&mut group, id("by_name/session"), &names, by_name);
        let bare_by_name = |k: &String| bare_names.get(k.as_str());
        bench_keys(&mut group, id("by_name/bare"), &names, bare_by_name);
        group.bench_function(id("list_all/session"), |b| b.iter(|| registry.list_all()));
        // Copying the entries out, in no order: what a list costs at least.
        let copy_out = || bare_ids.read().values().cloned().collect::<Vec<Session>>();
        group.bench_function(id("list_all/bare"), |b| b.iter(copy_out));

        let spelled = spellings(&paths);
        let by_spelling = |k: &PathBuf| registry.lookup_by_path(k).ok();
        let spelled_id = id("by_path_spelled/session");
        bench_keys(&mut group, spelled_id, &spelled, by_spelling);
        let resolve_and_get =
            |k: &PathBuf| bare_paths.get(std::fs::canonicalize(k).ok()?.as_path());
        bench_keys(
            &mut group,
            id("by_path_spelled/bare"),
            &spelled,
            resolve_and_get,
        );
        group.finish();
    }
}

/// `.../p1/../p1` for `.../p1`: the same directory, a path no map holds.
fn spellings(paths: &[PathBuf]) -> Vec<PathBuf> {
    let spell = |p: &PathBuf| p.join("..").join(p.file_name().unwrap());
    paths.iter().map(spell).collect()
}

/// How hard the writer of the churn benches works.
#[derive(Clone, Copy)]
enum Load {
    /// Register + unregister back to back, without pause.
    Nonstop,
    /// A pause of `PACE` after each register + unregister.
    Paced,
}

impl Load {
    fn prefix(self) -> &'static str {
        match self {
            Load::Nonstop => "churn",
            Load::Paced => "paced_churn",
        }
    }

    fn pace(self) -> Option<Duration> {
        match self {
            Load::Nonstop => None,
            Load::Paced => Some(PACE),
        }
    }

    fn sizes(self) -> &'static [usize] {
        match self {
            Load::Nonstop => &CHURN_SIZES,
            Load::Paced => &[10_000],
        }
    }
}

fn under_churn(c: &mut Criterion, load: Load) {
    for &n in load.sizes() {
        let fixture = Fixture::new(n);
        let (ids, paths) = (fixture.ids(), fixture.paths());
        let registry = &fixture.registry;
        let mut group = c.benchmark_group("lookup");
        let id = |what: &str| BenchmarkId::new(format!("{}_{what}", load.prefix()), n);

        let writer = fixture.churn_registry(load.pace());
        bench_keys(&mut group, id("by_id/session"), &ids, |k| {
            registry.lookup(*k).ok()
        });
        let by_path = |k: &PathBuf| registry.lookup_by_path(k).ok();
        bench_keys(&mut group, id("by_path/session"), &paths, by_path);
        drop(writer);

        let by_id = |s: &Session| s.id();
        let by_path = |s: &Session| s.project_path().to_path_buf();
        let pace = load.pace();
        churn_bare::<_, ParkingMap<_>>(&mut group, &fixture, id("by_id/bare"), &ids, by_id, pace);
        churn_bare::<_, StdMap<_>>(
            &mut group,
            &fixture,
            id("by_id/bare_std"),
            &ids,
            by_id,
            pace,
        );
        churn_bare::<_, ParkingMap<_>>(
            &mut group,
            &fixture,
            id("by_path/bare"),
            &paths,
            by_path,
            pace,
        );
        churn_bare::<_, StdMap<_>>(
            &mut group,
            &fixture,
            id("by_path/bare_std"),
            &paths,
            by_path,
            pace,
        );
        group.finish();
    }
}

/// Benches lookups in a bare map of type `M` while its own writer churns.
fn churn_bare<K, M>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    fixture: &Fixture,
    id: BenchmarkId,
    keys: &[K],
    key: fn(&Session) -> K,
    pace: Option<Duration>,
) where
    K: Hash + Eq + Send + Sync + 'static,
    M: Map<K> + Default,
{
    let map: Arc<M> = fixture.bare(key);
    let _writer = fixture.churn_bare(&map, key, pace);
    bench_keys(group, id, keys, |k| map.get(k));
}

fn lookup(c: &mut Criterion) {
    hot_paths(c);
    under_churn(c, Load::Nonstop);
    under_churn(c, Load::Paced);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = lookup
}
criterion_main!(benches);
