//! The KV cache's element types (f32, f16, 8-bit q8_0 blocks): their sizes, and the WGSL
//! aliases and snippets through which the kernels read (`load_k4`, `load_v`) and write
//! (`store_run`) them.

use crate::gpu::{Module, Snippet};

/// How cached keys and values are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvCacheType {
    F32,
    /// Needs shader-f16.
    F16,
    /// Blocks of 32 signed bytes with an f32 scale: 1.125 bytes a value, about half of f16.
    /// Needs heads of a multiple of 64 values (whole blocks per rotation run).
    Q8_0,
}

impl KvCacheType {
    /// Bytes of `values` cached values (a multiple of 32 for q8_0).
    pub fn bytes(self, values: u64) -> u64 {
        match self {
            KvCacheType::F32 => values * 4,
            KvCacheType::F16 => values * 2,
            KvCacheType::Q8_0 => values + values / 32 * 4,
        }
    }

    /// The name options and flags use.
    pub fn name(self) -> &'static str {
        match self {
            KvCacheType::F32 => "f32",
            KvCacheType::F16 => "f16",
            KvCacheType::Q8_0 => "q8_0",
        }
    }

    /// Whether heads of `head_dim` values can be cached in this type.
    pub fn supports_head_dim(self, head_dim: usize) -> bool {
        self != KvCacheType::Q8_0 || head_dim % 64 == 0
    }

    pub const ALL: [KvCacheType; 3] = [KvCacheType::F32, KvCacheType::F16, KvCacheType::Q8_0];
}

impl std::str::FromStr for KvCacheType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        KvCacheType::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown KV cache type {s:?} (f16, f32 or q8_0)"))
    }
}

static PLAIN_READ: Snippet = Snippet {
    name: "kv_plain_read",
    source: include_str!("../../../shaders/kv/plain_read.wgsl"),
    needs: &[],
    reads_globals: &["K_CACHE", "V_CACHE"],
};

static Q8_0_READ: Snippet = Snippet {
    name: "kv_q8_0_read",
    source: include_str!("../../../shaders/kv/q8_0_read.wgsl"),
    needs: &[],
    reads_globals: &["K_CACHE", "V_CACHE", "P"],
};

static PLAIN_WRITE: Snippet = Snippet {
    name: "kv_plain_write",
    source: include_str!("../../../shaders/kv/plain_write.wgsl"),
    needs: &[],
    reads_globals: &["K_CACHE", "V_CACHE"],
};

static Q8_0_WRITE: Snippet = Snippet {
    name: "kv_q8_0_write",
    source: include_str!("../../../shaders/kv/q8_0_write.wgsl"),
    needs: &[],
    reads_globals: &["K_CACHE", "V_CACHE", "P"],
};

/// Adds the cache type's aliases (`kv1`: one binding element; `kv4`: four values, for reads)
/// and its read or write snippet to `module`.
pub(super) fn with_cache(module: Module, cache: KvCacheType, write: bool) -> Module {
    let module = match cache {
        KvCacheType::F32 => module.alias("kv1", "f32").alias("kv4", "vec4<f32>"),
        KvCacheType::F16 => module
            .enable("f16")
            .alias("kv1", "f16")
            .alias("kv4", "vec4<f16>"),
        // Words of four bytes; the scales are words too (f32 bits).
        KvCacheType::Q8_0 => module.alias("kv1", "u32").alias("kv4", "u32"),
    };
    let snippet = match (cache, write) {
        (KvCacheType::Q8_0, false) => &Q8_0_READ,
        (KvCacheType::Q8_0, true) => &Q8_0_WRITE,
        (_, false) => &PLAIN_READ,
        (_, true) => &PLAIN_WRITE,
    };
    module.snippet(snippet)
}
