// Rotates Q and K by position (NEOX layout: pairs (i, i + d/2) of each head) and stores the
// step's K and V rows into the layer's cache at positions pos..pos+n_tokens.
// Dispatch: (head_dim / 2 / 32 rounded up, n_heads + n_kv_heads, n_tokens).
// Composed in crate/src/kernels/rope_store.rs: Step, Heads, `alias kv`.

@group(0) @binding(0) var<storage, read_write> Q: array<f32>;
@group(0) @binding(1) var<storage, read> K: array<f32>;
@group(0) @binding(2) var<storage, read> V: array<f32>;
// `kv` is f16 where the adapter has shader-f16 (half the cache memory), else f32.
@group(0) @binding(3) var<storage, read_write> K_CACHE: array<kv>;
@group(0) @binding(4) var<storage, read_write> V_CACHE: array<kv>;
// cos and sin of position p and pair i at ROPE[p * head_dim / 2 + i].
@group(0) @binding(5) var<storage, read> ROPE: array<vec2<f32>>;
@group(0) @binding(6) var<uniform> P: Heads;
@group(0) @binding(7) var<uniform> S: Step;

@compute @workgroup_size(32)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let half = P.head_dim / 2u;
    let i = gid.x;
    let h = gid.y;
    let t = gid.z;
    if (i >= half || t >= S.n_tokens) {
        return;
    }
    let pos = S.pos + t;
    let cs = ROPE[pos * half + i];
    if (h < P.n_heads) {
        let q = (t * P.n_heads + h) * P.head_dim + i;
        let x0 = Q[q];
        let x1 = Q[q + half];
        Q[q] = x0 * cs.x - x1 * cs.y;
        Q[q + half] = x0 * cs.y + x1 * cs.x;
        return;
    }
    let kv_width = P.n_kv_heads * P.head_dim;
    let src = t * kv_width + (h - P.n_heads) * P.head_dim + i;
    let dst = pos * kv_width + (h - P.n_heads) * P.head_dim + i;
    let x0 = K[src];
    let x1 = K[src + half];
    K_CACHE[dst] = kv(x0 * cs.x - x1 * cs.y);
    K_CACHE[dst + half] = kv(x0 * cs.y + x1 * cs.x);
    V_CACHE[dst] = kv(V[src]);
    V_CACHE[dst + half] = kv(V[src + half]);
}
