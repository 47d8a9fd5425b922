// OUT[t, h] = sum_p softmax_p(SCORES[t, h, p]) * V_CACHE[p, h / group] over p <= pos + t,
// one workgroup per (head, token).
// Composed in crate/src/kernels/attention.rs: Step, Heads, `alias kv`, workgroup_reduce.

@group(0) @binding(0) var<storage, read> SCORES: array<f32>;
// `kv` is f16 where the adapter has shader-f16, else f32 (an alias the module declares).
@group(0) @binding(1) var<storage, read> V_CACHE: array<kv>;
@group(0) @binding(2) var<storage, read_write> OUT: array<f32>;
@group(0) @binding(3) var<uniform> P: Heads;
@group(0) @binding(4) var<uniform> S: Step;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wid.x;
    let t = wid.y;
    if (t >= S.n_tokens) {
        return;
    }
    let n = S.pos + t + 1u;
    let row = (t * P.n_heads + h) * P.ctx;

    var m = -3.0e38;
    for (var p = lid; p < n; p += WG) {
        m = max(m, SCORES[row + p]);
    }
    m = workgroup_max(m, lid);

    var sum = 0.0;
    for (var p = lid; p < n; p += WG) {
        sum += exp(SCORES[row + p] - m);
    }
    let inv_sum = 1.0 / workgroup_sum(sum, lid);

    let kv_h = h / (P.n_heads / P.n_kv_heads);
    let kv_width = P.n_kv_heads * P.head_dim;
    for (var d = lid; d < P.head_dim; d += WG) {
        var acc = 0.0;
        for (var p = 0u; p < n; p++) {
            acc += exp(SCORES[row + p] - m) * f32(V_CACHE[p * kv_width + kv_h * P.head_dim + d]);
        }
        OUT[(t * P.n_heads + h) * P.head_dim + d] = acc * inv_sum;
    }
}
