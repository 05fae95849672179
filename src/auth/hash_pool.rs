//! The threads that hash passwords. One per core, started with the server, in Linux's `SCHED_IDLE` class:
//! during a sign-in storm every core may be hashing, and the scheduler then still runs a worker the moment a
//! request arrives, instead of after a hash's time slice. Hashing gets every cycle the proxy does not need
//! (and a small share even when it needs them all), so sign-ins still run at close to the hardware's bound.
//!
//! Jobs queue when every thread is busy, so a storm costs queueing, not memory. Each argon2id hash works in
//! 19 MiB; a hashing thread keeps that memory between hashes ([`with_hash_memory`]), so a storm does not
//! fault 19 MiB of fresh pages into the process for every sign-in, and hands it back after
//! [`KEEP_MEMORY_IDLE`] without work. The threads end when the last handle to the pool is dropped.

use std::cell::RefCell;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::Block;

/// How long a hashing thread keeps its hash memory after its last job.
pub const KEEP_MEMORY_IDLE: Duration = Duration::from_secs(5);

thread_local! {
    static HASH_MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs `work` with `blocks` argon2 memory blocks, reusing this thread's from the previous hash.
pub fn with_hash_memory<R>(blocks: usize, work: impl FnOnce(&mut [Block]) -> R) -> R {
    HASH_MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        work(&mut memory[..blocks])
    })
}

/// Hands this thread's hash memory back (to the allocator, which returns it to the system).
fn release_hash_memory() {
    HASH_MEMORY.with_borrow_mut(|memory| *memory = Vec::new());
}

/// This thread's hash memory, in blocks (for tests).
#[cfg(test)]
fn hash_memory_blocks() -> usize {
    HASH_MEMORY.with_borrow(Vec::len)
}

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

    /// Runs `work` on a hashing thread without waiting for it.
    pub fn spawn(&self, work: impl FnOnce() + Send + 'static) {
        if self.jobs.send(Box::new(work)).is_err() {
            tracing::error!("the password hashing threads are gone");
        }
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
    let mut holding_memory = false;
    loop {
        // The lock is held only while waiting for the next job, never while hashing.
        let job = match queue.lock() {
            Ok(queue) if holding_memory => queue.recv_timeout(KEEP_MEMORY_IDLE),
            Ok(queue) => queue.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Err(_) => return,
        };
        match job {
            Ok(job) => {
                job();
                holding_memory = true;
            }
            Err(RecvTimeoutError::Timeout) => {
                release_hash_memory();
                holding_memory = false;
            }
            Err(RecvTimeoutError::Disconnected) => return,
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
        let kept = pool.run(|| with_hash_memory(16, |blocks| blocks.len())).await.unwrap();
        assert_eq!(kept, 16);
        assert_eq!(
            results.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            (0..8).map(|i| i * 2).collect::<Vec<_>>()
        );
    }

    #[test]
    fn hash_memory_is_reused_and_released() {
        assert_eq!(with_hash_memory(8, |blocks| blocks.len()), 8);
        assert_eq!(hash_memory_blocks(), 8);
        assert_eq!(with_hash_memory(4, |blocks| blocks.len()), 4, "a smaller request reuses the same memory");
        assert_eq!(hash_memory_blocks(), 8);
        release_hash_memory();
        assert_eq!(hash_memory_blocks(), 0);
    }
}
