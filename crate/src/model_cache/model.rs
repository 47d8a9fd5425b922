//! One model's bytes ([`CachedModel`]): from its stored chunks when the cache has them, else
//! over HTTP into the cache, resuming from the first unstored chunk after a cut, a stall or a
//! reload; sizes and SHA-256s verified, the quota checked before the download.

use js_sys::Uint8Array;
use serde::Deserialize;
use web_sys::AbortSignal;

use super::error::CacheError;
use super::http::{request_range, MAX_RETRIES, RETRY_BASE_DELAY_MS};
use super::js;
use super::store::{self, Manifest};

/// Size of the pieces a model is stored in: a 500 MB model is ~16 records.
const DEFAULT_CHUNK_BYTES: u64 = 32 * 1024 * 1024;
/// Largest slice of a chunk copied into wasm memory at once.
const SLICE_BYTES: u64 = 8 * 1024 * 1024;
/// Download progress is reported at most once per this many bytes (and at each chunk).
const PROGRESS_STEP_BYTES: u64 = 1024 * 1024;
/// A body that sends nothing for this long is treated as cut, and resumed.
const DEFAULT_IDLE_TIMEOUT_MS: f64 = 30_000.0;

/// Which model, how to check it and how to store it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct OpenOptions {
    /// The shard URLs, in order; relative ones resolve against the page's location.
    pub urls: Vec<String>,
    /// The key the model is stored under; by default its absolute URLs (a signed URL whose
    /// query changes per request needs a stable key of its own).
    pub cache_key: Option<String>,
    /// Expected SHA-256 of each shard (hex), in the order of `urls`; None where unknown.
    pub sha256: Option<Vec<Option<String>>>,
    /// Size of a new entry's chunks (an existing entry keeps its own).
    pub chunk_bytes: Option<u64>,
    /// How long a response body may send nothing before it is resumed, in ms.
    pub idle_timeout_ms: Option<f64>,
    /// Aborts requests, reads and waits; the operation then fails with [`CacheError::Aborted`].
    #[serde(skip)]
    pub signal: Option<AbortSignal>,
}

/// Where model bytes come from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourcePhase {
    Download,
    CacheRead,
}

/// How many of the model's bytes are here so far, and from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceProgress {
    pub phase: SourcePhase,
    /// Bytes of all shards obtained so far (stored ones included).
    pub bytes_done: u64,
    /// Bytes of all shards together.
    pub bytes_total: u64,
}

/// Receives the model's bytes in order: `(shard, file offset, bytes)`, at most 8 MiB at once.
pub type ModelSink<'a, E> = dyn FnMut(usize, u64, &[u8]) -> Result<(), E> + 'a;

/// One model's cache entry and the way to its bytes.
pub struct CachedModel {
    urls: Vec<String>,
    key: String,
    expected: Vec<Option<String>>,
    new_chunk_bytes: u64,
    idle_timeout_ms: f64,
    signal: Option<AbortSignal>,
    /// The manifest as stored (None: no entry).
    manifest: Option<Manifest>,
    /// Shard sizes and validators learned from the network before a manifest exists.
    sizes: Vec<Option<u64>>,
    validators: Vec<Option<String>>,
}

/// The page's location, for resolving relative URLs (a worker's is its script's).
fn base_url() -> Option<String> {
    let location = js_sys::Reflect::get(&js_sys::global(), &"location".into()).ok()?;
    js_sys::Reflect::get(&location, &"href".into())
        .ok()?
        .as_string()
}

fn absolute_urls(urls: &[String]) -> Result<Vec<String>, CacheError> {
    let base = base_url();
    urls.iter()
        .map(|url| {
            web_sys::Url::new_with_base(url, base.as_deref().unwrap_or("about:blank"))
                .map(|u| u.href())
                .map_err(|_| CacheError::InvalidRequest(format!("not a URL: {url}")))
        })
        .collect()
}

/// The key of a model stored without a caller-given one: its absolute URLs as JSON.
pub fn default_key(urls: &[String]) -> String {
    serde_json::to_string(urls).unwrap_or_default()
}

/// The key `options` name: the caller's, else the default one of its URLs.
pub fn cache_key_of(urls: &[String], cache_key: Option<&str>) -> Result<String, CacheError> {
    match cache_key {
        Some("") => Err(CacheError::InvalidRequest(
            "cacheKey must not be empty".into(),
        )),
        Some(key) => Ok(key.to_owned()),
        None => Ok(default_key(&absolute_urls(urls)?)),
    }
}

fn validate(options: &OpenOptions) -> Result<Vec<Option<String>>, CacheError> {
    let invalid = |m: String| Err(CacheError::InvalidRequest(m));
    if options.urls.is_empty() {
        return invalid("a model needs at least one URL".into());
    }
    let expected = options
        .sha256
        .clone()
        .unwrap_or_else(|| vec![None; options.urls.len()]);
    if expected.len() != options.urls.len() {
        return invalid(format!(
            "{} SHA-256 values for {} model files",
            expected.len(),
            options.urls.len()
        ));
    }
    for hash in expected.iter().flatten() {
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return invalid(format!("not a SHA-256 hex digest: {hash}"));
        }
    }
    if options.chunk_bytes == Some(0) {
        return invalid("chunkBytes must be a positive integer, got 0".into());
    }
    if options.idle_timeout_ms.is_some_and(|t| !(t > 0.0)) {
        return invalid("idleTimeoutMs must be positive".into());
    }
    Ok(expected
        .into_iter()
        .map(|h| h.map(|h| h.to_ascii_lowercase()))
        .collect())
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl CachedModel {
    /// Opens a model's cache entry (if any). A complete entry whose recorded SHA-256 differs
    /// from the expected one is stale and dropped.
    pub async fn open(options: OpenOptions) -> Result<CachedModel, CacheError> {
        let expected = validate(&options)?;
        let urls = absolute_urls(&options.urls)?;
        let key = match options.cache_key.as_deref() {
            Some(key) => cache_key_of(&urls, Some(key))?,
            None => default_key(&urls),
        };
        let mut manifest = store::read_manifest(&key).await?;
        if let Some(m) = &manifest {
            let stale = m.shards.len() != urls.len()
                || (m.complete
                    && m.shards.iter().zip(&expected).any(|(shard, want)| {
                        matches!((&shard.sha256, want), (Some(have), Some(want)) if have != want)
                    }));
            if stale {
                store::delete_entry(&key).await?;
                manifest = None;
            }
        }
        let count = urls.len();
        Ok(CachedModel {
            sizes: (0..count)
                .map(|i| manifest.as_ref().map(|m| m.shards[i].size))
                .collect(),
            validators: (0..count)
                .map(|i| {
                    manifest
                        .as_ref()
                        .and_then(|m| m.shards[i].validator.clone())
                })
                .collect(),
            urls,
            key,
            expected,
            new_chunk_bytes: options.chunk_bytes.unwrap_or(DEFAULT_CHUNK_BYTES),
            idle_timeout_ms: options.idle_timeout_ms.unwrap_or(DEFAULT_IDLE_TIMEOUT_MS),
            signal: options.signal,
            manifest,
        })
    }

    /// The shards' absolute URLs.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Whether every shard is stored and verified: reading it makes no request to the server.
    pub fn complete(&self) -> bool {
        self.manifest.as_ref().is_some_and(|m| m.complete)
    }

    fn check_abort(&self) -> Result<(), CacheError> {
        match &self.signal {
            Some(s) if s.aborted() => Err(CacheError::Aborted),
            _ => Ok(()),
        }
    }

    /// Shard `shard`'s size in bytes (one small request when neither stored nor seen).
    pub async fn shard_size(&mut self, shard: usize) -> Result<u64, CacheError> {
        if let Some(size) = self.sizes[shard] {
            return Ok(size);
        }
        Ok(self.read_range(shard, 0, 1).await?.1)
    }

    /// Bytes `start..start + length` of a shard (fewer at its end), and the shard's size: from
    /// the cache when the entry is complete, else in one request (retried when transient).
    pub async fn read_range(
        &mut self,
        shard: usize,
        start: u64,
        length: u64,
    ) -> Result<(Vec<u8>, u64), CacheError> {
        self.check_abort()?;
        if let Some(m) = self.manifest.as_ref().filter(|m| m.complete) {
            let (size, chunk_bytes) = (m.shards[shard].size, m.chunk_bytes);
            let end = size.min(start.saturating_add(length));
            let mut bytes = vec![0; end.saturating_sub(start) as usize];
            let mut position = start;
            while position < end {
                let index = position / chunk_bytes;
                let chunk = self.cached_chunk(shard, index).await?;
                let within = (position - index * chunk_bytes) as u32;
                let take = (end - position).min(u64::from(chunk.length() - within));
                let at = (position - start) as usize;
                chunk
                    .subarray(within, within + take as u32)
                    .copy_to(&mut bytes[at..at + take as usize]);
                position += take;
            }
            return Ok((bytes, size));
        }
        let mut failures = 0;
        loop {
            match self.fetch_range(shard, start, length).await {
                Ok(found) => return Ok(found),
                Err(e) => self.back_off_or_fail(e, &mut failures, shard).await?,
            }
        }
    }

    async fn fetch_range(
        &mut self,
        shard: usize,
        start: u64,
        length: u64,
    ) -> Result<(Vec<u8>, u64), CacheError> {
        let url = self.urls[shard].clone();
        let end = start + length.max(1) - 1;
        let response = request_range(&url, start, Some(end), self.signal.as_ref()).await?;
        let Some(file_size) = response.file_size else {
            return Err(CacheError::DownloadFailed {
                message: format!("{url}: the server does not say the file's size"),
                url,
                status: None,
            });
        };
        self.note_response(shard, file_size, response.validator.clone())
            .await?;
        let wanted = file_size.min(end + 1).saturating_sub(start) as usize;
        let mut bytes = vec![0u8; wanted];
        // Bytes before `start` from a server that ignored Range are skipped.
        let mut skip = start - response.body_start;
        let mut filled = 0;
        while filled < wanted {
            let Some(piece) = response
                .next(self.idle_timeout_ms, self.signal.as_ref())
                .await?
            else {
                return Err(CacheError::Transient {
                    message: format!("{url}: the response ended after {filled} of {wanted} bytes"),
                    status: None,
                });
            };
            let dropped = skip.min(u64::from(piece.length())) as u32;
            skip -= u64::from(dropped);
            let take = (piece.length() - dropped).min((wanted - filled) as u32);
            piece
                .subarray(dropped, dropped + take)
                .copy_to(&mut bytes[filled..filled + take as usize]);
            filled += take as usize;
        }
        Ok((bytes, file_size))
    }

    /// Records a response's size and validator. A partial entry whose file changed on the
    /// server (another size or validator) is dropped: the download starts over.
    async fn note_response(
        &mut self,
        shard: usize,
        size: u64,
        validator: Option<String>,
    ) -> Result<(), CacheError> {
        if let Some(known) = self.manifest.as_ref().map(|m| &m.shards[shard]) {
            let changed = known.size != size
                || matches!((&known.validator, &validator), (Some(a), Some(b)) if a != b);
            if changed {
                self.discard().await?;
            }
        }
        self.sizes[shard] = Some(size);
        if validator.is_some() {
            self.validators[shard] = validator;
        }
        Ok(())
    }

    /// Deletes this model's entry (manifest and chunks).
    async fn discard(&mut self) -> Result<(), CacheError> {
        store::delete_entry(&self.key).await?;
        self.manifest = None;
        Ok(())
    }

    /// Waits before the next attempt of a transient failure; past the retries, fails.
    async fn back_off_or_fail(
        &self,
        error: CacheError,
        failures: &mut u32,
        shard: usize,
    ) -> Result<(), CacheError> {
        let CacheError::Transient { message, status } = error else {
            return Err(error);
        };
        *failures += 1;
        if *failures > MAX_RETRIES {
            return Err(CacheError::DownloadFailed {
                message: format!(
                    "{message} (gave up after {MAX_RETRIES} retries; the stored part resumes on the next load)"
                ),
                url: self.urls[shard].clone(),
                status,
            });
        }
        let delay = RETRY_BASE_DELAY_MS * f64::from(1u32 << (*failures - 1));
        js::sleep(delay, self.signal.as_ref()).await
    }

    /// A stored chunk; a missing or wrong-sized one means the entry is damaged: it is deleted.
    async fn cached_chunk(&mut self, shard: usize, index: u64) -> Result<Uint8Array, CacheError> {
        let m = self
            .manifest
            .as_ref()
            .ok_or_else(|| CacheError::Internal("no cache entry to read".into()))?;
        let record = &m.shards[shard];
        let expected = m.chunk_bytes.min(record.size - index * m.chunk_bytes);
        let url = record.url.clone();
        let chunk = store::read_chunk(&self.key, shard, index).await?;
        match chunk {
            Some(chunk) if u64::from(chunk.length()) == expected => Ok(chunk),
            other => {
                self.discard().await?;
                let found = other.map_or("missing".to_owned(), |c| {
                    format!("{} bytes, expected {expected}", c.length())
                });
                Err(CacheError::Integrity {
                    message: format!(
                        "{url}: stored chunk {index} is {found}; the cached copy was deleted"
                    ),
                    url,
                })
            }
        }
    }
}

mod read;
