//! [`Wait`]: how long a blocking operation may wait, with no `Instant + Duration` that
//! can overflow.

use std::time::{Duration, Instant};

use std::convert::Infallible;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

/// How long an operation may block.
///
/// Every timeout of the crate becomes one of these through [`Wait::at_most`], the only
/// place that adds a duration to an instant: a timeout too large for an `Instant`
/// (`Duration::MAX`, or anything past the clock's range) means "no deadline", as
/// crossbeam's own `recv_timeout` treats it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Do not block at all.
    No,
    /// Block until the operation can complete.
    Forever,
    /// Block until this instant at the latest.
    Until(Instant),
}

impl Wait {
    /// A wait of at most `timeout` from now; `Forever` if the deadline would overflow.
    pub(crate) fn at_most(timeout: Duration) -> Wait {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => Wait::Until(deadline),
            None => Wait::Forever,
        }
    }

    /// Calls `attempt` until it gives a value, for at most `spin` and never past this
    /// wait's deadline, yielding the CPU between calls; `None` if it never did.
    ///
    /// For the waits of a warm thread's hand-over, whose answer comes within a few
    /// microseconds: waking a parked thread on the other CPU costs 30-40 µs on a
    /// virtual machine, ten times the whole hand-over (see BENCHMARKS.md). The spin is
    /// bounded; the caller then waits as usual.
    pub(crate) fn spin<T>(
        self,
        spin: Duration,
        mut attempt: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        let began = Instant::now();
        loop {
            if let Some(value) = attempt() {
                return Some(value);
            }
            let now = Instant::now();
            let past = match self {
                Wait::No => true,
                Wait::Forever => false,
                Wait::Until(deadline) => now >= deadline,
            };
            if past || now.duration_since(began) >= spin {
                return None;
            }
            std::thread::yield_now();
        }
    }

    /// Receives from `rx` as [`recv`](Self::recv) does, after trying for up to `spin`
    /// without parking the thread (see [`spin`](Self::spin)). A zero `spin` is a plain
    /// `recv`.
    pub(crate) fn recv_after_spin<T>(
        self,
        rx: &Receiver<T>,
        spin: Duration,
    ) -> Result<T, RecvTimeoutError> {
        if spin.is_zero() {
            return self.recv(rx);
        }
        let tried = self.spin(spin, || match rx.try_recv() {
            Ok(value) => Some(Ok(value)),
            Err(TryRecvError::Disconnected) => Some(Err(RecvTimeoutError::Disconnected)),
            Err(TryRecvError::Empty) => None,
        });
        tried.unwrap_or_else(|| self.recv(rx))
    }

    /// Receives from `rx`, blocking as this wait allows.
    pub(crate) fn recv<T>(self, rx: &Receiver<T>) -> Result<T, RecvTimeoutError> {
        match self {
            Wait::No => rx.try_recv().map_err(|err| match err {
                TryRecvError::Empty => RecvTimeoutError::Timeout,
                TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            }),
            Wait::Forever => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Wait::Until(deadline) => rx.recv_deadline(deadline),
        }
    }
}

/// Whether every sender of `rx` is gone: the channels that mark an end (of a thread,
/// of a session) by the drop of their only sender.
pub(crate) fn hung_up(rx: &Receiver<Infallible>) -> bool {
    matches!(rx.try_recv(), Err(TryRecvError::Disconnected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_past_the_clocks_range_is_no_deadline() {
        for timeout in [Duration::MAX, Duration::from_secs(u64::MAX / 2)] {
            assert_eq!(Wait::at_most(timeout), Wait::Forever, "{timeout:?}");
        }
        assert!(matches!(
            Wait::at_most(Duration::from_secs(1)),
            Wait::Until(_)
        ));
    }

    #[test]
    fn a_spin_tries_at_least_once_and_never_past_its_deadline() {
        let mut tries = 0;
        let none = Wait::Forever.spin(Duration::ZERO, || {
            tries += 1;
            None::<()>
        });
        assert_eq!((none, tries), (None, 1));
        let past = Wait::Until(Instant::now());
        let began = Instant::now();
        assert_eq!(past.spin(Duration::from_secs(60), || None::<()>), None);
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "stopped at the deadline"
        );
        assert_eq!(Wait::No.spin(Duration::from_secs(60), || Some(7)), Some(7));
    }

    #[test]
    fn each_wait_receives_what_is_there_and_reports_what_is_not() {
        let (tx, rx) = crossbeam_channel::unbounded();
        tx.send(1).unwrap();
        assert_eq!(Wait::No.recv(&rx), Ok(1));
        assert_eq!(Wait::No.recv(&rx), Err(RecvTimeoutError::Timeout));
        let past = Wait::Until(Instant::now());
        assert_eq!(past.recv(&rx), Err(RecvTimeoutError::Timeout));
        drop(tx);
        assert_eq!(Wait::Forever.recv(&rx), Err(RecvTimeoutError::Disconnected));
    }
}
