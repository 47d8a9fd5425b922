//! Reading a whole model in order ([`CachedModel::read`]): stored chunks first, then the rest
//! from the network under the model's Web Lock, each chunk committed (with a re-check of the
//! stored manifest) before it is handed on; sizes and SHA-256s verified at the end of each shard.

use js_sys::Uint8Array;
use sha2::Digest;

use super::{hex, CachedModel, ModelSink, SourcePhase, SourceProgress};
use super::{PROGRESS_STEP_BYTES, SLICE_BYTES};
use crate::model_cache::error::{mib, CacheError};
use crate::model_cache::http::request_range;
use crate::model_cache::js;
use crate::model_cache::locks;
use crate::model_cache::store::{self, Manifest, ShardRecord, Written};

/// Copies a chunk into wasm memory slice by slice, hashing it and handing each slice on.
fn deliver<E: From<CacheError>>(
    chunk: &Uint8Array,
    shard: usize,
    offset: u64,
    scratch: &mut Vec<u8>,
    hasher: Option<&mut sha2::Sha256>,
    sink: &mut ModelSink<'_, E>,
) -> Result<(), E> {
    let length = u64::from(chunk.length());
    let mut hasher = hasher;
    let mut at = 0;
    while at < length {
        let n = SLICE_BYTES.min(length - at);
        scratch.resize(n as usize, 0);
        chunk.subarray(at as u32, (at + n) as u32).copy_to(scratch);
        if let Some(h) = hasher.as_deref_mut() {
            h.update(&scratch[..]);
        }
        sink(shard, offset + at, &scratch[..])?;
        at += n;
    }
    Ok(())
}

impl CachedModel {
    /// Every byte of every shard, in order, into `sink`: stored chunks first, then the rest
    /// from the network, each chunk stored before it is handed on. Verifies sizes and SHA-256s
    /// and marks the entry complete at the end.
    pub async fn read<E: From<CacheError>>(
        &mut self,
        on_progress: &mut dyn FnMut(SourceProgress),
        sink: &mut ModelSink<'_, E>,
    ) -> Result<(), E> {
        let mut sizes = Vec::with_capacity(self.urls.len());
        for shard in 0..self.urls.len() {
            sizes.push(self.shard_size(shard).await?);
        }
        let bytes_total: u64 = sizes.iter().sum();
        // Held until the end: another page loading this model waits, then reads what this one
        // stored instead of downloading it again.
        let _lock = if self.complete() {
            None
        } else {
            let lock = locks::exclusive(
                &format!("qwen-webgpu-model:{}", self.key),
                self.signal.as_ref(),
            )
            .await?;
            // What another page stored (or deleted) while this one waited.
            self.manifest = store::read_manifest(&self.key)
                .await?
                .filter(|m| m.shards.iter().map(|s| s.size).eq(sizes.iter().copied()));
            lock
        };
        if !self.complete() {
            let stored = self.manifest.as_ref().map_or(0, Manifest::stored_bytes);
            self.ensure_space(bytes_total - stored).await?;
            if self.manifest.is_none() {
                let fresh = self.new_manifest(&sizes);
                self.commit(fresh, None).await?;
            }
        }
        let stored = self.manifest.as_ref().map_or(0, Manifest::stored_bytes);
        let phase = if stored > 0 {
            SourcePhase::CacheRead
        } else {
            SourcePhase::Download
        };
        on_progress(SourceProgress {
            phase,
            bytes_done: 0,
            bytes_total,
        });

        let mut scratch = Vec::new();
        let mut bytes_done = 0;
        // Hashes computed now, recorded in the manifest with the completion.
        let mut hashes: Vec<Option<String>> = vec![None; self.urls.len()];
        for shard in 0..self.urls.len() {
            let manifest = self.stored()?;
            let (complete, chunk_bytes) = (manifest.complete, manifest.chunk_bytes);
            let record = manifest.shards[shard].clone();
            let expected = self.expected[shard].clone();
            // A recorded hash vouches for a complete shard; otherwise hash what flows past.
            let mut hasher = (!complete || (expected.is_some() && record.sha256 != expected))
                .then(sha2::Sha256::new);
            let shard_start = bytes_done;
            for index in 0..record.committed_chunks {
                self.check_abort()?;
                let chunk = self.cached_chunk(shard, index).await?;
                // Reported before the chunk's upload, so the last report of a load is the upload's.
                bytes_done += u64::from(chunk.length());
                on_progress(SourceProgress {
                    phase: SourcePhase::CacheRead,
                    bytes_done,
                    bytes_total,
                });
                deliver(
                    &chunk,
                    shard,
                    index * chunk_bytes,
                    &mut scratch,
                    hasher.as_mut(),
                    sink,
                )?;
            }
            if !complete {
                let mut report = |shard_bytes: u64| {
                    on_progress(SourceProgress {
                        phase: SourcePhase::Download,
                        bytes_done: shard_start + shard_bytes,
                        bytes_total,
                    })
                };
                self.download(shard, &mut scratch, hasher.as_mut(), &mut report, sink)
                    .await?;
                bytes_done = shard_start + record.size;
            }
            if let Some(hasher) = hasher {
                let actual = hex(&hasher.finalize());
                if let Some(expected) = expected.filter(|e| *e != actual) {
                    self.discard().await?;
                    return Err(CacheError::Integrity {
                        message: format!(
                            "{}: SHA-256 is {actual}, expected {expected}; the cached copy was deleted",
                            record.url
                        ),
                        url: record.url,
                    }
                    .into());
                }
                hashes[shard] = Some(actual);
            }
        }
        let manifest = self.stored()?;
        let learned = manifest
            .shards
            .iter()
            .zip(&hashes)
            .any(|(s, h)| h.is_some() && s.sha256 != *h);
        if !manifest.complete || learned {
            let mut done = manifest.clone();
            done.complete = true;
            for (record, hash) in done.shards.iter_mut().zip(hashes) {
                record.sha256 = hash.or(record.sha256.take());
            }
            self.commit(done, None).await?;
        }
        Ok(())
    }

    fn stored(&self) -> Result<&Manifest, CacheError> {
        self.manifest
            .as_ref()
            .ok_or_else(|| CacheError::Internal("the model's cache entry is gone".into()))
    }

    fn new_manifest(&self, sizes: &[u64]) -> Manifest {
        Manifest {
            key: self.key.clone(),
            urls: self.urls.clone(),
            chunk_bytes: self.new_chunk_bytes,
            complete: false,
            shards: self
                .urls
                .iter()
                .zip(sizes)
                .zip(&self.validators)
                .map(|((url, &size), validator)| ShardRecord {
                    url: url.clone(),
                    size,
                    validator: validator.clone(),
                    committed_chunks: 0,
                    sha256: None,
                })
                .collect(),
        }
    }

    /// Fails with QuotaExceeded before downloading when the origin reports too little room.
    async fn ensure_space(&self, needed_bytes: u64) -> Result<(), CacheError> {
        match store::free_storage_bytes().await {
            Some(free) if free < needed_bytes => Err(CacheError::QuotaExceeded {
                message: format!(
                    "the model needs {} of storage but only {} is free",
                    mib(needed_bytes),
                    mib(free)
                ),
                needed_bytes,
                free_bytes: Some(free),
            }),
            _ => Ok(()),
        }
    }

    /// Stores `next` (and a chunk) if the stored manifest is still the one this model last
    /// wrote. Storage full: the entry is deleted and QuotaExceeded returned. Entry changed by
    /// another page (deleted, cleared): the load fails, leaving the other page's decision be.
    async fn commit(
        &mut self,
        next: Manifest,
        chunk: Option<(usize, u64, &Uint8Array)>,
    ) -> Result<(), CacheError> {
        match store::write_checked(self.manifest.as_ref(), &next, chunk).await {
            Ok(Written::Stored) => {
                self.manifest = Some(next);
                Ok(())
            }
            Ok(Written::EntryChanged) => {
                self.manifest = None;
                Err(CacheError::DownloadFailed {
                    message: format!(
                        "{}: the model's cache entry was deleted by another page during the download",
                        self.urls[0]
                    ),
                    url: self.urls[0].clone(),
                    status: None,
                })
            }
            Err(error) if js::is_dom_exception(&error, "QuotaExceededError") => {
                let needed_bytes = next.total_bytes();
                self.discard().await?;
                Err(CacheError::QuotaExceeded {
                    message: format!(
                        "storage is full: the model needs {}; its partial copy was deleted",
                        mib(needed_bytes)
                    ),
                    needed_bytes,
                    free_bytes: store::free_storage_bytes().await,
                })
            }
            Err(error) => Err(CacheError::Internal(format!(
                "cannot write to the model cache: {}",
                crate::model_cache::error::describe(&error)
            ))),
        }
    }

    /// The rest of one shard from the network, from its first unstored chunk, resuming after
    /// cuts and stalls (up to the retries; a committed chunk resets their count).
    async fn download<E: From<CacheError>>(
        &mut self,
        shard: usize,
        scratch: &mut Vec<u8>,
        mut hasher: Option<&mut sha2::Sha256>,
        report: &mut dyn FnMut(u64),
        sink: &mut ModelSink<'_, E>,
    ) -> Result<(), E> {
        let (chunk_bytes, size) = {
            let m = self.stored()?;
            (m.chunk_bytes, m.shards[shard].size)
        };
        let chunk_count = size.div_ceil(chunk_bytes);
        let mut failures = 0;
        loop {
            let committed = self.stored()?.shards[shard].committed_chunks;
            if committed >= chunk_count {
                return Ok(());
            }
            let start = committed * chunk_bytes;
            let url = self.urls[shard].clone();
            let outcome = match request_range(&url, start, None, self.signal.as_ref()).await {
                Ok(response) => {
                    self.receive(
                        shard,
                        response,
                        start,
                        scratch,
                        hasher.as_deref_mut(),
                        &mut failures,
                        report,
                        sink,
                    )
                    .await
                }
                Err(e) => Err(Interrupted::Cache(e)),
            };
            match outcome {
                Ok(()) => {}
                Err(Interrupted::Sink(e)) => return Err(e),
                Err(Interrupted::Cache(e)) => {
                    self.back_off_or_fail(e, &mut failures, shard).await?
                }
            }
        }
    }

    /// Takes one response's body into chunks: each full chunk is committed, then handed on.
    #[allow(clippy::too_many_arguments)]
    async fn receive<E: From<CacheError>>(
        &mut self,
        shard: usize,
        response: crate::model_cache::http::RangeResponse,
        start: u64,
        scratch: &mut Vec<u8>,
        mut hasher: Option<&mut sha2::Sha256>,
        failures: &mut u32,
        report: &mut dyn FnMut(u64),
        sink: &mut ModelSink<'_, E>,
    ) -> Result<(), Interrupted<E>> {
        self.check_same_file(shard, &response).await?;
        let (chunk_bytes, size) = {
            let m = self.stored()?;
            (m.chunk_bytes, m.shards[shard].size)
        };
        let url = self.urls[shard].clone();
        // Bytes of the body before `start` (from a server that ignored Range) are skipped.
        let mut skip = start - response.body_start;
        let mut position = start;
        let mut last_report = position;
        let mut buffer: Option<Uint8Array> = None;
        let mut filled: u32 = 0;
        while let Some(piece) = response
            .next(self.idle_timeout_ms, self.signal.as_ref())
            .await?
        {
            let mut at = skip.min(u64::from(piece.length())) as u32;
            skip -= u64::from(at);
            while at < piece.length() {
                if position >= size {
                    self.discard().await?;
                    return Err(Interrupted::Cache(CacheError::Integrity {
                        message: format!(
                            "{url}: the server sent more than the file's {size} bytes"
                        ),
                        url,
                    }));
                }
                let chunk_start = position - u64::from(filled);
                let chunk_length = chunk_bytes.min(size - chunk_start) as u32;
                let chunk = buffer.get_or_insert_with(|| Uint8Array::new_with_length(chunk_length));
                let take = (piece.length() - at).min(chunk_length - filled);
                chunk.set(&piece.subarray(at, at + take), filled);
                filled += take;
                at += take;
                position += u64::from(take);
                if filled == chunk_length {
                    let full = buffer
                        .take()
                        .unwrap_or_else(|| Uint8Array::new_with_length(0));
                    let index = chunk_start / chunk_bytes;
                    let mut next = self.stored()?.clone();
                    let record = &mut next.shards[shard];
                    record.committed_chunks = index + 1;
                    if record.validator.is_none() {
                        record.validator = self.validators[shard].clone();
                    }
                    self.commit(next, Some((shard, index, &full))).await?;
                    *failures = 0;
                    filled = 0;
                    last_report = position;
                    report(position);
                    deliver(
                        &full,
                        shard,
                        chunk_start,
                        scratch,
                        hasher.as_deref_mut(),
                        sink,
                    )
                    .map_err(Interrupted::Sink)?;
                } else if position - last_report >= PROGRESS_STEP_BYTES {
                    last_report = position;
                    report(position);
                }
            }
        }
        if position < size {
            return Err(Interrupted::Cache(CacheError::Transient {
                message: format!("{url}: the response ended at byte {position} of {size}"),
                status: None,
            }));
        }
        Ok(())
    }

    /// Rejects a response that is not the stored version of the file; the stored part of a
    /// file that changed is worthless, so it is deleted.
    async fn check_same_file(
        &mut self,
        shard: usize,
        response: &crate::model_cache::http::RangeResponse,
    ) -> Result<(), CacheError> {
        let record = self.stored()?.shards[shard].clone();
        let url = self.urls[shard].clone();
        if let Some(size) = response.file_size.filter(|s| *s != record.size) {
            self.discard().await?;
            return Err(CacheError::Integrity {
                message: format!(
                    "{url}: the server now reports {size} bytes, expected {}; the cached copy was deleted",
                    record.size
                ),
                url,
            });
        }
        if let (Some(stored), Some(now)) = (&record.validator, &response.validator) {
            if stored != now {
                self.discard().await?;
                return Err(CacheError::DownloadFailed {
                    message: format!(
                        "{url} changed on the server during the download ({stored} → {now}); the cached copy was deleted"
                    ),
                    url,
                    status: None,
                });
            }
        }
        if response.validator.is_some() && self.validators[shard].is_none() {
            self.validators[shard] = response.validator.clone();
        }
        Ok(())
    }
}

/// Why receiving a body stopped: the cache's reason (maybe transient), or the sink's error.
enum Interrupted<E> {
    Cache(CacheError),
    Sink(E),
}

impl<E> From<CacheError> for Interrupted<E> {
    fn from(e: CacheError) -> Self {
        Interrupted::Cache(e)
    }
}
