//! The IndexedDB side of the model cache: the database (the same one, and the same record
//! shapes, as the package's earlier JavaScript cache, so stored models stay usable), manifests,
//! chunks, the commit that re-checks the manifest, deletion, listing and the storage quota.

use std::cell::RefCell;

use js_sys::{Array, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{IdbDatabase, IdbKeyRange, IdbObjectStore, IdbTransactionMode};

use super::error::CacheError;
use super::js;

const DATABASE_NAME: &str = "qwen-webgpu-model-cache";
const DATABASE_VERSION: u32 = 1;
const MANIFESTS: &str = "manifests";
const CHUNKS: &str = "chunks";

/// One shard of a stored model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ShardRecord {
    pub url: String,
    pub size: u64,
    /// The server's strong ETag or Last-Modified, to notice a file that changed between requests.
    pub validator: Option<String>,
    /// Chunks 0..committed_chunks-1 are stored.
    pub committed_chunks: u64,
    /// SHA-256 of the whole shard (hex), once it is stored and verified or hashed.
    pub sha256: Option<String>,
}

/// A model's entry: what is stored of it, and whether all of it verified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Manifest {
    pub key: String,
    pub urls: Vec<String>,
    pub chunk_bytes: u64,
    pub complete: bool,
    pub shards: Vec<ShardRecord>,
}

impl Manifest {
    pub fn stored_bytes(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.size.min(s.committed_chunks * self.chunk_bytes))
            .sum()
    }

    pub fn total_bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.size).sum()
    }
}

/// One model in the cache, as [`list_cached_models`] reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedModelInfo {
    /// The key the model is stored under (the caller's `cacheKey`, else its URLs as JSON).
    pub key: String,
    pub urls: Vec<String>,
    /// Bytes stored (all of them once complete).
    pub bytes: u64,
    /// Bytes of the whole model.
    pub total_bytes: u64,
    /// Whether every shard is stored and verified.
    pub complete: bool,
}

thread_local! {
    /// The open connection, shared by every model of this realm; dropped when another tab
    /// upgrades the schema or the browser closes it, and reopened on the next use.
    static DATABASE: RefCell<Option<IdbDatabase>> = const { RefCell::new(None) };
}

async fn database() -> Result<IdbDatabase, CacheError> {
    if let Some(db) = DATABASE.with(|d| d.borrow().clone()) {
        return Ok(db);
    }
    let request = js::idb_factory()?
        .open_with_u32(DATABASE_NAME, DATABASE_VERSION)
        .map_err(CacheError::internal)?;
    let upgrade = Closure::<dyn FnMut(web_sys::Event)>::new({
        let request = request.clone();
        move |_| {
            let Ok(result) = request.result() else { return };
            let db: IdbDatabase = result.unchecked_into();
            let names = db.object_store_names();
            if !names.contains(MANIFESTS) {
                let params = web_sys::IdbObjectStoreParameters::new();
                params.set_key_path(&"key".into());
                let _ = db.create_object_store_with_optional_parameters(MANIFESTS, &params);
            }
            if !names.contains(CHUNKS) {
                let _ = db.create_object_store(CHUNKS);
            }
        }
    });
    request.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    let opened = js::request_result(&request).await;
    request.set_onupgradeneeded(None);
    let db: IdbDatabase = opened
        .map_err(|e| {
            CacheError::Internal(format!(
                "cannot open the model cache database: {}",
                super::error::describe(&e)
            ))
        })?
        .unchecked_into();
    let forget = Closure::<dyn FnMut()>::new({
        let db = db.clone();
        move || {
            db.close();
            DATABASE.with(|d| d.borrow_mut().take());
        }
    });
    db.set_onversionchange(Some(forget.as_ref().unchecked_ref()));
    db.set_onclose(Some(forget.as_ref().unchecked_ref()));
    // The handlers live as long as the connection, which lives as long as the page.
    forget.forget();
    DATABASE.with(|d| *d.borrow_mut() = Some(db.clone()));
    Ok(db)
}

fn chunk_key(key: &str, shard: usize, index: u64) -> JsValue {
    Array::of3(&key.into(), &(shard as f64).into(), &(index as f64).into()).into()
}

/// Every chunk of one model: `[key, shard, index]` sorts between `[key]` and `[key, []]`.
fn chunk_range(key: &str) -> Result<IdbKeyRange, CacheError> {
    let lower = Array::of1(&key.into());
    let upper = Array::of2(&key.into(), &Array::new());
    IdbKeyRange::bound(&lower, &upper).map_err(CacheError::internal)
}

fn to_js(manifest: &Manifest) -> Result<JsValue, CacheError> {
    let json = serde_json::to_string(manifest).map_err(|e| CacheError::Internal(e.to_string()))?;
    js_sys::JSON::parse(&json).map_err(CacheError::internal)
}

fn from_js(value: &JsValue) -> Result<Option<Manifest>, CacheError> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let json: String = js_sys::JSON::stringify(value)
        .map_err(CacheError::internal)?
        .into();
    // A record this version cannot read is treated as absent: the model is fetched again.
    Ok(serde_json::from_str(&json).ok())
}

fn stores(
    db: &IdbDatabase,
    mode: IdbTransactionMode,
) -> Result<(web_sys::IdbTransaction, IdbObjectStore, IdbObjectStore), CacheError> {
    let names = Array::of2(&MANIFESTS.into(), &CHUNKS.into());
    let tx = db
        .transaction_with_str_sequence_and_mode(&names, mode)
        .map_err(CacheError::internal)?;
    let manifests = tx.object_store(MANIFESTS).map_err(CacheError::internal)?;
    let chunks = tx.object_store(CHUNKS).map_err(CacheError::internal)?;
    Ok((tx, manifests, chunks))
}

/// Waits for a read-write transaction to commit; an abort's error is returned as it came
/// (a QuotaExceededError stays recognisable).
async fn committed(tx: &web_sys::IdbTransaction) -> Result<(), JsValue> {
    js::transaction_done(tx)
        .await
        .map(|_| ())
        .map_err(|_| js::transaction_error(tx))
}

pub(super) async fn read_manifest(key: &str) -> Result<Option<Manifest>, CacheError> {
    let db = database().await?;
    let (_tx, manifests, _) = stores(&db, IdbTransactionMode::Readonly)?;
    let request = manifests.get(&key.into()).map_err(CacheError::internal)?;
    from_js(
        &js::request_result(&request)
            .await
            .map_err(CacheError::internal)?,
    )
}

pub(super) async fn read_chunk(
    key: &str,
    shard: usize,
    index: u64,
) -> Result<Option<Uint8Array>, CacheError> {
    let db = database().await?;
    let (_tx, _, chunks) = stores(&db, IdbTransactionMode::Readonly)?;
    let request = chunks
        .get(&chunk_key(key, shard, index))
        .map_err(CacheError::internal)?;
    let value = js::request_result(&request)
        .await
        .map_err(CacheError::internal)?;
    Ok(value.dyn_into::<Uint8Array>().ok())
}

/// How a write ended: stored, or refused because the stored manifest is no longer the one
/// the writer started from (another tab deleted or replaced the entry).
pub(super) enum Written {
    Stored,
    EntryChanged,
}

/// Writes `manifest` (with chunk `chunk` of shard `shard` when given) in one transaction that
/// first re-reads the stored manifest: the write happens only when the stored one is `expected`
/// (None: no entry yet). Errors are the browser's (a QuotaExceededError among them).
pub(super) async fn write_checked(
    expected: Option<&Manifest>,
    manifest: &Manifest,
    chunk: Option<(usize, u64, &Uint8Array)>,
) -> Result<Written, JsValue> {
    let db = database()
        .await
        .map_err(|e| JsValue::from_str(&e.to_string()))?;
    let (tx, manifests, chunks) = stores(&db, IdbTransactionMode::Readwrite)
        .map_err(|e| JsValue::from_str(&e.to_string()))?;
    let done = committed(&tx);
    let stored = js::request_result(&manifests.get(&manifest.key.as_str().into())?).await?;
    let stored = from_js(&stored).map_err(|e| JsValue::from_str(&e.to_string()))?;
    if stored.as_ref() != expected {
        tx.abort()?;
        let _ = done.await;
        return Ok(Written::EntryChanged);
    }
    let value = to_js(manifest).map_err(|e| JsValue::from_str(&e.to_string()))?;
    let puts = (|| {
        if let Some((shard, index, bytes)) = chunk {
            chunks.put_with_key(bytes, &chunk_key(&manifest.key, shard, index))?;
        }
        manifests.put(&value)
    })();
    if let Err(error) = puts {
        // A put can throw synchronously (QuotaExceededError, DataCloneError): end the
        // transaction so none of its writes land, and report the thrown error.
        let _ = tx.abort();
        let _ = done.await;
        return Err(error);
    }
    done.await.map(|_| Written::Stored)
}

pub(super) async fn delete_entry(key: &str) -> Result<(), CacheError> {
    let db = database().await?;
    let (tx, manifests, chunks) = stores(&db, IdbTransactionMode::Readwrite)?;
    let done = committed(&tx);
    manifests
        .delete(&key.into())
        .map_err(CacheError::internal)?;
    chunks
        .delete(&chunk_range(key)?.into())
        .map_err(CacheError::internal)?;
    done.await.map_err(CacheError::internal)
}

/// Every model in the cache, complete or partial.
pub async fn list_cached_models() -> Result<Vec<CachedModelInfo>, CacheError> {
    let db = database().await?;
    let (_tx, manifests, _) = stores(&db, IdbTransactionMode::Readonly)?;
    let request = manifests.get_all().map_err(CacheError::internal)?;
    let all: Array = js::request_result(&request)
        .await
        .map_err(CacheError::internal)?
        .unchecked_into();
    let mut out = Vec::new();
    for value in all.iter() {
        if let Some(m) = from_js(&value)? {
            out.push(CachedModelInfo {
                bytes: m.stored_bytes(),
                total_bytes: m.total_bytes(),
                complete: m.complete,
                key: m.key,
                urls: m.urls,
            });
        }
    }
    Ok(out)
}

/// Deletes one model (by its cache key); returns whether it was cached.
pub async fn delete_cached_model(key: &str) -> Result<bool, CacheError> {
    let existed = read_manifest(key).await?.is_some();
    delete_entry(key).await?;
    Ok(existed)
}

/// Deletes every cached model.
pub async fn clear_model_cache() -> Result<(), CacheError> {
    let db = database().await?;
    let (tx, manifests, chunks) = stores(&db, IdbTransactionMode::Readwrite)?;
    let done = committed(&tx);
    manifests.clear().map_err(CacheError::internal)?;
    chunks.clear().map_err(CacheError::internal)?;
    done.await.map_err(CacheError::internal)
}

/// Free bytes for this origin (quota − usage), or None where the browser does not say.
pub(super) async fn free_storage_bytes() -> Option<u64> {
    let storage = js::storage_manager()?;
    let estimate = js::await_promise(storage.estimate().ok()?).await.ok()?;
    let field = |name: &str| js_sys::Reflect::get(&estimate, &name.into()).ok()?.as_f64();
    let (quota, usage) = (field("quota")?, field("usage")?);
    Some((quota - usage).max(0.0) as u64)
}
