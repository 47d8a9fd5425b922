//! RoPE on the step's queries and keys, and the KV cache store of keys and values.

use crate::gpu::{Extent, Grid, Kernel, Module};
use crate::kernel_bindings;

use super::attention::kv_module;
use super::kv_cache::KvCacheType;

/// RoPE and the KV cache store into a cache of type `cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RopeStore {
    pub cache: KvCacheType,
}

kernel_bindings! {
    pub struct RopeStoreBindings {
        /// Rotated in place.
        q => Q: ReadWrite,
        k => K: Read,
        v => V: Read,
        k_cache => K_CACHE: ReadWrite,
        v_cache => V_CACHE: ReadWrite,
        /// cos and sin per position and rotation pair.
        rope => ROPE: Read,
        heads => P: Uniform,
        step => S: Uniform,
    }
}

impl Kernel for RopeStore {
    type Bindings<'a> = RopeStoreBindings<'a>;

    fn module(&self) -> Option<Module> {
        Some(kv_module(
            include_str!("../../../shaders/rope_store.wgsl"),
            self.cache,
            true,
        ))
    }
}

impl RopeStore {
    pub fn variants() -> Vec<RopeStore> {
        KvCacheType::ALL.map(|cache| RopeStore { cache }).to_vec()
    }

    /// 32 rotation pairs per workgroup (x), every query and key head (y), every token (z).
    pub fn grid(head_dim: u32, heads_and_kv_heads: u32) -> Grid {
        Grid([
            Extent::Fixed((head_dim / 2).div_ceil(32)),
            Extent::Fixed(heads_and_kv_heads),
            Extent::Tokens,
        ])
    }
}
