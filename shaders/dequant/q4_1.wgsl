// Q4_1: 20-byte blocks of 32: f16 d, f16 m, 16 bytes of nibbles; value = d * nibble + m.
fn dequant_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
    var out: array<vec4<f32>, 8>;
    let b = row + c * 20u;
    let d = load_f16(b);
    let m = load_f16(b + 2u);
    for (var i = 0u; i < 4u; i++) {
        let q = bytes4(b + 4u + 4u * i);
        out[i] = d * vec4<f32>(q & vec4<u32>(15u)) + m;
        out[i + 4u] = d * vec4<f32>(q >> vec4<u32>(4u)) + m;
    }
    return out;
}
