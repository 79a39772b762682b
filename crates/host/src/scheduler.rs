//! One timer heap for the whole host: health polls, pending timeouts, the deadlock check and the
//! lease, for every resource. A single thread sleeps until the earliest deadline; there is no
//! thread or task per resource.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Instant;

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

struct Entry {
    when: Instant,
    seq: u64,
    timer: Timer,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.when == other.when && self.seq == other.seq
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed: BinaryHeap is a max-heap, the earliest deadline must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.when.cmp(&self.when).then(other.seq.cmp(&self.seq))
    }
}

#[derive(Default)]
struct Heap {
    entries: BinaryHeap<Entry>,
    next_seq: u64,
    stopped: bool,
}

/// The timer heap and its thread.
pub(crate) struct Scheduler {
    heap: Mutex<Heap>,
    wake: Condvar,
}

impl Scheduler {
    /// Starts the timer thread; `fire` runs on it for each due timer, so it must be quick (it
    /// queues work, it does not do it).
    pub(crate) fn start(fire: impl Fn(Timer) + Send + 'static) -> std::io::Result<Arc<Scheduler>> {
        let scheduler = Arc::new(Scheduler { heap: Mutex::new(Heap::default()), wake: Condvar::new() });
        let s = scheduler.clone();
        thread::Builder::new().name("halo-host-timers".into()).spawn(move || s.run(fire))?;
        Ok(scheduler)
    }

    pub(crate) fn at(&self, when: Instant, timer: Timer) {
        let mut heap = self.heap.lock().unwrap_or_else(|p| p.into_inner());
        let seq = heap.next_seq;
        heap.next_seq += 1;
        let earliest = heap.entries.peek().is_none_or(|e| when < e.when);
        heap.entries.push(Entry { when, seq, timer });
        if earliest {
            self.wake.notify_one();
        }
    }

    pub(crate) fn stop(&self) {
        self.heap.lock().unwrap_or_else(|p| p.into_inner()).stopped = true;
        self.wake.notify_one();
    }

    fn run(&self, fire: impl Fn(Timer)) {
        let mut heap = self.heap.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if heap.stopped {
                return;
            }
            let now = Instant::now();
            match heap.entries.peek().map(|e| e.when) {
                Some(when) if when <= now => {
                    let Some(entry) = heap.entries.pop() else { continue };
                    drop(heap);
                    fire(entry.timer);
                    heap = self.heap.lock().unwrap_or_else(|p| p.into_inner());
                }
                Some(when) => {
                    heap = match self.wake.wait_timeout(heap, when - now) {
                        Ok((h, _)) => h,
                        Err(p) => p.into_inner().0,
                    };
                }
                None => {
                    heap = match self.wake.wait(heap) {
                        Ok(h) => h,
                        Err(p) => p.into_inner(),
                    };
                }
            }
        }
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
        let s = Scheduler::start(move |t| tx.send(t).unwrap()).unwrap();
        let now = Instant::now();
        s.at(now + Duration::from_millis(30), Timer::Lease { renewal: 3 });
        s.at(now + Duration::from_millis(10), Timer::Lease { renewal: 1 });
        s.at(now + Duration::from_millis(20), Timer::Lease { renewal: 2 });
        let got: Vec<_> = (0..3).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(got, [1, 2, 3].map(|renewal| Timer::Lease { renewal }));
        s.stop();
    }
}
