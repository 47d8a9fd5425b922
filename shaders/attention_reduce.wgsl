// Combines flash_attention.wgsl's splits: OUT[t, h] = sum_s exp(m_s - m) O_s / sum_s exp(m_s - m) l_s
// with m the largest split max. One workgroup per (head, token).
// Composed in crate/src/kernels/attention.rs: Step, Heads, MIN_SPLIT_LEN, MAX_DECODE_SPLITS,
// MAX_PREFILL_SPLITS (the split count the attention dispatch used, recomputed here).

@group(0) @binding(0) var<storage, read> PARTIAL_O: array<f32>;
@group(0) @binding(1) var<storage, read> PARTIAL_ML: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> OUT: array<f32>;
@group(0) @binding(3) var<uniform> P: Heads;
@group(0) @binding(4) var<uniform> S: Step;

fn splits() -> u32 {
    let most = select(MAX_PREFILL_SPLITS, MAX_DECODE_SPLITS, S.n_tokens == 1u);
    return clamp((S.seq_len + MIN_SPLIT_LEN - 1u) / MIN_SPLIT_LEN, 1u, most);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wid.x;
    let t = wid.y;
    if (t >= S.n_tokens) {
        return;
    }
    let n = splits();
    let n_rows = S.n_tokens * P.n_heads;
    let row = t * P.n_heads + h;
    var m = -3.0e38;
    for (var s = 0u; s < n; s++) {
        m = max(m, PARTIAL_ML[s * n_rows + row].x);
    }
    var total = 0.0;
    for (var s = 0u; s < n; s++) {
        let ml = PARTIAL_ML[s * n_rows + row];
        total += exp(ml.x - m) * ml.y;
    }
    let inv_total = 1.0 / total;
    for (var d = lid; d < P.head_dim; d += 64u) {
        var acc = 0.0;
        for (var s = 0u; s < n; s++) {
            acc += exp(PARTIAL_ML[s * n_rows + row].x - m) * PARTIAL_O[(s * n_rows + row) * P.head_dim + d];
        }
        OUT[row * P.head_dim + d] = acc * inv_total;
    }
}
