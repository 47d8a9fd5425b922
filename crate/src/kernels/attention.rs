//! Attention over the KV cache: scores (`Q·K / sqrt(d)` for every cached position, causal) and
//! the softmax of the scores times V.

use crate::gpu::{Extent, Grid, Kernel, Module};
use crate::{kernel_bindings, wgsl_uniform};

use super::common::{StepUniform, WORKGROUP_REDUCE};

wgsl_uniform! {
    /// Attention geometry, shared by RoPE/KV store, scores and softmax·V.
    pub struct HeadParams as "Heads" {
        n_heads: u32,
        n_kv_heads: u32,
        head_dim: u32,
        /// KV cache capacity: the `SCORES` row length.
        ctx: u32,
        /// 1 / sqrt(head_dim)
        scale: f32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }
}

/// A module over a KV cache whose element type `kv` is f16 or f32.
pub(super) fn kv_module(body: &'static str, f16_cache: bool) -> Module {
    let module = Module::new(body)
        .uniform::<StepUniform>()
        .uniform::<HeadParams>();
    if f16_cache {
        module.enable("f16").alias("kv", "f16")
    } else {
        module.alias("kv", "f32")
    }
}

/// Scores of every query head against every cached position up to the token's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttentionScores {
    pub f16_cache: bool,
}

kernel_bindings! {
    pub struct AttentionScoresBindings {
        q => Q: Read,
        k_cache => K_CACHE: Read,
        scores => SCORES: ReadWrite,
        heads => P: Uniform,
        step => S: Uniform,
    }
}

impl Kernel for AttentionScores {
    type Bindings<'a> = AttentionScoresBindings<'a>;

    fn module(&self) -> Option<Module> {
        Some(kv_module(
            include_str!("../../../shaders/attention_scores.wgsl"),
            self.f16_cache,
        ))
    }
}

impl AttentionScores {
    pub fn variants() -> Vec<AttentionScores> {
        [false, true]
            .map(|f16_cache| AttentionScores { f16_cache })
            .to_vec()
    }

    /// 64 positions per workgroup (x), every head (y), every token (z).
    pub fn grid(n_heads: u32) -> Grid {
        Grid([
            Extent::SeqLenBlocks(64),
            Extent::Fixed(n_heads),
            Extent::Tokens,
        ])
    }
}

/// Softmax of a head's scores, times the cached values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttentionOutput {
    pub f16_cache: bool,
}

kernel_bindings! {
    pub struct AttentionOutputBindings {
        scores => SCORES: Read,
        v_cache => V_CACHE: Read,
        out => OUT: ReadWrite,
        heads => P: Uniform,
        step => S: Uniform,
    }
}

impl Kernel for AttentionOutput {
    type Bindings<'a> = AttentionOutputBindings<'a>;

    fn module(&self) -> Option<Module> {
        Some(
            kv_module(
                include_str!("../../../shaders/attention_output.wgsl"),
                self.f16_cache,
            )
            .snippet(&WORKGROUP_REDUCE),
        )
    }
}

impl AttentionOutput {
    pub fn variants() -> Vec<AttentionOutput> {
        [false, true]
            .map(|f16_cache| AttentionOutput { f16_cache })
            .to_vec()
    }

    /// One workgroup per head (x) and token (y).
    pub fn grid(n_heads: u32) -> Grid {
        Grid([Extent::Fixed(n_heads), Extent::Tokens, Extent::Fixed(1)])
    }
}
