//! The process's thread budget: refuse a thread the process has no memory mappings
//! left for.
//!
//! On Linux each thread takes about 4 memory mappings (its stack and guard page, and
//! the signal stack the standard library sets up, with its own guard page). Once a
//! process reaches `vm.max_map_count`, a new thread can fail *after* `spawn` returned
//! `Ok`, inside the standard library's thread start, which aborts the whole process. So
//! a supervisor takes a thread from [`take_thread`] before it spawns, and refuses with a
//! typed error instead.
//!
//! There is one budget per process, not one per supervisor: the mappings belong to the
//! process, and budgets that each granted themselves a share of the same room would
//! together grant more than there is.
//!
//! Counting the process's mappings costs milliseconds once there are thousands of
//! threads, so it is not done on every start. A count grants about half of the threads
//! the remaining mappings allow, and each start takes one with an atomic decrement.
//! When the grant is spent, one thread at a time counts again while the others wait
//! for its grant, so two counts never hand out the same room twice. Every count sees
//! all the process's mappings, threads the program spawned on its own included.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

/// Mappings a thread takes.
const MAPS_PER_THREAD: usize = 4;

/// Mappings kept free for everything else the process maps (heap arenas, files, ...),
/// and for threads granted whose mappings a count could not see yet because they had
/// not started.
const RESERVE: usize = 1024;

/// How many more threads the process may start, or `None` where it cannot be told.
type Counter = fn() -> io::Result<Option<Room>>;

/// The budget every supervisor of the process takes its threads from.
static BUDGET: ThreadBudget = ThreadBudget::with_counter(count_mappings);

/// Takes one thread from the process's budget; call it before each spawn.
///
/// # Errors
///
/// An `OutOfMemory` error if another thread would bring the process too close to
/// `vm.max_map_count`.
pub(crate) fn take_thread() -> io::Result<()> {
    BUDGET.take()
}

/// The mapping count and its limit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Room {
    pub(crate) used: usize,
    pub(crate) max: usize,
}

impl Room {
    fn threads_left(self) -> usize {
        self.max.saturating_sub(self.used + RESERVE) / MAPS_PER_THREAD
    }
}

/// The threads that may still start before the mappings are counted again.
#[derive(Debug)]
pub(crate) struct ThreadBudget {
    /// Threads granted by the last count and not taken yet. Only raised by the holder
    /// of `counting`, and only from 0.
    granted: AtomicUsize,
    /// Held while counting, so that one count at a time grants.
    counting: Mutex<()>,
    count: Counter,
}

impl ThreadBudget {
    const fn with_counter(count: Counter) -> ThreadBudget {
        ThreadBudget {
            granted: AtomicUsize::new(0),
            counting: Mutex::new(()),
            count,
        }
    }

    /// Takes one thread from the budget, counting mappings again if the grant is spent.
    ///
    /// # Errors
    ///
    /// An `OutOfMemory` error if another thread would bring the process too close to
    /// `vm.max_map_count`.
    pub(crate) fn take(&self) -> io::Result<()> {
        if self.take_granted() {
            return Ok(());
        }
        let _counting = self.counting.lock();
        // Another thread may have counted and granted while this one waited.
        if self.take_granted() {
            return Ok(());
        }
        self.count_and_grant()
    }

    /// Takes one thread of the grant, if any is left.
    fn take_granted(&self) -> bool {
        let spent = |n: usize| n.checked_sub(1);
        self.granted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, spent)
            .is_ok()
    }

    /// Counts the mappings, takes one thread and grants half of the others left. The
    /// caller holds `counting` and has seen the grant spent.
    ///
    /// Why half: a grant is trusted until it is spent, while the program may map
    /// memory or spawn threads of its own meanwhile. Granting half of the room leaves
    /// the other half for that, and the next count sees it all. Halving also keeps
    /// counting cheap: grants are large while there is much room, and counts come
    /// more often only as the room runs out.
    fn count_and_grant(&self) -> io::Result<()> {
        let Some(room) = (self.count)()? else {
            // Mappings cannot be counted here (no `/proc`): nothing to hold back for.
            self.granted.store(usize::MAX, Ordering::Release);
            return Ok(());
        };
        match room.threads_left() {
            0 => Err(too_many(room)),
            left => {
                self.granted.store((left - 1) / 2, Ordering::Release);
                Ok(())
            }
        }
    }
}

fn too_many(room: Room) -> io::Error {
    let Room { used, max } = room;
    let message = format!(
        "{used} of vm.max_map_count {max} memory mappings in use; another thread needs \
         {MAPS_PER_THREAD} and {RESERVE} stay free for the rest of the process \
         (raise vm.max_map_count to run more threads)"
    );
    io::Error::new(io::ErrorKind::OutOfMemory, message)
}

/// Reads the limit and counts the lines of `/proc/self/maps`; `None` if either is not
/// there (another OS, or no `/proc`).
#[cfg(target_os = "linux")]
fn count_mappings() -> io::Result<Option<Room>> {
    use std::io::Read;

    let Ok(max) = std::fs::read_to_string("/proc/sys/vm/max_map_count") else {
        return Ok(None);
    };
    let Ok(max) = max.trim().parse() else {
        return Ok(None);
    };
    let Ok(mut maps) = std::fs::File::open("/proc/self/maps") else {
        return Ok(None);
    };
    let mut buffer = vec![0; 64 * 1024];
    let mut used = 0;
    loop {
        match maps.read(&mut buffer)? {
            0 => return Ok(Some(Room { used, max })),
            n => used += buffer[..n].iter().filter(|&&b| b == b'\n').count(),
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn count_mappings() -> io::Result<Option<Room>> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Barrier};
    use std::thread;

    use super::*;

    /// Threads the fake process has room for when a test starts.
    const THREADS_LEFT: usize = 1000;
    const START_USED: usize = 100;
    const MAX: usize = START_USED + RESERVE + THREADS_LEFT * MAPS_PER_THREAD;

    /// A process whose mappings the test sets, and which checks that counts run alone.
    struct FakeProcess {
        used: AtomicUsize,
        counting: AtomicBool,
        overlaps: AtomicUsize,
        counts: AtomicUsize,
    }

    impl FakeProcess {
        const fn new() -> FakeProcess {
            FakeProcess {
                used: AtomicUsize::new(START_USED),
                counting: AtomicBool::new(false),
                overlaps: AtomicUsize::new(0),
                counts: AtomicUsize::new(0),
            }
        }

        fn count(&self) -> io::Result<Option<Room>> {
            if self.counting.swap(true, Ordering::SeqCst) {
                self.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            self.counts.fetch_add(1, Ordering::SeqCst);
            let used = self.used.load(Ordering::SeqCst);
            // A real count takes a while and is stale when it returns: give other
            // threads the chance to take, and a second count to overlap, meanwhile.
            for _ in 0..10 {
                thread::yield_now();
            }
            self.counting.store(false, Ordering::SeqCst);
            Ok(Some(Room { used, max: MAX }))
        }

        /// Threads whose mappings appear, whether the budget granted them or not.
        fn add_threads(&self, n: usize) {
            self.used.fetch_add(n * MAPS_PER_THREAD, Ordering::SeqCst);
        }

        fn threads_left(&self) -> usize {
            let used = self.used.load(Ordering::SeqCst);
            Room { used, max: MAX }.threads_left()
        }

        /// Asks `budget` for a thread. Its mappings count from the moment it asks, so a
        /// count on another thread never misses a thread already granted; in a real
        /// process the reserve covers that moment.
        fn start_thread(&self, budget: &ThreadBudget) -> io::Result<()> {
            self.add_threads(1);
            let taken = budget.take();
            if taken.is_err() {
                self.used.fetch_sub(MAPS_PER_THREAD, Ordering::SeqCst);
            }
            taken
        }
    }

    const TAKERS: usize = 8;

    /// Starts threads from `TAKERS` threads at once, each until it is refused; returns
    /// how many were granted.
    fn start_from_many_threads(process: &'static FakeProcess, budget: ThreadBudget) -> usize {
        let budget = Arc::new(budget);
        let start = Arc::new(Barrier::new(TAKERS));
        let takers: Vec<_> = (0..TAKERS)
            .map(|_| {
                let (budget, start) = (Arc::clone(&budget), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    std::iter::from_fn(|| process.start_thread(&budget).ok()).count()
                })
            })
            .collect();
        takers.into_iter().map(|t| t.join().unwrap()).sum()
    }

    #[test]
    fn concurrent_takes_never_grant_more_than_the_room_counted() {
        static PROCESS: FakeProcess = FakeProcess::new();
        let granted =
            start_from_many_threads(&PROCESS, ThreadBudget::with_counter(|| PROCESS.count()));
        assert!(granted <= THREADS_LEFT, "{granted} granted");
        // A taker is refused only once the threads granted and those still asking fill
        // the room.
        assert!(granted >= THREADS_LEFT - TAKERS, "{granted} granted");
        assert_eq!(PROCESS.threads_left(), THREADS_LEFT - granted);
    }

    #[test]
    fn only_one_thread_counts_at_a_time() {
        static PROCESS: FakeProcess = FakeProcess::new();
        start_from_many_threads(&PROCESS, ThreadBudget::with_counter(|| PROCESS.count()));
        assert!(PROCESS.counts.load(Ordering::SeqCst) > 1);
        assert_eq!(PROCESS.overlaps.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn threads_the_program_starts_itself_are_seen_at_the_next_count() {
        static PROCESS: FakeProcess = FakeProcess::new();
        let budget = ThreadBudget::with_counter(|| PROCESS.count());
        budget.take().unwrap();
        PROCESS.add_threads(1);
        // Fewer than the half of the room the first grant left alone.
        let own = 300;
        PROCESS.add_threads(own);
        let mut granted = 1;
        let err = loop {
            match budget.take() {
                Ok(()) => PROCESS.add_threads(1),
                Err(err) => break err,
            }
            granted += 1;
        };
        assert_eq!(err.kind(), io::ErrorKind::OutOfMemory);
        assert_eq!(granted, THREADS_LEFT - own);
        assert_eq!(PROCESS.threads_left(), 0);
    }

    #[test]
    fn a_count_takes_one_and_grants_half_of_the_rest() {
        // 1024 reserved, 4 per thread: room for 1000 threads; 1 taken, 499 granted.
        let budget = ThreadBudget::with_counter(|| {
            Ok(Some(Room {
                used: 976,
                max: 6000,
            }))
        });
        budget.take().unwrap();
        assert_eq!(budget.granted.load(Ordering::Relaxed), 499);
        budget.take().unwrap();
        assert_eq!(budget.granted.load(Ordering::Relaxed), 498);
    }

    #[test]
    fn the_last_thread_left_is_granted() {
        let budget = ThreadBudget::with_counter(|| {
            Ok(Some(Room {
                used: 4972,
                max: 6000,
            }))
        });
        budget.take().unwrap();
        assert_eq!(budget.granted.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn no_room_is_an_out_of_memory_error_naming_the_limit() {
        let budget = ThreadBudget::with_counter(|| {
            Ok(Some(Room {
                used: 64_600,
                max: 65_530,
            }))
        });
        let err = budget.take().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::OutOfMemory);
        assert!(err.to_string().contains("vm.max_map_count 65530"), "{err}");
    }

    #[test]
    fn where_mappings_cannot_be_counted_there_is_no_limit() {
        let budget = ThreadBudget::with_counter(|| Ok(None));
        for _ in 0..1000 {
            budget.take().unwrap();
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_room() {
        let room = count_mappings().unwrap().expect("/proc is there on Linux");
        assert!(room.used > 0 && room.used < room.max, "{room:?}");
        take_thread().unwrap();
        ThreadBudget::with_counter(count_mappings).take().unwrap();
    }
}
