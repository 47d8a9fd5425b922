//! Model files in the browser: owns getting a model's bytes (from IndexedDB chunks, else over
//! HTTP with Range resumption, retries and an idle timeout), verifying them (size always,
//! SHA-256 when the caller knows it), the storage quota checks and cache management. wasm32
//! only; the bytes go from the network or the database into wasm memory and on to the GPU,
//! never through JavaScript code.
//!
//! A model is the list of its shard URLs (one, or the files of a gguf-split model) stored under
//! a key (the caller's, or the absolute URLs). Its manifest records each shard's size, the
//! server's validator (ETag or Last-Modified) and how many chunks are stored; chunks are stored
//! in order, so "chunks 0..n-1" is the whole state of a partial download. Only a download whose
//! sizes (and SHA-256s, when given) verified is marked complete; a complete entry is read back
//! without any request to the server.
//!
//! Tabs share the database: a download runs under the model's Web Lock (a second tab loading
//! the same model waits, then reads what the first stored), and every chunk is committed in a
//! transaction that first re-reads the manifest, so a delete from another tab is seen at the
//! next commit instead of leaving a manifest that claims chunks that are gone.

mod error;
mod http;
mod js;
mod load;
mod locks;
mod model;
mod store;

pub use error::{describe, CacheError};
pub use load::{
    load_session, read_header, EngineSettings, LoadError, LoadPhase, LoadProgress,
    HEADER_PROBE_BYTES,
};
pub use model::{
    cache_key_of, default_key, CachedModel, ModelSink, OpenOptions, SourcePhase, SourceProgress,
};
pub use store::{clear_model_cache, delete_cached_model, list_cached_models, CachedModelInfo};

/// Asks the browser to keep this origin's storage under pressure (no eviction of the models);
/// resolves to whether storage is persistent. Browsers may grant it only after user engagement.
pub async fn request_persistent_storage() -> Result<bool, CacheError> {
    let Some(storage) = js::storage_manager() else {
        return Ok(false);
    };
    let granted = js::await_promise(storage.persist().map_err(CacheError::internal)?)
        .await
        .map_err(CacheError::internal)?;
    Ok(granted.as_bool() == Some(true))
}
