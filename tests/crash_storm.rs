//! A crash storm: many sessions panicking at random points (in `init`, in `run`, while
//! being stopped) thousands of times, with stops and a shutdown racing the crashes.
//! Afterwards every session is accounted for, the registry is empty and no thread is
//! left.
//!
//! Alone in its file: it counts the threads of the whole process, which other tests
//! running in parallel would change.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{recv_within, thread_count, with_watchdog, Projects};
use crossbeam_channel::{unbounded, Receiver, Sender};
use session_supervisor::{
    Error, ExitReason, ExitReport, InitError, Restart, RestartPolicy, SessionBody, SessionContext,
    SessionHandle, SessionId, SessionSupervisor, ShutdownReport,
};

const SESSIONS: usize = 50;
/// Panics in `init` or `run` while the storm lasts; panics while stopping come on top.
const CRASHES: usize = 5_000;
/// Sessions stopped in the middle of the storm, the rest by the shutdown after it.
const VICTIMS: usize = 10;
const SEED: u64 = 0x2545_f491_4f6c_dd1d;

/// A xorshift64 generator: reproducible from its seed, no dependency.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % n
    }
}

/// What all sessions of the storm share.
struct Storm {
    /// Crashes left to happen.
    budget: AtomicUsize,
    /// One message per crash taken from the budget.
    crashed: Sender<()>,
    /// One message when the budget runs out.
    over: Sender<()>,
    /// One message each time a body goes idle after the storm.
    idle: Sender<()>,
}

impl Storm {
    /// Takes one crash from the budget; `false` once the storm is over.
    fn take_crash(&self) -> bool {
        let taken = self
            .budget
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(1)
            });
        let Ok(left) = taken else { return false };
        let _ = self.crashed.send(());
        if left == 1 {
            let _ = self.over.send(());
        }
        true
    }

    fn is_over(&self) -> bool {
        self.budget.load(Ordering::Acquire) == 0
    }
}

/// A body that crashes at random points while the storm lasts, then idles, and may
/// crash again when stopped. Counts every ending of a run (return or panic).
struct StormBody {
    rng: XorShift,
    storm: Arc<Storm>,
    endings: Arc<AtomicU32>,
}

impl StormBody {
    fn ending(&self) {
        self.endings.fetch_add(1, Ordering::AcqRel);
    }
}

impl SessionBody for StormBody {
    fn init(&mut self, ctx: &SessionContext) -> Result<(), InitError> {
        // Never in the first init: that fails the start instead of crashing a session.
        if ctx.restarts() > 0 && self.rng.below(4) == 0 && self.storm.take_crash() {
            self.ending();
            panic!("storm: crash in init");
        }
        Ok(())
    }

    fn run(&mut self, ctx: &SessionContext) {
        // A permanent body that returns is restarted too: an ending that is no crash.
        if self.rng.below(8) == 0 && !self.storm.is_over() {
            self.ending();
            return;
        }
        if self.storm.take_crash() {
            self.ending();
            panic!("storm: crash in run");
        }
        let _ = self.storm.idle.send(());
        ctx.wait_for_stop();
        self.ending();
        if self.rng.below(2) == 0 {
            panic!("storm: crash while stopping");
        }
    }
}

/// Starts the storm's sessions; returns their handles and ending counters.
fn start_storm(
    sup: &SessionSupervisor,
    projects: &Projects,
    storm: &Arc<Storm>,
) -> Vec<(SessionHandle, Arc<AtomicU32>)> {
    // Restarts without limit: the storm, not the intensity, decides when it ends.
    let policy =
        RestartPolicy::new(Restart::Permanent).intensity(u32::MAX, Duration::from_secs(3600));
    (0..SESSIONS)
        .map(|i| {
            let endings = Arc::new(AtomicU32::new(0));
            let body = StormBody {
                rng: XorShift::new(SEED ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                storm: Arc::clone(storm),
                endings: Arc::clone(&endings),
            };
            let handle = sup
                .start(projects.session(i))
                .policy(policy)
                .body(body)
                .expect("start");
            (handle, endings)
        })
        .collect()
}

/// Stops each victim once the storm reached its crash count; returns what each stop
/// returned.
fn stop_during_storm(
    sup: Arc<SessionSupervisor>,
    crashed: Receiver<()>,
    mut victims: Vec<(usize, SessionId)>,
) -> thread::JoinHandle<Vec<(SessionId, Result<ExitReport, Error>)>> {
    victims.sort_unstable();
    thread::spawn(move || {
        let mut seen = 0;
        let mut results = Vec::new();
        for (at, id) in victims {
            while seen < at {
                recv_within(&crashed, "the next crash of the storm");
                seen += 1;
            }
            results.push((id, sup.stop_session(id)));
        }
        results
    })
}

/// Victims: distinct sessions, each with the crash count at which it is stopped.
fn pick_victims(handles: &[(SessionHandle, Arc<AtomicU32>)]) -> Vec<(usize, SessionId)> {
    let mut rng = XorShift::new(SEED);
    let mut victims = BTreeMap::new();
    while victims.len() < VICTIMS {
        let i = rng.below(SESSIONS as u64) as usize;
        let at = rng.below(CRASHES as u64 - 500) as usize;
        victims.entry(handles[i].0.id()).or_insert(at);
    }
    victims.into_iter().map(|(id, at)| (at, id)).collect()
}

fn assert_storm_reason(report: &ExitReport) {
    let fits = match report.reason() {
        ExitReason::Stopped => true,
        // A panic in `init` is reported as "init panicked: storm: ...".
        ExitReason::Panicked { message } => message.contains("storm: "),
        _ => false,
    };
    assert!(fits, "seed {SEED:#x}: unexpected end {report:?}");
}

#[test]
fn a_crash_storm_leaves_every_session_accounted_for_and_no_thread() {
    with_watchdog(
        "a_crash_storm_leaves_every_session_accounted_for_and_no_thread",
        Duration::from_secs(30),
        crash_storm,
    );
}

fn crash_storm() {
    let projects = Projects::new(SESSIONS);
    let before = thread_count();
    let sup = Arc::new(common::builder().max_sessions(SESSIONS).build());
    let (crashed_tx, crashed) = unbounded();
    let (over_tx, over) = unbounded();
    let (idle_tx, idle) = unbounded();
    let storm = Arc::new(Storm {
        budget: AtomicUsize::new(CRASHES),
        crashed: crashed_tx,
        over: over_tx,
        idle: idle_tx,
    });
    let sessions = start_storm(&sup, &projects, &storm);
    let stopper = stop_during_storm(Arc::clone(&sup), crashed, pick_victims(&sessions));

    recv_within(&over, "the end of the storm");
    // Half the sessions idle, to crash or not while stopped; the others may still be in
    // their last crash, which the shutdown races.
    for _ in 0..(SESSIONS - VICTIMS) / 2 {
        recv_within(&idle, "a session idle after the storm");
    }
    let shutdown = sup.shutdown();
    let stops = stopper.join().expect("the stopper");
    assert!(shutdown.is_complete(), "seed {SEED:#x}: {shutdown:?}");

    let reports = one_report_each(&shutdown, stops);
    assert_accounted_for(&sessions, &reports);
    assert_eq!(sup.count(), 0);
    assert!(sup.list_ids().is_empty());
    for i in 0..SESSIONS {
        assert!(sup.lookup_by_path(projects.path(i)).is_err(), "path {i}");
    }
    drop(sup);
    if let Some(before) = before {
        assert_eq!(thread_count(), Some(before), "seed {SEED:#x}: threads left");
    }
}

/// Merges the reports of the shutdown and of the stops: a session both reported must
/// have ended once, the same way.
fn one_report_each(
    shutdown: &ShutdownReport,
    stops: Vec<(SessionId, Result<ExitReport, Error>)>,
) -> BTreeMap<SessionId, ExitReport> {
    let mut reports: BTreeMap<_, _> = shutdown
        .exited()
        .iter()
        .map(|report| (report.id(), report.clone()))
        .collect();
    for (id, stopped) in stops {
        match stopped {
            Ok(report) => {
                let earlier = reports.insert(id, report.clone());
                assert!(
                    earlier.is_none() || earlier == Some(report),
                    "two ends for {id}"
                );
            }
            // The shutdown got there first: it reported the session.
            Err(Error::NotFound { .. }) => assert!(reports.contains_key(&id), "{id} lost"),
            Err(err) => panic!("seed {SEED:#x}: stopping {id} failed: {err}"),
        }
    }
    reports
}

/// Every session reported once, as its handle says, for a reason of the storm, after
/// exactly one restart per ending of a run but the last.
fn assert_accounted_for(
    sessions: &[(SessionHandle, Arc<AtomicU32>)],
    reports: &BTreeMap<SessionId, ExitReport>,
) {
    assert_eq!(
        reports.len(),
        SESSIONS,
        "seed {SEED:#x}: every session reported"
    );
    for (handle, endings) in sessions {
        let report = handle.wait_timeout(Duration::ZERO).expect("ended");
        assert_eq!(reports.get(&handle.id()), Some(&report));
        assert_storm_reason(&report);
        let endings = endings.load(Ordering::Acquire);
        // A stop that comes during a restart's init runs no new run: the restart then
        // ended nothing.
        let skipped = report.reason() == &ExitReason::Stopped && endings == report.restarts();
        let each_run_ended = endings == report.restarts() + 1;
        assert!(
            skipped || each_run_ended,
            "seed {SEED:#x}: {endings} endings, {report:?}"
        );
    }
    // Each crash of the storm restarts its session, unless it was the session's last.
    let restarts: u32 = reports.values().map(ExitReport::restarts).sum();
    assert!(
        restarts as usize >= CRASHES - SESSIONS,
        "{restarts} restarts"
    );
}
