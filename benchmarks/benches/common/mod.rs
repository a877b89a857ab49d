//! What every bench needs: fresh project directories and a criterion setting that
//! suits a shared 2-core machine.
// Each bench uses a part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use criterion::Criterion;
use session_supervisor::{Session, SessionId};

/// `n` fresh, empty directories under one temp base, removed on drop.
pub struct TempDirs {
    base: PathBuf,
    dirs: Vec<PathBuf>,
}

impl TempDirs {
    /// Creates the directories; `what` names the bench in the base's name.
    pub fn new(what: &str, n: usize) -> TempDirs {
        let base = std::env::temp_dir().join(format!("bench-{what}-{}", SessionId::new()));
        let dirs: Vec<PathBuf> = (0..n).map(|i| base.join(format!("p{i}"))).collect();
        for dir in &dirs {
            std::fs::create_dir_all(dir).expect("create a bench project directory");
        }
        TempDirs { base, dirs }
    }

    /// The directories, as created (the temp dir may be a symlink: not canonical).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// One valid session per directory.
    pub fn sessions(&self) -> Vec<Session> {
        self.dirs.iter().map(|dir| session(dir)).collect()
    }
}

impl Drop for TempDirs {
    fn drop(&mut self) {
        // Best effort: a failed clean-up must not hide the bench's own result.
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// A session for an existing directory.
pub fn session(dir: &Path) -> Session {
    Session::new(dir).expect("a valid project directory")
}

/// Short runs: the machine is shared, and the ratios matter more than the last digit.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

/// A thread running a cycle (of writes, of starts and stops) back to back until
/// dropped, then reporting its rate under `label`, so the load behind each number is
/// known.
pub struct Churn {
    label: &'static str,
    stop: Arc<AtomicBool>,
    cycles: Arc<AtomicU64>,
    began: Instant,
    thread: Option<JoinHandle<()>>,
}

impl Churn {
    /// Starts the thread, pausing `pace` after each cycle if given; returns once it runs.
    pub fn start(
        label: &'static str,
        pace: Option<Duration>,
        mut cycle: impl FnMut() + Send + 'static,
    ) -> Churn {
        let stop = Arc::new(AtomicBool::new(false));
        let cycles = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let thread = {
            let (stop, cycles) = (Arc::clone(&stop), Arc::clone(&cycles));
            thread::spawn(move || {
                ready_tx.send(()).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    cycle();
                    cycles.fetch_add(1, Ordering::Relaxed);
                    if let Some(pace) = pace {
                        thread::sleep(pace);
                    }
                }
            })
        };
        ready_rx.recv().unwrap();
        Churn {
            label,
            stop,
            cycles,
            began: Instant::now(),
            thread: Some(thread),
        }
    }
}

impl Drop for Churn {
    /// Stops the thread and reports its rate.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        let rate = self.cycles.load(Ordering::Relaxed) as f64 / self.began.elapsed().as_secs_f64();
        eprintln!("  ({}: {rate:.0} cycles/s)", self.label);
    }
}
