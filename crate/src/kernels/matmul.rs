//! Mat-mul of quantized weights with f32 activations: `Y (+)= W X` (+ bias, or times
//! `silu(AUX)` for the FFN's up projection), for one weight piece (a matrix past the binding
//! limit is split by rows). Decode reads one token; prefill reads tiles of [`PREFILL_TILE`].

use crate::gguf::GgmlType;
use crate::gpu::{Extent, Grid, Kernel, Module};
use crate::{kernel_bindings, wgsl_uniform};

use super::common::{StepUniform, REDUCE_SHARED, REDUCE_SUBGROUP};
use super::dequant;

/// Tokens per mat-mul tile in prefill: each dequantized weight chunk is used this many times.
pub const PREFILL_TILE: u32 = 8;

/// Rows one workgroup computes (8 lanes per row, 64 invocations).
pub const ROWS_PER_WORKGROUP: u32 = 8;

/// `flags`: add `AUX[row]` (the bias).
pub const BIAS: u32 = 1;
/// `flags`: add to `Y` instead of overwriting it (the residual stream).
pub const ACCUMULATE: u32 = 2;
/// `flags`: multiply by `silu(AUX[token, row])` (the gate).
pub const TIMES_SILU_OF_AUX: u32 = 4;

/// A mat-mul for weights of a type, `tile` tokens per workgroup, reducing with subgroup
/// shuffles or through workgroup memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MatMul {
    pub ty: GgmlType,
    pub tile: u32,
    pub subgroups: bool,
}

wgsl_uniform! {
    pub struct MatMulParams as "Params" {
        /// Input width (a multiple of 32).
        k: u32,
        /// Rows in this piece.
        rows: u32,
        /// Index of the piece's first row in the whole matrix.
        row_offset: u32,
        row_bytes: u32,
        /// Output row length per token.
        y_stride: u32,
        /// Input `vec4`s per token.
        x_stride: u32,
        /// 0: tokens 0..n; else 1 + the one token to use (the last, for logits).
        x_token: u32,
        flags: u32,
    }
}

kernel_bindings! {
    pub struct MatMulBindings {
        weights => W: Read,
        x => X: Read,
        y => Y: ReadWrite,
        /// The bias, the gate, or a 4-byte placeholder when `flags` reads neither.
        aux => AUX: Read,
        params => P: Uniform,
        step => S: Uniform,
    }
}

impl Kernel for MatMul {
    type Bindings<'a> = MatMulBindings<'a>;

    fn module(&self) -> Option<Module> {
        let module = Module::new(include_str!("../../../shaders/matmul.wgsl"))
            .constant("TILE", self.tile)
            .uniform::<StepUniform>()
            .uniform::<MatMulParams>()
            .snippet(dequant::snippet(self.ty)?);
        Some(if self.subgroups {
            module.enable("subgroups").snippet(&REDUCE_SUBGROUP)
        } else {
            module.snippet(&REDUCE_SHARED)
        })
    }
}

impl MatMul {
    /// The decode and prefill variants of a weight type.
    pub fn pair(ty: GgmlType, subgroups: bool) -> [MatMul; 2] {
        [1, PREFILL_TILE].map(|tile| MatMul {
            ty,
            tile,
            subgroups,
        })
    }

    pub fn variants() -> Vec<MatMul> {
        dequant::SUPPORTED
            .into_iter()
            .flat_map(|ty| [false, true].map(|subgroups| MatMul::pair(ty, subgroups)))
            .flatten()
            .collect()
    }

    /// Rows spread over x and y; token tiles over z (one tile when it reads a single token).
    pub fn grid(rows: u32, single_token: bool) -> Grid {
        let tiles = if single_token {
            Extent::Fixed(1)
        } else {
            Extent::TokenTiles(PREFILL_TILE)
        };
        Grid::spread(rows.div_ceil(ROWS_PER_WORKGROUP), tiles)
    }
}
