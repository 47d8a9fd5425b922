//! Model weights on the GPU: quantized matrices kept in their GGUF encoding (split by rows into
//! pieces that fit one storage binding), and small f32 vectors (norms, biases).

use crate::dequant::{dequantize, SUPPORTED};
use crate::gguf::{GgmlType, ModelTensor};
use crate::gpu::{gpu_supports, GpuContext};

use super::EngineError;

/// A contiguous range of a matrix's rows in one GPU buffer.
pub struct Piece {
    pub buffer: wgpu::Buffer,
    pub first_row: u32,
    pub rows: u32,
}

/// A weight matrix `rows × cols` (ggml shape `[cols, rows]`), still quantized.
pub struct Matrix {
    pub ty: GgmlType,
    pub cols: u32,
    pub rows: u32,
    pub row_bytes: u32,
    pub pieces: Vec<Piece>,
}

/// Checks a tensor's shape and type before any GPU work.
pub fn check_matrix(tensor: &ModelTensor, cols: usize, rows: usize) -> Result<(), EngineError> {
    let info = &tensor.info;
    if info.shape != [cols as u64, rows as u64] {
        return Err(EngineError::BadShape {
            name: info.name.clone(),
            expected: vec![cols as u64, rows as u64],
            found: info.shape.clone(),
        });
    }
    if !gpu_supports(info.ggml_type) || cols % 32 != 0 {
        return Err(EngineError::UnsupportedType {
            name: info.name.clone(),
            ty: info.ggml_type,
        });
    }
    Ok(())
}

pub fn check_vector(tensor: &ModelTensor, len: usize) -> Result<(), EngineError> {
    let info = &tensor.info;
    if info.shape != [len as u64] {
        return Err(EngineError::BadShape {
            name: info.name.clone(),
            expected: vec![len as u64],
            found: info.shape.clone(),
        });
    }
    if !SUPPORTED.contains(&info.ggml_type) {
        return Err(EngineError::UnsupportedType {
            name: info.name.clone(),
            ty: info.ggml_type,
        });
    }
    Ok(())
}

impl Matrix {
    /// Uploads a checked matrix from its GGUF bytes, split into pieces of at most
    /// `max_piece_bytes` (the device's storage binding limit, or less to test splitting). Each
    /// piece carries 4 spare bytes because kernels read whole 32-bit words around unaligned
    /// block fields.
    pub fn upload(
        ctx: &GpuContext,
        tensor: &ModelTensor,
        bytes: &[u8],
        max_piece_bytes: u64,
    ) -> Result<Matrix, EngineError> {
        let info = &tensor.info;
        let (cols, rows) = (info.shape[0], info.shape[1]);
        let row_bytes = info.ggml_type.row_bytes(cols).unwrap_or(0);
        if bytes.len() as u64 != info.bytes || row_bytes == 0 {
            return Err(EngineError::Read {
                name: info.name.clone(),
                message: format!("got {} bytes, expected {}", bytes.len(), info.bytes),
            });
        }
        let rows_per_piece =
            (max_piece_bytes.min(ctx.max_binding_bytes).saturating_sub(4) / row_bytes).min(rows);
        if rows_per_piece == 0 {
            return Err(EngineError::Gpu(crate::gpu::GpuError::TooLarge {
                what: format!("one row of {}", info.name),
                needed: row_bytes,
                limit: ctx.max_binding_bytes,
            }));
        }
        let mut pieces = Vec::new();
        let mut first = 0u64;
        while first < rows {
            let n = rows_per_piece.min(rows - first);
            let start = (first * row_bytes) as usize;
            let end = ((first + n) * row_bytes) as usize;
            let label = format!("{} rows {first}..{}", info.name, first + n);
            let buffer = ctx.storage_buffer(&label, (end - start) as u64 + 4)?;
            ctx.write_padded(&buffer, 0, &bytes[start..end]);
            pieces.push(Piece {
                buffer,
                first_row: first as u32,
                rows: n as u32,
            });
            first += n;
        }
        Ok(Matrix {
            ty: info.ggml_type,
            cols: cols as u32,
            rows: rows as u32,
            row_bytes: row_bytes as u32,
            pieces,
        })
    }

    /// Bytes of weights one full pass over the matrix reads.
    pub fn bytes(&self) -> u64 {
        u64::from(self.rows) * u64::from(self.row_bytes)
    }
}

/// Uploads a small vector (norm weight or bias) as f32.
pub fn upload_vector(
    ctx: &GpuContext,
    tensor: &ModelTensor,
    bytes: &[u8],
) -> Result<wgpu::Buffer, EngineError> {
    let values = dequantize(tensor.info.ggml_type, bytes).map_err(|e| EngineError::Read {
        name: tensor.info.name.clone(),
        message: e.to_string(),
    })?;
    let buffer = ctx.storage_buffer(&tensor.info.name, values.len() as u64 * 4)?;
    ctx.queue
        .write_buffer(&buffer, 0, bytemuck::cast_slice(&values));
    Ok(buffer)
}
