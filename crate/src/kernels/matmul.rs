//! Mat-vec of quantized weights with one token's f32 activations: `Y (+)= W x` (+ bias, or
//! times `silu(AUX)` for the FFN's up projection), for one weight piece (a matrix past the
//! binding limit is split by rows). Each invocation computes 4 rows from one load of the
//! activations; the invocations of a row group sum with subgroup shuffles or through
//! workgroup memory. Decode steps and the logits use it; prefill uses
//! [`super::matmul_tiled`], which shares its bindings and parameters.

use crate::gguf::GgmlType;
use crate::gpu::{Extent, Grid, Kernel, Module};
use crate::{kernel_bindings, wgsl_uniform};

use super::common::{StepUniform, REDUCE_NONE, REDUCE_SHARED, REDUCE_SUBGROUP};
use super::dequant;

/// Invocations of a workgroup.
const WORKGROUP_SIZE: u32 = 64;
/// Rows each invocation computes, sharing one load of the activations.
const ROWS_PER_GROUP: u32 = 4;

/// `flags`: add `AUX[row]` (the bias).
pub const BIAS: u32 = 1;
/// `flags`: add to `Y` instead of overwriting it (the residual stream).
pub const ACCUMULATE: u32 = 2;
/// `flags`: multiply by `silu(AUX[token, row])` (the gate).
pub const TIMES_SILU_OF_AUX: u32 = 4;

/// How the invocations of a row group combine their partial sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowReduce {
    /// `lanes` (4 or 8) invocations per group, summed with subgroup shuffles: no barrier.
    /// SwiftShader's subgroups have 4 invocations; most GPUs' 8 to 64.
    Subgroup { lanes: u32 },
    /// 8 invocations per group, summed through workgroup memory with barriers.
    Shared,
    /// One invocation per group, walking the whole rows: no reduction and no barrier. For
    /// software adapters (lavapipe, SwiftShader), which run a workgroup's invocations as the
    /// SIMD lanes of a CPU thread and pay for each storage load lane by lane, unless every
    /// lane loads the same address: here all lanes of a step read the same activations.
    None,
}

impl RowReduce {
    /// The reduction for an adapter: a software one (`software`), or one whose subgroups
    /// have at least `subgroup_min_size` invocations (`None`: no subgroup operations).
    pub fn for_adapter(software: bool, subgroup_min_size: Option<u32>) -> RowReduce {
        if software {
            return RowReduce::None;
        }
        match subgroup_min_size {
            Some(size) if size >= 8 => RowReduce::Subgroup { lanes: 8 },
            Some(size) if size >= 4 => RowReduce::Subgroup { lanes: 4 },
            _ => RowReduce::Shared,
        }
    }

    /// Invocations that share a row group.
    pub fn lanes(self) -> u32 {
        match self {
            RowReduce::Subgroup { lanes } => lanes,
            RowReduce::Shared => 8,
            RowReduce::None => 1,
        }
    }

    /// Rows one workgroup computes.
    pub fn rows_per_workgroup(self) -> u32 {
        WORKGROUP_SIZE / self.lanes() * ROWS_PER_GROUP
    }
}

/// A mat-vec for weights of a type, with its row groups' reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MatMul {
    pub ty: GgmlType,
    pub reduce: RowReduce,
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
        let lanes = self.reduce.lanes();
        let module = Module::new(include_str!("../../../shaders/matmul.wgsl"))
            .constant("LANES", lanes)
            .constant("ROW_GROUPS", WORKGROUP_SIZE / lanes)
            .uniform::<StepUniform>()
            .uniform::<MatMulParams>()
            .snippet(dequant::snippet(self.ty)?);
        Some(match self.reduce {
            RowReduce::Subgroup { .. } => module.enable("subgroups").snippet(&REDUCE_SUBGROUP),
            RowReduce::Shared => module.snippet(&REDUCE_SHARED),
            RowReduce::None => module.snippet(&REDUCE_NONE),
        })
    }
}

impl MatMul {
    pub fn variants() -> Vec<MatMul> {
        dequant::SUPPORTED
            .into_iter()
            .flat_map(|ty| {
                [
                    RowReduce::Subgroup { lanes: 4 },
                    RowReduce::Subgroup { lanes: 8 },
                    RowReduce::Shared,
                    RowReduce::None,
                ]
                .map(|reduce| MatMul { ty, reduce })
            })
            .collect()
    }

    /// Rows spread over x and y, for one token.
    pub fn grid(self, rows: u32) -> Grid {
        Grid::spread(
            rows.div_ceil(self.reduce.rows_per_workgroup()),
            Extent::Fixed(1),
        )
    }

    /// Rows spread over x and y, and the step's tokens over z (a short prefill).
    pub fn grid_per_token(self, rows: u32) -> Grid {
        Grid::spread(
            rows.div_ceil(self.reduce.rows_per_workgroup()),
            Extent::Tokens,
        )
    }
}
