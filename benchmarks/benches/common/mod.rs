//! What every bench needs: fresh project directories and a criterion setting that
//! suits a shared 2-core machine.
// Each bench uses a part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

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
