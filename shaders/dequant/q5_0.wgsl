// Q5_0: 22-byte blocks of 32: f16 d, u32 of fifth bits, 16 bytes of nibbles;
// value = d * ((nibble | fifth bit << 4) - 16).
fn dequant_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
    var out: array<vec4<f32>, 8>;
    let b = row + c * 22u;
    let d = load_f16(b);
    let qh = load_u32(b + 2u);
    for (var i = 0u; i < 4u; i++) {
        let q = bytes4(b + 6u + 4u * i);
        let j = vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u);
        let h0 = ((vec4<u32>(qh) >> j) & vec4<u32>(1u)) << vec4<u32>(4u);
        let h1 = ((vec4<u32>(qh) >> (j + 16u)) & vec4<u32>(1u)) << vec4<u32>(4u);
        out[i] = d * (vec4<f32>((q & vec4<u32>(15u)) | h0) - 16.0);
        out[i + 4u] = d * (vec4<f32>((q >> vec4<u32>(4u)) | h1) - 16.0);
    }
    return out;
}
