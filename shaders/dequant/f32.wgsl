// F32 rows: chunk c is values 32c..32c+32, 4-byte aligned.
fn dequant_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
    var out: array<vec4<f32>, 8>;
    let w = (row + c * 128u) >> 2u;
    for (var i = 0u; i < 8u; i++) {
        out[i] = bitcast<vec4<f32>>(vec4<u32>(W[w + 4u * i], W[w + 4u * i + 1u], W[w + 4u * i + 2u], W[w + 4u * i + 3u]));
    }
    return out;
}
