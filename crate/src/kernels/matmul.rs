//! Mat-vec of quantized weights with one token's f32 activations: `Y (+)= W x` (+ bias, or
//! times `silu(AUX)` for the FFN's up projection), for one weight piece (a matrix past the
//! binding limit is split by rows). Decode steps and the logits use it; prefill uses
//! [`super::matmul_tiled`], which shares its bindings and parameters.

use crate::gguf::GgmlType;
use crate::gpu::{Extent, Grid, Kernel, Module};
use crate::{kernel_bindings, wgsl_uniform};

use super::common::{StepUniform, REDUCE_SHARED, REDUCE_SUBGROUP};
use super::dequant;

/// Rows one workgroup computes (8 lanes per row, 64 invocations).
pub const ROWS_PER_WORKGROUP: u32 = 8;

/// `flags`: add `AUX[row]` (the bias).
pub const BIAS: u32 = 1;
/// `flags`: add to `Y` instead of overwriting it (the residual stream).
pub const ACCUMULATE: u32 = 2;
/// `flags`: multiply by `silu(AUX[token, row])` (the gate).
pub const TIMES_SILU_OF_AUX: u32 = 4;

/// A mat-vec for weights of a type, reducing with subgroup shuffles or through workgroup
/// memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MatMul {
    pub ty: GgmlType,
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
        /// 0: every token of the step (the step's one token, in a mat-vec); else 1 + the one
        /// token to use (the last, for logits).
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
        /// The step's token count (read by the tiled prefill kernel).
        step => S: Uniform,
    }
}

impl Kernel for MatMul {
    type Bindings<'a> = MatMulBindings<'a>;

    fn module(&self) -> Option<Module> {
        let module = Module::new(include_str!("../../../shaders/matmul.wgsl"))
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
    pub fn variants() -> Vec<MatMul> {
        dequant::SUPPORTED
            .into_iter()
            .flat_map(|ty| [false, true].map(|subgroups| MatMul { ty, subgroups }))
            .collect()
    }

    /// Rows spread over x and y.
    pub fn grid(rows: u32) -> Grid {
        Grid::spread(rows.div_ceil(ROWS_PER_WORKGROUP), Extent::Fixed(1))
    }
}
