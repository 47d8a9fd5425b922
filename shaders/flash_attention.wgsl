// Flash attention, one split of the cached positions: for a tile of ROWS query rows of one KV
// head (row = token * GROUP + query head within the group, so K and V are read once for the
// whole GQA group), the softmax-weighted sum of V over positions [start, end) of this split,
// computed block by block with an online softmax; no score matrix leaves the workgroup.
// Writes the unnormalised sum and (running max, sum of weights) per row; attention_reduce.wgsl
// combines the splits. Decode uses many splits (split-K), prefill few.
// Dispatch: (splits, n_kv_heads, ceil(n_tokens * GROUP / ROWS)).
// Composed in crate/src/kernels/attention.rs: Step, Heads, the cache type's aliases (`kv4`,
// `kv1`) and reads (load_k4: four key values by element index / 4; load_v: one value), GROUP,
// HEAD_DIM, ROWS, LANES (positions summed side by side in the V pass), DPT (dimensions per
// invocation).

@group(0) @binding(0) var<storage, read> Q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> K_CACHE: array<kv4>;
@group(0) @binding(2) var<storage, read> V_CACHE: array<kv1>;
// Per (split, token, head): sum over the split of exp(score - max) * V, HEAD_DIM floats.
@group(0) @binding(3) var<storage, read_write> PARTIAL_O: array<f32>;
// Per (split, token, head): (max score, sum of exp(score - max)).
@group(0) @binding(4) var<storage, read_write> PARTIAL_ML: array<vec2<f32>>;
@group(0) @binding(5) var<uniform> P: Heads;
@group(0) @binding(6) var<uniform> S: Step;

const BLOCK: u32 = 64u;
const D4: u32 = HEAD_DIM / 4u;
// Invocations that share one position's V row in the V pass.
const SPAN: u32 = BLOCK / LANES;
// A score no real one reaches; exp of it minus any real max is 0.
const MASKED: f32 = -1.0e30;

var<workgroup> q_tile: array<vec4<f32>, ROWS * D4>;
// Scores, then softmax weights, of the block; reused to combine the lanes at the end.
var<workgroup> weights: array<f32, ROWS * BLOCK>;
var<workgroup> rescale: array<f32, ROWS>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let split = wid.x;
    let kv_head = wid.y;
    let first_row = wid.z * ROWS;
    let kv_width = P.n_kv_heads * P.head_dim;

    // The split's positions, cut at the last position any row of the tile may see.
    let split_len = (S.seq_len + nwg.x - 1u) / nwg.x;
    let split_len_blocks = (split_len + BLOCK - 1u) / BLOCK * BLOCK;
    let last_token = min(S.n_tokens - 1u, (first_row + ROWS - 1u) / GROUP);
    let start = split * split_len_blocks;
    let end = min(min(start + split_len_blocks, S.seq_len), S.pos + last_token + 1u);

    for (var i = lid; i < ROWS * D4; i += BLOCK) {
        let row = first_row + i / D4;
        let t = row / GROUP;
        let h = kv_head * GROUP + row % GROUP;
        var q = vec4<f32>(0.0);
        if (t < S.n_tokens) {
            q = Q[(t * P.n_heads + h) * D4 + i % D4] * P.scale;
        }
        q_tile[i] = q;
    }
    workgroupBarrier();

    // Row statistics, owned by invocation `row` < ROWS.
    var running_max = MASKED;
    var running_sum = 0.0;
    var acc: array<f32, ROWS * DPT>;
    let lane = lid / SPAN;
    let d_first = lid % SPAN;

    for (var b = start; b < end; b += BLOCK) {
        // Scores: invocation lid takes position b + lid against every row.
        let p = b + lid;
        var scores: array<f32, ROWS>;
        if (p < end) {
            let k = (p * P.n_kv_heads + kv_head) * D4;
            for (var c = 0u; c < D4; c++) {
                let kc = load_k4(k + c);
                for (var r = 0u; r < ROWS; r++) {
                    scores[r] += dot(q_tile[r * D4 + c], kc);
                }
            }
        }
        for (var r = 0u; r < ROWS; r++) {
            let t = (first_row + r) / GROUP;
            let visible = p < end && t < S.n_tokens && p <= S.pos + t;
            weights[r * BLOCK + lid] = select(MASKED, scores[r], visible);
        }
        workgroupBarrier();

        // Online softmax: each row's new max, its weights, and the factor for earlier sums.
        if (lid < ROWS) {
            var block_max = MASKED;
            for (var j = 0u; j < BLOCK; j++) {
                block_max = max(block_max, weights[lid * BLOCK + j]);
            }
            let new_max = max(running_max, block_max);
            var block_sum = 0.0;
            for (var j = 0u; j < BLOCK; j++) {
                let s = weights[lid * BLOCK + j];
                let w = select(0.0, exp(s - new_max), s > MASKED);
                weights[lid * BLOCK + j] = w;
                block_sum += w;
            }
            let factor = exp(running_max - new_max);
            rescale[lid] = factor;
            running_sum = running_sum * factor + block_sum;
            running_max = new_max;
        }
        workgroupBarrier();

        // V: invocation (lane, d_first) adds positions lane, lane + LANES, ... of the block for
        // its DPT dimensions, into every row.
        for (var r = 0u; r < ROWS; r++) {
            for (var e = 0u; e < DPT; e++) {
                acc[r * DPT + e] *= rescale[r];
            }
        }
        for (var j = lane; j < BLOCK && b + j < end; j += LANES) {
            let v = (b + j) * kv_width + kv_head * HEAD_DIM + d_first;
            for (var e = 0u; e < DPT; e++) {
                let value = load_v(v + e * SPAN);
                for (var r = 0u; r < ROWS; r++) {
                    acc[r * DPT + e] += weights[r * BLOCK + j] * value;
                }
            }
        }
        workgroupBarrier();
    }

    // Lanes hold sums over different positions of the same dimensions: add them up in
    // `weights` (ROWS * HEAD_DIM * LANES = ROWS * BLOCK floats when LANES > 1).
    if (LANES > 1u) {
        for (var r = 0u; r < ROWS; r++) {
            weights[(lane * ROWS + r) * HEAD_DIM + d_first] = acc[r * DPT];
        }
        workgroupBarrier();
        if (lane == 0u) {
            for (var r = 0u; r < ROWS; r++) {
                var total = 0.0;
                for (var l = 0u; l < LANES; l++) {
                    total += weights[(l * ROWS + r) * HEAD_DIM + d_first];
                }
                acc[r * DPT] = total;
            }
        }
    }

    let n_rows = S.n_tokens * P.n_heads;
    for (var r = 0u; r < ROWS; r++) {
        let row = first_row + r;
        let t = row / GROUP;
        if (t >= S.n_tokens) {
            break;
        }
        let out_row = split * n_rows + t * P.n_heads + kv_head * GROUP + row % GROUP;
        if (lane == 0u) {
            for (var e = 0u; e < DPT; e++) {
                PARTIAL_O[out_row * HEAD_DIM + d_first + e * SPAN] = acc[r * DPT + e];
            }
        }
        if (lid == r) {
            PARTIAL_ML[out_row] = vec2<f32>(running_max, running_sum);
        }
    }
}
