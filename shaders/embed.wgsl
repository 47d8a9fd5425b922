// X[t, :] = dequantized row TOKENS[t] of the embedding matrix, for tokens in this piece's rows.
// Composed in crate/src/kernels/embed.rs: Step, Params, the embedding type's dequant snippet.

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> TOKENS: array<u32>;
@group(0) @binding(2) var<storage, read_write> X: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> P: Params;
@group(0) @binding(4) var<uniform> S: Step;

@compute @workgroup_size(32)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let t = gid.y;
    if (c >= P.k / 32u || t >= S.n_tokens) {
        return;
    }
    let token = TOKENS[t];
    if (token < P.row_offset || token >= P.row_offset + P.rows) {
        return;
    }
    let row = (token - P.row_offset) * P.row_bytes;
    let x = t * (P.k / 4u) + c * 8u;
    for (var i = 0u; i < 8u; i++) {
        X[x + i] = dequant4(row, c, i);
    }
}
