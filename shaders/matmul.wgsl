// Mat-vec for one token: Y[r] (+)= sum_k W[r, k] * X[t, k] (+ bias[r]) for the rows of one
// weight piece; or, for the FFN's up projection, Y[r] = silu(GATE[r]) * sum_k W[r, k] * X[t, k].
//
// A workgroup of 64 invocations computes 8 rows, 8 invocations per row; each invocation
// dot-multiplies 32-value chunks of its row (neighbouring invocations read neighbouring chunks),
// reading each weight byte once. Composed in crate/src/kernels/matmul.rs: Step, Params, the
// weight type's dequant snippet (chunk_dot(row_byte_offset, chunk, x_vec4_offset)) and a
// reduce snippet, which sums a value over the 8 invocations of a row.

const ROWS: u32 = 8u;
const LANES: u32 = 8u;

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
// The bias (flag 1) or the FFN gate activations (flag 4).
@group(0) @binding(3) var<storage, read> AUX: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let lane = lid % LANES;
    let r = (wid.x + wid.y * nwg.x) * ROWS + lid / LANES;
    // The step's one token, or the one `x_token` names (the last, for the logits).
    let t = select(0u, P.x_token - 1u, P.x_token != 0u);
    var acc = 0.0;
    if (r < P.rows) {
        let row = r * P.row_bytes;
        for (var c = lane; c < P.k / 32u; c += LANES) {
            acc += chunk_dot(row, c, t * P.x_stride + c * 8u);
        }
    }
    let total = row_sum(acc, lid);
    if (lane == 0u && r < P.rows) {
        let out_row = P.row_offset + r;
        var v = total;
        if ((P.flags & 1u) != 0u) {
            v += AUX[out_row];
        }
        // A single-token step writes row 0 of Y, whichever token of X it read.
        if ((P.flags & 4u) != 0u) {
            let g = AUX[out_row];
            v *= g / (1.0 + exp(-g));
        }
        if ((P.flags & 2u) != 0u) {
            v += Y[out_row];
        }
        Y[out_row] = v;
    }
}
