//! Model weights on the GPU: quantized matrices kept in their GGUF encoding (split by rows into
//! pieces that fit one storage binding), and small f32 vectors (norms, biases).

use crate::dequant::{dequantize, SUPPORTED};
use crate::gguf::{GgmlType, ModelTensor};
use crate::gpu::GpuContext;
use crate::kernels::dequant::gpu_supports;

use super::error::EngineError;

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
    /// Allocates the GPU buffers of a checked matrix, split into pieces of at most
    /// `max_piece_bytes` (the device's storage binding limit, or less to test splitting). Each
    /// piece carries 4 spare bytes because kernels read whole 32-bit words around unaligned
    /// block fields. The bytes arrive later through a [`MatrixWriter`].
    pub fn allocate(
        ctx: &GpuContext,
        tensor: &ModelTensor,
        max_piece_bytes: u64,
    ) -> Result<Matrix, EngineError> {
        let info = &tensor.info;
        let (cols, rows) = (info.shape[0], info.shape[1]);
        let row_bytes = info.ggml_type.row_bytes(cols).unwrap_or(0);
        if row_bytes == 0 || rows * row_bytes != info.bytes {
            return Err(EngineError::Read {
                name: info.name.clone(),
                message: format!("{} bytes cannot hold {rows} rows of {cols}", info.bytes),
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
            let label = format!("{} rows {first}..{}", info.name, first + n);
            let buffer = ctx.storage_buffer(&label, n * row_bytes + 4)?;
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

    /// Allocates and fills a matrix from all of its GGUF bytes at once.
    pub fn upload(
        ctx: &GpuContext,
        tensor: &ModelTensor,
        bytes: &[u8],
        max_piece_bytes: u64,
    ) -> Result<Matrix, EngineError> {
        if bytes.len() as u64 != tensor.info.bytes {
            return Err(EngineError::Read {
                name: tensor.info.name.clone(),
                message: format!("got {} bytes, expected {}", bytes.len(), tensor.info.bytes),
            });
        }
        let matrix = Matrix::allocate(ctx, tensor, max_piece_bytes)?;
        let mut writer = MatrixWriter::new(&matrix);
        writer.write(ctx, &matrix, 0, bytes);
        Ok(matrix)
    }

    /// Bytes of weights one full pass over the matrix reads.
    pub fn bytes(&self) -> u64 {
        u64::from(self.rows) * u64::from(self.row_bytes)
    }
}

/// Writes a matrix's bytes into its pieces as they arrive, in order and in chunks of any size.
/// `queue.write_buffer` needs 4-byte-aligned offsets and sizes while pieces start at row
/// boundaries (a Q6_K row of 4864 values is 3990 bytes), so up to 3 bytes wait for the next
/// chunk, and a piece's last word is zero-padded.
pub struct MatrixWriter {
    /// Where each piece begins in the tensor's bytes, and its length.
    spans: Vec<(u64, u64)>,
    /// The piece the next byte goes to (bytes arrive in order, so it only moves forward).
    piece: usize,
    /// Tensor bytes received so far.
    received: u64,
    carry: [u8; 4],
    carry_len: usize,
}

impl MatrixWriter {
    pub fn new(matrix: &Matrix) -> MatrixWriter {
        let row_bytes = u64::from(matrix.row_bytes);
        MatrixWriter {
            spans: matrix
                .pieces
                .iter()
                .map(|p| {
                    (
                        u64::from(p.first_row) * row_bytes,
                        u64::from(p.rows) * row_bytes,
                    )
                })
                .collect(),
            piece: 0,
            received: 0,
            carry: [0; 4],
            carry_len: 0,
        }
    }

    /// Writes `bytes`, which continue the tensor at byte `at` (the caller passes each byte
    /// once, in order: `at` equals `received()`).
    pub fn write(&mut self, ctx: &GpuContext, matrix: &Matrix, at: u64, bytes: &[u8]) {
        debug_assert_eq!(at, self.received);
        let mut data = bytes;
        while !data.is_empty() {
            let i = self.piece;
            let Some(&(start, len)) = self.spans.get(i) else {
                return;
            };
            let buffer = &matrix.pieces[i].buffer;
            let in_piece = self.received - start;
            let take = (len - in_piece).min(data.len() as u64) as usize;
            self.write_piece(ctx, buffer, in_piece, &data[..take]);
            data = &data[take..];
            self.received += take as u64;
            if self.received == start + len {
                if self.carry_len > 0 {
                    // The piece's tail: pad its last word (the buffer has 4 spare bytes).
                    let word_at = len - self.carry_len as u64;
                    self.carry[self.carry_len..].fill(0);
                    ctx.queue.write_buffer(buffer, word_at, &self.carry);
                    self.carry_len = 0;
                }
                self.piece += 1;
            }
        }
    }

    /// `data` continues the piece at byte `in_piece` (counting carried bytes as written).
    fn write_piece(&mut self, ctx: &GpuContext, buffer: &wgpu::Buffer, in_piece: u64, data: &[u8]) {
        let mut data = data;
        let mut word_at = in_piece - self.carry_len as u64;
        if self.carry_len > 0 {
            let fill = (4 - self.carry_len).min(data.len());
            self.carry[self.carry_len..self.carry_len + fill].copy_from_slice(&data[..fill]);
            self.carry_len += fill;
            data = &data[fill..];
            if self.carry_len < 4 {
                return;
            }
            ctx.queue.write_buffer(buffer, word_at, &self.carry);
            word_at += 4;
            self.carry_len = 0;
        }
        let whole = data.len() & !3;
        if whole > 0 {
            ctx.queue.write_buffer(buffer, word_at, &data[..whole]);
        }
        let rest = &data[whole..];
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carry_len = rest.len();
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

/// Uploaded weights by tensor name, taken out one by one as the engine wires its kernels.
#[derive(Default)]
pub(super) struct Weights {
    pub(super) matrices: std::collections::HashMap<String, Matrix>,
    pub(super) vectors: std::collections::HashMap<String, wgpu::Buffer>,
}

impl Weights {
    pub(super) fn has_matrix(&self, name: &str) -> bool {
        self.matrices.contains_key(name)
    }

    pub(super) fn take_matrix(&mut self, name: &str) -> Result<Matrix, EngineError> {
        self.matrices
            .remove(name)
            .ok_or_else(|| EngineError::MissingTensor { name: name.into() })
    }

    pub(super) fn take_vector(&mut self, name: &str) -> Result<wgpu::Buffer, EngineError> {
        self.vectors
            .remove(name)
            .ok_or_else(|| EngineError::MissingTensor { name: name.into() })
    }
}
