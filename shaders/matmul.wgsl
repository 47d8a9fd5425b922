// Y[t, r] (+)= sum_k W[r, k] * X[t, k] (+ bias[r]) for the rows of one weight piece; or, for
// the FFN's up projection, Y[t, r] = silu(GATE[t, r]) * sum_k W[r, k] * X[t, k].
//
// A workgroup of 64 invocations computes 8 rows, 8 invocations per row; each invocation
// dequantizes 32-value chunks of its row in registers, four values at a time, once, and applies
// them to every token of a tile of TILE tokens, so prefill reads the weights once per tile and
// decode (TILE = 1) reads each weight byte once. Neighbouring invocations read neighbouring
// chunks. Composed in crate/src/kernels/matmul.rs: TILE, Step, Params, the weight type's
// dequant snippet (dequant4(row_byte_offset, chunk, quad) and chunk_dot(row_byte_offset, chunk,
// x_vec4_offset): decode loads each weight byte once) and a reduce snippet, which sums a value
// over the 8 invocations of a row.

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
    let t0 = wid.z * TILE;
    var n_tokens = S.n_tokens;
    var x_first = 0u;
    if (P.x_token != 0u) {
        n_tokens = 1u;
        x_first = P.x_token - 1u;
    }
    var acc: array<f32, TILE>;
    if (r < P.rows) {
        let row = r * P.row_bytes;
        for (var c = lane; c < P.k / 32u; c += LANES) {
            if (TILE == 1u) {
                if (t0 < n_tokens) {
                    acc[0] += chunk_dot(row, c, (x_first + t0) * P.x_stride + c * 8u);
                }
                continue;
            }
            for (var i = 0u; i < 8u; i++) {
                let w = dequant4(row, c, i);
                for (var t = 0u; t < TILE; t++) {
                    if (t0 + t < n_tokens) {
                        acc[t] += dot(w, X[(x_first + t0 + t) * P.x_stride + c * 8u + i]);
                    }
                }
            }
        }
    }
    for (var t = 0u; t < TILE; t++) {
        let total = row_sum(acc[t], lid);
        if (lane == 0u && r < P.rows && t0 + t < n_tokens) {
            let out_row = P.row_offset + r;
            var v = total;
            if ((P.flags & 1u) != 0u) {
                v += AUX[out_row];
            }
            let y = (t0 + t) * P.y_stride + out_row;
            if ((P.flags & 4u) != 0u) {
                let g = AUX[y];
                v *= g / (1.0 + exp(-g));
            }
            if ((P.flags & 2u) != 0u) {
                v += Y[y];
            }
            Y[y] = v;
        }
    }
}
