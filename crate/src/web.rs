//! Browser platform edge: the classes and functions JavaScript calls through wasm-bindgen.
//!
//! [`WebEngine::load`] takes a model's URLs and options and does the whole load in Rust
//! ([`crate::model_cache::load_session`]: cache or network → GPU; the cache management exports
//! are in `web_cache.rs`). Requests and results cross as JSON in the OpenAI shapes of
//! [`crate::protocol`]. Every error is a JS `Error` with a `code` property.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;
use wasm_bindgen::prelude::*;

use crate::constraint::ConstraintError;
use crate::engine::EngineError;
use crate::generation::{CancelFlag, Delta, GenerationError, Session};
use crate::logprobs::{openai_logprobs, TokenLogprob};
use crate::model_cache::{load_session, EngineSettings, LoadError, LoadProgress, OpenOptions};
use crate::protocol::{ChatCompletionRequest, CompletionRequest};
use crate::tokenizer::Tokenizer;

/// A JS `Error` whose `code` names the failure for the wrapper's error classes.
fn js_error(code: &str, message: impl std::fmt::Display) -> JsValue {
    let error = js_sys::Error::new(&message.to_string());
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&error, &"code".into(), &code.into());
    error.into()
}

fn engine_error(e: &EngineError) -> JsValue {
    js_error(e.code(), e)
}

fn generation_error(e: &GenerationError) -> JsValue {
    match e {
        GenerationError::Engine(e) => engine_error(e),
        GenerationError::PromptTooLong { .. } => js_error("context-overflow", e),
        GenerationError::Template(_)
        | GenerationError::InvalidParam(_)
        | GenerationError::InvalidRequest(_)
        | GenerationError::Constraint(ConstraintError::Compile(_))
        | GenerationError::EmptyPrompt => js_error("invalid-request", e),
        GenerationError::Constraint(ConstraintError::Runtime(_)) => js_error("internal", e),
        GenerationError::Tokenizer(_) => js_error("internal", e),
    }
}

/// A generation's delta callback that calls JS `on_delta(choice, text, logprobsJson?)`.
fn delta_sender<'a>(
    on_delta: &'a js_sys::Function,
    tokenizer: &'a Tokenizer,
) -> impl FnMut(Delta) + 'a {
    move |delta: Delta| {
        let logprobs = if delta.logprobs.is_empty() {
            JsValue::UNDEFINED
        } else {
            let entries = openai_logprobs(delta.logprobs, tokenizer);
            JsValue::from_str(&serde_json::to_string(&entries).unwrap_or_default())
        };
        // A throwing callback must not stop generation half-way through the cache.
        let _ = on_delta.call3(
            &JsValue::NULL,
            &JsValue::from(delta.choice as u32),
            &JsValue::from_str(delta.text),
            &logprobs,
        );
    }
}

/// A choice's `logprobs`: OpenAI's `{"content": [...]}` when asked for, else null.
fn logprobs_json(asked: bool, tokens: &[TokenLogprob], tokenizer: &Tokenizer) -> serde_json::Value {
    if asked {
        serde_json::json!({ "content": openai_logprobs(tokens, tokenizer) })
    } else {
        serde_json::Value::Null
    }
}

/// Stops a running `chatCompletion` before its next GPU step.
#[wasm_bindgen]
#[derive(Default)]
pub struct CancelToken(CancelFlag);

#[wasm_bindgen]
impl CancelToken {
    #[wasm_bindgen(constructor)]
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    pub fn cancel(&self) {
        self.0.cancel();
    }
}

/// [`WebEngine::load`]'s options, as JSON: the model (`urls`, `cacheKey`, `sha256`, `chunkBytes`,
/// `idleTimeoutMs`) and the engine settings beside it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoadOptions {
    model: OpenOptions,
    #[serde(default)]
    engine: EngineSettings,
}

/// A model in the page: loading, then a chat session over its KV cache.
#[wasm_bindgen]
pub struct WebEngine {
    state: Rc<RefCell<Session>>,
}

#[wasm_bindgen]
impl WebEngine {
    /// Loads a model (from the cache, else the network into the cache) and builds its chat
    /// session. `on_progress(json)` receives `{"phase", "bytesDone", "bytesTotal",
    /// "tensorsDone", "tensorsTotal"}`; `signal` aborts the load.
    pub async fn load(
        options_json: String,
        on_progress: js_sys::Function,
        signal: Option<web_sys::AbortSignal>,
    ) -> Result<WebEngine, JsValue> {
        let options: LoadOptions = serde_json::from_str(&options_json)
            .map_err(|e| js_error("invalid-request", format!("load options: {e}")))?;
        let open = OpenOptions {
            signal,
            ..options.model
        };
        let mut report = |progress: LoadProgress| {
            let json = serde_json::to_string(&progress).unwrap_or_default();
            // A throwing callback must not stop the load half-way.
            let _ = on_progress.call1(&JsValue::NULL, &JsValue::from_str(&json));
        };
        let session = load_session(open, &options.engine, &mut report)
            .await
            .map_err(|e| match e {
                LoadError::Cache(e) => e.to_js(),
                LoadError::Engine(e) => engine_error(&e),
                LoadError::Generation(e) => generation_error(&e),
            })?;
        Ok(WebEngine {
            state: Rc::new(RefCell::new(session)),
        })
    }

    fn busy() -> JsValue {
        js_error(
            "internal",
            "the engine is busy with another request; wait for it to finish",
        )
    }

    /// Runs an OpenAI chat request (JSON: messages, sampling fields, `n`, `logprobs`,
    /// `response_format`, `tools`, `tool_choice`) and resolves to JSON `{"choices": [{"content",
    /// "tool_calls", "finish_reason", "generated_ids", "logprobs"}], "usage"}` (`logprobs`: OpenAI's
    /// `content` list, or null when not asked for); `on_delta(choice, text, logprobs)` receives
    /// each choice's text as it streams, with its tokens' logprobs as JSON (or undefined). Tool
    /// calls are not streamed. The session keeps its KV cache, so the next request reuses the
    /// shared prefix.
    #[wasm_bindgen(js_name = chatCompletion)]
    pub fn chat_completion(
        &self,
        request_json: String,
        on_delta: js_sys::Function,
        cancel: &CancelToken,
    ) -> js_sys::Promise {
        let state = self.state.clone();
        let cancel = cancel.0.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let request: ChatCompletionRequest =
                serde_json::from_str(&request_json).map_err(|e| js_error("invalid-request", e))?;
            let mut state = state.try_borrow_mut().map_err(|_| Self::busy())?;
            let session = &mut *state;
            let tokenizer = session.shared_tokenizer();
            let reply = session
                .chat_completion(&request, &cancel, &mut delta_sender(&on_delta, &tokenizer))
                .await
                .map_err(|e| generation_error(&e))?;
            let with_logprobs = request.logprobs == Some(true);
            let choices: Vec<serde_json::Value> = reply
                .choices
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "content": c.content,
                        "tool_calls": c.tool_calls,
                        "finish_reason": c.finish_reason.as_str(),
                        "generated_ids": c.completion.generated_ids,
                        "logprobs": logprobs_json(with_logprobs, &c.completion.logprobs, &tokenizer),
                    })
                })
                .collect();
            let result = serde_json::json!({ "choices": choices, "usage": reply.usage });
            Ok(JsValue::from_str(&result.to_string()))
        })
    }

    /// Runs a legacy completion request (JSON: `prompt`, `echo`, the sampling fields, `n`,
    /// `logprobs`): the prompt continued as plain text with no chat template. Resolves to JSON
    /// `{"choices": [{"text", "finish_reason", "generated_ids", "logprobs"}], "usage"}`;
    /// `on_delta` as for [`WebEngine::chat_completion`].
    pub fn completion(
        &self,
        request_json: String,
        on_delta: js_sys::Function,
        cancel: &CancelToken,
    ) -> js_sys::Promise {
        let state = self.state.clone();
        let cancel = cancel.0.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let request: CompletionRequest =
                serde_json::from_str(&request_json).map_err(|e| js_error("invalid-request", e))?;
            let mut state = state.try_borrow_mut().map_err(|_| Self::busy())?;
            let session = &mut *state;
            let tokenizer = session.shared_tokenizer();
            let reply = session
                .completion(&request, &cancel, &mut delta_sender(&on_delta, &tokenizer))
                .await
                .map_err(|e| generation_error(&e))?;
            let with_logprobs = request.logprobs == Some(true);
            let choices: Vec<serde_json::Value> = reply
                .choices
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "text": c.text,
                        "finish_reason": c.finish_reason.as_str(),
                        "generated_ids": c.generated_ids,
                        "logprobs": logprobs_json(with_logprobs, &c.logprobs, &tokenizer),
                    })
                })
                .collect();
            let result = serde_json::json!({ "choices": choices, "usage": reply.usage });
            Ok(JsValue::from_str(&result.to_string()))
        })
    }

    /// Forgets the conversation's KV cache.
    #[wasm_bindgen(js_name = resetChat)]
    pub fn reset_chat(&self) -> Result<(), JsValue> {
        self.state
            .try_borrow_mut()
            .map_err(|_| Self::busy())?
            .reset();
        Ok(())
    }

    /// JSON `{"adapter", "f16", "subgroups", "contextLength", "cachedTokens", "wasmMemoryBytes"}`.
    /// wasm memory only grows, so `wasmMemoryBytes` is the peak so far (loading included).
    pub fn stats(&self) -> Result<String, JsValue> {
        let s = self.state.try_borrow().map_err(|_| Self::busy())?;
        let (gpu, context_length, cached) = (
            s.engine()
                .gpu()
                .ok_or_else(|| js_error("internal", "the engine has no GPU"))?,
            s.engine().capacity(),
            s.cached_tokens(),
        );
        Ok(serde_json::json!({
            "adapter": gpu.adapter_description(),
            "f16": gpu.f16,
            "subgroups": gpu.subgroup_min_size.is_some(),
            "subgroupSize": gpu.subgroup_min_size,
            "softwareAdapter": gpu.software,
            "contextLength": context_length,
            "cachedTokens": cached,
            "wasmMemoryBytes": core::arch::wasm32::memory_size(0) as f64 * 65536.0,
        })
        .to_string())
    }
}
