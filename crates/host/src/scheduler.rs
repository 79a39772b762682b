//! One timer queue for the whole host: health polls, pending timeouts, the deadlock check and the
//! lease, for every resource. A single thread sleeps until the earliest deadline; there is no
//! thread or task per resource. Timers that tolerate it ([`Scheduler::at_coarse`]) are rounded up
//! onto a grid, so that polls spread over time come due together and one wake-up serves many:
//! with each poll at its own instant, waking this thread and a call thread per poll cost far more
//! than the polls. Timers are kept by deadline, those due at one instant in one list, so a whole
//! grid point is taken out at once (a binary heap cost a sift per timer).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::protocol::ResourceId;

/// What a timer is for. Each carries what it needs to tell whether it is still current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// LooksAlive poll, valid while the resource is online in this generation.
    LooksAlive { id: ResourceId, generation: u64 },
    /// IsAlive poll, likewise.
    IsAlive { id: ResourceId, generation: u64 },
    /// PendingTimeout: fires if no report arrived after the `report_seq`-th.
    Pending { id: ResourceId, generation: u64, report_seq: u64 },
    /// Time to check the calls in flight against their DeadlockTimeout (recurring).
    DeadlockCheck,
    /// Lease deadline of renewal `renewal`.
    Lease { renewal: u64 },
    /// Time to tell the parent this host is alive.
    Heartbeat,
}

#[derive(Default)]
struct Timers {
    /// By deadline; timers with the same deadline in the order they were set.
    due: BTreeMap<Instant, Vec<Timer>>,
    stopped: bool,
}

/// The timer queue and its thread.
pub(crate) struct Scheduler {
    timers: Mutex<Timers>,
    wake: Condvar,
    /// Origin of the grids of [`Scheduler::at_coarse`].
    epoch: Instant,
}

impl Scheduler {
    /// Starts the timer thread; `fire` runs on it with every timer due at once, in deadline
    /// order, so it must be quick (it queues work, it does not do it).
    pub(crate) fn start(fire: impl Fn(&[Timer]) + Send + 'static) -> std::io::Result<Arc<Scheduler>> {
        let scheduler =
            Arc::new(Scheduler { timers: Mutex::new(Timers::default()), wake: Condvar::new(), epoch: Instant::now() });
        let s = scheduler.clone();
        thread::Builder::new().name("halo-host-timers".into()).spawn(move || s.run(fire))?;
        Ok(scheduler)
    }

    fn lock(&self) -> MutexGuard<'_, Timers> {
        self.timers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn at(&self, when: Instant, timer: Timer) {
        let mut timers = self.lock();
        let earliest = timers.due.first_key_value().is_none_or(|(first, _)| when < *first);
        timers.due.entry(when).or_default().push(timer);
        if earliest {
            self.wake.notify_one();
        }
    }

    /// Like [`Scheduler::at`], but `when` may be up to `slack` late: it is rounded up to the next
    /// multiple of `slack` since the scheduler started, so timers with the same slack due close
    /// together fire in one batch. Never early.
    pub(crate) fn at_coarse(&self, when: Instant, slack: Duration, timer: Timer) {
        self.at(coarse(self.epoch, when, slack), timer);
    }

    pub(crate) fn stop(&self) {
        self.lock().stopped = true;
        self.wake.notify_one();
    }

    fn run(&self, fire: impl Fn(&[Timer])) {
        let mut due = Vec::new();
        let mut timers = self.lock();
        loop {
            if timers.stopped {
                return;
            }
            let now = Instant::now();
            match timers.due.first_key_value().map(|(when, _)| *when) {
                Some(when) if when <= now => {
                    while let Some(entry) = timers.due.first_entry().filter(|e| *e.key() <= now) {
                        due.append(&mut entry.remove());
                    }
                    drop(timers);
                    fire(&due);
                    due.clear();
                    timers = self.lock();
                }
                Some(when) => {
                    timers = match self.wake.wait_timeout(timers, when - now) {
                        Ok((t, _)) => t,
                        Err(p) => p.into_inner().0,
                    };
                }
                None => {
                    timers = match self.wake.wait(timers) {
                        Ok(t) => t,
                        Err(p) => p.into_inner(),
                    };
                }
            }
        }
    }
}

/// `when` rounded up to the next multiple of `slack` after `epoch` (unchanged for a zero slack).
fn coarse(epoch: Instant, when: Instant, slack: Duration) -> Instant {
    let (since, slack) = (when.saturating_duration_since(epoch).as_nanos(), slack.as_nanos());
    match since.checked_rem(slack) {
        Some(0) | None => when,
        // The remainder is below `slack`, itself a Duration: it fits.
        Some(rem) => when + Duration::from_nanos(u64::try_from(slack - rem).unwrap_or(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_order() {
        let (tx, rx) = mpsc::channel();
        let s = Scheduler::start(move |due: &[Timer]| due.iter().for_each(|t| tx.send(*t).unwrap())).unwrap();
        let now = Instant::now();
        s.at(now + Duration::from_millis(30), Timer::Lease { renewal: 3 });
        s.at(now + Duration::from_millis(10), Timer::Lease { renewal: 1 });
        s.at(now + Duration::from_millis(20), Timer::Lease { renewal: 2 });
        let got: Vec<_> = (0..3).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(got, [1, 2, 3].map(|renewal| Timer::Lease { renewal }));
        s.stop();
    }

    #[test]
    fn coarse_deadlines_round_up_onto_the_grid() {
        let epoch = Instant::now();
        let slack = Duration::from_millis(10);
        let at = |ms: u64| epoch + Duration::from_millis(ms);
        assert_eq!(coarse(epoch, at(20), slack), at(20));
        assert_eq!(coarse(epoch, at(21), slack), at(30));
        assert_eq!(coarse(epoch, at(29), slack), at(30));
        assert_eq!(coarse(epoch, at(21), Duration::ZERO), at(21));
        assert_eq!(coarse(epoch, epoch - Duration::from_millis(1), slack), epoch - Duration::from_millis(1));
    }

    #[test]
    fn timers_on_one_grid_point_fire_in_one_batch() {
        let (tx, rx) = mpsc::channel();
        let s = Scheduler::start(move |due: &[Timer]| tx.send(due.to_vec()).unwrap()).unwrap();
        let slack = Duration::from_millis(50);
        // Two deadlines 1 ms apart inside one grid step, a few steps ahead.
        let steps = u32::try_from(s.epoch.elapsed().as_millis() / 50).unwrap() + 4;
        let when = s.epoch + slack * steps + Duration::from_millis(5);
        s.at_coarse(when, slack, Timer::Lease { renewal: 1 });
        s.at_coarse(when + Duration::from_millis(1), slack, Timer::Lease { renewal: 2 });
        let batch = rx.recv().unwrap();
        assert_eq!(batch, [1, 2].map(|renewal| Timer::Lease { renewal }));
        s.stop();
    }
}
