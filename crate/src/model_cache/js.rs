//! The browser APIs the model cache awaits, as futures: promises, IndexedDB requests and
//! transactions, timers (sleep, a deadline on a read) and the global scope's `navigator`
//! objects, the same in a page and in a worker.

use js_sys::{Array, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, IdbRequest, IdbTransaction, StorageManager};

use super::error::CacheError;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &JsValue, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
    /// The global `fetch`, of a window or a worker alike.
    #[wasm_bindgen(js_name = fetch)]
    pub(super) fn fetch_request(request: &web_sys::Request) -> Promise;
}

pub(super) async fn await_promise(promise: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(promise).await
}

/// `globalThis[name]`, when it is an object.
fn global_property(name: &str) -> Option<JsValue> {
    Reflect::get(&js_sys::global(), &name.into())
        .ok()
        .filter(|v| v.is_object())
}

/// `navigator.storage`, where the browser has it.
pub(super) fn storage_manager() -> Option<StorageManager> {
    let navigator = global_property("navigator")?;
    let storage = Reflect::get(&navigator, &"storage".into()).ok()?;
    storage.dyn_into::<StorageManager>().ok()
}

/// `navigator.locks`, where the browser has it (secure contexts).
pub(super) fn lock_manager() -> Option<JsValue> {
    let navigator = global_property("navigator")?;
    Reflect::get(&navigator, &"locks".into())
        .ok()
        .filter(|v| v.is_object())
}

pub(super) fn idb_factory() -> Result<web_sys::IdbFactory, CacheError> {
    global_property("indexedDB")
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| CacheError::Internal("IndexedDB is not available in this context".into()))
}

/// Whether `error` is a DOMException named `name`.
pub(super) fn is_dom_exception(error: &JsValue, name: &str) -> bool {
    error
        .dyn_ref::<web_sys::DomException>()
        .is_some_and(|e| e.name() == name)
}

/// An IndexedDB request's result. Awaited from the request's own event, so the transaction is
/// still active for the next request issued right after (promise jobs run before it ends).
pub(super) async fn request_result(request: &IdbRequest) -> Result<JsValue, JsValue> {
    let done = Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    });
    let outcome = await_promise(done).await;
    request.set_onsuccess(None);
    request.set_onerror(None);
    match outcome {
        Ok(_) => request.result(),
        Err(_) => Err(request
            .error()
            .ok()
            .flatten()
            .map_or_else(|| "IndexedDB request failed".into(), JsValue::from)),
    }
}

/// Resolves when `tx` commits; fails with its error when it aborts.
pub(super) fn transaction_done(tx: &IdbTransaction) -> JsFuture {
    let done = Promise::new(&mut |resolve, reject| {
        tx.set_oncomplete(Some(&resolve));
        tx.set_onabort(Some(&reject));
        tx.set_onerror(Some(&reject));
    });
    JsFuture::from(done)
}

/// The error an aborted transaction carries.
pub(super) fn transaction_error(tx: &IdbTransaction) -> JsValue {
    tx.error()
        .map_or_else(|| "IndexedDB transaction aborted".into(), JsValue::from)
}

/// A promise that rejects when `signal` aborts (never, without a signal).
fn abort_promise(signal: Option<&AbortSignal>) -> Promise {
    Promise::new(&mut |_, reject| {
        if let Some(signal) = signal {
            if signal.aborted() {
                let _ = reject.call0(&JsValue::NULL);
            } else {
                // Registering a listener on a live signal cannot fail.
                let _ = signal.add_event_listener_with_callback("abort", &reject);
            }
        }
    })
}

/// Waits `ms` milliseconds; fails with [`CacheError::Aborted`] as soon as `signal` aborts.
pub(super) async fn sleep(ms: f64, signal: Option<&AbortSignal>) -> Result<(), CacheError> {
    let mut timer = JsValue::UNDEFINED;
    let elapsed = Promise::new(&mut |resolve, _| timer = set_timeout(resolve.as_ref(), ms));
    let race = Promise::race(&Array::of2(&elapsed, &abort_promise(signal)));
    let outcome = await_promise(race).await;
    clear_timeout(&timer);
    outcome.map(|_| ()).map_err(|_| CacheError::Aborted)
}

/// `promise`'s outcome, or None when it takes longer than `ms` milliseconds.
pub(super) async fn within(promise: Promise, ms: f64) -> Option<Result<JsValue, JsValue>> {
    let expired = JsValue::from_str("qwen-webgpu: deadline");
    let mut timer = JsValue::UNDEFINED;
    let deadline = Promise::new(&mut |resolve, _| {
        let resolve_expired = resolve.bind1(&JsValue::NULL, &expired);
        timer = set_timeout(resolve_expired.as_ref(), ms);
    });
    let outcome = await_promise(Promise::race(&Array::of2(&promise, &deadline))).await;
    clear_timeout(&timer);
    match outcome {
        Ok(value) if value == expired => None,
        other => Some(other),
    }
}
