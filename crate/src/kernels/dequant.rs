//! The weight types the GPU kernels read: one WGSL snippet per type defining
//! `dequant4(row_byte_offset, chunk, quad)` and `chunk_dot(row_byte_offset, chunk, x_chunk)`,
//! which read the host kernel's `W` (packed weights); `chunk_dot` takes the mat-vec's
//! `XChunk` (32 activations and their sum).

use crate::gguf::GgmlType;
use crate::gpu::Snippet;

use super::common::BYTES;

/// Unpacks the 6-bit scales and mins of Q4_K and Q5_K blocks.
static K_SCALES: Snippet = Snippet {
    name: "k_scales",
    source: include_str!("../../../shaders/dequant/k_scales.wgsl"),
    needs: &[&BYTES],
    reads_globals: &["W"],
};

/// The activations `chunk_dot` takes.
static X_CHUNK: Snippet = Snippet {
    name: "x_chunk",
    source: include_str!("../../../shaders/dequant/x_chunk.wgsl"),
    needs: &[],
    reads_globals: &[],
};

macro_rules! dequant_snippet {
    ($name:ident, $file:literal, [$($need:expr),*]) => {
        static $name: Snippet = Snippet {
            name: $file,
            source: include_str!(concat!("../../../shaders/dequant/", $file, ".wgsl")),
            needs: &[$($need),*],
            reads_globals: &["W"],
        };
    };
}

dequant_snippet!(F32, "f32", [&BYTES, &X_CHUNK]);
dequant_snippet!(F16, "f16", [&BYTES, &X_CHUNK]);
dequant_snippet!(Q4_0, "q4_0", [&BYTES, &X_CHUNK]);
dequant_snippet!(Q4_1, "q4_1", [&BYTES, &X_CHUNK]);
dequant_snippet!(Q5_0, "q5_0", [&BYTES, &X_CHUNK]);
dequant_snippet!(Q5_1, "q5_1", [&BYTES, &X_CHUNK]);
dequant_snippet!(Q8_0, "q8_0", [&BYTES, &X_CHUNK]);
dequant_snippet!(Q4_K, "q4_k", [&BYTES, &X_CHUNK, &K_SCALES]);
dequant_snippet!(Q5_K, "q5_k", [&BYTES, &X_CHUNK, &K_SCALES]);
dequant_snippet!(Q6_K, "q6_k", [&BYTES, &X_CHUNK]);

/// The snippet that reads weights of `ty`, or `None` for a type the kernels cannot read.
pub fn snippet(ty: GgmlType) -> Option<&'static Snippet> {
    Some(match ty {
        GgmlType::F32 => &F32,
        GgmlType::F16 => &F16,
        GgmlType::Q4_0 => &Q4_0,
        GgmlType::Q4_1 => &Q4_1,
        GgmlType::Q5_0 => &Q5_0,
        GgmlType::Q5_1 => &Q5_1,
        GgmlType::Q8_0 => &Q8_0,
        GgmlType::Q4K => &Q4_K,
        GgmlType::Q5K => &Q5_K,
        GgmlType::Q6K => &Q6_K,
        _ => return None,
    })
}

/// Whether weights of `ty` can be used by the GPU kernels.
pub fn gpu_supports(ty: GgmlType) -> bool {
    snippet(ty).is_some()
}

/// Every type the kernels read.
pub const SUPPORTED: [GgmlType; 10] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
];
