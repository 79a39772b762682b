//! Worker threads for pending operations: `ClusWorkerCreate`, `ClusWorkerCheckTerminate`,
//! `ClusWorkerTerminate` and `ClusWorkerTerminateEx`.
//!
//! The pattern: `online_v2` creates a worker and returns `ERROR_IO_PENDING`; the worker does the
//! work, checks [`WorkerContext::check_terminate`] between steps and reports through
//! `set_resource_status_ex`; `terminate` calls [`Worker::terminate`], which asks the worker to
//! stop and waits until it has.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Shared {
    terminate: AtomicBool,
    finished: Mutex<bool>,
    finished_cv: Condvar,
}

impl Shared {
    fn finished(&self) -> MutexGuard<'_, bool> {
        self.finished.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the worker's function sees: `CLUS_WORKER` from the inside.
#[derive(Debug, Clone)]
pub struct WorkerContext {
    shared: Arc<Shared>,
}

impl WorkerContext {
    /// `ClusWorkerCheckTerminate`: true once termination was requested. Check it between steps
    /// and return promptly when it is.
    pub fn check_terminate(&self) -> bool {
        self.shared.terminate.load(Ordering::Acquire)
    }

    /// Sleeps up to `duration`, waking early when termination is requested. Returns true if
    /// termination was requested.
    pub fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut finished = self.shared.finished();
        loop {
            if self.check_terminate() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            // `terminate` notifies this condvar after setting the flag.
            finished = match self.shared.finished_cv.wait_timeout(finished, deadline - now) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

/// A worker thread (`CLUS_WORKER`). Dropping it without terminating detaches the thread.
#[derive(Debug)]
pub struct Worker {
    shared: Arc<Shared>,
    thread: Mutex<Option<thread::JoinHandle<u32>>>,
}

/// Whether a worker exited in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerExit {
    /// The worker has exited.
    Exited,
    /// The timeout passed first (`WAIT_TIMEOUT`).
    TimedOut,
}

impl Worker {
    /// `ClusWorkerCreate`: starts `work` on a new thread. Its return value is the thread's exit
    /// code. Fails only if the system cannot create a thread.
    pub fn spawn<F>(name: &str, work: F) -> io::Result<Worker>
    where
        F: FnOnce(&WorkerContext) -> u32 + Send + 'static,
    {
        let shared = Arc::new(Shared::default());
        let ctx = WorkerContext { shared: shared.clone() };
        let thread = thread::Builder::new().name(name.to_string()).spawn(move || {
            // Marks the worker finished even if `work` panics.
            struct Done(Arc<Shared>);
            impl Drop for Done {
                fn drop(&mut self) {
                    *self.0.finished() = true;
                    self.0.finished_cv.notify_all();
                }
            }
            let _done = Done(ctx.shared.clone());
            work(&ctx)
        })?;
        Ok(Worker { shared, thread: Mutex::new(Some(thread)) })
    }

    /// Has termination been requested?
    pub fn check_terminate(&self) -> bool {
        self.shared.terminate.load(Ordering::Acquire)
    }

    /// Has the worker's function returned?
    pub fn is_finished(&self) -> bool {
        *self.shared.finished()
    }

    fn request_terminate(&self) {
        self.shared.terminate.store(true, Ordering::Release);
        // Take the lock so a worker between its flag check and its wait cannot miss the wake-up.
        let _guard = self.shared.finished();
        self.shared.finished_cv.notify_all();
    }

    /// `ClusWorkerTerminate`: asks the worker to stop and waits until it has. Safe to call from
    /// several threads at once: the first caller joins the thread, later ones return at once
    /// (the Windows race guard). Do not call it from the worker itself.
    pub fn terminate(&self) {
        self.request_terminate();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            // A panic in the worker has already been reported by the panic hook.
            let _ = handle.join();
        }
    }

    /// `ClusWorkerTerminateEx`: waits up to `timeout` for the worker to exit. With
    /// `wait_only` false it first asks the worker to stop; with `wait_only` true it only waits.
    pub fn terminate_ex(&self, timeout: Duration, wait_only: bool) -> WorkerExit {
        if !wait_only {
            self.request_terminate();
        }
        let deadline = Instant::now() + timeout;
        let mut finished = self.shared.finished();
        while !*finished {
            let now = Instant::now();
            if now >= deadline {
                return WorkerExit::TimedOut;
            }
            finished = match self.shared.finished_cv.wait_timeout(finished, deadline - now) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
        drop(finished);
        if let Some(handle) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = handle.join();
        }
        WorkerExit::Exited
    }
}

/// The worker of a resource's operation in progress: at most one at a time. What every
/// pending online/offline needs — start a worker and answer `ERROR_IO_PENDING`, stop it on
/// terminate — in one place.
#[derive(Debug, Default)]
pub struct PendingWorker {
    slot: Mutex<Option<Worker>>,
}

impl PendingWorker {
    /// Stops any previous worker, starts `work`, and returns what the entry point answers:
    /// `ERROR_IO_PENDING`, or `ERROR_NOT_ENOUGH_MEMORY` if no thread could be started.
    pub fn start<F>(&self, name: &str, work: F) -> crate::Status
    where
        F: FnOnce(&WorkerContext) -> u32 + Send + 'static,
    {
        self.stop();
        match Worker::spawn(name, work) {
            Ok(w) => {
                *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(w);
                crate::Status::ERROR_IO_PENDING
            }
            Err(_) => crate::Status::ERROR_NOT_ENOUGH_MEMORY,
        }
    }

    /// `ClusWorkerTerminate` on the current worker, if any; returns once it has exited.
    pub fn stop(&self) {
        let worker = self.slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = worker {
            w.terminate();
        }
    }
}

/// `ClusWorkersTerminate`: asks every worker to stop (unless `wait_only`) and waits for all of
/// them, sharing one `timeout`. `TimedOut` if at least one did not exit in time.
pub fn terminate_workers(workers: &[&Worker], timeout: Duration, wait_only: bool) -> WorkerExit {
    if !wait_only {
        for w in workers {
            w.request_terminate();
        }
    }
    let deadline = Instant::now() + timeout;
    let mut result = WorkerExit::Exited;
    for w in workers {
        let left = deadline.saturating_duration_since(Instant::now());
        if w.terminate_ex(left, true) == WorkerExit::TimedOut {
            result = WorkerExit::TimedOut;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn terminate_stops_a_polling_worker_and_waits_for_it() {
        let (started_tx, started_rx) = mpsc::channel();
        let worker = Worker::spawn("test-worker", move |ctx| {
            started_tx.send(()).ok();
            let mut steps = 0;
            while !ctx.sleep(Duration::from_secs(3600)) {
                steps += 1;
            }
            steps
        })
        .unwrap();
        started_rx.recv().unwrap();
        assert!(!worker.is_finished());
        worker.terminate();
        assert!(worker.is_finished(), "terminate returns only after the worker exited");
        assert!(worker.check_terminate());
        // A second caller returns at once.
        worker.terminate();
    }

    #[test]
    fn terminate_ex_wait_only_does_not_signal() {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let worker = Worker::spawn("wait-only", move |ctx| {
            release_rx.recv().ok();
            u32::from(ctx.check_terminate())
        })
        .unwrap();
        assert_eq!(worker.terminate_ex(Duration::from_millis(20), true), WorkerExit::TimedOut);
        assert!(!worker.check_terminate(), "wait_only must not request termination");
        release_tx.send(()).unwrap();
        assert_eq!(worker.terminate_ex(Duration::from_secs(60), true), WorkerExit::Exited);
    }

    #[test]
    fn panicking_worker_still_counts_as_exited() {
        let worker = Worker::spawn("panics", |_| panic!("worker failure under test")).unwrap();
        assert_eq!(worker.terminate_ex(Duration::from_secs(60), false), WorkerExit::Exited);
    }

    #[test]
    fn a_pending_worker_replaces_and_stops_its_predecessor() {
        let slot = PendingWorker::default();
        let (tx, rx) = mpsc::channel();
        let first_tx = tx.clone();
        assert!(
            slot.start("first", move |ctx| u32::from(ctx.sleep(Duration::from_secs(3600)) && first_tx.send(1).is_ok()))
                .is_pending()
        );
        assert!(
            slot.start("second", move |ctx| u32::from(ctx.sleep(Duration::from_secs(3600)) && tx.send(2).is_ok()))
                .is_pending()
        );
        assert_eq!(rx.recv().ok(), Some(1), "starting the second stopped the first");
        slot.stop();
        assert_eq!(rx.recv().ok(), Some(2));
    }

    #[test]
    fn terminate_workers_reports_each() {
        let a = Worker::spawn("a", |ctx| u32::from(ctx.sleep(Duration::from_secs(3600)))).unwrap();
        let b = Worker::spawn("b", |ctx| u32::from(ctx.sleep(Duration::from_secs(3600)))).unwrap();
        assert_eq!(terminate_workers(&[&a, &b], Duration::from_secs(60), false), WorkerExit::Exited);
        assert!(a.is_finished() && b.is_finished());
    }
}
