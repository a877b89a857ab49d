//! [`Wait`]: how long a blocking operation may wait, with no `Instant + Duration` that
//! can overflow.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

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

    /// Receives from `rx` as [`recv`](Self::recv) does, but first tries for up to `spin`
    /// without parking the thread, yielding the CPU between tries.
    ///
    /// For the waits of a warm thread's hand-over, whose answer comes within a few
    /// microseconds: waking a parked thread on the other CPU costs 30-40 µs on a
    /// virtual machine, ten times the whole hand-over (see BENCHMARKS.md). The spin is
    /// bounded, and then the wait is an ordinary channel wait.
    pub(crate) fn recv_after_spin<T>(
        self,
        rx: &Receiver<T>,
        spin: Duration,
    ) -> Result<T, RecvTimeoutError> {
        if self == Wait::No {
            return self.recv(rx);
        }
        let began = Instant::now();
        loop {
            match rx.try_recv() {
                Ok(value) => return Ok(value),
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    return Err(RecvTimeoutError::Disconnected)
                }
                Err(crossbeam_channel::TryRecvError::Empty) => {}
            }
            let now = Instant::now();
            let past = |deadline| now >= deadline;
            if now.duration_since(began) >= spin || matches!(self, Wait::Until(d) if past(d)) {
                return self.recv(rx);
            }
            std::thread::yield_now();
        }
    }

    /// Receives from `rx`, blocking as this wait allows.
    pub(crate) fn recv<T>(self, rx: &Receiver<T>) -> Result<T, RecvTimeoutError> {
        match self {
            Wait::No => rx.try_recv().map_err(|err| match err {
                crossbeam_channel::TryRecvError::Empty => RecvTimeoutError::Timeout,
                crossbeam_channel::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            }),
            Wait::Forever => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Wait::Until(deadline) => rx.recv_deadline(deadline),
        }
    }
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
