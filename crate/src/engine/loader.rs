//! Streaming a model onto the GPU: every weight buffer is allocated from the tensor table
//! first, then file bytes, in chunks of any size from a file, a download or a cache, are
//! written where they belong as they arrive. No tensor is ever held whole in memory (only the
//! small f32 vectors are gathered before conversion), so a 4.7 GB model loads through a few MB.

use serde::Serialize;

use crate::gguf::{GgufHeader, GgufModel, ModelTensor};
use crate::gpu::GpuContext;
use crate::model_config::Qwen2Config;

use super::backend::Engine;
use super::error::{EngineError, EngineOptions};
use super::qwen2::{assemble, check_model, plan, required_tensors, TensorKind};
use super::weights::{upload_vector, Matrix, MatrixWriter, Weights};

/// A byte range of one shard that holds tensor data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DataRange {
    pub shard: usize,
    pub start: u64,
    pub end: u64,
}

/// How far a load has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadProgress {
    pub tensors_done: usize,
    pub tensors_total: usize,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// Where one tensor's bytes go.
enum Destination {
    Matrix(Matrix, MatrixWriter),
    /// Norm weights and biases: gathered, then converted to f32 and uploaded.
    Vector {
        bytes: Vec<u8>,
        buffer: Option<wgpu::Buffer>,
    },
}

struct Slot {
    tensor: ModelTensor,
    received: u64,
    destination: Destination,
}

impl Slot {
    fn end(&self) -> u64 {
        self.tensor.file_offset + self.tensor.info.bytes
    }

    fn complete(&self) -> bool {
        self.received == self.tensor.info.bytes
    }
}

/// A model whose GPU buffers exist and are being filled.
pub struct WeightLoader {
    ctx: GpuContext,
    config: Qwen2Config,
    options: EngineOptions,
    /// Sorted by (shard, file offset); tensors never overlap.
    slots: Vec<Slot>,
    progress: LoadProgress,
    /// Bytes written to the GPU since the last [`GpuContext::flush_writes`].
    unflushed: u64,
}

/// How many written bytes may wait in staging memory before they are flushed to the GPU.
const FLUSH_BYTES: u64 = 256 << 20;

impl WeightLoader {
    /// Checks `model` and allocates every weight buffer on `ctx`'s device.
    pub fn new(
        ctx: GpuContext,
        model: &GgufModel,
        options: &EngineOptions,
    ) -> Result<WeightLoader, EngineError> {
        Self::with_piece_limit(ctx, model, options, u64::MAX)
    }

    /// As [`WeightLoader::new`], splitting matrices into pieces of at most `max_piece_bytes`
    /// (for tests of the splitting; the device's binding limit applies anyway).
    pub fn with_piece_limit(
        ctx: GpuContext,
        model: &GgufModel,
        options: &EngineOptions,
        max_piece_bytes: u64,
    ) -> Result<WeightLoader, EngineError> {
        let config = check_model(model)?;
        let mut slots = Vec::new();
        for (tensor, kind) in required_tensors(model, &config)? {
            let destination = match kind {
                TensorKind::Matrix => {
                    let matrix = Matrix::allocate(&ctx, tensor, max_piece_bytes)?;
                    let writer = MatrixWriter::new(&matrix);
                    Destination::Matrix(matrix, writer)
                }
                // check_model bounded the vector's length by the model's width.
                TensorKind::Vector => Destination::Vector {
                    bytes: Vec::with_capacity(tensor.info.bytes as usize),
                    buffer: None,
                },
            };
            slots.push(Slot {
                tensor: tensor.clone(),
                received: 0,
                destination,
            });
        }
        slots.sort_by_key(|s| (s.tensor.shard, s.tensor.file_offset));
        let progress = LoadProgress {
            tensors_done: 0,
            tensors_total: slots.len(),
            bytes_done: 0,
            bytes_total: slots.iter().map(|s| s.tensor.info.bytes).sum(),
        };
        Ok(WeightLoader {
            ctx,
            config,
            options: options.clone(),
            slots,
            progress,
            unflushed: 0,
        })
    }

    pub fn config(&self) -> &Qwen2Config {
        &self.config
    }

    pub fn gpu(&self) -> &GpuContext {
        &self.ctx
    }

    pub fn progress(&self) -> LoadProgress {
        self.progress
    }

    /// The byte ranges of each shard that hold the tensors, ascending, with the alignment
    /// gaps between neighbouring tensors merged in.
    pub fn data_ranges(&self) -> Vec<DataRange> {
        const MERGE_GAP: u64 = 4096;
        let mut ranges: Vec<DataRange> = Vec::new();
        for s in &self.slots {
            let (shard, start, end) = (s.tensor.shard, s.tensor.file_offset, s.end());
            match ranges.last_mut() {
                Some(r) if r.shard == shard && start <= r.end + MERGE_GAP => r.end = r.end.max(end),
                _ => ranges.push(DataRange { shard, start, end }),
            }
        }
        ranges
    }

    /// Takes bytes `offset..offset + bytes.len()` of shard `shard`. Bytes outside any tensor
    /// are ignored; within a tensor they must continue where the last push stopped (bytes
    /// already received are skipped, so a resumed stream may overlap).
    pub fn push(&mut self, shard: usize, offset: u64, bytes: &[u8]) -> Result<(), EngineError> {
        let end = offset + bytes.len() as u64;
        let first = self
            .slots
            .partition_point(|s| (s.tensor.shard, s.end()) <= (shard, offset));
        for slot in &mut self.slots[first..] {
            if slot.tensor.shard != shard || slot.tensor.file_offset >= end {
                break;
            }
            let next = slot.tensor.file_offset + slot.received;
            if slot.complete() || end <= next {
                continue;
            }
            if offset > next {
                return Err(EngineError::Read {
                    name: slot.tensor.info.name.clone(),
                    message: format!(
                        "bytes from {offset} arrived before bytes {next}..{offset} of shard {shard}"
                    ),
                });
            }
            let take_end = end.min(slot.end());
            let data = &bytes[(next - offset) as usize..(take_end - offset) as usize];
            let at = slot.received;
            match &mut slot.destination {
                Destination::Matrix(matrix, writer) => writer.write(&self.ctx, matrix, at, data),
                Destination::Vector { bytes, .. } => bytes.extend_from_slice(data),
            }
            slot.received += data.len() as u64;
            self.progress.bytes_done += data.len() as u64;
            self.unflushed += data.len() as u64;
            if slot.complete() {
                if let Destination::Vector { bytes, buffer } = &mut slot.destination {
                    *buffer = Some(upload_vector(&self.ctx, &slot.tensor, bytes)?);
                    *bytes = Vec::new();
                }
                self.progress.tensors_done += 1;
            }
        }
        if self.unflushed >= FLUSH_BYTES {
            self.ctx.flush_writes()?;
            self.unflushed = 0;
        }
        Ok(())
    }

    /// Builds the engine once every tensor has arrived.
    pub fn finish(self) -> Result<Engine, EngineError> {
        if let Some(s) = self.slots.iter().find(|s| !s.complete()) {
            return Err(EngineError::Read {
                name: s.tensor.info.name.clone(),
                message: format!(
                    "only {} of its {} bytes arrived",
                    s.received, s.tensor.info.bytes
                ),
            });
        }
        let mut weights = Weights::default();
        for slot in self.slots {
            let name = slot.tensor.info.name;
            match slot.destination {
                Destination::Matrix(matrix, _) => {
                    weights.matrices.insert(name, matrix);
                }
                Destination::Vector { buffer, .. } => {
                    if let Some(buffer) = buffer {
                        weights.vectors.insert(name, buffer);
                    }
                }
            }
        }
        assemble(self.ctx, self.config, &self.options, weights).map(Engine::Gpu)
    }
}

/// A model checked from its shard headers, before any GPU work: the first step of the one
/// loading path ([`ModelLoad`]).
pub struct CheckedModel {
    model: GgufModel,
}

impl CheckedModel {
    /// Joins the shard headers (in shard order) into one model and checks that it can run
    /// here: architecture, tensors, shapes, types.
    pub fn new(headers: Vec<GgufHeader>) -> Result<CheckedModel, EngineError> {
        let model = GgufModel::from_shards(headers)?;
        check_model(&model)?;
        Ok(CheckedModel { model })
    }

    pub fn model(&self) -> &GgufModel {
        &self.model
    }

    /// Allocates every weight buffer on `ctx`'s device; the bytes follow.
    /// Fails before any allocation when the context cannot fit the device.
    pub fn start(self, ctx: GpuContext, options: &EngineOptions) -> Result<ModelLoad, EngineError> {
        plan(&ctx, &check_model(&self.model)?, options)?;
        let weights = WeightLoader::new(ctx, &self.model, options)?;
        Ok(ModelLoad {
            model: self.model,
            weights,
        })
    }
}

/// The one loading path from shard headers and file bytes to a model and its engine: the CLI
/// and the tests read every byte through [`ModelLoad::read_all`]; the browser, whose bytes
/// arrive when the network or IndexedDB delivers them, [`ModelLoad::push`]es them.
pub struct ModelLoad {
    model: GgufModel,
    weights: WeightLoader,
}

impl ModelLoad {
    pub fn model(&self) -> &GgufModel {
        &self.model
    }

    pub fn gpu(&self) -> &GpuContext {
        self.weights.gpu()
    }

    pub fn progress(&self) -> LoadProgress {
        self.weights.progress()
    }

    /// See [`WeightLoader::data_ranges`].
    pub fn data_ranges(&self) -> Vec<DataRange> {
        self.weights.data_ranges()
    }

    /// See [`WeightLoader::push`].
    pub fn push(&mut self, shard: usize, offset: u64, bytes: &[u8]) -> Result<(), EngineError> {
        self.weights.push(shard, offset, bytes)
    }

    /// The model and its engine, once every tensor byte has arrived.
    pub fn finish(self) -> Result<(GgufModel, Engine), EngineError> {
        let engine = self.weights.finish()?;
        Ok((self.model, engine))
    }

    /// Reads every data range through `read(shard, offset, buf)` (which fills `buf` with the
    /// shard's bytes from `offset`) in chunks of at most 8 MiB, and finishes.
    pub fn read_all(
        mut self,
        mut read: impl FnMut(usize, u64, &mut [u8]) -> Result<(), String>,
    ) -> Result<(GgufModel, Engine), EngineError> {
        const CHUNK: u64 = 8 << 20;
        let mut buf = Vec::new();
        for range in self.data_ranges() {
            let mut at = range.start;
            while at < range.end {
                let n = CHUNK.min(range.end - at) as usize;
                buf.resize(n, 0);
                read(range.shard, at, &mut buf).map_err(|message| EngineError::Read {
                    name: format!("shard {} at byte {at}", range.shard + 1),
                    message,
                })?;
                self.push(range.shard, at, &buf)?;
                at += n as u64;
            }
        }
        self.finish()
    }
}
