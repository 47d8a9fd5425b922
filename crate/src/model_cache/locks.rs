//! Web Locks (`navigator.locks`) held across awaits: one model's download runs under its lock,
//! so pages of one origin (tabs, workers) never download the same model at once.

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::AbortSignal;

use super::error::CacheError;
use super::js;

/// A granted lock; released when dropped.
pub(super) struct HeldLock {
    release: Function,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        // Resolving the promise the lock callback returned releases the lock; it cannot fail.
        let _ = self.release.call0(&JsValue::NULL);
    }
}

/// Waits for the exclusive lock `name`. None where the browser has no Web Locks (an insecure
/// context): then nothing coordinates pages, as before locks existed. Aborting `signal`
/// withdraws the request.
pub(super) async fn exclusive(
    name: &str,
    signal: Option<&AbortSignal>,
) -> Result<Option<HeldLock>, CacheError> {
    let Some(locks) = js::lock_manager() else {
        return Ok(None);
    };
    let request: Function = Reflect::get(&locks, &"request".into())
        .and_then(|f| f.dyn_into().map_err(JsValue::from))
        .map_err(CacheError::internal)?;
    let mut grant: Option<Function> = None;
    let acquired = Promise::new(&mut |resolve, _| grant = Some(resolve));
    let Some(grant) = grant else {
        return Err(CacheError::Internal(
            "a Promise did not run its executor".into(),
        ));
    };
    // The lock callback hands out the function that ends the promise it returns: the lock is
    // held until then.
    let on_granted = Closure::once_into_js(move |_lock: JsValue| -> Promise {
        Promise::new(&mut |release, _| {
            let _ = grant.call1(&JsValue::NULL, &release);
        })
    });
    let options = Object::new();
    let set = |k: &str, v: &JsValue| Reflect::set(&options, &k.into(), v);
    set("mode", &"exclusive".into()).map_err(CacheError::internal)?;
    if let Some(signal) = signal {
        set("signal", signal).map_err(CacheError::internal)?;
    }
    let requested: Promise = request
        .call3(&locks, &name.into(), &options, &on_granted)
        .map_err(CacheError::internal)?
        .unchecked_into();
    // `requested` settles only after the release, or by rejecting when the request fails
    // (aborted before the grant): whichever comes first tells.
    let first = Promise::race(&js_sys::Array::of2(&acquired, &requested));
    match js::await_promise(first).await {
        Ok(release) => match release.dyn_into::<Function>() {
            Ok(release) => Ok(Some(HeldLock { release })),
            Err(_) => Err(CacheError::Internal(
                "a Web Lock was released before use".into(),
            )),
        },
        Err(_) if signal.is_some_and(|s| s.aborted()) => Err(CacheError::Aborted),
        Err(e) => Err(CacheError::internal(e)),
    }
}
