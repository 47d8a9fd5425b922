// Attention geometry, shared by RoPE/KV store, scores and softmax·V.
struct Heads {
    n_heads: u32,
    n_kv_heads: u32,
    head_dim: u32,
    ctx: u32,          // KV cache capacity: the SCORES row length
    scale: f32,        // 1 / sqrt(head_dim)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
