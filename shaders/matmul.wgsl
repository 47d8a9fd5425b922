// Mat-vec: Y[t, r] (+)= sum_k W[r, k] * X[t, k] (+ bias[r]) for the rows of one weight piece
// and each token t of a short step (one per workgroup layer z); or, for the FFN's up
// projection, Y[t, r] = silu(GATE[t, r]) * sum_k W[r, k] * X[t, k].
//
// A workgroup of 64 invocations computes ROW_GROUPS * 4 rows. LANES invocations share a group
// of 4 rows and take turns over its 32-value chunks (neighbouring invocations read
// neighbouring chunks, each weight byte read once). Each invocation loads a chunk of X once
// and multiplies it with the 4 rows' chunks, so activations are read once per 4 rows. Composed
// in crate/src/kernels/matmul.rs: LANES, ROW_GROUPS, Step, Params, the weight type's dequant
// snippet (chunk_dot(row_byte_offset, chunk, x_chunk)) and a reduce snippet, which sums a
// vec4 over the LANES invocations of a row group.

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
// The bias (flag 1) or the FFN gate activations (flag 4).
@group(0) @binding(3) var<storage, read> AUX: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

// Rows one invocation computes.
const ROWS_PER_GROUP: u32 = 4u;

// The 32 activations from vec4 `x` on, loaded once for the rows of a group.
fn load_x_chunk(x: u32) -> XChunk {
    var chunk: XChunk;
    var sum = vec4<f32>(0.0);
    for (var i = 0u; i < 8u; i++) {
        chunk.v[i] = X[x + i];
        sum += chunk.v[i];
    }
    chunk.sum = dot(sum, vec4<f32>(1.0));
    return chunk;
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let lane = lid % LANES;
    let first = ((wid.x + wid.y * nwg.x) * ROW_GROUPS + lid / LANES) * ROWS_PER_GROUP;
    // Rows past the piece's end repeat its last row and are not written.
    let last = P.rows - 1u;
    let rows = min(vec4<u32>(first) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(last)) * P.row_bytes;
    // This layer's token, or the one `x_token` names (the last, for the logits, written to
    // row 0 of Y).
    let t = select(wid.z, P.x_token - 1u, P.x_token != 0u);
    let y = wid.z * P.y_stride;
    var acc = vec4<f32>(0.0);
    if (first <= last) {
        for (var c = lane; c < P.k / 32u; c += LANES) {
            let x = load_x_chunk(t * P.x_stride + c * 8u);
            acc += vec4<f32>(
                chunk_dot(rows.x, c, x),
                chunk_dot(rows.y, c, x),
                chunk_dot(rows.z, c, x),
                chunk_dot(rows.w, c, x),
            );
        }
    }
    let total = row_sum(acc, lid);
    // The group's lanes share out the writes of its rows.
    for (var j = lane; j < ROWS_PER_GROUP; j += LANES) {
        let r = first + j;
        if (r > last) {
            break;
        }
        let out_row = P.row_offset + r;
        var v = total[j];
        if ((P.flags & 1u) != 0u) {
            v += AUX[out_row];
        }
        if ((P.flags & 4u) != 0u) {
            let g = AUX[y + out_row];
            v *= g / (1.0 + exp(-g));
        }
        if ((P.flags & 2u) != 0u) {
            v += Y[y + out_row];
        }
        Y[y + out_row] = v;
    }
}
