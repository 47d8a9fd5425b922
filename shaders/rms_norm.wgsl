// Y[t, :] = X[t, :] / sqrt(mean(X[t, :]^2) + eps) * WEIGHT, one workgroup per token.
// With `last_only`, only the last token of the step is normalised, into Y's first row.
// Composed in crate/src/kernels/rms_norm.rs: Step, Params, workgroup_reduce.

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> WEIGHT: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;
@group(0) @binding(4) var<uniform> S: Step;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    var t = wid.x;
    var out_t = wid.x;
    if (P.last_only != 0u) {
        t = S.n_tokens - 1u;
        out_t = 0u;
    } else if (t >= S.n_tokens) {
        return;
    }
    let x = t * P.n;
    var sum = 0.0;
    for (var i = lid; i < P.n; i += WG) {
        sum += X[x + i] * X[x + i];
    }
    let scale = 1.0 / sqrt(workgroup_sum(sum, lid) / f32(P.n) + P.eps);
    let y = out_t * P.n;
    for (var i = lid; i < P.n; i += WG) {
        Y[y + i] = (X[x + i] * scale) * WEIGHT[i];
    }
}
