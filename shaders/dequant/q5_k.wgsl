// Q5_K: 176-byte blocks of 256: f16 d, f16 dmin, 12 bytes of scales/mins, 32 bytes of fifth
// bits (bit s of byte l for value l of sub-block s), 128 bytes of nibbles as in Q4_K.
fn dequant_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
    var out: array<vec4<f32>, 8>;
    let b = row + (c >> 3u) * 176u;
    let s = c & 7u;
    let sm = scale_min_k4(b + 4u, s);
    let d = load_f16(b) * sm.x;
    let m = load_f16(b + 2u) * sm.y;
    let qs = b + 48u + (s >> 1u) * 32u;
    let shift = vec4<u32>((s & 1u) * 4u);
    for (var i = 0u; i < 8u; i++) {
        let low = (bytes4(qs + 4u * i) >> shift) & vec4<u32>(15u);
        let high = ((bytes4(b + 16u + 4u * i) >> vec4<u32>(s)) & vec4<u32>(1u)) << vec4<u32>(4u);
        out[i] = d * vec4<f32>(low | high) - m;
    }
    return out;
}
