// Prefill mat-mul: Y[t, r] (+)= sum_k W[r, k] * X[t, k] (+ bias[r]) for the rows of one weight
// piece and every token of the step; or, for the FFN's up projection,
// Y[t, r] = silu(GATE[t, r]) * sum_k W[r, k] * X[t, k].
//
// A workgroup of 64 invocations computes a tile of 64 rows x 32 tokens. For each 32-value chunk
// of k, each invocation dequantizes one row's chunk into workgroup memory (each quantized block
// is decoded once per tile, not once per token) and the invocations load the tokens' chunk of
// X beside it; then each invocation accumulates an 8-row x 4-token block of the tile in
// registers, reading 12 vectors for 32 dot products. Composed in
// crate/src/kernels/matmul_tiled.rs: TILE_ROWS (64: one row per invocation), TILE_TOKENS (32:
// 8 token groups x BLOCK_TOKENS), Step, Params (its `x_token` is always 0 here: one-token
// products run as mat-vecs) and the weight type's dequant snippet
// (dequant4(row_byte_offset, chunk, quad)).

// vec4s per 32-value chunk.
const QUADS: u32 = 8u;
// Each invocation's block: rows lid % 8 + 8 i, tokens lid / 8 + 8 j.
const BLOCK_ROWS: u32 = 8u;
const BLOCK_TOKENS: u32 = 4u;

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
// The bias (flag 1) or the FFN gate activations (flag 4).
@group(0) @binding(3) var<storage, read> AUX: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

var<workgroup> w_tile: array<vec4<f32>, TILE_ROWS * QUADS>;
var<workgroup> x_tile: array<vec4<f32>, TILE_TOKENS * QUADS>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r0 = (wid.x + wid.y * nwg.x) * TILE_ROWS;
    let t0 = wid.z * TILE_TOKENS;
    let block_row = lid % 8u;
    let block_token = lid / 8u;
    var acc: array<f32, BLOCK_ROWS * BLOCK_TOKENS>;

    let load_row = r0 + lid;
    let row_bytes = load_row * P.row_bytes;
    for (var c = 0u; c < P.k / 32u; c++) {
        for (var q = 0u; q < QUADS; q++) {
            var w = vec4<f32>(0.0);
            if (load_row < P.rows) {
                w = dequant4(row_bytes, c, q);
            }
            w_tile[lid * QUADS + q] = w;
        }
        for (var i = lid; i < TILE_TOKENS * QUADS; i += 64u) {
            let t = t0 + i / QUADS;
            var x = vec4<f32>(0.0);
            if (t < S.n_tokens) {
                x = X[t * P.x_stride + c * QUADS + i % QUADS];
            }
            x_tile[i] = x;
        }
        workgroupBarrier();
        for (var q = 0u; q < QUADS; q++) {
            var w: array<vec4<f32>, BLOCK_ROWS>;
            for (var i = 0u; i < BLOCK_ROWS; i++) {
                w[i] = w_tile[(block_row + 8u * i) * QUADS + q];
            }
            for (var j = 0u; j < BLOCK_TOKENS; j++) {
                let x = x_tile[(block_token + 8u * j) * QUADS + q];
                for (var i = 0u; i < BLOCK_ROWS; i++) {
                    acc[i * BLOCK_TOKENS + j] += dot(w[i], x);
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < BLOCK_ROWS; i++) {
        let r = r0 + block_row + 8u * i;
        if (r >= P.rows) {
            continue;
        }
        let out_row = P.row_offset + r;
        for (var j = 0u; j < BLOCK_TOKENS; j++) {
            let t = t0 + block_token + 8u * j;
            if (t >= S.n_tokens) {
                continue;
            }
            var v = acc[i * BLOCK_TOKENS + j];
            if ((P.flags & 1u) != 0u) {
                v += AUX[out_row];
            }
            let y = t * P.y_stride + out_row;
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
