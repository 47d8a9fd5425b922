// Q4_0: 18-byte blocks of 32: f16 d, 16 bytes of nibbles; value j is d * (nibble - 8), low
// nibbles first.
fn dequant_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
    var out: array<vec4<f32>, 8>;
    let b = row + c * 18u;
    let d = load_f16(b);
    for (var i = 0u; i < 4u; i++) {
        let q = bytes4(b + 2u + 4u * i);
        out[i] = d * (vec4<f32>(q & vec4<u32>(15u)) - 8.0);
        out[i + 4u] = d * (vec4<f32>(q >> vec4<u32>(4u)) - 8.0);
    }
    return out;
}
