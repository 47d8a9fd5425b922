//! Embedding lookup: row `TOKENS[t]` of a quantized matrix piece, dequantized into `X[t]`.

use crate::gguf::GgmlType;
use crate::gpu::{Extent, Grid, Kernel, Module};
use crate::{kernel_bindings, wgsl_uniform};

use super::common::StepUniform;
use super::dequant;

/// Embedding rows of a type, looked up by token id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Embed {
    pub ty: GgmlType,
}

wgsl_uniform! {
    pub struct EmbedParams as "Params" {
        k: u32,
        rows: u32,
        row_offset: u32,
        row_bytes: u32,
    }
}

kernel_bindings! {
    pub struct EmbedBindings {
        weights => W: Read,
        tokens => TOKENS: Read,
        x => X: ReadWrite,
        params => P: Uniform,
        step => S: Uniform,
    }
}

impl Kernel for Embed {
    type Bindings<'a> = EmbedBindings<'a>;

    fn module(&self) -> Option<Module> {
        Some(
            Module::new(include_str!("../../../shaders/embed.wgsl"))
                .uniform::<StepUniform>()
                .uniform::<EmbedParams>()
                .snippet(dequant::snippet(self.ty)?),
        )
    }
}

impl Embed {
    pub fn variants() -> Vec<Embed> {
        dequant::SUPPORTED.map(|ty| Embed { ty }).to_vec()
    }

    /// One invocation per 32-value chunk of a row (x), one row per token (y).
    pub fn grid(cols: u32) -> Grid {
        Grid([
            Extent::Fixed((cols / 32).div_ceil(32)),
            Extent::Tokens,
            Extent::Fixed(1),
        ])
    }
}
