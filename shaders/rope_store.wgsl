// Rotates Q and K by position (NEOX layout: pairs (i, i + d/2) of each head) and stores the
// step's K and V rows into the layer's cache at positions pos..pos+n_tokens.
// Dispatch: (head_dim / 2 / 32 rounded up, n_heads + n_kv_heads, n_tokens); a workgroup's 32
// invocations take 32 consecutive pairs of one head, so each stores runs of 32 values.
// Composed in crate/src/kernels/rope_store.rs: Step, Heads, the cache type's aliases and its
// store_run(to_v, first, x, lid, valid) (f16/f32: plain stores; q8_0: quantized blocks).

@group(0) @binding(0) var<storage, read_write> Q: array<f32>;
@group(0) @binding(1) var<storage, read> K: array<f32>;
@group(0) @binding(2) var<storage, read> V: array<f32>;
@group(0) @binding(3) var<storage, read_write> K_CACHE: array<kv1>;
@group(0) @binding(4) var<storage, read_write> V_CACHE: array<kv1>;
// cos and sin of position p and pair i at ROPE[p * head_dim / 2 + i].
@group(0) @binding(5) var<storage, read> ROPE: array<vec2<f32>>;
@group(0) @binding(6) var<uniform> P: Heads;
@group(0) @binding(7) var<uniform> S: Step;

@compute @workgroup_size(32)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let half = P.head_dim / 2u;
    let i = wid.x * 32u + lid;
    let h = wid.y;
    let t = wid.z;
    if (t >= S.n_tokens) {
        return;
    }
    let valid = i < half;
    let pos = S.pos + t;
    let cs = ROPE[pos * half + min(i, half - 1u)];
    if (h < P.n_heads) {
        let q = (t * P.n_heads + h) * P.head_dim + i;
        if (valid) {
            let x0 = Q[q];
            let x1 = Q[q + half];
            Q[q] = x0 * cs.x - x1 * cs.y;
            Q[q + half] = x0 * cs.y + x1 * cs.x;
        }
        return;
    }
    let kv_width = P.n_kv_heads * P.head_dim;
    let src = t * kv_width + (h - P.n_heads) * P.head_dim + i;
    var k0 = 0.0;
    var k1 = 0.0;
    var v0 = 0.0;
    var v1 = 0.0;
    if (valid) {
        let x0 = K[src];
        let x1 = K[src + half];
        k0 = x0 * cs.x - x1 * cs.y;
        k1 = x0 * cs.y + x1 * cs.x;
        v0 = V[src];
        v1 = V[src + half];
    }
    let first = pos * kv_width + (h - P.n_heads) * P.head_dim + wid.x * 32u;
    store_run(false, first, k0, lid, valid);
    store_run(false, first + half, k1, lid, valid);
    store_run(true, first, v0, lid, valid);
    store_run(true, first + half, v1, lid, valid);
}
