//! The compute kernels, one file per kernel (or kernel family): each owns its uniform struct,
//! its bindings, how its WGSL is composed and its grid. [`common`] holds what several share;
//! here is the registry of every variant (what the reflection test checks). Adding a kernel:
//! one new file, its `mod` line and one registry line.

pub mod argmax;
pub mod attention;
pub mod common;
pub mod dequant;
pub mod embed;
pub mod kv_cache;
pub mod matmul;
pub mod matmul_tiled;
pub mod rms_norm;
pub mod rope_store;

use crate::gpu::{Binding, BindingSet, Kernel, Module};

/// One kernel variant as the reflection test sees it.
#[derive(Debug)]
pub struct VariantInfo {
    pub label: String,
    pub module: Module,
    pub layout: &'static [Binding],
}

fn info<K: Kernel>(kernel: K) -> Option<VariantInfo> {
    Some(VariantInfo {
        label: format!("{kernel:?}"),
        module: kernel.module()?,
        layout: <K::Bindings<'static> as BindingSet>::LAYOUT,
    })
}

/// Every kernel variant the engine may build.
pub fn registry() -> Vec<VariantInfo> {
    let mut all = Vec::new();
    all.extend(matmul::MatMul::variants().into_iter().filter_map(info));
    all.extend(embed::Embed::variants().into_iter().filter_map(info));
    all.extend([rms_norm::RmsNorm].into_iter().filter_map(info));
    all.extend(
        rope_store::RopeStore::variants()
            .into_iter()
            .filter_map(info),
    );
    all.extend(
        matmul_tiled::MatMulTiled::variants()
            .into_iter()
            .filter_map(info),
    );
    all.extend(
        attention::FlashAttention::variants()
            .into_iter()
            .filter_map(info),
    );
    all.extend([attention::AttentionReduce].into_iter().filter_map(info));
    all.extend([argmax::Argmax].into_iter().filter_map(info));
    all
}

#[cfg(test)]
mod reflection_tests;
