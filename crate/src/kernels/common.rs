//! What several kernels share: the per-step uniform and the WGSL snippets for byte loads and
//! reductions.

use crate::gpu::Snippet;
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

/// A row group's sum when one invocation computes it alone.
pub static REDUCE_NONE: Snippet = Snippet {
    name: "reduce_none",
    source: include_str!("../../../shaders/reduce_none.wgsl"),
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
