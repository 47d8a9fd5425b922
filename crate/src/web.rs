//! Browser platform edge: the classes and functions JavaScript calls through wasm-bindgen.
//!
//! JavaScript owns fetching and caching (`www/src/model-cache.ts`); Rust owns everything from
//! header bytes on: [`ModelHeaders`] parses each shard header once as its bytes arrive,
//! [`WebEngine::create`] checks the model and allocates the GPU buffers (the crate's one loading
//! path, [`crate::engine::ModelLoad`]), [`WebEngine::push_bytes`] streams file bytes straight
//! into them, and [`WebEngine::finish_load`] builds the session. Requests and results cross as JSON in the
//! OpenAI shapes of [`crate::protocol`]. Every error is a JS `Error` with a `code` property.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;
use sha2::Digest;
use wasm_bindgen::prelude::*;

use crate::constraint::ConstraintError;
use crate::engine::{CheckedModel, EngineError, EngineOptions, KvCacheType, ModelLoad};
use crate::generation::{CancelFlag, Delta, GenerationError, Session};
use crate::gguf::{parse_header, GgufHeader, HeaderParse, Limits};
use crate::gpu::{GpuContext, GpuOptions};
use crate::logprobs::{openai_logprobs, TokenLogprob};
use crate::protocol::{ChatCompletionRequest, CompletionRequest};
use crate::rope::RopeScalingOverride;
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

/// The shard headers of a model, parsed once each as their bytes arrive. JavaScript offers a
/// prefix of each shard, growing it while more is needed, then hands the whole set to
/// [`WebEngine::create`], which takes the parsed headers as they are.
#[wasm_bindgen]
pub struct ModelHeaders {
    shards: Vec<Option<GgufHeader>>,
}

#[wasm_bindgen]
impl ModelHeaders {
    #[wasm_bindgen(constructor)]
    pub fn new(shard_count: usize) -> ModelHeaders {
        ModelHeaders {
            shards: (0..shard_count).map(|_| None).collect(),
        }
    }

    /// Parses `prefix`, the first bytes of shard `shard` (of `file_len` bytes). Returns 0 once
    /// the header is complete (it is kept; the prefix can be dropped), else the number of bytes
    /// the header needs at least.
    pub fn offer(&mut self, shard: usize, prefix: &[u8], file_len: f64) -> Result<f64, JsValue> {
        let slot = self
            .shards
            .get_mut(shard)
            .ok_or_else(|| js_error("invalid-request", format!("there is no shard {shard}")))?;
        match parse_header(prefix, Some(file_len as u64), &Limits::default())
            .map_err(|e| js_error("bad-model", format!("shard {shard}: {e}")))?
        {
            HeaderParse::NeedBytes(n) => Ok(n as f64),
            HeaderParse::Complete(header) => {
                *slot = Some(*header);
                Ok(0.0)
            }
        }
    }
}

/// Incremental SHA-256, for checking downloads against the caller's digest.
#[wasm_bindgen]
#[derive(Default)]
pub struct Sha256(sha2::Sha256);

#[wasm_bindgen]
impl Sha256 {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Sha256 {
        Sha256::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest as lowercase hex; the hasher starts over afterwards.
    #[wasm_bindgen(js_name = finishHex)]
    pub fn finish_hex(&mut self) -> String {
        self.0
            .finalize_reset()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
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

/// Options of [`WebEngine::create`], as JSON.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct CreateOptions {
    context_length: Option<usize>,
    disable_f16: bool,
    disable_subgroups: bool,
    /// `{type, factor, originalContextLength}`, over the file's RoPE scaling.
    rope_scaling: Option<RopeScalingOverride>,
    /// `'f16' | 'f32' | 'q8_0'`.
    kv_cache: Option<KvCacheType>,
    /// Most tokens per prefill submission.
    prefill_chunk: Option<usize>,
}

enum State {
    Loading {
        load: Box<ModelLoad>,
    },
    Ready(Box<Session>),
    /// A load step failed or the engine was freed: nothing can be used.
    Gone,
}

/// A model in the page: loading, then a chat session over its KV cache.
#[wasm_bindgen]
pub struct WebEngine {
    state: Rc<RefCell<State>>,
}

#[wasm_bindgen]
impl WebEngine {
    /// Checks the model whose shard headers `headers` holds, opens WebGPU and allocates every
    /// GPU buffer.
    pub async fn create(headers: ModelHeaders, options_json: String) -> Result<WebEngine, JsValue> {
        let options: CreateOptions = serde_json::from_str(&options_json)
            .map_err(|e| js_error("invalid-request", format!("engine options: {e}")))?;
        let parsed = headers
            .shards
            .into_iter()
            .enumerate()
            .map(|(i, header)| {
                header.ok_or_else(|| {
                    js_error(
                        "invalid-request",
                        format!("shard {i}'s header was not offered"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Everything that can be checked without a GPU is, before WebGPU is touched.
        let checked = CheckedModel::new(parsed).map_err(|e| engine_error(&e))?;
        let ctx = GpuContext::new(&GpuOptions {
            disable_subgroups: options.disable_subgroups,
            disable_f16: options.disable_f16,
            ..GpuOptions::default()
        })
        .await
        .map_err(|e| engine_error(&e.into()))?;
        let engine_options = EngineOptions {
            context_length: options
                .context_length
                .unwrap_or(EngineOptions::default().context_length),
            rope_scaling: options.rope_scaling,
            kv_cache: options.kv_cache,
            prefill_chunk: options
                .prefill_chunk
                .unwrap_or(EngineOptions::default().prefill_chunk),
            ..EngineOptions::default()
        };
        let load = checked
            .start(ctx, &engine_options)
            .map_err(|e| engine_error(&e))?;
        Ok(WebEngine {
            state: Rc::new(RefCell::new(State::Loading {
                load: Box::new(load),
            })),
        })
    }

    fn busy() -> JsValue {
        js_error(
            "internal",
            "the engine is busy with another request; wait for it to finish",
        )
    }

    /// JSON `[{"shard", "start", "end"}]`: the bytes of each shard that hold tensor data.
    #[wasm_bindgen(js_name = dataRanges)]
    pub fn data_ranges(&self) -> Result<String, JsValue> {
        match &*self.state.try_borrow().map_err(|_| Self::busy())? {
            State::Loading { load } => {
                Ok(serde_json::to_string(&load.data_ranges()).unwrap_or_default())
            }
            _ => Err(js_error("internal", "the model is not loading")),
        }
    }

    /// Takes bytes `offset..offset + bytes.length` of a shard (ascending per shard) and writes
    /// the tensor data among them to the GPU. Returns the progress as JSON
    /// `{"tensorsDone", "tensorsTotal", "bytesDone", "bytesTotal"}`.
    #[wasm_bindgen(js_name = pushBytes)]
    pub fn push_bytes(&self, shard: usize, offset: f64, bytes: &[u8]) -> Result<String, JsValue> {
        let mut state = self.state.try_borrow_mut().map_err(|_| Self::busy())?;
        let State::Loading { load } = &mut *state else {
            return Err(js_error("internal", "the model is not loading"));
        };
        if let Err(e) = load.push(shard, offset as u64, bytes) {
            *state = State::Gone;
            return Err(engine_error(&e));
        }
        Ok(serde_json::to_string(&load.progress()).unwrap_or_default())
    }

    /// Builds the kernels, tokenizer and chat template once every byte has been pushed.
    #[wasm_bindgen(js_name = finishLoad)]
    pub async fn finish_load(&self) -> Result<(), JsValue> {
        let mut state = self.state.try_borrow_mut().map_err(|_| Self::busy())?;
        match std::mem::replace(&mut *state, State::Gone) {
            State::Loading { load } => {
                let (model, engine) = load.finish().map_err(|e| engine_error(&e))?;
                let session = Session::new(engine, &model).map_err(|e| generation_error(&e))?;
                *state = State::Ready(Box::new(session));
                Ok(())
            }
            other => {
                *state = other;
                Err(js_error("internal", "the model is not loading"))
            }
        }
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
            let State::Ready(session) = &mut *state else {
                return Err(js_error("internal", "the model has not finished loading"));
            };
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
            let State::Ready(session) = &mut *state else {
                return Err(js_error("internal", "the model has not finished loading"));
            };
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
        match &mut *self.state.try_borrow_mut().map_err(|_| Self::busy())? {
            State::Ready(session) => {
                session.reset();
                Ok(())
            }
            _ => Err(js_error("internal", "the model has not finished loading")),
        }
    }

    /// JSON `{"adapter", "f16", "subgroups", "contextLength", "cachedTokens", "wasmMemoryBytes"}`.
    /// wasm memory only grows, so `wasmMemoryBytes` is the peak so far (loading included).
    pub fn stats(&self) -> Result<String, JsValue> {
        let state = self.state.try_borrow().map_err(|_| Self::busy())?;
        let (gpu, context_length, cached) = match &*state {
            State::Ready(s) => (
                s.engine()
                    .gpu()
                    .ok_or_else(|| js_error("internal", "the engine has no GPU"))?,
                s.engine().capacity(),
                s.cached_tokens(),
            ),
            State::Loading { load } => (load.gpu(), 0, 0),
            State::Gone => return Err(js_error("internal", "the engine is gone")),
        };
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
