//! Admission storms: many threads racing `start_session`, repeated, must respect the
//! limit and both uniqueness rules exactly, and leave both indexes in agreement.

mod common;

use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};

use common::{guard, recv_within, Projects};
use crossbeam_channel::{unbounded, Receiver, Sender};
use session_supervisor::{stub, Error, Session, SessionHandle, SessionId, SessionSupervisor};

const RACERS: usize = 64;
const LIMIT: usize = 10;
const ROUNDS: usize = 200;

/// One racer's session and what its start returned.
type Outcome = (Session, Result<SessionHandle, Error>);

/// A supervisor and the session one racer is to start in it.
type Job = (Arc<SessionSupervisor>, Session);

/// Long-lived racer threads, reused round after round so that a round costs no spawns.
struct Racers {
    jobs: Vec<Sender<Job>>,
    outcomes: Receiver<Outcome>,
    threads: Vec<JoinHandle<()>>,
}

impl Racers {
    fn new(count: usize) -> Racers {
        let barrier = Arc::new(Barrier::new(count));
        let (outcome_tx, outcomes) = unbounded();
        let mut jobs = Vec::new();
        let mut threads = Vec::new();
        for _ in 0..count {
            let (job_tx, job_rx) = unbounded::<Job>();
            let (barrier, outcome_tx) = (Arc::clone(&barrier), outcome_tx.clone());
            threads.push(thread::spawn(move || {
                for (sup, session) in job_rx {
                    barrier.wait();
                    let started = sup.start_session(session.clone(), stub::idle());
                    // The test's Arc must stay the last one: it drops the supervisor.
                    drop(sup);
                    let _ = outcome_tx.send((session, started));
                }
            }));
            jobs.push(job_tx);
        }
        Racers {
            jobs,
            outcomes,
            threads,
        }
    }

    /// Starts every session from its own racer, all released at once by a barrier.
    fn race(&self, sup: &Arc<SessionSupervisor>, sessions: Vec<Session>) -> Vec<Outcome> {
        assert_eq!(sessions.len(), self.jobs.len(), "one session per racer");
        for (job, session) in self.jobs.iter().zip(sessions) {
            job.send((Arc::clone(sup), session)).unwrap();
        }
        (0..self.jobs.len())
            .map(|_| recv_within(&self.outcomes, "a racer's outcome"))
            .collect()
    }
}

impl Drop for Racers {
    fn drop(&mut self) {
        self.jobs.clear();
        for racer in self.threads.drain(..) {
            let _ = racer.join();
        }
    }
}

/// A fresh supervisor for one round.
fn supervisor() -> Arc<SessionSupervisor> {
    Arc::new(common::builder().max_sessions(LIMIT).build())
}

/// Splits the outcomes into the admitted sessions and the refused ones with their errors.
fn split(outcomes: Vec<Outcome>) -> (Vec<Session>, Vec<(Session, Error)>) {
    let mut admitted = Vec::new();
    let mut refused = Vec::new();
    for (session, started) in outcomes {
        match started {
            Ok(handle) => {
                assert_eq!(handle.id(), session.id());
                admitted.push(session);
            }
            Err(err) => refused.push((session, err)),
        }
    }
    (admitted, refused)
}

/// The count, the id index and the path index all describe exactly `admitted`.
fn assert_indexes_agree(sup: &SessionSupervisor, admitted: &[Session], round: usize) {
    assert_eq!(sup.count(), admitted.len(), "round {round}: count");
    let mut listed = sup.list_ids();
    let mut expected: Vec<SessionId> = admitted.iter().map(|s| s.id()).collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected, "round {round}: listed ids");
    for session in admitted {
        let by_id = sup.lookup(session.id()).expect("admitted, so found by id");
        let by_path = sup
            .lookup_by_path(session.project_path())
            .expect("admitted, so found by path");
        assert_eq!(&by_id, session, "round {round}: by id");
        assert_eq!(by_path, by_id, "round {round}: by path and by id disagree");
        assert!(sup.session_running(session.id()));
    }
}

/// A refused session left no trace in either index.
fn assert_not_registered(sup: &SessionSupervisor, session: &Session, round: usize) {
    assert!(
        matches!(sup.lookup(session.id()), Err(Error::NotFound { .. })),
        "round {round}: refused id registered"
    );
    assert!(
        matches!(
            sup.lookup_by_path(session.project_path()),
            Err(Error::NotFound { .. })
        ),
        "round {round}: refused path registered"
    );
}

#[test]
fn storm_on_distinct_paths_admits_exactly_the_limit() {
    guard!(move || {
        let projects = Projects::new(RACERS);
        let racers = Racers::new(RACERS);
        for round in 0..ROUNDS {
            let sup = supervisor();
            let sessions = (0..RACERS).map(|i| projects.session(i)).collect();

            let (admitted, refused) = split(racers.race(&sup, sessions));

            assert_eq!(admitted.len(), LIMIT, "round {round}: admitted");
            for (session, err) in &refused {
                assert!(
                    matches!(err, Error::SessionLimitReached { max: LIMIT }),
                    "round {round}: {err:?}"
                );
                assert_not_registered(&sup, session, round);
            }
            assert_indexes_agree(&sup, &admitted, round);
        }
    });
}

#[test]
fn storm_on_one_path_admits_exactly_one() {
    guard!(move || {
        let projects = Projects::new(1);
        let canonical = projects.path(0);
        // Two spellings of the one directory: still one project.
        let spellings = [projects.base().join("0"), canonical.join("..").join("0")];
        let racers = Racers::new(RACERS);
        for round in 0..ROUNDS {
            let sup = supervisor();
            let sessions = (0..RACERS)
                .map(|i| Session::new(&spellings[i % 2]).unwrap())
                .collect();

            let (admitted, refused) = split(racers.race(&sup, sessions));

            assert_eq!(admitted.len(), 1, "round {round}: admitted");
            let winner = admitted[0].id();
            for (session, err) in &refused {
                assert!(
                    matches!(err, Error::ProjectAlreadyOpen { path, id }
                        if *path == canonical && *id == winner),
                    "round {round}: {err:?}"
                );
                assert!(!sup.session_running(session.id()));
            }
            assert_indexes_agree(&sup, &admitted, round);
        }
    });
}

#[test]
fn storm_on_one_id_admits_exactly_one() {
    guard!(move || {
        let projects = Projects::new(RACERS);
        let racers = Racers::new(RACERS);
        for round in 0..ROUNDS {
            let sup = supervisor();
            let id = SessionId::new();
            let sessions = (0..RACERS)
                .map(|i| Session::builder(projects.path(i)).id(id).build().unwrap())
                .collect();

            let (admitted, refused) = split(racers.race(&sup, sessions));

            assert_eq!(admitted.len(), 1, "round {round}: admitted");
            for (session, err) in &refused {
                assert!(
                    matches!(err, Error::SessionExists { id: taken } if *taken == id),
                    "round {round}: {err:?}"
                );
                assert!(
                    sup.lookup_by_path(session.project_path()).is_err(),
                    "round {round}: refused path registered"
                );
            }
            assert_indexes_agree(&sup, &admitted, round);
        }
    });
}
