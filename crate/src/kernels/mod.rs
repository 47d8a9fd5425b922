//! The compute kernels, one file per kernel (or kernel family): each owns its uniform struct,
//! its bindings, how its WGSL is composed and its grid. Shared here: the per-step uniform, the
//! WGSL snippets several kernels use, and the registry of every variant (what the reflection
//! test checks). Adding a kernel: one new file, its `mod` line and one registry line.

pub mod argmax;
pub mod attention;
pub mod dequant;
pub mod embed;
pub mod matmul;
pub mod rms_norm;
pub mod rope_store;

use crate::gpu::{Binding, BindingSet, Kernel, Module, Snippet};
use crate::wgsl_uniform;

wgsl_uniform! {
    /// Per-step values every kernel but argmax reads (written before each submission).
    pub struct StepUniform as "Step" {
        /// Tokens in this step.
        n_tokens: u32,
        /// Cache position of the step's first token.
        pos: u32,
        /// pos + n_tokens.
        seq_len: u32,
        _pad: u32,
    }
}

/// Byte-level reads of the packed weights `W: array<u32>`.
pub static BYTES: Snippet = Snippet {
    name: "bytes",
    source: include_str!("../../../shaders/bytes.wgsl"),
    needs: &[],
    reads_globals: &["W"],
};

/// A row's sum over its 8 lanes with subgroup shuffles.
pub static REDUCE_SUBGROUP: Snippet = Snippet {
    name: "reduce_subgroup",
    source: include_str!("../../../shaders/reduce_subgroup.wgsl"),
    needs: &[],
    reads_globals: &[],
};

/// A row's sum over its 8 lanes through workgroup memory.
pub static REDUCE_SHARED: Snippet = Snippet {
    name: "reduce_shared",
    source: include_str!("../../../shaders/reduce_shared.wgsl"),
    needs: &[],
    reads_globals: &[],
};

/// Sum and maximum over a 64-invocation workgroup (defines `WG`).
pub static WORKGROUP_REDUCE: Snippet = Snippet {
    name: "workgroup_reduce",
    source: include_str!("../../../shaders/workgroup_reduce.wgsl"),
    needs: &[],
    reads_globals: &[],
};

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
        attention::AttentionScores::variants()
            .into_iter()
            .filter_map(info),
    );
    all.extend(
        attention::AttentionOutput::variants()
            .into_iter()
            .filter_map(info),
    );
    all.extend([argmax::Argmax].into_iter().filter_map(info));
    all
}

#[cfg(test)]
mod reflection_tests;
