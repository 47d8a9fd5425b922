// Q8_0: 34-byte blocks of 32: f16 d, 32 signed bytes; value = d * q.
fn dequant_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
    var out: array<vec4<f32>, 8>;
    let b = row + c * 34u;
    let d = load_f16(b);
    for (var i = 0u; i < 8u; i++) {
        out[i] = d * sext8(bytes4(b + 2u + 4u * i));
    }
    return out;
}
