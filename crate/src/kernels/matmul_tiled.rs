//! Prefill mat-mul of quantized weights with f32 activations, tiled through workgroup memory:
//! 64 rows × 32 tokens per workgroup, each quantized block decoded once per tile. It shares
//! [`MatMul`]'s bindings and parameters, so one bind group serves both.

use crate::gguf::GgmlType;
use crate::gpu::{Extent, Grid, Kernel, Module};

use super::common::StepUniform;
use super::dequant;
use super::matmul::{MatMulBindings, MatMulParams};

/// Rows of a workgroup's tile.
pub const TILE_ROWS: u32 = 64;
/// Tokens of a workgroup's tile.
pub const TILE_TOKENS: u32 = 32;

/// The tiled mat-mul for weights of a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MatMulTiled {
    pub ty: GgmlType,
}

impl Kernel for MatMulTiled {
    type Bindings<'a> = MatMulBindings<'a>;

    fn module(&self) -> Option<Module> {
        Some(
            Module::new(include_str!("../../../shaders/matmul_tiled.wgsl"))
                .constant("TILE_ROWS", TILE_ROWS)
                .constant("TILE_TOKENS", TILE_TOKENS)
                .uniform::<StepUniform>()
                .uniform::<MatMulParams>()
                .snippet(dequant::snippet(self.ty)?),
        )
    }
}

impl MatMulTiled {
    pub fn variants() -> Vec<MatMulTiled> {
        dequant::SUPPORTED
            .into_iter()
            .map(|ty| MatMulTiled { ty })
            .collect()
    }

    /// Row tiles spread over x and y; token tiles over z.
    pub fn grid(rows: u32) -> Grid {
        Grid::spread(rows.div_ceil(TILE_ROWS), Extent::TokenTiles(TILE_TOKENS))
    }
}
