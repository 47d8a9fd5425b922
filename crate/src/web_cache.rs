//! The model cache's wasm-bindgen exports: cache management (list, delete, clear, persist) and
//! reading a model through the cache without an engine. Errors are [`CacheError::to_js`]'s.

use serde::Deserialize;
use wasm_bindgen::prelude::*;

use crate::model_cache::{self, CacheError, CachedModel, OpenOptions, SourceProgress};

fn cache_error(e: &CacheError) -> JsValue {
    e.to_js()
}

fn invalid(what: &str, e: serde_json::Error) -> JsValue {
    CacheError::InvalidRequest(format!("{what}: {e}")).to_js()
}

/// Every model in the cache as JSON `[{"urls", "bytes", "totalBytes", "complete"}]`, with
/// `"cacheKey"` for a model stored under a caller-given key.
#[wasm_bindgen(js_name = listCachedModels)]
pub async fn list_cached_models() -> Result<String, JsValue> {
    let models = model_cache::list_cached_models()
        .await
        .map_err(|e| cache_error(&e))?;
    let listed: Vec<serde_json::Value> = models
        .into_iter()
        .map(|m| {
            let mut entry = serde_json::json!({
                "urls": m.urls, "bytes": m.bytes, "totalBytes": m.total_bytes, "complete": m.complete,
            });
            if m.key != model_cache::default_key(&m.urls) {
                entry["cacheKey"] = m.key.into();
            }
            entry
        })
        .collect();
    Ok(serde_json::Value::from(listed).to_string())
}

/// Which model a management call means: its URLs, or the key it was stored under.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ModelRef {
    #[serde(default)]
    urls: Vec<String>,
    cache_key: Option<String>,
}

/// Deletes one model (JSON `{"urls"}` or `{"cacheKey"}`); resolves to whether it was cached.
#[wasm_bindgen(js_name = deleteCachedModel)]
pub async fn delete_cached_model(model_json: String) -> Result<bool, JsValue> {
    let model: ModelRef = serde_json::from_str(&model_json).map_err(|e| invalid("model", e))?;
    let key = model_cache::cache_key_of(&model.urls, model.cache_key.as_deref())
        .map_err(|e| cache_error(&e))?;
    model_cache::delete_cached_model(&key)
        .await
        .map_err(|e| cache_error(&e))
}

/// Deletes every cached model.
#[wasm_bindgen(js_name = clearModelCache)]
pub async fn clear_model_cache() -> Result<(), JsValue> {
    model_cache::clear_model_cache()
        .await
        .map_err(|e| cache_error(&e))
}

/// Asks the browser not to evict this origin's storage; resolves to whether it is persistent.
#[wasm_bindgen(js_name = requestPersistentStorage)]
pub async fn request_persistent_storage() -> Result<bool, JsValue> {
    model_cache::request_persistent_storage()
        .await
        .map_err(|e| cache_error(&e))
}

/// Reads a model through the cache (options JSON as [`OpenOptions`]) without an engine: from
/// IndexedDB when stored, else downloaded into it (a prefetch). `on_piece(shard, offset, bytes)`
/// gets every byte in order (a copy, at most 8 MiB each); `on_progress(json)` gets
/// `{"phase", "bytesDone", "bytesTotal"}`. Resolves to JSON `{"wasComplete", "urls"}`.
#[wasm_bindgen(js_name = readModel)]
pub async fn read_model(
    options_json: String,
    on_piece: js_sys::Function,
    on_progress: js_sys::Function,
    signal: Option<web_sys::AbortSignal>,
) -> Result<String, JsValue> {
    let options: OpenOptions =
        serde_json::from_str(&options_json).map_err(|e| invalid("model options", e))?;
    let mut model = CachedModel::open(OpenOptions { signal, ..options })
        .await
        .map_err(|e| cache_error(&e))?;
    let was_complete = model.complete();
    let mut report = |progress: SourceProgress| {
        let json = serde_json::to_string(&progress).unwrap_or_default();
        let _ = on_progress.call1(&JsValue::NULL, &JsValue::from_str(&json));
    };
    model
        .read(&mut report, &mut |shard, offset, bytes| {
            on_piece
                .call3(
                    &JsValue::NULL,
                    &JsValue::from(shard as u32),
                    &JsValue::from(offset as f64),
                    &js_sys::Uint8Array::from(bytes),
                )
                .map(|_| ())
                .map_err(|e| CacheError::Internal(crate::model_cache::describe(&e)))
        })
        .await
        .map_err(|e| cache_error(&e))?;
    Ok(serde_json::json!({ "wasComplete": was_complete, "urls": model.urls() }).to_string())
}
