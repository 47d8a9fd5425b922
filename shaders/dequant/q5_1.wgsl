// Q5_1: 24-byte blocks of 32: f16 d, f16 m, u32 of fifth bits, 16 bytes of nibbles;
// value = d * (nibble | fifth bit << 4) + m.
fn dequant_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
    var out: array<vec4<f32>, 8>;
    let b = row + c * 24u;
    let d = load_f16(b);
    let m = load_f16(b + 2u);
    let qh = load_u32(b + 4u);
    for (var i = 0u; i < 4u; i++) {
        let q = bytes4(b + 8u + 4u * i);
        let j = vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u);
        let h0 = ((vec4<u32>(qh) >> j) & vec4<u32>(1u)) << vec4<u32>(4u);
        let h1 = ((vec4<u32>(qh) >> (j + 16u)) & vec4<u32>(1u)) << vec4<u32>(4u);
        out[i] = d * vec4<f32>((q & vec4<u32>(15u)) | h0) + m;
        out[i + 4u] = d * vec4<f32>((q >> vec4<u32>(4u)) | h1) + m;
    }
    return out;
}
