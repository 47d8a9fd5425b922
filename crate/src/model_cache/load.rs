//! From a model's URLs to a chat session in the browser ([`load_session`]): each shard's
//! header read once (a probe grown geometrically, up to the parser's cap), the model checked
//! and its GPU buffers allocated (so a context that cannot fit fails before the download), then
//! every byte streamed from the cache or the network into the GPU.

use std::cell::{Cell, RefCell};

use serde::{Deserialize, Serialize};

use super::error::CacheError;
use super::model::{CachedModel, OpenOptions, SourcePhase, SourceProgress};
use crate::engine::{CheckedModel, EngineError, EngineOptions, KvCacheType};
use crate::generation::{GenerationError, Session};
use crate::gguf::{parse_header, GgufHeader, HeaderParse, Limits};
use crate::gpu::{GpuContext, GpuOptions};
use crate::rope::RopeScalingOverride;

/// First guess at a header's size: Qwen2 vocabularies put it at ~6 MB.
pub const HEADER_PROBE_BYTES: u64 = 8 * 1024 * 1024;

/// Engine settings of a load, as the npm package names them.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct EngineSettings {
    pub context_length: Option<usize>,
    pub disable_f16: bool,
    pub disable_subgroups: bool,
    /// `{type, factor, originalContextLength}`, over the file's RoPE scaling.
    pub rope_scaling: Option<RopeScalingOverride>,
    /// `'f16' | 'f32' | 'q8_0'`.
    pub kv_cache: Option<KvCacheType>,
    /// Most tokens per prefill submission.
    pub prefill_chunk: Option<usize>,
}

/// Where a load is: model bytes arriving (`download`, `cache-read`) or reaching the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadProgress {
    pub phase: LoadPhase,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub tensors_done: usize,
    pub tensors_total: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadPhase {
    Download,
    CacheRead,
    Upload,
}

/// Why a load failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Generation(#[from] GenerationError),
}

/// Reads shard `shard`'s whole GGUF header: an 8 MiB probe, then only the missing bytes, the
/// prefix at least doubling each time (a header of many short strings asks for a few bytes
/// more at each step), up to the parser's header cap.
pub async fn read_header(model: &mut CachedModel, shard: usize) -> Result<GgufHeader, CacheError> {
    let limits = Limits::default();
    let url = model.urls()[shard].clone();
    let (mut bytes, file_size) = model.read_range(shard, 0, HEADER_PROBE_BYTES).await?;
    loop {
        let parsed = parse_header(&bytes, Some(file_size), &limits)
            .map_err(|e| CacheError::BadModel(format!("{url}: {e}")))?;
        let need = match parsed {
            HeaderParse::Complete(header) => return Ok(*header),
            HeaderParse::NeedBytes(n) => n,
        };
        let have = bytes.len() as u64;
        if need > file_size || need <= have {
            return Err(CacheError::BadModel(format!(
                "{url}: the GGUF header needs {need} bytes but the file has {file_size}"
            )));
        }
        if need > limits.max_header_bytes {
            return Err(CacheError::BadModel(format!(
                "{url}: the GGUF header needs {need} bytes, more than the {} this engine reads",
                limits.max_header_bytes
            )));
        }
        let target = need
            .max(have.saturating_mul(2).min(limits.max_header_bytes))
            .min(file_size);
        let (more, _) = model.read_range(shard, have, target - have).await?;
        if more.is_empty() {
            return Err(CacheError::BadModel(format!(
                "{url}: the file ended inside its GGUF header"
            )));
        }
        bytes.extend_from_slice(&more);
    }
}

/// Loads a model into a chat session: headers, checks and GPU buffers first, then every byte
/// from the cache or the network into the GPU. `on_progress` sees where the bytes come from,
/// then how far the upload is.
pub async fn load_session(
    open: OpenOptions,
    settings: &EngineSettings,
    on_progress: &mut dyn FnMut(LoadProgress),
) -> Result<Session, LoadError> {
    let mut model = CachedModel::open(open).await?;
    let mut headers = Vec::with_capacity(model.urls().len());
    for shard in 0..model.urls().len() {
        headers.push(read_header(&mut model, shard).await?);
    }
    // Everything that can be checked without a GPU is, before WebGPU is touched.
    let checked = CheckedModel::new(headers)?;
    let ctx = GpuContext::new(&GpuOptions {
        disable_subgroups: settings.disable_subgroups,
        disable_f16: settings.disable_f16,
        ..GpuOptions::default()
    })
    .await
    .map_err(EngineError::from)?;
    let defaults = EngineOptions::default();
    let engine_options = EngineOptions {
        context_length: settings.context_length.unwrap_or(defaults.context_length),
        rope_scaling: settings.rope_scaling.clone(),
        kv_cache: settings.kv_cache,
        prefill_chunk: settings.prefill_chunk.unwrap_or(defaults.prefill_chunk),
        ..defaults
    };
    // Fails before any buffer (and so before the download) when the context cannot fit.
    let mut load = checked.start(ctx, &engine_options)?;
    // The source's callback and the sink both report, through one borrowed callback.
    let on_progress = RefCell::new(on_progress);
    let upload = Cell::new(load.progress());
    let mut report_source = |source: SourceProgress| {
        let upload = upload.get();
        (on_progress.borrow_mut())(LoadProgress {
            phase: match source.phase {
                SourcePhase::Download => LoadPhase::Download,
                SourcePhase::CacheRead => LoadPhase::CacheRead,
            },
            bytes_done: source.bytes_done,
            bytes_total: source.bytes_total,
            tensors_done: upload.tensors_done,
            tensors_total: upload.tensors_total,
        })
    };
    model
        .read(&mut report_source, &mut |shard, offset, bytes| {
            load.push(shard, offset, bytes)?;
            let done = load.progress();
            if done != upload.replace(done) {
                (on_progress.borrow_mut())(LoadProgress {
                    phase: LoadPhase::Upload,
                    bytes_done: done.bytes_done,
                    bytes_total: done.bytes_total,
                    tensors_done: done.tensors_done,
                    tensors_total: done.tensors_total,
                });
            }
            Ok::<(), LoadError>(())
        })
        .await?;
    let (gguf, engine) = load.finish()?;
    Ok(Session::new(engine, &gguf)?)
}
