// Y[t, r] (+)= sum_k W[r, k] * X[t, k] (+ bias[r]) for the rows of one weight piece.
//
// One workgroup computes one row for a tile of TILE tokens: each thread dequantizes 32-value
// chunks of the row in registers once and applies them to every token of the tile, so prefill
// reads the weights once per tile and decode (TILE = 1) reads each weight byte once.
// Prepended: bytes.wgsl and the weight type's dequant_chunk(row_byte_offset, chunk).

const TILE: u32 = {{TILE}}u;
const WG: u32 = 32u;

struct Params {
    k: u32,            // input width (multiple of 32)
    rows: u32,         // rows in this piece
    row_offset: u32,   // index of the piece's first row in the whole matrix
    row_bytes: u32,
    y_stride: u32,     // output row length per token
    x_stride: u32,     // input vec4s per token
    x_token: u32,      // 0: tokens 0..n; else 1 + the one token to use (the last, for logits)
    flags: u32,        // 1: add bias, 2: accumulate into Y
}

struct Step {
    n_tokens: u32,
    pos: u32,
    seq_len: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

var<workgroup> partial: array<f32, WG * TILE>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = wid.x + wid.y * nwg.x;
    let t0 = wid.z * TILE;
    var n_tokens = S.n_tokens;
    var x_first = 0u;
    if (P.x_token != 0u) {
        n_tokens = 1u;
        x_first = P.x_token - 1u;
    }
    // Uniform per workgroup, so the barrier below is reached by all or none.
    if (r >= P.rows) {
        return;
    }
    let row = r * P.row_bytes;
    var acc: array<f32, TILE>;
    for (var c = lid; c < P.k / 32u; c += WG) {
        let w = dequant_chunk(row, c);
        for (var t = 0u; t < TILE; t++) {
            if (t0 + t < n_tokens) {
                let x = (x_first + t0 + t) * P.x_stride + c * 8u;
                var s = 0.0;
                for (var i = 0u; i < 8u; i++) {
                    s += dot(w[i], X[x + i]);
                }
                acc[t] += s;
            }
        }
    }
    for (var t = 0u; t < TILE; t++) {
        partial[t * WG + lid] = acc[t];
    }
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            for (var t = 0u; t < TILE; t++) {
                partial[t * WG + lid] += partial[t * WG + lid + stride];
            }
        }
        workgroupBarrier();
    }
    if (lid < TILE && t0 + lid < n_tokens) {
        let out_row = P.row_offset + r;
        var v = partial[lid * WG];
        if ((P.flags & 1u) != 0u) {
            v += BIAS[out_row];
        }
        let y = (t0 + lid) * P.y_stride + out_row;
        if ((P.flags & 2u) != 0u) {
            v += Y[y];
        }
        Y[y] = v;
    }
}
