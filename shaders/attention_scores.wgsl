// SCORES[t, h, p] = Q[t, h] . K_CACHE[p, h / group] / sqrt(head_dim) for the causal positions
// p <= pos + t. Dispatch: (ceil(seq_len / 64), n_heads, n_tokens).
// Composed in crate/src/kernels/attention.rs: Step, Heads, `alias kv`.

@group(0) @binding(0) var<storage, read> Q: array<vec4<f32>>;
// `kv` is f16 where the adapter has shader-f16, else f32 (an alias the module declares).
@group(0) @binding(1) var<storage, read> K_CACHE: array<vec4<kv>>;
@group(0) @binding(2) var<storage, read_write> SCORES: array<f32>;
@group(0) @binding(3) var<uniform> P: Heads;
@group(0) @binding(4) var<uniform> S: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x;
    let h = gid.y;
    let t = gid.z;
    if (t >= S.n_tokens || p > S.pos + t) {
        return;
    }
    let d4 = P.head_dim / 4u;
    let kv_h = h / (P.n_heads / P.n_kv_heads);
    let q = (t * P.n_heads + h) * d4;
    let k = (p * P.n_kv_heads + kv_h) * d4;
    var s = 0.0;
    for (var i = 0u; i < d4; i++) {
        s += dot(Q[q + i], vec4<f32>(K_CACHE[k + i]));
    }
    SCORES[(t * P.n_heads + h) * P.ctx + p] = s * P.scale;
}
