// F16 rows: chunk c is values 32c..32c+32, 64 bytes; rows of whole chunks are 4-byte aligned.
fn dequant_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
    var out: array<vec4<f32>, 8>;
    let w = (row + c * 64u) >> 2u;
    for (var i = 0u; i < 8u; i++) {
        out[i] = vec4<f32>(unpack2x16float(W[w + 2u * i]), unpack2x16float(W[w + 2u * i + 1u]));
    }
    return out;
}
