//! [`ThreadBudget`]: refuse a thread the process has no memory mappings left for.
//!
//! On Linux each thread takes about 4 memory mappings (its stack and guard page, and
//! the signal stack the standard library sets up, with its own guard page). Once a
//! process reaches `vm.max_map_count`, a new thread can fail *after* `spawn` returned
//! `Ok`, inside the standard library's thread start, which aborts the whole process. So
//! a supervisor checks before it spawns, and refuses with a typed error instead.
//!
//! Counting the process's mappings costs milliseconds once there are thousands of
//! threads, so it is not done on every start: a count grants half of the threads the
//! remaining mappings allow, each start takes one with an atomic decrement, and the
//! next count comes when the grant is spent. Halving also leaves room for other
//! supervisors and other code mapping memory at the same time.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Mappings a thread takes.
const MAPS_PER_THREAD: usize = 4;

/// Mappings kept free for everything else the process maps (heap arenas, files, ...).
const RESERVE: usize = 1024;

/// How many more threads the process may start, or `None` where it cannot be told.
type Counter = fn() -> io::Result<Option<Room>>;

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

/// The threads a supervisor may still start before it counts mappings again.
#[derive(Debug)]
pub(crate) struct ThreadBudget {
    granted: AtomicUsize,
    count: Counter,
}

impl ThreadBudget {
    pub(crate) fn new() -> ThreadBudget {
        ThreadBudget::with_counter(count_mappings)
    }

    fn with_counter(count: Counter) -> ThreadBudget {
        ThreadBudget {
            granted: AtomicUsize::new(0),
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
        let spent = |n: usize| n.checked_sub(1);
        if self
            .granted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, spent)
            .is_ok()
        {
            return Ok(());
        }
        // Two starts may count at once; each count is a fresh, safe estimate.
        let Some(room) = (self.count)()? else {
            self.granted.store(usize::MAX, Ordering::Release);
            return Ok(());
        };
        match room.threads_left() {
            0 => Err(too_many(room)),
            left => {
                self.granted.store(left / 2, Ordering::Release);
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

/// Takes one thread from the process-wide budget.
pub(crate) fn take_thread() -> io::Result<()> {
    static BUDGET: std::sync::OnceLock<ThreadBudget> = std::sync::OnceLock::new();
    BUDGET.get_or_init(ThreadBudget::new).take()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_grants_half_the_threads_left() {
        // 1024 reserved, 4 per thread: room for 1000 threads, 500 granted.
        let budget = ThreadBudget::with_counter(|| {
            Ok(Some(Room {
                used: 976,
                max: 6000,
            }))
        });
        budget.take().unwrap();
        assert_eq!(budget.granted.load(Ordering::Relaxed), 500);
        budget.take().unwrap();
        assert_eq!(budget.granted.load(Ordering::Relaxed), 499);
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
        ThreadBudget::new().take().unwrap();
    }
}
