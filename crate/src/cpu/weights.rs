//! The CPU backend's weights: every tensor the Qwen2 tensor list names, read from the file
//! into memory (matrices in their GGUF encoding, vectors as f32), with each size checked
//! against the tensor table and the file before anything is allocated.

use std::collections::HashMap;

use crate::dequant::dequantize;
use crate::engine::error::EngineError;
use crate::engine::qwen2::{required_tensors, TensorKind, TensorSource};
use crate::gguf::{GgmlType, GgufModel, ModelTensor};
use crate::model_config::Qwen2Config;

/// A weight matrix `rows × cols` (ggml shape `[cols, rows]`), still quantized.
pub(crate) struct CpuMatrix {
    pub ty: GgmlType,
    pub cols: usize,
    pub rows: usize,
    pub row_bytes: usize,
    pub data: Vec<u8>,
}

impl CpuMatrix {
    /// Row `r`'s bytes.
    pub fn row(&self, r: usize) -> &[u8] {
        &self.data[r * self.row_bytes..(r + 1) * self.row_bytes]
    }
}

/// Tensors read from the file, taken by name through [`TensorSource`].
#[derive(Default)]
pub(crate) struct CpuWeights {
    matrices: HashMap<String, CpuMatrix>,
    vectors: HashMap<String, Vec<f32>>,
}

fn read_error(tensor: &ModelTensor, message: String) -> EngineError {
    EngineError::Read {
        name: tensor.info.name.clone(),
        message,
    }
}

/// A buffer of `len` zero bytes, or an error when memory cannot hold it.
fn buffer(tensor: &ModelTensor, len: usize) -> Result<Vec<u8>, EngineError> {
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(len)
        .map_err(|_| EngineError::OutOfMemory {
            what: tensor.info.name.clone(),
            bytes: len as u64,
        })?;
    bytes.resize(len, 0);
    Ok(bytes)
}

impl CpuWeights {
    /// Reads every tensor of the checked `model` through `read(shard, offset, buf)` (which
    /// fills `buf` with the shard's bytes from `offset`). `shard_bytes` are the shards' file
    /// sizes: a tensor that would end past its file fails before any allocation.
    pub fn read(
        model: &GgufModel,
        config: &Qwen2Config,
        shard_bytes: &[u64],
        mut read: impl FnMut(usize, u64, &mut [u8]) -> Result<(), String>,
    ) -> Result<CpuWeights, EngineError> {
        let tensors = required_tensors(model, config)?;
        for (tensor, _) in &tensors {
            let file_bytes = shard_bytes.get(tensor.shard).copied().unwrap_or(0);
            let end = tensor.file_offset.checked_add(tensor.info.bytes);
            if end.is_none_or(|end| end > file_bytes) {
                return Err(read_error(
                    tensor,
                    format!(
                        "{} bytes at {} pass the end of shard {} ({file_bytes} bytes)",
                        tensor.info.bytes,
                        tensor.file_offset,
                        tensor.shard + 1
                    ),
                ));
            }
        }
        let mut weights = CpuWeights::default();
        for (tensor, kind) in tensors {
            let info = &tensor.info;
            // Bounded by the file's size, checked above.
            let mut bytes = buffer(tensor, info.bytes as usize)?;
            read(tensor.shard, tensor.file_offset, &mut bytes)
                .map_err(|message| read_error(tensor, message))?;
            match kind {
                TensorKind::Matrix => {
                    let (cols, rows) = (info.shape[0], info.shape[1]);
                    let row_bytes = info.ggml_type.row_bytes(cols).unwrap_or(0);
                    if row_bytes == 0 || rows.checked_mul(row_bytes) != Some(info.bytes) {
                        return Err(read_error(
                            tensor,
                            format!("{} bytes cannot hold {rows} rows of {cols}", info.bytes),
                        ));
                    }
                    let matrix = CpuMatrix {
                        ty: info.ggml_type,
                        cols: cols as usize,
                        rows: rows as usize,
                        row_bytes: row_bytes as usize,
                        data: bytes,
                    };
                    weights.matrices.insert(info.name.clone(), matrix);
                }
                TensorKind::Vector => {
                    let values = dequantize(info.ggml_type, &bytes)
                        .map_err(|e| read_error(tensor, e.to_string()))?;
                    weights.vectors.insert(info.name.clone(), values);
                }
            }
        }
        Ok(weights)
    }
}

impl TensorSource for CpuWeights {
    type Vector = Vec<f32>;
    type Matrix = CpuMatrix;

    // Shapes were checked against the table before the read.
    fn vector(&mut self, name: &str, _len: usize) -> Result<Vec<f32>, EngineError> {
        self.vectors
            .remove(name)
            .ok_or_else(|| EngineError::MissingTensor { name: name.into() })
    }

    fn matrix(&mut self, name: &str, _cols: usize, _rows: usize) -> Result<CpuMatrix, EngineError> {
        self.matrices
            .remove(name)
            .ok_or_else(|| EngineError::MissingTensor { name: name.into() })
    }

    fn has(&self, name: &str) -> bool {
        self.matrices.contains_key(name)
    }
}
