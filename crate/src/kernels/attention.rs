//! Attention over the KV cache as flash attention: [`FlashAttention`] computes, per split of
//! the cached positions, each query row's softmax-weighted sum of V with an online softmax (no
//! score matrix in memory; one workgroup serves a whole GQA group); [`AttentionReduce`]
//! combines the splits. Decode splits the positions finely (split-K), prefill coarsely.

use crate::gpu::{Extent, Grid, Kernel, Module};
use crate::{kernel_bindings, wgsl_uniform};

use super::common::StepUniform;
use super::kv_cache::{with_cache, KvCacheType};

wgsl_uniform! {
    /// Attention geometry, shared by RoPE/KV store and attention.
    pub struct HeadParams as "Heads" {
        n_heads: u32,
        n_kv_heads: u32,
        head_dim: u32,
        /// 1 / sqrt(head_dim)
        scale: f32,
        /// Where a q8_0 cache's scales start (in words of its buffer); 0 for other types.
        kv_scales_at: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }
}

/// Positions per split are at least this many (each split's fixed cost is a few blocks).
pub const MIN_SPLIT_LEN: u32 = 256;
/// Splits of a decode step: enough workgroups to fill a GPU from one token's few KV heads.
pub const MAX_DECODE_SPLITS: u32 = 32;
/// Splits of a prefill step, whose query tiles already give the parallelism.
pub const MAX_PREFILL_SPLITS: u32 = 4;

/// Query rows (token × head of the group) a prefill workgroup takes: its Q tile and weights
/// fit 16 KiB of workgroup memory at head dimension 128.
const PREFILL_ROWS: u32 = 16;

/// A module over a KV cache of type `cache`, which it reads or (`write`) writes.
pub(super) fn kv_module(body: &'static str, cache: KvCacheType, write: bool) -> Module {
    let module = Module::new(body)
        .uniform::<StepUniform>()
        .uniform::<HeadParams>();
    with_cache(module, cache, write)
}

/// Whether the attention kernels handle heads of `head_dim` (its 64-wide workgroups cover a
/// head with whole invocations per dimension or whole dimensions per invocation).
pub fn supports_head_dim(head_dim: usize) -> bool {
    head_dim % 4 == 0 && head_dim > 0 && (head_dim % 64 == 0 || 64 % head_dim == 0)
}

/// One split of flash attention for a tile of `rows` query rows of one KV head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlashAttention {
    pub cache: KvCacheType,
    /// Query heads per KV head.
    pub group: u32,
    pub head_dim: u32,
    pub rows: u32,
}

kernel_bindings! {
    pub struct FlashAttentionBindings {
        q => Q: Read,
        k_cache => K_CACHE: Read,
        v_cache => V_CACHE: Read,
        partial_o => PARTIAL_O: ReadWrite,
        partial_ml => PARTIAL_ML: ReadWrite,
        heads => P: Uniform,
        step => S: Uniform,
    }
}

impl Kernel for FlashAttention {
    type Bindings<'a> = FlashAttentionBindings<'a>;

    fn module(&self) -> Option<Module> {
        let head_dim = self.head_dim as usize;
        if !supports_head_dim(head_dim)
            || !self.cache.supports_head_dim(head_dim)
            || self.group == 0
            || self.rows == 0
        {
            return None;
        }
        let lanes = (64 / self.head_dim).max(1);
        Some(
            kv_module(
                include_str!("../../../shaders/flash_attention.wgsl"),
                self.cache,
                false,
            )
            .constant("GROUP", self.group)
            .constant("HEAD_DIM", self.head_dim)
            .constant("ROWS", self.rows)
            .constant("LANES", lanes)
            .constant("DPT", (self.head_dim / 64).max(1)),
        )
    }
}

impl FlashAttention {
    /// The decode and prefill variants for a model's heads.
    pub fn pair(cache: KvCacheType, group: u32, head_dim: u32) -> [FlashAttention; 2] {
        [group.min(PREFILL_ROWS), PREFILL_ROWS].map(|rows| FlashAttention {
            cache,
            group,
            head_dim,
            rows,
        })
    }

    /// The shapes of Qwen2 models (0.5B: 7 × 64, 7B: 7 × 128, 3B: 8 × 128, the tiny test
    /// model's 16-wide heads), every cache type that takes them.
    pub fn variants() -> Vec<FlashAttention> {
        [(7, 64), (7, 128), (8, 128), (2, 16)]
            .into_iter()
            .flat_map(|(group, head_dim)| {
                KvCacheType::ALL.map(|cache| FlashAttention::pair(cache, group, head_dim))
            })
            .flatten()
            .filter(|kernel| kernel.cache.supports_head_dim(kernel.head_dim as usize))
            .collect()
    }

    /// Splits (x), KV heads (y), query-row tiles (z).
    pub fn grid(&self, n_kv_heads: u32) -> Grid {
        Grid([
            Extent::PositionSplits {
                min_len: MIN_SPLIT_LEN,
                most_decode: MAX_DECODE_SPLITS,
                most_prefill: MAX_PREFILL_SPLITS,
            },
            Extent::Fixed(n_kv_heads),
            Extent::TokenRows {
                per_token: self.group,
                per_workgroup: self.rows,
            },
        ])
    }

    /// Rows (split × token × head) of partial results a step of up to `tokens` tokens writes,
    /// for the most splits of either kind of step: `PARTIAL_O` holds `head_dim` floats a row,
    /// `PARTIAL_ML` two.
    pub fn partial_rows(tokens: u64, n_heads: u64) -> u64 {
        let splits = u64::from(MAX_DECODE_SPLITS).max(u64::from(MAX_PREFILL_SPLITS) * tokens);
        splits * n_heads
    }
}

/// Combines the splits of [`FlashAttention`] into each head's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttentionReduce;

kernel_bindings! {
    pub struct AttentionReduceBindings {
        partial_o => PARTIAL_O: Read,
        partial_ml => PARTIAL_ML: Read,
        out => OUT: ReadWrite,
        heads => P: Uniform,
        step => S: Uniform,
    }
}

impl Kernel for AttentionReduce {
    type Bindings<'a> = AttentionReduceBindings<'a>;

    fn module(&self) -> Option<Module> {
        Some(
            Module::new(include_str!("../../../shaders/attention_reduce.wgsl"))
                .uniform::<StepUniform>()
                .uniform::<HeadParams>()
                .constant("MIN_SPLIT_LEN", MIN_SPLIT_LEN)
                .constant("MAX_DECODE_SPLITS", MAX_DECODE_SPLITS)
                .constant("MAX_PREFILL_SPLITS", MAX_PREFILL_SPLITS),
        )
    }
}

impl AttentionReduce {
    /// One workgroup per head (x) and token (y).
    pub fn grid(n_heads: u32) -> Grid {
        Grid([Extent::Fixed(n_heads), Extent::Tokens, Extent::Fixed(1)])
    }
}
