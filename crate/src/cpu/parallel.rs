//! The CPU backend's threads: a rayon pool of the chosen size natively (one thread on wasm32,
//! which has no threads here), and the one data-parallel loop the kernels use.

use crate::engine::error::EngineError;

/// The threads a CPU engine runs its steps on.
pub(crate) struct Pool {
    #[cfg(not(target_arch = "wasm32"))]
    pool: rayon::ThreadPool,
    threads: usize,
}

impl Pool {
    /// A pool of `threads` threads (at least 1).
    pub fn new(threads: usize) -> Result<Pool, EngineError> {
        let threads = if cfg!(target_arch = "wasm32") {
            1
        } else {
            threads.max(1)
        };
        #[cfg(not(target_arch = "wasm32"))]
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("qwen-cpu-{i}"))
            .build()
            .map_err(|e| EngineError::Threads(e.to_string()))?;
        Ok(Pool {
            #[cfg(not(target_arch = "wasm32"))]
            pool,
            threads,
        })
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `work` with [`for_each_chunk`] spreading over this pool's threads.
    pub fn run<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        #[cfg(not(target_arch = "wasm32"))]
        return self.pool.install(work);
        #[cfg(target_arch = "wasm32")]
        work()
    }
}

/// Calls `f(i, chunk)` for each `chunk`-sized piece of `data` (the last may be shorter), in
/// parallel on the pool this runs in.
pub(crate) fn for_each_chunk<T: Send>(
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        data.par_chunks_mut(chunk.max(1))
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    }
    #[cfg(target_arch = "wasm32")]
    data.chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(i, c)| f(i, c));
}
