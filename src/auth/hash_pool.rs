//! The threads that hash passwords. One per core, started with the server, in Linux's `SCHED_IDLE` class:
//! during a sign-in storm every core may be hashing, and the scheduler then still runs a worker the moment a
//! request arrives, instead of after a hash's time slice. Hashing gets every cycle the proxy does not need
//! (and a small share even when it needs them all), so sign-ins still run at close to the hardware's bound.
//!
//! Jobs queue when every thread is busy, so a storm costs queueing, not memory (each argon2id hash takes
//! 19 MiB). The threads end when the last handle to the pool is dropped.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct HashPool {
    jobs: Sender<Job>,
}

#[derive(Debug, thiserror::Error)]
#[error("the password hashing threads are gone")]
pub struct PoolGone;

impl HashPool {
    /// Starts `threads` hashing threads (at least one).
    pub fn start(threads: usize) -> Self {
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads.max(1) {
            let queue = queue.clone();
            let started =
                std::thread::Builder::new().name(format!("gatehouse-hash-{index}")).spawn(move || run(&queue));
            if let Err(err) = started {
                tracing::error!(error = %err, "could not start a password hashing thread");
            }
        }
        Self { jobs }
    }

    /// Runs `work` on a hashing thread and waits for its result without blocking the caller's thread.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, PoolGone> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        self.jobs.send(job).map_err(|_| PoolGone)?;
        result.await.map_err(|_| PoolGone)
    }
}

fn run(queue: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        // The lock is held only while waiting for the next job, never while hashing.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Moves this thread to `SCHED_IDLE` (pid 0 means the calling thread). Failure costs only fairness towards
/// the proxy, so it is logged and ignored.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = nix::libc::sched_param { sched_priority: 0 };
        // SAFETY: a plain system call on the calling thread with a valid, initialised parameter.
        let result = unsafe { nix::libc::sched_setscheduler(0, nix::libc::SCHED_IDLE, &param) };
        if result != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower the hashing thread's priority");
        }
    }
}

/// This thread's scheduling class (for tests).
#[cfg(all(test, target_os = "linux"))]
fn current_policy() -> i32 {
    // SAFETY: a plain system call on the calling thread.
    unsafe { nix::libc::sched_getscheduler(0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_a_lower_priority_thread_and_its_result_comes_back() {
        let pool = HashPool::start(2);
        let (name, policy) =
            pool.run(|| (std::thread::current().name().map(str::to_owned), current_policy())).await.unwrap();
        assert!(name.unwrap().starts_with("gatehouse-hash-"));
        assert_eq!(policy, nix::libc::SCHED_IDLE, "hashing runs only when nothing else wants the core");
        assert_eq!(current_policy(), nix::libc::SCHED_OTHER, "the caller's thread is untouched");
        let results = futures_util::future::join_all((0..8).map(|i| pool.run(move || i * 2))).await;
        assert_eq!(
            results.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            (0..8).map(|i| i * 2).collect::<Vec<_>>()
        );
    }
}
