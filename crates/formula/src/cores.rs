//! The cores a large formula is checked on: how many there are, and the
//! scoped threads that share the work (`document`, `structure`, the
//! formula's steps, the DAG and templates in `check`).

use std::thread::ScopedJoinHandle;

/// How many threads can run at once here (`std::thread::available_parallelism`,
/// which honours CPU affinity and cgroup quotas); 1 when it cannot say.
pub fn count() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// What a scoped thread returned. A panic in it (a bug: nothing a formula
/// holds makes retort panic) goes on in the calling thread, as if the work
/// had been done there.
pub fn join<T>(handle: ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
